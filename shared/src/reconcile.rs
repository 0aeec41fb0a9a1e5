//! One reconciliation worker: walks its share of the tables page by page, compares every
//! summary with the projection of its rows, repairs through the same compare-and-swap as the
//! projector, and stops at a deadline with a checkpoint to resume from.
//!
//! Two phases per share: **products** (a parallel-Scan segment of Products, or a store's
//! products from its `byStore` index) finds missing and drifted summaries; **summaries** (the
//! same segment of Summaries, or the store's listing index) finds orphans.
//!
//! Stock rows are read by scanning the same segment of Inventory once per invocation and
//! joining in memory, not by a Query per product. All rows of one product share a partition
//! key, so they are all in one segment; when the two tables' segments line up (they do on
//! DynamoDB Local, and segments are ranges of the partition-key hash space), a product finds
//! its rows in the map. A tracked product that finds none there gets a real Query, so the
//! join is correct whether or not the segments line up; it is only faster when they do.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::fault::{classify, Fault};
use crate::queue::TagPublisher;
use crate::refresh::{outbox_stuck, Change, Refreshed, Refresher};
use crate::store::{product_id_of, Corrupt, ReadError, SourceStore, Stored, TableNames};
use catalog_core::ids::{ProductId, StoreId};
use catalog_core::model::{InventoryRow, Product};
use catalog_core::projection::project;
use catalog_core::reconcile::{compare, Report};
use catalog_core::tags::TagSet;

/// Which share of the catalog a worker reconciles, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    /// Report only; repair nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Only this store's products (then there is one segment).
    #[serde(default)]
    pub store_id: Option<StoreId>,
    pub segment: u32,
    pub total_segments: u32,
}

/// The phase a worker is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    Products,
    Summaries,
}

/// Where a worker got to: resume here after a timeout instead of starting over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub phase: Phase,
    /// The page key to continue from (all key attributes are strings); `None`: the start.
    #[serde(default)]
    pub start_key: Option<BTreeMap<String, String>>,
}

impl Checkpoint {
    /// The beginning of a share.
    pub fn start() -> Self {
        Self {
            phase: Phase::Products,
            start_key: None,
        }
    }
}

/// Reads, compares and repairs.
#[derive(Debug, Clone)]
pub struct Worker {
    client: Client,
    tables: TableNames,
    sources: SourceStore,
    refresher: Refresher,
    publisher: TagPublisher,
    /// Items per Scan page (1000 measured fastest; a page of products stays far below 1 MB).
    pub page_size: i32,
    /// Stock Queries in flight at once.
    pub concurrency: usize,
    /// Most stock rows held in memory for a segment's join; past it, products not in the map
    /// are read with a Query each.
    pub max_joined_rows: usize,
}

/// A segment's stock rows, by product.
#[derive(Debug, Default)]
struct StockMap {
    rows: HashMap<ProductId, Vec<InventoryRow>>,
}

/// The segment's Summaries, read by one Scan; `None` when not loaded (a store run, or more
/// than `max_joined_rows`). Entries are taken out as products claim them; what is left at the
/// end of the products phase are the orphan candidates.
type SummaryMap = Option<HashMap<ProductId, Result<Stored, Corrupt>>>;

type Key = HashMap<String, AttributeValue>;

fn to_checkpoint_key(key: Key) -> Option<BTreeMap<String, String>> {
    let map: BTreeMap<String, String> = key
        .into_iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k, s.clone())))
        .collect();
    (!map.is_empty()).then_some(map)
}

fn from_checkpoint_key(key: &BTreeMap<String, String>) -> Key {
    key.iter()
        .map(|(k, v)| (k.clone(), AttributeValue::S(v.clone())))
        .collect()
}

/// The live summary a stored item holds, if any.
fn live(stored: &Stored) -> Option<&catalog_core::model::ProductSummary> {
    stored.record.as_ref().map(|r| &r.summary)
}

impl Worker {
    /// A worker over `tables`, repairing with `refresher` and queueing tags with `publisher`.
    pub fn new(
        client: Client,
        tables: TableNames,
        refresher: Refresher,
        publisher: TagPublisher,
    ) -> Self {
        Self {
            sources: SourceStore::new(client.clone(), &tables),
            client,
            tables,
            refresher,
            publisher,
            page_size: 1000,
            concurrency: 32,
            max_joined_rows: 2_000_000,
        }
    }

