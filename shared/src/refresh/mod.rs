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

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use futures::stream::{self, StreamExt};

use crate::fault::Fault;
use crate::ids::ProductId;
use crate::model::{InventoryRow, Product, ProductSummary};
use crate::projection::project;
use crate::store::{Corrupt, ReadError, SourceStore, Stored, SummaryStore, Write};
use crate::tags::{StockTagPolicy, TagSet};

mod decision;
pub use decision::{decide, Change, Decision};

/// How long a tombstone outlives the delete: far longer than any Lambda invocation.
const TOMBSTONE_TTL_SECS: i64 = 24 * 60 * 60;

/// A product whose summary now matches its sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    pub product_id: ProductId,
    pub change: Change,
    /// The tags to queue: this write's diff plus any an earlier write left pending.
    pub tags: TagSet,
    /// The revision that holds `tags` as pending; clear them there once queued.
    pub outbox_revision: Option<u64>,
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

    /// The Summaries table this refresher writes.
    pub fn summaries(&self) -> &SummaryStore {
        &self.summaries
    }

    /// Brings the summaries of `ids` (distinct) up to date with their sources: one consistent
    /// BatchGetItem for the summaries, then one for the products, then the stock Queries and
    /// the conditional writes, `concurrency` at a time. Returns one outcome per id.
    pub async fn refresh(&self, ids: &[ProductId]) -> Vec<Outcome> {
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
            for (id, result) in self.attempt(&todo).await {
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

    async fn attempt(&self, ids: &[ProductId]) -> Vec<(ProductId, Attempt)> {
        let fail_all = |fault: Fault| {
            ids.iter()
                .map(|id| (id.clone(), Attempt::Done(Err(fault.clone().into()))))
                .collect()
        };
        // Step 1 strictly before step 2: see the module docs.
        let mut stored = match self.summaries.get_many(ids).await {
            Ok(stored) => stored,
            Err(fault) => return fail_all(fault),
        };
        let mut products = match self.sources.products(ids).await {
            Ok(products) => products,
            Err(fault) => return fail_all(fault),
        };
        let inputs: Vec<_> = ids
            .iter()
            .map(|id| {
                let stored = stored.remove(id).unwrap_or(Ok(None));
                let product = products.remove(id).unwrap_or(Ok(None));
                (id.clone(), stored, product)
            })
            .collect();
        stream::iter(inputs)
            .map(|(id, stored, product)| async move {
                let result = self.settle(&id, stored, product).await;
                (id, result)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await
    }

    /// Steps 2 (stock rows) to 4 for one product.
    async fn settle(
        &self,
        id: &ProductId,
        stored: Result<Option<Stored>, Corrupt>,
        product: Result<Option<Product>, Corrupt>,
    ) -> Attempt {
        let (stored, product) = match (stored, product) {
            (Ok(stored), Ok(product)) => (stored, product),
            (Err(corrupt), _) | (_, Err(corrupt)) => return Attempt::Done(Err(corrupt.into())),
        };
        let inventory = match &product {
            Some(p) if p.track_inventory => match self.sources.inventory(id).await {
                Ok(rows) => rows,
                Err(err) => return Attempt::Done(Err(err.into())),
            },
            _ => Vec::<InventoryRow>::new(),
        };
        let next = project(product.as_ref(), &inventory);
        self.write(id, stored, next).await
    }

    /// Step 4: the decision's one conditional write.
    async fn write(
        &self,
        id: &ProductId,
        stored: Option<Stored>,
        next: Option<ProductSummary>,
    ) -> Attempt {
        let now = Utc::now();
        let (written, change, expected, tags) =
            match decide(stored.as_ref(), next, self.policy, now) {
                Decision::Fence { expected, leftover } => (
                    self.summaries.fence(id, expected).await,
                    Change::Unchanged,
                    Some(expected),
                    leftover,
                ),
                Decision::Write {
                    expected,
                    record,
                    pending,
                    change,
                } => {
                    let expires_at = now.timestamp() + TOMBSTONE_TTL_SECS;
                    let put =
                        self.summaries
                            .put(id, record.as_ref(), expected, &pending, expires_at);
                    (put.await, change, expected, pending)
                }
            };
        match written {
            Ok(Write::Applied) => Attempt::Done(Ok(Refreshed {
                product_id: id.clone(),
                change,
                outbox_revision: (!tags.is_empty()).then(|| expected.map_or(1, |r| r + 1)),
                tags,
            })),
            Ok(Write::Conflict) => Attempt::Conflict,
            Err(fault) => Attempt::Done(Err(fault.into())),
        }
    }

    /// Marks the tags of `refreshed` as queued, removing them from the summary's outbox.
    pub async fn tags_queued(&self, refreshed: &[&Refreshed]) -> Result<(), Fault> {
        // A plain loop, not a closure: futures built in closures over borrowed items are not
        // `Send` to the compiler, and Lambda's runtime needs the handler future to be.
        let mut clears = Vec::new();
        for r in refreshed {
            if let Some(revision) = r.outbox_revision {
                clears.push(
                    self.summaries
                        .clear_pending(&r.product_id, revision, &r.tags),
                );
            }
        }
        let results: Vec<_> = stream::iter(clears)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

#[cfg(test)]
mod model_check;
