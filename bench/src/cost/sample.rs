//! The sample day: a seeded catalog, changes through the projector, the listing checks and the
//! tag-revalidator (tag table), a reconciliation, and listing views three ways, each metered.

use catalog_tests::Inspect;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use aws_lambda_events::event::dynamodb::Event;
use catalog::store::SummaryStore;
use catalog::store::TagTable;
use catalog_core::model::MinorUnits;
use catalog_core::tags::StockTagPolicy;
use catalog_core::testing::{product, stock};
use catalog_tests::TestEnv;
use summary_projector::Input;
use summary_projector::Projector;
use tag_revalidator::client::RevalidateClient;
use tag_revalidator::Revalidator;

use super::meter::{Meter, Usage};
use crate::listing::{join, naive, LOCATIONS, PAGE};

/// How much of a day to run.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub products: usize,
    pub changes: usize,
    pub views: usize,
    /// Stream records per projector invocation.
    pub batch: usize,
}

/// Invocations of one function and their summed duration, as measured here.
#[derive(Debug, Clone, Copy, Default)]
pub struct Invocations {
    pub count: u64,
    pub seconds: f64,
}

impl Invocations {
    fn add(&mut self, took: Duration) {
        self.count += 1;
        self.seconds += took.as_secs_f64();
    }
}

/// What the sample used, by part.
pub struct Measured {
    /// The changes: the projector's and the revalidator's calls.
    pub changes: BTreeMap<String, Usage>,
    pub projector: Invocations,
    pub revalidator: Invocations,
    /// A whole reconciliation of the sample catalog.
    pub reconcile: BTreeMap<String, Usage>,
    pub reconciler: Invocations,
    /// Listing views: listing-api, the N+1 join, the BatchGet join.
    pub views: [BTreeMap<String, Usage>; 3],
    pub listing: Invocations,
    /// The projector's calls for as many changes caught up from a backlog.
    pub catch_up: BTreeMap<String, Usage>,
}

pub async fn measure(size: &Size) -> Result<Measured> {
    ensure!(
        size.products >= PAGE && size.batch >= 1,
        "--products must be at least {PAGE}"
    );
    let env = TestEnv::new().await?;
    let tag_table = env.create_tag_table().await?;
    seed(&env, size.products).await?;
    let meter = Meter::default();
    let (projector, revalidator) = changes(&env, &meter, &tag_table, size).await?;
    let changes = meter.take();
    let reconciler = reconcile(&env, &meter).await?;
    let reconcile = meter.take();
    let (views, listing) = views(&env, &meter, size).await?;
    let catch_up = catch_up(&env, &meter, size).await?;
    Ok(Measured {
        catch_up,
        changes,
        projector,
        revalidator,
        reconcile,
        reconciler,
        views,
        listing,
    })
}

fn stores(products: usize) -> usize {
    products / PAGE
}

/// `products` products in stores of [`PAGE`], [`LOCATIONS`] stock rows each, projected, their
/// tags drained: the catalog before the day starts.
async fn seed(env: &TestEnv, products: usize) -> Result<()> {
    for p in 0..products {
        env.put_product(&product(
            &format!("p{p}"),
            &format!("s{}", p % stores(products)),
        ))
        .await?;
        for l in 0..LOCATIONS {
            env.put_stock(&stock(&format!("p{p}"), &format!("l{l}"), 5, 1))
                .await?;
        }
    }
    let projector = env.projector();
    for event in [env.products_event().await?, env.inventory_event().await?] {
        for batch in batches(&event, 100) {
            ensure!(projector
                .handle(batch)
                .await?
                .batch_item_failures
                .is_empty());
        }
    }
    env.drain_queue("TagQueue").await?;
    env.drain_queue("ListingCheckQueue").await?;
    Ok(())
}

fn batches(event: &Event, size: usize) -> Vec<Event> {
    event
        .records
        .chunks(size)
        .map(|chunk| {
            let mut batch = Event::default();
            batch.records = chunk.to_vec();
            batch
        })
        .collect()
}

/// Half stock changes, half price changes, each to the next product in turn. `steady`: each
/// `size.batch` changes reach the projector before the next are written (the stream keeps
/// up); else all are written first and their records follow (a backlog, caught up).
async fn write_changes(
    env: &TestEnv,
    size: &Size,
    round: usize,
    projector: &Projector,
    steady: bool,
) -> Result<Invocations> {
    let mut invocations = Invocations::default();
    for chunk in (0..size.changes).collect::<Vec<_>>().chunks(size.batch) {
        for &i in chunk {
            write_change(env, size, round * size.changes + i).await?;
        }
        if steady {
            project(env, projector, size.batch, &mut invocations).await?;
        }
    }
    if !steady {
        project(env, projector, size.batch, &mut invocations).await?;
    }
    Ok(invocations)
}

/// Change `i`: a stock level when even, a price when odd.
async fn write_change(env: &TestEnv, size: &Size, i: usize) -> Result<()> {
    let p = i % size.products;
    let (id, version) = (format!("p{p}"), 2 + i as u64);
    if i.is_multiple_of(2) {
        let location = format!("l{}", (i / size.products) % LOCATIONS);
        let mut row = stock(&id, &location, (i % 9) as i64, 0);
        row.version = version;
        env.put_stock(&row).await
    } else {
        let mut product = product(&id, &format!("s{}", p % stores(size.products)));
        product.price = MinorUnits::new(1_000 + i as u64)?;
        product.version = version;
        env.put_product(&product).await
    }
}

