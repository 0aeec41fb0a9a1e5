//! `catalog-local up`: the whole pipeline until Ctrl-C, with a status line each second.

use std::io::{IsTerminal, Write};
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use catalog_local::dev::demo::{self, DemoSize};
use catalog_local::dev::sam_env;
use catalog_local::layers::consistency::AwsConsistency;
use catalog_local::services::docker_bridge;
use catalog_local::services::Listen;
use catalog_local::stack::{Delivery, Endpoints, Layer, Options, Stack, Status, Storefront};

use crate::args::Args;
use crate::{append, status_path};

/// Runs the stack until Ctrl-C or SIGTERM, writing the files the CLI and `sam local` read.
pub async fn up(root: &Path, mut args: Args) -> Result<()> {
    let (size, options) = options(&mut args)?;
    // The routes a `sam local` container may call too (the storefront's is not one of them).
    let container_revalidate_endpoints = options.revalidate_endpoints.clone();
    let tag_table = options.tag_table();
    let log_dir = catalog_local::services::log_dir(root)?;
    init_telemetry(&log_dir)?;

    eprintln!("starting DynamoDB Local and the SQS emulator...");
    let mut stack = Stack::start(root, options).await?;
    let endpoints = &stack.endpoints;
    std::fs::write(
        Endpoints::path(root),
        serde_json::to_string_pretty(endpoints)?,
    )?;
    sam_env::write(
        &sam_env::path(root),
        endpoints,
        &container_revalidate_endpoints,
    )?;
    sam_env::write_shell(&sam_env::shell_path(root), endpoints)?;
    announce(root, endpoints, tag_table, &log_dir);
    if size.products > 0 {
        load_demo(&stack, size).await?;
    }
    println!("ready (Ctrl-C stops)");
    let last_line = watch(&mut stack, root).await?;
    println!("\nstopping: finishing the batches in hand...");
    let stopped = stack.stop().await;
    for file in [
        Endpoints::path(root),
        sam_env::path(root),
        sam_env::shell_path(root),
        status_path(root),
    ] {
        let _ = std::fs::remove_file(file);
    }
    stopped?;
    println!("stopped. {last_line}");
    Ok(())
}

/// The demo data's size and the stack's options, from `up`'s flags.
fn options(args: &mut Args) -> Result<(DemoSize, Options)> {
    let size = DemoSize {
        products: args.parsed("--products", 200)?,
        stores: args.parsed("--stores", 5)?,
        locations: args.parsed("--locations", 3)?,
        seed: args.parsed("--seed", 1)?,
    };
    let storefront = storefront(args)?;
    let mut revalidate_endpoints = Vec::new();
    while let Some(url) = args.option("--revalidate-endpoint")? {
        revalidate_endpoints.push(url);
    }
    let layers = match args.flag("--aws-consistency") {
        false => Vec::new(),
        true => vec![Layer::AwsConsistency(AwsConsistency {
            lag: Duration::from_millis(args.parsed("--lag-ms", 1000)?),
            hold: Duration::from_millis(args.parsed("--hold-ms", 100)?),
            seed: size.seed,
        })],
    };
    let options = Options {
        poll_interval: Duration::from_millis(args.parsed("--poll-ms", 250)?),
        listing_port: args.parsed("--port", 0)?,
        listen: listen_for_containers(),
        storefront,
        revalidate_endpoints,
        layers,
        ..Options::default()
    };
    args.done()?;
    if size.stores == 0 || size.locations == 0 {
        bail!("--stores and --locations must be at least 1");
    }
    Ok((size, options))
}

/// `--storefront [--instances N] [--tag-table | --http | --opennext]`: several instances
/// read the tag table unless `--http` says otherwise; one calls its revalidate route unless
/// `--tag-table`; `--opennext` runs OpenNext's build, which reads the tag table.
fn storefront(args: &mut Args) -> Result<Option<Storefront>> {
    let (on, table, http, opennext) = (
        args.flag("--storefront"),
        args.flag("--tag-table"),
        args.flag("--http"),
        args.flag("--opennext"),
    );
    let instances: usize = args.parsed("--instances", 1)?;
    if !on {
        if table || http || opennext || instances != 1 {
            bail!("--instances, --tag-table, --http and --opennext are options of --storefront");
        }
        return Ok(None);
    }
    let instances = NonZeroUsize::new(instances)
        .filter(|n| n.get() <= 16)
        .ok_or_else(|| anyhow::anyhow!("--instances must be 1 to 16"))?;
    let delivery = match (table, http) {
        _ if opennext && (table || http) => {
            bail!("--opennext reads the tag table: no --tag-table or --http")
        }
        _ if opennext => Delivery::OpenNext,
        (true, true) => bail!("--tag-table and --http exclude each other"),
        (true, false) => Delivery::TagTable,
        (false, true) => Delivery::Http,
        (false, false) if instances.get() > 1 => Delivery::TagTable,
        (false, false) => Delivery::Http,
    };
    Ok(Some(Storefront {
        instances,
        delivery,
    }))
}

