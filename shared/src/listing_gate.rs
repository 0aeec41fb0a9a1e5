//! Queueing the tags of refreshed summaries, listing tags only once the listing indexes show
//! the write.
//!
//! A product's own tags and its stock tag go out at once: their pages read the table
//! consistently. Its store's listing tag goes out at once only if the indexes already show
//! what the table holds (one Query per index position, right after the write: no extra render
//! when the index is current); otherwise a [`ListingCheck`] goes to the listing-check queue,
//! whose consumer follows the index ([`next_check`]: every 200 ms at first, then backing off)
//! and queues the tag once the index shows the product as the table then holds it, however
//! long the index lags. Past
//! [`LISTING_CHECK_LIMIT_SECS`] the tag goes out anyway and the abandon is counted (alarmed).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::fault::Fault;
use crate::queue::{ListingCheckQueue, TagPublisher};
use crate::refresh::Refreshed;
use crate::store::summaries::TOMBSTONE_TTL_SECS;
use crate::store::{ReadError, SummaryStore};
use catalog_core::listing::check::{next_check, Next};
use catalog_core::messages::ListingCheck;
use catalog_core::tags::{StockTagPolicy, Tag, TagSet};

/// Where tags go, and the check between a write and its listing tags.
#[derive(Debug, Clone)]
pub struct ListingGate {
    summaries: SummaryStore,
    tags: TagPublisher,
    checks: ListingCheckQueue,
    policy: StockTagPolicy,
}

/// What [`ListingGate::publish`] did with listing tags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    /// Products whose listing tags wait for the index on the listing-check queue.
    pub waiting: usize,
}

/// What one check from the listing-check queue found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// The index shows the product; its listing tags are queued.
    Listed,
    /// Not yet; sent again for a later check.
    Waiting,
    /// Still not after [`LISTING_CHECK_LIMIT_SECS`]: the tags went out anyway.
    Abandoned,
}

impl ListingGate {
    pub fn new(
        summaries: SummaryStore,
        tags: TagPublisher,
        checks: ListingCheckQueue,
        policy: StockTagPolicy,
    ) -> Self {
        Self {
            summaries,
            tags,
            checks,
            policy,
        }
    }

    /// Queues the tags of `refreshed` (those with any) as changed at `event_time`, as
    /// [`publish`](Self::publish) does, then clears them from the summaries' outboxes (a
    /// tombstone's TTL starts then). An error means nothing may be taken as queued: the
    /// outboxes keep the tags for the caller's retry.
    pub async fn deliver(
        &self,
        refreshed: &[Refreshed],
        event_time: DateTime<Utc>,
    ) -> Result<Published, Fault> {
        let with_tags: Vec<&Refreshed> = refreshed.iter().filter(|r| !r.tags.is_empty()).collect();
        let published = self.publish(&with_tags, event_time).await?;
        if let Err(fault) = self.clear_outboxes(&with_tags).await {
            // The tags went out; leaving them pending only means a harmless resend.
            tracing::warn!(error = %fault, "could not clear queued tags from the outbox");
        }
        Ok(published)
    }

    /// [`deliver`](Self::deliver) for summaries the backfill created (revision 1, nothing
    /// before them): their outboxes are cleared 100 to a transaction.
    pub async fn deliver_created(
        &self,
        created: &[Refreshed],
        event_time: DateTime<Utc>,
    ) -> Result<Published, Fault> {
        let with_tags: Vec<&Refreshed> = created.iter().filter(|r| !r.tags.is_empty()).collect();
        let published = self.publish(&with_tags, event_time).await?;
        let sent: Vec<_> = with_tags.iter().map(|r| (&r.product_id, &r.tags)).collect();
        if let Err(fault) = self.summaries.clear_created(&sent).await {
            tracing::warn!(error = %fault, "could not clear queued tags from the outbox");
        }
        Ok(published)
    }

    /// Removes the tags of `refreshed` from their summaries' outboxes, if still at the
    /// revision that wrote them; a tombstone's TTL starts then.
    async fn clear_outboxes(&self, refreshed: &[&Refreshed]) -> Result<(), Fault> {
        let expire_at = Utc::now().timestamp() + TOMBSTONE_TTL_SECS;
        // A plain loop, not a closure (see `publish`).
        let mut clears = Vec::new();
        for r in refreshed {
            if let Some(revision) = r.outbox_revision {
                let tombstone = r.current.is_none().then_some(expire_at);
                let summaries = &self.summaries;
                clears.push(summaries.clear_pending(&r.product_id, revision, &r.tags, tombstone));
            }
        }
        let results: Vec<_> = stream::iter(clears).buffer_unordered(16).collect().await;
        results.into_iter().collect()
    }

