//! The Summaries table: one item per product, written only through compare-and-swap on its
//! `revision`, so no computation can overwrite a write it did not see.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::batch_get::{batch_get, decode_each, projection, CONSISTENT};
use super::pages::{read_page, segment_scan, Page, Slice};
use super::{conditional, decode, key, product_id_of, Corrupt, ReadError};
use crate::fault::{classify, Fault};
use catalog_core::ids::ProductId;
use catalog_core::model::SummaryRecord;
use catalog_core::refresh::Covers;
pub use catalog_core::refresh::Stored;
use catalog_core::tags::TagSet;

mod bulk;
mod cards;
mod index_check;
mod item;

pub use bulk::NewSummary;
pub use cards::ListingPage;
pub use catalog_core::listing::ListingPosition;
use item::SummaryItem;

/// How long a tombstone outlives the delete once its outbox is empty: far longer than any
/// Lambda invocation, so no computation that read the product before its deletion can
/// resurrect it.
pub const TOMBSTONE_TTL_SECS: i64 = 24 * 60 * 60;

/// The longest a Lambda invocation can run (15 minutes).
const LAMBDA_MAX_TIMEOUT_SECS: i64 = 15 * 60;

// The backfill writes a projection read earlier in the same invocation wherever nothing is
// stored; a record worked in between leaves at least a tombstone, which must still be there.
const _: () = assert!(TOMBSTONE_TTL_SECS > LAMBDA_MAX_TIMEOUT_SECS);

/// What a whole-segment scan reads besides the card ([`cards::CARD_ATTRIBUTES`]): the revision,
/// and the outbox with what dates it. Not the other listing-index keys or `covers`, which a
/// compare with the sources never reads: the reconciler's first look decodes every summary of
/// the table, and these are about a third of an item's attributes.
const OUTBOX_ATTRIBUTES: &[&str] = &["revision", "expiresAt", "deletedAt", "pendingTags"];

/// The result of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// The item now holds what was written.
    Applied,
    /// Another writer got there first; re-read and recompute.
    Conflict,
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
        let found = batch_get(&self.client, &self.table, ids, CONSISTENT).await?;
        Ok(decode_each(ids, found, |id, item| self.decode(id, item)))
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

    /// Everything stored in one parallel-Scan segment (consistent reads, the card and
    /// [`OUTBOX_ATTRIBUTES`] only: no `covers`), keyed by product; `None` if the segment holds more than
    /// `max_items`. Items whose key does not parse are left out (no product can match them).
    pub async fn scan_segment(
        &self,
        segment: u32,
        total_segments: u32,
        max_items: usize,
    ) -> Result<Option<HashMap<ProductId, Result<Stored, Corrupt>>>, Fault> {
        let attributes: Vec<&str> = [cards::CARD_ATTRIBUTES, OUTBOX_ATTRIBUTES].concat();
        let (expression, names) = projection(&attributes);
        let mut items = segment_scan(&self.client, &self.table, segment, total_segments)
            .projection_expression(expression)
            .set_expression_attribute_names(Some(names))
            .into_paginator()
            .items()
            .send();
        let mut found = HashMap::new();
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| classify("Scan summaries", e))?;
            if let Some(id) = product_id_of(&item) {
                let stored = self.decode(&id, item);
                found.insert(id, stored);
            }
            if found.len() > max_items {
                return Ok(None);
            }
        }
        Ok(Some(found))
    }

    /// One page of what is stored in `slice`, by product (items without a valid key are left
    /// out: no product can claim them).
    pub async fn page(
        &self,
        slice: &Slice,
        limit: i32,
        start: Option<super::Item>,
    ) -> Result<Page<(ProductId, Result<Stored, Corrupt>)>, Fault> {
        let page = read_page(&self.client, &self.table, slice, limit, start).await?;
        let items = page
            .items
            .into_iter()
            .filter_map(|item| {
                let id = product_id_of(&item)?;
                let stored = self.decode(&id, item);
                Some((id, stored))
            })
            .collect();
        Ok(Page {
            items,
            next: page.next,
        })
    }

    fn decode(&self, id: &ProductId, item: super::Item) -> Result<Stored, Corrupt> {
        decode::<SummaryItem>(&self.table, id, item)?.into_stored(&self.table)
    }
}

impl SummaryStore {
    /// Writes `record` (or a tombstone when `None`) as `revision`, if the stored revision is
    /// still `expected` (`None`: nothing stored), with the source versions it `covers`.
    /// `pending_tags` are kept with it until [`clear_pending`](Self::clear_pending).
    pub async fn put(
        &self,
        id: &ProductId,
        record: Option<&SummaryRecord>,
        expected: Option<u64>,
        pending_tags: &TagSet,
        covers: &Covers,
        now_secs: i64,
    ) -> Result<Write, Fault> {
        let revision = expected.map_or(1, |r| r + 1);
        let item = SummaryItem::new(id, record, revision, pending_tags, covers, now_secs);
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
        conditional(request.send().await, "PutItem summary")
    }

    /// Bumps the revision of `id` from `expected` to `expected + 1` and records the source
    /// versions it now `covers`, and nothing else (a fence: see
    /// [`Decision::Fence`](catalog_core::refresh::Decision::Fence)). Neither attribute is
    /// projected into a listing index, so this costs write units on the table and none on the
    /// indexes.
    pub async fn fence(
        &self,
        id: &ProductId,
        expected: u64,
        covers: &Covers,
    ) -> Result<Write, Fault> {
        let covers: AttributeValue = serde_dynamo::to_attribute_value(covers)
            .map_err(|e| Fault::Permanent(format!("encoding covers of {id}: {e}")))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression("SET revision = :next, covers = :covers")
            .condition_expression("revision = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
            .expression_attribute_values(":next", AttributeValue::N((expected + 1).to_string()))
            .expression_attribute_values(":covers", covers)
            .send()
            .await;
        conditional(result, "UpdateItem fence summary")
    }

    /// Removes `sent` from the pending tags of `id`, if it is still at `revision`. A newer
    /// writer has already taken the pending tags into its own outbox, so a conflict is fine.
    ///
    /// `expire_at`, for a tombstone: its TTL, set now that its outbox is empty.
    pub async fn clear_pending(
        &self,
        id: &ProductId,
        revision: u64,
        sent: &TagSet,
        expire_at: Option<i64>,
    ) -> Result<(), Fault> {
        if sent.is_empty() {
            return Ok(());
        }
        let request = self.client.update_item();
        let request = match expire_at {
            None => request.update_expression("DELETE pendingTags :sent"),
            Some(at) => request
                .update_expression("DELETE pendingTags :sent SET expiresAt = :expires")
                .expression_attribute_values(":expires", AttributeValue::N(at.to_string())),
        };
        let result = request
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .condition_expression("revision = :revision")
            .expression_attribute_values(
                ":sent",
                AttributeValue::Ss(sent.iter().map(|t| t.to_string()).collect()),
            )
            .expression_attribute_values(":revision", AttributeValue::N(revision.to_string()))
            .send()
            .await;
        conditional(result, "UpdateItem clear pending tags").map(|_| ())
    }
}
