//! Chaos: thousands of random catalog operations through the local stack while faults are
//! injected everywhere, then the claim "nothing is lost and nothing stale survives", checked.
//!
//! Faults: stream batches duplicated, old batches replayed, batches delayed (so the two tables'
//! records arrive in adversarial relative orders), concurrent invocations for the same
//! records, a share of the functions' DynamoDB calls throttled, AWS's weaker consistency (the
//! listing index and eventually consistent reads lag every write by 5-10 s, far past what
//! AWS describes as usual, summary writes are held up to 200 ms), and the revalidate endpoint
//! answering 5xx, 429 with Retry-After, too slowly (timeouts), or not at all for a while.
//! After the drain, a paced tail of writes measures how long any page stays stale after the
//! last write to its product, and past the moment the index showed that write (< 5 s).
//! Oracles: the source rows themselves (every summary must equal their projection), a
//! reconciler dry run, and the stand-in storefront's page cache, which works as Next.js's
//! does (each page cached with its tags, refetched when a tag is revalidated): at the end no
//! page may differ from what the listing API serves. An in-memory model of the rows, with the
//! pure `project` and `tags` of shared/, counts the tags whose content changed.
//!
//! Seeded and reproducible: `CHAOS_SEED` (default 7), `CHAOS_OPS` (default 3000 in CI; the
//! figures in docs/RELIABILITY.md are from 10000).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use catalog::store::SummaryStore;
use catalog_core::ids::{LocationId, ProductId, StoreId};
use catalog_core::messages::ParkedRecord;
use catalog_core::model::{
    Image, InventoryRow, MinorUnits, Product, ProductStatus, ProductSummary,
};
use catalog_core::projection::project;
use catalog_core::reconcile::Report;
use catalog_core::tags::{tags, StockTagPolicy};
use catalog_local::dev::edits::Editor;
use catalog_local::emulator::function::{Function, Invocation};
use catalog_local::emulator::stats::Snapshot;
use catalog_local::layers::consistency::AwsConsistency;
use catalog_local::layers::faults::Throttling;
use catalog_local::rng::Rng;
use catalog_local::stack::{queue_depth, Layer, Options, Stack, Wrap};
use catalog_tests::eventually::within;
use catalog_tests::storefront_stub::{Chaos, StorefrontStub};
use catalog_tests::Inspect;
use serde_json::Value;

/// Prints to stderr, which the test harness does not capture: the figures show in CI's log.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

const PRODUCTS: usize = 200;
const STORES: usize = 5;
const LOCATIONS: usize = 3;
const WRITERS: usize = 4;
const POISON: usize = 5;
const SECRET: &str = "chaos-revalidate-secret-of-32-bytes";

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The projector, with stream-side faults while `on`.
struct ChaosProjector {
    inner: Arc<dyn Function>,
    on: Arc<AtomicBool>,
    rng: Mutex<Rng>,
    history: Mutex<VecDeque<Value>>,
    injected: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl ChaosProjector {
    fn count(&self, kind: &'static str) {
        *self.injected.lock().unwrap().entry(kind).or_default() += 1;
    }
}

impl Function for ChaosProjector {
    fn invoke(&self, event: Value) -> Invocation<'_> {
        Box::pin(async move {
            if !self.on.load(Ordering::SeqCst) {
                return self.inner.invoke(event).await;
            }
            let roll = self.rng.lock().unwrap().below(100);
            let old = {
                let mut history = self.history.lock().unwrap();
                history.push_back(event.clone());
                if history.len() > 50 {
                    history.pop_front();
                }
                let i = self.rng.lock().unwrap().below(history.len() as u64) as usize;
                history[i].clone()
            };
            match roll {
                0..=14 => {
                    self.count("stream batch duplicated");
                    let _ = self.inner.invoke(event.clone()).await;
                    self.inner.invoke(event).await
                }
                15..=24 => {
                    self.count("old stream batch replayed");
                    let _ = self.inner.invoke(old).await;
                    self.inner.invoke(event).await
                }
                25..=34 => {
                    self.count("concurrent invocation of a batch");
                    let (first, _) =
                        futures::join!(self.inner.invoke(event.clone()), self.inner.invoke(event));
                    first
                }
                35..=54 => {
                    self.count("stream batch delayed (table order)");
                    let wait = self.rng.lock().unwrap().below(400);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    self.inner.invoke(event).await
                }
                _ => self.inner.invoke(event).await,
            }
        })
    }
}

