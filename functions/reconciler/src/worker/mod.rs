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

mod backfill;
mod share;

pub use share::{Checkpoint, Phase, Share};

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::Client;
use futures::stream::{self, StreamExt};

use backfill::Missing;
use catalog::fault::Fault;
use catalog::listing_gate::ListingGate;
use catalog::refresh::{Change, Refreshed, Refresher};
use catalog::store::pages::{key_from_checkpoint, key_to_checkpoint};
use catalog::store::{Corrupt, Item, Page, SourceStore, Stored, TableNames};
use catalog_core::ids::ProductId;
use catalog_core::model::{InventoryRow, Product, ProductSummary};
use catalog_core::projection::{inherit_created_at, project};
use catalog_core::reconcile::{compare, Report};

/// Reads, compares and repairs.
#[derive(Debug, Clone)]
pub struct Worker {
    sources: SourceStore,
    refresher: Refresher,
    gate: ListingGate,
    /// Items per Scan page (1000 measured fastest; a page of products stays far below 1 MB).
    pub page_size: i32,
    /// Stock Queries in flight at once.
    pub concurrency: usize,
    /// Most stock rows held in memory for a segment's join; past it, products not in the map
    /// are read with a Query each.
    pub max_joined_rows: usize,
}

/// A segment's stock rows, by product (empty: every product is read by Query).
type StockMap = HashMap<ProductId, Vec<InventoryRow>>;

/// The segment's Summaries, read by one Scan; `None` when not loaded (a store run, or more
/// than `max_joined_rows`). Entries are taken out as products claim them; what is left at the
/// end of the products phase are the orphan candidates.
type SummaryMap = Option<HashMap<ProductId, Result<Stored, Corrupt>>>;

/// The live summary a stored item holds, if any.
fn live(stored: &Stored) -> Option<&ProductSummary> {
    stored.record.as_ref().map(|r| &r.summary)
}

/// Whether a Summaries item no product claims must be settled: a live summary (an orphan, if
/// its product is gone), one that does not decode, or a tombstone with tags in its outbox (its
/// TTL waits for them: settling queues the tags, and the TTL starts). A tombstone with an empty
/// outbox is left alone.
fn orphan_candidate(stored: &Result<Stored, Corrupt>) -> bool {
    !matches!(stored, Ok(s) if s.record.is_none() && s.pending_tags.is_empty())
}

impl Worker {
    /// A worker over `tables`, repairing with `refresher` and queueing tags through `gate`
    /// (listing tags once the index shows the repair).
    pub fn new(
        client: Client,
        tables: TableNames,
        refresher: Refresher,
        gate: ListingGate,
    ) -> Self {
        Self {
            sources: SourceStore::new(client, &tables),
            refresher,
            gate,
            page_size: 1000,
            concurrency: 32,
            max_joined_rows: 2_000_000,
        }
    }

    /// Reconciles `share` from `checkpoint` until it is done (`Ok((report, None))`) or
    /// `deadline` passes after a page (`Ok((report, Some(next)))`). `progress` hears about
    /// every page. If the tags of a page's repairs cannot be queued, it stops after that page
    /// with their products in `next.unsent` (their outboxes hold the tags; the repairs are
    /// counted in `report`); the next step queues them first.
    pub async fn run(
        &self,
        share: &Share,
        mut checkpoint: Checkpoint,
        deadline: Instant,
        mut progress: impl FnMut(&Report, &Checkpoint),
    ) -> Result<(Report, Option<Checkpoint>), Fault> {
        let mut report = Report::default();
        checkpoint.unsent = self.flush(std::mem::take(&mut checkpoint.unsent)).await;
        if !checkpoint.unsent.is_empty() {
            return Ok((report, Some(checkpoint)));
        }
        let mut maps = self.segment_maps(share, &checkpoint).await?;
        while checkpoint.unsent.is_empty() && checkpoint.phase != Phase::Done {
            let unsent;
            (checkpoint, unsent) = self
                .step(share, &checkpoint, &mut maps, &mut report)
                .await?;
            checkpoint.unsent = unsent;
            progress(&report, &checkpoint);
            if Instant::now() >= deadline {
                break;
            }
        }
        let finished = checkpoint.phase == Phase::Done && checkpoint.unsent.is_empty();
        Ok((report, (!finished).then_some(checkpoint)))
    }

