//! The parking lot: a dead-letter queue for stream records that can never be processed, kept
//! with the reason so that someone can fix the row and replay it. What a parked message holds
//! is [`catalog_core::messages::ParkedRecord`].

use aws_sdk_sqs::Client;
use catalog_core::messages::ParkedRecord;

use super::send_bodies;
use crate::fault::Fault;

/// Sends records to the dead-letter queue.
#[derive(Debug, Clone)]
pub struct ParkingLot {
    client: Client,
    queue_url: String,
}

impl ParkingLot {
    /// A parking lot in the queue at `queue_url`.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    /// Parks `records`. Until this returns `Ok`, the records must not be acknowledged.
    pub async fn park(&self, records: &[ParkedRecord]) -> Result<(), Fault> {
        if records.is_empty() {
            return Ok(());
        }
        let bodies = records
            .iter()
            .map(|r| {
                let body = serde_json::to_string(r).expect("a ParkedRecord always serializes");
                (body, 0)
            })
            .collect();
        send_bodies(&self.client, &self.queue_url, bodies).await
    }
}
