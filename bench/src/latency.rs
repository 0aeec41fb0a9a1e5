//! What the two freshness benchmarks share: loading demo data into a running stack and waiting
//! until it is projected (and revalidated), and printing a latency distribution.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use catalog_core::ids::{LocationId, ProductId};
use catalog_core::model::MinorUnits;
use catalog_local::dev::demo::{self, DemoSize};
use catalog_local::dev::edits::Editor;
use catalog_local::rng::Rng;
use catalog_local::stack::{queue_depth, Stack};

/// Loads the demo catalog of `size` and waits until every record is projected and, when the
/// stack revalidates, the tag queue is empty.
pub async fn load_and_settle(stack: &Stack, size: DemoSize) -> Result<()> {
    let loaded = demo::load(
        &stack.dynamodb,
        &stack.endpoints.tables.catalog,
        size,
        |_, _| {},
    )
    .await? as u64;
    let tag_queue = &stack.endpoints.queues.tag_queue;
    let revalidating = !stack.endpoints.revalidate_endpoints.is_empty();
    let start = Instant::now();
    loop {
        let status = stack.status().await?;
        let done =
            status.triggers["ProductsStream"].records + status.triggers["InventoryStream"].records;
        if done >= loaded && (!revalidating || queue_depth(&stack.sqs, tag_queue).await? == 0) {
            return Ok(());
        }
        ensure!(
            start.elapsed() < Duration::from_secs(120),
            "demo data not settled: {done}/{loaded} records projected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `q` quantile of `samples` in ms (nearest rank; `samples` sorted in place).
pub fn percentile(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort();
    rank(samples, q)
}

/// The `q` quantile of already sorted `samples`, in ms.
fn rank(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0
}

/// Prints `name` and the p50/p95/p99/max of `samples` (sorted in place); returns the p99 in ms.
pub fn print_line(name: &str, samples: &mut [Duration]) -> f64 {
    samples.sort();
    let pct = |q: f64| rank(samples, q);
    println!(
        "  {name:<40} p50 {:>6.1} ms  p95 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
        pct(0.5),
        pct(0.95),
        pct(0.99),
        samples
            .last()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or_default()
    );
    pct(0.99)
}

/// Write number `i` of a run: even ones set `id`'s price to `price_base + i`, odd ones its
/// stock at a random demo location to `1000 + i`, so every write changes the summary.
pub async fn write_change(
    editor: &Editor,
    rng: &mut Rng,
    id: &ProductId,
    i: usize,
    price_base: u64,
) -> Result<()> {
    if i.is_multiple_of(2) {
        editor
            .set_price(id, MinorUnits::new(price_base + i as u64)?)
            .await?;
    } else {
        let location = LocationId::parse(demo::location_id(rng.below(3) as usize))?;
        editor
            .set_stock(id, &location, 1_000 + i as i64, None)
            .await?;
    }
    Ok(())
}
