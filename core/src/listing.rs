//! A store's listing order, as the `byStore` index keeps it: the sort key a summary gets and
//! the position a page ends at. Pure; the DynamoDB side is `store::summaries`.

use crate::ids::ProductId;
use crate::model::ProductSummary;

/// Characters of the folded title kept in the listing sort key.
const SORT_TITLE_CHARS: usize = 200;

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

/// Where a listing page ended: the listing-index key of its last item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingPosition {
    pub product_id: ProductId,
    pub list_sk: String,
}
