//! The bodies of the messages catalog-sync queues: tags for the tag-revalidator, and stream
//! records parked because they can never be processed. Pure; the SQS side is the `catalog`
//! crate's `queue` module.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::ProductId;
use crate::listing::check::IndexPosition;
use crate::tags::{Tag, TagSet};

/// Tags per message: Next.js takes at most 128 tags a call, and a message is one call.
pub const MAX_TAGS_PER_MESSAGE: usize = 100;

/// The body of a tag-queue message (JSON, version 1).
///
/// ```json
/// {"version":1,"tags":["product:p1","store:s1:products"],
///  "eventTime":"2026-11-26T04:15:00.123Z","enqueuedAt":"2026-11-26T04:15:00.180Z"}
/// ```
/// `eventTime` is the earliest stream record time among the changes the message covers, so
/// `revalidated - eventTime` is the staleness a shopper could see. A message on the tag queue
/// goes to every storefront target; the revalidator hands what one target failed to the tag
/// retry queue as a message naming it in `target` (an endpoint URL, or `tag-table:{name}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagMessage {
    pub version: u32,
    pub tags: Vec<Tag>,
    pub event_time: String,
    pub enqueued_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl TagMessage {
    /// The messages that carry `tags`, at most [`MAX_TAGS_PER_MESSAGE`] each.
    pub fn split(tags: &TagSet, event_time: DateTime<Utc>, now: DateTime<Utc>) -> Vec<Self> {
        let tags: Vec<Tag> = tags.iter().cloned().collect();
        tags.chunks(MAX_TAGS_PER_MESSAGE)
            .map(|chunk| TagMessage {
                version: 1,
                tags: chunk.to_vec(),
                event_time: event_time.to_rfc3339_opts(SecondsFormat::Millis, true),
                enqueued_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
                target: None,
            })
            .collect()
    }
}

/// The body of a listing-check message (JSON, version 1): listing tags that wait until the
/// indexes show the product as the table holds it (see [`crate::listing::check`]). The
/// summary-projector reads it from its listing-check queue, checks, and either queues `tags`
/// or follows the index for a while and sends the message again, `waitedSecs` on, as
/// [`next_check`] says.
///
/// ```json
/// {"version":1,"productId":"p1","tags":["store:s1:products"],
///  "left":[{"index":"byStorePrice","partition":"s1","sort":"0000000000001999#p1"}],
///  "eventTime":"2026-11-26T04:15:00.123Z","waitedSecs":3}
/// ```
/// `left` are the positions the write took the product out of: only the write knows them.
///
/// [`next_check`]: crate::listing::check::next_check
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListingCheck {
    pub version: u32,
    pub product_id: ProductId,
    pub tags: Vec<Tag>,
    pub left: Vec<IndexPosition>,
    /// As in [`TagMessage`]: the earliest change the tags cover.
    pub event_time: String,
    /// Seconds spent waiting for the index so far (the sum of the delays; no clock compared).
    pub waited_secs: u32,
}

impl ListingCheck {
    /// The first check of `tags` (listing tags only) for `product`.
    pub fn new(
        product: ProductId,
        tags: &TagSet,
        left: Vec<IndexPosition>,
        event_time: DateTime<Utc>,
    ) -> Self {
        Self {
            version: 1,
            product_id: product,
            tags: tags.iter().cloned().collect(),
            left,
            event_time: event_time.to_rfc3339_opts(SecondsFormat::Millis, true),
            waited_secs: 0,
        }
    }

    /// The change time the tags cover (now, if the text is not a time).
    pub fn event_time(&self) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&self.event_time)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now())
    }
}

/// The body of a parked-record message (JSON, version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParkedRecord {
    pub version: u32,
    /// The function that parked it.
    pub source: String,
    /// Why it can never succeed, e.g. `Products item for product p1 cannot be decoded: ...`.
    pub reason: String,
    pub event_id: String,
    pub event_name: String,
    pub event_source_arn: Option<String>,
    pub sequence_number: Option<String>,
    /// The record's keys, in DynamoDB JSON.
    pub keys: serde_json::Value,
    pub event_time: String,
    pub parked_at: String,
}

impl ParkedRecord {
    /// A parked copy of a stream record.
    pub fn from_stream(
        source: &str,
        record: &aws_lambda_events::event::dynamodb::EventRecord,
        reason: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            version: 1,
            source: source.to_owned(),
            reason,
            event_id: record.event_id.clone(),
            event_name: record.event_name.clone(),
            event_source_arn: record.event_source_arn.clone(),
            sequence_number: record.change.sequence_number.clone(),
            keys: serde_json::to_value(&record.change.keys).unwrap_or_default(),
            event_time: record
                .change
                .approximate_creation_date_time
                .to_rfc3339_opts(SecondsFormat::Millis, true),
            parked_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
        }
    }
}

/// What kind of JSON error `err` is and where, without serde's text: that quotes the value it
/// refused (a tag, an id, a header someone put in a body), and a refused message is logged.
pub fn json_error_kind(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match err.classify() {
        Category::Io => "unreadable",
        Category::Syntax => "not JSON",
        Category::Data => "a value missing or of the wrong shape",
        Category::Eof => "truncated JSON",
    };
    format!("{kind} at line {} column {}", err.line(), err.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_into_messages_next_js_accepts() {
        let tags: TagSet = (0..250)
            .map(|i| Tag::parse(format!("product:p{i}")).unwrap())
            .collect();
        let t = Utc::now();
        let messages = TagMessage::split(&tags, t, t);
        assert_eq!(
            messages.iter().map(|m| m.tags.len()).collect::<Vec<_>>(),
            [100, 100, 50]
        );
        let back: TagSet = messages.iter().flat_map(|m| m.tags.clone()).collect();
        assert_eq!(back, tags);
    }

    #[test]
    fn body_round_trips_and_rejects_bad_tags() {
        let body = r#"{"version":1,"tags":["product:p1"],"eventTime":"2026-11-26T04:15:00.123Z","enqueuedAt":"2026-11-26T04:15:00.180Z"}"#;
        let message: TagMessage = serde_json::from_str(body).unwrap();
        assert_eq!(serde_json::to_string(&message).unwrap(), body);
        assert!(serde_json::from_str::<TagMessage>(&body.replace("product:p1", "a b")).is_err());
    }

    #[test]
    fn listing_check_round_trips_and_refuses_unknown_indexes() {
        let body = r#"{"version":1,"productId":"p1","tags":["store:s1:products"],"left":[{"index":"byStorePrice","partition":"s1","sort":"0000000000001999#p1"}],"eventTime":"2026-11-26T04:15:00.123Z","waitedSecs":3}"#;
        let check: ListingCheck = serde_json::from_str(body).unwrap();
        assert_eq!(serde_json::to_string(&check).unwrap(), body);
        let unknown = body.replace("byStorePrice", "byAnything");
        assert!(serde_json::from_str::<ListingCheck>(&unknown).is_err());
    }
}
