//! The reads the listing API makes: a store's listing page from the index that answers its
//! sort and filters, and cards (the attributes a product card shows) by product.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use super::super::batch_get::{batch_get, projection, ReadMode};
use super::super::{decode, key, product_id_of, Corrupt, Item, ReadError};
use super::{SummaryItem, SummaryStore};
use crate::fault::classify;
use catalog_core::ids::{ProductId, StoreId};
use catalog_core::listing::{plan, IndexQuery, KeyRange, Listing, ListingPosition};
use catalog_core::model::SummaryRecord;

/// What a card shows, and what tells a tombstone apart: the reads of the listing API fetch
/// only these (and the reconciler's scan, with the outbox beside them).
pub(super) const CARD_ATTRIBUTES: &[&str] = &[
    "productId",
    "storeId",
    "title",
    "price",
    "active",
    "inventoryAvailable",
    "primaryImageUrl",
    "createdAt",
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
    /// Items the Queries read (their `ScannedCount`) and returned (`Count`). Key conditions
    /// only, so the two are always equal: nothing is read and thrown away.
    pub scanned: usize,
    pub returned: usize,
}

impl SummaryStore {
    /// One page of `listing`: at most `limit` items after `after`, from the one index and key
    /// range [`plan`] picks. One Query per page (reading `limit + 1` items to know whether a
    /// next page exists), more only if DynamoDB's 1 MB page cuts it short.
    pub async fn list(
        &self,
        listing: &Listing,
        limit: usize,
        after: Option<&ListingPosition>,
    ) -> Result<ListingPage, ReadError> {
        let limit = limit.max(1);
        let query = plan(listing);
        let mut page = ListingPage {
            items: Vec::new(),
            next: None,
            scanned: 0,
            returned: 0,
        };
        let mut items: Vec<SummaryItem> = Vec::with_capacity(limit + 1);
        let mut start = after.map(|p| start_key(listing.store(), &query, p));
        loop {
            let want = i32::try_from(limit + 1 - items.len()).unwrap_or(i32::MAX);
            let output = self
                .listing_query(listing)
                .limit(want)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query listing", e))?;
            page.scanned += usize::try_from(output.scanned_count).unwrap_or(0);
            page.returned += usize::try_from(output.count).unwrap_or(0);
            for item in output.items.unwrap_or_default() {
                let id = product_id_of(&item).ok_or_else(|| Corrupt::keyless(&self.table))?;
                items.push(decode::<SummaryItem>(&self.table, &id, item)?);
            }
            match output.last_evaluated_key {
                Some(key) if items.len() <= limit => start = Some(key),
                _ => break,
            }
        }
        page.next = (items.len() > limit).then(|| {
            let last = &items[limit - 1];
            ListingPosition {
                product_id: last.product_id.clone(),
                sort_key: last
                    .sort_key(query.sort_attr)
                    .unwrap_or_default()
                    .to_owned(),
            }
        });
        items.truncate(limit);
        page.items = items
            .into_iter()
            .map(|item| item.into_stored(&self.table))
            .filter_map(|stored| stored.map(|s| s.record).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page)
    }

    /// The Query that answers `listing`: the index, key conditions and direction [`plan`]
    /// picks, not yet sent. [`list`](Self::list) sends it page by page; the merchandising
    /// benchmark sends it bare, as the floor under the handler.
    pub fn listing_query(&self, listing: &Listing) -> QueryFluentBuilder {
        let query = plan(listing);
        let store = listing.store();
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(query.index)
            .scan_index_forward(query.forward)
            .expression_attribute_names("#pk", query.partition_attr)
            .expression_attribute_values(":pk", AttributeValue::S(store.to_string()));
        let s = |v: &str| AttributeValue::S(v.to_owned());
        match &query.range {
            KeyRange::All => request.key_condition_expression("#pk = :pk"),
            KeyRange::Prefix(prefix) => request
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                .expression_attribute_names("#sk", query.sort_attr)
                .expression_attribute_values(":prefix", s(prefix)),
            KeyRange::Between(low, high) => request
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
                .expression_attribute_names("#sk", query.sort_attr)
                .expression_attribute_values(":low", s(low))
                .expression_attribute_values(":high", s(high)),
        }
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

/// The index key of the item at `position`, where the next page starts: the table's key and
/// the index's two key attributes.
fn start_key(store: &StoreId, query: &IndexQuery, position: &ListingPosition) -> Item {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    HashMap::from([
        (query.partition_attr.to_owned(), s(store.as_str())),
        (query.sort_attr.to_owned(), s(&position.sort_key)),
        ("productId".to_owned(), s(position.product_id.as_str())),
    ])
}
