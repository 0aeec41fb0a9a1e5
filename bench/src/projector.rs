//! The projector benchmark: the same stream records, in Lambda's batches of 100, through the
//! real projector (coalesced per product, batched reads, concurrent writes) and through a naive
//! projector that handles one record at a time with the same refresh protocol.

use catalog_tests::Inspect;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use aws_lambda_events::event::dynamodb::Event;
use catalog::config::ProjectorConfig;
use catalog::listing_gate::ListingGate;
use catalog::queue::{ListingCheckQueue, TagPublisher};
use catalog::refresh::Refresher;
use catalog::store::{SourceStore, SummaryStore, Write as Written};
use catalog_core::ids::ProductId;
use catalog_core::model::MinorUnits;
use catalog_core::tags::{all_tags, TagSet};
use catalog_core::testing::{product, stock};
use catalog_tests::{expected_summary, TestEnv};
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::Flags;

/// Lambda's BatchSize for the stream mappings in template.yaml.
const BATCH_SIZE: usize = 100;

/// A small deterministic generator, so every run writes the same changes.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub async fn run(flags: &Flags) -> Result<()> {
    let records: usize = flags.get("records", 5000)?;
    let products: usize = flags.get("products", 250)?;
    let seed: u64 = flags.get("seed", 42)?;
    let env = TestEnv::new().await?;

    eprintln!("writing {records} changes over {products} products (seed {seed})...");
    let mut writes = Vec::new();
    for p in 0..products {
        writes.push(Write::Product(format!("p{p}"), 1999, 1));
        for l in 0..3 {
            writes.push(Write::Stock(format!("p{p}"), format!("l{l}"), 10, 1));
        }
    }
    let mut rng = Rng(seed | 1);
    let mut version = 2;
    while writes.len() < records {
        let p = format!("p{}", rng.below(products as u64));
        version += 1;
        if rng.below(4) == 0 {
            writes.push(Write::Product(p, 1000 + rng.below(9000), version));
        } else {
            let l = format!("l{}", rng.below(3));
            writes.push(Write::Stock(p, l, rng.below(20) as i64, version));
        }
    }
    for write in &writes {
        write.apply(&env).await?;
    }
    let product_records = env.products_event().await?.records;
    let inventory_records = env.inventory_event().await?.records;
    ensure!(
        product_records.len() + inventory_records.len() == writes.len(),
        "expected {} stream records, read {} + {}",
        writes.len(),
        product_records.len(),
        inventory_records.len()
    );
    // Lambda's batches: 100 records of one shard each, the two tables' batches interleaved.
    let mut batches: Vec<Event> = Vec::new();
    let (mut a, mut b) = (
        product_records.chunks(BATCH_SIZE),
        inventory_records.chunks(BATCH_SIZE),
    );
    loop {
        let (x, y) = (a.next(), b.next());
        if x.is_none() && y.is_none() {
            break;
        }
        for chunk in [x, y].into_iter().flatten() {
            let mut event = Event::default();
            event.records = chunk.to_vec();
            batches.push(event);
        }
    }
    let total = writes.len();
    eprintln!("{total} records in {} batches", batches.len());

    let mut naive = Vec::new();
    let mut batched = Vec::new();
    let mut floor = Vec::new();
    let mut outbox_floor = Vec::new();
    let mut replayed = Vec::new();
    for round in 0..2 {
        let config = env.fresh_summaries(&format!("naive{round}")).await?;
        naive.push(run_naive(&env, &config, &batches).await?);
        check(&env, &config, products).await?;
        let config = env.fresh_summaries(&format!("batched{round}")).await?;
        batched.push(run_batched(&env, &config, &batches).await?);
        check(&env, &config, products).await?;
        // The same backlog again, as after a checkpoint lost: every record is covered.
        replayed.push(run_batched(&env, &config, &batches).await?);
        let empty = env.fresh_summaries(&format!("floor{round}")).await?;
        floor.push(write_floor(&env, &config, &empty, products, Outbox::None).await?);
        let empty = env.fresh_summaries(&format!("outbox{round}")).await?;
        outbox_floor.push(write_floor(&env, &config, &empty, products, Outbox::Cleared).await?);
    }
    let best = |runs: &[Duration]| runs.iter().min().copied().unwrap_or_default();
    let rate = |d: Duration| total as f64 / d.as_secs_f64();
    let (n, b, f) = (best(&naive), best(&batched), best(&floor));
    let r = best(&replayed);
    let o = best(&outbox_floor);
    println!("projector benchmark: {total} stream records, {products} products, batches of {BATCH_SIZE}, best of 2 runs each");
    println!(
        "  naive (one record at a time): {:>8.0} records/s  ({:.2} s)",
        rate(n),
        n.as_secs_f64()
    );
    println!(
        "  summary-projector (batched):  {:>8.0} records/s  ({:.2} s)",
        rate(b),
        b.as_secs_f64()
    );
    println!(
        "  the same backlog replayed:    {:>8.0} records/s  ({:.2} s: every record covered: only the summaries read, 25 keys a call)",
        rate(r),
        r.as_secs_f64()
    );
    println!(
        "  write-only floor:             {:>8.0} records/s  ({:.2} s: the {products} final summaries by conditional PutItem, {CONCURRENCY} at a time)",
        rate(f),
        f.as_secs_f64()
    );
    println!(
        "  outbox floor:                 {:>8.0} records/s  ({:.2} s: the same, each with its tags pending, then each outbox cleared)",
        rate(o),
        o.as_secs_f64()
    );
    println!(
        "  ratio: {:.1}x naive, {:.2}x the floor, {:.2}x the outbox floor",
        rate(b) / rate(n),
        rate(b) / rate(f),
        rate(b) / rate(o)
    );
    Ok(())
}

