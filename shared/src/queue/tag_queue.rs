//! The tag queue: which cache tags to revalidate, and since when they are stale.

use aws_sdk_sqs::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::send_bodies;
use crate::fault::Fault;
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
/// `revalidated - eventTime` is the staleness a shopper could see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagMessage {
    pub version: u32,
    pub tags: Vec<Tag>,
    pub event_time: String,
    pub enqueued_at: String,
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
            })
            .collect()
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

    /// Queues `tags` (already deduplicated) as changed at `event_time`.
    pub async fn publish(&self, tags: &TagSet, event_time: DateTime<Utc>) -> Result<(), Fault> {
        if tags.is_empty() {
            return Ok(());
        }
        let bodies = TagMessage::split(tags, event_time, Utc::now())
            .iter()
            .map(|m| serde_json::to_string(m).expect("a TagMessage always serializes"))
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
    fn body_round_trips_and_rejects_bad_tags() {
        let body = r#"{"version":1,"tags":["product:p1"],"eventTime":"2026-11-26T04:15:00.123Z","enqueuedAt":"2026-11-26T04:15:00.180Z"}"#;
        let message: TagMessage = serde_json::from_str(body).unwrap();
        assert_eq!(serde_json::to_string(&message).unwrap(), body);
        assert!(serde_json::from_str::<TagMessage>(&body.replace("product:p1", "a b")).is_err());
    }
}
