//! Decoding DynamoDB stream records (as Lambda delivers them) into the products they touch.
//!
//! The projector never trusts an image for content: an image may be older than the row it
//! describes. It only takes the key, then recomputes from the current rows.

use std::collections::BTreeMap;

use aws_lambda_events::event::dynamodb::EventRecord;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::ids::{LocationId, ProductId};
use crate::refresh::{raised_to, Row, RowChange};

/// A change to a product's rows in Products or Inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceChange {
    pub product_id: ProductId,
    pub sequence_number: String,
    /// When DynamoDB recorded the change, rounded down to the second as DynamoDB documents:
    /// the start of the freshness clock.
    pub event_time: DateTime<Utc>,
    /// Which row changed, and the version it was raised to: what the safe skip compares.
    pub row: RowChange,
}

/// Both source tables have `productId` as their partition key; Inventory adds `locationId`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Keys {
    product_id: ProductId,
    location_id: Option<LocationId>,
}

/// The `version` attribute of a stream image, if it has a whole-number one.
fn version(image: &serde_dynamo::Item) -> Option<u64> {
    match image.get("version")? {
        serde_dynamo::AttributeValue::N(n) => n.parse().ok(),
        _ => None,
    }
}

/// Reads the product a record is about. `Err` carries the reason the record can never be
/// processed; the record is then parked, not retried.
pub fn decode(record: &EventRecord) -> Result<SourceChange, String> {
    let sequence_number = record
        .change
        .sequence_number
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| "record has no SequenceNumber".to_owned())?;
    let keys: Keys = serde_dynamo::from_item(record.change.keys.clone())
        .map_err(|e| format!("record keys are not a product key: {e}"))?;
    let row = match keys.location_id {
        Some(location) => Row::Stock(location),
        None => Row::Product,
    };
    Ok(SourceChange {
        product_id: keys.product_id,
        sequence_number,
        event_time: record.change.approximate_creation_date_time,
        row: RowChange {
            row,
            raised_to: raised_to(
                &record.event_name,
                version(&record.change.old_image),
                version(&record.change.new_image),
            ),
        },
    })
}

/// A batch's records sorted by the product they touch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Grouped {
    /// Each product once, in order of first appearance.
    pub ids: Vec<ProductId>,
    /// The indices of each product's records, in batch order.
    pub records_of: BTreeMap<ProductId, Vec<usize>>,
    /// What each product's records changed, in batch order.
    pub changes_of: BTreeMap<ProductId, Vec<RowChange>>,
    /// Records that can never be processed, with the reason.
    pub undecodable: Vec<(usize, String)>,
}

/// Groups a batch by product, so each product is refreshed once however many records it has.
pub fn group(records: &[EventRecord]) -> Grouped {
    let mut grouped = Grouped::default();
    for (i, record) in records.iter().enumerate() {
        match decode(record) {
            Ok(change) => {
                let indices = grouped
                    .records_of
                    .entry(change.product_id.clone())
                    .or_default();
                if indices.is_empty() {
                    grouped.ids.push(change.product_id.clone());
                }
                indices.push(i);
                let changes = grouped.changes_of.entry(change.product_id).or_default();
                changes.push(change.row);
            }
            Err(reason) => grouped.undecodable.push((i, reason)),
        }
    }
    grouped
}

/// Orders DynamoDB stream sequence numbers, which are decimal strings of up to 40 digits.
pub fn sequence_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::event::dynamodb::Event;
    use serde_json::json;

    use super::*;

    fn event(keys: serde_json::Value, seq: Option<&str>) -> Event {
        serde_json::from_value(json!({"Records": [{
            "eventID": "1", "eventName": "MODIFY", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": 1764130000.5, "Keys": keys,
                         "SequenceNumber": seq, "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/Products/stream/x"
        }]}))
        .unwrap()
    }

    #[test]
    fn decodes_the_product_key() {
        let e = event(json!({"productId": {"S": "p1"}}), Some("100"));
        let change = decode(&e.records[0]).unwrap();
        assert_eq!(change.product_id.as_str(), "p1");
        assert_eq!(change.sequence_number, "100");
        // Lambda's event type keeps whole seconds, as DynamoDB documents the field.
        assert_eq!(change.event_time.timestamp(), 1_764_130_000);
    }

    #[test]
    fn missing_or_mistyped_keys_are_reasons_not_panics() {
        for keys in [
            json!({}),
            json!({"productId": {"N": "1"}}),
            json!({"productId": {"S": ""}}),
            json!({"sku": {"S": "p1"}}),
        ] {
            assert!(decode(&event(keys, Some("1")).records[0]).is_err());
        }
        assert!(decode(&event(json!({"productId": {"S": "p1"}}), None).records[0]).is_err());
    }

    #[test]
    fn groups_records_by_product_in_first_seen_order() {
        let key = |id: &str| json!({"productId": {"S": id}});
        let mut records = Vec::new();
        for (i, keys) in [key("b"), key("a"), json!({}), key("b")]
            .into_iter()
            .enumerate()
        {
            records.extend(event(keys, Some(&(i + 1).to_string())).records);
        }
        let grouped = group(&records);
        let ids: Vec<&str> = grouped.ids.iter().map(ProductId::as_str).collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(grouped.records_of[&ProductId::parse("b").unwrap()], [0, 3]);
        assert_eq!(grouped.undecodable.len(), 1);
        assert_eq!(grouped.undecodable[0].0, 2);
    }

    #[test]
    fn reads_the_row_and_its_versions_from_the_images() {
        let mut e = event(
            json!({"productId": {"S": "p1"}, "locationId": {"S": "l1"}}),
            Some("7"),
        );
        e.records[0].change.old_image =
            serde_json::from_value(json!({"version": {"N": "2"}})).unwrap();
        e.records[0].change.new_image =
            serde_json::from_value(json!({"version": {"N": "3"}})).unwrap();
        let change = decode(&e.records[0]).unwrap();
        assert_eq!(change.row.row, Row::Stock(LocationId::parse("l1").unwrap()));
        assert_eq!(change.row.raised_to, Some(3));
        let bare = decode(&event(json!({"productId": {"S": "p1"}}), Some("8")).records[0]).unwrap();
        assert_eq!(
            bare.row,
            RowChange {
                row: Row::Product,
                raised_to: None
            }
        );
    }

    #[test]
    fn sequence_numbers_compare_numerically() {
        use std::cmp::Ordering::*;
        assert_eq!(sequence_cmp("99", "100"), Less);
        assert_eq!(sequence_cmp("200", "100"), Greater);
        assert_eq!(sequence_cmp("5", "5"), Equal);
    }
}
