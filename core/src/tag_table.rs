//! The keys of the shared tag table (docs/data-model.md, "Tag table"). Pure; the writers are
//! the tag-revalidator (through `catalog::store::TagTable`) and `packages/next-cache-handler` (a storefront's
//! own `revalidateTag`), the readers are that package's instances, and all must agree on every
//! key below.
//!
//! Per storefront, two kinds of item:
//! - the **counter**, `pk = seq#{storefront}`, `sk = seq`: `last`, the last log position
//!   handed out. A writer takes a position with one atomic `ADD`; a reader reads it to know
//!   which positions exist.
//! - the **log item**, `pk = log#{storefront}#{position / LOG_SPAN}`, `sk = {position:020}`:
//!   the tags of one revalidation. Written only if absent, so a reader that gives up on a
//!   position (writes a void there) and a late writer cannot both win: the loser of the two
//!   learns it and the writer takes a new position. Readers read by position, not by time: an
//!   item is read however late it lands, and no clock is compared with another.
//!
//! No item per tag: no reader asks for a tag by name, and one would cost a write per tag.

/// Log positions per log partition: at 100 tags an item, 1,000 positions hold 100,000 tags.
pub const LOG_SPAN: u64 = 1_000;
/// How long a log item is kept: far longer than any instance may fall behind before it drops
/// its whole cache instead of reading the log (docs/data-model.md).
pub const LOG_TTL_SECS: i64 = 24 * 60 * 60;
/// The most tags one log item holds (about 6 KB of tags).
pub const LOG_ITEM_TAGS: usize = 100;
/// The sort key of the counter item.
pub const SEQ_SK: &str = "seq";

/// The longest storefront name: a name goes into every key.
pub const MAX_STOREFRONT_LEN: usize = 64;

/// Whether `name` can name a storefront: 1 to 64 of `A-Z a-z 0-9 _ -`, so that no name is a
/// prefix of another's key with a `#` in it.
pub fn valid_storefront(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_STOREFRONT_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The counter item's partition.
pub fn seq_pk(storefront: &str) -> String {
    format!("seq#{storefront}")
}

/// The log partition holding `position`.
pub fn log_pk(storefront: &str, position: u64) -> String {
    format!("log#{storefront}#{}", position / LOG_SPAN)
}

/// A log item's sort key: zero-padded so that text order is position order.
pub fn log_sk(position: u64) -> String {
    format!("{position:020}")
}

/// The epoch second at which DynamoDB may delete the log item written at `at_ms`.
pub fn log_expires_at(at_ms: i64) -> i64 {
    at_ms.div_euclid(1000) + LOG_TTL_SECS
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn log_keys_sort_by_position_within_and_across_partitions(a: u64, b: u64) {
            prop_assert_eq!(a.cmp(&b), log_sk(a).cmp(&log_sk(b)));
            let partition = |p: u64| log_pk("s", p)["log#s#".len()..].parse::<u64>().unwrap();
            prop_assert!(partition(a.min(b)) <= partition(a.max(b)));
            prop_assert_eq!(partition(a), a / LOG_SPAN);
        }
    }

    #[test]
    fn keys_are_the_contracts() {
        let contract = crate::testing::contract("tag-table.json");
        let constants = &contract["constants"];
        assert_eq!(constants["logSpan"], LOG_SPAN);
        assert_eq!(constants["logTtlSecs"], LOG_TTL_SECS);
        assert_eq!(constants["logItemTags"], LOG_ITEM_TAGS);
        assert_eq!(constants["seqSk"], SEQ_SK);
        assert_eq!(constants["maxStorefrontLen"], MAX_STOREFRONT_LEN);
        for v in contract["keys"].as_array().unwrap() {
            let (storefront, position) = (
                v["storefront"].as_str().unwrap(),
                v["position"].as_u64().unwrap(),
            );
            assert_eq!(seq_pk(storefront), v["seqPk"], "{v}");
            assert_eq!(log_pk(storefront, position), v["logPk"], "{v}");
            assert_eq!(log_sk(position), v["logSk"], "{v}");
        }
        for v in contract["expiresAt"].as_array().unwrap() {
            assert_eq!(
                log_expires_at(v["atMs"].as_i64().unwrap()),
                v["expiresAt"],
                "{v}"
            );
        }
        let names = |kind: &str| contract["storefronts"][kind].as_array().unwrap().clone();
        for name in names("valid") {
            assert!(valid_storefront(name.as_str().unwrap()), "{name}");
        }
        for name in names("invalid") {
            assert!(!valid_storefront(name.as_str().unwrap()), "{name}");
        }
    }
}
