//! Reconciliation: the pure comparison of a stored summary with the projection of its source
//! rows, and the report a run adds up. The I/O that feeds it is the `catalog` crate's
//! `reconcile::Worker`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::ProductSummary;

/// Most Scan segments in one run. Segments run at most `ReconcileConcurrency` at a time (the
/// segment trigger's `MaximumConcurrency` in template.yaml), so more segments lengthen a run
/// rather than widen it; 256 segments of 10 million products are about 40,000 each.
pub const MAX_SEGMENTS: u32 = 256;

/// A summary field that can drift from its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Field {
    StoreId,
    Title,
    Price,
    Active,
    InventoryAvailable,
    PrimaryImageUrl,
    CreatedAt,
}

/// How a stored summary differs from what its rows project to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Discrepancy {
    /// The product exists but has no summary.
    Missing,
    /// A summary whose product is gone.
    Orphan,
    /// Both exist but these fields differ.
    Drift(Vec<Field>),
}

/// Compares the stored summary with the expected one (the projection of the current rows).
/// `None` when they agree.
pub fn compare(
    stored: Option<&ProductSummary>,
    expected: Option<&ProductSummary>,
) -> Option<Discrepancy> {
    match (stored, expected) {
        (None, None) => None,
        (None, Some(_)) => Some(Discrepancy::Missing),
        (Some(_), None) => Some(Discrepancy::Orphan),
        (Some(s), Some(e)) => {
            let checks = [
                (Field::StoreId, s.store_id != e.store_id),
                (Field::Title, s.title != e.title),
                (Field::Price, s.price != e.price),
                (Field::Active, s.active != e.active),
                (
                    Field::InventoryAvailable,
                    s.inventory_available != e.inventory_available,
                ),
                (
                    Field::PrimaryImageUrl,
                    s.primary_image_url != e.primary_image_url,
                ),
                (Field::CreatedAt, s.created_at != e.created_at),
            ];
            let fields: Vec<Field> = checks.iter().filter(|c| c.1).map(|c| c.0).collect();
            (!fields.is_empty()).then_some(Discrepancy::Drift(fields))
        }
    }
}

/// What a reconciliation run (or one segment of it) found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Products and summaries looked at.
    pub checked: u64,
    pub missing: u64,
    pub orphans: u64,
    /// Summaries with at least one drifted field.
    pub drifted: u64,
    /// Drifted summaries by field.
    pub drift_by_field: BTreeMap<Field, u64>,
    /// Correct summaries whose outbox still held tags long after their write (an earlier
    /// publish was lost): their pages stayed stale until these tags were queued.
    #[serde(default)]
    pub stuck_outboxes: u64,
    /// Discrepancies fixed (0 in a dry run).
    pub repaired: u64,
    /// Discrepancies whose repair failed (retried by the next run).
    pub repair_failures: u64,
}

impl Report {
    /// Counts one comparison.
    pub fn record(&mut self, discrepancy: Option<&Discrepancy>) {
        self.checked += 1;
        match discrepancy {
            None => {}
            Some(Discrepancy::Missing) => self.missing += 1,
            Some(Discrepancy::Orphan) => self.orphans += 1,
            Some(Discrepancy::Drift(fields)) => {
                self.drifted += 1;
                for field in fields {
                    *self.drift_by_field.entry(*field).or_default() += 1;
                }
            }
        }
    }

    /// All discrepancies found, stuck outboxes included.
    pub fn discrepancies(&self) -> u64 {
        self.missing + self.orphans + self.drifted + self.stuck_outboxes
    }

    /// Discrepancies per item checked (0 when nothing was checked).
    pub fn rate(&self) -> f64 {
        if self.checked == 0 {
            0.0
        } else {
            self.discrepancies() as f64 / self.checked as f64
        }
    }

    /// Adds another segment's report to this one.
    pub fn merge(&mut self, other: &Report) {
        self.checked += other.checked;
        self.missing += other.missing;
        self.orphans += other.orphans;
        self.drifted += other.drifted;
        self.stuck_outboxes += other.stuck_outboxes;
        for (field, n) in &other.drift_by_field {
            *self.drift_by_field.entry(*field).or_default() += n;
        }
        self.repaired += other.repaired;
        self.repair_failures += other.repair_failures;
    }
}

