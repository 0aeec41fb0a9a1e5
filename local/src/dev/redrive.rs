//! Redriving a dead-letter queue: every message goes back to the queue it came from, as SQS's
//! `StartMessageMoveTask` does on AWS (`aws sqs start-message-move-task --source-arn <DLQ
//! ARN>`). The SQS emulator has no move task, so the local stack moves them itself.

use anyhow::{Context, Result};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};

/// Moves every message now in `dead` to `source`, ten at a time (sent before deleted: a
/// failure in between leaves a duplicate, never a loss). Returns how many moved.
pub async fn redrive(sqs: &aws_sdk_sqs::Client, dead: &str, source: &str) -> Result<usize> {
    let mut moved = 0;
    loop {
        let messages = sqs
            .receive_message()
            .queue_url(dead)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .send()
            .await
            .context("reading the dead-letter queue")?
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        let mut sends = Vec::new();
        let mut deletes = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let id = i.to_string();
            sends.push(
                SendMessageBatchRequestEntry::builder()
                    .id(&id)
                    .message_body(m.body().unwrap_or_default())
                    .build()?,
            );
            deletes.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(&id)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()?,
            );
        }
        let sent = sqs
            .send_message_batch()
            .queue_url(source)
            .set_entries(Some(sends))
            .send()
            .await
            .context("sending to the source queue")?;
        anyhow::ensure!(sent.failed.is_empty(), "not sent: {:?}", sent.failed);
        sqs.delete_message_batch()
            .queue_url(dead)
            .set_entries(Some(deletes))
            .send()
            .await
            .context("deleting from the dead-letter queue")?;
        moved += messages.len();
    }
}
