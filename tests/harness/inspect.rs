//! What a test reads back from any catalog-sync it runs, a [`TestEnv`] (one test's tables and
//! queues, functions invoked by hand) or a whole local [`Stack`] alike: what is stored, what
//! the rows say should be, what is queued.

use anyhow::{Context, Result};
use catalog::store::{SourceStore, Stored, SummaryStore, TableNames};
use catalog_core::ids::ProductId;
use catalog_core::messages::{ParkedRecord, TagMessage};
use catalog_core::model::ProductSummary;
use catalog_core::projection::{inherit_created_at, project};
use catalog_local::stack::{queue_depth, Queues, Stack};

use crate::TestEnv;

/// The projection of `id`'s current source rows in `tables`: what its summary must equal. A
/// product without `createdAt` keeps the creation time its summary already has, as the
/// refresh and the reconciler complete it.
pub async fn expected_summary(
    dynamodb: &aws_sdk_dynamodb::Client,
    tables: &TableNames,
    id: &ProductId,
) -> Result<Option<ProductSummary>> {
    let sources = SourceStore::new(dynamodb.clone(), tables);
    let summaries = SummaryStore::new(dynamodb.clone(), &tables.summaries);
    let stored = summaries.get(id).await?.and_then(|s| s.record);
    let product = sources.products(std::slice::from_ref(id)).await?.remove(id);
    let product = product.transpose()?.flatten();
    let rows = sources.inventory(id).await?;
    let mut next = project(product.as_ref(), &rows);
    if let Some(next) = &mut next {
        let previous = stored.as_ref().map(|r| &r.summary);
        inherit_created_at(next, previous, chrono::Utc::now());
    }
    Ok(next)
}

/// A running catalog-sync's tables and queues. Tests call these on concrete types (never
/// through `dyn`), so the futures' `Send` is known where it matters.
#[allow(async_fn_in_trait)]
pub trait Inspect {
    fn dynamodb(&self) -> &aws_sdk_dynamodb::Client;
    fn sqs(&self) -> &aws_sdk_sqs::Client;
    /// The three tables every function reads.
    fn tables(&self) -> &TableNames;
    fn queues(&self) -> &Queues;

    /// What the Summaries table holds for `id`.
    async fn stored(&self, id: &str) -> Result<Option<Stored>> {
        let store = SummaryStore::new(self.dynamodb().clone(), &self.tables().summaries);
        Ok(store.get(&ProductId::parse(id)?).await?)
    }

    /// The live summary of `id` (`None` for none or a tombstone).
    async fn summary(&self, id: &str) -> Result<Option<ProductSummary>> {
        Ok(self
            .stored(id)
            .await?
            .and_then(|s| s.record)
            .map(|r| r.summary))
    }

    /// The projection of `id`'s current source rows: what its summary must equal (see
    /// [`expected_summary`]).
    async fn expected(&self, id: &str) -> Result<Option<ProductSummary>> {
        expected_summary(self.dynamodb(), self.tables(), &ProductId::parse(id)?).await
    }

    /// Asserts that `id`'s summary equals the projection of its current rows.
    async fn assert_converged(&self, id: &str) -> Result<()> {
        let (actual, expected) = (self.summary(id).await?, self.expected(id).await?);
        anyhow::ensure!(
            actual == expected,
            "summary of {id} is {actual:#?}, but its rows project to {expected:#?}"
        );
        Ok(())
    }

    /// Receives and deletes every message in the queue with this logical id.
    async fn drain_queue(&self, logical_id: &str) -> Result<Vec<String>> {
        let url = self.queues().url(logical_id)?;
        let mut bodies = Vec::new();
        loop {
            let output = self
                .sqs()
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await?;
            let messages = output.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(bodies);
            }
            for message in messages {
                bodies.extend(message.body);
                if let Some(handle) = message.receipt_handle {
                    self.sqs()
                        .delete_message()
                        .queue_url(url)
                        .receipt_handle(handle)
                        .send()
                        .await?;
                }
            }
        }
    }

    /// Queues one tag message holding `tags`, stamped now, as the projector queues one.
    async fn queue_tags(&self, tags: &[String]) -> Result<()> {
        let now = chrono::Utc::now().to_rfc3339();
        let body =
            serde_json::json!({"version": 1, "tags": tags, "eventTime": now, "enqueuedAt": now});
        let send = self
            .sqs()
            .send_message()
            .queue_url(&self.queues().tag_queue);
        send.message_body(body.to_string()).send().await?;
        Ok(())
    }

    /// Every tag message queued since the last call. DynamoDB Local updates its indexes with
    /// the write, so listing tags come at once, beside the product's own (no listing check).
    async fn tag_messages(&self) -> Result<Vec<TagMessage>> {
        let mut messages = Vec::new();
        for body in self.drain_queue("TagQueue").await? {
            messages.push(serde_json::from_str(&body).context("tag message body")?);
        }
        Ok(messages)
    }

    /// The tags queued since the last call, sorted and deduplicated.
    async fn queued_tags(&self) -> Result<Vec<String>> {
        let mut tags: Vec<String> = self
            .tag_messages()
            .await?
            .into_iter()
            .flat_map(|m| m.tags)
            .map(String::from)
            .collect();
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// Every record parked since the last call.
    async fn parked(&self) -> Result<Vec<ParkedRecord>> {
        self.drain_queue("ParkedRecordsQueue")
            .await?
            .iter()
            .map(|b| serde_json::from_str(b).context("parked record body"))
            .collect()
    }

    /// Whether the queue with this logical id holds nothing: visible, in flight or delayed.
    async fn queue_empty(&self, logical_id: &str) -> Result<bool> {
        let url = self.queues().url(logical_id)?;
        Ok(queue_depth(self.sqs(), url).await? == 0)
    }
}

impl Inspect for TestEnv {
    fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.dynamodb
    }
    fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }
    fn tables(&self) -> &TableNames {
        &self.tables
    }
    fn queues(&self) -> &Queues {
        &self.queues
    }
}

impl Inspect for Stack {
    fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.dynamodb
    }
    fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }
    fn tables(&self) -> &TableNames {
        &self.endpoints.tables.catalog
    }
    fn queues(&self) -> &Queues {
        &self.endpoints.queues
    }
}
