//! Demo catalog data: a seeded generator of products and stock rows, and a loader that writes
//! them one batch at a time (DynamoDB Local is many times slower when batch writes overlap)
//! while reporting progress.

use std::collections::HashMap;

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use catalog::store::TableNames;
use catalog_core::ids::{LocationId, ProductId, StoreId};
use catalog_core::model::{Image, InventoryRow, MinorUnits, Product, ProductStatus, Timestamp};

use crate::rng::Rng;

/// How much demo data to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoSize {
    pub products: usize,
    pub stores: usize,
    pub locations: usize,
    pub seed: u64,
}

const ADJECTIVES: &[&str] = &[
    "Classic", "Organic", "Linen", "Wool", "Everyday", "Studio", "Trail", "Ceramic", "Walnut",
    "Recycled", "Vintage", "Compact",
];
const NOUNS: &[&str] = &[
    "Mug", "Tote", "Lamp", "Jacket", "Notebook", "Backpack", "Candle", "Blanket", "Kettle",
    "Sneaker", "Scarf", "Planter",
];

/// The id of the demo product number `i`.
pub fn product_id(i: usize) -> String {
    format!("p-{i:05}")
}

/// The id of demo store number `i`.
pub fn store_id(i: usize) -> String {
    format!("store-{}", i + 1)
}

/// The id of demo location number `i`.
pub fn location_id(i: usize) -> String {
    format!("loc-{}", i + 1)
}

/// The demo catalog: products spread over the stores, each stocked at every location.
pub fn generate(size: DemoSize) -> Result<(Vec<Product>, Vec<InventoryRow>)> {
    let mut rng = Rng::new(size.seed);
    let mut products = Vec::with_capacity(size.products);
    let mut rows = Vec::with_capacity(size.products * size.locations);
    for i in 0..size.products {
        let id = product_id(i);
        let name = format!("{} {} {i}", rng.pick(ADJECTIVES), rng.pick(NOUNS));
        let status = if rng.chance(90) {
            ProductStatus::Active
        } else {
            ProductStatus::Draft
        };
        products.push(Product {
            product_id: ProductId::parse(&id)?,
            store_id: StoreId::parse(store_id(i % size.stores.max(1)))?,
            slug: name.to_lowercase().replace(' ', "-"),
            name,
            price: MinorUnits::new(100 * (5 + rng.below(200)) - 1)?,
            status,
            deleted_at: None,
            images: vec![Image {
                url: format!("/images/{id}.svg"),
                position: 0,
            }],
            thumbnail_url: None,
            track_inventory: !rng.chance(5),
            created_at: Some(created_at(size.seed, i)),
            version: 1,
        });
        for l in 0..size.locations {
            rows.push(InventoryRow {
                product_id: ProductId::parse(&id)?,
                location_id: LocationId::parse(location_id(l))?,
                on_hand: rng.below(40) as i64,
                reserved: rng.below(3) as i64,
                version: 1,
            });
        }
    }
    Ok((products, rows))
}

/// When demo product `i` was created: some time in 2026 up to November, from its own seeded
/// stream, so that adding the field left every other generated value as it was.
fn created_at(seed: u64, i: usize) -> Timestamp {
    const JAN_1_2026: i64 = 1_767_225_600;
    let offset = Rng::new(seed ^ (i as u64).rotate_left(32)).below(330 * 86_400);
    let time =
        chrono::DateTime::from_timestamp(JAN_1_2026 + offset as i64, 0).expect("a time in 2026");
    Timestamp::from_utc(time)
}

/// Writes the demo catalog, 25 items a call, one call at a time; `progress(done, total)` is
/// called after every call.
pub async fn load(
    client: &aws_sdk_dynamodb::Client,
    tables: &TableNames,
    size: DemoSize,
    mut progress: impl FnMut(usize, usize),
) -> Result<usize> {
    let (products, rows) = generate(size)?;
    let mut items: Vec<(&str, HashMap<String, AttributeValue>)> = Vec::new();
    for product in &products {
        items.push((&tables.products, serde_dynamo::to_item(product)?));
    }
    for row in &rows {
        items.push((&tables.inventory, serde_dynamo::to_item(row)?));
    }
    let total = items.len();
    let mut done = 0;
    for chunk in items.chunks(25) {
        let mut requests: HashMap<String, Vec<WriteRequest>> = HashMap::new();
        for (table, item) in chunk {
            requests.entry((*table).to_owned()).or_default().push(
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item.clone())).build()?)
                    .build(),
            );
        }
        while !requests.is_empty() {
            let output = client
                .batch_write_item()
                .set_request_items(Some(requests))
                .send()
                .await
                .context("loading demo data")?;
            requests = output.unprocessed_items.unwrap_or_default();
        }
        done += chunk.len();
        progress(done, total);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_catalog() {
        let size = DemoSize {
            products: 50,
            stores: 3,
            locations: 2,
            seed: 7,
        };
        let (a, rows) = generate(size).unwrap();
        assert_eq!(a, generate(size).unwrap().0);
        assert_eq!(rows.len(), 100);
        let other = generate(DemoSize { seed: 8, ..size }).unwrap().0;
        assert_ne!(a, other);
        let stores: std::collections::BTreeSet<_> = a.iter().map(|p| p.store_id.clone()).collect();
        assert_eq!(stores.len(), 3);
    }
}
