//! The Summaries table: one item per product, written only through compare-and-swap on its
//! `revision`, so no computation can overwrite a write it did not see.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use super::batch_get::{batch_get, projection, ReadMode, CONSISTENT};
use super::{decode, key, product_id_of, Corrupt, ReadError};
use crate::fault::{classify, Fault};
use catalog_core::ids::{ProductId, StoreId};
use catalog_core::model::{MinorUnits, ProductSummary, SummaryRecord};
pub use catalog_core::refresh::Stored;
use catalog_core::tags::TagSet;

/// The listing index: partition `storeId`, sort `listSk`.
pub const LISTING_INDEX: &str = "byStore";

/// What a card shows, and what tells a tombstone apart: the reads of the listing API fetch
/// only these.
const CARD_ATTRIBUTES: &[&str] = &[
    "productId",
    "storeId",
    "title",
    "price",
    "active",
    "inventoryAvailable",
    "primaryImageUrl",
    "updatedAt",
    "listSk",
    "deleted",
];

/// Consistent reads of the card attributes, for product pages and carts. The read a
/// revalidation triggers comes tens of milliseconds after the write (the tag is what causes
/// it), and an eventually consistent read may then still return the old item, which Next.js
/// would cache with no tag left to clear it. Consistent reads cost twice as much (1 read unit
/// per item under 4 KB instead of 0.5) and close that gap for every page but the listings,
/// which read an index and are rechecked instead (`LISTING_RECHECKS`).
const CARD_READ: ReadMode<'static> = ReadMode {
    consistent: true,
    attributes: Some(CARD_ATTRIBUTES),
};

use catalog_core::listing::listing_sort_key;
pub use catalog_core::listing::ListingPosition;

