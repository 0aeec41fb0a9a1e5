//! The Summaries table: one item per product, written only through compare-and-swap on its
//! `revision`, so no computation can overwrite a write it did not see.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use super::batch_get::batch_get;
use super::{decode, key, Corrupt, ReadError};
use crate::fault::{classify, Fault};
use crate::ids::{ProductId, StoreId};
use crate::model::{MinorUnits, ProductSummary, SummaryRecord};
use crate::tags::TagSet;

/// Characters of the folded title kept in the listing sort key.
const SORT_TITLE_CHARS: usize = 200;

/// The listing index: partition `storeId`, sort `listSk`.
pub const LISTING_INDEX: &str = "byStore";

/// What the Summaries table holds for one product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Bumped by every write; the compare-and-swap token.
    pub revision: u64,
    /// The summary, or `None` for a tombstone left by a delete.
    pub record: Option<SummaryRecord>,
    /// Tags written with the summary and not yet known to be queued (a transactional outbox).
    pub pending_tags: TagSet,
}

/// The result of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// The item now holds what was written.
    Applied,
    /// Another writer got there first; re-read and recompute.
    Conflict,
}

/// The item as stored. A tombstone keeps only the key, `revision`, `deleted` and `expiresAt`,
/// so it has no `storeId`/`listSk` and never appears in the listing index.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryItem {
    product_id: ProductId,
    revision: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
    /// Epoch seconds; DynamoDB TTL removes tombstones after this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "TagSet::is_empty",
        with = "serde_dynamo::string_set"
    )]
    pending_tags: TagSet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store_id: Option<StoreId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    list_sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    price: Option<MinorUnits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    inventory_available: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    primary_image_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at: Option<String>,
}

/// The listing sort key: active products first (`A#`), then by case-folded title, then id.
/// Listing only active products is a `begins_with(listSk, "A#")` key condition, so it reads
/// no inactive item.
pub fn listing_sort_key(summary: &ProductSummary) -> String {
    let state = if summary.active { 'A' } else { 'I' };
    let title: String = summary
        .title
        .to_lowercase()
        .chars()
        .filter(|c| *c != '#')
        .take(SORT_TITLE_CHARS)
        .collect();
    format!("{state}#{title}#{}", summary.product_id)
}

impl SummaryItem {
    fn new(
        product_id: &ProductId,
        record: Option<&SummaryRecord>,
        revision: u64,
        pending_tags: &TagSet,
        tombstone_expires_at: i64,
    ) -> Self {
        let mut item = SummaryItem {
            product_id: product_id.clone(),
            revision,
            deleted: record.is_none(),
            expires_at: record.is_none().then_some(tombstone_expires_at),
            pending_tags: pending_tags.clone(),
            store_id: None,
            list_sk: None,
            title: None,
            price: None,
            active: None,
            inventory_available: None,
            primary_image_url: None,
            updated_at: None,
        };
        if let Some(record) = record {
            let s = &record.summary;
            item.store_id = Some(s.store_id.clone());
            item.list_sk = Some(listing_sort_key(s));
            item.title = Some(s.title.clone());
            item.price = Some(s.price);
            item.active = Some(s.active);
            item.inventory_available = s.inventory_available;
            item.primary_image_url = s.primary_image_url.clone();
            item.updated_at = Some(record.updated_at.clone());
        }
        item
    }

    fn into_stored(self, table: &str) -> Result<Stored, Corrupt> {
        let record = if self.deleted {
            None
        } else {
            let missing = |field: &str| Corrupt {
                table: table.to_owned(),
                product_id: self.product_id.to_string(),
                reason: format!("live summary without {field}"),
            };
            Some(SummaryRecord {
                summary: ProductSummary {
                    product_id: self.product_id.clone(),
                    store_id: self.store_id.clone().ok_or_else(|| missing("storeId"))?,
                    title: self.title.clone().ok_or_else(|| missing("title"))?,
                    price: self.price.ok_or_else(|| missing("price"))?,
                    active: self.active.ok_or_else(|| missing("active"))?,
                    inventory_available: self.inventory_available,
                    primary_image_url: self.primary_image_url.clone(),
                },
                updated_at: self
                    .updated_at
                    .clone()
                    .ok_or_else(|| missing("updatedAt"))?,
            })
        };
        Ok(Stored {
            revision: self.revision,
            record,
            pending_tags: self.pending_tags,
        })
    }
}

/// The Summaries table.
#[derive(Debug, Clone)]
pub struct SummaryStore {
    client: Client,
    table: String,
}

impl SummaryStore {
    /// A store over the table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// What is stored for each of `ids`, read consistently; `Ok(None)` where nothing is.
    pub async fn get_many(
        &self,
        ids: &[ProductId],
    ) -> Result<HashMap<ProductId, Result<Option<Stored>, Corrupt>>, Fault> {
        let mut found = batch_get(&self.client, &self.table, ids).await?;
        Ok(ids
            .iter()
            .map(|id| {
                let stored = found
                    .remove(id.as_str())
                    .map(|item| self.decode(id, item))
                    .transpose();
                (id.clone(), stored)
            })
            .collect())
    }

    /// What is stored for `id`, read consistently.
    pub async fn get(&self, id: &ProductId) -> Result<Option<Stored>, ReadError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem summary", e))?;
        Ok(output.item.map(|item| self.decode(id, item)).transpose()?)
    }

    fn decode(&self, id: &ProductId, item: super::Item) -> Result<Stored, Corrupt> {
        decode::<SummaryItem>(&self.table, id, item)?.into_stored(&self.table)
    }

    /// Writes `record` (or a tombstone when `None`) as `revision`, if the stored revision is
    /// still `expected` (`None`: nothing stored). `pending_tags` are kept with it until
    /// [`clear_pending`](Self::clear_pending).
    pub async fn put(
        &self,
        id: &ProductId,
        record: Option<&SummaryRecord>,
        expected: Option<u64>,
        pending_tags: &TagSet,
        tombstone_expires_at: i64,
    ) -> Result<Write, Fault> {
        let revision = expected.map_or(1, |r| r + 1);
        let item = SummaryItem::new(id, record, revision, pending_tags, tombstone_expires_at);
        let item = serde_dynamo::to_item(item)
            .map_err(|e| Fault::Permanent(format!("encoding summary {id}: {e}")))?;
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(productId)"),
            Some(r) => request
                .condition_expression("revision = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(r.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(Write::Applied),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(Write::Conflict)
            }
            Err(e) => Err(classify("PutItem summary", e)),
        }
    }

    /// Removes `sent` from the pending tags of `id`, if it is still at `revision`. A newer
    /// writer has already taken the pending tags into its own outbox, so a conflict is fine.
    pub async fn clear_pending(
        &self,
        id: &ProductId,
        revision: u64,
        sent: &TagSet,
    ) -> Result<(), Fault> {
        if sent.is_empty() {
            return Ok(());
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression("DELETE pendingTags :sent")
            .condition_expression("revision = :revision")
            .expression_attribute_values(
                ":sent",
                AttributeValue::Ss(sent.iter().map(|t| t.to_string()).collect()),
            )
            .expression_attribute_values(":revision", AttributeValue::N(revision.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(classify("UpdateItem clear pending tags", e)),
        }
    }
}
