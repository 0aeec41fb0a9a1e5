//! Freshness through the running local stack: a write to Products or Inventory, then reads of
//! the summary until it shows the change. Each latency is split where the projector is first
//! invoked with the product, so the poll wait and the processing show side by side.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use catalog::store::SummaryStore;
use catalog_core::ids::ProductId;
use catalog_local::dev::demo;
use catalog_local::dev::edits::Editor;
use catalog_local::emulator::function::{Function, Invocation};
use catalog_local::rng::Rng;
use catalog_local::stack::{Options, Stack, Wrap};
use serde_json::Value;

use crate::Flags;

/// The goal of issue 4: write -> summary visible, p99.
const GOAL_MS: f64 = 300.0;

/// The projector, noting when it is first handed each product.
struct Timed {
    inner: Arc<dyn Function>,
    invoked: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Function for Timed {
    fn invoke(&self, event: Value) -> Invocation<'_> {
        let now = Instant::now();
        {
            let mut invoked = self.invoked.lock().expect("not poisoned");
            for record in event["Records"].as_array().into_iter().flatten() {
                if let Some(id) = record["dynamodb"]["Keys"]["productId"]["S"].as_str() {
                    invoked.entry(id.to_owned()).or_insert(now);
                }
            }
        }
        self.inner.invoke(event)
    }
}

pub async fn run(flags: &Flags) -> Result<()> {
    let writes: usize = flags.get("writes", 300)?;
    let poll_ms: u64 = flags.get("poll-ms", 250)?;
    let size = flags.demo_size(200)?;
    let invoked = Arc::new(Mutex::new(HashMap::new()));
    let wrap: Wrap = {
        let invoked = invoked.clone();
        Arc::new(move |inner| {
            Arc::new(Timed {
                inner,
                invoked: invoked.clone(),
            }) as Arc<dyn Function>
        })
    };
    let stack = Stack::start(
        &catalog_local::workspace_root(),
        Options {
            prefix: "fresh-".into(),
            poll_interval: Duration::from_millis(poll_ms),
            wrap_projector: Some(wrap),
            ..Options::default()
        },
    )
    .await?;
    let tables = stack.endpoints.tables.catalog.clone();
    crate::latency::load_and_settle(&stack, size).await?;
    let (products, _) = demo::generate(size)?;
    let tracked: Vec<ProductId> = products
        .iter()
        .filter(|p| p.track_inventory)
        .map(|p| p.product_id.clone())
        .collect();

    let editor = Editor::new(stack.dynamodb.clone(), tables.clone());
    let summaries = SummaryStore::new(stack.dynamodb.clone(), tables.summaries.clone());
    let mut rng = Rng::new(size.seed ^ 0xF00D);
    let mut total = Vec::with_capacity(writes);
    let mut wait = Vec::with_capacity(writes);
    let mut work = Vec::with_capacity(writes);
    let mut max_reads = 0;
    for i in 0..writes {
        // Spread writes over the poll cycle, as real traffic is.
        tokio::time::sleep(Duration::from_millis(rng.below(poll_ms.max(1)))).await;
        let id = rng.pick(&tracked).clone();
        let before = summaries.get_card(&id).await?.map(|c| c.updated_at);
        invoked.lock().expect("not poisoned").remove(id.as_str());
        let written = Instant::now();
        crate::latency::write_change(&editor, &mut rng, &id, i, 10_000).await?;
        let mut reads = 0;
        let visible = loop {
            reads += 1;
            let now = summaries.get_card(&id).await?.map(|c| c.updated_at);
            if now != before {
                break Instant::now();
            }
            ensure!(
                written.elapsed() < Duration::from_secs(10),
                "write {i} to {id} never became visible"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        max_reads = max_reads.max(reads);
        let first_invoked = invoked
            .lock()
            .expect("not poisoned")
            .get(id.as_str())
            .copied()
            .unwrap_or(visible);
        total.push(visible - written);
        wait.push(first_invoked.saturating_duration_since(written));
        work.push(visible.saturating_duration_since(first_invoked));
    }
    let status = stack.status().await?;
    stack.stop().await?;

    println!(
        "freshness benchmark: {writes} writes (half prices, half stock) to {} tracked products through the local stack, poll every {poll_ms} ms",
        tracked.len()
    );
    let p99 = crate::latency::print_line("write -> summary visible", &mut total);
    crate::latency::print_line("  write -> projector invoked (poll)", &mut wait);
    crate::latency::print_line("  invoked -> summary visible (work)", &mut work);
    println!(
        "  p99 {p99:.1} ms = {:.2} of the {GOAL_MS:.0} ms goal ({:.2} of the original 500 ms target); retried batches {}",
        p99 / GOAL_MS,
        p99 / 500.0,
        status.triggers["ProductsStream"].retries + status.triggers["InventoryStream"].retries
    );
    Ok(())
}
