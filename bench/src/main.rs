//! catalog-sync's benchmarks. Each one measures catalog-sync and the naive alternative side by
//! side, in one run, on the same DynamoDB Local, and prints the ratio.
//!
//! ```text
//! cargo run --profile bench-fast -p bench -- projector [--records 5000] [--products 250]
//! cargo run --profile bench-fast -p bench -- listing [--stores 20] [--per-store 100]
//! cargo run --profile bench-fast -p bench -- merchandising [--sizes 100,1000,10000] [--rounds 200]
//! cargo run --profile bench-fast -p bench -- reconciler [--products 20000] [--locations 2]
//! cargo run --profile bench-fast -p bench -- freshness [--writes 300] [--poll-ms 250]
//! cargo run --profile bench-fast -p bench -- backlog [--writes 10000] [--products 200]
//! cargo run --profile bench-fast -p bench -- pipeline [--updates 150]
//! cargo run --profile bench-fast -p bench -- fleet [--updates 60] [--requests 1000]
//! cargo run --profile bench-fast -p bench -- opennext [--updates 40] [--requests 1000]
//! cargo run --profile bench-fast -p bench -- cost [--day-changes 1000000] [--day-views 1000000]
//! ```

mod backlog;
mod cost;
mod fleet;
mod freshness;
mod init;
mod latency;
mod listing;
mod merchandising;
mod opennext;
mod pipeline;
mod projector;
mod reconciler;
mod seed;

use anyhow::{bail, Result};

fn usage() -> &'static str {
    "usage: bench projector [--records N] [--products P] [--seed S]\n       bench listing [--stores S] [--per-store N] [--rounds R]\n       bench merchandising [--sizes 100,1000,10000] [--rounds R]\n       bench reconciler [--products N] [--locations L] [--page P]\n       bench init [--runs R] [--against DIR]\n       bench freshness [--writes M] [--products P] [--poll-ms MS]\n       bench backlog [--writes M] [--products P]\n       bench pipeline [--updates N] [--products P]\n       bench fleet [--updates N] [--requests R]\n       bench opennext [--updates N] [--requests R]\n       bench cost [--day-changes N] [--day-views V] [--catalog C] [--products P] [--changes N] [--views V] [--batch B]"
}

/// `--name value` flags into a lookup.
pub struct Flags(Vec<String>);

impl Flags {
    /// The demo catalog of `--products` (default `products`) and `--seed` (default 1), over 5
    /// stores and 3 locations: what the pipeline benchmarks load.
    pub fn demo_size(&self, products: usize) -> Result<catalog_local::dev::demo::DemoSize> {
        Ok(catalog_local::dev::demo::DemoSize {
            products: self.get("products", products)?,
            stores: 5,
            locations: 3,
            seed: self.get("seed", 1)?,
        })
    }

    /// The value of `--name` parsed, or `default`.
    pub fn get<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T> {
        match self.0.iter().position(|a| a == &format!("--{name}")) {
            None => Ok(default),
            Some(i) => match self.0.get(i + 1).and_then(|v| v.parse().ok()) {
                Some(v) => Ok(v),
                None => bail!("--{name} needs a valid value; {}", usage()),
            },
        }
    }
}

fn main() -> Result<()> {
    // Only the figures go to stdout. Set before any thread starts.
    std::env::set_var("CATALOG_METRICS", "off");
    // Logs only when asked for, e.g. RUST_LOG=reconciler=debug to watch a run's progress.
    if std::env::var_os("RUST_LOG").is_some() {
        catalog::telemetry::init();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(dispatch())
}

async fn dispatch() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flags = Flags(args.iter().skip(1).cloned().collect());
    match args.first().map(String::as_str) {
        Some("projector") => projector::run(&flags).await,
        Some("listing") => listing::run(&flags).await,
        Some("merchandising") => merchandising::run(&flags).await,
        Some("reconciler") => reconciler::run(&flags).await,
        Some("init") => init::run(&flags).await,
        Some("freshness") => freshness::run(&flags).await,
        Some("backlog") => backlog::run(&flags).await,
        Some("pipeline") => pipeline::run(&flags).await,
        Some("fleet") => fleet::run(&flags).await,
        Some("opennext") => opennext::run(&flags).await,
        Some("cost") => cost::run(&flags).await,
        _ => bail!("{}", usage()),
    }
}
