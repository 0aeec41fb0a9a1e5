use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::tags::{tags, Tag};
use crate::testing::arb_summary;

/// An index that has applied every write up to `summary` (and none after).
fn index_at(summary: Option<&ProductSummary>) -> HashMap<IndexPosition, ProductSummary> {
    summary
        .map(|s| positions(s).into_iter().map(|p| (p, s.clone())).collect())
        .unwrap_or_default()
}

fn check(
    index: &HashMap<IndexPosition, ProductSummary>,
    current: Option<&ProductSummary>,
    left: &[IndexPosition],
    policy: StockTagPolicy,
) -> bool {
    expectations(current, left, policy)
        .iter()
        .all(|e| e.met(index.get(&e.position), policy))
}

fn arb_policy() -> impl Strategy<Value = StockTagPolicy> {
    prop_oneof![Just(StockTagPolicy::Eager), Just(StockTagPolicy::Quiet)]
}

/// Two versions of one product (either may be absent), often in the same store.
fn arb_change() -> impl Strategy<Value = (Option<ProductSummary>, Option<ProductSummary>)> {
    (
        proptest::option::of(arb_summary()),
        proptest::option::of(arb_summary()),
        any::<bool>(),
    )
        .prop_map(|(old, mut new, same_store)| {
            if let (Some(old), Some(new)) = (&old, &mut new) {
                new.product_id = old.product_id.clone();
                if same_store {
                    new.store_id = old.store_id.clone();
                }
            }
            (old, new)
        })
}

proptest! {
    #[test]
    fn an_index_that_caught_up_passes((old, new) in arb_change(), policy in arb_policy()) {
        let left = left_positions(old.as_ref(), new.as_ref());
        prop_assert!(check(&index_at(new.as_ref()), new.as_ref(), &left, policy));
    }

    /// The check cannot pass while the index still shows what a listing change replaced
    /// (admin listings of inactive products included): whenever the tag diff asks for a
    /// listing render, an index at the old summary fails.
    #[test]
    fn an_index_behind_a_listing_change_fails((old, new) in arb_change(), policy in arb_policy()) {
        let listing_changed = tags(old.as_ref(), new.as_ref(), policy)
            .iter()
            .any(Tag::reads_listing_index);
        let left = left_positions(old.as_ref(), new.as_ref());
        if listing_changed {
            prop_assert!(!check(&index_at(old.as_ref()), new.as_ref(), &left, policy));
        }
    }

    /// The view is what the store tag stands for: it changes exactly when the tag diff asks
    /// for a render of the product's listing.
    #[test]
    fn the_view_changes_exactly_when_the_store_tag_is_due(
        (old, new) in arb_change(),
        policy in arb_policy(),
    ) {
        if let (Some(old), Some(new)) = (&old, &new) {
            let due = tags(Some(old), Some(new), policy).contains(&Tag::store_products(&old.store_id));
            prop_assert_eq!(due, listing_view(old, policy) != listing_view(new, policy));
        }
    }
}

#[test]
fn a_moved_product_must_be_gone_from_where_it_was() {
    let old = crate::testing::summary("p1", "s1");
    let mut new = old.clone();
    new.price = crate::model::MinorUnits::new(2999).unwrap();
    let left = left_positions(Some(&old), Some(&new));
    let indexes: Vec<Index> = left.iter().map(|p| p.index).collect();
    assert_eq!(indexes, [Index::ByStorePrice, Index::InStockByPrice]);
    // Half applied: the new price is in, the old position not yet removed.
    let mut half = index_at(Some(&new));
    half.insert(left[0].clone(), old.clone());
    let policy = StockTagPolicy::Eager;
    assert!(!check(&half, Some(&new), &left, policy));
    assert!(check(&index_at(Some(&new)), Some(&new), &left, policy));
}

#[test]
fn checks_come_every_second_then_slow_down_and_stop_at_the_limit() {
    assert_eq!(next_check_delay(0), Some(1));
    assert_eq!(next_check_delay(29), Some(1));
    assert_eq!(next_check_delay(90), Some(3));
    assert_eq!(next_check_delay(LISTING_CHECK_LIMIT_SECS - 1), Some(29));
    assert_eq!(next_check_delay(LISTING_CHECK_LIMIT_SECS), None);
    let (mut waited, mut checks) = (0, 0);
    while let Some(delay) = next_check_delay(waited) {
        assert_overshoot(waited, delay);
        waited += delay;
        checks += 1;
    }
    assert!(checks <= 150, "{checks} checks before giving up");
}

#[test]
fn a_check_follows_the_index_every_200_ms_for_ten_seconds_in_short_deliveries() {
    assert_eq!(next_check(0, 0), Next::PollIn(POLL_MS));
    assert_eq!(next_check(1_900, 1_900), Next::PollIn(POLL_MS));
    assert_eq!(
        next_check(2_000, IN_PLACE_MS),
        Next::SendIn(0),
        "handed back"
    );
    assert_eq!(next_check(9_999, 0), Next::PollIn(POLL_MS));
    assert_eq!(
        next_check(FOLLOW_MS, 0),
        Next::SendIn(1),
        "then whole seconds"
    );
    assert_eq!(next_check(90_000, 0), Next::SendIn(3));
    let limit = u64::from(LISTING_CHECK_LIMIT_SECS) * 1000;
    assert_eq!(next_check(limit, 0), Next::GiveUp);
}

proptest! {
    /// However a wait is split into deliveries, a check is never more than 200 ms behind the
    /// index while following, and never more than a delay (1 s, or ~3 %) after.
    #[test]
    fn no_gap_between_checks_is_longer_than_the_schedule_allows(waited_ms in 0u64..1_000_000, in_place_ms in 0u64..5_000) {
        match next_check(waited_ms, in_place_ms) {
            Next::PollIn(ms) => prop_assert!(ms == POLL_MS && waited_ms < FOLLOW_MS),
            Next::SendIn(0) => prop_assert!(waited_ms < FOLLOW_MS && in_place_ms >= IN_PLACE_MS),
            Next::SendIn(secs) => assert_overshoot((waited_ms / 1000) as u32, secs),
            Next::GiveUp => prop_assert!(waited_ms >= u64::from(LISTING_CHECK_LIMIT_SECS) * 1000),
        }
    }
}

/// A lag that ends just after a check is seen at most one delay later: 1 s, or ~3 %.
fn assert_overshoot(waited: u32, delay: u32) {
    assert!(delay <= 1.max(waited / 30), "{delay} s after {waited} s");
}

#[test]
fn spans_cover_every_position_once_per_partition() {
    let at = |index, partition: &str, sort: &str| IndexPosition {
        index,
        partition: partition.into(),
        sort: sort.into(),
    };
    let positions = [
        at(Index::ByStore, "s1", "b#p2"),
        at(Index::ByStore, "s1", "a#p1"),
        at(Index::ByStore, "s2", "c#p3"),
        at(Index::ByStorePrice, "s1", "0100#p1"),
        at(Index::ByStore, "s1", "c#p4"),
    ];
    let spans = spans(&positions);
    assert_eq!(spans.len(), 3);
    for p in &positions {
        let span = spans
            .iter()
            .find(|s| s.index == p.index && s.partition == p.partition)
            .expect("a span for every position");
        assert!(span.from <= p.sort && p.sort <= span.to);
    }
    let s1 = &spans[0];
    assert_eq!(
        (s1.from.as_str(), s1.to.as_str(), s1.wanted),
        ("a#p1", "c#p4", 3)
    );
}
