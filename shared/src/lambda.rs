//! What the Lambda handlers reply with, written once: the item failures of a partial batch
//! response, for SQS and for DynamoDB streams.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_lambda_events::streams::DynamoDbBatchItemFailure;

/// The SQS item failure for message `id`: the queue redelivers only it.
pub fn sqs_failure(id: impl Into<String>) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id.into();
    failure
}

/// The partial batch response that fails the messages `ids`, and only them.
pub fn sqs_response(ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = ids.into_iter().map(sqs_failure).collect();
    response
}

/// The stream item failure at `sequence_number`: Lambda retries the batch from that record.
pub fn stream_failure(sequence_number: impl Into<String>) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some(sequence_number.into());
    failure
}
