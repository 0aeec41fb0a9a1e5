//! The listing-check queue's handler: each message holds a product's listing tags until the
//! listing indexes show the product as the table holds it (see `catalog::listing_gate`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use catalog::lambda::sqs_response;
use catalog::listing_gate::Checked;
use catalog::telemetry::{self, MetricSet};
use catalog_core::messages::{json_error_kind, ListingCheck};
use chrono::Utc;

use crate::Projector;

/// What a batch of checks found, for its log line and metrics.
#[derive(Debug, Default)]
struct Tally {
    listed: usize,
    waiting: usize,
    abandoned: usize,
    failed: usize,
    malformed: usize,
    /// Change to listing tag queued, per listed check (the index lag the check saw, and
    /// at most one check interval more).
    lags_ms: Vec<f64>,
}

/// What one message came to.
enum Outcome {
    Listed { lag_ms: f64 },
    Waiting,
    Abandoned,
    Failed(String),
    Malformed(String),
}

impl Projector {
    /// Checks each message's product against the indexes, all of a batch at once (a check
    /// may follow its index for up to 2 s): queues its tags, or sends it again for later. A
    /// message whose AWS call failed is reported, so SQS redelivers only it; a body that is
    /// not a listing check is reported too, until SQS moves it to the dead-letter queue
    /// (alarmed), where it can be read.
    pub async fn check_listings(&self, event: SqsEvent) -> SqsBatchResponse {
        let checks = event
            .records
            .into_iter()
            .map(|message| self.check_one(message));
        let outcomes: Vec<Outcome> = futures::future::join_all(checks).await;
        let mut tally = Tally::default();
        let mut failed = Vec::new();
        for outcome in outcomes {
            match outcome {
                Outcome::Listed { lag_ms } => {
                    tally.listed += 1;
                    tally.lags_ms.push(lag_ms);
                }
                Outcome::Waiting => tally.waiting += 1,
                Outcome::Abandoned => tally.abandoned += 1,
                Outcome::Failed(id) => {
                    tally.failed += 1;
                    failed.push(id);
                }
                Outcome::Malformed(id) => {
                    tally.malformed += 1;
                    failed.push(id);
                }
            }
        }
        report(&tally);
        sqs_response(failed)
    }

    async fn check_one(&self, message: SqsMessage) -> Outcome {
        let id = message.message_id.clone().unwrap_or_default();
        let body = message.body.as_deref().unwrap_or_default();
        let check: ListingCheck = match serde_json::from_str(body) {
            Ok(check) => check,
            Err(err) => {
                let kind = json_error_kind(&err);
                tracing::error!(message_id = %id, error = %kind, "not a listing check");
                return Outcome::Malformed(id);
            }
        };
        match self.gate.recheck(&check).await {
            Ok(Checked::Listed) => {
                let lag = Utc::now() - check.event_time();
                let lag_ms = lag.num_milliseconds().max(0) as f64;
                Outcome::Listed { lag_ms }
            }
            Ok(Checked::Waiting) => Outcome::Waiting,
            Ok(Checked::Abandoned) => {
                tracing::error!(product_id = %check.product_id, waited_secs = check.waited_secs, "index never showed the product; listing tags queued anyway");
                Outcome::Abandoned
            }
            Err(fault) => {
                tracing::warn!(product_id = %check.product_id, error = %fault, "listing check failed; will retry");
                Outcome::Failed(id)
            }
        }
    }
}

fn report(tally: &Tally) {
    tracing::info!(
        listed = tally.listed,
        waiting = tally.waiting,
        abandoned = tally.abandoned,
        failed = tally.failed,
        malformed = tally.malformed,
        "listing checks"
    );
    let mut metrics: MetricSet = [
        ("ListingChecksWaiting", tally.waiting as f64, "Count"),
        ("ListingChecksAbandoned", tally.abandoned as f64, "Count"),
        ("ListingChecksMalformed", tally.malformed as f64, "Count"),
    ]
    .into_iter()
    .collect();
    for lag in &tally.lags_ms {
        metrics.add("IndexLag", *lag, "Milliseconds");
    }
    telemetry::emit(crate::FUNCTION, &metrics);
}