    /// Queues the tags of `refreshed` as changed at `event_time`: listing tags now where the
    /// index already shows the write, else as listing checks. An error means nothing may be
    /// taken as queued (the caller keeps the outbox and retries; duplicates are harmless).
    async fn publish(
        &self,
        refreshed: &[&Refreshed],
        event_time: DateTime<Utc>,
    ) -> Result<Published, Fault> {
        let shown = self.shown_now(refreshed).await;
        let mut now = TagSet::new();
        let mut waiting = Vec::new();
        let mut published = Published::default();
        for (r, shown) in refreshed.iter().zip(shown) {
            let (listing, other): (TagSet, TagSet) =
                r.tags.iter().cloned().partition(Tag::reads_listing_index);
            now.extend(other);
            if listing.is_empty() {
                continue;
            }
            if shown {
                now.extend(listing);
            } else {
                let (id, left) = (r.product_id.clone(), r.left.clone());
                waiting.push(ListingCheck::new(id, &listing, left, event_time));
            }
        }
        published.waiting = waiting.len();
        self.tags.publish(&now, event_time).await?;
        // Due at once: the listing-check consumer follows the index from there.
        self.checks.send(&waiting, 0).await?;
        Ok(published)
    }

    /// Whether the indexes already show each of `refreshed` (all read together; a failed
    /// read counts as no: the check retries).
    async fn shown_now(&self, refreshed: &[&Refreshed]) -> Vec<bool> {
        let listed = |r: &Refreshed| r.tags.iter().any(Tag::reads_listing_index);
        let checked: Vec<_> = refreshed
            .iter()
            .filter(|r| listed(r))
            .map(|r| (r.current.as_ref(), r.left.as_slice()))
            .collect();
        let mut verdicts = match self.summaries.indexes_show(&checked, self.policy).await {
            Ok(verdicts) => verdicts.into_iter(),
            Err(err) => {
                tracing::warn!(products = checked.len(), error = %err, "index check failed; will check again");
                vec![false; checked.len()].into_iter()
            }
        };
        refreshed
            .iter()
            .map(|r| !listed(r) || verdicts.next().unwrap_or(false))
            .collect()
    }

    /// Checks `check` against what the table holds now (consistent read) and the indexes:
    /// queues its tags, or polls the index again in place ([`next_check`]: every 200 ms for
    /// the first 10 s after the write, at most 2 s a delivery), or sends it again for later.
    pub async fn recheck(&self, check: &ListingCheck) -> Result<Checked, Fault> {
        let current = match self.summaries.get(&check.product_id).await {
            Ok(stored) => stored.and_then(|s| s.record).map(|r| r.summary),
            Err(ReadError::Fault(fault)) => return Err(fault),
            // Nothing a listing could show; the reconciler reports the row.
            Err(ReadError::Corrupt(_)) => None,
        };
        let started = Instant::now();
        loop {
            let shows = self
                .summaries
                .index_shows(current.as_ref(), &check.left, self.policy);
            if shows.await? {
                self.queue_tags(check).await?;
                return Ok(Checked::Listed);
            }
            let in_place = started.elapsed().as_millis() as u64;
            let waited = u64::from(check.waited_secs) * 1000 + in_place;
            let delay_secs = match next_check(waited, in_place) {
                Next::PollIn(ms) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    continue;
                }
                Next::SendIn(secs) => secs,
                Next::GiveUp => {
                    self.queue_tags(check).await?;
                    return Ok(Checked::Abandoned);
                }
            };
            let again = ListingCheck {
                waited_secs: check.waited_secs + in_place.div_ceil(1000) as u32 + delay_secs,
                ..check.clone()
            };
            self.checks.send(&[again], delay_secs).await?;
            return Ok(Checked::Waiting);
        }
    }

    async fn queue_tags(&self, check: &ListingCheck) -> Result<(), Fault> {
        let tags: TagSet = check.tags.iter().cloned().collect();
        self.tags.publish(&tags, check.event_time()).await
    }
}
