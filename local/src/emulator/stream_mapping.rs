//! Lambda's DynamoDB stream event source mapping, emulated: poll every shard, invoke the
//! function with batches in each shard's order, honour its partial-batch answer, retry, bisect,
//! and send what runs out of retries to the failure destination.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use aws_lambda_events::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::Record;
use serde_json::{json, Value};

use crate::emulator::function::Function;
use crate::emulator::stats::Stats;
use crate::emulator::streams::{lambda_event, StreamReader};
use crate::shutdown::Shutdown;
use crate::template::event_sources::StreamSource;

/// How often a mapping looks for new shards (a split closes a shard and opens children).
const SHARD_DISCOVERY: Duration = Duration::from_secs(10);
/// The longest wait between retries of a failing batch.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One stream's mapping to one function.
pub struct StreamMapping {
    pub source: StreamSource,
    pub reader: StreamReader,
    pub function: Arc<dyn Function>,
    pub sqs: aws_sdk_sqs::Client,
    /// URL of the failure destination queue, if the source names one.
    pub on_failure_url: Option<String>,
    /// Wait between polls of an idle stream (Lambda polls 4 times a second).
    pub poll_interval: Duration,
    pub stats: Arc<Stats>,
}

/// A shard's records read but not yet handled, and how the batch at their head has fared.
#[derive(Default)]
struct ShardQueue {
    /// Each record with the moment it was read.
    records: VecDeque<(Record, Instant)>,
    /// Failed invocations of the batch at the head.
    attempts: u32,
    /// After a function error with bisection on, the head batch's size is halved.
    limit: Option<usize>,
    /// Not before this moment is the head batch retried.
    retry_at: Option<Instant>,
    /// When the oldest record in the queue was read, for the batching window.
    first_read: Option<Instant>,
}

impl ShardQueue {
    /// The head batch is done with (handled or given up): the next one starts afresh.
    fn settled(&mut self) {
        self.attempts = 0;
        self.limit = None;
        self.retry_at = None;
    }
}

/// How one invocation went.
enum Outcome {
    /// Every record handled.
    Done,
    /// The function reported a failure from the record at this index on.
    FailedFrom(usize),
    /// The invocation failed as a whole.
    Error(String),
}

impl StreamMapping {
    /// Polls and invokes until `shutdown`; the batch in hand is finished first.
    pub async fn run(mut self, mut shutdown: Shutdown) -> Result<()> {
        let mut shards: HashMap<String, ShardQueue> = HashMap::new();
        let mut discovered = Instant::now();
        while !shutdown.is_stopping() {
            if discovered.elapsed() >= SHARD_DISCOVERY {
                self.reader.discover_shards().await?;
                discovered = Instant::now();
            }
            for (shard, records) in self.reader.poll_shards().await? {
                let queue = shards.entry(shard).or_default();
                let now = Instant::now();
                queue.first_read.get_or_insert(now);
                queue.records.extend(records.into_iter().map(|r| (r, now)));
            }
            let mut handled_any = false;
            let mut ids: Vec<String> = shards.keys().cloned().collect();
            ids.sort();
            for id in ids {
                if shutdown.is_stopping() {
                    break;
                }
                let Some(queue) = shards.get_mut(&id) else {
                    continue;
                };
                handled_any |= self.step(&id, queue).await?;
            }
            if !handled_any && !shutdown.sleep(self.poll_interval).await {
                break;
            }
        }
        Ok(())
    }

