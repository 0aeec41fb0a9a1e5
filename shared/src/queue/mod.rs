//! SQS adapters: the tag queue the revalidator drains, the listing checks that hold listing
//! tags until the index shows a write, and the parking lot for records that can never be
//! processed.

pub mod listing_checks;
pub mod parking;
pub mod tag_queue;

pub use listing_checks::ListingCheckQueue;
pub use parking::ParkingLot;
pub use tag_queue::TagPublisher;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;
use futures::future::try_join_all;

use crate::fault::{classify, Fault};

/// SendMessageBatch takes at most this many messages a call.
const MAX_BATCH: usize = 10;

/// Sends `bodies` (JSON texts, each with its delivery delay in seconds) to `queue_url`, ten to
/// a SendMessageBatch call, the calls at once. Any entry SQS refuses fails the whole send: the
/// caller retries, and receivers tolerate duplicates.
pub async fn send_bodies(
    client: &Client,
    queue_url: &str,
    bodies: Vec<(String, i32)>,
) -> Result<(), Fault> {
    let calls = bodies.chunks(MAX_BATCH).map(|chunk| async move {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, (body, delay))| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .delay_seconds(*delay)
                    .build()
                    .map_err(|e| Fault::Permanent(format!("SendMessageBatch entry: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| classify("SendMessageBatch", e))?;
        match output.failed.first() {
            None => Ok(()),
            Some(f) if f.sender_fault => Err(Fault::Permanent(format!(
                "SendMessageBatch refused a message: {}: {}",
                f.code,
                f.message.as_deref().unwrap_or("")
            ))),
            Some(f) => Err(Fault::Transient(format!(
                "SendMessageBatch failed a message: {}",
                f.code
            ))),
        }
    });
    try_join_all(calls).await.map(|_| ())
}
