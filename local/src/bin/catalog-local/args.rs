//! The command line: the usage text and the words, read one flag or value at a time.

use anyhow::{bail, Result};

pub const USAGE: &str = "\
catalog-local: catalog-sync on this machine (DynamoDB Local, an SQS emulator, every function)

Run the stack (Ctrl-C stops it):
  up [--products N] [--stores S] [--locations L] [--seed X] [--poll-ms MS] [--port P]
     [--storefront [--instances N] [--tag-table | --http | --opennext]]
     [--revalidate-endpoint URL]...
     [--aws-consistency [--lag-ms MS] [--hold-ms MS]]
     demo data defaults: 200 products, 5 stores, 3 locations, seed 1; --products 0 for none
     --storefront also runs examples/storefront (Next.js) and revalidates it
     --instances N runs N storefront instances behind a round-robin proxy; they read their
       tags from the tag table (packages/next-cache-handler), which the revalidator writes
       (--tag-table does so for one instance too; --http calls each instance's route instead)
     --opennext runs OpenNext's build of the storefront (as on Lambda) instead of next start,
       its tag cache reading the tag table; scripts/setup builds it
     --aws-consistency makes DynamoDB as weak as AWS's: the listing index and eventually
       consistent reads lag writes by up to --lag-ms (1000), summary writes are held up to
       --hold-ms (100); docs/local-stack.md says what it models

Against the running stack:
  product <id> --store S --title T --price MINOR [--draft]   create or replace a product
  price <id> <minor>                                        change a price (minor units)
  stock <id> <location> <on-hand> [--reserved R]            set the stock at a location
  archive <id> | unarchive <id> | delete <id>
  summary <id>                                              the product's summary
  revalidate <id>                                           queue all of a product's tags now
  list <store> [--limit N] [--sort title|price_asc|price_desc|newest] [--in-stock]
       [--min-price N] [--max-price N] [--cursor C]          a listing page, via the listing API
  reconcile [--dry-run] [--store S]                         start a reconciliation run now
  redrive [DLQ]                                             move a dead-letter queue's messages back
                                                            to their queue (default TagDeadLetterQueue)
  status                                                    the running stack's counters
  metrics [--file F]                                        the run's EMF metrics summed, lags as
                                                            p50/p99 (default .local/logs/metrics.log)

Deploying a storefront:
  revalidate-key <https URL>                                its REVALIDATE_KEY, from the revalidate
                                                            secret read on stdin (needs no stack)
";

/// Command-line words, read one flag or value at a time.
pub struct Args(pub Vec<String>);

impl Args {
    pub fn flag(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|a| a != name);
        self.0.len() != before
    }

    pub fn option(&mut self, name: &str) -> Result<Option<String>> {
        let Some(i) = self.0.iter().position(|a| a == name) else {
            return Ok(None);
        };
        if i + 1 >= self.0.len() {
            bail!("{name} needs a value");
        }
        let value = self.0.remove(i + 1);
        self.0.remove(i);
        Ok(Some(value))
    }

    pub fn parsed<T: std::str::FromStr>(&mut self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.option(name)? {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| anyhow::anyhow!("{name} {v:?}: {e}")),
        }
    }

    pub fn positional(&mut self, what: &str) -> Result<String> {
        if self.0.is_empty() || self.0[0].starts_with("--") {
            bail!("missing {what}\n\n{USAGE}");
        }
        Ok(self.0.remove(0))
    }

    pub fn done(&self) -> Result<()> {
        if let Some(extra) = self.0.first() {
            bail!("unexpected argument {extra:?}\n\n{USAGE}");
        }
        Ok(())
    }
}
