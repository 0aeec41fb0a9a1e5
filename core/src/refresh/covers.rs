//! The safe skip: which source rows a stored summary was computed from, by the version each
//! row had when its writer read it, so that a stream record the summary provably covers costs
//! no write.
//!
//! Why a covered record can be skipped: a write at revision `n` read its rows after the write
//! before it landed, and every later write reads `n` (or later) before its rows. If the rows
//! read for `n` already held a record's change, every summary from `n` on was computed from
//! rows at least that new, so the record adds nothing. Versions show "held" only where they
//! are comparable: the record's write raised its row's version (an INSERT, or a MODIFY whose
//! new image's `version` is above its old image's; a REMOVE and a writer that forgets to raise
//! it are never covered), and the version read belongs to the same life of the row. That
//! second condition is where the stream's per-item order comes in: Lambda hands a row's
//! records to the projector in order (with any `ParallelizationFactor`), and a REMOVE is
//! refreshed before any later record of its row is looked at, so the versions a later record
//! is compared with were read after it; a row present in such a read was created after it.
//! `model_check.rs` checks the protocol with the skip, and fails with each of those conditions
//! dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Stored;
use crate::ids::LocationId;
use crate::model::{InventoryRow, Product};

/// The bytes the stock versions may add to a summary item (see [`entry_bytes`]). A product stocked in more locations keeps none (its stock records are then never
/// covered), so a summary item (about 250 bytes) stays within one 1 KB write unit.
pub const STOCK_VERSIONS_BUDGET: usize = 400;

/// What one location's version adds to the item, at most, by DynamoDB's item-size rules: the
/// name's bytes, a number's one byte per two significant digits plus one (11 for any `u64`),
/// and one byte per map element.
fn entry_bytes(row: &InventoryRow) -> usize {
    row.location_id.as_str().len() + 12
}

/// The version of each source row the write that stored a summary read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Covers {
    /// The Products row's version; `None`: there was no row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<u64>,
    /// Each stock row's version, by location; `None`: the rows were not read (untracked or
    /// absent product) or were more than [`STOCK_VERSIONS_BUDGET`] holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stock: Option<BTreeMap<LocationId, u64>>,
}

impl Covers {
    /// What a refresh read: the product, and its stock rows if it read them.
    pub fn read(product: Option<&Product>, stock: Option<&[InventoryRow]>) -> Self {
        let stock = stock
            .filter(|rows| rows.iter().map(entry_bytes).sum::<usize>() <= STOCK_VERSIONS_BUDGET);
        Self {
            product: product.map(|p| p.version),
            stock: stock.map(|rows| {
                rows.iter()
                    .map(|r| (r.location_id.clone(), r.version))
                    .collect()
            }),
        }
    }

    /// Whether the rows these versions were read from already held `change`.
    pub fn includes(&self, change: &RowChange) -> bool {
        let Some(raised_to) = change.raised_to else {
            return false;
        };
        let read = match &change.row {
            Row::Product => self.product,
            Row::Stock(location) => self.stock.as_ref().and_then(|s| s.get(location).copied()),
        };
        read.is_some_and(|read| read >= raised_to)
    }
}

/// Which source row a stream record is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Row {
    Product,
    Stock(LocationId),
}

/// What a stream record says about its row's version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowChange {
    pub row: Row,
    /// The version the write brought its row to, when a version can place it (see
    /// [`raised_to`]); `None` for a REMOVE, a write that did not raise it, a
    /// record without images.
    pub raised_to: Option<u64>,
}

/// Whether the stored summary covers every one of `changes`, so the product needs no refresh:
/// something is stored with the versions its write read, its outbox is empty (else the refresh
/// must queue what was left), and each change is included. No changes: nothing is shown.
pub fn covered(stored: Option<&Stored>, changes: &[RowChange]) -> bool {
    let Some(stored) = stored else {
        return false;
    };
    let Some(covers) = &stored.covers else {
        return false;
    };
    stored.pending_tags.is_empty()
        && !changes.is_empty()
        && changes.iter().all(|c| covers.includes(c))
}

