//! The tag queue's publisher. What a message holds is [`catalog_core::messages::TagMessage`].

use aws_sdk_sqs::Client;
use catalog_core::messages::TagMessage;
use catalog_core::tags::TagSet;
use chrono::{DateTime, Utc};

use super::send_bodies;
use crate::fault::Fault;

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

    /// Queues `tags` (already deduplicated) as changed at `event_time`, for delivery now.
    pub async fn publish(&self, tags: &TagSet, event_time: DateTime<Utc>) -> Result<(), Fault> {
        if tags.is_empty() {
            return Ok(());
        }
        let bodies = TagMessage::split(tags, event_time, Utc::now())
            .iter()
            .map(|m| {
                let body = serde_json::to_string(m).expect("a TagMessage always serializes");
                (body, 0)
            })
            .collect();
        send_bodies(&self.client, &self.queue_url, bodies).await
    }
}
