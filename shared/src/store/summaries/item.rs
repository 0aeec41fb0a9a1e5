//! A summary as the Summaries table stores it, and back.

use serde::{Deserialize, Serialize};

use super::super::Corrupt;
use super::TOMBSTONE_TTL_SECS;
use catalog_core::ids::{ProductId, StoreId};
use catalog_core::listing::{index_keys, IndexKeys};
use catalog_core::model::{MinorUnits, ProductSummary, SummaryRecord, Timestamp};
use catalog_core::refresh::{Covers, Stored};
use catalog_core::tags::TagSet;

/// The item as stored. A tombstone keeps only the key, `revision`, `deleted`, `deletedAt`,
/// its outbox and, once the outbox is empty, `expiresAt`, so it has no `storeId` or sort keys
/// and appears in no listing index.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SummaryItem {
    pub(super) product_id: ProductId,
    /// Not projected into the listing index, where it reads as 0.
    #[serde(default)]
    revision: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    deleted: bool,
    /// Epoch seconds; DynamoDB TTL removes tombstones after this. Written only with an empty
    /// outbox (else when the outbox is cleared): TTL must not delete tags not yet queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    /// Epoch seconds a tombstone was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at: Option<i64>,

    #[serde(
        default,
        skip_serializing_if = "TagSet::is_empty",
        with = "serde_dynamo::string_set"
    )]
    pending_tags: TagSet,
    /// The source versions the last write read (the safe skip); not projected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    covers: Option<Covers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    store_id: Option<StoreId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) list_sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) price_sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) new_sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    in_stock_store_id: Option<StoreId>,
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
    created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_at: Option<String>,
}

impl SummaryItem {
    pub(super) fn new(
        product_id: &ProductId,
        record: Option<&SummaryRecord>,
        revision: u64,
        pending_tags: &TagSet,
        covers: &Covers,
        now_secs: i64,
    ) -> Self {
        let tombstone = record.is_none();
        let mut item = SummaryItem {
            product_id: product_id.clone(),
            revision,
            deleted: tombstone,
            expires_at: (tombstone && pending_tags.is_empty())
                .then_some(now_secs + TOMBSTONE_TTL_SECS),
            deleted_at: tombstone.then_some(now_secs),
            pending_tags: pending_tags.clone(),
            covers: Some(covers.clone()),
            store_id: None,
            list_sk: None,
            price_sk: None,
            new_sk: None,
            in_stock_store_id: None,
            title: None,
            price: None,
            active: None,
            inventory_available: None,
            primary_image_url: None,
            created_at: None,
            updated_at: None,
        };
        if let Some(record) = record {
            let s = &record.summary;
            let keys: IndexKeys = index_keys(s);
            item.store_id = Some(s.store_id.clone());
            item.list_sk = Some(keys.list_sk);
            item.price_sk = keys.price_sk;
            item.new_sk = keys.new_sk;
            item.in_stock_store_id = keys.in_stock_store_id;
            item.created_at = s.created_at;
            item.title = Some(s.title.clone());
            item.price = Some(s.price);
            item.active = Some(s.active);
            item.inventory_available = s.inventory_available;
            item.primary_image_url = s.primary_image_url.clone();
            item.updated_at = Some(record.updated_at.clone());
        }
        item
    }

    /// The value of the index sort key `attr` (`listSk`, `priceSk` or `newSk`).
    pub(super) fn sort_key(&self, attr: &str) -> Option<&str> {
        match attr {
            "listSk" => self.list_sk.as_deref(),
            "priceSk" => self.price_sk.as_deref(),
            "newSk" => self.new_sk.as_deref(),
            _ => None,
        }
    }

    pub(super) fn into_stored(self, table: &str) -> Result<Stored, Corrupt> {
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
                    created_at: self.created_at,
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
            deleted_at: self.deleted_at,
            covers: self.covers,
        })
    }
}