    /// One page of the share from `checkpoint`: where the next starts (`Done` after the
    /// last), and the repaired products whose tags could not be queued.
    async fn step(
        &self,
        share: &Share,
        checkpoint: &Checkpoint,
        (stock, summaries): &mut (StockMap, SummaryMap),
        report: &mut Report,
    ) -> Result<(Checkpoint, Vec<ProductId>), Fault> {
        let start = checkpoint.start_key.as_ref().map(key_from_checkpoint);
        let (next, mut unsent) = match checkpoint.phase {
            Phase::Products => {
                let page = self.products_page(share, start).await?;
                let items = page.items;
                let unsent = self.check_products(share, items, stock, summaries, report);
                (page.next, unsent.await?)
            }
            Phase::Summaries => {
                let page = self.summaries_page(share, start).await?;
                let unsent = self.check_orphans(share, page.items, report).await?;
                (page.next, unsent)
            }
            Phase::Done => return Ok((checkpoint.clone(), Vec::new())),
        };
        let next = match (next.and_then(key_to_checkpoint), checkpoint.phase) {
            (Some(key), phase) => Checkpoint::at(phase, Some(key)),
            (None, Phase::Products) => match summaries.take() {
                // The segment's summaries are in memory: the orphans are among those no
                // product claimed, so no second Scan is needed.
                Some(left) => {
                    unsent.extend(self.check_unclaimed(share, left, report).await?);
                    Checkpoint::at(Phase::Done, None)
                }
                None => Checkpoint::at(Phase::Summaries, None),
            },
            (None, _) => Checkpoint::at(Phase::Done, None),
        };
        Ok((next, unsent))
    }

    /// Queues the tags still in the outboxes of `ids` (a fence keeps them and the refresh
    /// hands them back; a product changed since gets its change written too). Returns the ids
    /// whose tags still could not be queued.
    async fn flush(&self, ids: Vec<ProductId>) -> Vec<ProductId> {
        if ids.is_empty() {
            return ids;
        }
        let mut failed = Vec::new();
        let mut done = Vec::new();
        for (id, outcome) in ids.iter().zip(self.refresher.refresh(&ids).await) {
            match outcome {
                Ok(r) => done.push(r),
                Err(_) => failed.push(id.clone()),
            }
        }
        failed.extend(self.publish(&done).await);
        failed
    }

    /// Queues the tags of `done` and clears them from the outboxes; returns the products
    /// whose tags could not be queued (their outboxes keep them).
    async fn publish(&self, done: &[Refreshed]) -> Vec<ProductId> {
        let delivered = self.gate.deliver(done, chrono::Utc::now()).await;
        unsent(delivered.map(|_| ()), done)
    }

    /// [`publish`](Self::publish) for summaries the backfill created.
    async fn publish_created(&self, created: &[Refreshed]) -> Vec<ProductId> {
        let delivered = self.gate.deliver_created(created, chrono::Utc::now()).await;
        unsent(delivered.map(|_| ()), created)
    }

    /// About how many products `share` holds (a segment's part of DescribeTable's count); `None`
    /// for a store run, or when the count cannot be read (progress only, so no failure).
    pub async fn estimate(&self, share: &Share) -> Option<u64> {
        if share.store_id.is_some() {
            return None;
        }
        match self.sources.approximate_products().await {
            Ok(count) => Some(count.div_ceil(u64::from(share.total_segments.max(1)))),
            Err(fault) => {
                tracing::warn!(error = %fault, "no product count; progress without time left");
                None
            }
        }
    }

