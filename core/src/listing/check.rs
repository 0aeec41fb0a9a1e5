//! Whether the listing indexes already show a summary as the table holds it: the check that
//! stands between a write and its listing tags.
//!
//! Listing pages read the six indexes, which DynamoDB updates asynchronously (usually within a
//! second, longer when an index is throttled). A listing re-rendered before its index shows
//! the write is cached by Next.js with no tag left to clear it. So a store's listing tag goes
//! out only once every index position the product holds shows what the table holds now, and
//! every position it left holds nothing: a check of the index itself, not a wait that bets on
//! its lag. Pure: the positions to read and the verdict on what was read; the reads are the
//! `catalog` crate's (`SummaryStore::index_shows`).

use serde::{Deserialize, Serialize};

use super::index_keys;
use crate::model::ProductSummary;
use crate::tags::StockTagPolicy;

/// The listing indexes of the Summaries table, as template.yaml names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Index {
    #[serde(rename = "byStore")]
    ByStore,
    #[serde(rename = "byStorePrice")]
    ByStorePrice,
    #[serde(rename = "byStoreNewest")]
    ByStoreNewest,
    #[serde(rename = "inStockByTitle")]
    InStockByTitle,
    #[serde(rename = "inStockByPrice")]
    InStockByPrice,
    #[serde(rename = "inStockByNewest")]
    InStockByNewest,
}

impl Index {
    /// The index's name in template.yaml.
    pub fn name(self) -> &'static str {
        use super::index;
        match self {
            Index::ByStore => index::BY_STORE,
            Index::ByStorePrice => index::BY_STORE_PRICE,
            Index::ByStoreNewest => index::BY_STORE_NEWEST,
            Index::InStockByTitle => index::IN_STOCK_BY_TITLE,
            Index::InStockByPrice => index::IN_STOCK_BY_PRICE,
            Index::InStockByNewest => index::IN_STOCK_BY_NEWEST,
        }
    }

    /// The partition key attribute: the store, or the store while in stock.
    pub fn partition_attr(self) -> &'static str {
        match self {
            Index::ByStore | Index::ByStorePrice | Index::ByStoreNewest => "storeId",
            _ => "inStockStoreId",
        }
    }

    /// The sort key attribute.
    pub fn sort_attr(self) -> &'static str {
        match self {
            Index::ByStore | Index::InStockByTitle => "listSk",
            Index::ByStorePrice | Index::InStockByPrice => "priceSk",
            Index::ByStoreNewest | Index::InStockByNewest => "newSk",
        }
    }
}

/// Where a summary stands in one index. Every sort key ends in the product id, so a position
/// holds at most one item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IndexPosition {
    pub index: Index,
    pub partition: String,
    pub sort: String,
}

/// Every index position `summary` holds, from [`index_keys`] (the one place they are built).
pub fn positions(summary: &ProductSummary) -> Vec<IndexPosition> {
    let keys = index_keys(summary);
    let store = Some(summary.store_id.to_string());
    let in_stock = keys.in_stock_store_id.as_ref().map(|s| s.to_string());
    let list = Some(keys.list_sk);
    [
        (Index::ByStore, &store, &list),
        (Index::ByStorePrice, &store, &keys.price_sk),
        (Index::ByStoreNewest, &store, &keys.new_sk),
        (Index::InStockByTitle, &in_stock, &list),
        (Index::InStockByPrice, &in_stock, &keys.price_sk),
        (Index::InStockByNewest, &in_stock, &keys.new_sk),
    ]
    .into_iter()
    .filter_map(|(index, partition, sort)| {
        Some(IndexPosition {
            index,
            partition: partition.clone()?,
            sort: sort.clone()?,
        })
    })
    .collect()
}

/// The positions `previous` held that `current` does not: where the product must be gone
/// from before its listings are fresh. Only the write knows them, so its check carries them.
pub fn left_positions(
    previous: Option<&ProductSummary>,
    current: Option<&ProductSummary>,
) -> Vec<IndexPosition> {
    let now = current.map(positions).unwrap_or_default();
    let before = previous.map(positions).unwrap_or_default();
    before.into_iter().filter(|p| !now.contains(p)).collect()
}

/// What a listing page shows of a summary under `policy`: the whole card, but stock only as
/// in or out under the quiet policy, whose listings are not revalidated for stock counts.
/// Two summaries with the same view need no listing render between them, which is exactly
/// when [`tags`](crate::tags::tags) emits no store tag (a property test holds it there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingView {
    card: ProductSummary,
    in_stock: bool,
}

/// The [`ListingView`] of `summary`.
pub fn listing_view(summary: &ProductSummary, policy: StockTagPolicy) -> ListingView {
    let mut card = summary.clone();
    if policy == StockTagPolicy::Quiet {
        card.inventory_available = None;
    }
    ListingView {
        in_stock: summary.in_stock(),
        card,
    }
}

