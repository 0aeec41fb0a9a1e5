//! The tag-revalidator's handler: read a batch of tag messages, revalidate every tag once at
//! every storefront endpoint and, for every storefront configured there, in the tag table;
//! report the messages whose tags did not all go through, so SQS delivers them again (and,
//! after `maxReceiveCount`, parks them in the dead-letter queue).
//!
//! The SQS trigger must enable `ReportBatchItemFailures`, or a partial failure would be taken
//! as success.

pub mod backoff;
pub mod client;
pub mod plan;
pub mod signature;
pub mod tag_table;

use std::collections::BTreeSet;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry;
use catalog::lambda::sqs_response;
use catalog::telemetry::{self, MetricSet};
use catalog_core::messages::TagMessage;
use catalog_core::tags::Tag;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::client::{Answer, RevalidateClient};
use crate::plan::{plan, Incoming, Plan};
use crate::tag_table::TagTable;

const FUNCTION: &str = "tag-revalidator";
/// Calls in flight at once.
const CONCURRENCY: usize = 8;
/// The longest wait for a retry inside one invocation; longer waits go back to the queue.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(1);

/// Everything the handler needs, built once at cold start.
#[derive(Debug, Clone)]
pub struct Revalidator {
    endpoints: Vec<String>,
    client: RevalidateClient,
    /// The tag table and the storefronts it holds tags for.
    tag_table: Option<(TagTable, Vec<String>)>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    max_tags: usize,
}

/// What one batch came to, for the metrics and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub tags_revalidated: usize,
    pub calls: usize,
    pub failed_calls: usize,
    pub config_errors: usize,
}

impl Revalidator {
    /// A revalidator calling `endpoints` through `client`, `max_tags` tags a call; failed
    /// messages of the queue at `queue_url` are held back through `sqs`.
    pub fn new(
        endpoints: Vec<String>,
        client: RevalidateClient,
        sqs: aws_sdk_sqs::Client,
        queue_url: impl Into<String>,
        max_tags: usize,
    ) -> Self {
        Self {
            endpoints,
            client,
            tag_table: None,
            sqs,
            queue_url: queue_url.into(),
            max_tags,
        }
    }

    /// Also revalidates, for each of `storefronts`, through `table`.
    pub fn with_tag_table(mut self, table: TagTable, storefronts: Vec<String>) -> Self {
        self.tag_table = Some((table, storefronts));
        self
    }

    /// Where each call goes: every endpoint, then every storefront of the tag table.
    fn targets(&self) -> Vec<Target> {
        let endpoints = self.endpoints.iter().cloned().map(Target::Endpoint);
        let storefronts = self.tag_table.iter().flat_map(|(_, s)| s.iter().cloned());
        endpoints.chain(storefronts.map(Target::TagTable)).collect()
    }

