//! The summary-projector's handler: decode the batch, refresh each touched product once, queue
//! the batch's tags (listing tags once the index shows the write), park what can never
//! succeed, and report the first record to retry. Its second event source, the listing-check
//! queue, is handled in [`listing_checks`].

mod input;
pub mod listing_checks;

pub use input::{Input, InputError, Output};

use std::collections::{BTreeMap, HashSet};

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::streams::DynamoDbEventResponse;
use catalog::lambda::stream_failure;
use chrono::{DateTime, Utc};

use catalog::config::ProjectorConfig;
use catalog::listing_gate::ListingGate;
use catalog::queue::{ListingCheckQueue, ParkingLot, TagPublisher};
use catalog::refresh::{Change, Refreshed, Refresher};
use catalog::store::{SourceStore, SummaryStore};
use catalog::telemetry::{self, MetricSet};
use catalog_core::ids::ProductId;
use catalog_core::messages::ParkedRecord;
use catalog_core::stream::{self, sequence_cmp, Grouped};

const FUNCTION: &str = "summary-projector";

/// Everything the handler needs, built once at cold start.
#[derive(Debug, Clone)]
pub struct Projector {
    refresher: Refresher,
    gate: ListingGate,
    parking: ParkingLot,
}

/// A batch failure that cannot be reported per record: Lambda retries the whole batch.
#[derive(Debug, thiserror::Error)]
#[error("record {event_id} has no sequence number and could not be parked: {reason}")]
pub struct Unreportable {
    event_id: String,
    reason: String,
}

impl Projector {
    /// Wires the stores and queues named in `config` to the given clients.
    pub fn new(
        config: &ProjectorConfig,
        dynamodb: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
    ) -> Self {
        let sources = SourceStore::new(dynamodb.clone(), &config.tables);
        let summaries = SummaryStore::new(dynamodb, &config.tables.summaries);
        let policy = config.stock_tag_policy;
        let gate = ListingGate::new(
            summaries.clone(),
            TagPublisher::new(sqs.clone(), &config.tag_queue_url),
            ListingCheckQueue::new(sqs.clone(), &config.listing_check_queue_url),
            policy,
        );
        Self {
            refresher: Refresher::new(sources, summaries, policy),
            gate,
            parking: ParkingLot::new(sqs, &config.parked_queue_url),
        }
    }

    /// Handles one event of either source.
    pub async fn handle_input(&self, input: Input) -> Result<Output, Unreportable> {
        Ok(match input {
            Input::Stream(event) => Output::Stream(self.handle(event).await?),
            Input::ListingChecks(event) => Output::ListingChecks(self.check_listings(event).await),
        })
    }

    /// Handles one stream batch. Records of a product that failed transiently are reported
    /// (from the earliest one), so Lambda retries them; records that can never succeed are
    /// parked with their reason, and the rest of the batch goes on.
    pub async fn handle(&self, event: Event) -> Result<DynamoDbEventResponse, Unreportable> {
        let records = &event.records;
        let Grouped {
            ids,
            records_of,
            changes_of,
            undecodable: mut to_park,
        } = stream::group(records);

        let mut failed: Vec<usize> = Vec::new();
        let mut refreshed: Vec<Refreshed> = Vec::new();
        let outcomes = self.refresher.refresh_changes(&ids, &changes_of).await;
        for (outcome, id) in outcomes.into_iter().zip(&ids) {
            match outcome {
                Ok(r) => refreshed.push(r),
                Err(err) if err.is_transient() => {
                    tracing::warn!(product_id = %id, error = %err, "refresh failed; will retry");
                    failed.extend(&records_of[id]);
                }
                Err(err) => {
                    tracing::error!(product_id = %id, error = %err, "refresh can never succeed; parking");
                    to_park.extend(records_of[id].iter().map(|&i| (i, err.to_string())));
                }
            }
        }

        let event_time = self
            .queue_tags(records, &records_of, &refreshed, &mut failed)
            .await;
        let parked = self.park(records, &to_park).await;
        if let Err(fault) = &parked {
            tracing::error!(error = %fault, "parking failed; will retry");
            failed.extend(to_park.iter().map(|(i, _)| i));
        }

        self.report(
            records,
            &refreshed,
            to_park.len(),
            parked.is_ok(),
            &failed,
            event_time,
        );
        first_failure(records, &failed)
    }

    /// Queues the batch's tags (deduplicated; listing tags through the gate), then clears
    /// them from the summaries' outboxes. If the send fails, the records of every product with
    /// tags are marked failed: their retry finds the tags still pending and sends them.
    /// Returns the earliest change time the tags cover.
    async fn queue_tags(
        &self,
        records: &[EventRecord],
        records_of: &BTreeMap<ProductId, Vec<usize>>,
        refreshed: &[Refreshed],
        failed: &mut Vec<usize>,
    ) -> Option<DateTime<Utc>> {
        let with_tags: Vec<&Refreshed> = refreshed.iter().filter(|r| !r.tags.is_empty()).collect();
        let event_time = earliest(
            records,
            with_tags.iter().flat_map(|r| &records_of[&r.product_id]),
        );
        let published = self
            .gate
            .deliver(refreshed, event_time.unwrap_or_else(Utc::now))
            .await;
        match published {
            Ok(published) if published.waiting > 0 => {
                let waiting = published.waiting;
                tracing::info!(waiting, "listing tags wait for the index");
            }
            Ok(_) => {}
            Err(fault) => {
                tracing::warn!(error = %fault, "queueing tags failed; will retry");
                failed.extend(with_tags.iter().flat_map(|r| &records_of[&r.product_id]));
            }
        }
        event_time
    }

