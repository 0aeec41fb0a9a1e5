//! The keys of the shared tag table (docs/data-model.md, "Tag table"). Pure; the writer is the
//! tag-revalidator's `tag_table` module, the readers are `packages/next-cache-handler`, and
//! both must agree on every key below.
//!
//! Per storefront, two kinds of item:
//! - the **tag item**, `pk = tags#{storefront}`, `sk = {tag}`, holds `revalidatedAt`, the
//!   latest time the tag was revalidated; an instance loads the whole partition at start;
//! - the **log item**, `pk = log#{storefront}#{minute}`, `sk = {at:013}#{tag}`, records one
//!   revalidation; instances read the current minute's partition from where they left off,
//!   and DynamoDB's TTL removes it after [`LOG_TTL_SECS`].

use crate::tags::Tag;

/// A log partition holds one minute of revalidations.
pub const LOG_BUCKET_MS: i64 = 60_000;
/// How long a log item is kept: far longer than any instance polls late.
pub const LOG_TTL_SECS: i64 = 24 * 60 * 60;

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

/// The partition holding every tag item of `storefront`.
pub fn tags_pk(storefront: &str) -> String {
    format!("tags#{storefront}")
}

/// The log partition of the minute holding `at_ms` (milliseconds since the epoch).
pub fn log_pk(storefront: &str, at_ms: i64) -> String {
    format!("log#{storefront}#{}", at_ms.div_euclid(LOG_BUCKET_MS))
}

/// A log item's sort key: zero-padded so that text order is time order.
pub fn log_sk(at_ms: i64, tag: &Tag) -> String {
    format!("{at_ms:013}#{}", tag.as_str())
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
        fn log_keys_sort_by_time_within_and_across_minutes(
            a in 1_600_000_000_000i64..2_600_000_000_000,
            b in 1_600_000_000_000i64..2_600_000_000_000,
            tag in "[a-z]{1,8}",
        ) {
            let tag = Tag::parse(format!("product:{tag}")).unwrap();
            prop_assert_eq!(a.cmp(&b), log_sk(a, &tag).cmp(&log_sk(b, &tag)));
            let bucket = |ms: i64| log_pk("s", ms)["log#s#".len()..].parse::<i64>().unwrap();
            prop_assert!(bucket(a.min(b)) <= bucket(a.max(b)));
            prop_assert_eq!(bucket(a), a / LOG_BUCKET_MS);
        }
    }

    #[test]
    fn keys_are_the_documented_ones() {
        let tag = Tag::parse("store:s1:products").unwrap();
        assert_eq!(tags_pk("web"), "tags#web");
        assert_eq!(log_pk("web", 1_795_000_000_123), "log#web#29916666");
        assert_eq!(
            log_sk(1_795_000_000_123, &tag),
            "1795000000123#store:s1:products"
        );
        assert_eq!(log_expires_at(1_795_000_000_123), 1_795_086_400);
        assert!(valid_storefront("web-eu_1"));
        for bad in ["", "a#b", "a b", &"x".repeat(65)] {
            assert!(!valid_storefront(bad), "{bad:?}");
        }
    }
}
