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
use catalog_core::model::{
    Image, InventoryRow, MinorUnits, Product, ProductStatus, ProductSummary,
};
use catalog_core::projection::project;
use catalog_core::tags::{tags, StockTagPolicy};
use catalog_local::consistency::AwsConsistency;
use catalog_local::demo::Rng;
use catalog_local::edits::Editor;
use catalog_local::faults::Throttling;
use catalog_local::function::{Function, Invocation};
use catalog_local::stack::{queue_depth, Options, Stack, Wrap};
use catalog_tests::eventually::within;
use catalog_tests::storefront_stub::{Chaos, StorefrontStub};
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
    let summaries = SummaryStore::new(
        stack.dynamodb.clone(),
        stack.endpoints.tables.summaries.clone(),
    );
    let (client, tables) = (&stack.dynamodb, &stack.endpoints.tables);
    let mut wrong = Vec::new();
    for id in ids {
        let expected = catalog_tests::expected_summary(client, tables, id).await?;
        let actual = summaries
            .get(id)
            .await?
            .and_then(|s| s.record)
            .map(|r| r.summary);
        if actual != expected {
            wrong.push(id.clone());
        }
    }
    Ok(wrong)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_lost_and_nothing_stale_survives() -> Result<()> {
    let seed = setting("CHAOS_SEED", 7);
    let total_ops = setting("CHAOS_OPS", 3000);
    let started = Instant::now();

    let stub = StorefrontStub::start("chaos-revalidate-secret-of-32-bytes").await?;
    let faults_on = Arc::new(AtomicBool::new(true));
    let stream_faults: Arc<Mutex<BTreeMap<&'static str, u64>>> = Arc::default();
    let wrap: Wrap = {
        let (on, injected) = (faults_on.clone(), stream_faults.clone());
        Arc::new(move |inner| {
            Arc::new(ChaosProjector {
                inner,
                on: on.clone(),
                rng: Mutex::new(Rng::new(seed ^ 0xC4A05)),
                history: Mutex::new(VecDeque::new()),
                injected: injected.clone(),
            }) as Arc<dyn Function>
        })
    };
    let throttling = Throttling::new(5, seed ^ 0x7407);
    let (dynamodb, sqs) = catalog_tests::endpoints();
    let stack = Stack::start(
        &catalog_local::workspace_root(),
        Options {
            prefix: format!("chaos{}-", std::process::id()),
            endpoints: Some((dynamodb, sqs)),
            wrap_projector: Some(wrap),
            throttling: Some(throttling.clone()),
            aws_consistency: Some(AwsConsistency {
                lag: Duration::from_millis(setting("CHAOS_LAG_MS", 10_000)),
                hold: Duration::from_millis(setting("CHAOS_HOLD_MS", 200)),
                seed: seed ^ 0x1A6,
            }),
            revalidate_endpoints: vec![stub.url.clone()],
            revalidate_secret: "chaos-revalidate-secret-of-32-bytes".into(),
            revalidate_timeout: Duration::from_millis(300),
            ..Options::default()
        },
    )
    .await?;
    // Next.js's page cache, emulated by the stand-in: every product page (tagged product: and
    // inventory:) and every store page, refetched when one of its tags is revalidated.
    let ids: Vec<ProductId> = (0..PRODUCTS)
        .map(|i| ProductId::parse(format!("c-{i:04}")))
        .collect::<Result<_, _>>()?;
    let mut pages: Vec<(String, Vec<String>)> = ids
        .iter()
        .map(|id| {
            (
                format!("/products/{id}"),
                vec![format!("product:{id}"), format!("inventory:{id}")],
            )
        })
        .collect();
    for s in 1..=STORES {
        pages.push((
            format!("/stores/store-{s}/products?limit=100"),
            vec![format!("store:store-{s}:products")],
        ));
    }
    stub.cache_pages(&stack.endpoints.listing_api, pages)
        .await?;
    stub.chaos(Chaos {
        server_errors: 15,
        too_many: 8,
        hangs: 5,
        hang: Duration::from_millis(800),
        seed: seed ^ 0x5708E,
    });

    // Poison: rows no projector can read. Each must end parked with its reason, and nothing else.
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
        stack
            .dynamodb
            .put_item()
            .table_name(&stack.endpoints.tables.products)
            .set_item(Some(item))
            .send()
            .await?;
    }

    // The storefront goes down for 1.5 s every 4 s while the writers run.
    let down_windows = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writing = Arc::new(AtomicBool::new(true));
    let outage = {
        let (stub, writing, windows) = (stub.clone(), writing.clone(), down_windows.clone());
        tokio::spawn(async move {
            while writing.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(4)).await;
                stub.set_down(true);
                windows.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                stub.set_down(false);
            }
        })
    };

    let model = Arc::new(Mutex::new(Model::default()));
    let editor = Editor::new(stack.dynamodb.clone(), stack.endpoints.tables.clone());
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let mine: Vec<ProductId> = ids.iter().skip(w).step_by(WRITERS).cloned().collect();
        writers.spawn(writer(
            editor.clone(),
            model.clone(),
            mine,
            total_ops / WRITERS as u64,
            seed.wrapping_add(w as u64),
        ));
    }
    while let Some(done) = writers.join_next().await {
        done??;
    }
    let writes_done = Instant::now();
    writing.store(false, Ordering::SeqCst);
    outage.await?;

    // Faults stay on until every stream record written has been handled (each write makes
    // exactly one), so the backlog is projected under faults too; then they stop and the
    // pipeline drains.
    let tag_queue = stack.endpoints.queues.tag_queue.clone();
    let (stock_writes, product_writes) = {
        let m = model.lock().unwrap();
        let stock = m.ops.get("stock adjustment").copied().unwrap_or_default();
        (stock, m.ops.values().sum::<u64>() - stock + POISON as u64)
    };
    within(Duration::from_secs(240))
        .every(Duration::from_millis(500))
        .holds(async || {
            let t = stack.status().await?.triggers;
            let handled = (t["ProductsStream"].records, t["InventoryStream"].records);
            let written = (product_writes, stock_writes);
            ensure!(
                handled == written,
                "streams not drained: handled {handled:?} of {written:?}"
            );
            Ok(())
        })
        .await?;
    let streams_done = writes_done.elapsed();
    faults_on.store(false, Ordering::SeqCst);
    throttling.set_on(false);
    stub.heal();
    let mut wrong;
    let mut stale;
    let checks = stack.endpoints.queues.listing_check_queue.clone();
    loop {
        let waiting =
            queue_depth(&stack.sqs, &tag_queue).await? + queue_depth(&stack.sqs, &checks).await?;
        wrong = discrepancies(&stack, &ids).await?;
        stale = stub.stale_pages().await?;
        if waiting == 0 && wrong.is_empty() && stale.is_empty() {
            break;
        }
        if writes_done.elapsed() > Duration::from_secs(300) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let drained = writes_done.elapsed();
    let tail = tail(&stack, &stub, &editor, &model, (seed, product_writes)).await?;

    let outboxes = pending_outboxes(&stack).await?;

    // A reconciler dry run over everything must agree: 0 discrepancies.
    let reconciler = reconciler::Reconciler::new(
        &stack
            .endpoints
            .resources()
            .reconciler_config(StockTagPolicy::Eager, 1)?,
        stack.dynamodb.clone(),
        stack.sqs.clone(),
    );
    let mut message: reconciler::SegmentMessage = serde_json::from_value(serde_json::json!({
        "version": 1, "runId": format!("chaos-{}", catalog_tests::unique_id()),
        "share": {"dryRun": true, "storeId": null, "segment": 0, "totalSegments": 1},
        "checkpoint": {"phase": "products", "startKey": null},
        "report": {"checked": 0, "missing": 0, "orphans": 0, "drifted": 0, "driftByField": {}, "repaired": 0, "repairFailures": 0},
        "startedAt": "2026-11-26T00:00:00.000Z"
    }))?;
    let report = loop {
        let delivery = catalog_tests::unique_id();
        let deadline = Instant::now() + Duration::from_secs(120);
        match reconciler.run_segment(message, &delivery, deadline).await? {
            reconciler::Segment::Continued(continuation) => message = continuation,
            reconciler::Segment::Finished(report) => break report,
            reconciler::Segment::Duplicate => anyhow::bail!("the only delivery was a duplicate"),
        }
    };

    // Parked: exactly the poison rows, each with its reason; no other dead letter anywhere.
    let mut parked = Vec::new();
    loop {
        let messages = stack
            .sqs
            .receive_message()
            .queue_url(&stack.endpoints.queues.parked_records_queue)
            .max_number_of_messages(10)
            .send()
            .await?
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let record: catalog_core::messages::ParkedRecord =
                serde_json::from_str(m.body().unwrap_or_default())?;
            parked.push(record);
            stack
                .sqs
                .delete_message()
                .queue_url(&stack.endpoints.queues.parked_records_queue)
                .set_receipt_handle(m.receipt_handle)
                .send()
                .await?;
        }
    }
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
    let dead = [
        "StreamFailureQueue",
        "TagDeadLetterQueue",
        "ReconcileDeadLetterQueue",
        "ListingCheckDeadLetterQueue",
    ];
    let mut dead_letters = BTreeMap::new();
    for q in dead {
        dead_letters.insert(
            q,
            queue_depth(&stack.sqs, stack.endpoints.queues.url(q)?).await?,
        );
    }

    let status = stack.status().await?;
    let (ops, changed_tags) = {
        let m = model.lock().unwrap();
        (m.ops.clone(), m.last_change.len())
    };
    let t = &status.triggers;
    say!("chaos run: seed {seed}, {} operations over {PRODUCTS} products, {STORES} stores, {LOCATIONS} locations, {WRITERS} writers", ops.values().sum::<u64>());
    say!("  operations: {:?}", ops);
    say!("  stream faults: {:?}", stream_faults.lock().unwrap());
    say!(
        "  DynamoDB calls throttled: {}",
        throttling.injected.load(Ordering::Relaxed)
    );
    say!(
        "  revalidate endpoint faults: {:?}, outage windows {}",
        stub.injected(),
        down_windows.load(Ordering::SeqCst)
    );
    say!(
        "  retries: stream batches {}, tag batches {}; stream records handled {} of {} written, in {} invocations",
        t["ProductsStream"].retries + t["InventoryStream"].retries,
        t.get("Tags").map(|s| s.retries).unwrap_or_default(),
        t["ProductsStream"].records + t["InventoryStream"].records,
        product_writes + stock_writes,
        t["ProductsStream"].invocations + t["InventoryStream"].invocations,
    );
    say!(
        "  streams handled {:.1} s after the last write (faults still on), drained {:.1} s after it; total {:.1} s",
        streams_done.as_secs_f64(),
        drained.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    say!(
        "  discrepancies: {} (reconciler dry run: checked {}, missing {}, orphans {}, drifted {})",
        wrong.len(),
        report.checked,
        report.missing,
        report.orphans,
        report.drifted
    );
    say!(
        "  lost invalidations: {} stale pages of {} cached ({} distinct tags changed content, per the pure tag diff)",
        stale.len(),
        PRODUCTS + STORES,
        changed_tags
    );
    say!("  parked: {parked_ids:?}; other dead letters: {dead_letters:?}");
    let (lagging, held, replicated) = stack.consistency.as_ref().unwrap().snapshot();
    say!("  AWS consistency: reads served by the lagging replica {lagging}, summary writes held {held}, replica writes {replicated}");
    say!("  summaries with a non-empty outbox: {outboxes}");
    say!(
        "  tail: {} paced writes after the drain; {} pages changed; staleness after the last write to a page's product: max {:.2} s, p50 {:.2} s; past the index showing it: p99 {:.2} s, max {:.2} s; still stale {}",
        tail.writes,
        tail.pages,
        tail.max.as_secs_f64(),
        tail.p50.as_secs_f64(),
        tail.past_index_p99.as_secs_f64(),
        tail.past_index_max.as_secs_f64(),
        tail.stale
    );

    ensure!(
        wrong.is_empty(),
        "summaries that differ from their rows: {wrong:?}"
    );
    ensure!(
        stale.is_empty(),
        "pages still stale after the drain: {stale:?}"
    );
    ensure!(
        report.missing + report.orphans + report.drifted == 0,
        "the reconciler disagrees: {report:?}"
    );
    ensure!(
        outboxes == 0,
        "{outboxes} summaries still hold tags in their outbox"
    );
    ensure!(tail.stale == 0, "{} pages stale after the tail", tail.stale);
    ensure!(
        tail.past_index_max < Duration::from_secs(5),
        "a page stayed stale {:?} after the index showed the last write to its product",
        tail.past_index_max
    );
    let expected: Vec<String> = (0..POISON).map(|k| format!("poison-{k}")).collect();
    ensure!(parked_ids == expected, "parked {parked_ids:?}");
    ensure!(
        parked.iter().all(|p| p.reason.contains("price")),
        "every parked record names its reason: {parked:?}"
    );
    ensure!(
        dead_letters.values().all(|n| *n == 0),
        "unexpected dead letters: {dead_letters:?}"
    );
    ensure!(
        ops.values().sum::<u64>() >= total_ops - WRITERS as u64,
        "ops ran"
    );
    stack.stop().await.context("stopping the stack")
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
        stack.endpoints.tables.summaries.clone(),
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
        stack.endpoints.tables.summaries.clone(),
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
