//! What the two freshness benchmarks share: loading demo data into a running stack and waiting
//! until it is projected (and revalidated), and printing a latency distribution.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use catalog_local::demo::{self, DemoSize};
use catalog_local::stack::{queue_depth, Stack};

/// Loads the demo catalog of `size` and waits until every record is projected and, when the
/// stack revalidates, the tag queue is empty.
pub async fn load_and_settle(stack: &Stack, size: DemoSize) -> Result<()> {
    let loaded =
        demo::load(&stack.dynamodb, &stack.endpoints.tables, size, |_, _| {}).await? as u64;
    let tag_queue = &stack.endpoints.queues["TagQueue"];
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

/// Prints `name` and the p50/p95/p99/max of `samples` (sorted in place); returns the p99 in ms.
pub fn print_line(name: &str, samples: &mut [Duration]) -> f64 {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |q: f64| ms(samples[((samples.len() as f64 - 1.0) * q).round() as usize]);
    println!(
        "  {name:<40} p50 {:>6.1} ms  p95 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
        pct(0.5),
        pct(0.95),
        pct(0.99),
        samples.last().map(|d| ms(*d)).unwrap_or_default()
    );
    pct(0.99)
}
