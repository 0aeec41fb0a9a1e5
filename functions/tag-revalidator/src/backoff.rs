//! How long a failed tag message is held back before SQS delivers it again, and so how long a
//! storefront can be down before a message is dead-lettered. Pure.
//!
//! Doubling from 2 s to at most 5 minutes, and never less than the endpoint's `Retry-After`:
//! a storefront that answers `Retry-After: 0` while it deploys must not burn through the
//! queue's receives in seconds. With the tag queue's `maxReceiveCount` of 20 (template.yaml),
//! a message survives [`patience`]`(20)` = 68.5 minutes of failed deliveries: a storefront down
//! or deploying for up to an hour loses no invalidation.

use std::time::Duration;

/// The longest exponential hold between two deliveries.
pub const MAX_EXPONENTIAL: Duration = Duration::from_secs(300);
/// The longest hold at all, whatever the endpoint asks for.
pub const MAX_HOLD: Duration = Duration::from_secs(900);

/// The hold after the `received`-th failed delivery (1 for the first).
pub fn backoff(received: u32, retry_after: Option<Duration>) -> Duration {
    let exponential = Duration::from_secs(1 << received.clamp(1, 9)).min(MAX_EXPONENTIAL);
    retry_after
        .unwrap_or_default()
        .max(exponential)
        .min(MAX_HOLD)
}

/// How long a message that fails every delivery lives before the queue dead-letters it, when
/// the queue's `maxReceiveCount` is `max_receive_count` (the least, with no `Retry-After`).
pub fn patience(max_receive_count: u32) -> Duration {
    (1..=max_receive_count).map(|r| backoff(r, None)).sum()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn doubles_from_two_seconds_to_five_minutes() {
        let holds: Vec<u64> = (1..=10).map(|r| backoff(r, None).as_secs()).collect();
        assert_eq!(holds, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    #[test]
    fn twenty_deliveries_outlast_an_hour_of_outage() {
        assert!(
            patience(20) >= Duration::from_secs(3600),
            "{:?}",
            patience(20)
        );
        assert!(patience(19) >= Duration::from_secs(3600));
        assert!(
            patience(5) < Duration::from_secs(3600),
            "the old queue setting"
        );
    }

    proptest! {
        #[test]
        fn retry_after_only_lengthens_the_hold(received in 0u32..100, after in 0u64..5000) {
            let plain = backoff(received, None);
            let asked = backoff(received, Some(Duration::from_secs(after)));
            prop_assert!(asked >= plain);
            prop_assert!(asked <= MAX_HOLD);
            prop_assert!(asked >= Duration::from_secs(after).min(MAX_HOLD));
        }
    }
}
