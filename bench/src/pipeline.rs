//! Freshness of storefront pages through the whole local pipeline: a write to Products or
//! Inventory, then fetches of the product's page and its store's listing page on the example
//! Next.js storefront until both show the change. Stream poll -> summary-projector -> tag
//! queue -> tag-revalidator -> signed revalidate route -> `revalidateTag` -> the next render.
//! Each latency is split at the moment the summary became visible, so both halves show side by
//! side. `--lags 0,1000` runs the same updates once per index lag (the local stack's
//! AWS-consistency mode: the listing index and eventually consistent reads lag each write by
//! half to all of it), one after the other in one run.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use catalog::store::SummaryStore;
use catalog_core::ids::ProductId;
use catalog_core::model::{ProductStatus, ProductSummary};
use catalog_local::dev::demo;
use catalog_local::dev::edits::Editor;
use catalog_local::layers::consistency::AwsConsistency;
use catalog_local::rng::Rng;
use catalog_local::stack::{Delivery, Layer, Options, Stack, Storefront};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Flags;

/// The goal of issue 5: write -> page fresh, p99.
const GOAL_MS: f64 = 600.0;

/// What the storefront's product page shows for `summary` (examples/storefront/lib/catalog.ts).
pub fn shown(summary: &ProductSummary) -> (String, String) {
    let price = format!(
        "${}.{:02}",
        summary.price.get() / 100,
        summary.price.get() % 100
    );
    let stock = match summary.inventory_available {
        None => "Available".to_owned(),
        Some(0) => "Out of stock".to_owned(),
        Some(n) => format!("{n} in stock"),
    };
    (price, stock)
}

/// GET `url` (plain HTTP/1.1); the body of a 200.
pub async fn get(url: &str) -> Result<String> {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').context("url")?;
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).into_owned();
    ensure!(
        text.starts_with("HTTP/1.1 200"),
        "{url}: {}",
        text.lines().next().unwrap_or_default()
    );
    Ok(text)
}

pub fn page_shows(html: &str, (price, stock): &(String, String)) -> bool {
    html.contains(&format!("class=\"price\">{price}<"))
        && html.contains(&format!("class=\"stock\">{stock}<"))
}

/// Whether the store page's card of `id` shows `want`.
fn card_shows(html: &str, id: &ProductId, want: &(String, String)) -> bool {
    let Some(start) = html.find(&format!("data-product-id=\"{id}\"")) else {
        return false;
    };
    let card = &html[start..];
    let card = &card[..card.find("</li>").unwrap_or(card.len())];
    page_shows(card, want)
}

pub async fn run(flags: &Flags) -> Result<()> {
    let lags: String = flags.get("lags", "0".to_owned())?;
    for lag in lags.split(',') {
        let lag = Duration::from_millis(lag.trim().parse().context("--lags: milliseconds")?);
        run_at(flags, lag).await?;
    }
    Ok(())
}