/// The Refresher's concurrency: the floor writes as many at once.
const CONCURRENCY: usize = 16;

/// What a floor writes for each product besides its summary.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outbox {
    /// Nothing: the write-only floor.
    None,
    /// The summary's tags in its outbox, then the outbox cleared by a second conditional
    /// write: the least the outbox protocol writes for a product whose card changed.
    Cleared,
}

/// The least a projector must do for this backlog: write each product's final summary (as the
/// batched run left it) once, by conditional PutItem into an empty table, `CONCURRENCY` at a
/// time; with `outbox`, also what the outbox protocol writes beside it.
async fn write_floor(
    env: &TestEnv,
    projected: &ProjectorConfig,
    empty: &ProjectorConfig,
    products: usize,
    outbox: Outbox,
) -> Result<Duration> {
    let from = SummaryStore::new(env.dynamodb.clone(), &projected.tables.summaries);
    let to = SummaryStore::new(env.dynamodb.clone(), &empty.tables.summaries);
    let mut finals = Vec::new();
    for p in 0..products {
        let id = ProductId::parse(format!("p{p}"))?;
        let stored = from.get(&id).await?.context("a projected summary")?;
        finals.push((id, stored));
    }
    let start = Instant::now();
    stream::iter(&finals)
        .map(Ok::<_, anyhow::Error>)
        .try_for_each_concurrent(CONCURRENCY, |(id, stored)| {
            let to = to.clone();
            async move {
                let covers = stored.covers.clone().unwrap_or_default();
                let tags = match (outbox, &stored.record) {
                    (Outbox::Cleared, Some(record)) => all_tags(&record.summary),
                    _ => TagSet::new(),
                };
                let put = to.put(id, stored.record.as_ref(), None, &tags, &covers, 0);
                ensure!(put.await? == Written::Applied, "{id} was already written");
                Ok(to.clear_pending(id, 1, &tags, None).await?)
            }
        })
        .await?;
    Ok(start.elapsed())
}

enum Write {
    Product(String, u64, u64),
    Stock(String, String, i64, u64),
}

impl Write {
    async fn apply(&self, env: &TestEnv) -> Result<()> {
        match self {
            Write::Product(id, price, version) => {
                let mut p = product(id, "s1");
                p.price = MinorUnits::new(*price)?;
                p.version = *version;
                env.put_product(&p).await
            }
            Write::Stock(id, location, on_hand, version) => {
                let mut row = stock(id, location, *on_hand, 0);
                row.version = *version;
                env.put_stock(&row).await
            }
        }
    }
}

async fn run_batched(
    env: &TestEnv,
    config: &ProjectorConfig,
    batches: &[Event],
) -> Result<Duration> {
    let projector = env.projector_with(config);
    let start = Instant::now();
    for batch in batches {
        let response = projector.handle(batch.clone()).await?;
        ensure!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    Ok(start.elapsed())
}

/// The same refresh protocol, one record at a time: no coalescing, no batched reads, one
/// SendMessage per record.
async fn run_naive(env: &TestEnv, config: &ProjectorConfig, batches: &[Event]) -> Result<Duration> {
    let refresher = Refresher::new(
        SourceStore::new(env.dynamodb.clone(), &config.tables),
        SummaryStore::new(env.dynamodb.clone(), &config.tables.summaries),
        config.stock_tag_policy,
    );
    let gate = ListingGate::new(
        SummaryStore::new(env.dynamodb.clone(), &config.tables.summaries),
        TagPublisher::new(env.sqs.clone(), &config.tag_queue_url),
        ListingCheckQueue::new(env.sqs.clone(), &config.listing_check_queue_url),
        config.stock_tag_policy,
    );
    let start = Instant::now();
    for batch in batches {
        for record in &batch.records {
            let change = catalog_core::stream::decode(record).map_err(anyhow::Error::msg)?;
            let outcome = refresher
                .refresh(std::slice::from_ref(&change.product_id))
                .await;
            let refreshed = outcome.into_iter().next().expect("one outcome")?;
            gate.deliver(&[refreshed], change.event_time).await?;
        }
    }
    Ok(start.elapsed())
}

/// Both variants must leave every summary equal to the projection of its rows.
async fn check(env: &TestEnv, config: &ProjectorConfig, products: usize) -> Result<()> {
    let store = SummaryStore::new(env.dynamodb.clone(), &config.tables.summaries);
    stream::iter(0..products)
        .map(Ok::<_, anyhow::Error>)
        .try_for_each_concurrent(16, |p| {
            let store = store.clone();
            async move {
                let id = format!("p{p}");
                let stored = store
                    .get(&catalog_core::ids::ProductId::parse(&id)?)
                    .await?;
                let actual = stored.and_then(|s| s.record).map(|r| r.summary);
                let id = catalog_core::ids::ProductId::parse(&id)?;
                let expected = expected_summary(&env.dynamodb, &config.tables, &id).await?;
                ensure!(actual == expected, "{id} did not converge");
                Ok(())
            }
        })
        .await?;
    env.drain_queue("TagQueue").await?;
    Ok(())
}
