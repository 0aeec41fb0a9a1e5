//! Freshness of a storefront page through the whole local pipeline: a write to Products or
//! Inventory, then fetches of the product's page on the example Next.js storefront until it
//! shows the change. Stream poll -> summary-projector -> tag queue -> tag-revalidator ->
//! signed revalidate route -> `revalidateTag` -> the next render. Each latency is split at
//! the moment the summary became visible, so both halves show side by side.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use catalog::ids::ProductId;
use catalog::model::ProductSummary;
use catalog::projection::project;
use catalog::store::{SourceStore, SummaryStore};
use catalog_local::demo::{self, DemoSize, Rng};
use catalog_local::edits::Editor;
use catalog_local::stack::{Options, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Flags;

/// The goal of issue 5: write -> page fresh, p99.
const GOAL_MS: f64 = 600.0;

/// What the storefront's product page shows for `summary` (examples/storefront/lib/catalog.ts).
fn shown(summary: &ProductSummary) -> (String, String) {
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
async fn get(url: &str) -> Result<String> {
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

fn page_shows(html: &str, (price, stock): &(String, String)) -> bool {
    html.contains(&format!("class=\"price\">{price}<"))
        && html.contains(&format!("class=\"stock\">{stock}<"))
}

pub async fn run(flags: &Flags) -> Result<()> {
    let updates: usize = flags.get("updates", 150)?;
    let size = DemoSize {
        products: flags.get("products", 100)?,
        stores: 5,
        locations: 3,
        seed: flags.get("seed", 1)?,
    };
    let stack = Stack::start(
        &catalog_local::workspace_root(),
        Options {
            prefix: "pipeline-".into(),
            storefront: true,
            ..Options::default()
        },
    )
    .await?;
    let tables = stack.endpoints.tables.clone();
    crate::latency::load_and_settle(&stack, size).await?;
    let storefront = stack.endpoints.storefront.clone().context("storefront")?;
    let (products, _) = demo::generate(size)?;
    let tracked: Vec<ProductId> = products
        .iter()
        .filter(|p| p.track_inventory)
        .map(|p| p.product_id.clone())
        .collect();
    // Warm every page into Next.js's cache, as a live store's pages would be.
    for id in &tracked {
        get(&format!("{storefront}/products/{id}")).await?;
    }

    let editor = Editor::new(stack.dynamodb.clone(), tables.clone());
    let sources = SourceStore::new(stack.dynamodb.clone(), &tables);
    let summaries = SummaryStore::new(stack.dynamodb.clone(), tables.summaries.clone());
    let mut rng = Rng::new(size.seed ^ 0xBEEF);
    let (mut total, mut to_summary, mut to_page) = (Vec::new(), Vec::new(), Vec::new());
    let mut stale_reads = 0usize;
    for i in 0..updates {
        tokio::time::sleep(Duration::from_millis(rng.below(250))).await;
        let id = rng.pick(&tracked).clone();
        let url = format!("{storefront}/products/{id}");
        let written = Instant::now();
        crate::latency::write_change(&editor, &mut rng, &id, i, 20_000).await?;
        let product = sources
            .products(std::slice::from_ref(&id))
            .await?
            .remove(&id);
        let expected = project(
            product.transpose()?.flatten().as_ref(),
            &sources.inventory(&id).await?,
        )
        .context("the product has a summary")?;
        let want = shown(&expected);
        let mut summary_at = None;
        loop {
            if summary_at.is_none() {
                let now = summaries.get_card(&id).await?.map(|c| c.summary);
                if now.as_ref() == Some(&expected) {
                    summary_at = Some(Instant::now());
                }
            }
            if page_shows(&get(&url).await?, &want) {
                let fresh = Instant::now();
                let summary_at = summary_at.unwrap_or(fresh);
                total.push(fresh - written);
                to_summary.push(summary_at - written);
                to_page.push(fresh - summary_at);
                break;
            }
            stale_reads += 1;
            if written.elapsed() > Duration::from_secs(10) {
                bail!("update {i} of {id} never reached {url}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let status = stack.status().await?;
    stack.stop().await?;

    println!(
        "pipeline freshness benchmark: {updates} updates (half prices, half stock) to {} products, page fetched until fresh; stream poll 250 ms, tag queue long-polled",
        tracked.len()
    );
    let p99 = crate::latency::print_line("write -> page fresh", &mut total);
    crate::latency::print_line("  write -> summary visible", &mut to_summary);
    crate::latency::print_line("  summary -> page fresh (tags, Next.js)", &mut to_page);
    let t = &status.triggers;
    println!(
        "  p99 {p99:.1} ms = {:.2} of the {GOAL_MS:.0} ms goal ({:.3} of the original 5 s target); stale page reads while waiting {stale_reads}; revalidator retries {}",
        p99 / GOAL_MS,
        p99 / 5000.0,
        t.get("Tags").map(|s| s.retries).unwrap_or_default()
    );
    Ok(())
}