async fn run_at(flags: &Flags, lag: Duration) -> Result<()> {
    let updates: usize = flags.get("updates", 150)?;
    let size = flags.demo_size(100)?;
    let stack = Stack::start(
        &catalog_local::workspace_root(),
        Options {
            prefix: format!("pipeline{}-", lag.as_millis()),
            storefront: Some(Storefront::one(Delivery::Http)),
            layers: (!lag.is_zero())
                .then_some(Layer::AwsConsistency(AwsConsistency {
                    lag,
                    hold: Duration::ZERO,
                    seed: size.seed,
                }))
                .into_iter()
                .collect(),
            ..Options::default()
        },
    )
    .await?;
    let tables = stack.endpoints.tables.catalog.clone();
    crate::latency::load_and_settle(&stack, size).await?;
    let storefront = stack.endpoints.storefront.clone().context("storefront")?;
    let (products, _) = demo::generate(size)?;
    // A product not on sale has no page (404), and no place on its store's listing.
    let tracked: Vec<ProductId> = products
        .iter()
        .filter(|p| {
            p.track_inventory && p.status == ProductStatus::Active && p.deleted_at.is_none()
        })
        .map(|p| p.product_id.clone())
        .collect();
    // Warm every page into Next.js's cache, as a live store's pages would be.
    for id in &tracked {
        get(&format!("{storefront}/products/{id}")).await?;
    }
    // Only products on their store's first page (active, within its 24 cards) are measured.
    let mut listed = Vec::new();
    for id in tracked {
        let store = &products
            .iter()
            .find(|p| p.product_id == id)
            .context("a demo product")?
            .store_id;
        if get(&format!("{storefront}/stores/{store}"))
            .await?
            .contains(&format!("data-product-id=\"{id}\""))
        {
            listed.push(id);
        }
    }
    let tracked = listed;

    let editor = Editor::new(stack.dynamodb.clone(), tables.clone());
    let summaries = SummaryStore::new(stack.dynamodb.clone(), tables.summaries.clone());
    let listings_before = listing_reads(&stack).await?;
    let mut rng = Rng::new(size.seed ^ 0xBEEF);
    let mut figures = Figures::default();
    for i in 0..updates {
        tokio::time::sleep(Duration::from_millis(rng.below(250))).await;
        let id = rng.pick(&tracked).clone();
        let store = &products
            .iter()
            .find(|p| p.product_id == id)
            .context("a demo product")?
            .store_id;
        let product_url = format!("{storefront}/products/{id}");
        let store_url = format!("{storefront}/stores/{store}");
        let written = Instant::now();
        crate::latency::write_change(&editor, &mut rng, &id, i, 20_000).await?;
        let expected = catalog_tests::expected_summary(&stack.dynamodb, &tables, &id)
            .await?
            .context("the product has a summary")?;
        let want = shown(&expected);
        let (mut summary_at, mut product_at, mut store_at) = (None, None, None);
        while product_at.is_none() || store_at.is_none() {
            if summary_at.is_none()
                && summaries
                    .get(&id)
                    .await?
                    .and_then(|s| s.record)
                    .map(|r| r.summary)
                    == Some(expected.clone())
            {
                summary_at = Some(Instant::now());
            }
            if product_at.is_none() && page_shows(&get(&product_url).await?, &want) {
                product_at = Some(Instant::now());
            }
            if store_at.is_none() && card_shows(&get(&store_url).await?, &id, &want) {
                store_at = Some(Instant::now());
            }
            figures.stale_reads += 1;
            if written.elapsed() > Duration::from_secs(15) {
                bail!("update {i} of {id} never reached {product_url} and {store_url}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (product_at, store_at) = (product_at.unwrap(), store_at.unwrap());
        let summary_at = summary_at.unwrap_or(product_at.min(store_at));
        figures.product.push(product_at - written);
        figures.store.push(store_at - written);
        figures.to_summary.push(summary_at - written);
        figures
            .summary_to_store
            .push(store_at.saturating_duration_since(summary_at));
    }
    let status = stack.status().await?;
    let renders = (listing_reads(&stack).await? - listings_before) as f64 / updates as f64;
    stack.stop().await?;

    let t = &status.triggers;
    println!(
        "pipeline freshness benchmark: {updates} updates (half prices, half stock) to {} products, product page and store page fetched until fresh; index lag {} ms (each write's between half and all of it); stream poll 250 ms, tag queue long-polled",
        tracked.len(),
        lag.as_millis()
    );
    let p99 = crate::latency::print_line("write -> product page fresh", &mut figures.product);
    let store_p99 = crate::latency::print_line("write -> store page fresh", &mut figures.store);
    crate::latency::print_line("  write -> summary visible", &mut figures.to_summary);
    crate::latency::print_line(
        "  summary -> store page fresh",
        &mut figures.summary_to_store,
    );
    let ms = lag.as_secs_f64() * 1000.0;
    println!("  store page renders per change (its listing reads from the API): {renders:.2}");
    println!(
        "  above the lag ceiling ({ms:.0} ms): store page p99 +{:.1} ms; product page p99 {p99:.1} ms = {:.2} of the {GOAL_MS:.0} ms goal; store page p99 = {:.3} of the 5 s target; page reads while waiting {}; revalidator retries {}",
        store_p99 - ms,
        p99 / GOAL_MS,
        store_p99 / 5000.0,
        figures.stale_reads,
        t.get("Tags").map(|s| s.retries).unwrap_or_default()
    );
    Ok(())
}

/// Store listing pages the listing API has answered: each is one render of a store page that
/// found its cached fetch revalidated (a render from cache reads nothing).
async fn listing_reads(stack: &Stack) -> Result<u64> {
    let status = stack.status().await?;
    let route = status.triggers.get("ListingApi ListStore");
    Ok(route.context("the ListStore route's counters")?.records)
}

/// Latencies of one run.
#[derive(Default)]
struct Figures {
    product: Vec<Duration>,
    store: Vec<Duration>,
    to_summary: Vec<Duration>,
    summary_to_store: Vec<Duration>,
    stale_reads: usize,
}
