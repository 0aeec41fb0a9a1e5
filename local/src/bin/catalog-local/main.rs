//! `catalog-local`: runs catalog-sync on this machine (`up`) and pokes at it (every other
//! command), against the endpoints the running stack wrote to `.local/stack.json`.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use catalog::store::SummaryStore;
use catalog_core::ids::{LocationId, ProductId, StoreId};
use catalog_core::model::{Image, MinorUnits, Product, ProductStatus};
use catalog_local::consistency::AwsConsistency;
use catalog_local::demo::{self, DemoSize};
use catalog_local::edits::Editor;
use catalog_local::metrics_report::MetricsReport;
use catalog_local::stack::{Endpoints, Options, Stack, Status};

const USAGE: &str = "\
catalog-local: catalog-sync on this machine (DynamoDB Local, an SQS emulator, every function)

Run the stack (Ctrl-C stops it):
  up [--products N] [--stores S] [--locations L] [--seed X] [--poll-ms MS] [--port P]
     [--storefront] [--revalidate-endpoint URL]... [--aws-consistency [--lag-ms MS] [--hold-ms MS]]
     demo data defaults: 200 products, 5 stores, 3 locations, seed 1; --products 0 for none
     --storefront also runs examples/storefront (Next.js) and revalidates it
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
  list <store> [--limit N]                                  a listing page, via the listing API
  reconcile [--dry-run] [--store S]                         start a reconciliation run now
  redrive [DLQ]                                             move a dead-letter queue's messages back
                                                            to their queue (default TagDeadLetterQueue)
  status                                                    the running stack's counters
  metrics [--file F]                                        the run's EMF metrics summed, lags as
                                                            p50/p99 (default .local/logs/metrics.log)
";

/// Command-line words, read one flag or value at a time.
struct Args(Vec<String>);

impl Args {
    fn flag(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|a| a != name);
        self.0.len() != before
    }

    fn option(&mut self, name: &str) -> Result<Option<String>> {
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

    fn parsed<T: std::str::FromStr>(&mut self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.option(name)? {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e| anyhow::anyhow!("{name} {v:?}: {e}")),
        }
    }

    fn positional(&mut self, what: &str) -> Result<String> {
        if self.0.is_empty() || self.0[0].starts_with("--") {
            bail!("missing {what}\n\n{USAGE}");
        }
        Ok(self.0.remove(0))
    }

    fn done(&self) -> Result<()> {
        if let Some(extra) = self.0.first() {
            bail!("unexpected argument {extra:?}\n\n{USAGE}");
        }
        Ok(())
    }
}

fn main() -> Result<()> {
    let mut words: Vec<String> = std::env::args().skip(1).collect();
    if words.is_empty() || matches!(words[0].as_str(), "-h" | "--help" | "help") {
        print!("{USAGE}");
        return Ok(());
    }
    let command = words.remove(0);
    let args = Args(words);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(&command, args))
}

