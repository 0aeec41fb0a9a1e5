//! The tag queue: which cache tags to revalidate, and since when they are stale.

use aws_sdk_sqs::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::send_bodies;
use crate::fault::Fault;
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

/// Queues tags for the tag-revalidator.
#[derive(Debug, Clone)]
pub struct TagPublisher {
    client: Client,
    queue_url: String,
}

impl TagPublisher {
    /// A publisher to the queue at `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Queues `tags` (already deduplicated) as changed at `event_time`, and the rechecks of
    /// its listing tags.
    pub async fn publish(&self, tags: &TagSet, event_time: DateTime<Utc>) -> Result<(), Fault> {
        if tags.is_empty() {
            return Ok(());
        }
        let bodies = TagMessage::with_rechecks(tags, event_time, Utc::now())
            .iter()
            .map(|(m, delay)| {
                let body = serde_json::to_string(m).expect("a TagMessage always serializes");
                (body, *delay)
            })
            .collect();
        send_bodies(&self.client, &self.queue_url, bodies).await
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
