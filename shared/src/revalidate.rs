//! `revalidate_product`: queue every cache tag a product's pages may be cached under, on
//! demand (after an admin edit made outside the tables, or to clear a page someone reports
//! stale). The tag-revalidator then revalidates them like any others.

use crate::fault::Fault;
use crate::ids::{ProductId, StoreId};
use crate::queue::TagPublisher;
use crate::store::{ReadError, SourceStore, SummaryStore};
use crate::tags::{Tag, TagSet};

/// Every tag `id`'s pages can be under: its product and inventory tags and the listing of
/// each of `stores`. Pure.
pub fn product_tags<'a>(id: &ProductId, stores: impl IntoIterator<Item = &'a StoreId>) -> TagSet {
    let mut tags = TagSet::from([Tag::product(id), Tag::inventory(id)]);
    tags.extend(stores.into_iter().map(Tag::store_products));
    tags
}

fn fault(e: ReadError) -> Fault {
    match e {
        ReadError::Fault(f) => f,
        ReadError::Corrupt(c) => Fault::Permanent(c.to_string()),
    }
}

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
        .await
        .map_err(fault)?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_stores_of_a_moved_product_and_no_duplicates() {
        let id = ProductId::parse("p1").unwrap();
        let (a, b) = (StoreId::parse("s1").unwrap(), StoreId::parse("s2").unwrap());
        let tags: Vec<String> = product_tags(&id, [&a, &b, &a])
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(
            tags,
            [
                "inventory:p1",
                "product:p1",
                "store:s1:products",
                "store:s2:products"
            ]
        );
        assert_eq!(product_tags(&id, []).len(), 2);
    }
}