    /// A whole-segment run starting its products phase reads the segment's stock rows and
    /// summaries once (both Scans at once), to join in memory; otherwise (a store run, or a
    /// continuation, which would otherwise scan the whole segment again for what is left of
    /// it) both stay empty and each page reads its own.
    async fn segment_maps(
        &self,
        share: &Share,
        checkpoint: &Checkpoint,
    ) -> Result<(StockMap, SummaryMap), Fault> {
        let starting = checkpoint.phase == Phase::Products && checkpoint.start_key.is_none();
        if !starting || share.store_id.is_some() {
            return Ok((StockMap::default(), None));
        }
        let (segment, total) = (share.segment, share.total_segments);
        let rows = self.max_joined_rows;
        let (stock, summaries) = tokio::try_join!(
            self.sources.scan_stock(segment, total, rows),
            self.refresher
                .summaries()
                .scan_segment(segment, total, rows),
        )?;
        Ok((stock.unwrap_or_default(), summaries))
    }

    async fn products_page(
        &self,
        share: &Share,
        start: Option<Item>,
    ) -> Result<Page<Result<Product, Corrupt>>, Fault> {
        let slice = share.slice();
        self.sources
            .products_page(&slice, self.page_size, start)
            .await
    }

    async fn summaries_page(
        &self,
        share: &Share,
        start: Option<Item>,
    ) -> Result<Page<(ProductId, Result<Stored, Corrupt>)>, Fault> {
        let slice = share.slice();
        let summaries = self.refresher.summaries();
        summaries.page(&slice, self.page_size, start).await
    }

