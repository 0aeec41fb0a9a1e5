//! Write units per summary change with the six listing indexes and with `byStore` alone, as
//! DynamoDB reports them (`ReturnConsumedCapacity: INDEXES`) for the same change to the same
//! item in two tables: Summaries from template.yaml, and a copy with only `byStore`.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use catalog_core::listing::index_keys;
use catalog_core::model::{MinorUnits, ProductSummary, SummaryRecord};
use catalog_local::template::Template;
use catalog_tests::TestEnv;

type Item = HashMap<String, AttributeValue>;

/// What a change does to an active product with 5 units in stock.
type Change = (&'static str, fn(&mut ProductSummary));

const CHANGES: [Change; 5] = [
    ("stock level, staying in stock (5 -> 4)", |s| {
        s.inventory_available = Some(4)
    }),
    ("goes out of stock (5 -> 0)", |s| {
        s.inventory_available = Some(0)
    }),
    ("price", |s| {
        s.price = MinorUnits::new(s.price.get() + 100).expect("a price")
    }),
    ("title", |s| s.title = "Renamed product".into()),
    ("archive", |s| s.active = false),
];

pub async fn run(env: &TestEnv) -> Result<()> {
    let before = create_before_table(env).await?;
    let after = env.tables.summaries.clone();
    let id = "m100-p1";
    let base = env
        .dynamodb
        .get_item()
        .table_name(&after)
        .key("productId", AttributeValue::S(id.into()))
        .send()
        .await?
        .item
        .context("a seeded summary")?;
    let mut summary = serde_dynamo::from_item::<_, SummaryRecord>(base.clone())?.summary;
    summary.inventory_available = Some(5);
    println!("write units per summary change (active product, 5 in stock; table + indexes)");
    println!(
        "  {:<40} {:>22} {:>22}",
        "change", "byStore only (before)", "six indexes (now)"
    );
    let create = [
        units(env, &before, None, &item(&base, &summary, false)).await?,
        units(env, &after, None, &item(&base, &summary, true)).await?,
    ];
    println!("  {:<40} {:>22} {:>22}", "create", create[0], create[1]);
    for (name, change) in CHANGES {
        let mut next = summary.clone();
        change(&mut next);
        let mut row = Vec::new();
        for (table, with_keys) in [(&before, false), (&after, true)] {
            let old = item(&base, &summary, with_keys);
            row.push(units(env, table, Some(&old), &item(&base, &next, with_keys)).await?);
        }
        println!("  {name:<40} {:>22} {:>22}", row[0], row[1]);
    }
    Ok(())
}

/// A copy of Summaries with `byStore` alone, as the table was before the listing indexes.
async fn create_before_table(env: &TestEnv) -> Result<String> {
    let template = Template::load(&catalog_local::workspace_root())?;
    let mut table = template.table("SummariesTable")?.clone();
    table.indexes.retain(|i| i.name == "byStore");
    let used: HashSet<String> = table
        .key_schema
        .iter()
        .chain(table.indexes.iter().flat_map(|i| i.key_schema.iter()))
        .map(|(name, _)| name.clone())
        .collect();
    table.attributes.retain(|(name, _)| used.contains(name));
    let name = format!("{}-before", env.tables.summaries);
    table.create(&env.dynamodb, &name).await?;
    Ok(name)
}

/// The stored item of `summary`: `base`'s bookkeeping with the summary's fields and, when
/// `with_keys`, the keys of the new indexes (`index_keys`), else `listSk` alone.
fn item(base: &Item, summary: &ProductSummary, with_keys: bool) -> Item {
    let mut item = base.clone();
    let s = |v: &str| AttributeValue::S(v.to_owned());
    item.insert("title".into(), s(&summary.title));
    item.insert(
        "price".into(),
        AttributeValue::N(summary.price.get().to_string()),
    );
    item.insert("active".into(), AttributeValue::Bool(summary.active));
    let units = summary.inventory_available.unwrap_or_default();
    item.insert(
        "inventoryAvailable".into(),
        AttributeValue::N(units.to_string()),
    );
    let keys = index_keys(summary);
    item.insert("listSk".into(), s(&keys.list_sk));
    for (name, value) in [
        ("priceSk", keys.price_sk),
        ("newSk", keys.new_sk),
        (
            "inStockStoreId",
            keys.in_stock_store_id.map(|s| s.to_string()),
        ),
    ] {
        match value.filter(|_| with_keys) {
            Some(v) => item.insert(name.into(), s(&v)),
            None => item.remove(name),
        };
    }
    if !with_keys {
        item.remove("createdAt");
    }
    item
}

/// Puts `old` (or deletes the item, for a create), then `new`, and formats the units the
/// second write consumed: total (table + indexes).
async fn units(env: &TestEnv, table: &str, old: Option<&Item>, new: &Item) -> Result<String> {
    let key = new.get("productId").cloned().context("a key")?;
    match old {
        Some(old) => {
            let put = env.dynamodb.put_item().table_name(table);
            put.set_item(Some(old.clone())).send().await?;
        }
        None => {
            let delete = env.dynamodb.delete_item().table_name(table);
            delete.key("productId", key).send().await?;
        }
    }
    let output = env
        .dynamodb
        .put_item()
        .table_name(table)
        .set_item(Some(new.clone()))
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .await?;
    let consumed = output.consumed_capacity.context("consumed capacity")?;
    let indexes: f64 = consumed
        .global_secondary_indexes
        .unwrap_or_default()
        .values()
        .filter_map(|c| c.capacity_units)
        .sum();
    let total = consumed.capacity_units.unwrap_or_default();
    Ok(format!("{total} ({} + {indexes})", total - indexes))
}
