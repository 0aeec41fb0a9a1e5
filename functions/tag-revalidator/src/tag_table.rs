//! Revalidation through the shared tag table: for each storefront, every tag's item moves to
//! the time of this call (never backwards) and one log item records it, which every instance
//! of that storefront reads within about a second (`packages/next-cache-handler`). Nothing
//! here needs a storefront to be up. Keys: `catalog_core::tag_table`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use catalog_core::tag_table::{log_expires_at, log_pk, log_sk, tags_pk};
use catalog_core::tags::Tag;

/// Tag items updated at once.
const CONCURRENCY: usize = 16;
/// BatchWriteItem's limit.
const BATCH: usize = 25;
/// Rounds of resending what BatchWriteItem left unprocessed before the call fails.
const UNPROCESSED_ROUNDS: u32 = 5;

/// Why a write failed, and whether retrying can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct WriteError {
    pub reason: String,
    /// The table is missing or the role may not write it: retries fail until someone fixes
    /// the stack, so the revalidator reports it as a configuration error.
    pub configuration: bool,
}

impl WriteError {
    fn timeout(table: &str, after: Duration) -> Self {
        Self {
            reason: format!("tag table {table}: no answer within {after:?}"),
            configuration: false,
        }
    }

    /// A failed call: a missing table, denied access or unknown credentials are the stack's
    /// configuration; anything else (throttling, 5xx, a network error) is worth retrying.
    fn of<E, R>(table: &str, operation: &str, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = error.code().unwrap_or_default().to_owned();
        Self {
            configuration: matches!(
                code.as_str(),
                "ResourceNotFoundException"
                    | "AccessDeniedException"
                    | "UnrecognizedClientException"
            ),
            reason: format!(
                "tag table {table}: {operation} failed: {}",
                DisplayErrorContext(error)
            ),
        }
    }
}

/// The tag table and how long one write may take.
#[derive(Debug, Clone)]
pub struct TagTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    timeout: Duration,
}

impl TagTable {
    /// The table `table`, each [`TagTable::revalidate`] given `timeout`. Readers look back
    /// further than that (10 s by default), so a write that lands late is still read.
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            timeout,
        }
    }

    /// Marks `tags` revalidated for `storefront` now, within the timeout.
    pub async fn revalidate_now(&self, storefront: &str, tags: &[Tag]) -> Result<(), WriteError> {
        let at_ms = chrono::Utc::now().timestamp_millis();
        tokio::time::timeout(self.timeout, self.revalidate(storefront, tags, at_ms))
            .await
            .unwrap_or_else(|_| Err(WriteError::timeout(&self.table, self.timeout)))
    }

    /// Marks `tags` revalidated for `storefront` at `at_ms` (milliseconds since the epoch):
    /// the tag items first, then the log. Idempotent; a retry writes a later time.
    pub async fn revalidate(
        &self,
        storefront: &str,
        tags: &[Tag],
        at_ms: i64,
    ) -> Result<(), WriteError> {
        // Futures built into a Vec first: a stream combinator over borrowed tags makes the
        // handler's future not `Send` (rust-lang/rust#102211).
        for chunk in tags.chunks(CONCURRENCY) {
            let raises: Vec<_> = chunk
                .iter()
                .map(|tag| self.raise(storefront, tag, at_ms))
                .collect();
            futures::future::try_join_all(raises).await?;
        }
        for chunk in tags.chunks(BATCH) {
            self.log(storefront, chunk, at_ms).await?;
        }
        Ok(())
    }

    /// Moves one tag item to `at_ms` unless it already holds that time or a later one (a
    /// retry, or a write that overtook this one): the condition failing is success.
    async fn raise(&self, storefront: &str, tag: &Tag, at_ms: i64) -> Result<(), WriteError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(tags_pk(storefront)))
            .key("sk", AttributeValue::S(tag.as_str().to_owned()))
            .update_expression("SET revalidatedAt = :at")
            .condition_expression("attribute_not_exists(revalidatedAt) OR revalidatedAt < :at")
            .expression_attribute_values(":at", AttributeValue::N(at_ms.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(WriteError::of(&self.table, "UpdateItem", e)),
        }
    }

    /// Puts the log items of up to 25 tags, resending what DynamoDB leaves unprocessed.
    async fn log(&self, storefront: &str, tags: &[Tag], at_ms: i64) -> Result<(), WriteError> {
        let mut requests: Vec<WriteRequest> = tags
            .iter()
            .map(|tag| log_request(storefront, tag, at_ms))
            .collect::<Result<_, _>>()?;
        for round in 0..UNPROCESSED_ROUNDS {
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(|e| WriteError::of(&self.table, "BatchWriteItem", e))?;
            requests = output
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50 << round)).await;
        }
        Err(WriteError {
            reason: format!(
                "tag table {}: {} log items still unprocessed",
                self.table,
                requests.len()
            ),
            configuration: false,
        })
    }
}

/// The log item of one revalidation.
fn log_request(storefront: &str, tag: &Tag, at_ms: i64) -> Result<WriteRequest, WriteError> {
    let item: HashMap<String, AttributeValue> = [
        ("pk", AttributeValue::S(log_pk(storefront, at_ms))),
        ("sk", AttributeValue::S(log_sk(at_ms, tag))),
        ("tag", AttributeValue::S(tag.as_str().to_owned())),
        ("revalidatedAt", AttributeValue::N(at_ms.to_string())),
        (
            "expiresAt",
            AttributeValue::N(log_expires_at(at_ms).to_string()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| WriteError {
            reason: e.to_string(),
            configuration: false,
        })?;
    Ok(WriteRequest::builder().put_request(put).build())
}
