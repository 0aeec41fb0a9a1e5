//! The reconciler's handler. Three triggers, told apart by shape:
//! - an EventBridge event (the daily schedule, or an on-demand run / backfill with the same
//!   shape) fans a run out into one message per segment on the reconcile queue;
//! - a batch of those SQS messages runs each segment until the invocation's deadline, then
//!   queues a continuation from its checkpoint, so a long segment resumes instead of restarting;
//! - an HTTP API request to the admin route queues one product's tags now ([`admin`]).

pub mod admin;
pub mod worker;

use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use catalog::lambda::sqs_failure;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use catalog::config::ReconcilerConfig;
use catalog::listing_gate::ListingGate;
use catalog::queue::{ListingCheckQueue, TagPublisher};
use catalog::refresh::Refresher;
use catalog::store::Write;
use catalog::store::{Claim, ProgressStore};
use catalog::store::{SourceStore, SummaryStore};
use catalog::telemetry::{self, MetricSet};
use catalog_core::ids::StoreId;
use catalog_core::messages::json_error_kind;
use catalog_core::reconcile::{pace, Report, MAX_SEGMENTS};
use worker::{Checkpoint, Share, Worker};

const FUNCTION: &str = "reconciler";
/// Time kept back from the deadline to queue a continuation.
const DEADLINE_MARGIN: Duration = Duration::from_secs(30);

/// How soon a segment tries again after a failure: its continuation, when the tags of its
/// repairs could not be queued (their outboxes hold them); the message itself, when the
/// segment failed (SQS would otherwise wait out the 5,400 s visibility timeout). Repaired
/// pages are stale for about this long when the tag queue is briefly unavailable.
pub const RETRY_SECS: i32 = 60;

/// Options of a run, in the `detail` of the EventBridge event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRequest {
    /// Report only.
    #[serde(default)]
    pub dry_run: bool,
    /// Only this store (one segment).
    #[serde(default)]
    pub store_id: Option<StoreId>,
    /// Parallel Scan segments; default `RECONCILE_SEGMENTS`.
    #[serde(default)]
    pub segments: Option<u32>,
}

/// One segment's work, as queued (JSON, version 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentMessage {
    pub version: u32,
    pub run_id: String,
    /// Which step of the segment this is (0 for the first): a delivery of a step that has
    /// run already is a duplicate ([`ProgressStore`]).
    #[serde(default)]
    pub step: u32,
    pub share: Share,
    pub checkpoint: Checkpoint,
    /// What the segment found before this checkpoint.
    pub report: Report,
    /// When the run started (RFC 3339).
    pub started_at: String,
}

/// A trigger the reconciler does not understand.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("invalid run request: {0}")]
    BadRequest(String),
    #[error("could not queue the run's segments: {0}")]
    Queue(#[from] catalog::fault::Fault),
}

/// The handler's state, built once at cold start.
#[derive(Debug, Clone)]
pub struct Reconciler {
    worker: Worker,
    progress: ProgressStore,
    admin: admin::Admin,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    default_segments: u32,
}

impl Reconciler {
    /// Wires the tables and queues of `config`.
    pub fn new(
        config: &ReconcilerConfig,
        dynamodb: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
    ) -> Self {
        let refresher = Refresher::new(
            SourceStore::new(dynamodb.clone(), &config.tables),
            SummaryStore::new(dynamodb.clone(), &config.tables.summaries),
            config.stock_tag_policy,
        );
        let publisher = TagPublisher::new(sqs.clone(), &config.tag_queue_url);
        let gate = ListingGate::new(
            SummaryStore::new(dynamodb.clone(), &config.tables.summaries),
            publisher.clone(),
            ListingCheckQueue::new(sqs.clone(), &config.listing_check_queue_url),
            config.stock_tag_policy,
        );
        let admin = admin::Admin {
            sources: SourceStore::new(dynamodb.clone(), &config.tables),
            summaries: SummaryStore::new(dynamodb.clone(), &config.tables.summaries),
            publisher: publisher.clone(),
        };
        Self {
            admin,
            progress: ProgressStore::new(dynamodb.clone(), &config.progress_table),
            worker: Worker::new(dynamodb, config.tables.clone(), refresher, gate),
            sqs,
            queue_url: config.reconcile_queue_url.clone(),
            default_segments: config.default_segments,
        }
    }