    /// Handles one SQS batch.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        self.handle_tallied(event).await.0
    }

    /// The same, with what it did.
    pub async fn handle_tallied(&self, event: SqsEvent) -> (SqsBatchResponse, Tally) {
        let incoming: Vec<Incoming> = event
            .records
            .iter()
            .filter_map(|r| {
                Some(Incoming {
                    message_id: r.message_id.as_deref()?,
                    body: r.body.as_deref().unwrap_or_default(),
                })
            })
            .collect();
        let plan = plan(&incoming, self.max_tags);
        for (id, reason) in &plan.unreadable {
            tracing::error!(message_id = %id, %reason, "unreadable tag message; it goes to the dead-letter queue after its retries");
        }
        let answers = self.call_all(&plan).await;
        let outcome = Outcome::of(&plan, &answers);
        report(&plan, &outcome, event.records.len());
        let (reported, delays) = hold_backs(&event.records, &outcome);
        self.hold_back(&delays).await;
        (sqs_response(reported), outcome.tally)
    }

    /// Every call of `plan` at every target, [`CONCURRENCY`] at a time: (call, target,
    /// answer).
    async fn call_all(&self, plan: &Plan) -> Vec<(usize, Target, Answer)> {
        let targets = self.targets();
        // Owned jobs: a closure over borrowed ones makes this future not `Send` for every
        // lifetime (rust-lang/rust#102211).
        let jobs: Vec<(usize, Target, Vec<Tag>)> = plan
            .calls
            .iter()
            .enumerate()
            .flat_map(|(i, tags)| targets.iter().map(move |t| (i, t.clone(), tags.clone())))
            .collect();
        stream::iter(jobs)
            .map(|(i, target, tags)| async move {
                let answer = match &target {
                    Target::Endpoint(endpoint) => self.call(endpoint, &tags).await,
                    Target::TagTable(storefront) => self.write(storefront, &tags).await,
                };
                (i, target, answer)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }

    /// Marks `tags` revalidated in the tag table for `storefront`; a failure is retried by the
    /// queue like a failed call, and a missing table or denied access counts as a
    /// configuration error as a refusing storefront does.
    async fn write(&self, storefront: &str, tags: &[Tag]) -> Answer {
        let Some((table, _)) = &self.tag_table else {
            return Answer::Refused {
                status: 0,
                reason: "no tag table configured".into(),
            };
        };
        match table.revalidate_now(storefront, tags).await {
            Ok(()) => Answer::Done,
            Err(e) if e.configuration => Answer::Refused {
                status: 0,
                reason: e.reason,
            },
            Err(e) => Answer::Retry {
                reason: e.reason,
                after: None,
            },
        }
    }

    /// One call, retried once inside the invocation when a short wait may fix it.
    async fn call(&self, endpoint: &str, tags: &[Tag]) -> Answer {
        let first = self.client.revalidate(endpoint, tags).await;
        match &first {
            Answer::Retry { after, .. } if after.unwrap_or_default() <= MAX_INLINE_WAIT => {
                tokio::time::sleep(after.unwrap_or(Duration::from_millis(100))).await;
                self.client.revalidate(endpoint, tags).await
            }
            _ => first,
        }
    }

    /// Sets each failed message's visibility timeout to its delay. If this fails, the queue's
    /// own visibility timeout applies: the message still comes back.
    async fn hold_back(&self, delays: &[(String, Duration)]) {
        for chunk in delays.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, (handle, delay))| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .visibility_timeout(delay.as_secs() as i32)
                        .build()
                        .ok()
                })
                .collect();
            if let Err(e) = self
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                tracing::warn!(error = %e, "could not hold failed messages back; the queue's visibility timeout applies");
            }
        }
    }
}

/// Where a call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A storefront's revalidate route.
    Endpoint(String),
    /// A storefront's tags in the tag table.
    TagTable(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Endpoint(url) => f.write_str(url),
            Self::TagTable(storefront) => write!(f, "tag-table:{storefront}"),
        }
    }
}

/// What a batch's answers come to.
struct Outcome {
    tally: Tally,
    /// Messages with a call that failed: retried after a backoff.
    failed: BTreeSet<String>,
    /// Messages that cannot be read: back at once, to reach the dead-letter queue soon.
    unreadable: BTreeSet<String>,
    /// The longest `Retry-After` a storefront asked for.
    retry_after: Option<Duration>,
}

