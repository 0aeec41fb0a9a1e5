//! A model check of the refresh protocol: every interleaving of up to three source writes and
//! the refreshes they trigger, against an in-memory Summaries item with DynamoDB's
//! conditional-write semantics, ends with the summary equal to the projection of the final rows.
//!
//! Each refresher runs the protocol's steps as the `Refresher` does — read the
//! stored item (consistent) and skip if it [`covered`] the batch's records, else read the rows
//! (consistent), then make [`decide`]'s one conditional write, starting over on a conflict —
//! and each step is atomic, as each DynamoDB call is. A stream batch may cover several writes
//! of one table (its refresher starts after the last); the two tables' batches are unordered.
//! With the skip, a table's batches run in order, as Lambda delivers an item's records; a
//! batch delivered again may run at any time. The search remembers the states it has seen, so
//! it is exhaustive and takes milliseconds per scenario.
//!
//! The backfill is checked the same way: a worker that finds no summary reads the stock row,
//! then the product (as a segment's Scan of Inventory comes before its Products pages), and
//! writes the projection only if the table still holds nothing for the product, while the
//! projector works the same writes' records from an empty table.

use std::collections::HashSet;

use chrono::{DateTime, TimeZone, Utc};

use super::{covered, decide, raised_to, Covers, Decision, Row, RowChange, Stored};
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
    /// Whether the stock row exists.
    stocked: bool,
    stock: i64,
    /// Each row's `version`: raised by each write, back to 1 when it is re-created.
    product_version: u64,
    stock_version: u64,
}

/// The rows before the first write: versions above 1, so a re-created row's versions run
/// through values the old one had.
const INITIAL: Rows = Rows {
    exists: true,
    cheap: true,
    active: true,
    slug: false,
    stocked: true,
    stock: 5,
    product_version: 2,
    stock_version: 2,
};

/// A source write; the first three kinds arrive on the Inventory stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Edit {
    /// Sets the stock (creating the row if it is gone).
    StockZero,
    StockFive,
    /// Deletes the stock row, or creates it again.
    StockDelete,
    Slug,
    Price,
    /// A writer that changes the price and forgets to raise the version.
    PriceUnversioned,
    Archive,
    /// Deletes the product, or re-creates it.
    Delete,
}

const EDITS: [Edit; 8] = [
    Edit::StockZero,
    Edit::StockFive,
    Edit::StockDelete,
    Edit::Slug,
    Edit::Price,
    Edit::PriceUnversioned,
    Edit::Archive,
    Edit::Delete,
];

/// What the stream says about one write: the event name and the images' versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Record {
    stock: bool,
    event_name: &'static str,
    old: Option<u64>,
    new: Option<u64>,
}

impl Edit {
    fn inventory_stream(self) -> bool {
        matches!(self, Edit::StockZero | Edit::StockFive | Edit::StockDelete)
    }

    /// Applies the write and returns its stream record.
    fn apply(self, rows: &mut Rows) -> Record {
        let before = *rows;
        match self {
            Edit::StockZero => (rows.stock, rows.stocked) = (0, true),
            Edit::StockFive => (rows.stock, rows.stocked) = (5, true),
            Edit::StockDelete => rows.stocked = !rows.stocked,
            Edit::Slug => rows.slug = !rows.slug,
            Edit::Price | Edit::PriceUnversioned => rows.cheap = !rows.cheap,
            Edit::Archive => rows.active = !rows.active,
            Edit::Delete => rows.exists = !rows.exists,
        }
        let stock = self.inventory_stream();
        let (was, is, version) = if stock {
            (before.stocked, rows.stocked, &mut rows.stock_version)
        } else {
            (before.exists, rows.exists, &mut rows.product_version)
        };
        let old = was.then_some(*version);
        match (was, is) {
            (false, true) => *version = 1,
            (_, false) => {}
            _ if self == Edit::PriceUnversioned => {}
            _ => *version += 1,
        }
        let new = is.then_some(*version);
        let event_name = match (was, is) {
            (false, true) => "INSERT",
            (true, false) => "REMOVE",
            _ => "MODIFY",
        };
        Record {
            stock,
            event_name,
            old,
            new,
        }
    }
}

