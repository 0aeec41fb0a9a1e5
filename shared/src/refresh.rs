//! Recomputing summaries from the current source rows, exactly-once in effect.
//!
//! The protocol, per product:
//! 1. read the stored summary and its `revision` (consistent);
//! 2. then read the product and its stock rows (consistent);
//! 3. project, and [`decide`] (pure);
//! 4. make exactly one conditional write, on the condition that the stored revision is still
//!    the one read in step 1: the new summary (or a tombstone) as `revision + 1`, with the tags
//!    to invalidate kept in the item (`pendingTags`, an outbox) until they are queued; or, when
//!    the content is unchanged, a fence that only bumps `revision`;
//! 5. on a conflict, start again at step 1.
//!
//! Why it converges: every refresh ends in a successful write whose condition held, so
//! successful writes are totally ordered by revision, and each one read its rows after the
//! write before it. Take the refresh R triggered by the last source change: it read its rows
//! after that change, and its write (content or fence) succeeded, so every later write read
//! R's revision and its rows even later. So the last write reflects the final rows. Without
//! the fence, an "unchanged" verdict left no mark: a slower refresher that had read the same
//! revision and older rows could still land its stale write after it, and nothing would ever
//! correct it (the model check in `model_check.rs` finds that interleaving). Tombstones
//! (expired by TTL after a day) stop a computation that read a product just before its
//! deletion from resurrecting it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::fault::Fault;
use crate::store::{Corrupt, ReadError, SourceStore, Stored, SummaryStore, Write};
use catalog_core::ids::ProductId;
use catalog_core::listing::check::{left_positions, IndexPosition};
use catalog_core::model::{InventoryRow, Product, ProductSummary};
use catalog_core::projection::project;
use catalog_core::reconcile::{compare, Discrepancy};
use catalog_core::tags::{StockTagPolicy, TagSet};

pub use catalog_core::refresh::{covered, decide, Change, Covers, Decision, RowChange};

pub use crate::store::summaries::TOMBSTONE_TTL_SECS;

/// Tags left in an outbox for longer than this were most likely lost, not in flight: the
/// projector queues them within its invocation, and the stream retries a failed publish within
/// minutes. Only a label (the reconciler's `stuck_outboxes`, a discrepancy): the reconciler
/// queues every outbox that holds tags whatever its age, so a writer's clock never decides
/// whether tags go out.
pub const STUCK_OUTBOX_SECS: i64 = 5 * 60;

/// A product whose summary now matches its sources (or, inspected, would).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    pub product_id: ProductId,
    pub change: Change,
    /// The tags to queue: this write's diff plus any an earlier write left pending.
    pub tags: TagSet,
    /// The revision that holds `tags` as pending; clear them there once queued.
    pub outbox_revision: Option<u64>,
    /// How the stored summary differed from its rows when read (`None`: it agreed).
    pub discrepancy: Option<Discrepancy>,
    /// The stored outbox held tags older than [`STUCK_OUTBOX_SECS`]: an earlier publish was
    /// lost, and `tags` now carries them again.
    pub stuck_outbox: bool,
    /// The summary stored after this refresh (`None`: a tombstone or nothing): what the
    /// listing indexes must show before its listing tags go out.
    pub current: Option<ProductSummary>,
    /// The index positions this refresh's write took the product out of.
    pub left: Vec<IndexPosition>,
}

impl Refreshed {
    /// A product whose stored summary covered every record: no refresh, no tags.
    fn covered(product_id: &ProductId, stored: &Stored) -> Self {
        Self {
            product_id: product_id.clone(),
            change: Change::Covered,
            tags: TagSet::new(),
            outbox_revision: None,
            discrepancy: None,
            stuck_outbox: false,
            current: stored.record.as_ref().map(|r| r.summary.clone()),
            left: Vec::new(),
        }
    }
}

/// Whether a refresh writes, or only reads and reports what it would write (a dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Write,
    Inspect,
}

/// What each product's stream records changed: those the stored summary covers are skipped.
/// Empty for a refresh with no records behind it (the reconciler's), which skips nothing.
pub type Changes = BTreeMap<ProductId, Vec<RowChange>>;

/// Whether `stored` has tags that waited in its outbox longer than [`STUCK_OUTBOX_SECS`] at
/// `now`. A content write sets `updatedAt` (a tombstone, `deletedAt`; one written before
/// `deletedAt` existed, `expiresAt` less the TTL) and every tag in the outbox is at least
/// that old.
pub fn outbox_stuck(stored: &Stored, now: DateTime<Utc>) -> bool {
    if stored.pending_tags.is_empty() {
        return false;
    }
    let written = match &stored.record {
        Some(record) => DateTime::parse_from_rfc3339(&record.updated_at)
            .map(|t| t.timestamp())
            .ok(),
        None => stored
            .deleted_at
            .or_else(|| stored.expires_at.map(|t| t - TOMBSTONE_TTL_SECS)),
    };
    written.is_none_or(|t| now.timestamp() - t > STUCK_OUTBOX_SECS)
}

