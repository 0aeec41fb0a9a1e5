//! The projection: a product and its stock rows in, the summary a card shows out. Pure.

use chrono::{DateTime, Utc};

use crate::model::{InventoryRow, Product, ProductStatus, ProductSummary, Timestamp};

/// Builds the summary of `product` from its stock rows; `None` when the product does not exist.
///
/// - `active`: status is `ACTIVE` and the product is not soft-deleted.
/// - `inventory_available`: sum over locations of `max(0, onHand - reserved)`, or `None` when the
///   product does not track inventory. Rows of other products are ignored.
/// - `primary_image_url`: the thumbnail, else the image with the lowest position (ties broken
///   by URL, so the result never depends on list order).
/// - `created_at`: the product's `createdAt`, or `None` for [`inherit_created_at`] to fill.
pub fn project(product: Option<&Product>, inventory: &[InventoryRow]) -> Option<ProductSummary> {
    let product = product?;
    Some(ProductSummary {
        product_id: product.product_id.clone(),
        store_id: product.store_id.clone(),
        title: product.name.clone(),
        price: product.price,
        active: product.status == ProductStatus::Active && product.deleted_at.is_none(),
        inventory_available: product
            .track_inventory
            .then(|| available_units(product, inventory)),
        primary_image_url: primary_image_url(product),
        created_at: product.created_at,
    })
}

/// Completes `next`'s creation time, the `newest` order, when its product gives none: the
/// time `previous` (the stored summary) already holds, else `now`, the time of the summary's
/// first write. So a product without `createdAt` keeps the place it got when it first
/// appeared, every later refresh or reconciliation agrees on it, and a product that does give
/// one is always ordered by it.
pub fn inherit_created_at(
    next: &mut ProductSummary,
    previous: Option<&ProductSummary>,
    now: DateTime<Utc>,
) {
    if next.created_at.is_none() {
        let kept = previous.and_then(|p| p.created_at);
        next.created_at = Some(kept.unwrap_or_else(|| Timestamp::from_utc(now)));
    }
}

fn available_units(product: &Product, inventory: &[InventoryRow]) -> u64 {
    let total: i128 = inventory
        .iter()
        .filter(|row| row.product_id == product.product_id)
        .map(|row| (i128::from(row.on_hand) - i128::from(row.reserved)).max(0))
        .sum();
    u64::try_from(total).unwrap_or(u64::MAX)
}

