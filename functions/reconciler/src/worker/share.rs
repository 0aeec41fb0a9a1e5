//! What a reconcile worker is given: its share of the catalog, and where to resume it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use catalog::store::Slice;
use catalog_core::ids::{ProductId, StoreId};

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
    /// Nothing left but queueing the checkpoint's `unsent` tags.
    Done,
}

/// Where a worker got to: resume here after a timeout instead of starting over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub phase: Phase,
    /// The page key to continue from (all key attributes are strings); `None`: the start.
    #[serde(default)]
    pub start_key: Option<BTreeMap<String, String>>,
    /// Products repaired (and counted) whose tags could not be queued: their outboxes hold
    /// them. The next step queues them before anything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unsent: Vec<ProductId>,
}

impl Checkpoint {
    /// The beginning of a share.
    pub fn start() -> Self {
        Self::at(Phase::Products, None)
    }

    /// `phase` from `start_key`, with nothing unsent.
    pub fn at(phase: Phase, start_key: Option<BTreeMap<String, String>>) -> Self {
        Self {
            phase,
            start_key,
            unsent: Vec::new(),
        }
    }
}

impl Share {
    /// What a page of this share reads.
    pub(super) fn slice(&self) -> Slice {
        match &self.store_id {
            Some(store) => Slice::Store(store.clone()),
            None => Slice::Segment {
                segment: self.segment,
                total: self.total_segments,
            },
        }
    }
}