/// The rows the test wrote, and when each tag last changed content.
#[derive(Default)]
struct Model {
    products: HashMap<ProductId, Product>,
    stock: HashMap<ProductId, Vec<InventoryRow>>,
    deleted: std::collections::HashSet<ProductId>,
    last_change: HashMap<String, Instant>,
    ops: BTreeMap<&'static str, u64>,
}

impl Model {
    fn summary(&self, id: &ProductId) -> Option<ProductSummary> {
        project(
            self.products.get(id),
            self.stock.get(id).map(Vec::as_slice).unwrap_or_default(),
        )
    }

    fn set_stock(&mut self, row: InventoryRow) {
        let rows = self.stock.entry(row.product_id.clone()).or_default();
        rows.retain(|r| r.location_id != row.location_id);
        rows.push(row);
    }
}

fn new_product(rng: &mut Rng, id: &ProductId) -> Result<Product> {
    Ok(Product {
        product_id: id.clone(),
        store_id: StoreId::parse(format!("store-{}", rng.below(STORES as u64) + 1))?,
        name: format!("Chaos {id} {}", rng.below(1000)),
        slug: id.to_string(),
        price: MinorUnits::new(100 + rng.below(100_000))?,
        status: ProductStatus::Active,
        deleted_at: None,
        images: vec![Image {
            url: format!("/images/{id}.svg"),
            position: 0,
        }],
        thumbnail_url: None,
        track_inventory: !rng.chance(10),
        // None: the summary's creation time is its first write's, which must survive retries.
        created_at: None,
        version: 1,
    })
}

/// One writer: `ops` operations on its own products (so the model's order is the tables').
async fn writer(
    editor: Editor,
    model: Arc<Mutex<Model>>,
    products: Vec<ProductId>,
    ops: u64,
    seed: u64,
) -> Result<()> {
    let mut rng = Rng::new(seed);
    for _ in 0..ops {
        // Spread the writes over many stream polls, so faults hit many batches.
        tokio::time::sleep(Duration::from_millis(rng.below(8))).await;
        let id = rng.pick(&products).clone();
        let (before, current) = {
            let m = model.lock().unwrap();
            (m.summary(&id), m.products.get(&id).cloned())
        };
        let kind: &'static str;
        match current {
            None => {
                let product = new_product(&mut rng, &id)?;
                let recreate = model.lock().unwrap().deleted.contains(&id);
                kind = if recreate { "re-create" } else { "create" };
                let written = editor.put_product(product).await?;
                model.lock().unwrap().products.insert(id.clone(), written);
            }
            Some(product) => {
                let roll = rng.below(100);
                if roll < 30 {
                    kind = "price change";
                    let price = MinorUnits::new(100 + rng.below(100_000))?;
                    let written = editor.set_price(&id, price).await?;
                    model.lock().unwrap().products.insert(id.clone(), written);
                } else if roll < 65 {
                    kind = "stock adjustment";
                    let location =
                        LocationId::parse(format!("loc-{}", rng.below(LOCATIONS as u64) + 1))?;
                    let on_hand = rng.below(50) as i64 - 5;
                    let reserved = Some(rng.below(4) as i64);
                    let row = editor.set_stock(&id, &location, on_hand, reserved).await?;
                    model.lock().unwrap().set_stock(row);
                } else if roll < 75 {
                    let status = if product.status == ProductStatus::Active {
                        kind = "archive";
                        ProductStatus::Archived
                    } else {
                        kind = "un-archive";
                        ProductStatus::Active
                    };
                    let written = editor.set_status(&id, status).await?;
                    model.lock().unwrap().products.insert(id.clone(), written);
                } else if roll < 85 {
                    kind = "store move";
                    let mut moved = product.clone();
                    moved.store_id =
                        StoreId::parse(format!("store-{}", rng.below(STORES as u64) + 1))?;
                    let written = editor.put_product(moved).await?;
                    model.lock().unwrap().products.insert(id.clone(), written);
                } else {
                    kind = "delete";
                    editor.delete_product(&id).await?;
                    let mut m = model.lock().unwrap();
                    m.products.remove(&id);
                    m.deleted.insert(id.clone());
                }
            }
        }
        let done = Instant::now();
        let mut m = model.lock().unwrap();
        let after = m.summary(&id);
        *m.ops.entry(kind).or_default() += 1;
        for tag in tags(before.as_ref(), after.as_ref(), StockTagPolicy::Eager) {
            m.last_change.insert(tag.to_string(), done);
        }
    }
    Ok(())
}

