//! Cache tags and the pure diff that decides which ones a summary change invalidates.
//!
//! The storefront tags its fetches with the same strings: a product page with
//! `product:{id}` and `inventory:{id}`, a store listing with `store:{storeId}:products`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{ProductId, StoreId};
use crate::model::ProductSummary;

/// Next.js rejects a tag longer than this.
pub const MAX_TAG_LEN: usize = 256;

/// A cache tag, at most [`MAX_TAG_LEN`] bytes, no whitespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tag(String);

/// Why a string is not a tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cache tag {0:?}: tags are 1 to {MAX_TAG_LEN} bytes with no whitespace")]
pub struct InvalidTag(pub String);

impl Tag {
    /// Parses a tag from outside (an SQS body, a request).
    pub fn parse(value: impl Into<String>) -> Result<Self, InvalidTag> {
        let value = value.into();
        let valid = !value.is_empty()
            && value.len() <= MAX_TAG_LEN
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(value))
        } else {
            Err(InvalidTag(value))
        }
    }

    /// `product:{productId}`: the product's own page.
    pub fn product(id: &ProductId) -> Self {
        Self(format!("product:{id}"))
    }

    /// `inventory:{productId}`: the product's stock display.
    pub fn inventory(id: &ProductId) -> Self {
        Self(format!("inventory:{id}"))
    }

    /// `store:{storeId}:products`: the store's listing pages.
    pub fn store_products(store: &StoreId) -> Self {
        Self(format!("store:{store}:products"))
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pages this tag stands for read a listing index, whose reads are always
    /// eventually consistent: such a tag goes out only once the index shows the write (see
    /// [`crate::listing::check`]).
    pub fn reads_listing_index(&self) -> bool {
        self.0.starts_with("store:") && self.0.ends_with(":products")
    }
}

impl TryFrom<String> for Tag {
    type Error = InvalidTag;
    fn try_from(value: String) -> Result<Self, InvalidTag> {
        Self::parse(value)
    }
}

impl From<Tag> for String {
    fn from(tag: Tag) -> String {
        tag.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of tags in a stable order.
pub type TagSet = BTreeSet<Tag>;

/// When a stock change invalidates the store listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StockTagPolicy {
    /// Every change of `inventoryAvailable` invalidates the listing (listings show counts).
    #[default]
    Eager,
    /// Only going in or out of stock does, so a busy store's listing stays cached.
    Quiet,
}

/// A policy name that is neither `eager` nor `quiet`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stock tag policy {0:?}: expected \"eager\" or \"quiet\"")]
pub struct UnknownPolicy(pub String);

impl StockTagPolicy {
    /// The name `STOCK_TAG_POLICY` takes, which [`FromStr`] reads back.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eager => "eager",
            Self::Quiet => "quiet",
        }
    }
}

impl FromStr for StockTagPolicy {
    type Err = UnknownPolicy;
    fn from_str(s: &str) -> Result<Self, UnknownPolicy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "eager" => Ok(Self::Eager),
            "quiet" => Ok(Self::Quiet),
            _ => Err(UnknownPolicy(s.to_owned())),
        }
    }
}

/// Every tag a summary appears under.
pub fn all_tags(summary: &ProductSummary) -> TagSet {
    TagSet::from([
        Tag::product(&summary.product_id),
        Tag::inventory(&summary.product_id),
        Tag::store_products(&summary.store_id),
    ])
}

/// The tags to invalidate when a product's summary goes from `old` to `new` (`None`: absent).
///
/// A create or delete invalidates every tag the summary is (or was) under; a store move
/// invalidates both stores' listings; a change to nothing a page shows invalidates nothing.
/// The diff is symmetric: `tags(a, b) == tags(b, a)`.
pub fn tags(
    old: Option<&ProductSummary>,
    new: Option<&ProductSummary>,
    policy: StockTagPolicy,
) -> TagSet {
    let (old, new) = match (old, new) {
        (None, None) => return TagSet::new(),
        (Some(only), None) | (None, Some(only)) => return all_tags(only),
        (Some(old), Some(new)) => (old, new),
    };
    let card_changed = old.title != new.title
        || old.price != new.price
        || old.active != new.active
        || old.primary_image_url != new.primary_image_url
        || old.created_at != new.created_at
        || old.store_id != new.store_id;
    let stock_changed = old.inventory_available != new.inventory_available;
    let listing_changed = card_changed
        || match policy {
            StockTagPolicy::Eager => stock_changed,
            StockTagPolicy::Quiet => old.in_stock() != new.in_stock(),
        };

    let mut set = TagSet::new();
    if card_changed {
        set.insert(Tag::product(&new.product_id));
    }
    if stock_changed {
        set.insert(Tag::inventory(&new.product_id));
    }
    if listing_changed {
        set.insert(Tag::store_products(&old.store_id));
        set.insert(Tag::store_products(&new.store_id));
    }
    set
}

