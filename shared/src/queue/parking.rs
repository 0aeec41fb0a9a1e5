//! The parking lot: a dead-letter queue for stream records that can never be processed, kept
//! with the reason so that someone can fix the row and replay it.

use aws_sdk_sqs::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::send_bodies;
use crate::fault::Fault;

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
