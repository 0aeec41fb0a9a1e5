//! Lambda's SQS event source mapping, emulated: receive, invoke the function with an `SqsEvent`,
//! delete what it handled and leave what it reported failed for the queue to redeliver after
//! its visibility timeout (and to move to the dead-letter queue after `maxReceiveCount`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::SqsBatchResponse;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{json, Map, Value};

use crate::emulator::function::Function;
use crate::emulator::stats::Stats;
use crate::services::REGION;
use crate::shutdown::Shutdown;
use crate::template::event_sources::QueueSource;

/// How long one receive waits for a message (short, so a stop is noticed within it).
const LONG_POLL_SECS: i32 = 1;

/// One queue's mapping to one function.
pub struct QueueMapping {
    pub source: QueueSource,
    pub queue_url: String,
    pub queue_arn: String,
    pub function: Arc<dyn Function>,
    pub sqs: aws_sdk_sqs::Client,
    /// Wait between receives while a batching window is open.
    pub poll_interval: Duration,
    pub stats: Arc<Stats>,
}

impl QueueMapping {
    /// Receives and invokes until `shutdown`; the batch in hand is finished first.
    pub async fn run(self, shutdown: Shutdown) -> Result<()> {
        while !shutdown.is_stopping() {
            // Long polls, as Lambda's pollers do: an empty answer has already waited.
            let messages = self.receive().await?;
            if messages.is_empty() {
                continue;
            }
            self.handle(&messages).await?;
        }
        Ok(())
    }

    /// Up to a batch of messages; collects for the batching window when the batch is short.
    async fn receive(&self) -> Result<Vec<Message>> {
        let deadline = tokio::time::Instant::now() + self.source.batching_window;
        let mut messages: Vec<Message> = Vec::new();
        loop {
            let wanted = self.source.batch_size - messages.len();
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(wanted.clamp(1, 10) as i32)
                .wait_time_seconds(if messages.is_empty() {
                    LONG_POLL_SECS
                } else {
                    0
                })
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send()
                .await
                .with_context(|| format!("ReceiveMessage {}", self.source.queue))?
                .messages
                .unwrap_or_default();
            let empty = received.is_empty();
            messages.extend(received);
            if messages.len() >= self.source.batch_size
                || tokio::time::Instant::now() >= deadline
                || (empty && !messages.is_empty() && self.source.batching_window.is_zero())
                || (empty && messages.is_empty())
            {
                return Ok(messages);
            }
            if empty {
                tokio::time::sleep_until(
                    deadline.min(tokio::time::Instant::now() + self.poll_interval),
                )
                .await;
            }
        }
    }

    /// Invokes the function with `messages` and deletes those it handled.
    async fn handle(&self, messages: &[Message]) -> Result<()> {
        Stats::add(&self.stats.invocations, 1);
        let failed = self.invoke(messages).await;
        if !failed.is_empty() {
            Stats::add(&self.stats.retries, 1);
        }
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| !m.message_id.as_ref().is_some_and(|id| failed.contains(id)))
            .collect();
        Stats::add(&self.stats.records, done.len() as u64);
        if let Some(sent) = done.iter().filter_map(|m| sent_ms(m)).max() {
            self.stats.last_lag_ms.store(
                now_ms().saturating_sub(sent),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        self.delete(&done).await
    }

    /// Invokes the function as Lambda does; returns the ids of the messages that failed (all
    /// of them on a function error, those it reports with `ReportBatchItemFailures`).
    async fn invoke(&self, messages: &[Message]) -> Vec<String> {
        let event = json!({
            "Records": messages.iter().map(|m| lambda_record(m, &self.queue_arn)).collect::<Vec<_>>()
        });
        match self.function.invoke(event).await {
            Err(e) => {
                Stats::add(&self.stats.errors, 1);
                tracing::warn!(queue = %self.source.queue, error = %e, "function error; the batch returns to the queue");
                messages
                    .iter()
                    .filter_map(|m| m.message_id.clone())
                    .collect()
            }
            Ok(_) if !self.source.report_item_failures => Vec::new(),
            Ok(answer) => match serde_json::from_value::<SqsBatchResponse>(answer) {
                Ok(response) => response
                    .batch_item_failures
                    .into_iter()
                    .map(|f| f.item_identifier)
                    .collect(),
                // A function that answers something else handled everything (as on AWS).
                Err(_) => Vec::new(),
            },
        }
    }

    /// Deletes the handled messages, ten a call.
    async fn delete(&self, done: &[&Message]) -> Result<()> {
        for chunk in done.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .set_receipt_handle(m.receipt_handle.clone())
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .with_context(|| format!("DeleteMessageBatch {}", self.source.queue))?;
        }
        Ok(())
    }
}

/// One message as Lambda's SQS event record (receive it with every system attribute).
pub fn lambda_record(message: &Message, queue_arn: &str) -> Value {
    let attributes: Map<String, Value> = message
        .attributes
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_owned(), Value::from(v.clone())))
        .collect();
    json!({
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body.clone().unwrap_or_default(),
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": message.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    })
}

fn sent_ms(message: &Message) -> Option<u64> {
    message
        .attributes
        .as_ref()?
        .get(&MessageSystemAttributeName::SentTimestamp)?
        .parse()
        .ok()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}
