use proptest::prelude::*;

use super::*;
use crate::model::MinorUnits;
use crate::tags::{tags, StockTagPolicy, Tag};
use crate::testing::arb_summary;

/// What DynamoDB does with `query` over `summaries`: the items whose index keys put them in
/// the queried partition and key range, in sort key order.
fn run_on_index(
    query: &IndexQuery,
    store: &StoreId,
    summaries: &[ProductSummary],
) -> Vec<ProductId> {
    let mut hits: Vec<(String, ProductId)> = summaries
        .iter()
        .filter_map(|s| {
            let keys = index_keys(s);
            let partition = match query.partition_attr {
                "storeId" => Some(s.store_id.clone()),
                _ => keys.in_stock_store_id.clone(),
            };
            let sort_key = match query.sort_attr {
                "listSk" => Some(keys.list_sk),
                "priceSk" => keys.price_sk,
                _ => keys.new_sk,
            };
            sort_key
                .filter(|k| partition.as_ref() == Some(store) && query.range.contains(k))
                .map(|k| (k, s.product_id.clone()))
        })
        .collect();
    hits.sort();
    if !query.forward {
        hits.reverse();
    }
    hits.into_iter().map(|(_, id)| id).collect()
}

/// What the listing means, computed the slow way ([`listed`]), as ids.
fn reference(listing: &Listing, summaries: &[ProductSummary]) -> Vec<ProductId> {
    listed(listing, summaries)
        .into_iter()
        .map(|s| s.product_id.clone())
        .collect()
}

fn arb_listing() -> impl Strategy<Value = Result<Listing, InvalidListing>> {
    let price = proptest::option::of(prop_oneof![Just(100u64), Just(150), Just(200)]);
    (
        crate::testing::arb_store_id(),
        prop::sample::select(Sort::ALL.to_vec()),
        any::<bool>(),
        price.clone(),
        price,
        any::<bool>(),
    )
        .prop_map(|(store, sort, in_stock, min, max, include_inactive)| {
            let filters = Filters {
                in_stock,
                min_price: min.map(|p| MinorUnits::new(p).unwrap()),
                max_price: max.map(|p| MinorUnits::new(p).unwrap()),
                include_inactive,
            };
            Listing::new(store, sort, filters)
        })
}

/// Distinct products, as the Summaries table holds them.
fn arb_table() -> impl Strategy<Value = Vec<ProductSummary>> {
    proptest::collection::vec(arb_summary(), 0..30).prop_map(|mut summaries| {
        summaries.sort_by(|a, b| a.product_id.cmp(&b.product_id));
        summaries.dedup_by(|a, b| a.product_id == b.product_id);
        summaries
    })
}

proptest! {
    /// Every listing the API accepts is answered exactly by its one Query: the index keys put
    /// in the queried range precisely the products the listing shows, in its order, so a
    /// page reads nothing it throws away.
    #[test]
    fn each_listing_is_exactly_its_index_range(listing in arb_listing(), table in arb_table()) {
        let Ok(listing) = listing else { return Ok(()) };
        let query = plan(&listing);
        prop_assert_eq!(run_on_index(&query, listing.store(), &table), reference(&listing, &table));
    }

    /// A price filter needs a price sort, a range must not be empty, and inactive products
    /// are listed by title alone; everything else is accepted.
    #[test]
    fn only_unanswerable_combinations_are_refused(listing in arb_listing()) {
        if let Err(e) = listing {
            prop_assert!(!e.code().is_empty());
        }
    }

    /// Anything that moves a product in, out of or within any listing invalidates its
    /// store's listing pages, whichever stock policy is set.
    #[test]
    fn a_change_of_any_index_key_invalidates_the_listing(a in arb_summary(), b in arb_summary(), quiet in any::<bool>()) {
        let b = ProductSummary { product_id: a.product_id.clone(), ..b };
        let policy = if quiet { StockTagPolicy::Quiet } else { StockTagPolicy::Eager };
        let set = tags(Some(&a), Some(&b), policy);
        if index_keys(&a) != index_keys(&b) || a.store_id != b.store_id {
            prop_assert!(set.contains(&Tag::store_products(&a.store_id)));
            prop_assert!(set.contains(&Tag::store_products(&b.store_id)));
        }
    }

    /// Two listings share a fingerprint only if they are the same listing.
    #[test]
    fn fingerprints_tell_listings_apart(a in arb_listing(), b in arb_listing()) {
        if let (Ok(a), Ok(b)) = (a, b) {
            let same = a.sort() == b.sort() && a.filters() == b.filters();
            prop_assert_eq!(a.fingerprint() == b.fingerprint(), same);
        }
    }
}

#[test]
fn refused_combinations_name_their_code() {
    let store = StoreId::parse("s1").unwrap();
    let price = Some(MinorUnits::new(100).unwrap());
    let cases = [
        (
            Sort::Title,
            Filters {
                min_price: price,
                ..Filters::default()
            },
            "price_filter_needs_price_sort",
        ),
        (
            Sort::Newest,
            Filters {
                max_price: price,
                ..Filters::default()
            },
            "price_filter_needs_price_sort",
        ),
        (
            Sort::PriceAsc,
            Filters {
                min_price: Some(MinorUnits::new(200).unwrap()),
                max_price: price,
                ..Filters::default()
            },
            "invalid_price_range",
        ),
        (
            Sort::PriceAsc,
            Filters {
                include_inactive: true,
                ..Filters::default()
            },
            "unsupported_combination",
        ),
        (
            Sort::Title,
            Filters {
                include_inactive: true,
                in_stock: true,
                ..Filters::default()
            },
            "unsupported_combination",
        ),
    ];
    for (sort, filters, code) in cases {
        assert_eq!(
            Listing::new(store.clone(), sort, filters)
                .unwrap_err()
                .code(),
            code
        );
    }
    assert_eq!("price_asc".parse(), Ok(Sort::PriceAsc));
    assert!("cheapest".parse::<Sort>().is_err());
}

#[test]
fn price_keys_sort_as_numbers() {
    let id = ProductId::parse("p").unwrap();
    assert!(price_sort_key(999, &id) < price_sort_key(1000, &id));
    assert_eq!(
        price_sort_key(crate::model::MAX_MINOR_UNITS, &id).len(),
        16 + 2
    );
}
