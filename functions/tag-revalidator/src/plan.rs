//! Which calls a batch of tag messages needs: every tag once per target, in calls of at most
//! the endpoint's limit, and for each call the messages that wait on it. Pure.
//!
//! A message without a target (the tag queue's) goes to every target; one that names a target
//! (the retry queue's, see `handoff`) goes to that target alone, in calls of its own.

use std::collections::{BTreeMap, BTreeSet};

use catalog_core::messages::{json_error_kind, TagMessage};
use catalog_core::tags::Tag;

/// One message of the batch, as far as the plan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming<'a> {
    pub message_id: &'a str,
    pub body: &'a str,
}

/// The calls for a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Each call's tags: every tag of the batch exactly once, sorted.
    pub calls: Vec<Vec<Tag>>,
    /// For each call, the messages that carry one of its tags.
    pub waiting: Vec<BTreeSet<String>>,
    /// For each call, the one target its messages name, or `None` for every target.
    pub targets: Vec<Option<String>>,
    /// Messages whose body is not a tag message, with the reason.
    pub unreadable: Vec<(String, String)>,
    /// The readable messages: id -> its body.
    pub messages: BTreeMap<String, TagMessage>,
}

/// Plans the calls for `batch`, at most `max_tags` tags a call.
pub fn plan(batch: &[Incoming<'_>], max_tags: usize) -> Plan {
    let mut holders: BTreeMap<(Option<String>, Tag), BTreeSet<String>> = BTreeMap::new();
    let mut plan = Plan::default();
    for message in batch {
        match serde_json::from_str::<TagMessage>(message.body) {
            Ok(body) if body.version == 1 => {
                for tag in &body.tags {
                    holders
                        .entry((body.target.clone(), tag.clone()))
                        .or_default()
                        .insert(message.message_id.to_owned());
                }
                plan.messages.insert(message.message_id.to_owned(), body);
            }
            Ok(body) => plan.unreadable.push((
                message.message_id.to_owned(),
                format!("unknown tag message version {}", body.version),
            )),
            Err(e) => plan.unreadable.push((
                message.message_id.to_owned(),
                format!("not a tag message: {}", json_error_kind(&e)),
            )),
        }
    }
    let mut by_target: BTreeMap<Option<String>, Vec<(Tag, BTreeSet<String>)>> = BTreeMap::new();
    for ((target, tag), ids) in holders {
        by_target.entry(target).or_default().push((tag, ids));
    }
    for (target, tags) in by_target {
        for chunk in tags.chunks(max_tags.max(1)) {
            plan.calls
                .push(chunk.iter().map(|(t, _)| t.clone()).collect());
            plan.waiting.push(
                chunk
                    .iter()
                    .flat_map(|(_, ids)| ids.iter().cloned())
                    .collect(),
            );
            plan.targets.push(target.clone());
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn body(tags: &[String]) -> String {
        serde_json::json!({"version": 1, "tags": tags, "eventTime": "2026-11-26T00:00:00.000Z", "enqueuedAt": "2026-11-26T00:00:00.100Z"}).to_string()
    }

    fn arb_tag() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-c]{1,2}".prop_map(|id| format!("product:{id}")),
            "[a-c]{1,2}".prop_map(|id| format!("inventory:{id}")),
            "[a-b]".prop_map(|s| format!("store:{s}:products")),
        ]
    }

    proptest! {
        #[test]
        fn every_tag_goes_once_within_the_limit_and_every_holder_waits_on_it(
            messages in proptest::collection::vec(proptest::collection::vec(arb_tag(), 1..20), 1..12),
            max in 1usize..10,
        ) {
            let bodies: Vec<String> = messages.iter().map(|t| body(t)).collect();
            let ids: Vec<String> = (0..bodies.len()).map(|i| format!("m{i}")).collect();
            let batch: Vec<Incoming> = ids.iter().zip(&bodies)
                .map(|(id, b)| Incoming { message_id: id, body: b }).collect();
            let plan = plan(&batch, max);
            let all: Vec<&Tag> = plan.calls.iter().flatten().collect();
            let unique: BTreeSet<&Tag> = all.iter().copied().collect();
            prop_assert_eq!(all.len(), unique.len(), "a tag was sent twice");
            let wanted: BTreeSet<String> = messages.iter().flatten().cloned().collect();
            let sent: BTreeSet<String> = unique.iter().map(|t| t.to_string()).collect();
            prop_assert_eq!(sent, wanted);
            prop_assert!(plan.calls.iter().all(|c| !c.is_empty() && c.len() <= max));
            prop_assert!(plan.targets.iter().all(Option::is_none));
            for (i, tags) in messages.iter().enumerate() {
                for tag in tags {
                    let call = plan.calls.iter().position(|c| c.iter().any(|t| t.as_str() == tag)).unwrap();
                    prop_assert!(plan.waiting[call].contains(&ids[i]));
                }
            }
        }
    }

    #[test]
    fn unreadable_messages_are_named_and_do_not_block_the_rest() {
        let good = body(&["product:p1".into()]);
        let batch = [
            Incoming {
                message_id: "a",
                body: &good,
            },
            Incoming {
                message_id: "b",
                body: "not json",
            },
            Incoming {
                message_id: "c",
                body: r#"{"version":2,"tags":[],"eventTime":"","enqueuedAt":""}"#,
            },
            Incoming {
                message_id: "d",
                body: r#"{"version":1,"tags":[""],"eventTime":"","enqueuedAt":""}"#,
            },
        ];
        let plan = plan(&batch, 128);
        assert_eq!(plan.calls.len(), 1);
        let bad: Vec<&str> = plan.unreadable.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(bad, ["b", "c", "d"]);
        assert!(plan.unreadable[1].1.contains("version 2"));
    }

    #[test]
    fn a_targeted_message_gets_calls_of_its_own() {
        let all = body(&["product:p1".into()]);
        let only = r#"{"version":1,"tags":["product:p1"],"eventTime":"","enqueuedAt":"","target":"tag-table:web"}"#;
        let batch = [
            Incoming {
                message_id: "a",
                body: &all,
            },
            Incoming {
                message_id: "b",
                body: only,
            },
        ];
        let plan = plan(&batch, 128);
        assert_eq!(plan.targets, [None, Some("tag-table:web".to_owned())]);
        assert_eq!(plan.calls[0], plan.calls[1]);
        assert_eq!(plan.waiting[1], BTreeSet::from(["b".to_owned()]));
    }

    /// A reason is logged: serde's text would quote the value it refused (a tag of someone
    /// else's making), so only the kind of error and where it is are kept.
    #[test]
    fn a_reason_names_the_error_without_quoting_the_body() {
        let secret = "product:Bearer abc.def";
        let body = format!(r#"{{"version":1,"tags":["{secret}"],"eventTime":"","enqueuedAt":""}}"#);
        let batch = [Incoming {
            message_id: "a",
            body: &body,
        }];
        let plan = plan(&batch, 128);
        let (_, reason) = &plan.unreadable[0];
        assert!(reason.starts_with("not a tag message"), "{reason}");
        assert!(!reason.contains("Bearer"), "{reason}");
    }
}
