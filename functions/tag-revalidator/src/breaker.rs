//! Which targets this container skips on the tag queue for a while: a target that just failed
//! (a hung storefront costs a full timeout a call) would make every batch wait on it again, and
//! the healthy storefronts' revalidations behind it. While a target is skipped, the tag queue's
//! batches hand its tags straight to the retry queue, which keeps calling it; the first call
//! after [`OPEN_FOR`] tries it on the tag queue again. A speed choice only: a skipped target
//! loses nothing, whatever the period.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a failed target is skipped on the tag queue.
pub const OPEN_FOR: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Breaker {
    open_until: Mutex<HashMap<String, Instant>>,
}

impl Breaker {
    /// Whether `target` failed within the last [`OPEN_FOR`].
    pub fn is_open(&self, target: &str) -> bool {
        let open = self.open_until.lock().unwrap_or_else(|e| e.into_inner());
        open.get(target)
            .is_some_and(|until| Instant::now() < *until)
    }

    /// Skips `target` for [`OPEN_FOR`] from now.
    pub fn trip(&self, target: &str) {
        let mut open = self.open_until.lock().unwrap_or_else(|e| e.into_inner());
        open.insert(target.to_owned(), Instant::now() + OPEN_FOR);
    }

    /// `target` answered: call it again at once.
    pub fn close(&self, target: &str) {
        let mut open = self.open_until.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tripped_target_is_skipped_until_it_answers() {
        let breaker = Breaker::default();
        assert!(!breaker.is_open("a"));
        breaker.trip("a");
        assert!(breaker.is_open("a") && !breaker.is_open("b"));
        breaker.close("a");
        assert!(!breaker.is_open("a"));
    }
}