    /// Invokes the function once for the batch at the head of `queue`, if one is due.
    /// Returns whether it invoked.
    async fn step(&self, shard: &str, queue: &mut ShardQueue) -> Result<bool> {
        let Some(size) = self.due(queue) else {
            return Ok(false);
        };
        let batch: Vec<Record> = queue
            .records
            .iter()
            .take(size)
            .map(|(r, _)| r.clone())
            .collect();
        if let Some(age) = self.source.max_record_age {
            if age_ms(&batch[0]) > age.as_millis() as u64 {
                self.give_up(shard, &batch, queue.attempts, "RecordAgeExceeded")
                    .await?;
                queue.records.drain(..size);
                queue.attempts = 0;
                return Ok(true);
            }
        }

        Stats::add(&self.stats.invocations, 1);
        let outcome = self.invoke(&batch).await;
        let handled = match &outcome {
            Outcome::Done => size,
            Outcome::FailedFrom(i) => *i,
            Outcome::Error(_) => 0,
        };
        if handled > 0 {
            Stats::add(&self.stats.records, handled as u64);
            let read_at = queue.records[handled - 1].1;
            self.stats.last_lag_ms.store(
                read_at.elapsed().as_millis() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            queue.records.drain(..handled);
        }
        match outcome {
            Outcome::Done => queue.settled(),
            Outcome::FailedFrom(_) | Outcome::Error(_) => {
                if let Outcome::Error(message) = &outcome {
                    Stats::add(&self.stats.errors, 1);
                    tracing::warn!(stream = %self.source.name, shard, error = %message, "function error");
                    if self.source.bisect_on_error && size > 1 {
                        queue.limit = Some(size.div_ceil(2));
                    }
                }
                self.retry_or_give_up(shard, queue, size - handled).await?;
            }
        }
        if queue.records.is_empty() {
            queue.first_read = None;
        }
        Ok(true)
    }

    /// The size of the head batch if it is due: not waiting out a backoff, and full or past
    /// its batching window (a retry never waits for the window).
    fn due(&self, queue: &ShardQueue) -> Option<usize> {
        if queue.records.is_empty() || queue.retry_at.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        let limit = queue.limit.unwrap_or(self.source.batch_size).max(1);
        let window_open = queue
            .first_read
            .is_some_and(|t| t.elapsed() < self.source.batching_window);
        if queue.records.len() < limit && window_open && queue.attempts == 0 {
            return None;
        }
        Some(limit.min(queue.records.len()))
    }

    /// After a failed invocation: retry the `rest` of the batch after a backoff, or, past
    /// `MaximumRetryAttempts`, send it to the on-failure destination and move on.
    async fn retry_or_give_up(
        &self,
        shard: &str,
        queue: &mut ShardQueue,
        rest: usize,
    ) -> Result<()> {
        queue.attempts += 1;
        Stats::add(&self.stats.retries, 1);
        let exhausted = self
            .source
            .max_retries
            .is_some_and(|max| queue.attempts > max);
        if exhausted {
            let failed: Vec<Record> = queue.records.drain(..rest).map(|(r, _)| r).collect();
            self.give_up(shard, &failed, queue.attempts, "RetryAttemptsExhausted")
                .await?;
            queue.settled();
        } else {
            let backoff = Duration::from_millis(50 << queue.attempts.min(6));
            queue.retry_at = Some(Instant::now() + backoff.min(MAX_BACKOFF));
        }
        Ok(())
    }

    /// Sends `batch` to the function and reads its answer as Lambda does.
    async fn invoke(&self, batch: &[Record]) -> Outcome {
        let event = lambda_event(batch, self.reader.stream_arn());
        let answer = match self.function.invoke(event).await {
            Ok(answer) => answer,
            Err(e) => return Outcome::Error(e.0),
        };
        if !self.source.report_item_failures {
            return Outcome::Done;
        }
        let response: DynamoDbEventResponse = match serde_json::from_value(answer) {
            Ok(r) => r,
            // Lambda treats an answer it cannot read as a failure of the whole batch.
            Err(e) => return Outcome::Error(format!("unreadable batch response: {e}")),
        };
        let mut first: Option<usize> = None;
        for failure in &response.batch_item_failures {
            let id = failure.item_identifier.as_deref().unwrap_or_default();
            match batch.iter().position(|r| sequence_number(r) == Some(id)) {
                Some(i) => first = Some(first.map_or(i, |f| f.min(i))),
                // An identifier that is empty or not in the batch fails the whole batch.
                None => {
                    return Outcome::Error(format!("batch item failure {id:?} is not in the batch"))
                }
            }
        }
        match first {
            None => Outcome::Done,
            Some(i) => Outcome::FailedFrom(i),
        }
    }

    /// Sends the failure destination the record Lambda sends when it gives up on a batch.
    async fn give_up(
        &self,
        shard: &str,
        records: &[Record],
        attempts: u32,
        condition: &str,
    ) -> Result<()> {
        Stats::add(&self.stats.given_up, records.len() as u64);
        tracing::error!(stream = %self.source.name, shard, records = records.len(), condition, "giving up on records");
        let (Some(url), Some(first), Some(last)) =
            (&self.on_failure_url, records.first(), records.last())
        else {
            return Ok(());
        };
        let body = json!({
            "requestContext": {
                "requestId": format!("local-{}", now_ms()),
                "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:summary-projector",
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": chrono_now(),
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": sequence_number(first),
                "endSequenceNumber": sequence_number(last),
                "batchSize": records.len(),
                "streamArn": self.reader.stream_arn(),
            },
        });
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body.to_string())
            .send()
            .await?;
        Ok(())
    }
}

fn sequence_number(record: &Record) -> Option<&str> {
    record.dynamodb.as_ref()?.sequence_number.as_deref()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn chrono_now() -> Value {
    Value::from(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Milliseconds since DynamoDB recorded the change (DynamoDB Local stamps records coarsely, so
/// only good for the record-age limit).
fn age_ms(record: &Record) -> u64 {
    record
        .dynamodb
        .as_ref()
        .and_then(|c| c.approximate_creation_date_time)
        .map(|t| now_ms().saturating_sub(t.to_millis().unwrap_or_default().max(0) as u64))
        .unwrap_or_default()
}