/// Loopback, and the Docker bridge so that `sam local` containers reach the emulators
/// (.local/sam-env.json); loopback alone, with a warning, where Docker is not running.
fn listen_for_containers() -> Listen {
    match docker_bridge::address() {
        Ok(bridge) => Listen::LoopbackAnd(bridge),
        Err(error) => {
            eprintln!("warning: sam local containers will not reach this stack: {error:#}");
            Listen::Loopback
        }
    }
}

/// Where everything is.
fn announce(root: &Path, endpoints: &Endpoints, tag_table: bool, log_dir: &Path) {
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
    if !endpoints.storefront_instances.is_empty() {
        let instances = endpoints.storefront_instances.join(", ");
        println!("  instances    {instances} (round-robin behind the storefront URL)");
    }
    if tag_table {
        println!(
            "  revalidator  -> tag table {} (storefront {:?}){}",
            endpoints.tables.tags,
            catalog_local::storefront::LOCAL_STOREFRONT,
            if endpoints.revalidate_endpoints.is_empty() {
                String::new()
            } else {
                format!(" and {}", endpoints.revalidate_endpoints.join(", "))
            }
        );
    } else if endpoints.revalidate_endpoints.is_empty() {
        println!("  revalidator  off: no revalidate endpoint, tag messages wait in the tag queue");
    } else {
        println!(
            "  revalidator  -> {}",
            endpoints.revalidate_endpoints.join(", ")
        );
    }
    let tables = &endpoints.tables.catalog;
    println!(
        "  tables       {}, {}, {}",
        tables.products, tables.inventory, tables.summaries
    );
    println!("  logs         {}", log_dir.join("stack.log").display());
    let sam_env = sam_env::path(root);
    println!(
        "  sam local    --env-vars {} (README: Sample events)",
        sam_env.strip_prefix(root).unwrap_or(&sam_env).display()
    );
    println!("  try          cargo run -q -p catalog-local -- stock p-00001 loc-1 7");
}

/// Loads the demo catalog, showing progress (a line per tenth when not on a terminal).
async fn load_demo(stack: &Stack, size: DemoSize) -> Result<()> {
    let tty = std::io::stderr().is_terminal();
    let mut last_tenth = 0;
    let tables = &stack.endpoints.tables.catalog;
    let loaded = demo::load(&stack.dynamodb, tables, size, |done, total| {
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
    Ok(())
}

/// Shows the status line each second (and writes `.local/status.json`) until Ctrl-C or
/// SIGTERM; returns the last line.
async fn watch(stack: &mut Stack, root: &Path) -> Result<String> {
    let tty = std::io::stdout().is_terminal();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut last_line = String::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(last_line),
            _ = terminate.recv() => return Ok(last_line),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &str) -> Result<Option<Storefront>> {
        let mut args = Args(words.split_whitespace().map(str::to_owned).collect());
        let storefront = storefront(&mut args)?;
        args.done()?;
        Ok(storefront)
    }

    #[test]
    fn storefront_flags_build_only_storefronts_that_can_run() {
        let one = |delivery| Some(Some(Storefront::one(delivery)));
        assert_eq!(parse("").ok(), Some(None));
        assert_eq!(parse("--storefront").ok(), one(Delivery::Http));
        assert_eq!(
            parse("--storefront --tag-table").ok(),
            one(Delivery::TagTable)
        );
        let fleet = parse("--storefront --instances 3").unwrap().unwrap();
        assert_eq!(
            (fleet.instances.get(), fleet.delivery),
            (3, Delivery::TagTable)
        );
        let over_http = parse("--storefront --instances 3 --http").unwrap().unwrap();
        assert_eq!(over_http.delivery, Delivery::Http);
        assert_eq!(
            parse("--storefront --opennext").ok(),
            one(Delivery::OpenNext)
        );
        for nonsense in [
            "--tag-table",
            "--instances 3",
            "--http",
            "--storefront --instances 0",
            "--storefront --instances 17",
            "--storefront --tag-table --http",
            "--opennext",
            "--storefront --opennext --http",
            "--storefront --opennext --tag-table",
        ] {
            assert!(parse(nonsense).is_err(), "{nonsense} was accepted");
        }
    }
}
