//! Reading a table's DynamoDB stream and turning its records into the event Lambda sends.

use std::collections::HashMap;

use anyhow::{anyhow, Context, Result};
use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client;
use serde_json::{json, Value};

use crate::services::REGION;

/// Reads every shard of one table's stream, remembering where it got to.
#[derive(Debug)]
pub struct StreamReader {
    client: Client,
    stream_arn: String,
    /// Where to start in the shards found first; shards found later (children of a split)
    /// are read from their start, as Lambda does.
    start: ShardIteratorType,
    shards: HashMap<String, ShardPosition>,
}

#[derive(Debug)]
struct ShardPosition {
    /// The iterator to read next; `None` once the shard is closed and read to its end.
    iterator: Option<String>,
    /// Whether any record was read from this shard yet.
    read_any: bool,
}

impl StreamReader {
    /// A reader of `table`'s latest stream, from `start` (`TrimHorizon` or `Latest`) in every
    /// shard it has not seen yet.
    pub async fn new(
        dynamodb: &aws_sdk_dynamodb::Client,
        client: Client,
        table: &str,
        start: ShardIteratorType,
    ) -> Result<Self> {
        let stream_arn = dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .with_context(|| format!("describing {table}"))?
            .table
            .and_then(|t| t.latest_stream_arn)
            .ok_or_else(|| anyhow!("table {table} has no stream"))?;
        let mut reader = Self {
            client,
            stream_arn,
            start,
            shards: HashMap::new(),
        };
        reader.discover_shards().await?;
        Ok(reader)
    }

    /// The stream's ARN.
    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// Picks up shards created since the last look.
    pub async fn discover_shards(&mut self) -> Result<()> {
        let first_look = self.shards.is_empty();
        let mut start_after: Option<String> = None;
        loop {
            let description = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start_after.take())
                .send()
                .await?
                .stream_description
                .ok_or_else(|| anyhow!("no stream description"))?;
            for shard in description.shards.unwrap_or_default() {
                let Some(id) = shard.shard_id else { continue };
                if self.shards.contains_key(&id) {
                    continue;
                }
                let start = if first_look {
                    self.start.clone()
                } else {
                    ShardIteratorType::TrimHorizon
                };
                let iterator = self.iterator(&id, start).await?;
                self.shards.insert(
                    id,
                    ShardPosition {
                        iterator,
                        read_any: false,
                    },
                );
            }
            match description.last_evaluated_shard_id {
                Some(last) => start_after = Some(last),
                None => return Ok(()),
            }
        }
    }

    async fn iterator(&self, shard_id: &str, kind: ShardIteratorType) -> Result<Option<String>> {
        Ok(self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard_id)
            .shard_iterator_type(kind)
            .send()
            .await?
            .shard_iterator)
    }

    /// One GetRecords call per open shard: what is there now, in each shard's order.
    pub async fn poll(&mut self) -> Result<Vec<Record>> {
        Ok(self
            .poll_shards()
            .await?
            .into_iter()
            .flat_map(|(_, records)| records)
            .collect())
    }

    /// The same, kept by shard: (shard id, its new records in order) for every shard that had
    /// any.
    pub async fn poll_shards(&mut self) -> Result<Vec<(String, Vec<Record>)>> {
        let mut records = Vec::new();
        let mut ids: Vec<String> = self.shards.keys().cloned().collect();
        ids.sort();
        for id in ids {
            let Some(current) = self.shards[&id].iterator.clone() else {
                continue;
            };
            let output = match self
                .client
                .get_records()
                .shard_iterator(current)
                .limit(1000)
                .send()
                .await
            {
                Ok(output) => output,
                // DynamoDB Local numbers records across all tables, and rejects an iterator
                // taken before a shard's first record once that record's number is not the
                // next one. Nothing was read from the shard yet, so its start is the place to
                // read from; the next poll does.
                Err(e)
                    if !self.shards[&id].read_any
                        && e.as_service_error()
                            .is_some_and(|s| s.is_trimmed_data_access_exception()) =>
                {
                    let iterator = self.iterator(&id, ShardIteratorType::TrimHorizon).await?;
                    if let Some(position) = self.shards.get_mut(&id) {
                        position.iterator = iterator;
                    }
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("GetRecords on shard {id}")),
            };
            let fetched = output.records.unwrap_or_default();
            if let Some(position) = self.shards.get_mut(&id) {
                position.read_any |= !fetched.is_empty();
                position.iterator = output.next_shard_iterator;
            }
            if !fetched.is_empty() {
                records.push((id, fetched));
            }
        }
        Ok(records)
    }

    /// Everything available now: polls until two rounds in a row return nothing (a round
    /// that re-took an iterator reads nothing itself).
    pub async fn drain(&mut self) -> Result<Vec<Record>> {
        self.discover_shards().await?;
        let mut all = Vec::new();
        let mut empty_rounds = 0;
        while empty_rounds < 2 {
            let batch = self.poll().await?;
            empty_rounds = if batch.is_empty() {
                empty_rounds + 1
            } else {
                0
            };
            all.extend(batch);
        }
        Ok(all)
    }
}

/// One record as Lambda's event source mapping delivers it (DynamoDB JSON images).
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let change = record.dynamodb.as_ref();
    let item = |m: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
        m.map(|m| serde_json::to_value(serde_dynamo::Item::from(m.clone())).unwrap_or(Value::Null))
    };
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": change
            .and_then(|c| c.approximate_creation_date_time)
            .map(|t| t.secs())
            .unwrap_or_default(),
        "Keys": item(change.and_then(|c| c.keys.as_ref())),
        "SequenceNumber": change.and_then(|c| c.sequence_number.clone()),
        "SizeBytes": change.and_then(|c| c.size_bytes).unwrap_or_default(),
        "StreamViewType": change.and_then(|c| c.stream_view_type.as_ref()).map(|v| v.as_str().to_owned()),
    });
    if let Some(image) = item(change.and_then(|c| c.new_image.as_ref())) {
        dynamodb["NewImage"] = image;
    }
    if let Some(image) = item(change.and_then(|c| c.old_image.as_ref())) {
        dynamodb["OldImage"] = image;
    }
    json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str().to_owned()),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    })
}

/// The Lambda event for a batch of records of one stream.
pub fn lambda_event(records: &[Record], stream_arn: &str) -> Value {
    json!({ "Records": records.iter().map(|r| lambda_record(r, stream_arn)).collect::<Vec<_>>() })
}

/// The same event, decoded as the function's runtime decodes it.
pub fn decode_event(event: &Value) -> Result<Event> {
    serde_json::from_value(event.clone())
        .context("the event does not match Lambda's DynamoDB event shape")
}