/// How a refresher may skip: the protocol's rule, or one of the unsafe rules it must reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Skip {
    Never,
    /// [`covered`], with records placed by [`raised_to`].
    Covered,
    /// The first attempt: any record at or below the stored version, whatever its kind.
    AnyVersion,
    /// Trusts every new image's version, raised or not.
    UnraisedVersions,
    /// [`Skip::Covered`], and before reading the stored item, the same test against the
    /// versions of the last write made on the refresher's Lambda instance (a per-instance memo
    /// that would save the summaries read). The even-numbered refreshers share one instance.
    InstanceMemo,
}

impl Skip {
    fn change(self, record: &Record) -> RowChange {
        let raised = match self {
            Skip::Never | Skip::Covered | Skip::InstanceMemo => {
                raised_to(record.event_name, record.old, record.new)
            }
            Skip::AnyVersion => record.new.or(record.old),
            Skip::UnraisedVersions => record.new,
        };
        let row = if record.stock {
            Row::Stock(crate::ids::LocationId::parse("loc-1").expect("a location"))
        } else {
            Row::Product
        };
        RowChange {
            row,
            raised_to: raised,
        }
    }
}

/// How the backfill writes a product it found no summary for: the protocol's rule, or one of
/// the unsafe rules the check must reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backfill {
    /// Only if the table still holds nothing for the product (`attribute_not_exists`).
    IfAbsent,
    /// Whatever the table holds.
    Unconditional,
    /// `IfAbsent`, with a projector that writes nothing (no tombstone) when it finds nothing
    /// stored and nothing to project: the mark the backfill's condition relies on.
    IfAbsentWithoutTombstones,
}

/// Where the backfill is for the product.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum BackfillStep {
    ReadStock,
    /// Holds the stock row as read.
    ReadProduct(Rows),
    Write(Decision),
    /// Its write found the product stored (or nothing to project): handed to the refresh
    /// protocol, as the reconciler does.
    Refresh(Step),
    Done,
}

/// What a refresh reads: the rows' projection and their versions.
fn read(rows: Rows) -> (Option<ProductSummary>, Covers) {
    let mut p = product("p1", "s1");
    p.price = MinorUnits::new(if rows.cheap { 100 } else { 200 }).expect("a price");
    p.status = if rows.active {
        ProductStatus::Active
    } else {
        ProductStatus::Archived
    };
    p.slug = if rows.slug { "b" } else { "a" }.into();
    p.version = rows.product_version;
    let mut row = stock("p1", "loc-1", rows.stock, 0);
    row.version = rows.stock_version;
    let inventory: Vec<_> = rows.stocked.then_some(row).into_iter().collect();
    let product = rows.exists.then_some(&p);
    // The refresher reads stock rows only for a product that exists (and tracks them).
    let covers = Covers::read(product, rows.exists.then_some(&inventory[..]));
    (project(product, &inventory), covers)
}

fn projection(rows: Rows) -> Option<ProductSummary> {
    read(rows).0
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
    /// `None` when the scenario has no backfill.
    backfill: Option<BackfillStep>,
    /// What the last write made on the remembering instance covers ([`Skip::InstanceMemo`]).
    memo: Option<Covers>,
}

/// Applies `decision` if its condition holds; `false` on a conflict.
fn conditional_write(summary: &mut Option<Stored>, decision: &Decision) -> bool {
    let current = summary.as_ref().map(|s| s.revision);
    let covers = Some(decision.covers().clone());
    match decision {
        Decision::Fence { expected, .. } => match summary {
            Some(stored) if stored.revision == *expected => {
                stored.revision += 1;
                stored.covers = covers;
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
                covers,
            });
            true
        }
    }
}

/// One stream batch's refresher.
struct Refresher {
    /// The write after which its batch exists.
    starts_after: usize,
    /// What its batch's records changed.
    changes: Vec<RowChange>,
    /// The refresher of the same table's previous batch, which must be done first (in order).
    follows: Option<usize>,
}