/// Every tag `id`'s pages can be under: its product and inventory tags and the listing of
/// each of `stores`. Pure.
pub fn product_tags<'a>(id: &ProductId, stores: impl IntoIterator<Item = &'a StoreId>) -> TagSet {
    let mut tags = TagSet::from([Tag::product(id), Tag::inventory(id)]);
    tags.extend(stores.into_iter().map(Tag::store_products));
    tags
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ids::StoreId;
    use crate::testing::arb_summary;

    fn tag_strings(set: &TagSet) -> Vec<&str> {
        set.iter().map(Tag::as_str).collect()
    }

    #[test]
    fn tags_are_the_contracts() {
        let contract = crate::testing::contract("cache-tags.json");
        for v in contract["products"].as_array().unwrap() {
            let id = ProductId::parse(v["productId"].as_str().unwrap()).unwrap();
            let store = StoreId::parse(v["storeId"].as_str().unwrap()).unwrap();
            assert_eq!(Tag::product(&id).as_str(), v["product"], "{v}");
            assert_eq!(Tag::inventory(&id).as_str(), v["inventory"], "{v}");
            assert_eq!(Tag::store_products(&store).as_str(), v["store"], "{v}");
        }
    }

    #[test]
    fn store_move_invalidates_both_listings() {
        let old = crate::testing::summary("p1", "s1");
        let mut new = old.clone();
        new.store_id = StoreId::parse("s2").unwrap();
        assert_eq!(
            tag_strings(&tags(Some(&old), Some(&new), StockTagPolicy::Eager)),
            ["product:p1", "store:s1:products", "store:s2:products"]
        );
    }

    #[test]
    fn quiet_policy_ignores_stock_churn_but_not_stock_outs() {
        let old = crate::testing::summary("p1", "s1");
        let mut churn = old.clone();
        churn.inventory_available = Some(old.inventory_available.unwrap() + 1);
        assert_eq!(
            tag_strings(&tags(Some(&old), Some(&churn), StockTagPolicy::Quiet)),
            ["inventory:p1"]
        );
        assert_eq!(
            tag_strings(&tags(Some(&old), Some(&churn), StockTagPolicy::Eager)),
            ["inventory:p1", "store:s1:products"]
        );
        let mut sold_out = old.clone();
        sold_out.inventory_available = Some(0);
        assert_eq!(
            tag_strings(&tags(Some(&old), Some(&sold_out), StockTagPolicy::Quiet)),
            ["inventory:p1", "store:s1:products"]
        );
    }

    #[test]
    fn parse_rejects_bad_tags() {
        assert!(Tag::parse("").is_err());
        assert!(Tag::parse("a b").is_err());
        assert!(Tag::parse("x".repeat(MAX_TAG_LEN + 1)).is_err());
        assert!(Tag::parse("x".repeat(MAX_TAG_LEN)).is_ok());
        assert_eq!("QUIET".parse(), Ok(StockTagPolicy::Quiet));
        assert!("loud".parse::<StockTagPolicy>().is_err());
    }

    fn arb_policy() -> impl Strategy<Value = StockTagPolicy> {
        prop_oneof![Just(StockTagPolicy::Eager), Just(StockTagPolicy::Quiet)]
    }

    proptest! {
        #[test]
        fn unchanged_summary_invalidates_nothing(s in arb_summary(), policy in arb_policy()) {
            prop_assert!(tags(Some(&s), Some(&s), policy).is_empty());
        }

        #[test]
        fn create_and_delete_invalidate_everything(s in arb_summary(), policy in arb_policy()) {
            prop_assert_eq!(tags(None, Some(&s), policy), all_tags(&s));
            prop_assert_eq!(tags(Some(&s), None, policy), all_tags(&s));
        }

        #[test]
        fn diff_is_symmetric(a in arb_summary(), b in arb_summary(), policy in arb_policy()) {
            let b = ProductSummary { product_id: a.product_id.clone(), ..b };
            prop_assert_eq!(tags(Some(&a), Some(&b), policy), tags(Some(&b), Some(&a), policy));
        }

        #[test]
        fn quiet_is_a_subset_of_eager(a in arb_summary(), b in arb_summary()) {
            let b = ProductSummary { product_id: a.product_id.clone(), ..b };
            let quiet = tags(Some(&a), Some(&b), StockTagPolicy::Quiet);
            let eager = tags(Some(&a), Some(&b), StockTagPolicy::Eager);
            prop_assert!(quiet.is_subset(&eager));
        }

        #[test]
        fn any_visible_change_invalidates_the_product_or_its_stock(a in arb_summary(), b in arb_summary(), policy in arb_policy()) {
            let b = ProductSummary { product_id: a.product_id.clone(), ..b };
            let set = tags(Some(&a), Some(&b), policy);
            prop_assert_eq!(set.is_empty(), a == b);
            // Only the two summaries' own tags ever appear.
            let allowed: TagSet = all_tags(&a).union(&all_tags(&b)).cloned().collect();
            prop_assert!(set.is_subset(&allowed));
            if a.store_id != b.store_id {
                prop_assert!(set.contains(&Tag::store_products(&a.store_id)));
                prop_assert!(set.contains(&Tag::store_products(&b.store_id)));
            }
        }

        #[test]
        fn every_tag_fits_next_js(s in arb_summary()) {
            for tag in all_tags(&s) {
                prop_assert!(Tag::parse(tag.as_str()).is_ok());
            }
        }
    }

    #[test]
    fn both_stores_of_a_moved_product_and_no_duplicates() {
        let id = ProductId::parse("p1").unwrap();
        let (a, b) = (StoreId::parse("s1").unwrap(), StoreId::parse("s2").unwrap());
        let tags: Vec<String> = product_tags(&id, [&a, &b, &a])
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(
            tags,
            [
                "inventory:p1",
                "product:p1",
                "store:s1:products",
                "store:s2:products"
            ]
        );
        assert_eq!(product_tags(&id, []).len(), 2);
    }
}