/// The version a record's write brought its row to, when a version can place the write: a
/// MODIFY whose new image's version is above its old image's, or an INSERT (the row's first
/// version). A REMOVE, or a MODIFY that did not raise the version, is `None` (see
/// [`covered`] for why).
pub fn raised_to(event_name: &str, old: Option<u64>, new: Option<u64>) -> Option<u64> {
    match (event_name, old, new) {
        ("MODIFY", Some(old), Some(new)) if new > old => Some(new),
        ("INSERT", None, Some(new)) => Some(new),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{product, stock};

    #[test]
    fn only_an_insert_or_a_modify_that_raised_its_version_is_placed() {
        assert_eq!(raised_to("MODIFY", Some(3), Some(4)), Some(4));
        assert_eq!(raised_to("MODIFY", Some(4), Some(4)), None);
        assert_eq!(raised_to("MODIFY", Some(5), Some(1)), None);
        assert_eq!(raised_to("INSERT", None, Some(1)), Some(1));
        assert_eq!(raised_to("REMOVE", Some(7), None), None);
        assert_eq!(raised_to("MODIFY", None, Some(2)), None);
    }

    fn location(l: &str) -> LocationId {
        LocationId::parse(l).unwrap()
    }

    fn stored(covers: Option<Covers>, pending: bool) -> Stored {
        let mut pending_tags = crate::tags::TagSet::default();
        if pending {
            pending_tags.insert(crate::tags::Tag::product(
                &crate::ids::ProductId::parse("p1").unwrap(),
            ));
        }
        Stored {
            revision: 3,
            record: None,
            pending_tags,
            expires_at: None,
            deleted_at: None,
            covers,
        }
    }

    #[test]
    fn covers_what_was_read_and_nothing_else() {
        let mut p = product("p1", "s1");
        p.version = 7;
        let rows = [stock("p1", "l1", 5, 0), stock("p1", "l2", 5, 0)];
        let covers = Covers::read(Some(&p), Some(&rows));
        let product_at = |v| RowChange {
            row: Row::Product,
            raised_to: v,
        };
        let stock_at = |l: &str, v| RowChange {
            row: Row::Stock(location(l)),
            raised_to: v,
        };
        assert!(covers.includes(&product_at(Some(7))));
        assert!(!covers.includes(&product_at(Some(8))));
        assert!(!covers.includes(&product_at(None)));
        assert!(covers.includes(&stock_at("l1", Some(rows[0].version))));
        assert!(!covers.includes(&stock_at("l3", Some(1))));
        assert!(!Covers::read(None, None).includes(&product_at(Some(1))));
        assert!(!Covers::read(Some(&p), None).includes(&stock_at("l1", Some(1))));
    }

    #[test]
    fn stock_versions_past_the_budget_are_not_kept() {
        // 40-byte location names: 52 bytes each, so 7 fit in 400 and 8 do not.
        let rows: Vec<_> = (0..8)
            .map(|l| stock("p1", &format!("{l:0>40}"), 1, 0))
            .collect();
        assert_eq!(Covers::read(None, Some(&rows)).stock, None);
        let fewer = &rows[..7];
        assert_eq!(
            Covers::read(None, Some(fewer)).stock.map(|s| s.len()),
            Some(7)
        );
    }

    proptest! {
        /// A product is skipped only when something is stored with its versions, its outbox
        /// is empty and every change is included.
        #[test]
        fn covered_needs_versions_an_empty_outbox_and_every_change(
            read in proptest::option::of(0u64..5),
            raised in proptest::collection::vec(proptest::option::of(0u64..5), 0..4),
            known in any::<bool>(),
            pending in any::<bool>(),
        ) {
            let covers = Covers { product: read, stock: None };
            let changes: Vec<RowChange> = raised
                .iter()
                .map(|&raised_to| RowChange { row: Row::Product, raised_to })
                .collect();
            let stored = stored(known.then(|| covers.clone()), pending);
            let expected = known
                && !pending
                && !changes.is_empty()
                && changes.iter().all(|c| matches!((read, c.raised_to), (Some(r), Some(v)) if r >= v));
            prop_assert_eq!(covered(Some(&stored), &changes), expected);
            prop_assert!(!covered(None, &changes));
        }
    }
}
