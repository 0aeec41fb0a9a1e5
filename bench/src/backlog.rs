//! Catching up a backlog through the local stack: the projector is held (an outage) while
//! changes are written through the streams, then let go; the time from then until every
//! changed product's summary equals the projection of its final rows, until the storefront's
//! page of every one of them shows it, and until every record of the backlog has been handed
//! to the projector.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use catalog::store::SummaryStore;
use catalog_core::ids::ProductId;
use catalog_core::model::{ProductStatus, ProductSummary};
use catalog_local::dev::demo::{self, DemoSize};
use catalog_local::dev::edits::Editor;
use catalog_local::emulator::function::{Function, Invocation};
use catalog_local::rng::Rng;
use catalog_local::stack::{Delivery, Options, Stack, Status, Storefront, Wrap};
use catalog_tests::Inspect;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;
use tokio::sync::watch;

use crate::pipeline::{get, page_shows, shown};
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
        storefront: Some(Storefront::one(Delivery::Http)),
        ..Options::default()
    };
    let stack = Stack::start(&catalog_local::workspace_root(), options).await?;
    crate::latency::load_and_settle(&stack, size).await?;
    let pages = Pages::warm(&stack, size).await?;
    let before = stack.status().await?;

    eprintln!("projector held; writing {writes} changes...");
    release.send_replace(false);
    let (changed, wrote) = write_backlog(&stack, size, writes).await?;
    let last_write = Instant::now();
    let expected = expected(&stack, &changed).await?;

    eprintln!(
        "projector let go; waiting for {} summaries and their pages...",
        changed.len()
    );
    let released = Instant::now();
    release.send_replace(true);
    let drained = async {
        let status = drain(&stack, records(&before) + writes as u64).await?;
        Ok::<_, anyhow::Error>((status, released.elapsed()))
    };
    let (summaries, last_page, (status, drained)) = tokio::try_join!(
        settle(&stack, &expected),
        pages.fresh(&expected, released),
        drained
    )?;
    stack.stop().await?;

    println!("backlog benchmark: {writes} changes (half prices, half stock) to {} products through the local stack and one storefront, written in {:.1} s with the projector held; let go {:.2} s after the last write", changed.len(), wrote.as_secs_f64(), (released - last_write).as_secs_f64());
    println!(
        "  let go -> every summary fresh: {:.2} s | -> the last of {} product pages fresh: {:.2} s (stale pages read round after round, {} at a time: {} reads, the last round {:.2} s) | -> all {writes} records handed over: {:.2} s, {:.0} records/s | retried batches {}",
        summaries.as_secs_f64(),
        last_page.pages,
        last_page.at.as_secs_f64(),
        Pages::AT_ONCE,
        last_page.reads,
        last_page.round.as_secs_f64(),
        drained.as_secs_f64(),
        writes as f64 / drained.as_secs_f64(),
        status.triggers["ProductsStream"].retries + status.triggers["InventoryStream"].retries
    );
    Ok(())
}

/// The storefront's product page of every product the backlog may change that has one (active,
/// not deleted), each read once beforehand so Next.js holds it cached, as a live store would.
struct Pages {
    storefront: String,
    ids: Vec<ProductId>,
}

/// When the last page showed its product's final summary: at most `round` after it became
/// fresh.
struct LastPage {
    at: Duration,
    pages: usize,
    reads: usize,
    round: Duration,
}

impl Pages {
    /// Pages read at once while waiting: enough to go round in well under a second, few enough
    /// to leave the storefront's two cores to rendering.
    const AT_ONCE: usize = 8;

    async fn warm(stack: &Stack, size: DemoSize) -> Result<Self> {
        let storefront = stack.endpoints.storefront.clone().context("storefront")?;
        let (products, _) = demo::generate(size)?;
        let ids: Vec<ProductId> = products
            .iter()
            .filter(|p| {
                p.track_inventory && p.status == ProductStatus::Active && p.deleted_at.is_none()
            })
            .map(|p| p.product_id.clone())
            .collect();
        for id in &ids {
            get(&format!("{storefront}/products/{id}")).await?;
        }
        Ok(Self { storefront, ids })
    }

    /// Reads the pages of the changed products, `AT_ONCE` at a time and round after round,
    /// until each has shown its expected summary once; how long after `started` the last did.
    async fn fresh(
        &self,
        expected: &BTreeMap<ProductId, Option<ProductSummary>>,
        started: Instant,
    ) -> Result<LastPage> {
        let storefront = self.storefront.as_str();
        let mut waiting: Vec<(&ProductId, (String, String))> = self
            .ids
            .iter()
            .filter_map(|id| expected.get(id)?.as_ref().map(|s| (id, shown(s))))
            .collect();
        let (pages, mut reads, mut round) = (waiting.len(), 0, Duration::ZERO);
        while !waiting.is_empty() {
            let this_round = Instant::now();
            ensure!(
                started.elapsed() < Duration::from_secs(600),
                "{} pages still stale after 10 minutes",
                waiting.len()
            );
            let read = stream::iter(&waiting)
                .map(|(id, want)| async move {
                    let html = get(&format!("{storefront}/products/{id}")).await?;
                    Ok::<_, anyhow::Error>(page_shows(&html, want))
                })
                .buffered(Self::AT_ONCE)
                .try_collect::<Vec<bool>>()
                .await?;
            reads += read.len();
            let mut read = read.into_iter();
            waiting.retain(|_| !read.next().unwrap_or(false));
            round = this_round.elapsed();
        }
        Ok(LastPage {
            at: started.elapsed(),
            pages,
            reads,
            round,
        })
    }
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
