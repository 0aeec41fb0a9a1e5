//! `revalidate_product`: queue every cache tag a product's pages may be cached under, on
//! demand (after an admin edit made outside the tables, or to clear a page someone reports
//! stale). The tag-revalidator then revalidates them like any others.

use crate::fault::Fault;
use crate::queue::TagPublisher;
use crate::store::{SourceStore, SummaryStore};
use catalog_core::ids::ProductId;
use catalog_core::tags::{product_tags, TagSet};

/// Reads `id`'s summary and its Products row and queues all of its tags, with the listing of
/// both stores when they differ (the product moved and the summary has not caught up).
/// Returns the tags queued.
pub async fn revalidate_product(
    sources: &SourceStore,
    summaries: &SummaryStore,
    publisher: &TagPublisher,
    id: &ProductId,
) -> Result<TagSet, Fault> {
    let summary_store = summaries
        .get(id)
        .await?
        .and_then(|s| s.record)
        .map(|r| r.summary.store_id);
    let product_store = match sources.products(std::slice::from_ref(id)).await?.remove(id) {
        Some(Ok(Some(product))) => Some(product.store_id),
        // An undecodable row is parked by the projector; the summary still names a store.
        Some(Err(corrupt)) => {
            tracing::warn!(product_id = %id, error = %corrupt, "product row does not decode");
            None
        }
        _ => None,
    };
    let tags = product_tags(id, summary_store.iter().chain(product_store.iter()));
    publisher.publish(&tags, chrono::Utc::now()).await?;
    Ok(tags)
}