    /// The worker, to tune its page size and concurrency.
    pub fn worker_mut(&mut self) -> &mut Worker {
        &mut self.worker
    }

    /// Handles either trigger; `deadline` is the invocation's. Writes the invocation's
    /// metrics as one document, whatever the trigger.
    pub async fn handle(&self, payload: Value, deadline: Instant) -> Result<Value, ReconcileError> {
        let mut metrics = MetricSet::default();
        let answer = self.dispatch(payload, deadline, &mut metrics).await;
        telemetry::emit(FUNCTION, &metrics);
        answer
    }

    async fn dispatch(
        &self,
        payload: Value,
        deadline: Instant,
        metrics: &mut MetricSet,
    ) -> Result<Value, ReconcileError> {
        if payload.pointer("/requestContext/http").is_some() {
            let request: ApiGatewayV2httpRequest = serde_json::from_value(payload)
                .map_err(|e| ReconcileError::BadRequest(format!("not an HTTP API request: {e}")))?;
            let response = self.admin.handle(&request).await;
            return Ok(serde_json::to_value(response).expect("a response serializes"));
        }
        if payload.get("Records").is_some() {
            let event: SqsEvent = serde_json::from_value(payload)
                .map_err(|e| ReconcileError::BadRequest(format!("not an SQS event: {e}")))?;
            let response = self.run_segments(event, deadline, metrics).await;
            return Ok(serde_json::to_value(response).expect("a batch response serializes"));
        }
        let run_id = payload
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("run-{}", Utc::now().timestamp_millis()));
        let detail = payload
            .get("detail")
            .cloned()
            .filter(|d| !d.is_null())
            .unwrap_or(Value::Object(Default::default()));
        let request: RunRequest = serde_json::from_value(detail)
            .map_err(|e| ReconcileError::BadRequest(format!("detail: {e}")))?;
        let segments = self.start(&run_id, &request).await?;
        Ok(serde_json::json!({"runId": run_id, "segments": segments}))
    }

    /// Queues one message per segment of a new run.
    pub async fn start(&self, run_id: &str, request: &RunRequest) -> Result<u32, ReconcileError> {
        let total = match (&request.store_id, request.segments) {
            (Some(_), _) => 1,
            (None, Some(n)) if (1..=MAX_SEGMENTS).contains(&n) => n,
            (None, Some(n)) => {
                return Err(ReconcileError::BadRequest(format!(
                    "segments must be 1 to {MAX_SEGMENTS}, not {n}"
                )))
            }
            (None, None) => self.default_segments,
        };
        let started_at = Utc::now().to_rfc3339();
        let messages: Vec<(String, i32)> = (0..total)
            .map(|segment| {
                let message = SegmentMessage {
                    version: 1,
                    run_id: run_id.to_owned(),
                    step: 0,
                    share: Share {
                        dry_run: request.dry_run,
                        store_id: request.store_id.clone(),
                        segment,
                        total_segments: total,
                    },
                    checkpoint: Checkpoint::start(),
                    report: Report::default(),
                    started_at: started_at.clone(),
                };
                let body = serde_json::to_string(&message).expect("a segment message serializes");
                (body, 0)
            })
            .collect();
        catalog::queue::send_bodies(&self.sqs, &self.queue_url, messages).await?;
        tracing::info!(
            run_id,
            segments = total,
            dry_run = request.dry_run,
            "reconcile run started"
        );
        Ok(total)
    }

    /// Runs each segment message; a finished segment adds its figures to `metrics`.
    async fn run_segments(
        &self,
        event: SqsEvent,
        deadline: Instant,
        metrics: &mut MetricSet,
    ) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let message: SegmentMessage = match record.body.as_deref().map(serde_json::from_str) {
                Some(Ok(m)) => m,
                other => {
                    // Never succeeds: fail it until SQS moves it to the dead-letter queue.
                    let error = match other {
                        Some(Err(e)) => json_error_kind(&e),
                        _ => "no body".to_owned(),
                    };
                    tracing::error!(message_id = %id, %error, "malformed segment message");
                    response.batch_item_failures.push(sqs_failure(&id));
                    continue;
                }
            };
            let started = Instant::now();
            match self.run_segment(message, &id, deadline).await {
                Ok(Segment::Finished(report)) => {
                    metrics.extend(&segment_metrics(&report, started.elapsed()))
                }
                Ok(Segment::Continued(_)) => {}
                Ok(Segment::Duplicate) => {
                    metrics.add("DuplicateSegmentMessages", 1.0, "Count");
                }
                Err(err) => {
                    tracing::warn!(message_id = %id, error = %err, "segment failed; SQS retries it from its checkpoint in {RETRY_SECS} s");
                    self.retry_soon(record.receipt_handle.as_deref()).await;
                    response.batch_item_failures.push(sqs_failure(&id));
                }
            }
        }
        response
    }

    /// Makes a failed segment message visible again in [`RETRY_SECS`] instead of the queue's
    /// visibility timeout. If SQS refuses, the timeout applies, and the storefront's
    /// time-based revalidation bounds what stays stale.
    async fn retry_soon(&self, receipt_handle: Option<&str>) {
        let Some(handle) = receipt_handle else { return };
        let change = self
            .sqs
            .change_message_visibility()
            .queue_url(&self.queue_url);
        let change = change.receipt_handle(handle).visibility_timeout(RETRY_SECS);
        if let Err(err) = change.send().await {
            let err = aws_sdk_sqs::error::DisplayErrorContext(err);
            tracing::warn!(error = %err, "could not shorten the failed segment's visibility");
        }
    }

    /// Runs one delivery (`delivery`: its SQS message id) of a segment step from its
    /// checkpoint, if no other delivery ran it ([`ProgressStore`]); queues a continuation if
    /// time runs out (or, after [`RETRY_SECS`], if the tags of its repairs could not be
    /// queued).
    pub async fn run_segment(
        &self,
        message: SegmentMessage,
        delivery: &str,
        deadline: Instant,
    ) -> Result<Segment, catalog::fault::Fault> {
        let at = (message.run_id.as_str(), message.share.segment);
        match self
            .progress
            .claim(at, message.step, delivery, lease(deadline))
            .await?
        {
            Claim::Run => {}
            Claim::Resend(body) => {
                let continuation: SegmentMessage = serde_json::from_str(&body).map_err(|e| {
                    catalog::fault::Fault::Permanent(format!("kept continuation: {e}"))
                })?;
                tracing::info!(run_id = %message.run_id, segment = message.share.segment, step = message.step, "segment step committed before; queueing its continuation again");
                self.queue(&continuation, body).await?;
                return Ok(Segment::Continued(continuation));
            }
            Claim::Duplicate(why) => {
                tracing::info!(run_id = %message.run_id, segment = message.share.segment, step = message.step, why, "duplicate segment message; nothing to do");
                return Ok(Segment::Duplicate);
            }
            Claim::Unknown => {
                return Err(catalog::fault::Fault::Permanent(format!(
                    "step {} of segment {} of run {} was never queued",
                    message.step, message.share.segment, message.run_id
                )))
            }
        }
        let started = Instant::now();
        let (report, next) = self.work(&message, deadline).await?;
        let (step, segment) = (message.step, message.share.segment);
        let Some(checkpoint) = next else {
            if self.progress.commit(at, step, delivery, None).await? == Write::Conflict {
                return Ok(Segment::Duplicate);
            }
            summarize(&message.run_id, &message.share, &report, started.elapsed());
            return Ok(Segment::Finished(report));
        };
        let continuation = SegmentMessage {
            step: step + 1,
            checkpoint,
            report,
            ..message.clone()
        };
        let body = serde_json::to_string(&continuation).expect("a segment message serializes");
        if self
            .progress
            .commit(at, step, delivery, Some(&body))
            .await?
            == Write::Conflict
        {
            return Ok(Segment::Duplicate);
        }
        let unsent = continuation.checkpoint.unsent.len();
        tracing::info!(run_id = %continuation.run_id, segment, checked = continuation.report.checked, unsent, "segment paused (at its deadline, or with tags to queue again); continuing");
        self.queue(&continuation, body).await?;
        Ok(Segment::Continued(continuation))
    }

    /// Works the segment from the message's checkpoint until it is done or `deadline` (less
    /// a margin) passes: the report so far, and the checkpoint to continue from.
    async fn work(
        &self,
        message: &SegmentMessage,
        deadline: Instant,
    ) -> Result<(Report, Option<Checkpoint>), catalog::fault::Fault> {
        let stop_at = deadline
            .checked_sub(DEADLINE_MARGIN)
            .unwrap_or_else(Instant::now);
        let share = &message.share;
        let estimate = self.worker.estimate(share).await;
        let started = Instant::now();
        let (found, next) = self
            .worker
            .run(
                share,
                message.checkpoint.clone(),
                stop_at,
                |found, checkpoint| {
                    report_progress(message, found, checkpoint, started, estimate);
                },
            )
            .await?;
        let mut report = message.report.clone();
        report.merge(&found);
        Ok((report, next))
    }

    /// Queues a continuation: now, or in [`RETRY_SECS`] when it holds tags that could not be
    /// queued.
    async fn queue(
        &self,
        continuation: &SegmentMessage,
        body: String,
    ) -> Result<(), catalog::fault::Fault> {
        let delay = match continuation.checkpoint.unsent.is_empty() {
            true => 0,
            false => RETRY_SECS,
        };
        catalog::queue::send_bodies(&self.sqs, &self.queue_url, vec![(body, delay)]).await
    }
}

