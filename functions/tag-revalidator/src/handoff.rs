//! What a tag-queue batch hands to the retry queue: for each target that failed some of its
//! calls, the tags it did not take, in messages naming it. The original messages are then done
//! for every target: the healthy ones are not called again, and the failing one is retried,
//! held back and dead-lettered on the retry queue on its own, never in front of first
//! revalidations. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use catalog_core::messages::{TagMessage, MAX_TAGS_PER_MESSAGE};
use catalog_core::tags::Tag;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::backoff::backoff;
use crate::plan::Plan;

/// One retry message and the tag-queue messages it stands in for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub message: TagMessage,
    /// The tag-queue messages whose tags for this target it carries.
    pub waiting: BTreeSet<String>,
    /// How long the retry queue holds it before its first delivery.
    pub delay: Duration,
}

/// A call that failed: its index in the plan, the target's name, and the `Retry-After` the
/// target asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub call: usize,
    pub target: String,
    pub retry_after: Option<Duration>,
}

/// One target's failures: the tags, the messages behind them, the longest `Retry-After`.
type Failed<'a> = (BTreeSet<&'a Tag>, BTreeSet<&'a String>, Option<Duration>);

/// The retry messages for the `failures` of calls that went to every target (calls of
/// messages that already name one are retried by their own queue).
pub fn handoffs(plan: &Plan, failures: &[Failure], now: DateTime<Utc>) -> Vec<Handoff> {
    let mut by_target: BTreeMap<&str, Failed> = BTreeMap::new();
    for failure in failures.iter().filter(|f| plan.targets[f.call].is_none()) {
        let (tags, waiting, after) = by_target.entry(&failure.target).or_default();
        tags.extend(&plan.calls[failure.call]);
        waiting.extend(&plan.waiting[failure.call]);
        *after = (*after).max(failure.retry_after);
    }
    let mut out = Vec::new();
    for (target, (tags, waiting, after)) in by_target {
        let event_time = waiting
            .iter()
            .filter_map(|id| plan.messages.get(*id))
            .map(|m| m.event_time.clone())
            .min_by_key(|t| DateTime::parse_from_rfc3339(t).ok())
            .unwrap_or_else(|| now.to_rfc3339_opts(SecondsFormat::Millis, true));
        let tags: Vec<Tag> = tags.into_iter().cloned().collect();
        for chunk in tags.chunks(MAX_TAGS_PER_MESSAGE) {
            out.push(Handoff {
                message: TagMessage {
                    version: 1,
                    tags: chunk.to_vec(),
                    event_time: event_time.clone(),
                    enqueued_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
                    target: Some(target.to_owned()),
                },
                waiting: waiting.iter().map(|id| (*id).clone()).collect(),
                delay: backoff(1, after),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::plan::{plan, Incoming};

    fn body(tags: &[String], target: Option<&str>) -> String {
        serde_json::json!({"version": 1, "tags": tags, "eventTime": "2026-11-26T00:00:00.000Z",
            "enqueuedAt": "2026-11-26T00:00:00.100Z", "target": target})
        .to_string()
    }

    proptest! {
        /// Every tag a target failed is handed to it, no other target gets a message, and
        /// every message behind a failed call waits on a handoff.
        #[test]
        fn a_target_gets_back_exactly_the_tags_it_failed(
            messages in proptest::collection::vec(proptest::collection::vec("[a-e]", 1..6), 1..8),
            failed in proptest::collection::vec((0usize..20, prop_oneof![Just("a"), Just("b")]), 0..6),
            max in 1usize..4,
        ) {
            let bodies: Vec<String> = messages.iter()
                .map(|t| body(&t.iter().map(|id| format!("product:{id}")).collect::<Vec<_>>(), None))
                .collect();
            let ids: Vec<String> = (0..bodies.len()).map(|i| format!("m{i}")).collect();
            let batch: Vec<Incoming> = ids.iter().zip(&bodies)
                .map(|(id, b)| Incoming { message_id: id, body: b }).collect();
            let plan = plan(&batch, max);
            let failures: Vec<Failure> = failed.iter()
                .filter(|(call, _)| *call < plan.calls.len())
                .map(|(call, target)| Failure { call: *call, target: (*target).into(), retry_after: None })
                .collect();
            let out = handoffs(&plan, &failures, Utc::now());
            for target in ["a", "b"] {
                let wanted: BTreeSet<&Tag> = failures.iter().filter(|f| f.target == target)
                    .flat_map(|f| &plan.calls[f.call]).collect();
                let handed: BTreeSet<&Tag> = out.iter()
                    .filter(|h| h.message.target.as_deref() == Some(target))
                    .flat_map(|h| &h.message.tags).collect();
                prop_assert_eq!(wanted, handed);
            }
            for f in &failures {
                for id in &plan.waiting[f.call] {
                    prop_assert!(out.iter().any(|h| h.message.target.as_deref() == Some(f.target.as_str()) && h.waiting.contains(id)));
                }
            }
            prop_assert!(out.iter().all(|h| h.message.tags.len() <= MAX_TAGS_PER_MESSAGE && h.delay >= Duration::from_secs(2)));
        }
    }

    #[test]
    fn a_retry_message_is_not_handed_off_again() {
        let only = body(&["product:p1".into()], Some("a"));
        let plan = plan(
            &[Incoming {
                message_id: "r",
                body: &only,
            }],
            128,
        );
        let failures = [Failure {
            call: 0,
            target: "a".into(),
            retry_after: None,
        }];
        assert!(handoffs(&plan, &failures, Utc::now()).is_empty());
    }
}