    async fn park(
        &self,
        records: &[EventRecord],
        to_park: &[(usize, String)],
    ) -> Result<(), catalog::fault::Fault> {
        let now = Utc::now();
        let parked: Vec<ParkedRecord> = to_park
            .iter()
            .map(|(i, reason)| {
                ParkedRecord::from_stream(FUNCTION, &records[*i], reason.clone(), now)
            })
            .collect();
        self.parking.park(&parked).await
    }

    fn report(
        &self,
        records: &[EventRecord],
        refreshed: &[Refreshed],
        parked: usize,
        parked_ok: bool,
        failed: &[usize],
        event_time: Option<DateTime<Utc>>,
    ) {
        let count = |change: Change| refreshed.iter().filter(|r| r.change == change).count();
        let written = refreshed.len() - count(Change::Unchanged) - count(Change::Covered);
        let tags: usize = refreshed.iter().map(|r| r.tags.len()).sum();
        let lag_ms = event_time.map_or(0, |t| (Utc::now() - t).num_milliseconds().max(0));
        let failed = failed.iter().collect::<HashSet<_>>().len();
        let parked = if parked_ok { parked } else { 0 };
        tracing::info!(
            records = records.len(),
            products = refreshed.len(),
            written,
            unchanged = count(Change::Unchanged),
            covered = count(Change::Covered),
            deleted = count(Change::Deleted),
            tags,
            parked,
            failed,
            lag_ms,
            "batch projected"
        );
        let metrics: MetricSet = [
            ("RecordsReceived", records.len() as f64, "Count"),
            ("SummariesWritten", written as f64, "Count"),
            ("ProductsCovered", count(Change::Covered) as f64, "Count"),
            ("TagsQueued", tags as f64, "Count"),
            ("RecordsParked", parked as f64, "Count"),
            ("RecordsRetried", failed as f64, "Count"),
            ("ProjectionLag", lag_ms as f64, "Milliseconds"),
        ]
        .into_iter()
        .collect();
        telemetry::emit(FUNCTION, &metrics);
    }
}

/// The earliest change time among the records at `indices`.
fn earliest<'a>(
    records: &[EventRecord],
    indices: impl Iterator<Item = &'a usize>,
) -> Option<DateTime<Utc>> {
    indices
        .map(|&i| records[i].change.approximate_creation_date_time)
        .min()
}

/// The response Lambda expects: the lowest sequence number among `failed` records, from which
/// it retries. Every record after it is redelivered too, which the refresh protocol absorbs.
fn first_failure(
    records: &[EventRecord],
    failed: &[usize],
) -> Result<DynamoDbEventResponse, Unreportable> {
    let mut response = DynamoDbEventResponse::default();
    let mut first: Option<&str> = None;
    for &i in failed {
        match records[i]
            .change
            .sequence_number
            .as_deref()
            .filter(|s| !s.is_empty())
        {
            Some(seq) => {
                if first.is_none_or(|f| sequence_cmp(seq, f).is_lt()) {
                    first = Some(seq);
                }
            }
            None => {
                return Err(Unreportable {
                    event_id: records[i].event_id.clone(),
                    reason: "no sequence number".into(),
                })
            }
        }
    }
    if let Some(seq) = first {
        response.batch_item_failures.push(stream_failure(seq));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(seqs: &[Option<&str>]) -> Vec<EventRecord> {
        let records: Vec<_> = seqs
            .iter()
            .map(|seq| {
                serde_json::json!({
                    "eventID": "e", "eventName": "MODIFY", "awsRegion": "us-east-1",
                    "dynamodb": {"Keys": {"productId": {"S": "p1"}}, "SequenceNumber": seq, "SizeBytes": 1}
                })
            })
            .collect();
        serde_json::from_value::<Event>(serde_json::json!({ "Records": records }))
            .unwrap()
            .records
    }

    #[test]
    fn reports_the_lowest_failed_sequence_number() {
        let records = records(&[Some("900"), Some("1000"), Some("1100")]);
        let response = first_failure(&records, &[2, 1]).unwrap();
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(
            response.batch_item_failures[0].item_identifier.as_deref(),
            Some("1000")
        );
        assert!(first_failure(&records, &[])
            .unwrap()
            .batch_item_failures
            .is_empty());
    }

    #[test]
    fn a_failed_record_without_sequence_number_fails_the_batch() {
        let records = records(&[Some("1"), None]);
        assert!(first_failure(&records, &[1]).is_err());
    }
}
