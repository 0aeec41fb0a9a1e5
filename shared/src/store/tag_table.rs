//! The shared tag table's writer (the tag-revalidator's storefront target): for each
//! storefront, one log item per [`LOG_ITEM_TAGS`] tags is appended at a position taken from the
//! storefront's counter; every instance of that storefront reads the log by position within a
//! poll (`packages/next-cache-handler`), however late the append lands. Nothing here needs a
//! storefront to be up. Keys: `catalog_core::tag_table`.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use catalog_core::tag_table::{log_expires_at, log_pk, log_sk, seq_pk, LOG_ITEM_TAGS, SEQ_SK};
use catalog_core::tags::Tag;

use crate::fault::{classify, Fault};

/// Positions tried for one log item before the call fails: each is lost only to a reader that
/// gave up waiting for it, so more than one loss in a row means readers give up too soon.
const APPEND_ATTEMPTS: u32 = 5;

/// The tag table and how long one write may take.
#[derive(Debug, Clone)]
pub struct TagTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    timeout: Duration,
}

impl TagTable {
    /// The table `table`, each [`TagTable::revalidate_now`] given `timeout`. No reader
    /// depends on it: a write that lands late is still read.
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
    pub async fn revalidate_now(&self, storefront: &str, tags: &[Tag]) -> Result<(), Fault> {
        let at_ms = chrono::Utc::now().timestamp_millis();
        tokio::time::timeout(self.timeout, self.revalidate(storefront, tags, at_ms))
            .await
            .unwrap_or_else(|_| {
                let (table, after) = (&self.table, self.timeout);
                Err(Fault::Transient(format!(
                    "tag table {table}: no answer within {after:?}"
                )))
            })
    }

    /// Marks `tags` revalidated for `storefront` at `at_ms` (milliseconds since the epoch):
    /// one log item per [`LOG_ITEM_TAGS`] tags. A retry appends again (an instance that reads
    /// both re-renders once more).
    pub async fn revalidate(
        &self,
        storefront: &str,
        tags: &[Tag],
        at_ms: i64,
    ) -> Result<(), Fault> {
        for chunk in tags.chunks(LOG_ITEM_TAGS) {
            self.append(storefront, chunk, at_ms).await?;
        }
        Ok(())
    }

    /// Appends one log item holding `tags`: takes a position, puts the item there if no
    /// reader has voided it meanwhile, else takes another.
    async fn append(&self, storefront: &str, tags: &[Tag], at_ms: i64) -> Result<(), Fault> {
        for _ in 0..APPEND_ATTEMPTS {
            let position = self.reserve(storefront).await?;
            if self.put_log(storefront, position, tags, at_ms).await? {
                return Ok(());
            }
            tracing::warn!(
                storefront,
                position,
                "a reader voided this log position before the item landed; appending at a new one"
            );
        }
        Err(Fault::Transient(format!(
            "tag table {}: {APPEND_ATTEMPTS} log positions in a row were voided by readers",
            self.table
        )))
    }

    /// Takes the storefront's next log position (the counter's atomic add).
    async fn reserve(&self, storefront: &str) -> Result<u64, Fault> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(seq_pk(storefront)))
            .key("sk", AttributeValue::S(SEQ_SK.to_owned()))
            .update_expression("ADD #last :one")
            .expression_attribute_names("#last", "last")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| classify(&format!("tag table {}: UpdateItem", self.table), e))?;
        output
            .attributes
            .as_ref()
            .and_then(|a| a.get("last"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                let table = &self.table;
                Fault::Transient(format!(
                    "tag table {table}: the counter returned no position"
                ))
            })
    }

    /// Puts the log item at `position` unless something is there already (a reader's void):
    /// `Ok(false)` then.
    async fn put_log(
        &self,
        storefront: &str,
        position: u64,
        tags: &[Tag],
        at_ms: i64,
    ) -> Result<bool, Fault> {
        // A string set: duplicates are refused, so they are dropped here.
        let names: std::collections::BTreeSet<String> =
            tags.iter().map(|t| t.as_str().to_owned()).collect();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(log_pk(storefront, position)))
            .item("sk", AttributeValue::S(log_sk(position)))
            .item("tags", AttributeValue::Ss(names.into_iter().collect()))
            .item("revalidatedAt", AttributeValue::N(at_ms.to_string()))
            .item(
                "expiresAt",
                AttributeValue::N(log_expires_at(at_ms).to_string()),
            )
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(false)
            }
            Err(e) => Err(classify(&format!("tag table {}: PutItem", self.table), e)),
        }
    }
}
