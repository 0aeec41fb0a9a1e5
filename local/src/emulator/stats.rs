//! Counters the local stack keeps while it runs, for its status screen and its tests.

use std::sync::atomic::{AtomicU64, Ordering};

/// What one event source mapping has done so far. Every field only grows, except the last lag.
#[derive(Debug, Default)]
pub struct Stats {
    /// Records (stream records or messages) a function handled successfully.
    pub records: AtomicU64,
    /// Invocations of the function.
    pub invocations: AtomicU64,
    /// Invocations whose batch, or part of it, had to be retried.
    pub retries: AtomicU64,
    /// Invocations that ended in a function error.
    pub errors: AtomicU64,
    /// Records given up on and sent to the failure destination (stream) or left to the
    /// queue's redrive policy (SQS).
    pub given_up: AtomicU64,
    /// Milliseconds from reading the newest handled record (its stream poll, or its receive)
    /// to the end of its handling. Not from the write: DynamoDB Local stamps stream records
    /// too coarsely to measure that (the freshness benchmark measures it end to end).
    pub last_lag_ms: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub records: u64,
    pub invocations: u64,
    pub retries: u64,
    pub errors: u64,
    pub given_up: u64,
    pub last_lag_ms: u64,
}

impl Stats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            records: get(&self.records),
            invocations: get(&self.invocations),
            retries: get(&self.retries),
            errors: get(&self.errors),
            given_up: get(&self.given_up),
            last_lag_ms: get(&self.last_lag_ms),
        }
    }
}
