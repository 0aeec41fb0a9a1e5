//! The commands that poke at the running stack, each against the endpoints it wrote to
//! `.local/stack.json`.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use catalog::store::SummaryStore;
use catalog_core::ids::{LocationId, ProductId, StoreId};
use catalog_core::model::{Image, MinorUnits, Product, ProductStatus};
use catalog_core::tags::StockTagPolicy;
use catalog_local::dev::edits::Editor;
use catalog_local::dev::metrics_report::MetricsReport;
use catalog_local::stack::{Endpoints, RECONCILE_SEGMENTS};

use crate::args::{Args, USAGE};
use crate::{append, status_path};

/// What every command works with: the running stack and clients for it.
struct Session {
    root: std::path::PathBuf,
    endpoints: Endpoints,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    editor: Editor,
}

/// Runs `command` against the running stack.
pub async fn run(root: &Path, command: &str, mut args: Args) -> Result<()> {
    // `reconcile` runs the reconciler here: its metrics join the stack's, not this stdout.
    let log_dir = catalog_local::services::log_dir(root)?;
    catalog::telemetry::set_metrics_writer(Box::new(append(&log_dir.join("metrics.log"))?));
    let endpoints = Endpoints::read(root)?;
    let (dynamodb, sqs) = endpoints.clients().await;
    let cx = Session {
        root: root.to_owned(),
        editor: Editor::new(dynamodb.clone(), endpoints.tables.catalog.clone()),
        endpoints,
        dynamodb,
        sqs,
    };
    let args = &mut args;
    match command {
        "product" => product(&cx, args).await,
        "price" => price(&cx, args).await,
        "stock" => stock(&cx, args).await,
        "archive" => set_status(&cx, args, ProductStatus::Archived).await,
        "unarchive" => set_status(&cx, args, ProductStatus::Active).await,
        "delete" => delete(&cx, args).await,
        "summary" => summary(&cx, args).await,
        "revalidate" => revalidate(&cx, args).await,
        "list" => list(&cx, args).await,
        "reconcile" => reconcile(&cx, args).await,
        "redrive" => redrive(&cx, args).await,
        "status" => status(&cx, args),
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

fn product_id(args: &mut Args) -> Result<ProductId> {
    Ok(ProductId::parse(&args.positional("product id")?)?)
}

async fn product(cx: &Session, args: &mut Args) -> Result<()> {
    let product_id = product_id(args)?;
    let store = args.option("--store")?.context("--store is required")?;
    let title = args.option("--title")?.context("--title is required")?;
    let price: u64 = args.parsed("--price", 0)?;
    let draft = args.flag("--draft");
    args.done()?;
    let product = Product {
        images: vec![Image {
            url: format!("/images/{product_id}.svg"),
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
        // Left out, so the summary takes the time it is first projected.
        created_at: None,
        version: 1,
    };
    print_json(&cx.editor.put_product(product).await?)
}

async fn price(cx: &Session, args: &mut Args) -> Result<()> {
    let product_id = product_id(args)?;
    let price: u64 = args
        .positional("price in minor units")?
        .parse()
        .context("the price is a whole number of minor units, e.g. 1999")?;
    args.done()?;
    let price = MinorUnits::new(price)?;
    print_json(&cx.editor.set_price(&product_id, price).await?)
}

async fn stock(cx: &Session, args: &mut Args) -> Result<()> {
    let product_id = product_id(args)?;
    let location = LocationId::parse(&args.positional("location id")?)?;
    let on_hand: i64 = args
        .positional("units on hand")?
        .parse()
        .context("units on hand is a whole number")?;
    let reserved = args.option("--reserved")?.map(|r| r.parse()).transpose()?;
    args.done()?;
    let row = cx
        .editor
        .set_stock(&product_id, &location, on_hand, reserved)
        .await?;
    print_json(&row)
}

async fn set_status(cx: &Session, args: &mut Args, status: ProductStatus) -> Result<()> {
    let product_id = product_id(args)?;
    args.done()?;
    print_json(&cx.editor.set_status(&product_id, status).await?)
}

async fn delete(cx: &Session, args: &mut Args) -> Result<()> {
    let product_id = product_id(args)?;
    args.done()?;
    cx.editor.delete_product(&product_id).await?;
    println!("deleted {product_id}");
    Ok(())
}

async fn summary(cx: &Session, args: &mut Args) -> Result<()> {
    let product_id = product_id(args)?;
    args.done()?;
    let summaries = &cx.endpoints.tables.catalog.summaries;
    let store = SummaryStore::new(cx.dynamodb.clone(), summaries.clone());
    match store.get_card(&product_id).await? {
        Some(card) => print_json(&card),
        None => bail!("no summary for {product_id} (yet)"),
    }
}

async fn revalidate(cx: &Session, args: &mut Args) -> Result<()> {
    let product_id = product_id(args)?;
    args.done()?;
    let path = format!("/admin/products/{product_id}/revalidate");
    println!("{}", http("POST", &cx.endpoints.listing_api, &path).await?);
    Ok(())
}

async fn list(cx: &Session, args: &mut Args) -> Result<()> {
    let store = StoreId::parse(&args.positional("store id")?)?;
    let limit: usize = args.parsed("--limit", 24)?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &limit.to_string());
    for (option, name) in [
        ("--sort", "sort"),
        ("--min-price", "minPrice"),
        ("--max-price", "maxPrice"),
        ("--cursor", "cursor"),
    ] {
        if let Some(value) = args.option(option)? {
            query.append_pair(name, &value);
        }
    }
    if args.flag("--in-stock") {
        query.append_pair("inStock", "true");
    }
    args.done()?;
    // The listing API checks the combination and answers a bad one with its 400 and code.
    let path = format!("/stores/{store}/products?{}", query.finish());
    println!("{}", http("GET", &cx.endpoints.listing_api, &path).await?);
    Ok(())
}

/// Starts a run as the schedule would; the running stack's queue trigger runs its segments.
async fn reconcile(cx: &Session, args: &mut Args) -> Result<()> {
    let mut detail = serde_json::json!({"dryRun": args.flag("--dry-run")});
    if let Some(store) = args.option("--store")? {
        detail["storeId"] = store.into();
    }
    args.done()?;
    let config = cx
        .endpoints
        .resources()
        .reconciler_config(StockTagPolicy::Eager, RECONCILE_SEGMENTS)?;
    let reconciler = reconciler::Reconciler::new(&config, cx.dynamodb.clone(), cx.sqs.clone());
    let event = serde_json::json!({"detail-type": "Scheduled Event", "source": "catalog-sync.local", "detail": detail});
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    print_json(&reconciler.handle(event, deadline).await?)?;
    println!("the running stack runs its segments; see `status` and .local/logs/stack.log for the report");
    Ok(())
}

/// Moves a dead-letter queue's messages back to the queue that dead-letters to it.
async fn redrive(cx: &Session, args: &mut Args) -> Result<()> {
    let dead = match args.0.first() {
        Some(_) => args.positional("queue")?,
        None => "TagDeadLetterQueue".to_owned(),
    };
    args.done()?;
    let template = catalog_local::template::Template::load(&cx.root)?;
    let source = template
        .queues
        .iter()
        .find(|q| {
            q.redrive
                .as_ref()
                .is_some_and(|(target, _)| *target == dead)
        })
        .with_context(|| format!("no queue of template.yaml dead-letters to {dead}"))?;
    let queues = &cx.endpoints.queues;
    let (from, to) = (queues.url(&dead)?, queues.url(&source.logical_id)?);
    let moved = catalog_local::dev::redrive::redrive(&cx.sqs, from, to).await?;
    println!(
        "moved {moved} messages from {dead} back to {}",
        source.logical_id
    );
    Ok(())
}

fn status(cx: &Session, args: &mut Args) -> Result<()> {
    args.done()?;
    let path = status_path(&cx.root);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{path:?} is missing: is the stack running?"))?;
    println!("{text}");
    Ok(())
}

/// Summarises the EMF documents of the last (or running) stack, as the dashboard would.
pub fn metrics(root: &Path, mut args: Args) -> Result<()> {
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

/// `revalidate-key <audience>`: the key a storefront verifies its calls with, from the
/// revalidate secret on stdin (so it is in no shell history or process list).
pub fn revalidate_key(mut args: Args) -> Result<()> {
    use tag_revalidator::signature::{check_secret, valid_audience, AudienceKey};
    let audience = args.positional("the storefront's revalidate URL")?;
    args.done()?;
    if !valid_audience(&audience) || !audience.starts_with("https://") {
        bail!("{audience:?} is not an https URL of printable ASCII");
    }
    let mut secret = String::new();
    std::io::stdin().read_line(&mut secret)?;
    let secret = secret.trim_end_matches(['\r', '\n']);
    check_secret(secret.as_bytes())?;
    println!(
        "{}",
        AudienceKey::derive(secret.as_bytes(), &audience).to_hex()
    );
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
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
