//! A model check of the refresh protocol: every interleaving of up to three source writes and
//! the refreshes they trigger, against an in-memory Summaries item with DynamoDB's
//! conditional-write semantics, ends with the summary equal to the projection of the final rows.
//!
//! Each refresher runs the protocol's steps as the `Refresher` does — read the
//! stored item (consistent), read the rows (consistent), then make [`decide`]'s one conditional
//! write, starting over on a conflict — and each step is atomic, as each DynamoDB call is. A
//! stream batch may cover several writes of one table (its refresher starts after the last);
//! the two tables' batches are unordered. The search remembers the states it has seen, so it is
//! exhaustive and takes milliseconds per scenario.

use std::collections::HashSet;

use chrono::{DateTime, TimeZone, Utc};

use super::{decide, Decision, Stored};
use crate::model::{MinorUnits, ProductStatus, ProductSummary, SummaryRecord};
use crate::projection::project;
use crate::tags::StockTagPolicy;
use crate::testing::{product, stock};

/// The rows of one product: a tiny state space that still has every kind of change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Rows {
    exists: bool,
    cheap: bool,
    active: bool,
    /// An attribute the card does not show (the product's slug).
    slug: bool,
    stock: i64,
}

/// A source write; the first two kinds arrive on the Inventory stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Edit {
    StockZero,
    StockFive,
    Slug,
    Price,
    Archive,
    Delete,
}

const EDITS: [Edit; 6] = [
    Edit::StockZero,
    Edit::StockFive,
    Edit::Slug,
    Edit::Price,
    Edit::Archive,
    Edit::Delete,
];

impl Edit {
    fn inventory_stream(self) -> bool {
        matches!(self, Edit::StockZero | Edit::StockFive)
    }

    fn apply(self, rows: &mut Rows) {
        match self {
            Edit::StockZero => rows.stock = 0,
            Edit::StockFive => rows.stock = 5,
            Edit::Slug => rows.slug = !rows.slug,
            Edit::Price => rows.cheap = !rows.cheap,
            Edit::Archive => rows.active = !rows.active,
            Edit::Delete => rows.exists = !rows.exists,
        }
    }
}

fn projection(rows: Rows) -> Option<ProductSummary> {
    let mut p = product("p1", "s1");
    p.price = MinorUnits::new(if rows.cheap { 100 } else { 200 }).expect("a price");
    p.status = if rows.active {
        ProductStatus::Active
    } else {
        ProductStatus::Archived
    };
    p.slug = if rows.slug { "b" } else { "a" }.into();
    let inventory = [stock("p1", "loc-1", rows.stock, 0)];
    project(rows.exists.then_some(&p), &inventory)
}

fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000, 0)
        .single()
        .expect("a time")
}

/// Where one refresher is in the protocol.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    ReadStored,
    ReadRows(Option<Stored>),
    Write(Decision),
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct State {
    rows: Rows,
    /// Writes applied so far.
    written: usize,
    summary: Option<Stored>,
    refreshers: Vec<Step>,
}

/// Applies `decision` if its condition holds; `false` on a conflict.
fn conditional_write(summary: &mut Option<Stored>, decision: &Decision) -> bool {
    let current = summary.as_ref().map(|s| s.revision);
    match decision {
        Decision::Fence { expected, .. } => match summary {
            Some(stored) if stored.revision == *expected => {
                stored.revision += 1;
                true
            }
            _ => false,
        },
        Decision::Write {
            expected, record, ..
        } => {
            if current != *expected {
                return false;
            }
            *summary = Some(Stored {
                revision: expected.map_or(1, |r| r + 1),
                record: record.clone(),
                // Queued at once in this model: only the content is under test.
                pending_tags: Default::default(),
                expires_at: None,
                deleted_at: None,
            });
            true
        }
    }
}

/// One scenario: the writes in table order, and for each refresher (one per stream batch,
/// perhaps one delivered twice) the write after which it may start.
struct Scenario {
    edits: Vec<Edit>,
    starts_after: Vec<usize>,
}

impl Scenario {
    fn successors(&self, state: &State) -> Vec<(String, State)> {
        let mut next = Vec::new();
        if let Some(edit) = self.edits.get(state.written) {
            let mut s = state.clone();
            edit.apply(&mut s.rows);
            s.written += 1;
            next.push((format!("write {edit:?}"), s));
        }
        for (i, step) in state.refreshers.iter().enumerate() {
            if step == &Step::Done || state.written <= self.starts_after[i] {
                continue;
            }
            let mut s = state.clone();
            let (label, step) = match step {
                Step::ReadStored => ("reads the summary", Step::ReadRows(s.summary.clone())),
                Step::ReadRows(stored) => {
                    let decision = decide(
                        stored.as_ref(),
                        projection(s.rows),
                        StockTagPolicy::Eager,
                        now(),
                    );
                    ("reads the rows", Step::Write(decision))
                }
                Step::Write(decision) => {
                    if conditional_write(&mut s.summary, decision) {
                        ("writes", Step::Done)
                    } else {
                        ("conflicts, starts over", Step::ReadStored)
                    }
                }
                Step::Done => unreachable!(),
            };
            s.refreshers[i] = step;
            next.push((format!("refresher {i} {label}"), s));
        }
        next
    }