    /// Reconciles `share` from `checkpoint` until it is done (`Ok((report, None))`) or
    /// `deadline` passes after a page (`Ok((report, Some(next)))`). `progress` hears about
    /// every page.
    pub async fn run(
        &self,
        share: &Share,
        mut checkpoint: Checkpoint,
        deadline: Instant,
        mut progress: impl FnMut(&Report, &Checkpoint),
    ) -> Result<(Report, Option<Checkpoint>), Fault> {
        let mut report = Report::default();
        let mut stock = StockMap::default();
        let mut summaries: SummaryMap = None;
        if checkpoint.phase == Phase::Products && share.store_id.is_none() {
            stock = self.scan_stock(share).await?;
            summaries = self
                .refresher
                .summaries()
                .scan_segment(share.segment, share.total_segments, self.max_joined_rows)
                .await?;
        }
        loop {
            let (items, last) = self.page(share, &checkpoint).await?;
            match checkpoint.phase {
                Phase::Products => {
                    self.check_products(share, items, &mut stock, &mut summaries, &mut report)
                        .await?
                }
                Phase::Summaries => self.check_orphans(share, items, &mut report).await?,
            }
            checkpoint = match (last.and_then(to_checkpoint_key), checkpoint.phase) {
                (Some(key), phase) => Checkpoint {
                    phase,
                    start_key: Some(key),
                },
                (None, Phase::Products) => match summaries.take() {
                    // The segment's summaries are in memory: the orphans are among those no
                    // product claimed, so no second Scan is needed.
                    Some(left) => {
                        self.check_unclaimed(share, left, &mut report).await?;
                        return Ok((report, None));
                    }
                    None => Checkpoint {
                        phase: Phase::Summaries,
                        start_key: None,
                    },
                },
                (None, Phase::Summaries) => return Ok((report, None)),
            };
            progress(&report, &checkpoint);
            if Instant::now() >= deadline {
                return Ok((report, Some(checkpoint)));
            }
        }
    }

