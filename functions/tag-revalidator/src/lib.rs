//! The tag-revalidator's handler: read a batch of tag messages, revalidate every tag once at
//! every storefront target (each endpoint, and each storefront of the tag table), all targets
//! at once and each within its own timeout. What a target fails is handed to the retry queue
//! in messages naming that target alone (`handoff`), so the healthy targets are called once
//! per message and a hung one is retried, held back and dead-lettered on its own, never in
//! front of first revalidations; a target that just failed is skipped on the tag queue for a
//! while (`breaker`). Messages that cannot be handed off, and failed retry messages, are
//! reported, so SQS delivers them again (and, after `maxReceiveCount`, parks them in the
//! dead-letter queue).
//!
//! Both SQS triggers must enable `ReportBatchItemFailures`, or a partial failure would be
//! taken as success.

pub mod backoff;
pub mod breaker;
pub mod client;
pub mod handoff;
pub mod plan;
pub mod secret;
pub mod signature;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry;
use catalog::lambda::sqs_response;
use catalog::telemetry::{self, MetricSet};
use catalog_core::messages::TagMessage;
use catalog_core::tags::Tag;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::breaker::Breaker;
use crate::client::{Answer, RevalidateClient};
use crate::handoff::{handoffs, Failure, Handoff};
use crate::plan::{plan, Incoming, Plan};
use catalog::store::TagTable;

const FUNCTION: &str = "tag-revalidator";
/// Calls in flight at once per target (every target at once).
const PER_TARGET: usize = 8;
/// The longest wait for a retry inside one invocation; longer waits go back to the queue.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(1);
/// How long a retry-queue write to the tag table keeps starting new attempts: with one more
/// attempt of at most `MAX_REVALIDATE_TIMEOUT_MS` it ends within the function's 30 s
/// (`tests/tests/integration/template.rs` checks it).
pub const WRITE_PATIENCE: Duration = Duration::from_secs(15);

/// Everything the handler needs, built once at cold start.
#[derive(Debug, Clone)]
pub struct Revalidator {
    endpoints: Vec<String>,
    client: RevalidateClient,
    /// The tag table and the storefronts it holds tags for.
    tag_table: Option<(TagTable, Vec<String>)>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    /// Where a target's failed tags go; without it a failed call fails its messages.
    retry_queue_url: Option<String>,
    max_tags: usize,
    breaker: Arc<Breaker>,
}

/// What one batch came to, for the metrics and the tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub tags_revalidated: usize,
    pub calls: usize,
    pub failed_calls: usize,
    pub config_errors: usize,
    /// Calls not made because the target failed just before (handed off at once).
    pub skipped_calls: usize,
    /// Retry messages sent, one per target and 100 tags.
    pub handed_off: usize,
}