impl Outcome {
    /// Tallies `answers` (call index, target, answer) to the calls of `plan`, logging each
    /// failure. Pure but for the logs.
    fn of(plan: &Plan, answers: &[(usize, Target, Answer)]) -> Self {
        let mut tally = Tally {
            calls: answers.len(),
            ..Tally::default()
        };
        let mut failed_calls: BTreeSet<usize> = BTreeSet::new();
        let mut retry_after: Option<Duration> = None;
        for (i, target, answer) in answers {
            match answer {
                Answer::Done => continue,
                Answer::Retry { reason, after } => {
                    retry_after = retry_after.max(*after);
                    tracing::warn!(%target, %reason, tags = plan.calls[*i].len(), "revalidation failed; will retry");
                }
                Answer::Refused { status, reason } => {
                    tally.config_errors += 1;
                    match target {
                        Target::Endpoint(_) => {
                            tracing::error!(%target, status, %reason, "CONFIGURATION ERROR: the storefront refuses revalidate calls (check REVALIDATE_ENDPOINTS and the shared secret); messages are retried and then dead-lettered")
                        }
                        Target::TagTable(_) => {
                            tracing::error!(%target, %reason, "CONFIGURATION ERROR: the tag table refuses writes (check TAG_TABLE and the function's role); messages are retried and then dead-lettered")
                        }
                    }
                }
            }
            tally.failed_calls += 1;
            failed_calls.insert(*i);
        }
        tally.tags_revalidated = plan
            .calls
            .iter()
            .enumerate()
            .filter(|(i, _)| !failed_calls.contains(i))
            .map(|(_, tags)| tags.len())
            .sum();
        Self {
            tally,
            failed: failed_calls
                .iter()
                .flat_map(|i| plan.waiting[*i].iter().cloned())
                .collect(),
            unreadable: plan.unreadable.iter().map(|(id, _)| id.clone()).collect(),
            retry_after,
        }
    }
}

/// The batch's log line and metrics: counts, and the lags of the revalidations (a listing
/// tag's `RevalidationLag` includes the index lag it waited out: the staleness a shopper
/// could see).
fn report(plan: &Plan, outcome: &Outcome, messages: usize) {
    let now = Utc::now();
    let lag = |field: fn(&TagMessage) -> &str| {
        plan.messages
            .iter()
            .filter(|(id, _)| !outcome.failed.contains(*id))
            .filter_map(|(_, m)| DateTime::parse_from_rfc3339(field(m)).ok())
            .map(|t| (now - t.with_timezone(&Utc)).num_milliseconds().max(0) as f64)
            .reduce(f64::max)
    };
    let tally = &outcome.tally;
    let mut metrics: MetricSet = [
        ("TagsRevalidated", tally.tags_revalidated as f64, "Count"),
        ("RevalidateCalls", tally.calls as f64, "Count"),
        ("RevalidateFailures", tally.failed_calls as f64, "Count"),
        (
            "RevalidateConfigErrors",
            tally.config_errors as f64,
            "Count",
        ),
        (
            "UnreadableMessages",
            outcome.unreadable.len() as f64,
            "Count",
        ),
    ]
    .into_iter()
    .collect();
    if let Some(ms) = lag(|m| &m.event_time) {
        metrics.add("RevalidationLag", ms, "Milliseconds");
    }
    if let Some(ms) = lag(|m| &m.enqueued_at) {
        metrics.add("QueueLag", ms, "Milliseconds");
    }
    tracing::info!(
        messages,
        tags = tally.tags_revalidated,
        calls = tally.calls,
        failed_calls = tally.failed_calls,
        unreadable = outcome.unreadable.len(),
        "batch revalidated"
    );
    telemetry::emit(FUNCTION, &metrics);
}

/// The messages to report as failed, and how long to hold each back (see `backoff`): long
/// enough, over the queue's receives, to outlast an hour of storefront outage. Unreadable
/// ones come back at once, to reach the dead-letter queue soon.
fn hold_backs(records: &[SqsMessage], outcome: &Outcome) -> (Vec<String>, Vec<(String, Duration)>) {
    let mut delays = Vec::new();
    let mut reported = Vec::new();
    for record in records {
        let Some(id) = record.message_id.as_ref() else {
            continue;
        };
        let delay = if outcome.unreadable.contains(id) {
            Duration::ZERO
        } else if outcome.failed.contains(id) {
            let received: u32 = record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            backoff::backoff(received, outcome.retry_after)
        } else {
            continue;
        };
        reported.push(id.clone());
        if let Some(handle) = &record.receipt_handle {
            delays.push((handle.clone(), delay));
        }
    }
    (reported, delays)
}
