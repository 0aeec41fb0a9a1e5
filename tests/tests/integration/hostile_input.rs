//! Bad input, on purpose: generated stream records, SQS bodies, schedule events and HTTP
//! requests (missing keys, wrong types, huge strings, unicode, numbers out of range, prices
//! that are not integers). Every case must end in a clear error or a parked record: no panic,
//! no 5xx for a client mistake, and the valid records beside a bad one still go through.
//!
//! Bounded runs (`HOSTILE_CASES`, default 256 per property); each property prints its case
//! count to stderr, which the test harness does not capture.

use std::io::Write;

use anyhow::Result;
use aws_lambda_events::event::dynamodb::Event;
use catalog_core::model::Product;
use catalog_core::stream::group;
use catalog_tests::TestEnv;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

fn cases() -> u32 {
    std::env::var("HOSTILE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn report(name: &str, cases: u32, detail: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "[hostile input] {name}: {cases} cases passed ({detail})"
    );
}

/// Strings a hostile writer could put anywhere.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\PC{0,40}",
        "[a-z0-9:_-]{1,20}",
        Just("x".repeat(5000)),
        Just("😀".repeat(100)),
        Just("p1\u{0}\u{202e}".to_owned()),
        Just("../../etc/passwd".to_owned()),
    ]
}

/// A DynamoDB JSON attribute value of any type, sometimes malformed.
fn attribute() -> impl Strategy<Value = Value> {
    prop_oneof![
        nasty_string().prop_map(|s| json!({ "S": s })),
        prop_oneof![
            Just("19.99".to_owned()),
            Just("-1".to_owned()),
            Just("1e400".to_owned()),
            Just("99999999999999999999999".to_owned()),
            Just("NaN".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
        ]
        .prop_map(|n| json!({ "N": n })),
        any::<bool>().prop_map(|b| json!({ "BOOL": b })),
        Just(json!({ "NULL": true })),
        Just(json!({ "L": [] })),
        Just(json!({ "M": {} })),
    ]
}

/// The same, plus values that are not DynamoDB JSON at all.
fn malformed_attribute() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => attribute(),
        1 => Just(json!({ "X": "not a type" })),
        1 => Just(json!("bare string")),
    ]
}

