//! The reads the listing API makes: a store's listing page from the `byStore` index, and
//! cards (the attributes a product card shows) by product.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::super::batch_get::{batch_get, projection, ReadMode};
use super::super::pages::STORE_INDEX;
use super::super::{decode, key, product_id_of, Corrupt, Item, ReadError};
use super::{SummaryItem, SummaryStore};
use crate::fault::classify;
use catalog_core::ids::{ProductId, StoreId};
use catalog_core::listing::ListingPosition;
use catalog_core::model::SummaryRecord;

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

/// One page of a store's listing, in listing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingPage {
    pub items: Vec<SummaryRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<ListingPosition>,
}

impl SummaryStore {
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
        let mut start = after.map(|p| listing_key(store, p));
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(STORE_INDEX)
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
                let id = product_id_of(&item).ok_or_else(|| Corrupt::keyless(&self.table))?;
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
}

/// The index key of the listing item at `position`, where the next page starts.
fn listing_key(store: &StoreId, position: &ListingPosition) -> Item {
    HashMap::from([
        ("storeId".to_owned(), AttributeValue::S(store.to_string())),
        (
            "listSk".to_owned(),
            AttributeValue::S(position.list_sk.clone()),
        ),
        (
            "productId".to_owned(),
            AttributeValue::S(position.product_id.to_string()),
        ),
    ])
}