/// One call's result: the call, its target, the answer, and whether it was made at all.
type Called = (usize, Target, Answer, bool);
/// One call to make: the call, its target, its tags, and whether it is a first revalidation
/// (a tag-queue message's, for every target).
type Job = (usize, Target, Vec<Tag>, bool);

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
            retry_queue_url: None,
            max_tags,
            breaker: Arc::default(),
        }
    }

    /// Also revalidates, for each of `storefronts`, through `table`.
    pub fn with_tag_table(mut self, table: TagTable, storefronts: Vec<String>) -> Self {
        self.tag_table = Some((table, storefronts));
        self
    }

    /// Hands each target's failures to the queue at `url` (template.yaml's `TagRetryQueue`).
    pub fn with_retry_queue(mut self, url: impl Into<String>) -> Self {
        self.retry_queue_url = Some(url.into());
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
        let mut outcome = Outcome::of(&plan, &answers);
        let handed = self.hand_off(&plan, &mut outcome).await;
        outcome.settle(&plan, &handed);
        report(&plan, &outcome, &answers, event.records.len());
        let (reported, delays) = hold_backs(&event.records, &plan, &outcome);
        self.hold_back(&delays).await;
        (sqs_response(reported), outcome.tally)
    }

    /// Every call of `plan` at each of its targets, [`PER_TARGET`] at a time per target.
    async fn call_all(&self, plan: &Plan) -> Vec<Called> {
        let targets = self.targets();
        // Owned jobs: a closure over borrowed ones makes this future not `Send` for every
        // lifetime (rust-lang/rust#102211).
        let mut jobs: Vec<Job> = Vec::new();
        for (i, tags) in plan.calls.iter().enumerate() {
            let first = plan.targets[i].is_none();
            let named = targets.iter().filter(|t| match &plan.targets[i] {
                None => true,
                Some(name) => t.to_string() == *name,
            });
            let mut any = false;
            for target in named {
                any = true;
                jobs.push((i, target.clone(), tags.clone(), first));
            }
            if !any {
                tracing::warn!(
                    target = plan.targets[i].as_deref().unwrap_or_default(),
                    "a retry message names a target this stack no longer has; dropped"
                );
            }
        }
        // Each target its own stream: a hung one fills only its own slots.
        let mut by_target: BTreeMap<String, Vec<Job>> = BTreeMap::new();
        for job in jobs {
            by_target.entry(job.1.to_string()).or_default().push(job);
        }
        let streams = by_target.into_values().map(|jobs| {
            stream::iter(jobs)
                .map(|(i, target, tags, first)| self.call_once(i, target, tags, first))
                .buffer_unordered(PER_TARGET)
                .collect::<Vec<_>>()
        });
        futures::future::join_all(streams)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// One call of `tags` at `target`, unless the target failed just before on the tag queue
    /// (`first`: a call for every target), when it is handed off without a call.
    async fn call_once(&self, i: usize, target: Target, tags: Vec<Tag>, first: bool) -> Called {
        let name = target.to_string();
        if first && self.retry_queue_url.is_some() && self.breaker.is_open(&name) {
            let reason = "not called: it failed just before; handed to the retry queue".into();
            return (
                i,
                target,
                Answer::Retry {
                    reason,
                    after: None,
                },
                false,
            );
        }
        let answer = match &target {
            Target::Endpoint(endpoint) => self.call(endpoint, &tags).await,
            Target::TagTable(storefront) => self.write(storefront, &tags, !first).await,
        };
        match &answer {
            Answer::Done => self.breaker.close(&name),
            _ if first => self.breaker.trip(&name),
            _ => {}
        }
        (i, target, answer, true)
    }

    /// Sends the retry messages for `outcome`'s failures; the targets whose every retry
    /// message was sent.
    async fn hand_off(&self, plan: &Plan, outcome: &mut Outcome) -> BTreeSet<String> {
        let Some(url) = &self.retry_queue_url else {
            return BTreeSet::new();
        };
        let all: Vec<Handoff> = handoffs(plan, &outcome.failures, Utc::now());
        let mut sent: BTreeSet<String> = all
            .iter()
            .filter_map(|h| h.message.target.clone())
            .collect();
        for handoff in &all {
            let target = handoff.message.target.clone().unwrap_or_default();
            let body = serde_json::to_string(&handoff.message).unwrap_or_default();
            let result = self
                .sqs
                .send_message()
                .queue_url(url)
                .message_body(body)
                .delay_seconds(handoff.delay.as_secs().min(900) as i32)
                .send()
                .await;
            match result {
                Ok(_) => outcome.tally.handed_off += 1,
                Err(e) => {
                    tracing::warn!(%target, error = %e, "could not hand a failed target's tags to the retry queue; the messages are retried whole");
                    sent.remove(&target);
                }
            }
        }
        sent
    }

    /// Marks `tags` revalidated in the tag table for `storefront`; a failure is retried by the
    /// queue like a failed call, and a missing table or denied access counts as a
    /// configuration error as a refusing storefront does. A retry-queue call (`patient`) keeps
    /// retrying a transient failure (throttling under a bulk import) for [`WRITE_PATIENCE`]:
    /// the retry queue's backoff would otherwise add up to minutes after the throttling ends.
    async fn write(&self, storefront: &str, tags: &[Tag], patient: bool) -> Answer {
        let Some((table, _)) = &self.tag_table else {
            return Answer::Misconfigured {
                reason: "no tag table configured".into(),
            };
        };
        let start = tokio::time::Instant::now();
        let mut wait = Duration::from_millis(200);
        loop {
            match table.revalidate_now(storefront, tags).await {
                Ok(()) => return Answer::Done,
                Err(e) if e.is_misconfigured() => {
                    return Answer::Misconfigured {
                        reason: e.to_string(),
                    }
                }
                Err(e) if !patient || start.elapsed() + wait > WRITE_PATIENCE => {
                    return Answer::Retry {
                        reason: e.to_string(),
                        after: None,
                    }
                }
                Err(_) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// One call, retried once inside the invocation when a short wait may fix it.
    async fn call(&self, endpoint: &str, tags: &[Tag]) -> Answer {
        let first = self.client.revalidate_or_reread(endpoint, tags).await;
        match &first {
            Answer::Retry { after, .. } if after.unwrap_or_default() <= MAX_INLINE_WAIT => {
                tokio::time::sleep(after.unwrap_or(Duration::from_millis(100))).await;
                self.client.revalidate_or_reread(endpoint, tags).await
            }
            _ => first,
        }
    }

    /// Sets each failed message's visibility timeout to its delay, on the queue it came from.
    /// If this fails, the queue's own visibility timeout applies: the message still comes back.
    async fn hold_back(&self, delays: &[(String, Duration, bool)]) {
        for retry in [false, true] {
            let url = match (retry, &self.retry_queue_url) {
                (false, _) => &self.queue_url,
                (true, Some(url)) => url,
                (true, None) => continue,
            };
            let mine: Vec<_> = delays.iter().filter(|(_, _, r)| *r == retry).collect();
            for chunk in mine.chunks(10) {
                let entries: Vec<_> = chunk
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (handle, delay, _))| {
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
                    .queue_url(url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    tracing::warn!(error = %e, "could not hold failed messages back; the queue's visibility timeout applies");
                }
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

impl Target {
    /// How a tag-table target's name begins (`tag-table:{storefront}`).
    const TAG_TABLE_PREFIX: &'static str = "tag-table:";
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Endpoint(url) => f.write_str(url),
            Self::TagTable(storefront) => write!(f, "{}{storefront}", Self::TAG_TABLE_PREFIX),
        }
    }
}

/// What a batch's answers come to.
struct Outcome {
    tally: Tally,
    /// Every failed call, by target.
    failures: Vec<Failure>,
    /// Messages with a failed call that was not handed off: retried after a backoff.
    failed: BTreeSet<String>,
    /// Messages that cannot be read: back at once, to reach the dead-letter queue soon.
    unreadable: BTreeSet<String>,
    /// The longest `Retry-After` a storefront asked for.
    retry_after: Option<Duration>,
}

impl Outcome {
    /// Tallies `answers` to the calls of `plan`, logging each failure. Pure but for the logs.
    fn of(plan: &Plan, answers: &[Called]) -> Self {
        let mut tally = Tally::default();
        let mut failures = Vec::new();
        let mut retry_after: Option<Duration> = None;
        for (i, target, answer, called) in answers {
            if *called {
                tally.calls += 1;
            } else {
                tally.skipped_calls += 1;
            }
            let after = match answer {
                Answer::Done => continue,
                Answer::Retry { reason, after } => {
                    if *called {
                        tracing::warn!(%target, %reason, tags = plan.calls[*i].len(), "revalidation failed; will retry");
                    }
                    *after
                }
                Answer::Refused { status, reason } => {
                    tally.config_errors += 1;
                    log_refusal(target, Some(*status), reason);
                    None
                }
                Answer::Misconfigured { reason } => {
                    tally.config_errors += 1;
                    log_refusal(target, None, reason);
                    None
                }
            };
            retry_after = retry_after.max(after);
            if *called {
                tally.failed_calls += 1;
            }
            failures.push(Failure {
                call: *i,
                target: target.to_string(),
                retry_after: after,
            });
        }
        Self {
            tally,
            failures,
            failed: BTreeSet::new(),
            unreadable: plan.unreadable.iter().map(|(id, _)| id.clone()).collect(),
            retry_after,
        }
    }

    /// Fails the messages behind every failure not handed off to its target's retry queue
    /// (`handed`: the targets whose retry messages were all sent), and counts the tags that
    /// went through.
    fn settle(&mut self, plan: &Plan, handed: &BTreeSet<String>) {
        let open: BTreeSet<usize> = self
            .failures
            .iter()
            .filter(|f| plan.targets[f.call].is_some() || !handed.contains(&f.target))
            .map(|f| f.call)
            .collect();
        self.failed = open
            .iter()
            .flat_map(|i| plan.waiting[*i].iter().cloned())
            .collect();
        self.tally.tags_revalidated = plan
            .calls
            .iter()
            .enumerate()
            .filter(|(i, _)| !open.contains(i))
            .map(|(_, tags)| tags.len())
            .sum();
    }
}

fn log_refusal(target: &Target, status: Option<u16>, reason: &str) {
    match target {
        Target::Endpoint(_) => {
            tracing::error!(%target, status, %reason, "CONFIGURATION ERROR: the storefront refuses revalidate calls (check REVALIDATE_ENDPOINTS and the shared secret); its messages are retried and then dead-lettered")
        }
        Target::TagTable(_) => {
            tracing::error!(%target, %reason, "CONFIGURATION ERROR: the tag table refuses writes (check TAG_TABLE and the function's role); its messages are retried and then dead-lettered")
        }
    }
}

/// The batch's log line and metrics: counts, and the lags of the revalidations (a listing
/// tag's `RevalidationLag` includes the index lag it waited out: the staleness a shopper
/// could see); then per target its calls, failures and lag (dimension `target`).
fn report(plan: &Plan, outcome: &Outcome, answers: &[Called], messages: usize) {
    let now = Utc::now();
    let lag_of = |ids: &mut dyn Iterator<Item = &String>, field: fn(&TagMessage) -> &str| {
        ids.filter_map(|id| plan.messages.get(id))
            .filter_map(|m| DateTime::parse_from_rfc3339(field(m)).ok())
            .map(|t| (now - t.with_timezone(&Utc)).num_milliseconds().max(0) as f64)
            .reduce(f64::max)
    };
    let done = || {
        plan.messages
            .keys()
            .filter(|id| !outcome.failed.contains(*id))
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
        ("RevalidateHandoffs", tally.handed_off as f64, "Count"),
        (
            "UnreadableMessages",
            outcome.unreadable.len() as f64,
            "Count",
        ),
    ]
    .into_iter()
    .collect();
    if let Some(ms) = lag_of(&mut done(), |m| &m.event_time) {
        metrics.add("RevalidationLag", ms, "Milliseconds");
    }
    if let Some(ms) = lag_of(&mut done(), |m| &m.enqueued_at) {
        metrics.add("QueueLag", ms, "Milliseconds");
    }
    tracing::info!(
        messages,
        tags = tally.tags_revalidated,
        calls = tally.calls,
        failed_calls = tally.failed_calls,
        skipped_calls = tally.skipped_calls,
        handed_off = tally.handed_off,
        unreadable = outcome.unreadable.len(),
        "batch revalidated"
    );
    telemetry::emit(FUNCTION, &metrics);
    for (target, set) in per_target(plan, answers, |ids| lag_of(ids, |m| &m.event_time)) {
        tracing::debug!(%target, "target metrics");
        telemetry::emit(FUNCTION, &set);
    }
}

/// Each target's calls, failures and revalidation lag (of the messages its successful calls
/// carried), dimension `target`.
fn per_target(
    plan: &Plan,
    answers: &[Called],
    lag: impl Fn(&mut dyn Iterator<Item = &String>) -> Option<f64>,
) -> BTreeMap<String, MetricSet> {
    let mut sets: BTreeMap<String, MetricSet> = BTreeMap::new();
    let mut done: BTreeMap<String, BTreeSet<&String>> = BTreeMap::new();
    for (i, target, answer, called) in answers {
        let name = target.to_string();
        let set = sets
            .entry(name.clone())
            .or_insert_with(|| MetricSet::with_dimension("target", name.clone()));
        set.add("TargetCalls", f64::from(u8::from(*called)), "Count");
        let failed = !matches!(answer, Answer::Done);
        set.add("TargetFailures", f64::from(u8::from(failed)), "Count");
        if !failed {
            done.entry(name).or_default().extend(&plan.waiting[*i]);
        }
    }
    for (name, ids) in done {
        if let (Some(set), Some(ms)) = (sets.get_mut(&name), lag(&mut ids.into_iter())) {
            set.add("TargetLag", ms, "Milliseconds");
        }
    }
    sets
}

/// The messages to report as failed, and how long to hold each back (see `backoff`): long
/// enough, over the queue's receives, to outlast an hour of storefront outage. Unreadable
/// ones come back at once, to reach the dead-letter queue soon. Each delay says whether its
/// message is a retry message (it names a target) and so which queue holds it.
fn hold_backs(
    records: &[SqsMessage],
    plan: &Plan,
    outcome: &Outcome,
) -> (Vec<String>, Vec<(String, Duration, bool)>) {
    let mut delays = Vec::new();
    let mut reported = Vec::new();
    for record in records {
        let Some(id) = record.message_id.as_ref() else {
            continue;
        };
        // A retry message names its target (and is held on the retry queue).
        let target = plan.messages.get(id).and_then(|m| m.target.as_deref());
        let delay = if outcome.unreadable.contains(id) {
            Duration::ZERO
        } else if outcome.failed.contains(id) {
            let received: u32 = record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let hold = backoff::backoff(received, outcome.retry_after);
            // A tag-table retry already waited WRITE_PATIENCE in the invocation: that counts
            // toward its hold, so the queue's patience is kept and a short throttling ends in
            // seconds, not minutes.
            if target.is_some_and(|t| t.starts_with(Target::TAG_TABLE_PREFIX)) {
                hold.saturating_sub(WRITE_PATIENCE)
                    .max(Duration::from_secs(1))
            } else {
                hold
            }
        } else {
            continue;
        };
        reported.push(id.clone());
        if let Some(handle) = &record.receipt_handle {
            delays.push((handle.clone(), delay, target.is_some()));
        }
    }
    (reported, delays)
}