/// What one delivery of a segment message did.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// The segment is done: its whole report.
    Finished(Report),
    /// A continuation is queued.
    Continued(SegmentMessage),
    /// Another delivery ran (or is running) this step.
    Duplicate,
}

/// The claim's (now, lease end) in epoch ms: the lease lasts as long as the invocation may.
fn lease(deadline: Instant) -> (i64, i64) {
    let now = Utc::now().timestamp_millis();
    let left = deadline.saturating_duration_since(Instant::now());
    (now, now + left.as_millis() as i64)
}

/// The one structured line a finished segment logs.
fn summarize(run_id: &str, share: &Share, report: &Report, took: Duration) {
    tracing::info!(
        run_id,
        segment = share.segment,
        total_segments = share.total_segments,
        store_id = share.store_id.as_ref().map(|s| s.as_str()),
        dry_run = share.dry_run,
        checked = report.checked,
        discrepancies = report.discrepancies(),
        missing = report.missing,
        orphans = report.orphans,
        drifted = report.drifted,
        stuck_outboxes = report.stuck_outboxes,
        drift_by_field = ?report.drift_by_field,
        repaired = report.repaired,
        repair_failures = report.repair_failures,
        discrepancy_rate = report.rate(),
        duration_ms = took.as_millis() as u64,
        "reconcile segment finished"
    );
}