/// Both streams' new records through `projector`, in invocations of `batch` records.
async fn project(
    env: &TestEnv,
    projector: &Projector,
    batch: usize,
    invocations: &mut Invocations,
) -> Result<()> {
    for event in [env.products_event().await?, env.inventory_event().await?] {
        for batch in batches(&event, batch) {
            let start = Instant::now();
            ensure!(projector
                .handle(batch)
                .await?
                .batch_item_failures
                .is_empty());
            invocations.add(start.elapsed());
        }
    }
    Ok(())
}

/// The day's changes in steady state, then the listing checks and tag messages they queued,
/// through the metered functions as Lambda would hand them over.
async fn changes(
    env: &TestEnv,
    meter: &Meter,
    tag_table: &str,
    size: &Size,
) -> Result<(Invocations, Invocations)> {
    let dynamodb = meter.dynamodb(&env.dynamodb);
    let projector = Projector::new(&env.config, dynamodb.clone(), meter.sqs(&env.sqs));
    let mut projected = write_changes(env, size, 0, &projector, true).await?;
    let url = env.queues.listing_check_queue.clone();
    for event in drain_events(env, &url).await? {
        let start = Instant::now();
        projector.handle_input(Input::ListingChecks(event)).await?;
        projected.add(start.elapsed());
    }
    let revalidated = revalidate(env, meter, &dynamodb, tag_table).await?;
    Ok((projected, revalidated))
}

/// The projector's calls for the same number of changes written as a backlog first.
async fn catch_up(env: &TestEnv, meter: &Meter, size: &Size) -> Result<BTreeMap<String, Usage>> {
    let projector = Projector::new(
        &env.config,
        meter.dynamodb(&env.dynamodb),
        meter.sqs(&env.sqs),
    );
    write_changes(env, size, 1, &projector, false).await?;
    env.drain_queue("TagQueue").await?;
    Ok(meter.take())
}

/// The tag queue through a metered tag-revalidator writing the tag table.
async fn revalidate(
    env: &TestEnv,
    meter: &Meter,
    dynamodb: &aws_sdk_dynamodb::Client,
    tag_table: &str,
) -> Result<Invocations> {
    let client = RevalidateClient::new(&[7; 32], Duration::from_secs(5))?;
    let revalidator = Revalidator::new(
        Vec::new(),
        client,
        meter.sqs(&env.sqs),
        env.queues.tag_queue.clone(),
        128,
    )
    .with_tag_table(
        TagTable::new(dynamodb.clone(), tag_table, Duration::from_secs(5)),
        vec!["web".into()],
    );
    let mut invocations = Invocations::default();
    let url = env.queues.tag_queue.clone();
    for event in drain_events(env, &url).await? {
        let start = Instant::now();
        let response = revalidator.handle(event).await;
        ensure!(response.batch_item_failures.is_empty(), "{response:?}");
        invocations.add(start.elapsed());
    }
    Ok(invocations)
}

/// Every message on `url`, as Lambda's events of up to 10, deleted once received (as
/// Lambda's poller deletes what an invocation did not report failed).
async fn drain_events(
    env: &TestEnv,
    url: &str,
) -> Result<Vec<aws_lambda_events::event::sqs::SqsEvent>> {
    let mut events = Vec::new();
    loop {
        let event = env.receive_event(url, 0).await?;
        if event.records.is_empty() {
            return Ok(events);
        }
        for record in &event.records {
            let handle = record.receipt_handle.clone().unwrap_or_default();
            env.sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(handle)
                .send()
                .await?;
        }
        events.push(event);
    }
}

/// A whole 4-segment reconciliation of the sample catalog by a metered reconciler.
async fn reconcile(env: &TestEnv, meter: &Meter) -> Result<Invocations> {
    let config = env
        .resources()
        .reconciler_config(StockTagPolicy::Eager, 4)?;
    let reconciler =
        reconciler::Reconciler::new(&config, meter.dynamodb(&env.dynamodb), meter.sqs(&env.sqs));
    let start = Instant::now();
    let (report, _) = crate::reconciler::run_once(env, &reconciler, 4).await?;
    ensure!(report.discrepancies() == 0, "{report:?}");
    // One run request and one invocation per segment.
    Ok(Invocations {
        count: 5,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// `size.views` store pages through listing-api, the N+1 join and the BatchGet join.
async fn views(
    env: &TestEnv,
    meter: &Meter,
    size: &Size,
) -> Result<([BTreeMap<String, Usage>; 3], Invocations)> {
    let dynamodb = meter.dynamodb(&env.dynamodb);
    let key = listing_api::cursor::CursorKey::new(&[9; 32])?;
    let api = listing_api::ListingApi::new(
        SummaryStore::new(dynamodb.clone(), &env.tables.summaries),
        key,
    );
    let store = |v: usize| format!("s{}", v % stores(size.products));
    let mut listing = Invocations::default();
    for v in 0..size.views {
        let path = format!("/stores/{}/products?limit={PAGE}", store(v));
        let event = catalog_local::emulator::apigw::http_request("GET", &path, &[], None);
        let start = Instant::now();
        let response = api.handle(serde_json::from_value(event)?).await;
        ensure!(response.status_code == 200, "{response:?}");
        listing.add(start.elapsed());
    }
    let api_usage = meter.take();
    let (products, inventory) = (&env.tables.products, &env.tables.inventory);
    for v in 0..size.views {
        ensure!(naive(&dynamodb, products, inventory, &store(v)).await? == PAGE);
    }
    let naive_usage = meter.take();
    for v in 0..size.views {
        ensure!(join(&dynamodb, products, inventory, &store(v)).await? == PAGE);
    }
    Ok(([api_usage, naive_usage, meter.take()], listing))
}
