//! The refresh decision: given what the Summaries table holds and what the rows project to
//! now, what to write. Pure, so the protocol's model test drives the very function the
//! `Refresher` (in the `catalog` crate) uses, over every interleaving it can enumerate.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::{ProductSummary, SummaryRecord};
use crate::projection::inherit_created_at;
use crate::tags::{tags, StockTagPolicy, TagSet};

mod covers;

pub use covers::{covered, raised_to, Covers, Row, RowChange, STOCK_VERSIONS_BUDGET};

/// What the Summaries table holds for one product.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stored {
    /// Bumped by every write; the compare-and-swap token.
    pub revision: u64,
    /// The summary, or `None` for a tombstone left by a delete.
    pub record: Option<SummaryRecord>,
    /// Tags written with the summary and not yet known to be queued (a transactional outbox).
    pub pending_tags: TagSet,
    /// A tombstone's expiry (epoch seconds, DynamoDB's TTL): set only once its outbox is
    /// empty, so TTL never deletes tags that have not gone out.
    pub expires_at: Option<i64>,
    /// When a tombstone was written (epoch seconds): how old its outbox is.
    pub deleted_at: Option<i64>,
    /// The source versions the last write read (`None`: written before they were kept).
    pub covers: Option<Covers>,
}

/// What changed in a product's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// The stored summary already matched the sources.
    Unchanged,
    Created,
    Updated,
    /// The summary was replaced by a tombstone.
    Deleted,
    /// Not refreshed: the stored summary covered every record (see [`covered`]), so nothing was
    /// read beyond it and nothing written.
    Covered,
}

/// The one conditional write a refresh makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The stored content is already current, but the revision is bumped all the same (a
    /// fence: `revision = expected + 1` if it is still `expected`). A slower refresher that
    /// read `expected` and rows older than ours would otherwise land its stale write on top
    /// of our "unchanged" verdict. `leftover` are tags an earlier write left in the outbox.
    Fence {
        expected: u64,
        leftover: TagSet,
        covers: Covers,
    },
    /// Write `record` (a tombstone when `None`) as `expected + 1` (1 when nothing is stored),
    /// on the condition that the stored revision is still `expected`, with `pending` kept in
    /// the item's outbox until queued.
    Write {
        expected: Option<u64>,
        record: Option<SummaryRecord>,
        pending: TagSet,
        change: Change,
        covers: Covers,
    },
}

impl Decision {
    /// The summary the decision leaves stored, when it writes one.
    pub fn written(&self) -> Option<&ProductSummary> {
        match self {
            Decision::Fence { .. } => None,
            Decision::Write { record, .. } => record.as_ref().map(|r| &r.summary),
        }
    }

    /// The change this decision makes to what a card shows.
    pub fn change(&self) -> Change {
        match self {
            Decision::Fence { .. } => Change::Unchanged,
            Decision::Write { change, .. } => *change,
        }
    }

    /// The source versions the write stores: what the summary covers once it lands.
    pub fn covers(&self) -> &Covers {
        match self {
            Decision::Fence { covers, .. } | Decision::Write { covers, .. } => covers,
        }
    }

    /// The tags to queue once the write is made: the write's diff plus the leftover outbox.
    pub fn tags(&self) -> &TagSet {
        match self {
            Decision::Fence { leftover, .. } => leftover,
            Decision::Write { pending, .. } => pending,
        }
    }
}

/// Decides the write for a product whose stored state is `stored` and whose rows, read at
/// versions `read`, now project to `next`, at time `now` (the new `updatedAt`, and `createdAt`
/// if it is the first write: see [`inherit_created_at`]). Every write, a fence too, stores
/// `read`: what the summary now covers.
pub fn decide(
    stored: Option<&Stored>,
    mut next: Option<ProductSummary>,
    read: Covers,
    policy: StockTagPolicy,
    now: DateTime<Utc>,
) -> Decision {
    let previous = stored.and_then(|s| s.record.as_ref()).map(|r| &r.summary);
    if let Some(next) = &mut next {
        inherit_created_at(next, previous, now);
    }
    let leftover = stored.map(|s| s.pending_tags.clone()).unwrap_or_default();
    if let Some(stored) = stored.filter(|_| previous == next.as_ref()) {
        return Decision::Fence {
            expected: stored.revision,
            leftover,
            covers: read,
        };
    }
    let mut pending = tags(previous, next.as_ref(), policy);
    pending.extend(leftover);
    let change = match (previous, &next) {
        (_, None) => Change::Deleted,
        (None, Some(_)) => Change::Created,
        (Some(_), Some(_)) => Change::Updated,
    };
    let record = next.map(|summary| SummaryRecord {
        summary,
        updated_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
    });
    Decision::Write {
        expected: stored.map(|s| s.revision),
        record,
        pending,
        change,
        covers: read,
    }
}

