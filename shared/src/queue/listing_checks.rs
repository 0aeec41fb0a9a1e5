//! The listing-check queue: listing tags waiting for their index. What a message holds is
//! [`catalog_core::messages::ListingCheck`]; the summary-projector drains it.

use aws_sdk_sqs::Client;
use catalog_core::messages::ListingCheck;

use super::send_bodies;
use crate::fault::Fault;

/// Sends listing checks, each due after a delay (SQS `DelaySeconds`, at most 900).
#[derive(Debug, Clone)]
pub struct ListingCheckQueue {
    client: Client,
    queue_url: String,
}

impl ListingCheckQueue {
    /// A queue at `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Queues each check, due `delay_secs` from now.
    pub async fn send(&self, checks: &[ListingCheck], delay_secs: u32) -> Result<(), Fault> {
        if checks.is_empty() {
            return Ok(());
        }
        let delay = i32::try_from(delay_secs.min(900)).unwrap_or(900);
        let bodies = checks
            .iter()
            .map(|c| {
                let body = serde_json::to_string(c).expect("a ListingCheck always serializes");
                (body, delay)
            })
            .collect();
        send_bodies(&self.client, &self.queue_url, bodies).await
    }
}