/// What one index position must hold for the listings to be fresh: the current view, or
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub position: IndexPosition,
    pub shows: Option<ListingView>,
}

impl Expectation {
    /// Whether the index, holding `seen` at this position, meets it.
    pub fn met(&self, seen: Option<&ProductSummary>, policy: StockTagPolicy) -> bool {
        seen.map(|s| listing_view(s, policy)) == self.shows
    }
}

/// What every position must hold for the listings to show `current` (the summary the table
/// holds now; `None` for a tombstone): `current` at each of its positions, nothing at each of
/// `left` it does not hold.
pub fn expectations(
    current: Option<&ProductSummary>,
    left: &[IndexPosition],
    policy: StockTagPolicy,
) -> Vec<Expectation> {
    let held = current.map(positions).unwrap_or_default();
    let view = current.map(|s| listing_view(s, policy));
    let present = held.iter().map(|p| Expectation {
        position: p.clone(),
        shows: view.clone(),
    });
    let gone = left
        .iter()
        .filter(|p| !held.contains(p))
        .map(|p| Expectation {
            position: p.clone(),
            shows: None,
        });
    present.chain(gone).collect()
}

/// The longest a listing's tags wait for its index, in seconds: past it they go out anyway
/// (counted as `ListingChecksAbandoned`, alarmed), and the storefront's time-based
/// revalidation bounds what is left.
pub const LISTING_CHECK_LIMIT_SECS: u32 = 15 * 60;

/// Seconds until the next check after `waited` seconds of waiting, or `None` once the limit
/// is reached: every second for the first half minute (SQS delays are whole seconds), then a
/// thirtieth of the wait so far, so a lag is overshot by at most 1 s or about 3 %.
pub fn next_check_delay(waited: u32) -> Option<u32> {
    (waited < LISTING_CHECK_LIMIT_SECS).then(|| (waited / 30).clamp(1, 60))
}

/// For this long after the write (ms), a check that does not find the index caught up keeps
/// polling it every [`POLL_MS`] instead of waiting whole seconds of SQS delay: GSI lag is
/// usually under a second, so most listings go out within 200 ms of their index.
pub const FOLLOW_MS: u64 = 10_000;
/// How often a following check polls the index.
pub const POLL_MS: u64 = 200;
/// How long one delivery polls in place before it hands the check back to the queue (with
/// no delay), so an invocation stays short and a batch's checks never hold the function.
pub const IN_PLACE_MS: u64 = 2_000;

/// What a check that did not find the index caught up does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Query the index again in this many ms, in the same invocation.
    PollIn(u64),
    /// Send the check back to the queue, due in this many seconds.
    SendIn(u32),
    /// The limit is reached: queue the tags anyway.
    GiveUp,
}

/// The next step of a check that has waited `waited_ms` since the write, `in_place_ms` of it
/// in this delivery: poll every [`POLL_MS`] while following, then [`next_check_delay`].
pub fn next_check(waited_ms: u64, in_place_ms: u64) -> Next {
    let waited_secs = u32::try_from(waited_ms / 1000).unwrap_or(u32::MAX);
    match next_check_delay(waited_secs) {
        None => Next::GiveUp,
        Some(_) if waited_ms < FOLLOW_MS && in_place_ms < IN_PLACE_MS => Next::PollIn(POLL_MS),
        Some(_) if waited_ms < FOLLOW_MS => Next::SendIn(0),
        Some(delay) => Next::SendIn(delay),
    }
}

/// The wanted positions of one index partition, read together by one Query over the range
/// from the lowest to the highest sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub index: Index,
    pub partition: String,
    /// Lowest and highest wanted sort key.
    pub from: String,
    pub to: String,
    /// How many positions it holds.
    pub wanted: usize,
}

/// The [`Span`]s of `positions`: one per index partition.
pub fn spans<'a>(positions: impl IntoIterator<Item = &'a IndexPosition>) -> Vec<Span> {
    let mut spans: std::collections::BTreeMap<(Index, &str), Span> = Default::default();
    for p in positions {
        spans
            .entry((p.index, p.partition.as_str()))
            .and_modify(|s| {
                if p.sort < s.from {
                    s.from = p.sort.clone();
                }
                if p.sort > s.to {
                    s.to = p.sort.clone();
                }
                s.wanted += 1;
            })
            .or_insert_with(|| Span {
                index: p.index,
                partition: p.partition.clone(),
                from: p.sort.clone(),
                to: p.sort.clone(),
                wanted: 1,
            });
    }
    spans.into_values().collect()
}

#[cfg(test)]
mod tests;