/// Why a product could not be refreshed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// Retry later.
    #[error(transparent)]
    Fault(#[from] Fault),
    /// A source or summary row cannot be decoded; retrying cannot help.
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
    /// Other writers kept winning the compare-and-swap; retry later.
    #[error("summary of {0} still contended after {1} attempts")]
    Contended(ProductId, u32),
}

impl RefreshError {
    /// Whether a later retry can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            RefreshError::Fault(fault) => fault.is_transient(),
            RefreshError::Corrupt(_) => false,
            RefreshError::Contended(..) => true,
        }
    }
}

impl From<ReadError> for RefreshError {
    fn from(err: ReadError) -> Self {
        match err {
            ReadError::Fault(f) => RefreshError::Fault(f),
            ReadError::Corrupt(c) => RefreshError::Corrupt(c),
        }
    }
}

/// Recomputes and writes summaries; shared by the projector and the reconciler.
#[derive(Debug, Clone)]
pub struct Refresher {
    sources: SourceStore,
    summaries: SummaryStore,
    policy: StockTagPolicy,
    concurrency: usize,
    max_attempts: u32,
}

type Outcome = Result<Refreshed, RefreshError>;

/// One attempt's result for a product: done (either way), or lost the race.
// One per product and attempt, moved once into the outcome map: boxing would only add an
// allocation per product.
#[allow(clippy::large_enum_variant)]
enum Attempt {
    Done(Outcome),
    Conflict,
}

impl Refresher {
    /// A refresher that runs up to 16 products' reads and writes at once.
    pub fn new(sources: SourceStore, summaries: SummaryStore, policy: StockTagPolicy) -> Self {
        Self {
            sources,
            summaries,
            policy,
            concurrency: 16,
            max_attempts: 8,
        }
    }

    /// Which stock changes get tags.
    pub fn policy(&self) -> StockTagPolicy {
        self.policy
    }

    /// The Summaries table this refresher writes.
    pub fn summaries(&self) -> &SummaryStore {
        &self.summaries
    }

    /// Brings the summaries of `ids` (distinct) up to date with their sources: one consistent
    /// BatchGetItem for the summaries, then one for the products, then the stock Queries and
    /// the conditional writes, `concurrency` at a time. Returns one outcome per id.
    pub async fn refresh(&self, ids: &[ProductId]) -> Vec<Outcome> {
        self.run(ids, &Changes::new(), Mode::Write).await
    }

    /// [`refresh`](Self::refresh) for stream records: a product whose stored summary
    /// [`covered`] every one of its `changes` is skipped after step 1 ([`Change::Covered`]).
    pub async fn refresh_changes(&self, ids: &[ProductId], changes: &Changes) -> Vec<Outcome> {
        self.run(ids, changes, Mode::Write).await
    }

    /// The same reads and decisions as [`refresh`](Self::refresh), without writing: what it
    /// would change, with outbox revisions `None`.
    pub async fn inspect(&self, ids: &[ProductId]) -> Vec<Outcome> {
        self.run(ids, &Changes::new(), Mode::Inspect).await
    }

