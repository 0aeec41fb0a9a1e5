//! The projector's two event sources in one function: the Products and Inventory streams, and
//! its listing-check queue. Lambda hands both to the same handler, told apart by their
//! records' `eventSource` (never by trying one shape and then the other: serde's defaults
//! would let an SQS batch pass for an empty stream batch).

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::streams::DynamoDbEventResponse;
use serde::Serialize;
use serde_json::Value;

/// One invocation's event.
#[derive(Debug)]
pub enum Input {
    Stream(Event),
    ListingChecks(SqsEvent),
}

/// The answer, in the shape the event's source expects.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Output {
    Stream(DynamoDbEventResponse),
    ListingChecks(SqsBatchResponse),
}

/// An event that is neither a stream batch nor an SQS batch.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("event source {0:?} is neither aws:dynamodb nor aws:sqs")]
    UnknownSource(String),
    #[error("decoding the {kind} event: {error}")]
    Malformed {
        kind: &'static str,
        error: serde_json::Error,
    },
}

impl Input {
    /// Reads an event by its first record's `eventSource`. An event without records is an
    /// empty stream batch.
    pub fn parse(event: Value) -> Result<Self, InputError> {
        let source = event["Records"][0]["eventSource"]
            .as_str()
            .unwrap_or("aws:dynamodb");
        match source {
            "aws:dynamodb" => serde_json::from_value(event)
                .map(Input::Stream)
                .map_err(|error| InputError::Malformed {
                    kind: "stream",
                    error,
                }),
            "aws:sqs" => serde_json::from_value(event)
                .map(Input::ListingChecks)
                .map_err(|error| InputError::Malformed { kind: "SQS", error }),
            other => Err(InputError::UnknownSource(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_sources_apart_by_event_source() {
        let sqs = serde_json::json!({"Records": [{"messageId": "m1", "body": "{}", "eventSource": "aws:sqs"}]});
        assert!(matches!(Input::parse(sqs), Ok(Input::ListingChecks(e)) if e.records.len() == 1));
        let stream = serde_json::json!({"Records": [{
            "eventID": "e", "eventName": "MODIFY", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"productId": {"S": "p1"}}, "SequenceNumber": "1", "SizeBytes": 1}
        }]});
        assert!(matches!(Input::parse(stream), Ok(Input::Stream(e)) if e.records.len() == 1));
        let empty = serde_json::json!({"Records": []});
        assert!(matches!(Input::parse(empty), Ok(Input::Stream(e)) if e.records.is_empty()));
        let other = serde_json::json!({"Records": [{"eventSource": "aws:kinesis"}]});
        assert!(matches!(
            Input::parse(other),
            Err(InputError::UnknownSource(_))
        ));
    }
}