async fn run(command: &str, mut args: Args) -> Result<()> {
    let root = catalog_local::workspace_root();
    if command == "up" {
        return up(&root, args).await;
    }
    if command == "metrics" {
        return metrics(&root, args);
    }
    // `reconcile` runs the reconciler here: its metrics join the stack's, not this stdout.
    let log_dir = catalog_local::services::log_dir(&root)?;
    catalog::telemetry::set_metrics_writer(Box::new(append(&log_dir.join("metrics.log"))?));
    let endpoints = Endpoints::read(&root)?;
    let (dynamodb, sqs) = endpoints.clients().await;
    let editor = Editor::new(dynamodb.clone(), endpoints.tables.clone());
    let id = |args: &mut Args| -> Result<ProductId> {
        Ok(ProductId::parse(&args.positional("product id")?)?)
    };
    match command {
        "product" => {
            let product_id = id(&mut args)?;
            let store = args.option("--store")?.context("--store is required")?;
            let title = args.option("--title")?.context("--title is required")?;
            let price: u64 = args.parsed("--price", 0)?;
            let draft = args.flag("--draft");
            args.done()?;
            let product = Product {
                images: vec![Image {
                    url: format!("/images/{product_id}.webp"),
                    position: 0,
                }],
                product_id,
                store_id: StoreId::parse(&store)?,
                slug: title.to_lowercase().replace(' ', "-"),
                name: title,
                price: MinorUnits::new(price)?,
                status: if draft {
                    ProductStatus::Draft
                } else {
                    ProductStatus::Active
                },
                deleted_at: None,
                thumbnail_url: None,
                track_inventory: true,
                version: 1,
            };
            print_json(&editor.put_product(product).await?)
        }
        "price" => {
            let product_id = id(&mut args)?;
            let price: u64 = args
                .positional("price in minor units")?
                .parse()
                .context("the price is a whole number of minor units, e.g. 1999")?;
            args.done()?;
            print_json(
                &editor
                    .set_price(&product_id, MinorUnits::new(price)?)
                    .await?,
            )
        }
        "stock" => {
            let product_id = id(&mut args)?;
            let location = LocationId::parse(&args.positional("location id")?)?;
            let on_hand: i64 = args
                .positional("units on hand")?
                .parse()
                .context("units on hand is a whole number")?;
            let reserved = args.option("--reserved")?.map(|r| r.parse()).transpose()?;
            args.done()?;
            let row = editor
                .set_stock(&product_id, &location, on_hand, reserved)
                .await?;
            print_json(&row)
        }
        "archive" | "unarchive" => {
            let product_id = id(&mut args)?;
            args.done()?;
            let status = if command == "archive" {
                ProductStatus::Archived
            } else {
                ProductStatus::Active
            };
            print_json(&editor.set_status(&product_id, status).await?)
        }
        "delete" => {
            let product_id = id(&mut args)?;
            args.done()?;
            editor.delete_product(&product_id).await?;
            println!("deleted {product_id}");
            Ok(())
        }
        "summary" => {
            let product_id = id(&mut args)?;
            args.done()?;
            let store = SummaryStore::new(dynamodb, endpoints.tables.summaries.clone());
            match store.get_card(&product_id).await? {
                Some(card) => print_json(&card),
                None => bail!("no summary for {product_id} (yet)"),
            }
        }
        "revalidate" => {
            let product_id = id(&mut args)?;
            args.done()?;
            let body = http(
                "POST",
                &endpoints.listing_api,
                &format!("/admin/products/{product_id}/revalidate"),
            )
            .await?;
            println!("{body}");
            Ok(())
        }
        "list" => {
            let store = StoreId::parse(&args.positional("store id")?)?;
            let limit: usize = args.parsed("--limit", 24)?;
            args.done()?;
            let body = http(
                "GET",
                &endpoints.listing_api,
                &format!("/stores/{store}/products?limit={limit}"),
            )
            .await?;
            println!("{body}");
            Ok(())
        }
        "reconcile" => {
            let mut detail = serde_json::json!({"dryRun": args.flag("--dry-run")});
            if let Some(store) = args.option("--store")? {
                detail["storeId"] = store.into();
            }
            args.done()?;
            let reconciler = reconciler::Reconciler::new(
                &catalog::config::ReconcilerConfig {
                    tables: endpoints.tables.clone(),
                    tag_queue_url: endpoints.queues["TagQueue"].clone(),
                    reconcile_queue_url: endpoints.queues["ReconcileQueue"].clone(),
                    default_segments: 4,
                    stock_tag_policy: catalog_core::tags::StockTagPolicy::Eager,
                },
                dynamodb,
                sqs,
            );
            let event = serde_json::json!({"detail-type": "Scheduled Event", "source": "catalog-sync.local", "detail": detail});
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            print_json(&reconciler.handle(event, deadline).await?)?;
            println!("the running stack runs its segments; see `status` and .local/logs/stack.log for the report");
            Ok(())
        }
        "redrive" => {
            let dead = match args.0.first() {
                Some(_) => args.positional("queue")?,
                None => "TagDeadLetterQueue".to_owned(),
            };
            args.done()?;
            let template = catalog_local::template::Template::load(&root)?;
            let source = template
                .queues
                .iter()
                .find(|q| {
                    q.redrive
                        .as_ref()
                        .is_some_and(|(target, _)| *target == dead)
                })
                .with_context(|| format!("no queue of template.yaml dead-letters to {dead}"))?;
            let url = |id: &str| {
                endpoints
                    .queues
                    .get(id)
                    .cloned()
                    .with_context(|| format!("no queue {id}"))
            };
            let moved =
                catalog_local::redrive::redrive(&sqs, &url(&dead)?, &url(&source.logical_id)?)
                    .await?;
            println!(
                "moved {moved} messages from {dead} back to {}",
                source.logical_id
            );
            Ok(())
        }
        "status" => {
            args.done()?;
            let path = status_path(&root);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("{path:?} is missing: is the stack running?"))?;
            println!("{text}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn status_path(root: &Path) -> std::path::PathBuf {
    catalog_local::local_dir(root).join("status.json")
}

/// A plain HTTP/1.1 request for `path` on the local HTTP API; the body of a 2xx answer.
async fn http(method: &str, base: &str, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .with_context(|| format!("connecting to the listing API at {base}"))?;
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default();
    if !(status.contains(" 200 ") || status.contains(" 202 ")) {
        bail!("{status}\n{body}");
    }
    Ok(body.to_owned())
}

async fn up(root: &Path, mut args: Args) -> Result<()> {
    let size = DemoSize {
        products: args.parsed("--products", 200)?,
        stores: args.parsed("--stores", 5)?,
        locations: args.parsed("--locations", 3)?,
        seed: args.parsed("--seed", 1)?,
    };
    let storefront = args.flag("--storefront");
    let mut revalidate_endpoints = Vec::new();
    while let Some(url) = args.option("--revalidate-endpoint")? {
        revalidate_endpoints.push(url);
    }
    let aws_consistency = args
        .flag("--aws-consistency")
        .then(|| -> Result<AwsConsistency> {
            Ok(AwsConsistency {
                lag: Duration::from_millis(args.parsed("--lag-ms", 1000)?),
                hold: Duration::from_millis(args.parsed("--hold-ms", 100)?),
                seed: size.seed,
            })
        })
        .transpose()?;
    // The routes a `sam local` container may call too (the storefront's is not one of them).
    let container_revalidate_endpoints = revalidate_endpoints.clone();
    let options = Options {
        poll_interval: Duration::from_millis(args.parsed("--poll-ms", 250)?),
        listing_port: args.parsed("--port", 0)?,
        // So that `sam local` containers reach the emulators (.local/sam-env.json).
        listen: catalog_local::services::Listen::Everywhere,
        storefront,
        revalidate_endpoints,
        aws_consistency,
        ..Options::default()
    };
    args.done()?;
    if size.stores == 0 || size.locations == 0 {
        bail!("--stores and --locations must be at least 1");
    }
    let log_dir = catalog_local::services::log_dir(root)?;
    init_telemetry(&log_dir)?;

    eprintln!("starting DynamoDB Local and the SQS emulator...");
    let mut stack = Stack::start(root, options).await?;
    let endpoints = &stack.endpoints;
    std::fs::write(
        Endpoints::path(root),
        serde_json::to_string_pretty(endpoints)?,
    )?;
    let sam_env = catalog_local::sam_env::path(root);
    catalog_local::sam_env::write(&sam_env, endpoints, &container_revalidate_endpoints)?;
    catalog_local::sam_env::write_shell(&catalog_local::sam_env::shell_path(root), endpoints)?;
    println!("catalog-sync is running locally");
    println!("  DynamoDB     {}", endpoints.dynamodb);
    println!("  SQS          {}", endpoints.sqs);
    println!(
        "  listing API  {}/stores/store-1/products",
        endpoints.listing_api
    );
    match &endpoints.storefront {
        Some(url) => println!("  storefront   {url}/stores/store-1"),
        None => println!("  storefront   not started (--storefront runs examples/storefront)"),
    }
    if endpoints.revalidate_endpoints.is_empty() {
        println!("  revalidator  off: no revalidate endpoint, tag messages wait in the tag queue");
    } else {
        println!(
            "  revalidator  -> {}",
            endpoints.revalidate_endpoints.join(", ")
        );
    }
    println!(
        "  tables       {}, {}, {}",
        endpoints.tables.products, endpoints.tables.inventory, endpoints.tables.summaries
    );
    println!("  logs         {}", log_dir.join("stack.log").display());
    println!(
        "  sam local    --env-vars {} (README: Sample events)",
        sam_env.strip_prefix(root).unwrap_or(&sam_env).display()
    );
    println!("  try          cargo run -q -p catalog-local -- stock p-00001 loc-1 7");

    if size.products > 0 {
        let tty = std::io::stderr().is_terminal();
        let mut last_tenth = 0;
        let loaded = demo::load(&stack.dynamodb, &endpoints.tables, size, |done, total| {
            let tenth = done * 10 / total.max(1);
            if tty {
                eprint!("\rloading demo data: {done}/{total} items");
            } else if tenth > last_tenth || done == total {
                eprintln!("loading demo data: {done}/{total} items");
                last_tenth = tenth;
            }
        })
        .await?;
        if tty {
            eprintln!();
        }
        println!(
            "loaded {loaded} items: {} products in {} stores, stock at {} locations",
            size.products, size.stores, size.locations
        );
    }
    println!("ready (Ctrl-C stops)");

    let tty = std::io::stdout().is_terminal();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut last_line = String::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            _ = terminate.recv() => break,
            _ = ticker.tick() => {
                stack.check()?;
                let status = stack.status().await?;
                std::fs::write(status_path(root), serde_json::to_string_pretty(&status)?)?;
                let line = status_line(&status);
                if tty {
                    print!("\r\x1b[2K{line}");
                    std::io::stdout().flush()?;
                } else if line != last_line {
                    println!("{line}");
                }
                last_line = line;
            }
        }
    }
    println!("\nstopping: finishing the batches in hand...");
    let stopped = stack.stop().await;
    let _ = std::fs::remove_file(Endpoints::path(root));
    let _ = std::fs::remove_file(catalog_local::sam_env::path(root));
    let _ = std::fs::remove_file(catalog_local::sam_env::shell_path(root));
    let _ = std::fs::remove_file(status_path(root));
    stopped?;
    println!("stopped. {last_line}");
    Ok(())
}

