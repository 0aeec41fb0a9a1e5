//! Each segment's progress through its steps, so that a duplicated segment message (SQS
//! delivers at least once; a continuation can be sent twice when an invocation fails after
//! sending it) neither repeats the work nor counts it twice.
//!
//! A segment's messages are numbered (`step`). One item per run and segment holds the step
//! that may run next:
//! - **claim**: a delivery of step `n` runs only if the item is at `n` and no other delivery
//!   holds it (the holder's own redelivery may take it back; another delivery only once the
//!   holder's lease has passed);
//! - **commit**: before queueing step `n + 1` (or reporting a finished segment), the holder
//!   moves the item from `n` to `n + 1`, conditional on still holding it, and keeps the
//!   continuation's body in the item.
//!
//! The commit is the check; the lease only saves work. If a holder's lease passes while it is
//! still running (a clock ahead of the holder's, or a lease shorter than the invocation), a
//! second delivery may run the same step, but only one of the two commits: the other's counts
//! and continuation are dropped, so nothing is counted twice and no second chain forks.
//! If queueing the continuation fails after the commit, the message's own redelivery finds
//! the item at `n + 1` committed by itself and sends the kept body again.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::fault::{classify, Fault};
use crate::store::{conditional, Item, Write};

/// How long a segment's progress is kept: longer than SQS keeps any message (14 days).
pub const PROGRESS_TTL_SECS: i64 = 15 * 24 * 60 * 60;

/// What the item says about a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// The step that may run next.
    pub step: u32,
    /// The delivery (SQS message id) running it, and until when (epoch ms) it may.
    pub holder: Option<(String, i64)>,
    /// The delivery that committed the previous step, and the continuation it queued.
    pub committed_by: Option<String>,
    pub next: Option<String>,
}

/// What a delivery of a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Run the step.
    Run,
    /// This delivery committed the step and then failed: queue its continuation again.
    Resend(String),
    /// Another delivery ran or is running this step: do nothing, successfully.
    Duplicate(&'static str),
    /// The step is ahead of the segment's progress: no commit ever queued it.
    Unknown,
}

/// What a delivery of `step` does when its claim was refused, given the item it found
/// (`None`: no item). Pure; the store calls it.
pub fn refused(found: Option<&Progress>, step: u32, delivery: &str) -> Claim {
    let Some(found) = found else {
        return Claim::Unknown;
    };
    if found.step == step + 1 && found.committed_by.as_deref() == Some(delivery) {
        if let Some(next) = &found.next {
            return Claim::Resend(next.clone());
        }
    }
    match found.step {
        s if s > step => Claim::Duplicate("a later step has run"),
        s if s == step => Claim::Duplicate("another delivery holds this step"),
        _ => Claim::Unknown,
    }
}

/// The progress table.
#[derive(Debug, Clone)]
pub struct ProgressStore {
    client: Client,
    table: String,
}

fn key(run_id: &str, segment: u32) -> Item {
    HashMap::from([(
        "segmentKey".to_owned(),
        AttributeValue::S(format!("{run_id}#{segment}")),
    )])
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl ProgressStore {
    /// A store over the table named `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Claims `step` of a segment for `delivery` until `lease_until` (epoch ms, the
    /// invocation's deadline); `now` is this machine's clock.
    pub async fn claim(
        &self,
        (run_id, segment): (&str, u32),
        step: u32,
        delivery: &str,
        (now, lease_until): (i64, i64),
    ) -> Result<Claim, Fault> {
        let free =
            "step = :step AND (attribute_not_exists(holder) OR holder = :me OR leaseUntil < :now)";
        let condition = match step {
            0 => format!("attribute_not_exists(step) OR ({free})"),
            _ => free.to_owned(),
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(run_id, segment)))
            .update_expression(
                "SET step = :step, holder = :me, leaseUntil = :until, expiresAt = :ttl",
            )
            .condition_expression(condition)
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":me", AttributeValue::S(delivery.to_owned()))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":until", n(lease_until))
            .expression_attribute_values(":ttl", n(now / 1000 + PROGRESS_TTL_SECS))
            .send()
            .await;
        match conditional(result, "UpdateItem claim segment step")? {
            Write::Applied => Ok(Claim::Run),
            Write::Conflict => {
                let found = self.get(run_id, segment).await?;
                Ok(refused(found.as_ref(), step, delivery))
            }
        }
    }

    /// Moves the segment from `step` to `step + 1` if `delivery` still holds it, keeping
    /// `next` (the continuation's body, `None` when the segment is finished). `Conflict`: the
    /// step was taken over; drop this delivery's results.
    pub async fn commit(
        &self,
        (run_id, segment): (&str, u32),
        step: u32,
        delivery: &str,
        next: Option<&str>,
    ) -> Result<Write, Fault> {
        let request = self.client.update_item();
        let request = match next {
            Some(body) => request
                .update_expression("SET step = :next, committedBy = :me, nextBody = :body REMOVE holder, leaseUntil")
                .expression_attribute_values(":body", AttributeValue::S(body.to_owned())),
            None => request.update_expression(
                "SET step = :next, committedBy = :me REMOVE holder, leaseUntil, nextBody",
            ),
        };
        let result = request
            .table_name(&self.table)
            .set_key(Some(key(run_id, segment)))
            .condition_expression("step = :step AND holder = :me")
            .expression_attribute_values(":step", n(step))
            .expression_attribute_values(":next", n(step + 1))
            .expression_attribute_values(":me", AttributeValue::S(delivery.to_owned()))
            .send()
            .await;
        conditional(result, "UpdateItem commit segment step")
    }

    /// The segment's progress (a consistent read), if it has any.
    pub async fn get(&self, run_id: &str, segment: u32) -> Result<Option<Progress>, Fault> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(run_id, segment)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("GetItem segment progress", e))?;
        Ok(output.item.map(|item| decode(&item)))
    }
}

fn decode(item: &Item) -> Progress {
    let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let num = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    Progress {
        step: num("step").unwrap_or_default() as u32,
        holder: s("holder").zip(num("leaseUntil")),
        committed_by: s("committedBy"),
        next: s("nextBody"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(step: u32, committed_by: Option<&str>, next: Option<&str>) -> Progress {
        Progress {
            step,
            holder: None,
            committed_by: committed_by.map(str::to_owned),
            next: next.map(str::to_owned),
        }
    }

    #[test]
    fn the_committing_delivery_resends_its_continuation_and_no_other_does() {
        let found = at(4, Some("m1"), Some("{step 4}"));
        assert_eq!(
            refused(Some(&found), 3, "m1"),
            Claim::Resend("{step 4}".into())
        );
        assert!(matches!(
            refused(Some(&found), 3, "m2"),
            Claim::Duplicate(_)
        ));
        assert!(matches!(
            refused(Some(&found), 2, "m1"),
            Claim::Duplicate(_)
        ));
    }

    #[test]
    fn a_finished_segment_resends_nothing() {
        let found = at(4, Some("m1"), None);
        assert!(matches!(
            refused(Some(&found), 3, "m1"),
            Claim::Duplicate(_)
        ));
    }

    #[test]
    fn a_held_step_is_a_duplicate_and_a_step_never_queued_is_unknown() {
        let held = Progress {
            holder: Some(("m1".into(), i64::MAX)),
            ..at(3, None, None)
        };
        assert!(matches!(refused(Some(&held), 3, "m2"), Claim::Duplicate(_)));
        assert_eq!(refused(Some(&held), 5, "m2"), Claim::Unknown);
        assert_eq!(refused(None, 1, "m2"), Claim::Unknown);
    }
}