#[cfg(test)]
mod model_check;

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::tags::all_tags;
    use crate::testing::arb_summary;

    /// What the Summaries table may hold: nothing, a tombstone or a summary, with any
    /// revision and any tags left in the outbox.
    fn arb_stored() -> impl Strategy<Value = Option<Stored>> {
        let record = proptest::option::of(arb_summary()).prop_map(|s| {
            s.map(|summary| SummaryRecord {
                summary,
                updated_at: "2026-11-26T00:00:00.000Z".into(),
            })
        });
        let leftover = proptest::option::of(arb_summary())
            .prop_map(|s| s.as_ref().map(all_tags).unwrap_or_default());
        proptest::option::of((0u64..1_000, record, leftover).prop_map(
            |(revision, record, pending_tags)| Stored {
                revision,
                record,
                pending_tags,
                expires_at: None,
                deleted_at: None,
                covers: None,
            },
        ))
    }

    fn arb_policy() -> impl Strategy<Value = StockTagPolicy> {
        prop_oneof![Just(StockTagPolicy::Eager), Just(StockTagPolicy::Quiet)]
    }

    proptest! {
        /// Unchanged content is a fence on the stored revision that re-queues only the
        /// outbox; anything else is one write, conditional on the revision read, that carries
        /// the diff's tags and the outbox, and stores exactly `next`.
        #[test]
        fn decide_fences_what_is_current_and_writes_the_rest(
            stored in arb_stored(),
            next in proptest::option::of(arb_summary()),
            policy in arb_policy(),
        ) {
            let now = Utc.with_ymd_and_hms(2026, 11, 27, 3, 0, 0).unwrap();
            let previous = stored.as_ref().and_then(|s| s.record.as_ref()).map(|r| &r.summary);
            let leftover = stored.as_ref().map(|s| s.pending_tags.clone()).unwrap_or_default();
            // The creation time is completed from the stored summary, else from now.
            let next_in = next.clone();
            let next = next.map(|mut n| { inherit_created_at(&mut n, previous, now); n });
            let read = Covers { product: Some(3), stock: None };
            match decide(stored.as_ref(), next_in, read.clone(), policy, now) {
                Decision::Fence { expected, leftover: queued, covers } => {
                    prop_assert_eq!(covers, read);
                    let stored = stored.as_ref().expect("a fence needs a stored item");
                    prop_assert_eq!(previous, next.as_ref());
                    prop_assert_eq!(expected, stored.revision);
                    prop_assert_eq!(queued, leftover);
                }
                Decision::Write { expected, record, pending, change, covers } => {
                    prop_assert_eq!(covers, read);
                    prop_assert!(stored.is_none() || previous != next.as_ref());
                    prop_assert_eq!(expected, stored.as_ref().map(|s| s.revision));
                    prop_assert_eq!(record.as_ref().map(|r| &r.summary), next.as_ref());
                    if let Some(r) = &record {
                        prop_assert!(r.summary.created_at.is_some());
                        prop_assert_eq!(&r.updated_at, "2026-11-27T03:00:00.000Z");
                    }
                    prop_assert!(pending.is_superset(&leftover));
                    prop_assert!(pending.is_superset(&tags(previous, next.as_ref(), policy)));
                    let expected_change = match (previous, &next) {
                        (_, None) => Change::Deleted,
                        (None, Some(_)) => Change::Created,
                        (Some(_), Some(_)) => Change::Updated,
                    };
                    prop_assert_eq!(change, expected_change);
                }
            }
        }
    }
}