/// One page of a store's listing, in listing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingPage {
    pub items: Vec<SummaryRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ListingPosition>,
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
    /// Not projected into the listing index, where it reads as 0.
    #[serde(default)]
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
            expires_at: self.expires_at,
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
        let mut found = batch_get(&self.client, &self.table, ids, CONSISTENT).await?;
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

    /// Everything stored in one parallel-Scan segment (consistent reads), keyed by product;
    /// `None` if the segment holds more than `max_items`. Items whose key does not parse are
    /// left out (no product can match them).
    pub async fn scan_segment(
        &self,
        segment: u32,
        total_segments: u32,
        max_items: usize,
    ) -> Result<Option<HashMap<ProductId, Result<Stored, Corrupt>>>, Fault> {
        let mut found = HashMap::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .segment(segment as i32)
                .total_segments(total_segments.max(1) as i32)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Scan summaries", e))?;
            for item in output.items.unwrap_or_default() {
                if let Some(id) = product_id_of(&item) {
                    let stored = self.decode(&id, item);
                    found.insert(id, stored);
                }
            }
            if found.len() > max_items {
                return Ok(None);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(Some(found)),
            }
        }
    }

    fn decode(&self, id: &ProductId, item: super::Item) -> Result<Stored, Corrupt> {
        decode::<SummaryItem>(&self.table, id, item)?.into_stored(&self.table)
    }

    /// One page of `store`'s listing: active products only (a key condition on the `A#`
    /// prefix, so no inactive item is read), or all with `include_inactive`; at most `limit`
    /// items after `after`. One Query per page (reading `limit + 1` items to know whether a
    /// next page exists).
    pub async fn list_store(
        &self,
        store: &StoreId,
        include_inactive: bool,
        limit: usize,
        after: Option<&ListingPosition>,
    ) -> Result<ListingPage, ReadError> {
        let limit = limit.max(1);
        let mut items: Vec<SummaryItem> = Vec::with_capacity(limit + 1);
        let mut start = after.map(|p| {
            HashMap::from([
                ("storeId".to_owned(), AttributeValue::S(store.to_string())),
                ("listSk".to_owned(), AttributeValue::S(p.list_sk.clone())),
                (
                    "productId".to_owned(),
                    AttributeValue::S(p.product_id.to_string()),
                ),
            ])
        });
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(LISTING_INDEX)
                .expression_attribute_values(":s", AttributeValue::S(store.to_string()))
                .limit(i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            request = if include_inactive {
                request.key_condition_expression("storeId = :s")
            } else {
                request
                    .key_condition_expression("storeId = :s AND begins_with(listSk, :active)")
                    .expression_attribute_values(":active", AttributeValue::S("A#".into()))
            };
            let output = request
                .send()
                .await
                .map_err(|e| classify("Query listing", e))?;
            for item in output.items.unwrap_or_default() {
                let id = product_id_of(&item).ok_or_else(|| Corrupt {
                    table: self.table.clone(),
                    product_id: "?".into(),
                    reason: "listing item without a valid productId".into(),
                })?;
                items.push(decode::<SummaryItem>(&self.table, &id, item)?);
            }
            match output.last_evaluated_key {
                Some(key) if items.len() <= limit => start = Some(key),
                _ => break,
            }
        }
        let next = (items.len() > limit).then(|| {
            let last = &items[limit - 1];
            ListingPosition {
                product_id: last.product_id.clone(),
                list_sk: last.list_sk.clone().unwrap_or_default(),
            }
        });
        items.truncate(limit);
        let items = items
            .into_iter()
            .map(|item| item.into_stored(&self.table))
            .filter_map(|stored| stored.map(|s| s.record).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ListingPage { items, next })
    }

    /// The live summary of `id` (consistent, card attributes only, see `CARD_READ`); `None`
    /// for no summary or a tombstone.
    pub async fn get_card(&self, id: &ProductId) -> Result<Option<SummaryRecord>, ReadError> {
        let (expression, names) = projection(CARD_ATTRIBUTES);
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .projection_expression(expression)
            .set_expression_attribute_names(Some(names))
            .consistent_read(CARD_READ.consistent)
            .send()
            .await
            .map_err(|e| classify("GetItem summary", e))?;
        Ok(output
            .item
            .map(|item| self.decode(id, item))
            .transpose()?
            .and_then(|stored| stored.record))
    }

    /// The live summaries of `ids` (distinct; consistent, card attributes only),
    /// one BatchGetItem per 100 ids with unprocessed keys retried. Ids without a live summary
    /// are absent from the map.
    pub async fn get_cards(
        &self,
        ids: &[ProductId],
    ) -> Result<HashMap<ProductId, SummaryRecord>, ReadError> {
        let found = batch_get(&self.client, &self.table, ids, CARD_READ).await?;
        let mut cards = HashMap::with_capacity(found.len());
        for id in ids {
            if let Some(item) = found.get(id.as_str()) {
                if let Some(record) = self.decode(id, item.clone())?.record {
                    cards.insert(id.clone(), record);
                }
            }
        }
        Ok(cards)
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
        conditional(request.send().await, "PutItem summary")
    }

    /// Bumps the revision of `id` from `expected` to `expected + 1` and nothing else (a fence:
    /// see [`Decision::Fence`](catalog_core::refresh::Decision::Fence)). `revision` is not projected
    /// into the listing index, so this costs one write unit on the table and none on the index.
    pub async fn fence(&self, id: &ProductId, expected: u64) -> Result<Write, Fault> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression("SET revision = :next")
            .condition_expression("revision = :expected")
            .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
            .expression_attribute_values(":next", AttributeValue::N((expected + 1).to_string()))
            .send()
            .await;
        conditional(result, "UpdateItem fence summary")
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
        conditional(result, "UpdateItem clear pending tags").map(|_| ())
    }
}

/// A conditional write's result: applied, lost to another writer, or failed.
fn conditional<T, E, R>(result: Result<T, SdkError<E, R>>, what: &str) -> Result<Write, Fault>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(Write::Applied),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(Write::Conflict),
        Err(e) => Err(classify(what, e)),
    }
}
