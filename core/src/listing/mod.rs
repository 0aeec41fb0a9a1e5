//! A store's listing orders, as the Summaries table's indexes keep them: the index keys a
//! summary gets ([`index_keys`]), which index and key range answer a listing ([`query`]), and
//! the position a page ends at. Pure; the DynamoDB side is `store::summaries`.
//!
//! Every listing the API accepts is one Query on one index with key conditions only, so a
//! page reads no item it does not show. Six indexes make that possible: title, price and
//! newest order, each over a store's active products (partition `storeId`) and over its
//! in-stock active products (partition `inStockStoreId`, present only while in stock).

pub mod check;
mod query;

pub use query::{
    index, plan, Filters, IndexQuery, InvalidListing, KeyRange, Listing, Sort, UnknownSort,
};

use crate::ids::{ProductId, StoreId};
use crate::model::ProductSummary;

/// Characters of the folded title kept in the listing sort key.
const SORT_TITLE_CHARS: usize = 200;

/// Digits of a price in `priceSk`: enough for [`MAX_MINOR_UNITS`](crate::model::MAX_MINOR_UNITS),
/// zero-padded so that text order is price order.
const PRICE_DIGITS: usize = 16;

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

/// The `priceSk` of a summary: `<price, 16 digits>#<productId>`.
pub fn price_sort_key(price: u64, product: &ProductId) -> String {
    format!("{price:0PRICE_DIGITS$}#{product}")
}

/// The index keys a stored summary carries. An attribute that is `None` is not written, which
/// keeps the summary out of the indexes keyed on it (they are sparse): inactive products are
/// only in `byStore` (under `I#`), out-of-stock ones are in no `inStock*` index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexKeys {
    /// `byStore` and `inStockByTitle`.
    pub list_sk: String,
    /// `byStorePrice` and `inStockByPrice`: active products only.
    pub price_sk: Option<String>,
    /// `byStoreNewest` and `inStockByNewest`: `<createdAt>#<productId>`, active products only.
    pub new_sk: Option<String>,
    /// The partition key of the three `inStock*` indexes: the store, while the product is
    /// active and in stock.
    pub in_stock_store_id: Option<StoreId>,
}

/// The index keys of `summary`. Pure, and the only place they are built.
pub fn index_keys(summary: &ProductSummary) -> IndexKeys {
    let active = summary.active;
    let id = &summary.product_id;
    IndexKeys {
        list_sk: listing_sort_key(summary),
        price_sk: active.then(|| price_sort_key(summary.price.get(), id)),
        new_sk: summary
            .created_at
            .filter(|_| active)
            .map(|t| format!("{t}#{id}")),
        in_stock_store_id: (active && summary.in_stock()).then(|| summary.store_id.clone()),
    }
}

/// What `listing` shows of `summaries`, computed the slow way: keep what its store and
/// filters let through, then sort. It is the meaning the index plans must match (the property
/// test `each_listing_is_exactly_its_index_range` holds [`plan`] and [`index_keys`] to it),
/// and what a storefront whose API cannot sort does in memory (the merchandising benchmark's
/// baseline). Summaries without a creation time are not on `newest`, as `newSk` is not written.
pub fn listed<'a>(
    listing: &Listing,
    summaries: impl IntoIterator<Item = &'a ProductSummary>,
) -> Vec<&'a ProductSummary> {
    let f = listing.filters();
    let mut shown: Vec<&ProductSummary> = summaries
        .into_iter()
        .filter(|s| &s.store_id == listing.store() && (s.active || f.include_inactive))
        .filter(|s| !f.in_stock || s.in_stock())
        .filter(|s| f.min_price.is_none_or(|min| s.price >= min))
        .filter(|s| f.max_price.is_none_or(|max| s.price <= max))
        .filter(|s| listing.sort() != Sort::Newest || s.created_at.is_some())
        .collect();
    let by_price = |s: &&ProductSummary| (s.price, s.product_id.clone());
    let by_time = |s: &&ProductSummary| (s.created_at, s.product_id.clone());
    match listing.sort() {
        Sort::Title => shown.sort_by_cached_key(|s| listing_sort_key(s)),
        Sort::PriceAsc => shown.sort_by_cached_key(by_price),
        Sort::PriceDesc => shown.sort_by_cached_key(|s| std::cmp::Reverse(by_price(s))),
        Sort::Newest => shown.sort_by_cached_key(|s| std::cmp::Reverse(by_time(s))),
    }
    shown
}

/// Where a listing page ended: the product id and index sort key of its last item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingPosition {
    pub product_id: ProductId,
    pub sort_key: String,
}

#[cfg(test)]
mod tests;