/// Products whose summary differs from the projection of their current rows.
async fn discrepancies(stack: &Stack, ids: &[ProductId]) -> Result<Vec<ProductId>> {
    let mut wrong = Vec::new();
    for id in ids {
        if stack.summary(id.as_str()).await? != stack.expected(id.as_str()).await? {
            wrong.push(id.clone());
        }
    }
    Ok(wrong)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_lost_and_nothing_stale_survives() -> Result<()> {
    let run = Run::set_up(setting("CHAOS_SEED", 7)).await?;
    let driven = run.drive(setting("CHAOS_OPS", 3000)).await?;
    let drained = run.drain(&driven).await?;
    let records = (run.seed, driven.product_writes);
    let tail = tail(&run.stack, &run.stub, &run.editor, &run.model, records).await?;
    let found = found(&run.stack).await?;
    let outcome = run.outcome(driven, drained, tail, found).await?;
    say!("{outcome}");
    outcome.check()?;
    run.stack.stop().await.context("stopping the stack")
}

/// Everything the run works on: the stand-in storefront with its page cache, the stack with
/// every fault layer on, the switches that turn them off, and the model of what was written.
struct Run {
    seed: u64,
    started: Instant,
    stub: StorefrontStub,
    stack: Stack,
    ids: Vec<ProductId>,
    faults_on: Arc<AtomicBool>,
    stream_faults: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    throttling: Arc<Throttling>,
    editor: Editor,
    model: Arc<Mutex<Model>>,
}

/// What the writers left: when they ended and how many stream records each table got.
struct Driven {
    total_ops: u64,
    writes_done: Instant,
    product_writes: u64,
    stock_writes: u64,
    down_windows: u64,
}

/// The drain: the streams handled with faults still on, then everything else with them off.
struct Drained {
    streams_done: Duration,
    drained: Duration,
    wrong: Vec<ProductId>,
    stale: Vec<String>,
}

/// What the end state holds: outboxes, the reconciler's view, parked records, dead letters.
struct Found {
    outboxes: usize,
    reconciled: Report,
    parked: Vec<ParkedRecord>,
    parked_ids: Vec<String>,
    dead_letters: BTreeMap<&'static str, u64>,
}

impl Run {
    /// The stand-in storefront (every product and store page cached, chaos on its revalidate
    /// endpoint), the stack with stream faults, throttling and AWS consistency, the poison.
    async fn set_up(seed: u64) -> Result<Self> {
        let stub = StorefrontStub::start(SECRET).await?;
        let faults_on = Arc::new(AtomicBool::new(true));
        let stream_faults: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
        let throttling = Throttling::new(5, seed ^ 0x7407);
        let wrap = chaos_projector(seed, &faults_on, &stream_faults);
        let options = chaos_options(seed, wrap, &throttling, &stub.url);
        let stack = Stack::start(&catalog_local::workspace_root(), options).await?;
        let ids: Vec<ProductId> = (0..PRODUCTS)
            .map(|i| ProductId::parse(format!("c-{i:04}")))
            .collect::<Result<_, _>>()?;
        let api = &stack.endpoints.listing_api;
        stub.cache_pages(api, cached_pages(&ids)).await?;
        stub.chaos(Chaos {
            server_errors: 15,
            too_many: 8,
            hangs: 5,
            hang: Duration::from_millis(800),
            seed: seed ^ 0x5708E,
        });
        put_poison(&stack).await?;
        let editor = Editor::new(
            stack.dynamodb.clone(),
            stack.endpoints.tables.catalog.clone(),
        );
        let started = Instant::now();
        let model = Arc::default();
        Ok(Self {
            seed,
            started,
            stub,
            stack,
            ids,
            faults_on,
            stream_faults,
            throttling,
            editor,
            model,
        })
    }

    /// `total_ops` random operations by [`WRITERS`] writers at once, each on its own products
    /// (so the model's order is the tables'), while the storefront keeps going down.
    async fn drive(&self, total_ops: u64) -> Result<Driven> {
        let writing = Arc::new(AtomicBool::new(true));
        let outage = tokio::spawn(outages(self.stub.clone(), writing.clone()));
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..WRITERS {
            let mine = self.ids.iter().skip(w).step_by(WRITERS).cloned().collect();
            let (editor, model) = (self.editor.clone(), self.model.clone());
            let seed = self.seed.wrapping_add(w as u64);
            writers.spawn(writer(
                editor,
                model,
                mine,
                total_ops / WRITERS as u64,
                seed,
            ));
        }
        while let Some(done) = writers.join_next().await {
            done??;
        }
        let writes_done = Instant::now();
        writing.store(false, Ordering::SeqCst);
        let down_windows = outage.await?;
        let m = self.model.lock().unwrap();
        let stock_writes = m.ops.get("stock adjustment").copied().unwrap_or_default();
        let product_writes = m.ops.values().sum::<u64>() - stock_writes + POISON as u64;
        Ok(Driven {
            total_ops,
            writes_done,
            product_writes,
            stock_writes,
            down_windows,
        })
    }

    /// Faults stay on until every stream record written is handled (each write makes exactly
    /// one), so the backlog is projected under faults too; then they stop and the rest of the
    /// pipeline drains (given up on after 300 s, not failed: the checks say what is left).
    async fn drain(&self, driven: &Driven) -> Result<Drained> {
        let written = (driven.product_writes, driven.stock_writes);
        within(Duration::from_secs(240))
            .every(Duration::from_millis(500))
            .holds(async || {
                let t = self.stack.status().await?.triggers;
                let handled = (t["ProductsStream"].records, t["InventoryStream"].records);
                ensure!(
                    handled == written,
                    "streams not drained: {handled:?} of {written:?}"
                );
                Ok(())
            })
            .await?;
        let streams_done = driven.writes_done.elapsed();
        self.faults_on.store(false, Ordering::SeqCst);
        self.throttling.set_on(false);
        self.stub.heal();
        let queues = &self.stack.endpoints.queues;
        loop {
            let tags = queue_depth(&self.stack.sqs, &queues.tag_queue).await?;
            let checks = queue_depth(&self.stack.sqs, &queues.listing_check_queue).await?;
            let wrong = discrepancies(&self.stack, &self.ids).await?;
            let stale = self.stub.stale_pages().await?;
            let settled = tags + checks == 0 && wrong.is_empty() && stale.is_empty();
            let drained = driven.writes_done.elapsed();
            if settled || drained > Duration::from_secs(300) {
                return Ok(Drained {
                    streams_done,
                    drained,
                    wrong,
                    stale,
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The run's figures, from the model, the fault layers and the stack, beside the phases'.
    async fn outcome(
        &self,
        driven: Driven,
        drained: Drained,
        tail: Tail,
        found: Found,
    ) -> Result<Outcome> {
        let (ops, changed_tags) = {
            let m = self.model.lock().unwrap();
            (m.ops.clone(), m.last_change.len())
        };
        let stream_faults = self.stream_faults.lock().unwrap().clone();
        let triggers = self.stack.status().await?.triggers;
        Ok(Outcome {
            seed: self.seed,
            took: self.started.elapsed(),
            ops,
            changed_tags,
            stream_faults,
            throttled: self.throttling.injected.load(Ordering::Relaxed),
            endpoint_faults: self.stub.injected(),
            consistency: self
                .stack
                .consistency
                .as_ref()
                .context("AWS consistency")?
                .snapshot(),
            triggers,
            driven,
            drained,
            tail,
            found,
        })
    }
}

/// The projector wrapped in stream-side faults (duplicates, replays, delays, concurrent
/// invocations) while `on`, counting each kind in `injected`.
fn chaos_projector(
    seed: u64,
    on: &Arc<AtomicBool>,
    injected: &Arc<Mutex<BTreeMap<&'static str, u64>>>,
) -> Wrap {
    let (on, injected) = (on.clone(), injected.clone());
    Arc::new(move |inner| {
        Arc::new(ChaosProjector {
            inner,
            on: on.clone(),
            rng: Mutex::new(Rng::new(seed ^ 0xC4A05)),
            history: Mutex::new(VecDeque::new()),
            injected: injected.clone(),
        }) as Arc<dyn Function>
    })
}

/// The stack's options: every fault layer, AWS's weaker consistency far past its usual lag,
/// and the stand-in storefront as the revalidate endpoint, with a short call timeout.
fn chaos_options(seed: u64, wrap: Wrap, throttling: &Arc<Throttling>, storefront: &str) -> Options {
    let (dynamodb, sqs) = catalog_tests::endpoints();
    Options {
        prefix: format!("chaos{}-", std::process::id()),
        endpoints: Some((dynamodb, sqs)),
        wrap_projector: Some(wrap),
        layers: vec![
            Layer::Throttling(throttling.clone()),
            Layer::AwsConsistency(AwsConsistency {
                lag: Duration::from_millis(setting("CHAOS_LAG_MS", 10_000)),
                hold: Duration::from_millis(setting("CHAOS_HOLD_MS", 200)),
                seed: seed ^ 0x1A6,
            }),
        ],
        revalidate_endpoints: vec![storefront.to_owned()],
        revalidate_secret: SECRET.into(),
        revalidate_timeout: Duration::from_millis(300),
        ..Options::default()
    }
}

/// Next.js's page cache as the stand-in keeps it: every product page (tagged product: and
/// inventory:) and every store page, refetched when one of its tags is revalidated.
fn cached_pages(ids: &[ProductId]) -> Vec<(String, Vec<String>)> {
    let products = ids.iter().map(|id| {
        let tags = vec![format!("product:{id}"), format!("inventory:{id}")];
        (format!("/products/{id}"), tags)
    });
    let stores = (1..=STORES).map(|s| {
        let tags = vec![format!("store:store-{s}:products")];
        (format!("/stores/store-{s}/products?limit=100"), tags)
    });
    products.chain(stores).collect()
}

/// Rows no projector can read (a price that is not an integer): each must end parked with
/// its reason, and nothing else may.
async fn put_poison(stack: &Stack) -> Result<()> {
    for k in 0..POISON {
        let item: HashMap<String, AttributeValue> = [
            ("productId", AttributeValue::S(format!("poison-{k}"))),
            ("storeId", AttributeValue::S("store-1".into())),
            ("name", AttributeValue::S("Poison".into())),
            ("price", AttributeValue::S("19.99".into())),
            ("status", AttributeValue::S("ACTIVE".into())),
            ("version", AttributeValue::N("1".into())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let products = &stack.endpoints.tables.catalog.products;
        let put = stack.dynamodb.put_item().table_name(products);
        put.set_item(Some(item)).send().await?;
    }
    Ok(())
}

/// Takes the storefront down for 1.5 s every 4 s while `writing`; returns how many times.
async fn outages(stub: StorefrontStub, writing: Arc<AtomicBool>) -> u64 {
    let mut windows = 0;
    while writing.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(4)).await;
        stub.set_down(true);
        windows += 1;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        stub.set_down(false);
    }
    windows
}

/// The end state: outboxes left, a reconciler dry run over everything, the parked records
/// (drained from their queue) and the depth of every dead-letter queue.
async fn found(stack: &Stack) -> Result<Found> {
    let outboxes = pending_outboxes(stack).await?;
    let reconciled = reconcile_dry_run(stack).await?;
    let parked = stack.parked().await?;
    let mut parked_ids: Vec<String> = parked
        .iter()
        .map(|p| {
            p.keys["productId"]["S"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    parked_ids.sort();
    parked_ids.dedup();
    let mut dead_letters = BTreeMap::new();
    for q in [
        "StreamFailureQueue",
        "TagDeadLetterQueue",
        "ReconcileDeadLetterQueue",
        "ListingCheckDeadLetterQueue",
    ] {
        let depth = queue_depth(&stack.sqs, stack.endpoints.queues.url(q)?).await?;
        dead_letters.insert(q, depth);
    }
    Ok(Found {
        outboxes,
        reconciled,
        parked,
        parked_ids,
        dead_letters,
    })
}

/// A reconciler dry run over the whole catalog, one segment, continued until it finishes.
async fn reconcile_dry_run(stack: &Stack) -> Result<Report> {
    let resources = stack.endpoints.resources();
    let config = resources.reconciler_config(StockTagPolicy::Eager, 1)?;
    let reconciler =
        reconciler::Reconciler::new(&config, stack.dynamodb.clone(), stack.sqs.clone());
    let mut message: reconciler::SegmentMessage = serde_json::from_value(serde_json::json!({
        "version": 1, "runId": format!("chaos-{}", catalog_tests::unique_id()),
        "share": {"dryRun": true, "storeId": null, "segment": 0, "totalSegments": 1},
        "checkpoint": {"phase": "products", "startKey": null},
        "report": {"checked": 0, "missing": 0, "orphans": 0, "drifted": 0, "driftByField": {}, "repaired": 0, "repairFailures": 0},
        "startedAt": "2026-11-26T00:00:00.000Z"
    }))?;
    loop {
        let delivery = catalog_tests::unique_id();
        let deadline = Instant::now() + Duration::from_secs(120);
        match reconciler.run_segment(message, &delivery, deadline).await? {
            reconciler::Segment::Continued(continuation) => message = continuation,
            reconciler::Segment::Finished(report) => return Ok(report),
            reconciler::Segment::Duplicate => anyhow::bail!("the only delivery was a duplicate"),
        }
    }
}

/// The whole run: what was done and injected, what each phase measured, what the end state
/// holds. Its `Display` is the summary the run prints; [`Outcome::check`] holds the claims.
struct Outcome {
    seed: u64,
    took: Duration,
    ops: BTreeMap<&'static str, u64>,
    changed_tags: usize,
    stream_faults: BTreeMap<&'static str, u64>,
    throttled: u64,
    endpoint_faults: BTreeMap<&'static str, usize>,
    /// Reads served by the lagging replica, summary writes held, replica writes.
    consistency: (u64, u64, u64),
    triggers: BTreeMap<String, Snapshot>,
    driven: Driven,
    drained: Drained,
    tail: Tail,
    found: Found,
}

impl Outcome {
    /// Nothing lost (every summary equals its rows, the reconciler agrees, no outbox holds
    /// tags), nothing stale (no page after the drain or the tail, none for 5 s past the index
    /// showing its write), only the poison parked, and no other dead letter.
    fn check(&self) -> Result<()> {
        let (drained, found, tail) = (&self.drained, &self.found, &self.tail);
        let wrong = &drained.wrong;
        ensure!(
            wrong.is_empty(),
            "summaries that differ from their rows: {wrong:?}"
        );
        let stale = &drained.stale;
        ensure!(
            stale.is_empty(),
            "pages still stale after the drain: {stale:?}"
        );
        let r = &found.reconciled;
        ensure!(
            r.missing + r.orphans + r.drifted == 0,
            "the reconciler disagrees: {r:?}"
        );
        let outboxes = found.outboxes;
        ensure!(
            outboxes == 0,
            "{outboxes} summaries still hold tags in their outbox"
        );
        ensure!(tail.stale == 0, "{} pages stale after the tail", tail.stale);
        let past = tail.past_index_max;
        ensure!(
            past < Duration::from_secs(5),
            "a page stayed stale {past:?} past its index"
        );
        let expected: Vec<String> = (0..POISON).map(|k| format!("poison-{k}")).collect();
        ensure!(
            found.parked_ids == expected,
            "parked {:?}",
            found.parked_ids
        );
        let reasons = found.parked.iter().all(|p| p.reason.contains("price"));
        ensure!(
            reasons,
            "every parked record names its reason: {:?}",
            found.parked
        );
        let dead = &found.dead_letters;
        ensure!(
            dead.values().all(|n| *n == 0),
            "unexpected dead letters: {dead:?}"
        );
        let ran = self.ops.values().sum::<u64>();
        ensure!(
            ran >= self.driven.total_ops - WRITERS as u64,
            "only {ran} ops ran"
        );
        Ok(())
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (d, drained, found, tail, t) = (
            &self.driven,
            &self.drained,
            &self.found,
            &self.tail,
            &self.triggers,
        );
        let (products, inventory) = (&t["ProductsStream"], &t["InventoryStream"]);
        let r = &found.reconciled;
        let secs = |d: Duration| d.as_secs_f64();
        writeln!(f, "chaos run: seed {}, {} operations over {PRODUCTS} products, {STORES} stores, {LOCATIONS} locations, {WRITERS} writers", self.seed, self.ops.values().sum::<u64>())?;
        writeln!(f, "  operations: {:?}", self.ops)?;
        writeln!(f, "  stream faults: {:?}", self.stream_faults)?;
        writeln!(f, "  DynamoDB calls throttled: {}", self.throttled)?;
        writeln!(
            f,
            "  revalidate endpoint faults: {:?}, outage windows {}",
            self.endpoint_faults, d.down_windows
        )?;
        writeln!(f, "  retries: stream batches {}, tag batches {}; stream records handled {} of {} written, in {} invocations",
            products.retries + inventory.retries,
            t.get("Tags").map(|s| s.retries).unwrap_or_default(),
            products.records + inventory.records,
            d.product_writes + d.stock_writes,
            products.invocations + inventory.invocations)?;
        writeln!(f, "  streams handled {:.1} s after the last write (faults still on), drained {:.1} s after it; total {:.1} s",
            secs(drained.streams_done), secs(drained.drained), secs(self.took))?;
        writeln!(f, "  discrepancies: {} (reconciler dry run: checked {}, missing {}, orphans {}, drifted {})",
            drained.wrong.len(), r.checked, r.missing, r.orphans, r.drifted)?;
        writeln!(f, "  lost invalidations: {} stale pages of {} cached ({} distinct tags changed content, per the pure tag diff)",
            drained.stale.len(), PRODUCTS + STORES, self.changed_tags)?;
        writeln!(
            f,
            "  parked: {:?}; other dead letters: {:?}",
            found.parked_ids, found.dead_letters
        )?;
        let (lagging, held, replicated) = self.consistency;
        writeln!(f, "  AWS consistency: reads served by the lagging replica {lagging}, summary writes held {held}, replica writes {replicated}")?;
        writeln!(f, "  summaries with a non-empty outbox: {}", found.outboxes)?;
        write!(f, "  tail: {} paced writes after the drain; {} pages changed; staleness after the last write to a page's product: max {:.2} s, p50 {:.2} s; past the index showing it: p99 {:.2} s, max {:.2} s; still stale {}",
            tail.writes, tail.pages, secs(tail.max), secs(tail.p50),
            secs(tail.past_index_p99), secs(tail.past_index_max), tail.stale)
    }
}

/// What the tail found. A listing page can be fresh no sooner than its index shows the write,
/// so its staleness is also given past that moment (`past_index`), the part catalog-sync
/// adds to DynamoDB's own lag; product pages read the table consistently, so theirs counts
/// from the write.
struct Tail {
    writes: u64,
    pages: usize,
    /// Last write to a page's product to the page fresh.
    max: Duration,
    p50: Duration,
    /// The index showing the page's last write (or, for product pages, the write) to the page
    /// fresh.
    past_index_p99: Duration,
    past_index_max: Duration,
    stale: usize,
}

/// A page the tail changed: when its products were last written, and which products.
#[derive(Default)]
struct Changed {
    at: Option<Instant>,
    products: Vec<ProductId>,
    listing: bool,
}

/// After the backlog is drained: paced price changes with AWS consistency still on (index and
/// replica lag, held writes) and a healthy storefront, then how long each page they changed
/// went on being served stale after the last write to its product.
async fn tail(
    stack: &Stack,
    stub: &StorefrontStub,
    editor: &Editor,
    model: &Arc<Mutex<Model>>,
    (seed, product_records): (u64, u64),
) -> Result<Tail> {
    let writes = setting("CHAOS_TAIL", 150);
    let changed = tail_writes(editor, model, writes, seed).await?;
    let last = changed
        .values()
        .filter_map(|c| c.at)
        .max()
        .unwrap_or_else(Instant::now);
    settle(stack, last, product_records + writes).await?;
    let at: BTreeMap<String, Instant> = changed
        .iter()
        .filter_map(|(path, c)| Some((path.clone(), c.at?)))
        .collect();
    let staleness = stub.staleness(&at).await?;
    let mut fresh: Vec<Duration> = staleness.values().flatten().copied().collect();
    fresh.sort();
    let mut past_index = Vec::new();
    for (path, stale_for) in &staleness {
        if let (Some(stale_for), Some(c)) = (stale_for, changed.get(path)) {
            let written = c.at.expect("a changed page has a write");
            let shown = index_shows(stack, c).await?.max(written);
            past_index.push((written + *stale_for).saturating_duration_since(shown));
        }
    }
    past_index.sort();
    let p99 = |v: &[Duration]| v.get(v.len() * 99 / 100).copied().unwrap_or_default();
    Ok(Tail {
        writes,
        pages: changed.len(),
        max: fresh.last().copied().unwrap_or_default(),
        p50: fresh.get(fresh.len() / 2).copied().unwrap_or_default(),
        past_index_p99: p99(&past_index),
        past_index_max: past_index.last().copied().unwrap_or_default(),
        stale: staleness.values().filter(|s| s.is_none()).count(),
    })
}

/// The paced price changes, and the pages each changed (per the pure tag diff).
async fn tail_writes(
    editor: &Editor,
    model: &Arc<Mutex<Model>>,
    writes: u64,
    seed: u64,
) -> Result<BTreeMap<String, Changed>> {
    let mut rng = Rng::new(seed ^ 0x7A11);
    let mut changed: BTreeMap<String, Changed> = BTreeMap::new();
    for _ in 0..writes {
        let live: Vec<ProductId> = model.lock().unwrap().products.keys().cloned().collect();
        let id = rng.pick(&live).clone();
        let before = model.lock().unwrap().summary(&id);
        let price = MinorUnits::new(100 + rng.below(100_000))?;
        let written = editor.set_price(&id, price).await?;
        let now = Instant::now();
        let after = {
            let mut m = model.lock().unwrap();
            m.products.insert(id.clone(), written);
            m.summary(&id)
        };
        for tag in tags(before.as_ref(), after.as_ref(), StockTagPolicy::Eager) {
            let (path, listing) = match tag.as_str().split(':').collect::<Vec<_>>()[..] {
                ["store", store, "products"] => {
                    (format!("/stores/{store}/products?limit=100"), true)
                }
                [_, product] => (format!("/products/{product}"), false),
                _ => continue,
            };
            let page = changed.entry(path).or_default();
            page.at = Some(now);
            page.listing = listing;
            page.products.push(id.clone());
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    Ok(changed)
}

/// Waits until every listing check and tag message the tail caused is done: each of the
/// `product_records` Products stream records projected (so nothing more is about to be
/// queued), then both queues empty (listing checks wait there for as long as the index lags).
async fn settle(stack: &Stack, last: Instant, product_records: u64) -> Result<()> {
    let queues = &stack.endpoints.queues;
    let limit = Duration::from_secs(90).saturating_sub(last.elapsed());
    within(limit)
        .every(Duration::from_millis(500))
        .holds(async || {
            let projected = stack.status().await?.triggers["ProductsStream"].records;
            let checks = queue_depth(&stack.sqs, &queues.listing_check_queue).await?;
            let tags = queue_depth(&stack.sqs, &queues.tag_queue).await?;
            ensure!(
                projected >= product_records && checks == 0 && tags == 0,
                "listing checks {checks} and tags {tags} still queued"
            );
            Ok(())
        })
        .await
}

/// When the listing indexes first showed every product of page `c` as the table now holds it
/// (the write itself for a product page, which reads consistently).
async fn index_shows(stack: &Stack, c: &Changed) -> Result<Instant> {
    let written = c.at.expect("a changed page has a write");
    if !c.listing {
        return Ok(written);
    }
    let consistency = stack
        .consistency
        .as_ref()
        .context("AWS consistency is on")?;
    let summaries = SummaryStore::new(
        stack.dynamodb.clone(),
        stack.endpoints.tables.catalog.summaries.clone(),
    );
    let mut shown = written;
    for id in &c.products {
        let stored = summaries.get(id).await?.and_then(|s| s.record);
        let Some(record) = stored else { continue };
        let at = consistency.shown_since(id.as_str(), &record.updated_at);
        shown = shown.max(at.context("the index never showed the last write")?);
    }
    Ok(shown)
}

/// Summaries whose outbox still holds tags.
async fn pending_outboxes(stack: &Stack) -> Result<usize> {
    let summaries = SummaryStore::new(
        stack.dynamodb.clone(),
        stack.endpoints.tables.catalog.summaries.clone(),
    );
    let all = summaries
        .scan_segment(0, 1, usize::MAX)
        .await?
        .context("a whole table scan")?;
    Ok(all
        .values()
        .filter(|s| matches!(s, Ok(s) if !s.pending_tags.is_empty()))
        .count())
}
