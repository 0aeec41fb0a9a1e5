//! Creates what template.yaml declares ([`crate::template`]) on DynamoDB Local and the SQS
//! emulator: tables with their indexes, streams and TTL, and queues with their dead-letter
//! queues.

pub mod secrets;

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::template::{QueueDef, TableDef, Template};

/// Creates table `name` from the template's `logical` definition unless it exists.
pub async fn create_table_if_missing(
    template: &Template,
    dynamodb: &aws_sdk_dynamodb::Client,
    logical: &str,
    name: &str,
) -> Result<()> {
    let exists = dynamodb
        .describe_table()
        .table_name(name)
        .send()
        .await
        .is_ok();
    if !exists {
        template.table(logical)?.create(dynamodb, name).await?;
    }
    Ok(())
}

fn key_element((name, kind): &(String, String)) -> Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(KeyType::from(kind.as_str()))
        .build()?)
}

impl TableDef {
    /// Creates this table as `name` and waits until it is active.
    pub async fn create(&self, client: &aws_sdk_dynamodb::Client, name: &str) -> Result<()> {
        let mut request = client
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest);
        for (attr, kind) in &self.attributes {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attr)
                    .attribute_type(ScalarAttributeType::from(kind.as_str()))
                    .build()?,
            );
        }
        for key in &self.key_schema {
            request = request.key_schema(key_element(key)?);
        }
        for index in &self.indexes {
            let mut projection = Projection::builder()
                .projection_type(ProjectionType::from(index.projection_type.as_str()));
            for attr in &index.non_key_attributes {
                projection = projection.non_key_attributes(attr);
            }
            let mut gsi = GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .projection(projection.build());
            for key in &index.key_schema {
                gsi = gsi.key_schema(key_element(key)?);
            }
            request = request.global_secondary_indexes(gsi.build()?);
        }
        if let Some(view) = &self.stream_view_type {
            request = request.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view.as_str()))
                    .build()?,
            );
        }
        request
            .send()
            .await
            .with_context(|| format!("creating table {name}"))?;
        if let Some(attr) = &self.ttl_attribute {
            client
                .update_time_to_live()
                .table_name(name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(attr)
                        .enabled(true)
                        .build()?,
                )
                .send()
                .await
                .with_context(|| format!("enabling TTL on {name}"))?;
        }
        Ok(())
    }
}

/// Creates every queue of the template, dead-letter queues first, named `{prefix}{LogicalId}`.
/// Returns logical id -> queue URL.
pub async fn create_queues(
    template: &Template,
    client: &aws_sdk_sqs::Client,
    prefix: &str,
) -> Result<HashMap<String, String>> {
    let mut urls: HashMap<String, String> = HashMap::new();
    let mut arns: HashMap<String, String> = HashMap::new();
    let mut remaining: Vec<&QueueDef> = template.queues.iter().collect();
    while !remaining.is_empty() {
        let before = remaining.len();
        let mut next = Vec::new();
        for queue in remaining {
            if let Some((dlq, _)) = &queue.redrive {
                if !arns.contains_key(dlq) {
                    next.push(queue);
                    continue;
                }
            }
            let mut request = client
                .create_queue()
                .queue_name(format!("{prefix}{}", queue.logical_id));
            if let Some(v) = queue.visibility_timeout {
                request = request.attributes(QueueAttributeName::VisibilityTimeout, v.to_string());
            }
            if let Some(v) = queue.retention {
                request =
                    request.attributes(QueueAttributeName::MessageRetentionPeriod, v.to_string());
            }
            if let Some((dlq, max)) = &queue.redrive {
                let policy =
                    serde_json::json!({"deadLetterTargetArn": arns[dlq], "maxReceiveCount": max});
                request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
            }
            let url = request
                .send()
                .await
                .with_context(|| format!("creating queue {}", queue.logical_id))?
                .queue_url
                .ok_or_else(|| anyhow!("CreateQueue returned no URL"))?;
            let arn = queue_arn(client, &url).await?;
            arns.insert(queue.logical_id.clone(), arn);
            urls.insert(queue.logical_id.clone(), url);
        }
        if next.len() == before {
            bail!("queues with a dead-letter queue that is not in the template: {next:?}");
        }
        remaining = next;
    }
    Ok(urls)
}

/// The ARN of the queue at `url` (what a redrive policy and a Lambda event name it by).
pub async fn queue_arn(client: &aws_sdk_sqs::Client, url: &str) -> Result<String> {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| anyhow!("no QueueArn for {url}"))
}
