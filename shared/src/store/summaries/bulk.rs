//! Writes of many summaries in one round trip, for the backfill: TransactWriteItems of up to
//! 100 conditional writes, where the projector makes one PutItem or UpdateItem per product.
//!
//! A transaction is all or nothing: when one product's condition fails, the call is cancelled
//! whole, and its cancellation reasons say which products failed. Those are settled (not
//! written) and the call goes again without them. On AWS a transactional write costs two
//! write units instead of one; the backfill runs once.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::item::SummaryItem;
use super::{key, SummaryStore};
use crate::fault::{classify, Fault};
use catalog_core::ids::ProductId;
use catalog_core::model::SummaryRecord;
use catalog_core::refresh::Covers;
use catalog_core::tags::TagSet;

/// DynamoDB's limit of actions in one transaction.
const TRANSACTION_ITEMS: usize = 100;

/// Transactions in flight at once.
const CALLS_AT_ONCE: usize = 4;

/// Calls sent again for a chunk whose products keep conflicting with other writers.
const MAX_ROUNDS: u32 = 8;

/// A summary to write where nothing is stored for its product, as revision 1.
#[derive(Debug, Clone, Copy)]
pub struct NewSummary<'a> {
    pub id: &'a ProductId,
    pub record: &'a SummaryRecord,
    /// Kept in the item's outbox until cleared ([`SummaryStore::clear_created`]).
    pub pending: &'a TagSet,
    pub covers: &'a Covers,
}

/// What a cancelled transaction says about one of its actions.
enum Verdict {
    Written,
    /// Its condition failed: leave it out.
    Refused,
    /// Cancelled for another's sake (or in conflict with another writer): send it again.
    Again,
}

impl SummaryStore {
    /// Writes each of `new` where nothing is stored for its product
    /// (`attribute_not_exists`), 100 to a call. Returns, in order, whether each was written
    /// (`false`: the product already had an item, summary or tombstone).
    pub async fn create_many(
        &self,
        new: &[NewSummary<'_>],
        now_secs: i64,
    ) -> Result<Vec<bool>, Fault> {
        let mut written = Vec::with_capacity(new.len());
        for chunk in new.chunks(TRANSACTION_ITEMS) {
            let actions = chunk
                .iter()
                .map(|n| self.create_action(n, now_secs))
                .collect::<Result<Vec<_>, _>>()?;
            written.extend(
                self.transact(actions, "TransactWriteItems create summaries")
                    .await?,
            );
        }
        Ok(written)
    }

    /// Removes `pending` from the outboxes of products written by
    /// [`create_many`](Self::create_many), where they are still at revision 1. A product
    /// rewritten since has taken the tags into its own outbox, so a refused clear is fine.
    pub async fn clear_created(&self, created: &[(&ProductId, &TagSet)]) -> Result<(), Fault> {
        let mut calls = Vec::new();
        for chunk in created.chunks(TRANSACTION_ITEMS) {
            let actions = chunk
                .iter()
                .filter(|(_, tags)| !tags.is_empty())
                .map(|(id, tags)| self.clear_action(id, tags))
                .collect::<Result<Vec<_>, _>>()?;
            calls.push(self.transact(actions, "TransactWriteItems clear pending tags"));
        }
        stream::iter(calls)
            .buffer_unordered(CALLS_AT_ONCE)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    fn create_action(
        &self,
        new: &NewSummary<'_>,
        now_secs: i64,
    ) -> Result<TransactWriteItem, Fault> {
        let item = SummaryItem::new(
            new.id,
            Some(new.record),
            1,
            new.pending,
            new.covers,
            now_secs,
        );
        let item = serde_dynamo::to_item(item)
            .map_err(|e| Fault::Permanent(format!("encoding summary {}: {e}", new.id)))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(productId)")
            .build()
            .map_err(|e| Fault::Permanent(format!("building put of {}: {e}", new.id)))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn clear_action(&self, id: &ProductId, tags: &TagSet) -> Result<TransactWriteItem, Fault> {
        let sent = AttributeValue::Ss(tags.iter().map(|t| t.to_string()).collect());
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression("DELETE pendingTags :sent")
            .condition_expression("revision = :first")
            .expression_attribute_values(":sent", sent)
            .expression_attribute_values(":first", AttributeValue::N("1".into()))
            .build()
            .map_err(|e| Fault::Permanent(format!("building clear of {id}: {e}")))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Sends `actions` as one transaction, again without the refused ones while any is
    /// cancelled; whether each was written, in order.
    async fn transact(
        &self,
        actions: Vec<TransactWriteItem>,
        what: &str,
    ) -> Result<Vec<bool>, Fault> {
        let mut written = vec![false; actions.len()];
        let mut todo: Vec<usize> = (0..actions.len()).collect();
        for round in 0..MAX_ROUNDS {
            if todo.is_empty() {
                return Ok(written);
            }
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(10 << round.min(5))).await;
            }
            let items = todo.iter().map(|&i| actions[i].clone()).collect();
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items));
            let verdicts = verdicts(result.send().await, todo.len(), what)?;
            let mut again = Vec::new();
            for (i, verdict) in todo.into_iter().zip(verdicts) {
                match verdict {
                    Verdict::Written => written[i] = true,
                    Verdict::Refused => {}
                    Verdict::Again => again.push(i),
                }
            }
            todo = again;
        }
        Err(Fault::Transient(format!(
            "{what}: still cancelled after {MAX_ROUNDS} rounds"
        )))
    }
}

/// What happened to each of `count` actions of one TransactWriteItems call.
fn verdicts<R: std::fmt::Debug>(
    result: Result<impl Sized, SdkError<TransactWriteItemsError, R>>,
    count: usize,
    what: &str,
) -> Result<Vec<Verdict>, Fault> {
    let err = match result {
        Ok(_) => return Ok((0..count).map(|_| Verdict::Written).collect()),
        Err(err) => err,
    };
    let reasons = match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            e.cancellation_reasons().to_vec()
        }
        _ => return Err(classify(what, err)),
    };
    if reasons.len() != count {
        return Err(Fault::Transient(format!(
            "{what}: cancelled with {} reasons for {count} actions",
            reasons.len()
        )));
    }
    reasons
        .iter()
        .map(|r| match r.code() {
            Some("ConditionalCheckFailed") => Ok(Verdict::Refused),
            None
            | Some("None" | "TransactionConflict" | "ThrottlingError")
            | Some("ProvisionedThroughputExceeded" | "RequestLimitExceeded") => Ok(Verdict::Again),
            Some(code) => Err(Fault::Permanent(format!(
                "{what}: {code}: {}",
                r.message().unwrap_or_default()
            ))),
        })
        .collect()
}