/// One scenario: the writes in table order, and one refresher per stream batch (perhaps one
/// delivered twice), under one skip rule.
struct Scenario {
    edits: Vec<Edit>,
    refreshers: Vec<Refresher>,
    skip: Skip,
    /// A backfill of the product, run from an empty Summaries table.
    backfill: Option<Backfill>,
}

impl Scenario {
    /// The batches ending at each write of `ends`, plus `duplicate` delivered a second time
    /// (with no order: a redelivery can come at any time); in order per table if `ordered`.
    fn new(
        edits: &[Edit],
        ends: &[usize],
        duplicate: Option<usize>,
        skip: Skip,
        ordered: bool,
    ) -> Self {
        let mut rows = INITIAL;
        let records: Vec<Record> = edits.iter().map(|e| e.apply(&mut rows)).collect();
        let batch = |end: usize| -> Vec<RowChange> {
            let table = edits[end].inventory_stream();
            let first = ends
                .iter()
                .filter(|&&e| e < end && edits[e].inventory_stream() == table)
                .max()
                .map_or(0, |e| e + 1);
            (first..=end)
                .filter(|&i| edits[i].inventory_stream() == table)
                .map(|i| skip.change(&records[i]))
                .collect()
        };
        let mut refreshers: Vec<Refresher> = Vec::new();
        for &end in ends {
            let table = edits[end].inventory_stream();
            let previous = (0..refreshers.len())
                .rev()
                .find(|&r| edits[refreshers[r].starts_after].inventory_stream() == table);
            refreshers.push(Refresher {
                starts_after: end,
                changes: batch(end),
                follows: previous.filter(|_| ordered),
            });
        }
        if let Some(end) = duplicate {
            refreshers.push(Refresher {
                starts_after: end,
                changes: batch(end),
                follows: None,
            });
        }
        Self {
            edits: edits.to_vec(),
            refreshers,
            skip,
            backfill: None,
        }
    }

    fn may_start(&self, state: &State, i: usize) -> bool {
        let refresher = &self.refreshers[i];
        state.written > refresher.starts_after
            && refresher
                .follows
                .is_none_or(|f| state.refreshers[f] == Step::Done)
    }