/// How far a segment has got, and how long it has left at its pace so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// Products per second in this invocation.
    pub per_second: f64,
    /// Seconds until the estimated total is checked; `None` without an estimate or a pace.
    pub seconds_left: Option<u64>,
}

/// The pace of a segment that has checked `checked` products in all, `this_run` of them in
/// the `elapsed` seconds of this invocation, of about `estimate` (an approximate count: past
/// it, nothing is left).
pub fn pace(checked: u64, this_run: u64, elapsed_secs: f64, estimate: Option<u64>) -> Pace {
    let per_second = if elapsed_secs > 0.0 {
        this_run as f64 / elapsed_secs
    } else {
        0.0
    };
    let seconds_left = estimate
        .filter(|_| per_second > 0.0)
        .map(|total| (total.saturating_sub(checked) as f64 / per_second).ceil() as u64);
    Pace {
        per_second,
        seconds_left,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::tags::{tags, StockTagPolicy};
    use crate::testing::arb_summary;

    #[test]
    fn names_each_drifted_field() {
        let a = crate::testing::summary("p1", "s1");
        let mut b = a.clone();
        b.price = crate::model::MinorUnits::new(1).unwrap();
        b.inventory_available = None;
        assert_eq!(
            compare(Some(&a), Some(&b)),
            Some(Discrepancy::Drift(vec![
                Field::Price,
                Field::InventoryAvailable
            ]))
        );
    }

    #[test]
    fn report_counts_rate_and_merges() {
        let mut r = Report::default();
        r.record(None);
        r.record(Some(&Discrepancy::Missing));
        r.record(Some(&Discrepancy::Drift(vec![Field::Title])));
        r.record(Some(&Discrepancy::Orphan));
        assert_eq!(r.discrepancies(), 3);
        assert!((r.rate() - 0.75).abs() < 1e-9);
        let mut total = Report::default();
        total.merge(&r);
        total.merge(&r);
        assert_eq!(total.checked, 8);
        assert_eq!(total.drift_by_field[&Field::Title], 2);
        assert_eq!(Report::default().rate(), 0.0);
    }

    proptest! {
        #[test]
        fn a_summary_agrees_with_itself(s in arb_summary()) {
            prop_assert_eq!(compare(Some(&s), Some(&s)), None);
        }

        #[test]
        fn presence_decides_missing_and_orphan(s in arb_summary()) {
            prop_assert_eq!(compare(None, Some(&s)), Some(Discrepancy::Missing));
            prop_assert_eq!(compare(Some(&s), None), Some(Discrepancy::Orphan));
            prop_assert_eq!(compare(None, None), None);
        }

        /// The reconciler and the projector agree on what a difference is: a summary drifts
        /// exactly when repairing it would invalidate a tag.
        #[test]
        fn drift_exactly_when_the_tag_diff_is_not_empty(a in arb_summary(), b in arb_summary()) {
            let b = ProductSummary { product_id: a.product_id.clone(), ..b };
            let drift = compare(Some(&a), Some(&b)).is_some();
            prop_assert_eq!(drift, !tags(Some(&a), Some(&b), StockTagPolicy::Eager).is_empty());
        }
    }

    #[test]
    fn pace_is_this_invocations_rate_and_the_estimate_left_at_it() {
        let p = pace(600, 400, 2.0, Some(1000));
        assert_eq!((p.per_second, p.seconds_left), (200.0, Some(2)));
        assert_eq!(
            pace(1200, 400, 2.0, Some(1000)).seconds_left,
            Some(0),
            "past the estimate"
        );
        assert_eq!(pace(600, 400, 2.0, None).seconds_left, None);
        assert_eq!(
            pace(0, 0, 0.0, Some(10)),
            Pace {
                per_second: 0.0,
                seconds_left: None
            }
        );
    }
}
