//! Catching up a backlog through the local stack: the projector is held (an outage) while
//! changes are written through the streams, then let go; the time from then until every
//! changed product's summary equals the projection of its final rows, and until every record
//! of the backlog has been handed to the projector.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use catalog::store::SummaryStore;
use catalog_core::ids::ProductId;
use catalog_core::model::ProductSummary;
use catalog_local::dev::demo::{self, DemoSize};
use catalog_local::dev::edits::Editor;
use catalog_local::emulator::function::{Function, Invocation};
use catalog_local::rng::Rng;
use catalog_local::stack::{Options, Stack, Status, Wrap};
use catalog_tests::Inspect;
use serde_json::Value;
use tokio::sync::watch;

use crate::Flags;

/// The projector, waiting until the outage ends.
struct Held {
    inner: Arc<dyn Function>,
    open: watch::Receiver<bool>,
}

impl Function for Held {
    fn invoke(&self, event: Value) -> Invocation<'_> {
        let mut open = self.open.clone();
        Box::pin(async move {
            // The sender lives as long as the stack; a closed channel only ends the wait.
            let _ = open.wait_for(|open| *open).await;
            self.inner.invoke(event).await
        })
    }
}

pub async fn run(flags: &Flags) -> Result<()> {
    let writes: usize = flags.get("writes", 10_000)?;
    let size = flags.demo_size(200)?;
    let (release, open) = watch::channel(true);
    let wrap: Wrap = Arc::new(move |inner| {
        let open = open.clone();
        Arc::new(Held { inner, open }) as Arc<dyn Function>
    });
    let options = Options {
        prefix: "backlog-".into(),
        wrap_projector: Some(wrap),
        ..Options::default()
    };
    let stack = Stack::start(&catalog_local::workspace_root(), options).await?;
    crate::latency::load_and_settle(&stack, size).await?;
    let before = stack.status().await?;

    eprintln!("projector held; writing {writes} changes...");
    release.send_replace(false);
    let (changed, wrote) = write_backlog(&stack, size, writes).await?;
    let expected = expected(&stack, &changed).await?;

    eprintln!(
        "projector let go; waiting for {} summaries...",
        changed.len()
    );
    let released = Instant::now();
    release.send_replace(true);
    let fresh = settle(&stack, &expected).await?;
    let status = drain(&stack, records(&before) + writes as u64).await?;
    let drained = released.elapsed();
    stack.stop().await?;

    println!("backlog benchmark: {writes} changes (half prices, half stock) to {} products through the local stack, written in {:.1} s with the projector held", changed.len(), wrote.as_secs_f64());
    println!(
        "  let go -> every summary fresh: {:.2} s | let go -> all {writes} records handed over: {:.2} s, {:.0} records/s | retried batches {}",
        fresh.as_secs_f64(),
        drained.as_secs_f64(),
        writes as f64 / drained.as_secs_f64(),
        status.triggers["ProductsStream"].retries + status.triggers["InventoryStream"].retries
    );
    Ok(())
}

/// Stream records both mappings have handed to the projector so far.
fn records(status: &Status) -> u64 {
    status.triggers["ProductsStream"].records + status.triggers["InventoryStream"].records
}

/// Waits until the mappings have handed over `goal` records in all.
async fn drain(stack: &Stack, goal: u64) -> Result<Status> {
    let started = Instant::now();
    loop {
        let status = stack.status().await?;
        if records(&status) >= goal {
            return Ok(status);
        }
        ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{} of {goal} records handed over after 10 minutes",
            records(&status)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes `writes` changes to random tracked products; the products changed, and how long
/// the writes took.
async fn write_backlog(
    stack: &Stack,
    size: DemoSize,
    writes: usize,
) -> Result<(Vec<ProductId>, Duration)> {
    let (products, _) = demo::generate(size)?;
    let tracked: Vec<ProductId> = products
        .iter()
        .filter(|p| p.track_inventory)
        .map(|p| p.product_id.clone())
        .collect();
    let editor = Editor::new(
        stack.dynamodb.clone(),
        stack.endpoints.tables.catalog.clone(),
    );
    let mut rng = Rng::new(size.seed ^ 0xBAC);
    let mut changed = std::collections::BTreeSet::new();
    let started = Instant::now();
    for i in 0..writes {
        let id = rng.pick(&tracked).clone();
        crate::latency::write_change(&editor, &mut rng, &id, i, 10_000).await?;
        changed.insert(id);
    }
    Ok((changed.into_iter().collect(), started.elapsed()))
}

/// The projection of each changed product's final rows.
async fn expected(
    stack: &Stack,
    changed: &[ProductId],
) -> Result<BTreeMap<ProductId, Option<ProductSummary>>> {
    let mut expected = BTreeMap::new();
    for id in changed {
        expected.insert(id.clone(), stack.expected(id.as_str()).await?);
    }
    Ok(expected)
}

/// Reads the changed summaries (one consistent BatchGetItem per 100) every 20 ms until all
/// equal `expected`; how long that took.
async fn settle(
    stack: &Stack,
    expected: &BTreeMap<ProductId, Option<ProductSummary>>,
) -> Result<Duration> {
    let summaries = SummaryStore::new(
        stack.dynamodb.clone(),
        &stack.endpoints.tables.catalog.summaries,
    );
    let ids: Vec<ProductId> = expected.keys().cloned().collect();
    let started = Instant::now();
    loop {
        let stored = summaries.get_many(&ids).await?;
        let fresh = ids.iter().all(|id| {
            let live = stored
                .get(id)
                .and_then(|s| s.as_ref().ok())
                .and_then(Option::as_ref);
            let live = live.and_then(|s| s.record.as_ref()).map(|r| &r.summary);
            live == expected[id].as_ref()
        });
        if fresh {
            return Ok(started.elapsed());
        }
        ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the backlog did not drain in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
