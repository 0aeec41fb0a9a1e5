//! Queueing the tags of refreshed summaries, listing tags only once the listing indexes show
//! the write.
//!
//! A product's own tags and its stock tag go out at once: their pages read the table
//! consistently. Its store's listing tag goes out at once only if the indexes already show
//! what the table holds (one Query per index position, right after the write: no extra render
//! when the index is current); otherwise a [`ListingCheck`] waits on the listing-check queue,
//! is checked again after [`next_check_delay`], and queues the tag once the index shows the
//! product as the table then holds it, however long the index lags. Past
//! [`LISTING_CHECK_LIMIT_SECS`] the tag goes out anyway and the abandon is counted (alarmed).

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use crate::fault::Fault;
use crate::queue::{ListingCheckQueue, TagPublisher};
use crate::refresh::Refreshed;
use crate::store::{ReadError, SummaryStore};
use catalog_core::listing::check::{next_check_delay, LISTING_CHECK_LIMIT_SECS};
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
    /// Products whose listing tags went out at once: the index already showed them.
    pub listed_now: usize,
    /// Products whose listing tags wait for the index on the listing-check queue.
    pub waiting: usize,
}

/// What one check from the listing-check queue found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// The index shows the product; its listing tags are queued.
    Listed,
    /// Not yet; checked again in `delay_secs`.
    Waiting { delay_secs: u32 },
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

    /// Queues the tags of `refreshed` as changed at `event_time`: listing tags now where the
    /// index already shows the write, else as listing checks. An error means nothing may be
    /// taken as queued (the caller keeps the outbox and retries; duplicates are harmless).
    pub async fn publish(
        &self,
        refreshed: &[&Refreshed],
        event_time: DateTime<Utc>,
    ) -> Result<Published, Fault> {
        // At most 16 products' checks at once, as the refresher's writes. A plain loop, not a
        // closure: futures built in closures over borrowed items are not `Send` to the
        // compiler (rust-lang/rust#102211).
        let mut checks = Vec::with_capacity(refreshed.len());
        for r in refreshed {
            checks.push(self.shows_now(r));
        }
        let shown: Vec<bool> = stream::iter(checks).buffered(16).collect().await;
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
                published.listed_now += 1;
            } else {
                let (id, left) = (r.product_id.clone(), r.left.clone());
                waiting.push(ListingCheck::new(id, &listing, left, event_time));
            }
        }
        published.waiting = waiting.len();
        self.tags.publish(&now, event_time).await?;
        self.checks.send(&waiting, first_delay()).await?;
        Ok(published)
    }

    /// Whether the index already shows `r` (a failed read counts as no: the check retries).
    async fn shows_now(&self, r: &Refreshed) -> bool {
        if !r.tags.iter().any(Tag::reads_listing_index) {
            return true;
        }
        let shows = self
            .summaries
            .index_shows(r.current.as_ref(), &r.left, self.policy);
        shows.await.unwrap_or_else(|err| {
            tracing::warn!(product_id = %r.product_id, error = %err, "index check failed; will check again");
            false
        })
    }

    /// Checks `check` against what the table holds now (consistent read) and the indexes:
    /// queues its tags, or sends it again for later.
    pub async fn recheck(&self, check: &ListingCheck) -> Result<Checked, Fault> {
        let current = match self.summaries.get(&check.product_id).await {
            Ok(stored) => stored.and_then(|s| s.record).map(|r| r.summary),
            Err(ReadError::Fault(fault)) => return Err(fault),
            // Nothing a listing could show; the reconciler reports the row.
            Err(ReadError::Corrupt(_)) => None,
        };
        let policy = self.policy;
        if self
            .summaries
            .index_shows(current.as_ref(), &check.left, policy)
            .await?
        {
            self.queue_tags(check).await?;
            return Ok(Checked::Listed);
        }
        let Some(delay_secs) = next_check_delay(check.waited_secs) else {
            self.queue_tags(check).await?;
            return Ok(Checked::Abandoned);
        };
        let again = ListingCheck {
            waited_secs: check.waited_secs + delay_secs,
            ..check.clone()
        };
        self.checks.send(&[again], delay_secs).await?;
        Ok(Checked::Waiting { delay_secs })
    }

    async fn queue_tags(&self, check: &ListingCheck) -> Result<(), Fault> {
        let tags: TagSet = check.tags.iter().cloned().collect();
        self.tags.publish(&tags, check.event_time()).await
    }
}

/// The first check after the one made right after the write.
fn first_delay() -> u32 {
    next_check_delay(0).unwrap_or(LISTING_CHECK_LIMIT_SECS)
}