fn primary_image_url(product: &Product) -> Option<String> {
    if let Some(thumbnail) = product
        .thumbnail_url
        .as_deref()
        .filter(|url| !url.is_empty())
    {
        return Some(thumbnail.to_owned());
    }
    product
        .images
        .iter()
        .min_by(|a, b| (a.position, &a.url).cmp(&(b.position, &b.url)))
        .map(|image| image.url.clone())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{arb_inventory, arb_product, product};

    #[test]
    fn no_product_no_summary() {
        assert_eq!(project(None, &[]), None);
    }

    #[test]
    fn archived_and_deleted_products_are_inactive() {
        let mut p = product("p1", "s1");
        assert!(project(Some(&p), &[]).unwrap().active);
        p.status = ProductStatus::Archived;
        assert!(!project(Some(&p), &[]).unwrap().active);
        p.status = ProductStatus::Active;
        p.deleted_at = Some("2026-01-01T00:00:00Z".into());
        assert!(!project(Some(&p), &[]).unwrap().active);
    }

    #[test]
    fn untracked_inventory_is_none_and_always_in_stock() {
        let mut p = product("p1", "s1");
        p.track_inventory = false;
        let summary = project(Some(&p), &[]).unwrap();
        assert_eq!(summary.inventory_available, None);
        assert!(summary.in_stock());
    }

    #[test]
    fn thumbnail_wins_over_images() {
        let mut p = product("p1", "s1");
        p.images = vec![crate::model::Image {
            url: "https://img/1.jpg".into(),
            position: 0,
        }];
        assert_eq!(
            project(Some(&p), &[]).unwrap().primary_image_url.as_deref(),
            Some("https://img/1.jpg")
        );
        p.thumbnail_url = Some("https://img/thumb.jpg".into());
        assert_eq!(
            project(Some(&p), &[]).unwrap().primary_image_url.as_deref(),
            Some("https://img/thumb.jpg")
        );
    }

    proptest! {
        #[test]
        fn available_is_the_sum_of_non_negative_stock(p in arb_product(), rows in arb_inventory()) {
            let rows: Vec<_> = rows.into_iter().map(|mut r| { r.product_id = p.product_id.clone(); r }).collect();
            let summary = project(Some(&p), &rows).unwrap();
            let expected: i128 = rows.iter().map(|r| (i128::from(r.on_hand) - i128::from(r.reserved)).max(0)).sum();
            if p.track_inventory {
                prop_assert_eq!(summary.inventory_available, Some(u64::try_from(expected).unwrap_or(u64::MAX)));
            } else {
                prop_assert_eq!(summary.inventory_available, None);
            }
        }

        #[test]
        fn row_order_never_matters(p in arb_product(), rows in arb_inventory(), seed in any::<u64>()) {
            let rows: Vec<_> = rows.into_iter().map(|mut r| { r.product_id = p.product_id.clone(); r }).collect();
            let mut shuffled = rows.clone();
            let len = shuffled.len().max(1);
            shuffled.rotate_left((seed as usize) % len);
            shuffled.reverse();
            let mut reordered_images = p.clone();
            reordered_images.images.reverse();
            prop_assert_eq!(project(Some(&p), &rows), project(Some(&reordered_images), &shuffled));
        }

        #[test]
        fn summary_copies_identity_and_price(p in arb_product(), rows in arb_inventory()) {
            let summary = project(Some(&p), &rows).unwrap();
            prop_assert_eq!(&summary.product_id, &p.product_id);
            prop_assert_eq!(&summary.store_id, &p.store_id);
            prop_assert_eq!(&summary.title, &p.name);
            prop_assert_eq!(summary.price, p.price);
            prop_assert_eq!(summary.active, p.status == ProductStatus::Active && p.deleted_at.is_none());
        }

        #[test]
        fn primary_image_is_thumbnail_or_lowest_position(p in arb_product()) {
            let summary = project(Some(&p), &[]).unwrap();
            match (&p.thumbnail_url, p.images.iter().map(|i| i.position).min()) {
                (Some(t), _) if !t.is_empty() => prop_assert_eq!(summary.primary_image_url.as_ref(), Some(t)),
                (_, Some(lowest)) => {
                    let url = summary.primary_image_url.unwrap();
                    prop_assert!(p.images.iter().any(|i| i.url == url && i.position == lowest));
                }
                (_, None) => prop_assert_eq!(summary.primary_image_url, None),
            }
        }

        /// The product's own time wins; without one the stored time is kept; without both the
        /// first write's time is taken. Filling twice changes nothing.
        #[test]
        fn created_at_is_the_products_else_the_first_writes(
            p in arb_product(),
            previous in proptest::option::of(crate::testing::arb_summary()),
            seconds in 0i64..4_000_000_000,
        ) {
            let now = DateTime::from_timestamp(seconds, 0).unwrap();
            let mut next = project(Some(&p), &[]).unwrap();
            inherit_created_at(&mut next, previous.as_ref(), now);
            let expected = p.created_at
                .or(previous.as_ref().and_then(|s| s.created_at))
                .unwrap_or(Timestamp::from_utc(now));
            prop_assert_eq!(next.created_at, Some(expected));
            let again = next.clone();
            inherit_created_at(&mut next, None, now + chrono::Duration::days(1));
            prop_assert_eq!(next, again);
        }

        #[test]
        fn rows_of_other_products_are_ignored(p in arb_product(), rows in arb_inventory()) {
            prop_assume!(rows.iter().all(|r| r.product_id != p.product_id));
            let summary = project(Some(&p), &rows).unwrap();
            prop_assert!(summary.inventory_available.unwrap_or(0) == 0);
        }
    }
}
