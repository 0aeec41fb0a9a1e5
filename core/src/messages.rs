//! The bodies of the messages catalog-sync queues: tags for the tag-revalidator, and stream
//! records parked because they can never be processed. Pure; the SQS side is the `catalog`
//! crate's `queue` module.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::tags::{Tag, TagSet};

/// Tags per message: Next.js takes at most 128 tags a call, and a message is one call.
pub const MAX_TAGS_PER_MESSAGE: usize = 100;

/// Listing tags are queued again this many seconds after the first time. Listing pages read
/// the `byStore` index, which DynamoDB updates asynchronously ("usually within a second") and
/// reads eventually consistently; a page re-rendered by the first revalidation may still show
/// the old item, and Next.js would then cache it with no tag left to clear it. The rechecks
/// re-render it after the index has caught up: fresh within ~4.2 s of the write for any index
/// lag under 4 s. Product and cart reads need none: they read the table consistently.
pub const LISTING_RECHECKS: [i32; 2] = [2, 4];

/// The body of a tag-queue message (JSON, version 1).
///
/// ```json
/// {"version":1,"tags":["product:p1","store:s1:products"],
///  "eventTime":"2026-11-26T04:15:00.123Z","enqueuedAt":"2026-11-26T04:15:00.180Z"}
/// ```
/// `eventTime` is the earliest stream record time among the changes the message covers, so
/// `revalidated - eventTime` is the staleness a shopper could see. `"recheck": true` marks a
/// delayed repeat of listing tags (see [`LISTING_RECHECKS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagMessage {
    pub version: u32,
    pub tags: Vec<Tag>,
    pub event_time: String,
    pub enqueued_at: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recheck: bool,
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
                recheck: false,
            })
            .collect()
    }

    /// Every message that carries `tags` now, and the delayed rechecks of its listing tags,
    /// each with its delivery delay in seconds.
    pub fn with_rechecks(
        tags: &TagSet,
        event_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<(Self, i32)> {
        let listing: TagSet = tags
            .iter()
            .filter(|t| t.reads_listing_index())
            .cloned()
            .collect();
        let mut all: Vec<(Self, i32)> = Self::split(tags, event_time, now)
            .into_iter()
            .map(|m| (m, 0))
            .collect();
        for delay in LISTING_RECHECKS {
            for message in Self::split(&listing, event_time, now) {
                all.push((
                    TagMessage {
                        recheck: true,
                        ..message
                    },
                    delay,
                ));
            }
        }
        all
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
    fn listing_tags_are_queued_again_later_and_only_they() {
        let tags: TagSet = [
            "product:p1",
            "inventory:p1",
            "store:s1:products",
            "store:s2:products",
        ]
        .into_iter()
        .map(|t| Tag::parse(t).unwrap())
        .collect();
        let t = Utc::now();
        let all = TagMessage::with_rechecks(&tags, t, t);
        let delays: Vec<i32> = all.iter().map(|(_, d)| *d).collect();
        assert_eq!(delays, [0, 2, 4]);
        assert_eq!(all[0].0.tags.len(), 4);
        assert!(!all[0].0.recheck);
        for (m, _) in &all[1..] {
            assert!(m.recheck);
            let texts: Vec<&str> = m.tags.iter().map(Tag::as_str).collect();
            assert_eq!(texts, ["store:s1:products", "store:s2:products"]);
        }
        let product_only: TagSet = [Tag::parse("product:p1").unwrap()].into();
        assert_eq!(TagMessage::with_rechecks(&product_only, t, t).len(), 1);
    }

    #[test]
    fn body_round_trips_and_rejects_bad_tags() {
        let body = r#"{"version":1,"tags":["product:p1"],"eventTime":"2026-11-26T04:15:00.123Z","enqueuedAt":"2026-11-26T04:15:00.180Z"}"#;
        let message: TagMessage = serde_json::from_str(body).unwrap();
        assert_eq!(serde_json::to_string(&message).unwrap(), body);
        assert!(serde_json::from_str::<TagMessage>(&body.replace("product:p1", "a b")).is_err());
    }
}