/// A stream record whose keys and image are arbitrary.
fn hostile_record(i: usize, keys: Value, image: Value) -> Value {
    json!({
        "eventID": format!("{i}"), "eventName": "MODIFY", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {"ApproximateCreationDateTime": 1795660000, "Keys": keys, "NewImage": image,
                     "SequenceNumber": format!("{:021}", i + 1), "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Products/stream/x"
    })
}

#[test]
fn stream_batches_with_hostile_records_keep_their_valid_records() {
    let n = cases();
    let strategy = (
        proptest::collection::vec(
            (
                proptest::collection::btree_map(
                    prop_oneof![Just("productId".to_owned()), "[a-zA-Z]{1,12}"],
                    malformed_attribute(),
                    0..3,
                ),
                proptest::collection::btree_map("[a-zA-Z]{1,12}", attribute(), 0..6),
            ),
            1..8,
        ),
        0usize..8,
    );
    let decoded = std::sync::atomic::AtomicUsize::new(0);
    let parked = std::sync::atomic::AtomicUsize::new(0);
    TestRunner::new(Config::with_cases(n))
        .run(&strategy, |(hostile, at)| {
            let mut records: Vec<Value> = hostile
                .iter()
                .enumerate()
                .map(|(i, (keys, image))| hostile_record(i, json!(keys), json!(image)))
                .collect();
            let valid = hostile_record(99, json!({"productId": {"S": "p-valid"}}), json!({}));
            records.insert(at.min(records.len()), valid);
            // The runtime's decode: a whole event that does not decode is an error, never a panic.
            let event: Event = match serde_json::from_value(json!({ "Records": records })) {
                Ok(e) => e,
                Err(_) => return Ok(()),
            };
            let grouped = group(&event.records);
            decoded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            parked.fetch_add(
                grouped.undecodable.len(),
                std::sync::atomic::Ordering::Relaxed,
            );
            prop_assert!(grouped.ids.iter().any(|id| id.as_str() == "p-valid"));
            let accounted = grouped.records_of.values().map(Vec::len).sum::<usize>()
                + grouped.undecodable.len();
            prop_assert_eq!(
                accounted,
                event.records.len(),
                "every record is either grouped or parked"
            );
            prop_assert!(grouped
                .undecodable
                .iter()
                .all(|(_, reason)| !reason.is_empty()));
            Ok(())
        })
        .unwrap();
    report(
        "stream records (group/decode)",
        n,
        &format!(
            "{} batches decoded as Lambda events, the rest refused whole by the runtime's decode; {} records parked with a reason",
            decoded.into_inner(),
            parked.into_inner()
        ),
    );
}

#[test]
fn product_rows_of_any_shape_decode_or_say_why() {
    let n = cases();
    let strategy = proptest::collection::btree_map(
        prop_oneof![
            Just("productId".to_owned()),
            Just("storeId".to_owned()),
            Just("name".to_owned()),
            Just("price".to_owned()),
            Just("status".to_owned()),
            Just("version".to_owned()),
            Just("images".to_owned()),
            "[a-z]{1,8}",
        ],
        malformed_attribute(),
        0..9,
    );
    TestRunner::new(Config::with_cases(n))
        .run(&strategy, |item| {
            let item: Result<serde_dynamo::Item, _> = serde_json::from_value(json!(item));
            if let Ok(item) = item {
                match serde_dynamo::from_item::<_, Product>(item) {
                    Ok(product) => prop_assert!(product.price.get() < 1 << 53),
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
            }
            Ok(())
        })
        .unwrap();
    report(
        "Products rows (decode)",
        n,
        "each decoded or refused with a message",
    );
}

#[test]
fn sqs_bodies_and_schedule_events_are_refused_clearly() {
    let n = cases();
    let body = prop_oneof![
        nasty_string(),
        Just(r#"{"version":1,"tags":["product:p1"],"eventTime":"x","enqueuedAt":"y"}"#.to_owned()),
        Just(r#"{"version":1,"tags":[""],"eventTime":"x","enqueuedAt":"y"}"#.to_owned()),
        Just(format!(
            r#"{{"version":1,"tags":["{}"],"eventTime":"x","enqueuedAt":"y"}}"#,
            "t".repeat(300)
        )),
        Just(r#"{"version":99}"#.to_owned()),
        Just("[]".to_owned()),
    ];
    let detail = prop_oneof![
        Just(json!({})),
        Just(json!({"dryRun": "yes"})),
        Just(json!({"segments": -1})),
        Just(json!({"segments": 1e12})),
        Just(json!({"storeId": ""})),
        Just(json!({"storeId": "s".repeat(500)})),
        Just(json!({"unknown": 1})),
        Just(json!(null)),
        Just(json!([1, 2])),
        nasty_string().prop_map(|s| json!({ "storeId": s })),
    ];
    TestRunner::new(Config::with_cases(n))
        .run(
            &(proptest::collection::vec(body, 1..6), detail),
            |(bodies, detail)| {
                let ids: Vec<String> = (0..bodies.len()).map(|i| format!("m{i}")).collect();
                let batch: Vec<tag_revalidator::plan::Incoming> = ids
                    .iter()
                    .zip(&bodies)
                    .map(|(id, b)| tag_revalidator::plan::Incoming {
                        message_id: id,
                        body: b,
                    })
                    .collect();
                let plan = tag_revalidator::plan::plan(&batch, 128);
                prop_assert_eq!(plan.messages.len() + plan.unreadable.len(), bodies.len());
                prop_assert!(plan.calls.iter().flatten().all(|t| t.as_str().len() <= 256));
                // A schedule's detail either is a run request or is refused with the reason.
                match serde_json::from_value::<reconciler::RunRequest>(detail) {
                    Ok(request) => {
                        prop_assert!(request.store_id.is_none_or(|s| !s.as_str().is_empty()))
                    }
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
                let segment: Result<reconciler::SegmentMessage, _> =
                    serde_json::from_str(&bodies[0]);
                prop_assert!(segment.is_err() || bodies[0].contains("runId"));
                Ok(())
            },
        )
        .unwrap();
    report(
        "SQS bodies and schedule details",
        n,
        "each planned or named unreadable",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_a_hostile_request_without_a_5xx() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&catalog_core::testing::product("p1", "s1"))
        .await?;
    env.project_pending().await?;
    let routes = Routes {
        api: env.listing_api(),
        admin: env.reconciler(),
    };
    let n = cases();
    let mut statuses: std::collections::BTreeMap<i64, usize> = Default::default();
    let mut runner = TestRunner::new(Config::with_cases(n));
    let strategy = hostile_request();
    for _ in 0..n {
        let tree = strategy
            .new_tree(&mut runner)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let (method, root, segments, query, body) = proptest::strategy::ValueTree::current(&tree);
        let target = target(root, &segments, &query);
        let (status, answer) = routes
            .answer(method, root, &target, body.as_deref())
            .await?;
        *statuses.entry(status).or_default() += 1;
        anyhow::ensure!(
            (200..500).contains(&status),
            "{method} {target} answered {status}: {answer}"
        );
        if status >= 400 {
            let body: Value = serde_json::from_str(answer["body"].as_str().unwrap_or("{}"))?;
            anyhow::ensure!(
                body["error"]["code"].is_string(),
                "{method} {target}: a 4xx says what is wrong: {answer}"
            );
        }
    }
    report(
        "HTTP routes (listing-api and the admin route)",
        n,
        &format!("statuses {statuses:?}"),
    );
    Ok(())
}

/// A request: method, a route's shape with holes (or of no route), what fills the holes,
/// query pairs and maybe a body, all of them hostile some of the time.
type Request = (
    &'static str,
    &'static str,
    Vec<String>,
    Vec<(String, String)>,
    Option<String>,
);

fn hostile_request() -> impl Strategy<Value = Request> {
    let segment = prop_oneof![
        nasty_string(),
        Just("p1".to_owned()),
        Just("s1".to_owned()),
        Just("%ZZ".to_owned()),
        Just("%2F".to_owned()),
        Just("products:batchGet".to_owned()),
    ];
    let pair = (
        prop_oneof![
            Just("limit".to_owned()),
            Just("cursor".to_owned()),
            Just("includeInactive".to_owned()),
            "[a-z]{1,5}"
        ],
        prop_oneof![
            nasty_string(),
            Just("24".to_owned()),
            Just("0".to_owned()),
            Just("101".to_owned()),
            Just("true".to_owned()),
            Just("-1".to_owned()),
        ],
    );
    (
        prop_oneof![3 => Just("GET"), 2 => Just("POST"), 1 => Just("DELETE"), 1 => Just("PUT")],
        prop_oneof![
            Just("/stores/{}/products"),
            Just("/products/{}"),
            Just("/products:batchGet"),
            Just("/admin/products/{}/revalidate"),
            Just("/{}"),
            Just("/stores/{}/products/{}"),
        ],
        proptest::collection::vec(segment, 1..3),
        proptest::collection::vec(pair, 0..4),
        proptest::option::of(prop_oneof![
            nasty_string(),
            Just(r#"{"ids":["p1","p2"]}"#.to_owned()),
            Just(format!(r#"{{"ids":[{}]}}"#, vec!["\"p\""; 500].join(","))),
            Just(r#"{"ids":"p1"}"#.to_owned()),
        ]),
    )
}

/// The path and query a request's parts make, with what would split them replaced.
fn target(root: &str, segments: &[String], query: &[(String, String)]) -> String {
    let mut path = root.to_owned();
    for s in segments {
        path = path.replacen("{}", &s.replace(['?', '#', ' ', '/'], "_"), 1);
    }
    let path = path.replace("{}", "x");
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(['&', '#', ' '], "_")))
        .collect();
    if query.is_empty() {
        path
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// The handlers behind the HTTP API.
struct Routes {
    api: listing_api::ListingApi,
    admin: reconciler::Reconciler,
}

impl Routes {
    /// The status and response of the handler API Gateway would call.
    async fn answer(
        &self,
        method: &str,
        root: &str,
        target: &str,
        body: Option<&str>,
    ) -> Result<(i64, Value)> {
        let mut event = catalog_local::emulator::apigw::http_request(method, target, &[], body);
        let answer = if root.starts_with("/admin") {
            // As API Gateway passes it: signed, so the hostile part is the path.
            catalog_local::emulator::apigw::authorize_iam(&mut event);
            self.admin.handle(event, std::time::Instant::now()).await?
        } else {
            let request = serde_json::from_value(event)?;
            serde_json::to_value(self.api.handle(request).await)?
        };
        Ok((answer["statusCode"].as_i64().unwrap_or(0), answer))
    }
}
