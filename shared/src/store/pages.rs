//! Reading a table page by page: one share of it (a parallel-Scan segment or one store's
//! `byStore` index), and the checkpoint form of a page key. Whole reads follow
//! `LastEvaluatedKey` with the SDK's own paginators; this module is for reads that stop after
//! a page and resume later.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use catalog_core::ids::StoreId;

use super::Item;
use crate::fault::{classify, Fault};

/// The index of Products and of Summaries keyed by `storeId` (Summaries sorts it by `listSk`,
/// the listing order).
pub const STORE_INDEX: &str = "byStore";

/// A share of a table read page by page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slice {
    /// One segment of a parallel Scan, read consistently.
    Segment { segment: u32, total: u32 },
    /// One store's items through the `byStore` index (index reads are eventually consistent).
    Store(StoreId),
}

/// One page of items and the key the next page starts at (`None` after the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Item>,
}

/// One page of `slice` of `table`: at most `limit` items after `start`.
pub(crate) async fn read_page(
    client: &Client,
    table: &str,
    slice: &Slice,
    limit: i32,
    start: Option<Item>,
) -> Result<Page<Item>, Fault> {
    let (items, next) = match slice {
        Slice::Store(store) => {
            let output = client
                .query()
                .table_name(table)
                .index_name(STORE_INDEX)
                .key_condition_expression("storeId = :s")
                .expression_attribute_values(":s", AttributeValue::S(store.to_string()))
                .limit(limit)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("Query byStore", e))?;
            (output.items, output.last_evaluated_key)
        }
        Slice::Segment { segment, total } => {
            let output = segment_scan(client, table, *segment, *total)
                .limit(limit)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| classify("Scan", e))?;
            (output.items, output.last_evaluated_key)
        }
    };
    Ok(Page {
        items: items.unwrap_or_default(),
        next: next.filter(|k| !k.is_empty()),
    })
}

/// A consistent Scan of one parallel segment of `table`.
pub(crate) fn segment_scan(
    client: &Client,
    table: &str,
    segment: u32,
    total: u32,
) -> aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder {
    client
        .scan()
        .table_name(table)
        .segment(segment as i32)
        .total_segments(total.max(1) as i32)
        .consistent_read(true)
}

/// A page key as a checkpoint holds it (every key attribute of these tables is a string);
/// `None` for no key.
pub fn key_to_checkpoint(key: Item) -> Option<BTreeMap<String, String>> {
    let map: BTreeMap<String, String> = key
        .into_iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k, s.clone())))
        .collect();
    (!map.is_empty()).then_some(map)
}

/// The page key a checkpoint holds.
pub fn key_from_checkpoint(key: &BTreeMap<String, String>) -> Item {
    key.iter()
        .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_key_round_trips_and_an_empty_one_is_none() {
        let key: Item = [
            ("productId".to_owned(), AttributeValue::S("p1".into())),
            ("storeId".to_owned(), AttributeValue::S("s1".into())),
        ]
        .into();
        let checkpoint = key_to_checkpoint(key.clone()).unwrap();
        assert_eq!(key_from_checkpoint(&checkpoint), key);
        assert_eq!(key_to_checkpoint(Item::new()), None);
    }
}