    /// One page of the current phase: a Scan segment, or a store's index.
    async fn page(
        &self,
        share: &Share,
        checkpoint: &Checkpoint,
    ) -> Result<(Vec<Key>, Option<Key>), Fault> {
        let start = checkpoint.start_key.as_ref().map(from_checkpoint_key);
        let table = match checkpoint.phase {
            Phase::Products => &self.tables.products,
            Phase::Summaries => &self.tables.summaries,
        };
        let (items, last) = match &share.store_id {
            Some(store) => {
                let output = self
                    .client
                    .query()
                    .table_name(table)
                    .index_name("byStore")
                    .key_condition_expression("storeId = :s")
                    .expression_attribute_values(":s", AttributeValue::S(store.to_string()))
                    .limit(self.page_size)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| classify("Query byStore", e))?;
                (output.items, output.last_evaluated_key)
            }
            None => {
                let output = self
                    .client
                    .scan()
                    .table_name(table)
                    .segment(share.segment as i32)
                    .total_segments(share.total_segments.max(1) as i32)
                    .consistent_read(true)
                    .limit(self.page_size)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(|e| classify("Scan", e))?;
                (output.items, output.last_evaluated_key)
            }
        };
        Ok((items.unwrap_or_default(), last.filter(|k| !k.is_empty())))
    }

    /// The stock rows of this share's Inventory segment, up to `max_joined_rows`.
    async fn scan_stock(&self, share: &Share) -> Result<StockMap, Fault> {
        let mut map = StockMap::default();
        let mut held = 0usize;
        let mut start: Option<Key> = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.tables.inventory)
                .segment(share.segment as i32)
                .total_segments(share.total_segments.max(1) as i32)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Scan inventory", e))?;
            for item in output.items.unwrap_or_default() {
                match serde_dynamo::from_item::<_, InventoryRow>(item) {
                    Ok(row) => {
                        map.rows
                            .entry(row.product_id.clone())
                            .or_default()
                            .push(row);
                        held += 1;
                    }
                    // Its product gets a Query instead, which reports the row properly.
                    Err(e) => tracing::warn!(error = %e, "undecodable stock row in scan"),
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() && held < self.max_joined_rows => start = Some(key),
                Some(key) if !key.is_empty() => {
                    // Rows past the cap may belong to products already in the map, so no
                    // product may trust it: every product is read by Query instead.
                    tracing::warn!(held, "segment has more stock rows than max_joined_rows");
                    return Ok(StockMap::default());
                }
                _ => return Ok(map),
            }
        }
    }

    async fn check_products(
        &self,
        share: &Share,
        items: Vec<Key>,
        stock: &mut StockMap,
        summaries: &mut SummaryMap,
        report: &mut Report,
    ) -> Result<(), Fault> {
        let mut products: Vec<Product> = Vec::with_capacity(items.len());
        for item in items {
            match serde_dynamo::from_item::<_, Product>(item) {
                Ok(p) => products.push(p),
                Err(e) => {
                    // The projector parks such rows; the reconciler only counts them.
                    tracing::warn!(error = %e, "undecodable product row skipped");
                    report.repair_failures += 1;
                }
            }
        }
        let mut rows: HashMap<ProductId, Vec<InventoryRow>> = HashMap::new();
        let mut unjoined = Vec::new();
        for p in products.iter().filter(|p| p.track_inventory) {
            match stock.rows.remove(&p.product_id) {
                Some(found) => {
                    rows.insert(p.product_id.clone(), found);
                }
                None => unjoined.push(p.product_id.clone()),
            }
        }
        // Owned ids: a closure over borrowed ones makes this future not `Send` for every
        // lifetime (rust-lang/rust#102211), and the local stack runs it on a multi-thread runtime.
        let sources = &self.sources;
        let queried = stream::iter(unjoined)
            .map(|id| async move {
                let found = sources.inventory(&id).await;
                (id, found)
            })
            .buffer_unordered(self.concurrency)
            .collect::<Vec<_>>()
            .await;
        for (id, result) in queried {
            let found = result.map_err(|e| match e {
                ReadError::Fault(f) => f,
                ReadError::Corrupt(c) => Fault::Permanent(c.to_string()),
            })?;
            rows.insert(id, found);
        }
        // First look: the summary from the segment's Scan, where there is one. Its stock rows
        // may be minutes old by now, so it only picks out the doubtful.
        let now = chrono::Utc::now();
        let mut confirm = Vec::new();
        for product in &products {
            let id = &product.product_id;
            let projected = project(Some(product), &rows.remove(id).unwrap_or_default());
            let scanned = summaries.as_mut().and_then(|m| m.remove(id));
            let settled = matches!(&scanned, Some(Ok(s))
                if compare(live(s), projected.as_ref()).is_none() && !outbox_stuck(s, now));
            if settled {
                report.record(None);
            } else {
                confirm.push(id.clone());
            }
        }
        // Second look, only for the doubtful: the refresh protocol's own fresh reads decide,
        // so a summary the projector rewrote since the Scan is not counted.
        self.settle(share, &confirm, report).await
    }

    /// Orphan candidates: summaries of the segment that no product of the segment claimed,
    /// and tombstones whose outbox is stuck. Each is confirmed with a consistent read of
    /// Products before it goes on.
    async fn check_unclaimed(
        &self,
        share: &Share,
        left: HashMap<ProductId, Result<Stored, Corrupt>>,
        report: &mut Report,
    ) -> Result<(), Fault> {
        let now = chrono::Utc::now();
        let candidates: Vec<ProductId> = left
            .into_iter()
            .filter(|(_, stored)| {
                !matches!(stored, Ok(s) if s.record.is_none() && !outbox_stuck(s, now))
            })
            .map(|(id, _)| id)
            .collect();
        for chunk in candidates.chunks(self.page_size.max(1) as usize) {
            self.confirm_orphans(share, chunk, report).await?;
        }
        Ok(())
    }

    /// Settles the `candidates` whose product is gone, read consistently.
    async fn confirm_orphans(
        &self,
        share: &Share,
        candidates: &[ProductId],
        report: &mut Report,
    ) -> Result<(), Fault> {
        let products = self.sources.products(candidates).await?;
        let orphans: Vec<ProductId> = candidates
            .iter()
            .filter(|id| matches!(products.get(*id), Some(Ok(None)) | None))
            .cloned()
            .collect();
        self.settle(share, &orphans, report).await
    }

    async fn check_orphans(
        &self,
        share: &Share,
        items: Vec<Key>,
        report: &mut Report,
    ) -> Result<(), Fault> {
        let live: Vec<ProductId> = items
            .iter()
            .filter(|item| {
                !item
                    .get("deleted")
                    .is_some_and(|d| d.as_bool().is_ok_and(|b| *b))
            })
            .filter_map(product_id_of)
            .collect();
        self.confirm_orphans(share, &live, report).await
    }

    /// Counts what the refresh protocol finds for `ids`, read afresh, and (unless a dry run)
    /// repairs it through the projector's own compare-and-swap (so a newer write is never
    /// overwritten), then queues the tags of what changed and of stuck outboxes. Only what is
    /// still wrong at this read counts.
    async fn settle(
        &self,
        share: &Share,
        ids: &[ProductId],
        report: &mut Report,
    ) -> Result<(), Fault> {
        if ids.is_empty() {
            return Ok(());
        }
        let outcomes = if share.dry_run {
            self.refresher.inspect(ids).await
        } else {
            self.refresher.refresh(ids).await
        };
        let mut done: Vec<Refreshed> = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(r) => {
                    tally(report, &r, share.dry_run);
                    done.push(r);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "repair failed; the next run retries it");
                    report.record(None);
                    report.repair_failures += 1;
                }
            }
        }
        if share.dry_run {
            return Ok(());
        }
        let with_tags: Vec<&Refreshed> = done.iter().filter(|r| !r.tags.is_empty()).collect();
        let tags: TagSet = with_tags
            .iter()
            .flat_map(|r| r.tags.iter().cloned())
            .collect();
        self.publisher.publish(&tags, chrono::Utc::now()).await?;
        self.refresher.tags_queued(&with_tags).await
    }
}

/// Adds one settled product to the report.
fn tally(report: &mut Report, r: &Refreshed, dry_run: bool) {
    if let Some(d) = &r.discrepancy {
        tracing::info!(product_id = %r.product_id, discrepancy = ?d, "discrepancy");
    }
    report.record(r.discrepancy.as_ref());
    if r.stuck_outbox {
        tracing::info!(product_id = %r.product_id, tags = r.tags.len(), "stuck outbox");
        report.stuck_outboxes += 1;
    }
    if !dry_run && (r.change != Change::Unchanged || r.stuck_outbox) {
        report.repaired += 1;
    }
}
