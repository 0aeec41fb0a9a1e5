//! The backfill's fast path: a product the segment's Scan of Summaries found nothing for is
//! written from the rows the segment already read, 100 to a transaction, on the condition
//! that nothing is stored for it yet, instead of being refreshed one at a time.
//!
//! Why a projection read minutes before its write is safe here: any source change after a
//! row was read puts a record on a stream. If the projector works that record before the
//! write, it leaves an item (a summary, or a tombstone even where nothing was stored, kept a
//! day, far longer than one invocation), so the write is refused and the product goes to the
//! refresh protocol. If it works it after, it finds the summary, whose `covers` do not include
//! the change, and refreshes. The model check (`backfill` in catalog-core's
//! `refresh/model_check.rs`) enumerates the interleavings, and catches the write made
//! unconditional or the tombstone left out.

use chrono::{DateTime, Utc};

use super::Worker;
use catalog::fault::Fault;
use catalog::refresh::{Change, Refreshed};
use catalog::store::NewSummary;
use catalog_core::ids::ProductId;
use catalog_core::model::{InventoryRow, Product, SummaryRecord};
use catalog_core::projection::project;
use catalog_core::reconcile::{compare, Report};
use catalog_core::refresh::{decide, Covers, Decision};
use catalog_core::tags::{StockTagPolicy, TagSet};

/// A product with nothing stored, and the write that would create its summary.
pub(super) struct Missing {
    id: ProductId,
    record: SummaryRecord,
    pending: TagSet,
    covers: Covers,
}

impl Missing {
    /// The creating write for `product` read with `rows` (its stock rows, if it tracks
    /// them), or `None` if it projects to nothing (the refresh protocol settles those).
    pub(super) fn of(
        product: &Product,
        rows: &[InventoryRow],
        policy: StockTagPolicy,
        now: DateTime<Utc>,
    ) -> Option<Self> {
        let stock = product.track_inventory.then_some(rows);
        let next = project(Some(product), rows)?;
        let covers = Covers::read(Some(product), stock);
        match decide(None, Some(next), covers, policy, now) {
            Decision::Write {
                record: Some(record),
                pending,
                covers,
                ..
            } => Some(Self {
                id: product.product_id.clone(),
                record,
                pending,
                covers,
            }),
            _ => None,
        }
    }

    fn refreshed(self) -> Refreshed {
        let summary = self.record.summary;
        Refreshed {
            discrepancy: compare(None, Some(&summary)),
            product_id: self.id,
            change: Change::Created,
            tags: self.pending,
            outbox_revision: Some(1),
            stuck_outbox: false,
            current: Some(summary),
            left: Vec::new(),
        }
    }
}

impl Worker {
    /// Creates the summaries of `missing` where still nothing is stored, counts them in
    /// `report` and queues their tags. Returns the products that had an item by then (for
    /// the refresh protocol) and those whose tags could not be queued.
    pub(super) async fn backfill(
        &self,
        missing: Vec<Missing>,
        report: &mut Report,
    ) -> Result<(Vec<ProductId>, Vec<ProductId>), Fault> {
        if missing.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let writes: Vec<NewSummary> = missing
            .iter()
            .map(|m| NewSummary {
                id: &m.id,
                record: &m.record,
                pending: &m.pending,
                covers: &m.covers,
            })
            .collect();
        let now = Utc::now().timestamp();
        let written = self.refresher.summaries().create_many(&writes, now).await?;
        let mut stored_meanwhile = Vec::new();
        let mut created = Vec::new();
        for (m, written) in missing.into_iter().zip(written) {
            if written {
                let r = m.refreshed();
                report.record(r.discrepancy.as_ref());
                report.repaired += 1;
                created.push(r);
            } else {
                stored_meanwhile.push(m.id);
            }
        }
        tracing::debug!(
            created = created.len(),
            stored_meanwhile = stored_meanwhile.len(),
            "backfilled"
        );
        let unsent = self.publish_created(&created).await;
        Ok((stored_meanwhile, unsent))
    }
}