    /// The first interleaving that ends with a wrong summary, as its steps.
    fn counterexample(&self, initial: Rows) -> Option<Vec<String>> {
        let start = State {
            rows: initial,
            written: 0,
            summary: Some(Stored {
                revision: 1,
                record: projection(initial).map(|summary| SummaryRecord {
                    summary,
                    updated_at: "2026-01-01T00:00:00.000Z".into(),
                }),
                pending_tags: Default::default(),
                expires_at: None,
                deleted_at: None,
            }),
            refreshers: vec![Step::ReadStored; self.starts_after.len()],
        };
        let mut seen = HashSet::new();
        let mut trace = Vec::new();
        self.search(start, &mut seen, &mut trace)
    }

    fn search(
        &self,
        state: State,
        seen: &mut HashSet<State>,
        trace: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        let successors = self.successors(&state);
        if successors.is_empty() {
            let stored = state.summary.and_then(|s| s.record).map(|r| r.summary);
            // Every write in the model happens at `now()`, so a first write's creation time is
            // always `now()` (the rule itself has its own property test in projection.rs).
            let expected = projection(state.rows).map(|mut s| {
                crate::projection::inherit_created_at(&mut s, None, now());
                s
            });
            return (stored != expected).then(|| trace.clone());
        }
        for (label, next) in successors {
            if seen.insert(next.clone()) {
                trace.push(label);
                if let Some(found) = self.search(next, seen, trace) {
                    return Some(found);
                }
                trace.pop();
            }
        }
        None
    }
}

/// Every way of cutting each table's writes into stream batches: the index of each batch's
/// last write (its refresher starts after it).
fn batchings(edits: &[Edit]) -> Vec<Vec<usize>> {
    let mut all = vec![Vec::new()];
    for (i, edit) in edits.iter().enumerate() {
        let later_same_table = edits[i + 1..]
            .iter()
            .any(|e| e.inventory_stream() == edit.inventory_stream());
        let mut grown = Vec::new();
        for ends in &all {
            let mut ends_batch = ends.clone();
            ends_batch.push(i);
            grown.push(ends_batch);
            if later_same_table {
                // This write rides in the batch of a later write of its table.
                grown.push(ends.clone());
            }
        }
        all = grown;
    }
    all
}

fn scenarios(max_writes: usize) -> Vec<Scenario> {
    let mut sequences: Vec<Vec<Edit>> = vec![Vec::new()];
    let mut all = Vec::new();
    for _ in 0..max_writes {
        sequences = sequences
            .iter()
            .flat_map(|s| {
                EDITS.iter().map(move |e| {
                    let mut longer = s.clone();
                    longer.push(*e);
                    longer
                })
            })
            .collect();
        for edits in &sequences {
            for ends in batchings(edits) {
                // Each batch once, or (up to two writes, to keep the search in seconds) one
                // of them delivered a second time: a duplicate, or a replay after later writes.
                let duplicates = ends.iter().copied().filter(|_| edits.len() <= 2);
                for duplicate in std::iter::once(None).chain(duplicates.map(Some)) {
                    all.push(Scenario {
                        edits: edits.clone(),
                        starts_after: ends.iter().copied().chain(duplicate).collect(),
                    });
                }
            }
        }
    }
    all
}

#[test]
fn every_interleaving_of_three_writes_converges() {
    let initial = Rows {
        exists: true,
        cheap: true,
        active: true,
        slug: false,
        stock: 5,
    };
    let scenarios = scenarios(3);
    let mut failures = Vec::new();
    for scenario in &scenarios {
        if let Some(trace) = scenario.counterexample(initial) {
            failures.push((scenario.edits.clone(), scenario.starts_after.clone(), trace));
        }
    }
    if let Some((edits, starts, trace)) = failures.first() {
        panic!(
            "{} of {} scenarios can end with a wrong summary; first: writes {edits:?}, refreshers starting after writes {starts:?}:\n  {}",
            failures.len(),
            scenarios.len(),
            trace.join("\n  ")
        );
    }
    eprintln!(
        "refresh model: {} scenarios, all interleavings converge",
        scenarios.len()
    );
}