/// One line: what each trigger did, and what waits in the queues.
fn status_line(status: &Status) -> String {
    let t = |name: &str| status.triggers.get(name).copied().unwrap_or_default();
    let (products, inventory) = (t("ProductsStream"), t("InventoryStream"));
    let q = |name: &str| status.queue_depths.get(name).copied().unwrap_or_default();
    format!(
        "records {} (products {}, inventory {}) | retried batches {} | gave up {} | parked {} | last lag {} ms | tag queue {} | tag messages revalidated {} | reconcile segments {} | api requests {}",
        products.records + inventory.records,
        products.records,
        inventory.records,
        products.retries + inventory.retries,
        products.given_up + inventory.given_up,
        q("ParkedRecordsQueue"),
        products.last_lag_ms.max(inventory.last_lag_ms),
        q("TagQueue"),
        t("Tags").records,
        t("Segments").records,
        t("ListingApi").invocations,
    )
}

/// Summarises the EMF documents of the last (or running) stack, as the dashboard would.
fn metrics(root: &Path, mut args: Args) -> Result<()> {
    let default = catalog_local::services::log_dir(root)?.join("metrics.log");
    let path = args
        .option("--file")?
        .map_or(default, std::path::PathBuf::from);
    args.done()?;
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path:?}: run `catalog-local up` (scripts/dev) first"))?;
    print!("{}", MetricsReport::from_lines(text.lines()));
    Ok(())
}

/// The functions' log lines go to `.local/logs/stack.log` and their EMF documents to
/// `.local/logs/metrics.log`, in the shapes they have on Lambda (stdout there; here stdout is
/// the status screen). `catalog-local metrics` reads the second.
fn init_telemetry(dir: &Path) -> Result<()> {
    let logs = dir.join("stack.log");
    let logs = std::fs::File::create(&logs).with_context(|| format!("creating {logs:?}"))?;
    tracing::subscriber::set_global_default(catalog::telemetry::subscriber(
        std::sync::Mutex::new(logs),
    ))?;
    let metrics = dir.join("metrics.log");
    std::fs::File::create(&metrics).with_context(|| format!("creating {metrics:?}"))?;
    catalog::telemetry::set_metrics_writer(Box::new(append(&metrics)?));
    Ok(())
}

/// `path` opened for appending, so the stack and a CLI command can both write to it.
fn append(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {path:?}"))
}
