//! The refresh decision: given what the Summaries table holds and what the rows project to
//! now, what to write. Pure, so the protocol's model test drives the very function the
//! `Refresher` (in the `catalog` crate) uses, over every interleaving it can enumerate.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::{ProductSummary, SummaryRecord};
use crate::tags::{tags, StockTagPolicy, TagSet};

/// What the Summaries table holds for one product.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stored {
    /// Bumped by every write; the compare-and-swap token.
    pub revision: u64,
    /// The summary, or `None` for a tombstone left by a delete.
    pub record: Option<SummaryRecord>,
    /// Tags written with the summary and not yet known to be queued (a transactional outbox).
    pub pending_tags: TagSet,
    /// A tombstone's expiry (epoch seconds), when it is one.
    pub expires_at: Option<i64>,
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
}

/// The one conditional write a refresh makes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The stored content is already current, but the revision is bumped all the same (a
    /// fence: `revision = expected + 1` if it is still `expected`). A slower refresher that
    /// read `expected` and rows older than ours would otherwise land its stale write on top
    /// of our "unchanged" verdict. `leftover` are tags an earlier write left in the outbox.
    Fence { expected: u64, leftover: TagSet },
    /// Write `record` (a tombstone when `None`) as `expected + 1` (1 when nothing is stored),
    /// on the condition that the stored revision is still `expected`, with `pending` kept in
    /// the item's outbox until queued.
    Write {
        expected: Option<u64>,
        record: Option<SummaryRecord>,
        pending: TagSet,
        change: Change,
    },
}

impl Decision {
    /// The change this decision makes to what a card shows.
    pub fn change(&self) -> Change {
        match self {
            Decision::Fence { .. } => Change::Unchanged,
            Decision::Write { change, .. } => *change,
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

/// Decides the write for a product whose stored state is `stored` and whose rows now project
/// to `next`, at time `now` (the new `updatedAt`).
pub fn decide(
    stored: Option<&Stored>,
    next: Option<ProductSummary>,
    policy: StockTagPolicy,
    now: DateTime<Utc>,
) -> Decision {
    let previous = stored.and_then(|s| s.record.as_ref()).map(|r| &r.summary);
    let leftover = stored.map(|s| s.pending_tags.clone()).unwrap_or_default();
    if let Some(stored) = stored.filter(|_| previous == next.as_ref()) {
        return Decision::Fence {
            expected: stored.revision,
            leftover,
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
    }
}

#[cfg(test)]
mod model_check;