/// After each page: products checked and written so far in the segment, its pace in this
/// invocation, and the time left at that pace, as a log line and as metrics (their Maximum
/// over a run is its latest figure).
fn report_progress(
    message: &SegmentMessage,
    found: &Report,
    checkpoint: &Checkpoint,
    started: Instant,
    estimate: Option<u64>,
) {
    let (before, segment) = (&message.report, message.share.segment);
    let checked = before.checked + found.checked;
    let written = before.repaired + found.repaired;
    let elapsed = started.elapsed().as_secs_f64();
    let pace = pace(checked, found.checked, elapsed, estimate);
    tracing::info!(run_id = %message.run_id, segment, checked, written, products_per_second = pace.per_second.round(), seconds_left = pace.seconds_left, phase = ?checkpoint.phase, "reconcile progress");
    let mut metrics: MetricSet = [
        ("SegmentProductsChecked", checked as f64, "Count"),
        ("SegmentProductsWritten", written as f64, "Count"),
        ("SegmentProductsPerSecond", pace.per_second, "Count/Second"),
    ]
    .into_iter()
    .collect();
    if let Some(left) = pace.seconds_left {
        metrics.add("SegmentSecondsLeft", left as f64, "Seconds");
    }
    telemetry::emit(FUNCTION, &metrics);
}

/// A finished segment's figures; the discrepancy-rate alarm sums them over a day.
fn segment_metrics(report: &Report, took: Duration) -> MetricSet {
    [
        ("ProductsChecked", report.checked as f64, "Count"),
        ("Discrepancies", report.discrepancies() as f64, "Count"),
        ("MissingSummaries", report.missing as f64, "Count"),
        ("OrphanSummaries", report.orphans as f64, "Count"),
        ("DriftedSummaries", report.drifted as f64, "Count"),
        ("StuckOutboxes", report.stuck_outboxes as f64, "Count"),
        ("Repaired", report.repaired as f64, "Count"),
        ("DiscrepancyRate", report.rate() * 100.0, "Percent"),
        ("ReconcileDuration", took.as_millis() as f64, "Milliseconds"),
    ]
    .into_iter()
    .collect()
}
