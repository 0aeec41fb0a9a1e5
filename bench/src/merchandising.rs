//! The merchandising benchmark: a 24-card page of each sort and filter, at stores of several
//! sizes, measured side by side in one run against
//! (a) today's title page through the same handler,
//! (b) the raw SDK Query of the same index and key range, no handler (the floor), and
//! (c) reading the store's summaries and sorting and filtering them in memory (what a
//!     storefront does when its API cannot sort, as Medusa's Next.js starter does).
//! Then the write units one summary change costs with the listing indexes and without them.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_sdk_dynamodb::types::AttributeValue;
use catalog::store::SummaryStore;
use catalog_core::ids::StoreId;
use catalog_core::listing::{listed, Filters, Listing, Sort};
use catalog_core::model::{MinorUnits, SummaryRecord, Timestamp};
use catalog_core::testing::{product, stock};
use catalog_tests::TestEnv;

use crate::Flags;

mod write_units;

const PAGE: usize = 24;

/// The listings measured: a name, the sort, and the filters.
fn variants() -> Vec<(&'static str, Sort, Filters)> {
    let in_stock = Filters {
        in_stock: true,
        ..Filters::default()
    };
    let range = Filters {
        min_price: MinorUnits::new(1_000).ok(),
        max_price: MinorUnits::new(5_000).ok(),
        ..Filters::default()
    };
    vec![
        ("title (today's page)", Sort::Title, Filters::default()),
        ("price_asc", Sort::PriceAsc, Filters::default()),
        ("price_desc", Sort::PriceDesc, Filters::default()),
        ("newest", Sort::Newest, Filters::default()),
        ("title, inStock", Sort::Title, in_stock),
        ("price_asc, inStock", Sort::PriceAsc, in_stock),
        ("newest, inStock", Sort::Newest, in_stock),
        ("price_asc, 10.00 to 50.00", Sort::PriceAsc, range),
    ]
}

/// The API query string of a listing.
fn query_string(sort: Sort, f: &Filters) -> String {
    let mut query = format!("limit={PAGE}&sort={sort}");
    if f.in_stock {
        query.push_str("&inStock=true");
    }
    for (name, price) in [("minPrice", f.min_price), ("maxPrice", f.max_price)] {
        if let Some(p) = price {
            query.push_str(&format!("&{name}={}", p.get()));
        }
    }
    query
}

pub async fn run(flags: &Flags) -> Result<()> {
    let sizes: String = flags.get("sizes", "100,1000,10000".to_owned())?;
    let sizes: Vec<usize> = sizes
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .context("--sizes takes numbers, e.g. 100,1000")
        })
        .collect::<Result<_>>()?;
    let rounds: usize = flags.get("rounds", 200)?;
    let env = TestEnv::new().await?;
    for &size in &sizes {
        seed(&env, size).await?;
    }
    println!(
        "merchandising benchmark: {PAGE}-card pages, {rounds} per listing through the handler and the raw Query, {} in memory (interleaved), ms",
        rounds.div_ceil(MEMORY_EVERY)
    );
    for &size in &sizes {
        measure_store(&env, size, rounds).await?;
    }
    write_units::run(&env).await
}

/// Store `m{size}`: prices with ties, about one product in five out of stock, creation times
/// spread over a year, all through the real projector.
async fn seed(env: &TestEnv, size: usize) -> Result<()> {
    eprintln!("writing and projecting a store of {size} products...");
    let (mut products, mut rows) = (Vec::new(), Vec::new());
    for i in 0..size {
        let id = format!("m{size}-p{i}");
        let mut p = product(&id, &format!("m{size}"));
        p.name = format!("Product {:05}", (i * 7919) % 100_000);
        p.price = MinorUnits::new(100 + (i as u64 * 37) % 9_000)?;
        let minute = (i as i64 * 104_729) % 525_600;
        let created = chrono::DateTime::from_timestamp(1_767_225_600 + minute * 60, 0)
            .context("a time in 2026")?;
        p.created_at = Some(Timestamp::from_utc(created));
        products.push(serde_dynamo::to_item(&p)?);
        rows.push(serde_dynamo::to_item(stock(&id, "l0", (i % 5) as i64, 0))?);
    }
    crate::seed::batch_write(&env.dynamodb, &env.tables.products, products).await?;
    crate::seed::batch_write(&env.dynamodb, &env.tables.inventory, rows).await?;
    let projector = env.projector();
    for event in [env.products_event().await?, env.inventory_event().await?] {
        for chunk in event.records.chunks(100) {
            let mut batch = aws_lambda_events::event::dynamodb::Event::default();
            batch.records = chunk.to_vec();
            let failures = projector.handle(batch).await?.batch_item_failures;
            ensure!(failures.is_empty(), "projection failed: {failures:?}");
        }
    }
    Ok(())
}

/// The three ways of serving one listing, plus the title page they are held against.
#[derive(Default)]
struct Samples {
    api: Vec<Duration>,
    raw: Vec<Duration>,
    memory: Vec<Duration>,
}