    async fn check_products(
        &self,
        share: &Share,
        items: Vec<Result<Product, Corrupt>>,
        stock: &mut StockMap,
        summaries: &mut SummaryMap,
        report: &mut Report,
    ) -> Result<Vec<ProductId>, Fault> {
        let mut products: Vec<Product> = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Ok(p) => products.push(p),
                Err(e) => {
                    // The projector parks such rows; the reconciler only counts them.
                    tracing::warn!(error = %e, "undecodable product row skipped");
                    report.repair_failures += 1;
                }
            }
        }
        let mut rows = self.stock_rows(&products, stock).await?;
        let mut page_summaries = match summaries {
            Some(_) => HashMap::new(),
            None => self.page_summaries(&products).await?,
        };
        // First look: the summary from the segment's Scan, or else the page's BatchGetItem.
        // Its stock rows may be minutes old by now, so it only picks out the doubtful.
        let now = chrono::Utc::now();
        let mut confirm = Vec::new();
        let mut missing = Vec::new();
        let policy = self.refresher.policy();
        for product in &products {
            let id = &product.product_id;
            let product_rows = rows.remove(id).unwrap_or_default();
            let scanned = match summaries.as_mut() {
                Some(map) => map.remove(id),
                None => page_summaries.remove(id),
            };
            // Nothing stored when the segment was scanned: create it from these rows.
            let creatable = scanned.is_none() && summaries.is_some() && !share.dry_run;
            if let Some(m) = creatable.then(|| Missing::of(product, &product_rows, policy, now)) {
                match m {
                    Some(m) => missing.push(m),
                    None => confirm.push(id.clone()),
                }
                continue;
            }
            let mut projected = project(Some(product), &product_rows);
            if let (Some(next), Some(Ok(s))) = (&mut projected, &scanned) {
                inherit_created_at(next, live(s), now);
            }
            // Any outbox with tags is settled, however young its clock says it is: queueing
            // tags its projector is about to queue costs a duplicate, leaving a lost outbox
            // until the next run costs a stale page. Only an old one counts (as stuck).
            let settled = matches!(&scanned, Some(Ok(s))
                if compare(live(s), projected.as_ref()).is_none() && s.pending_tags.is_empty());
            if settled {
                report.record(None);
            } else {
                confirm.push(id.clone());
            }
        }
        let (stored_meanwhile, mut unsent) = self.backfill(missing, report).await?;
        confirm.extend(stored_meanwhile);
        // Second look, only for the doubtful: the refresh protocol's own fresh reads decide,
        // so a summary the projector rewrote since the Scan is not counted.
        unsent.extend(self.settle(share, &confirm, report).await?);
        Ok(unsent)
    }

    /// What Summaries holds for a page of `products`, by consistent BatchGetItem (100 a call):
    /// the first look of a run that holds no segment map (a store run, a continuation).
    async fn page_summaries(
        &self,
        products: &[Product],
    ) -> Result<HashMap<ProductId, Result<Stored, Corrupt>>, Fault> {
        let ids: Vec<ProductId> = products.iter().map(|p| p.product_id.clone()).collect();
        let found = self.refresher.summaries().get_many(&ids).await?;
        Ok(found
            .into_iter()
            .filter_map(|(id, stored)| Some((id, stored.transpose()?)))
            .collect())
    }

    /// The stock rows of the tracked `products`: from the segment's map, or by a consistent
    /// Query for those not in it.
    async fn stock_rows(
        &self,
        products: &[Product],
        stock: &mut StockMap,
    ) -> Result<StockMap, Fault> {
        let mut rows = StockMap::new();
        let mut unjoined = Vec::new();
        for p in products.iter().filter(|p| p.track_inventory) {
            match stock.remove(&p.product_id) {
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
        for (id, found) in queried {
            rows.insert(id, found?);
        }
        Ok(rows)
    }

    /// Orphan candidates: summaries of the segment that no product of the segment claimed,
    /// and tombstones with tags pending. Each is confirmed with a consistent read of
    /// Products before it goes on.
    async fn check_unclaimed(
        &self,
        share: &Share,
        left: HashMap<ProductId, Result<Stored, Corrupt>>,
        report: &mut Report,
    ) -> Result<Vec<ProductId>, Fault> {
        let candidates: Vec<ProductId> = left
            .into_iter()
            .filter(|(_, stored)| orphan_candidate(stored))
            .map(|(id, _)| id)
            .collect();
        let mut unsent = Vec::new();
        for chunk in candidates.chunks(self.page_size.max(1) as usize) {
            unsent.extend(self.confirm_orphans(share, chunk, report).await?);
        }
        Ok(unsent)
    }

    /// Settles the `candidates` whose product is gone, read consistently.
    async fn confirm_orphans(
        &self,
        share: &Share,
        candidates: &[ProductId],
        report: &mut Report,
    ) -> Result<Vec<ProductId>, Fault> {
        let products = self.sources.products(candidates).await?;
        let orphans: Vec<ProductId> = candidates
            .iter()
            .filter(|id| matches!(products.get(*id), Some(Ok(None)) | None))
            .cloned()
            .collect();
        self.settle(share, &orphans, report).await
    }

    /// A page of the summaries phase: every [`orphan_candidate`] (tombstones with tags
    /// pending included), confirmed against Products.
    async fn check_orphans(
        &self,
        share: &Share,
        items: Vec<(ProductId, Result<Stored, Corrupt>)>,
        report: &mut Report,
    ) -> Result<Vec<ProductId>, Fault> {
        let candidates: Vec<ProductId> = items
            .into_iter()
            .filter(|(_, stored)| orphan_candidate(stored))
            .map(|(id, _)| id)
            .collect();
        self.confirm_orphans(share, &candidates, report).await
    }

    /// Counts what the refresh protocol finds for `ids`, read afresh, and (unless a dry run)
    /// repairs it through the projector's own compare-and-swap (so a newer write is never
    /// overwritten), then queues the tags of what changed and of stuck outboxes. Only what is
    /// still wrong at this read counts. Returns the products whose tags could not be queued.
    async fn settle(
        &self,
        share: &Share,
        ids: &[ProductId],
        report: &mut Report,
    ) -> Result<Vec<ProductId>, Fault> {
        if ids.is_empty() {
            return Ok(Vec::new());
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
            return Ok(Vec::new());
        }
        Ok(self.publish(&done).await)
    }
}

/// The products of `done` left with tags in their outboxes when `delivered` failed.
fn unsent(delivered: Result<(), Fault>, done: &[Refreshed]) -> Vec<ProductId> {
    let Err(fault) = delivered else {
        return Vec::new();
    };
    let with_tags: Vec<ProductId> = done
        .iter()
        .filter(|r| !r.tags.is_empty())
        .map(|r| r.product_id.clone())
        .collect();
    tracing::warn!(error = %fault, products = with_tags.len(), "queueing repaired tags failed; the segment queues them in its next step");
    with_tags
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