    fn step(&self, state: &mut State, i: usize) -> &'static str {
        let step = state.refreshers[i].clone();
        let remembers = self.skip == Skip::InstanceMemo && i.is_multiple_of(2);
        let (label, next) = self.advance(&step, &self.refreshers[i].changes, state, remembers);
        state.refreshers[i] = next;
        label
    }

    /// One step of the refresh protocol for a refresher whose batch holds `changes`, on the
    /// instance with the memo if it `remembers`.
    fn advance(
        &self,
        step: &Step,
        changes: &[RowChange],
        state: &mut State,
        remembers: bool,
    ) -> (&'static str, Step) {
        match step {
            Step::ReadStored if remembers && in_memo(state.memo.as_ref(), changes) => {
                ("finds its records in the instance's memo", Step::Done)
            }
            Step::ReadStored => {
                let stored = state.summary.clone();
                if self.skip != Skip::Never && covered(stored.as_ref(), changes) {
                    ("finds its records covered", Step::Done)
                } else {
                    ("reads the summary", Step::ReadRows(stored))
                }
            }
            Step::ReadRows(stored) => {
                let (next, covers) = read(state.rows);
                let decision = decide(stored.as_ref(), next, covers, StockTagPolicy::Eager, now());
                ("reads the rows", Step::Write(decision))
            }
            Step::Write(decision) if self.leaves_no_mark(decision) => {
                ("finds nothing to write", Step::Done)
            }
            Step::Write(decision) => {
                if conditional_write(&mut state.summary, decision) {
                    if remembers {
                        state.memo = Some(decision.covers().clone());
                    }
                    ("writes", Step::Done)
                } else {
                    ("conflicts, starts over", Step::ReadStored)
                }
            }
            Step::Done => unreachable!(),
        }
    }

    /// Whether the projector, in this scenario, skips `decision`: a tombstone where nothing
    /// was stored, under [`Backfill::IfAbsentWithoutTombstones`].
    fn leaves_no_mark(&self, decision: &Decision) -> bool {
        let nothing_over_nothing = matches!(
            decision,
            Decision::Write {
                expected: None,
                record: None,
                ..
            }
        );
        nothing_over_nothing && self.backfill == Some(Backfill::IfAbsentWithoutTombstones)
    }

    /// One step of the backfill.
    fn step_backfill(&self, state: &mut State, rule: Backfill) -> &'static str {
        let step = state.backfill.clone().expect("a backfill");
        let (label, next) = match step {
            BackfillStep::ReadStock => (
                "backfill reads the stock row",
                BackfillStep::ReadProduct(state.rows),
            ),
            BackfillStep::ReadProduct(stock) => {
                let rows = Rows {
                    stocked: stock.stocked,
                    stock: stock.stock,
                    stock_version: stock.stock_version,
                    ..state.rows
                };
                let (next, covers) = read(rows);
                if next.is_none() {
                    (
                        "backfill finds nothing to project",
                        BackfillStep::Refresh(Step::ReadStored),
                    )
                } else {
                    let decision = decide(None, next, covers, StockTagPolicy::Eager, now());
                    ("backfill reads the product", BackfillStep::Write(decision))
                }
            }
            BackfillStep::Write(decision) => {
                if rule == Backfill::Unconditional {
                    state.summary = None;
                }
                if conditional_write(&mut state.summary, &decision) {
                    ("backfill writes", BackfillStep::Done)
                } else {
                    (
                        "backfill finds a summary",
                        BackfillStep::Refresh(Step::ReadStored),
                    )
                }
            }
            BackfillStep::Refresh(step) => {
                let (label, next) = self.advance(&step, &[], state, false);
                let next = match next {
                    Step::Done => BackfillStep::Done,
                    next => BackfillStep::Refresh(next),
                };
                (label, next)
            }
            BackfillStep::Done => unreachable!(),
        };
        state.backfill = Some(next);
        label
    }

    fn successors(&self, state: &State) -> Vec<(String, State)> {
        let mut next = Vec::new();
        if let Some(edit) = self.edits.get(state.written) {
            let mut s = state.clone();
            edit.apply(&mut s.rows);
            s.written += 1;
            next.push((format!("write {edit:?}"), s));
        }
        for i in 0..self.refreshers.len() {
            if state.refreshers[i] == Step::Done || !self.may_start(state, i) {
                continue;
            }
            let mut s = state.clone();
            let label = self.step(&mut s, i);
            next.push((format!("refresher {i} {label}"), s));
        }
        if let (Some(rule), Some(step)) = (self.backfill, &state.backfill) {
            if *step != BackfillStep::Done {
                let mut s = state.clone();
                let label = self.step_backfill(&mut s, rule);
                next.push((label.to_owned(), s));
            }
        }
        next
    }

    /// The first interleaving that ends with a wrong summary, as its steps.
    fn counterexample(&self) -> Option<Vec<String>> {
        let (summary, covers) = read(INITIAL);
        let stored = Stored {
            revision: 1,
            record: summary.map(|summary| SummaryRecord {
                summary,
                updated_at: "2026-01-01T00:00:00.000Z".into(),
            }),
            pending_tags: Default::default(),
            expires_at: None,
            deleted_at: None,
            covers: Some(covers),
        };
        // A backfill starts from an empty Summaries table.
        let start = State {
            rows: INITIAL,
            written: 0,
            summary: self.backfill.is_none().then_some(stored),
            refreshers: vec![Step::ReadStored; self.refreshers.len()],
            backfill: self.backfill.map(|_| BackfillStep::ReadStock),
            memo: None,
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

/// Whether a memo of a write's versions includes every one of `changes`: [`covered`]'s test,
/// with the memo in place of the stored item (its outbox was cleared before it was kept).
fn in_memo(memo: Option<&Covers>, changes: &[RowChange]) -> bool {
    memo.is_some_and(|m| !changes.is_empty() && changes.iter().all(|c| m.includes(c)))
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

fn scenarios(max_writes: usize, skip: Skip, ordered: bool, edits: &[Edit]) -> Vec<Scenario> {
    let mut sequences: Vec<Vec<Edit>> = vec![Vec::new()];
    let mut all = Vec::new();
    for _ in 0..max_writes {
        sequences = sequences
            .iter()
            .flat_map(|s| {
                edits.iter().map(move |e| {
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
                    all.push(Scenario::new(edits, &ends, duplicate, skip, ordered));
                }
            }
        }
    }
    all
}

/// Checks every scenario of up to three of `edits`, each with `backfill` if any: how many end
/// wrong, and the first one's trace.
fn check(
    skip: Skip,
    ordered: bool,
    edits: &[Edit],
    backfill: Option<Backfill>,
) -> (usize, usize, Option<String>) {
    let mut scenarios = scenarios(3, skip, ordered, edits);
    for scenario in &mut scenarios {
        scenario.backfill = backfill;
    }
    let mut failures = 0;
    let mut first = None;
    for scenario in &scenarios {
        if let Some(trace) = scenario.counterexample() {
            failures += 1;
            let starts: Vec<usize> = scenario.refreshers.iter().map(|r| r.starts_after).collect();
            first.get_or_insert_with(|| {
                format!(
                    "writes {:?}, refreshers starting after writes {starts:?}:\n  {}",
                    scenario.edits,
                    trace.join("\n  ")
                )
            });
        }
    }
    (failures, scenarios.len(), first)
}

fn assert_converges(skip: Skip, ordered: bool, backfill: Option<Backfill>) {
    let (failures, total, first) = check(skip, ordered, &EDITS, backfill);
    let what = format!("{skip:?} (ordered: {ordered}, backfill: {backfill:?})");
    if let Some(first) = first {
        panic!(
            "{what}: {failures} of {total} scenarios can end with a wrong summary; first: {first}"
        );
    }
    eprintln!("refresh model, {what}: {total} scenarios, all interleavings converge");
}

fn assert_fails(skip: Skip, ordered: bool, edits: &[Edit], backfill: Option<Backfill>) {
    let (failures, total, first) = check(skip, ordered, edits, backfill);
    let what = format!("{skip:?} (ordered: {ordered}, backfill: {backfill:?})");
    let first = first
        .unwrap_or_else(|| panic!("{what} should be caught, and all {total} scenarios converge"));
    eprintln!("refresh model, {what}: {failures} of {total} scenarios end wrong; first: {first}");
}

#[test]
fn every_interleaving_of_three_writes_converges_without_order() {
    assert_converges(Skip::Never, false, None);
}

#[test]
fn the_skip_converges_with_each_items_records_in_order() {
    assert_converges(Skip::Covered, true, None);
}

/// Every kind of edit but the writer that forgets to raise its version.
fn versioned_edits() -> Vec<Edit> {
    EDITS
        .into_iter()
        .filter(|e| *e != Edit::PriceUnversioned)
        .collect()
}

/// The checker can see each assumption the skip rests on: drop one and it finds a wrong end.
#[test]
fn each_unsafe_skip_is_caught() {
    assert_fails(Skip::Covered, false, &EDITS, None);
    assert_fails(Skip::UnraisedVersions, true, &EDITS, None);
    // The first attempt fails on a re-created product alone, with every writer raising versions.
    let versioned = versioned_edits();
    assert_fails(Skip::AnyVersion, true, &versioned, None);
}

/// A memo of each instance's own writes, which would save the summaries read, is unsafe: the
/// REMOVE of a row may be refreshed on another instance, and the row's next life raises its
/// version through values the memo holds.
#[test]
fn a_per_instance_memo_is_caught() {
    let versioned = versioned_edits();
    assert_fails(Skip::InstanceMemo, true, &versioned, None);
}

/// A backfill that read its rows minutes before writing, beside the projector working the
/// writes made meanwhile (with its skip), always ends at the final rows.
#[test]
fn the_backfill_converges_beside_the_projector() {
    assert_converges(Skip::Covered, true, Some(Backfill::IfAbsent));
}

/// Its condition, and the projector's tombstone over nothing, are each needed.
#[test]
fn each_unsafe_backfill_is_caught() {
    assert_fails(Skip::Covered, true, &EDITS, Some(Backfill::Unconditional));
    let backfill = Some(Backfill::IfAbsentWithoutTombstones);
    assert_fails(Skip::Covered, true, &EDITS, backfill);
}