/// The in-memory approach reads a whole store per page, so it runs every this many rounds.
const MEMORY_EVERY: usize = 5;

async fn measure_store(env: &TestEnv, size: usize, rounds: usize) -> Result<()> {
    let store = StoreId::parse(format!("m{size}"))?;
    let variants = variants();
    let mut samples: Vec<Samples> = variants.iter().map(|_| Samples::default()).collect();
    let api = env.listing_api();
    for round in 0..rounds + 3 {
        for (v, (_, sort, filters)) in variants.iter().enumerate() {
            let listing = Listing::new(store.clone(), *sort, *filters)?;
            // Built before the clock starts: API Gateway hands the handler a parsed event.
            let request = api_request(&store, &query_string(*sort, filters))?;
            for k in 0..3 {
                let approach = (round + v + k) % 3;
                if approach == 2 && round % MEMORY_EVERY != 0 {
                    continue;
                }
                let start = Instant::now();
                let shown = match approach {
                    0 => through_api(&api, request.clone()).await?,
                    1 => raw_query(env, &listing).await?,
                    _ => in_memory(env, &listing).await?,
                };
                let elapsed = start.elapsed();
                ensure!(shown > 0, "an empty page");
                if round >= 3 {
                    let s = &mut samples[v];
                    [&mut s.api, &mut s.raw, &mut s.memory][approach].push(elapsed);
                }
            }
        }
    }
    print_store(size, &variants, &mut samples);
    Ok(())
}

fn api_request(store: &StoreId, query: &str) -> Result<ApiGatewayV2httpRequest> {
    let path = format!("/stores/{store}/products?{query}");
    let event = catalog_local::emulator::apigw::http_request("GET", &path, &[], None);
    Ok(serde_json::from_value(event)?)
}

/// (the handler) One listing page through listing-api's handler, as API Gateway calls it.
async fn through_api(
    api: &listing_api::ListingApi,
    request: ApiGatewayV2httpRequest,
) -> Result<usize> {
    let response = api.handle(request).await;
    ensure!(response.status_code == 200, "{response:?}");
    Ok(PAGE)
}

/// (b) The same Query the handler makes (index, key conditions, direction, 25 items), sent
/// and not decoded: the floor any handler stands on.
async fn raw_query(env: &TestEnv, listing: &Listing) -> Result<usize> {
    let summaries = SummaryStore::new(env.dynamodb.clone(), &env.tables.summaries);
    let request = summaries.listing_query(listing).limit(PAGE as i32 + 1);
    Ok(request.send().await?.count as usize)
}

/// (c) Every active summary of the store (the title index, page after page), then filtered,
/// sorted and cut to a page in memory, and serialized as the API would.
async fn in_memory(env: &TestEnv, listing: &Listing) -> Result<usize> {
    let items = env
        .dynamodb
        .query()
        .table_name(&env.tables.summaries)
        .index_name("byStore")
        .key_condition_expression("storeId = :s AND begins_with(listSk, :a)")
        .expression_attribute_values(":s", AttributeValue::S(listing.store().to_string()))
        .expression_attribute_values(":a", AttributeValue::S("A#".into()))
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await?;
    let records: Vec<SummaryRecord> = serde_dynamo::from_items(items)?;
    let mut shown = listed(listing, records.iter().map(|r| &r.summary));
    shown.truncate(PAGE);
    ensure!(!serde_json::to_string(&shown)?.is_empty());
    Ok(shown.len())
}

fn percentile(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort();
    let at = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[at].as_secs_f64() * 1000.0
}

fn print_store(size: usize, variants: &[(&str, Sort, Filters)], samples: &mut [Samples]) {
    println!("store of {size} products");
    println!(
        "  {:<26} {:>15} {:>15} {:>17} {:>13} {:>13} {:>11}",
        "listing",
        "handler p50/p99",
        "raw p50/p99",
        "in-memory p50/p99",
        "/title p50/99",
        "/raw p50/99",
        "mem/handler"
    );
    let title = (
        percentile(&mut samples[0].api, 0.5),
        percentile(&mut samples[0].api, 0.99),
    );
    for ((name, _, _), s) in variants.iter().zip(samples.iter_mut()) {
        let (a50, a99) = (percentile(&mut s.api, 0.5), percentile(&mut s.api, 0.99));
        let (r50, r99) = (percentile(&mut s.raw, 0.5), percentile(&mut s.raw, 0.99));
        let (m50, m99) = (
            percentile(&mut s.memory, 0.5),
            percentile(&mut s.memory, 0.99),
        );
        println!(
            "  {name:<26} {a50:>6.2} / {a99:>6.2} {r50:>6.2} / {r99:>6.2} {m50:>7.2} / {m99:>7.2}   {:>4.2}x/{:>4.2}x   {:>4.2}x/{:>4.2}x {:>9.1}x",
            a50 / title.0,
            a99 / title.1,
            a50 / r50,
            a99 / r99,
            m50 / a50
        );
    }
}