    async fn run(&self, ids: &[ProductId], changes: &Changes, mode: Mode) -> Vec<Outcome> {
        let mut outcomes: HashMap<ProductId, Outcome> = HashMap::with_capacity(ids.len());
        let mut todo: Vec<ProductId> = ids.to_vec();
        for attempt in 1..=self.max_attempts {
            if todo.is_empty() {
                break;
            }
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
            }
            let mut conflicts = Vec::new();
            for (id, result) in self.attempt(&todo, changes, mode).await {
                match result {
                    Attempt::Done(outcome) => {
                        outcomes.insert(id, outcome);
                    }
                    Attempt::Conflict => conflicts.push(id),
                }
            }
            todo = conflicts;
        }
        for id in todo {
            let err = RefreshError::Contended(id.clone(), self.max_attempts);
            outcomes.insert(id, Err(err));
        }
        ids.iter()
            .map(|id| {
                outcomes
                    .remove(id)
                    .unwrap_or_else(|| Err(Fault::Transient(format!("no outcome for {id}")).into()))
            })
            .collect()
    }

    async fn attempt(
        &self,
        ids: &[ProductId],
        changes: &Changes,
        mode: Mode,
    ) -> Vec<(ProductId, Attempt)> {
        let fail_all = |ids: &[ProductId], fault: Fault| {
            ids.iter()
                .map(|id| (id.clone(), Attempt::Done(Err(fault.clone().into()))))
                .collect()
        };
        // Step 1 strictly before step 2: see the module docs.
        let mut stored = match self.summaries.get_many(ids).await {
            Ok(stored) => stored,
            Err(fault) => return fail_all(ids, fault),
        };
        let (mut done, ids) = skip_covered(ids, &stored, changes);
        let mut products = match self.sources.products(&ids).await {
            Ok(products) => products,
            Err(fault) => {
                done.extend(fail_all(&ids, fault));
                return done;
            }
        };
        let inputs: Vec<_> = ids
            .iter()
            .map(|id| {
                let stored = stored.remove(id).unwrap_or(Ok(None));
                let product = products.remove(id).unwrap_or(Ok(None));
                (id.clone(), stored, product)
            })
            .collect();
        let settled: Vec<_> = stream::iter(inputs)
            .map(|(id, stored, product)| async move {
                let result = self.settle(&id, stored, product, mode).await;
                (id, result)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        done.extend(settled);
        done
    }

    /// Steps 2 (stock rows) to 4 for one product.
    async fn settle(
        &self,
        id: &ProductId,
        stored: Result<Option<Stored>, Corrupt>,
        product: Result<Option<Product>, Corrupt>,
        mode: Mode,
    ) -> Attempt {
        let (stored, product) = match (stored, product) {
            (Ok(stored), Ok(product)) => (stored, product),
            (Err(corrupt), _) | (_, Err(corrupt)) => return Attempt::Done(Err(corrupt.into())),
        };
        let inventory = match &product {
            Some(p) if p.track_inventory => match self.sources.inventory(id).await {
                Ok(rows) => Some(rows),
                Err(err) => return Attempt::Done(Err(err.into())),
            },
            _ => None,
        };
        let rows: &[InventoryRow] = inventory.as_deref().unwrap_or_default();
        let next = project(product.as_ref(), rows);
        let read = Covers::read(product.as_ref(), inventory.as_deref());
        self.write(id, stored, next, read, mode).await
    }

    /// Step 4: the decision's one conditional write (none when inspecting).
    async fn write(
        &self,
        id: &ProductId,
        stored: Option<Stored>,
        next: Option<ProductSummary>,
        read: Covers,
        mode: Mode,
    ) -> Attempt {
        let now = Utc::now();
        let previous = stored.as_ref().and_then(|s| s.record.as_ref());
        let decision = decide(stored.as_ref(), next, read, self.policy, now);
        // Against what the decision writes (its creation time completed), not the raw
        // projection; a fence writes nothing and finds nothing.
        let discrepancy = match &decision {
            Decision::Fence { .. } => None,
            Decision::Write { record, .. } => compare(
                previous.map(|r| &r.summary),
                record.as_ref().map(|r| &r.summary),
            ),
        };
        let current = match &decision {
            Decision::Fence { .. } => previous.map(|r| r.summary.clone()),
            Decision::Write { record, .. } => record.as_ref().map(|r| r.summary.clone()),
        };
        let mut refreshed = Refreshed {
            product_id: id.clone(),
            change: decision.change(),
            tags: decision.tags().clone(),
            outbox_revision: None,
            discrepancy,
            stuck_outbox: stored.as_ref().is_some_and(|s| outbox_stuck(s, now)),
            left: left_positions(previous.map(|r| &r.summary), current.as_ref()),
            current,
        };
        if mode == Mode::Inspect {
            return Attempt::Done(Ok(refreshed));
        }
        let (written, expected) = match &decision {
            Decision::Fence {
                expected, covers, ..
            } => {
                let fence = self.summaries.fence(id, *expected, covers);
                (fence.await, Some(*expected))
            }
            Decision::Write {
                expected,
                record,
                covers,
                ..
            } => {
                let (record, tags) = (record.as_ref(), &refreshed.tags);
                let put = self
                    .summaries
                    .put(id, record, *expected, tags, covers, now.timestamp());
                (put.await, *expected)
            }
        };
        match written {
            Ok(Write::Applied) => {
                refreshed.outbox_revision =
                    (!refreshed.tags.is_empty()).then(|| expected.map_or(1, |r| r + 1));
                Attempt::Done(Ok(refreshed))
            }
            Ok(Write::Conflict) => Attempt::Conflict,
            Err(fault) => Attempt::Done(Err(fault.into())),
        }
    }
}

/// Step 1's verdict for each of `ids`: those whose stored summary [`covered`] every one of
/// their `changes` are done; the rest go on to read their rows.
fn skip_covered(
    ids: &[ProductId],
    stored: &HashMap<ProductId, Result<Option<Stored>, Corrupt>>,
    changes: &Changes,
) -> (Vec<(ProductId, Attempt)>, Vec<ProductId>) {
    let mut done = Vec::new();
    let mut rest = Vec::new();
    for id in ids {
        let found = stored
            .get(id)
            .and_then(|s| s.as_ref().ok())
            .and_then(Option::as_ref);
        let changes = changes.get(id).map(Vec::as_slice).unwrap_or_default();
        match found.filter(|s| covered(Some(s), changes)) {
            Some(s) => done.push((id.clone(), Attempt::Done(Ok(Refreshed::covered(id, s))))),
            None => rest.push(id.clone()),
        }
    }
    (done, rest)
}
