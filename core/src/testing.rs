//! Fixtures and proptest strategies for the catalog's records, for tests here and in tests/.

use proptest::prelude::*;

use crate::ids::{LocationId, ProductId, StoreId};
use crate::model::{
    Image, InventoryRow, MinorUnits, Product, ProductStatus, ProductSummary, Timestamp,
};

/// An active, tracked product with one image and a price of 1999.
pub fn product(id: &str, store: &str) -> Product {
    Product {
        product_id: ProductId::parse(id).expect("fixture id"),
        store_id: StoreId::parse(store).expect("fixture id"),
        name: format!("Product {id}"),
        slug: id.to_owned(),
        price: MinorUnits::new(1999).expect("fixture price"),
        status: ProductStatus::Active,
        deleted_at: None,
        images: vec![Image {
            url: format!("https://img.example/{id}.jpg"),
            position: 0,
        }],
        thumbnail_url: None,
        track_inventory: true,
        created_at: None,
        version: 1,
    }
}

/// A stock row of `product` at `location`.
pub fn stock(product: &str, location: &str, on_hand: i64, reserved: i64) -> InventoryRow {
    InventoryRow {
        product_id: ProductId::parse(product).expect("fixture id"),
        location_id: LocationId::parse(location).expect("fixture id"),
        on_hand,
        reserved,
        version: 1,
    }
}

/// An active summary with 5 units in stock.
pub fn summary(id: &str, store: &str) -> ProductSummary {
    ProductSummary {
        product_id: ProductId::parse(id).expect("fixture id"),
        store_id: StoreId::parse(store).expect("fixture id"),
        title: format!("Product {id}"),
        price: MinorUnits::new(1999).expect("fixture price"),
        active: true,
        inventory_available: Some(5),
        primary_image_url: Some(format!("https://img.example/{id}.jpg")),
        created_at: Some(Timestamp::parse("2026-11-01T00:00:00Z").expect("fixture time")),
    }
}

/// Creation times from a small set, so that generated summaries often tie.
pub fn arb_created_at() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        Just("2026-01-01T00:00:00Z"),
        Just("2026-06-01T12:00:00.5Z"),
        Just("2026-11-27T05:00:00Z"),
    ]
    .prop_map(|t| Timestamp::parse(t).expect("fixture time"))
}

/// Product ids from a small alphabet, so that generated rows often share a product.
pub fn arb_product_id() -> impl Strategy<Value = ProductId> {
    "p[0-9]{1,2}".prop_map(|s| ProductId::parse(s).expect("generated id"))
}

/// Store ids from a small alphabet.
pub fn arb_store_id() -> impl Strategy<Value = StoreId> {
    "s[0-3]".prop_map(|s| StoreId::parse(s).expect("generated id"))
}

fn arb_price() -> impl Strategy<Value = MinorUnits> {
    prop_oneof![0..10_000u64, Just(crate::model::MAX_MINOR_UNITS)]
        .prop_map(|p| MinorUnits::new(p).expect("generated price"))
}

fn arb_status() -> impl Strategy<Value = ProductStatus> {
    prop_oneof![
        Just(ProductStatus::Draft),
        Just(ProductStatus::Active),
        Just(ProductStatus::Archived)
    ]
}

/// Any valid product.
pub fn arb_product() -> impl Strategy<Value = Product> {
    (
        arb_product_id(),
        arb_store_id(),
        "\\PC{0,20}",
        arb_price(),
        arb_status(),
        proptest::option::of(Just("2026-01-01T00:00:00Z".to_owned())),
        proptest::collection::vec(("https://i/[a-z]{1,3}", 0..4u32), 0..4),
        proptest::option::of("https://t/[a-z]{0,3}"),
        (any::<bool>(), proptest::option::of(arb_created_at())),
        0..1_000u64,
    )
        .prop_map(
            |(
                product_id,
                store_id,
                name,
                price,
                status,
                deleted_at,
                images,
                thumb,
                (track, created_at),
                version,
            )| {
                Product {
                    slug: product_id.to_string(),
                    product_id,
                    store_id,
                    name,
                    price,
                    status,
                    deleted_at,
                    images: images
                        .into_iter()
                        .map(|(url, position)| Image { url, position })
                        .collect(),
                    thumbnail_url: thumb,
                    track_inventory: track,
                    created_at,
                    version,
                }
            },
        )
}

/// Stock rows of arbitrary products, with negative and huge counts among them.
pub fn arb_inventory() -> impl Strategy<Value = Vec<InventoryRow>> {
    let count = prop_oneof![-5..50i64, Just(i64::MAX), Just(i64::MIN)];
    proptest::collection::vec(
        (arb_product_id(), "l[0-9]", count.clone(), count, 0..100u64),
        0..6,
    )
    .prop_map(|rows| {
        rows.into_iter()
            .map(
                |(product_id, location, on_hand, reserved, version)| InventoryRow {
                    product_id,
                    location_id: LocationId::parse(location).expect("generated id"),
                    on_hand,
                    reserved,
                    version,
                },
            )
            .collect()
    })
}

/// Any summary.
pub fn arb_summary() -> impl Strategy<Value = ProductSummary> {
    (
        arb_product_id(),
        arb_store_id(),
        "[a-c]{0,2}",
        prop_oneof![Just(100u64), Just(200u64)],
        any::<bool>(),
        proptest::option::of(0..3u64),
        (
            proptest::option::of(Just("https://i/a".to_owned())),
            proptest::option::of(arb_created_at()),
        ),
    )
        .prop_map(
            |(
                product_id,
                store_id,
                title,
                price,
                active,
                inventory_available,
                (image, created_at),
            )| {
                ProductSummary {
                    product_id,
                    store_id,
                    title,
                    price: MinorUnits::new(price).expect("generated price"),
                    active,
                    inventory_available,
                    primary_image_url: image,
                    created_at,
                }
            },
        )
}

/// A golden-vector file of contracts/ (the repository's cross-language contracts), parsed: the
/// Rust and the TypeScript tests read the same file, so neither side's copy can drift alone.
pub fn contract(file: &str) -> serde_json::Value {
    let path = format!("{}/../contracts/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
