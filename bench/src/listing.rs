//! The listing benchmark: a 50-card store page built three ways from the same DynamoDB Local,
//! interleaved in one run:
//! (a) listing-api: one Query of the Summaries listing index;
//! (b) naive N+1: Query the store's products, then GetItem each and Query its stock rows;
//! (c) the best join without summaries: Query the store's products (full items), then
//!     BatchGetItem their stock rows.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;
use catalog_core::model::{InventoryRow, MinorUnits, Product, ProductSummary};
use catalog_core::projection::project;
use catalog_core::testing::{product, stock};
use catalog_tests::TestEnv;
use futures::future::try_join_all;

use crate::Flags;

pub(crate) const PAGE: usize = 50;
pub(crate) const LOCATIONS: usize = 3;

pub async fn run(flags: &Flags) -> Result<()> {
    let stores: usize = flags.get("stores", 20)?;
    let per_store: usize = flags.get("per-store", 100)?;
    let rounds: usize = flags.get("rounds", 200)?;
    ensure!(per_store >= PAGE, "--per-store must be at least {PAGE}");
    let env = TestEnv::new().await?;

    eprintln!(
        "writing {} products x {LOCATIONS} locations...",
        stores * per_store
    );
    let mut products = Vec::new();
    let mut rows = Vec::new();
    for s in 0..stores {
        for i in 0..per_store {
            let id = format!("s{s}-p{i}");
            let mut p = product(&id, &format!("s{s}"));
            p.name = format!("Product {:04}", (i * 7919) % 10_000);
            p.price = MinorUnits::new(100 + (i as u64 * 37) % 9_000)?;
            products.push(serde_dynamo::to_item(&p)?);
            for l in 0..LOCATIONS {
                rows.push(serde_dynamo::to_item(stock(
                    &id,
                    &format!("l{l}"),
                    (i % 9) as i64,
                    1,
                ))?);
            }
        }
    }
    crate::seed::batch_write(&env.dynamodb, &env.tables.products, products).await?;
    crate::seed::batch_write(&env.dynamodb, &env.tables.inventory, rows).await?;
    eprintln!("projecting summaries through the projector...");
    let projector = env.projector();
    for event in [env.products_event().await?, env.inventory_event().await?] {
        for chunk in event.records.chunks(100) {
            let mut batch = aws_lambda_events::event::dynamodb::Event::default();
            batch.records = chunk.to_vec();
            ensure!(projector
                .handle(batch)
                .await?
                .batch_item_failures
                .is_empty());
        }
    }

    let api = env.listing_api();
    let client = env.dynamodb.clone();
    let products_table = env.tables.products.clone();
    let inventory_table = env.tables.inventory.clone();
    let mut times: [Vec<Duration>; 3] = Default::default();
    for round in 0..rounds + 10 {
        let store = format!("s{}", round % stores);
        for k in 0..3 {
            let approach = (round + k) % 3;
            let start = Instant::now();
            let cards = match approach {
                0 => {
                    let event = catalog_local::emulator::apigw::http_request(
                        "GET",
                        &format!("/stores/{store}/products?limit={PAGE}"),
                        &[],
                        None,
                    );
                    let response = api.handle(serde_json::from_value(event)?).await;
                    ensure!(response.status_code == 200, "{response:?}");
                    PAGE
                }
                1 => naive(&client, &products_table, &inventory_table, &store).await?,
                _ => join(&client, &products_table, &inventory_table, &store).await?,
            };
            ensure!(cards == PAGE, "approach {approach} built {cards} cards");
            if round >= 10 {
                times[approach].push(start.elapsed());
            }
        }
    }
    let names = [
        "(a) listing-api, one Query of summaries",
        "(b) naive: Query + GetItem and Query per product",
        "(c) join: Query products + BatchGetItem stock",
    ];
    println!(
        "listing benchmark: {}-card page, {} products in {stores} stores, {LOCATIONS} stock rows each, {rounds} pages per approach (interleaved)",
        PAGE,
        stores * per_store
    );
    let mut p50s = Vec::new();
    for (name, samples) in names.iter().zip(times.iter_mut()) {
        samples.sort();
        let pct = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
        println!(
            "  {name:<50} p50 {:>7.2} ms   p99 {:>7.2} ms",
            ms(pct(0.5)),
            ms(pct(0.99))
        );
        p50s.push((pct(0.5), pct(0.99)));
    }
    println!(
        "  listing-api vs naive: {:.1}x faster at p50, {:.1}x at p99",
        ms(p50s[1].0) / ms(p50s[0].0),
        ms(p50s[1].1) / ms(p50s[0].1)
    );
    println!(
        "  listing-api vs join:  {:.1}x faster at p50, {:.1}x at p99",
        ms(p50s[2].0) / ms(p50s[0].0),
        ms(p50s[2].1) / ms(p50s[0].1)
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn store_products(
    client: &Client,
    table: &str,
    store: &str,
) -> Result<Vec<HashMap<String, AttributeValue>>> {
    Ok(client
        .query()
        .table_name(table)
        .index_name("byStore")
        .key_condition_expression("storeId = :s")
        .expression_attribute_values(":s", AttributeValue::S(store.to_owned()))
        .limit(PAGE as i32)
        .send()
        .await?
        .items
        .unwrap_or_default())
}

fn cards_json(cards: &[ProductSummary]) -> Result<usize> {
    let body = serde_json::to_string(cards)?;
    ensure!(!body.is_empty());
    Ok(cards.len())
}

pub(crate) async fn naive(
    client: &Client,
    products: &str,
    inventory: &str,
    store: &str,
) -> Result<usize> {
    let mut cards = Vec::new();
    for item in store_products(client, products, store).await? {
        let key = item["productId"].clone();
        let product: Product = serde_dynamo::from_item(
            client
                .get_item()
                .table_name(products)
                .key("productId", key.clone())
                .send()
                .await?
                .item
                .unwrap_or_default(),
        )?;
        let rows: Vec<InventoryRow> = serde_dynamo::from_items(
            client
                .query()
                .table_name(inventory)
                .key_condition_expression("productId = :p")
                .expression_attribute_values(":p", key)
                .send()
                .await?
                .items
                .unwrap_or_default(),
        )?;
        cards.extend(project(Some(&product), &rows));
    }
    cards_json(&cards)
}

pub(crate) async fn join(
    client: &Client,
    products: &str,
    inventory: &str,
    store: &str,
) -> Result<usize> {
    let items = store_products(client, products, store).await?;
    let products_found: Vec<Product> = serde_dynamo::from_items(items)?;
    let keys: Vec<HashMap<String, AttributeValue>> = products_found
        .iter()
        .flat_map(|p| {
            (0..LOCATIONS).map(move |l| {
                HashMap::from([
                    (
                        "productId".to_owned(),
                        AttributeValue::S(p.product_id.to_string()),
                    ),
                    ("locationId".to_owned(), AttributeValue::S(format!("l{l}"))),
                ])
            })
        })
        .collect();
    let calls = keys.chunks(100).map(|chunk| async move {
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(chunk.to_vec()))
            .build()?;
        let mut rows: Vec<InventoryRow> = Vec::new();
        loop {
            let output = client
                .batch_get_item()
                .request_items(inventory, request)
                .send()
                .await?;
            if let Some(mut responses) = output.responses {
                rows.extend(serde_dynamo::from_items::<_, InventoryRow>(
                    responses.remove(inventory).unwrap_or_default(),
                )?);
            }
            match output
                .unprocessed_keys
                .and_then(|mut u| u.remove(inventory))
            {
                Some(rest) if !rest.keys.is_empty() => request = rest,
                _ => return Ok::<_, anyhow::Error>(rows),
            }
        }
    });
    let rows: Vec<InventoryRow> = try_join_all(calls).await?.into_iter().flatten().collect();
    let mut by_product: HashMap<String, Vec<InventoryRow>> = HashMap::new();
    for row in rows {
        by_product
            .entry(row.product_id.to_string())
            .or_default()
            .push(row);
    }
    let cards: Vec<ProductSummary> = products_found
        .iter()
        .filter_map(|p| {
            let rows = by_product
                .get(p.product_id.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            project(Some(p), rows)
        })
        .collect();
    cards_json(&cards)
}
