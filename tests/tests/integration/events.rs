//! events/ holds a sample event for every function, in exactly the shape AWS sends (for
//! `sam local invoke -e` and `cargo lambda invoke --data-file`). Each file is generated here
//! from the test fixtures (stream events from real DynamoDB Local stream records), compared
//! with what is committed, and run through its real handler against local services.
//!
//! After changing a fixture or a shape: `UPDATE_EVENTS=1 cargo test -p catalog-tests --test integration events::`.

use catalog_tests::Inspect;
use std::path::PathBuf;

use anyhow::{Context, Result};
use catalog_core::model::MinorUnits;
use catalog_core::testing::{product, stock};
use catalog_tests::TestEnv;
use serde_json::{json, Value};

fn events_dir() -> PathBuf {
    catalog_local::workspace_root().join("events")
}

/// Compares `generated` with the committed file (or writes it with `UPDATE_EVENTS=1`).
fn check(name: &str, generated: &Value) -> Result<Value> {
    let path = events_dir().join(name);
    let text = serde_json::to_string_pretty(generated)? + "\n";
    if std::env::var_os("UPDATE_EVENTS").is_some() {
        std::fs::create_dir_all(path.parent().context("events path")?)?;
        std::fs::write(&path, &text)?;
    }
    let committed = std::fs::read_to_string(&path)
        .with_context(|| format!("{path:?} is missing: run with UPDATE_EVENTS=1"))?;
    let committed: Value = serde_json::from_str(&committed)?;
    anyhow::ensure!(
        &committed == generated,
        "{name} is out of date with the fixtures: run with UPDATE_EVENTS=1"
    );
    Ok(committed)
}

/// One record of an SQS batch as Lambda's SQS trigger delivers it: `body` sent by `sender`
/// (its role session, and when, in ms) to catalog-sync's queue `queue`, first received 20 ms
/// later. `md5OfBody` is a placeholder: Lambda does not check it.
fn sqs_record(queue: &str, id: &str, body: &Value, (sender, sent_ms): (&str, u64)) -> Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("AQEB{id}..."),
        "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": sent_ms.to_string(),
                       "SenderId": sender, "ApproximateFirstReceiveTimestamp": (sent_ms + 20).to_string()},
        "messageAttributes": {}, "md5OfBody": "00000000000000000000000000000000",
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:catalog-sync-{queue}"),
        "awsRegion": "us-east-1"
    })
}

/// Replaces what differs between runs (ids, sequence numbers, ARNs, times) with fixed values,
/// keeping the shape and the order.
fn stable_stream_event(mut event: Value, table: &str) -> Value {
    let arn = format!(
        "arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-11-26T00:00:00.000"
    );
    if let Some(records) = event["Records"].as_array_mut() {
        for (i, record) in records.iter_mut().enumerate() {
            record["eventID"] = json!(format!("{:032x}", i + 1));
            record["eventSourceARN"] = json!(arn);
            record["dynamodb"]["SequenceNumber"] = json!(format!("{:021}", (i + 1) * 100));
            record["dynamodb"]["ApproximateCreationDateTime"] = json!(1_795_660_000 + i as i64);
        }
    }
    event
}

/// Writes the fixture rows: p-1001 created, repriced and deleted; p-1002 created; stock of
/// p-1002 at two locations, one changed, one removed.
async fn write_fixtures(env: &TestEnv) -> Result<()> {
    let mut p1 = product("p-1001", "store-7");
    env.put_product(&p1).await?;
    p1.price = MinorUnits::new(2499)?;
    p1.version = 2;
    env.put_product(&p1).await?;
    env.delete_product("p-1001").await?;
    env.put_product(&product("p-1002", "store-7")).await?;
    env.put_stock(&stock("p-1002", "berlin", 12, 2)).await?;
    let mut l2 = stock("p-1002", "paris", 3, 0);
    env.put_stock(&l2).await?;
    l2.on_hand = 1;
    l2.version = 2;
    env.put_stock(&l2).await?;
    env.dynamodb
        .delete_item()
        .table_name(&env.tables.inventory)
        .key(
            "productId",
            aws_sdk_dynamodb::types::AttributeValue::S("p-1002".into()),
        )
        .key(
            "locationId",
            aws_sdk_dynamodb::types::AttributeValue::S("berlin".into()),
        )
        .send()
        .await?;
    Ok(())
}

#[tokio::test]
async fn projector_events_match_real_stream_records_and_project() -> Result<()> {
    let env = TestEnv::new().await?;
    write_fixtures(&env).await?;
    let products = env.products_event_json().await?;
    let inventory = env.inventory_event_json().await?;
    let products = check(
        "summary-projector/products-stream.json",
        &stable_stream_event(products, "Products"),
    )?;
    let inventory = check(
        "summary-projector/inventory-stream.json",
        &stable_stream_event(inventory, "Inventory"),
    )?;
    let names = |e: &Value| -> Vec<String> {
        e["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["eventName"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&products), ["INSERT", "MODIFY", "REMOVE", "INSERT"]);
    assert_eq!(names(&inventory), ["INSERT", "INSERT", "MODIFY", "REMOVE"]);

    let projector = env.projector();
    for event in [products, inventory] {
        let response = projector.handle(serde_json::from_value(event)?).await?;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    env.assert_converged("p-1001").await?;
    env.assert_converged("p-1002").await?;
    assert_eq!(
        env.summary("p-1002").await?.unwrap().inventory_available,
        Some(1)
    );
    Ok(())
}

#[tokio::test]
async fn listing_api_events_are_api_gateway_v2_requests() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&product("p-1002", "store-7")).await?;
    env.put_stock(&stock("p-1002", "paris", 4, 0)).await?;
    env.project_pending().await?;
    let cases = [
        (
            "listing-api/list-store.json",
            "GET",
            "/stores/store-7/products?limit=24",
            None,
            200,
        ),
        (
            "listing-api/get-product.json",
            "GET",
            "/products/p-1002",
            None,
            200,
        ),
        (
            "listing-api/batch-get.json",
            "POST",
            "/products:batchGet",
            Some(r#"{"productIds":["p-1002","p-404"]}"#),
            200,
        ),
        (
            "listing-api/bad-limit.json",
            "GET",
            "/stores/store-7/products?limit=0",
            None,
            400,
        ),
        (
            "listing-api/unknown-route.json",
            "GET",
            "/carts/1",
            None,
            404,
        ),
    ];
    for (name, method, target, body, status) in cases {
        let event = catalog_local::emulator::apigw::http_request(
            method,
            target,
            &[("accept", "application/json")],
            body,
        );
        let event = check(name, &event)?;
        let response = env
            .listing_api()
            .handle(serde_json::from_value(event)?)
            .await;
        assert_eq!(response.status_code, status, "{name}");
    }
    Ok(())
}

#[tokio::test]
async fn reconciler_events_start_runs_and_run_segments() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&product("p-1002", "store-7")).await?;
    let reconciler = env.reconciler();
    let schedule = check(
        "reconciler/schedule.json",
        &json!({
            "version": "0", "id": "8f9c3c4e-0000-4000-8000-000000000001",
            "detail-type": "Scheduled Event", "source": "aws.scheduler",
            "account": "123456789012", "time": "2026-11-26T03:30:00Z", "region": "us-east-1",
            "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/catalog-sync-daily"],
            "detail": {}
        }),
    )?;
    let backfill = check(
        "reconciler/backfill.json",
        &json!({"detail-type": "Backfill", "source": "catalog-sync.manual", "detail": {"segments": 4}}),
    )?;
    let dry_run = check(
        "reconciler/dry-run-one-store.json",
        &json!({"detail-type": "Reconcile", "source": "catalog-sync.manual", "detail": {"dryRun": true, "storeId": "store-7"}}),
    )?;
    let now = std::time::Instant::now();
    assert_eq!(reconciler.handle(schedule, now).await?["segments"], 2);
    assert_eq!(reconciler.handle(backfill, now).await?["segments"], 4);
    assert_eq!(reconciler.handle(dry_run, now).await?["segments"], 1);
    env.drain_queue("ReconcileQueue").await?;

    // The segment message shape, as the SQS trigger delivers it.
    let segment = json!({
        "version": 1, "runId": "8f9c3c4e-0000-4000-8000-000000000001", "step": 0,
        "share": {"dryRun": false, "storeId": null, "segment": 0, "totalSegments": 1},
        "checkpoint": {"phase": "products", "startKey": null},
        "report": {"checked": 0, "missing": 0, "orphans": 0, "drifted": 0, "driftByField": {}, "repaired": 0, "repairFailures": 0},
        "startedAt": "2026-11-26T03:30:00.000Z"
    });
    let record = sqs_record(
        "ReconcileQueue",
        "059f36b4-87a3-44ab-83d2-661975830a7d",
        &segment,
        ("AROAEXAMPLE:reconciler", 1_795_660_200_000),
    );
    let sqs = check(
        "reconciler/segment-batch.json",
        &json!({ "Records": [record] }),
    )?;
    let response = reconciler
        .handle(sqs, now + std::time::Duration::from_secs(300))
        .await?;
    assert_eq!(response["batchItemFailures"], json!([]));
    env.assert_converged("p-1002").await?;
    Ok(())
}

#[tokio::test]
async fn the_admin_route_event_queues_a_products_tags() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&product("p-1002", "store-7")).await?;
    let mut request = catalog_local::emulator::apigw::http_request(
        "POST",
        "/admin/products/p-1002/revalidate",
        &[("content-length", "0")],
        None,
    );
    request["routeKey"] = json!("POST /admin/products/{productId}/revalidate");
    request["requestContext"]["routeKey"] = request["routeKey"].clone();
    request["pathParameters"] = json!({"productId": "p-1002"});
    catalog_local::emulator::apigw::authorize_iam(&mut request);
    let event = check("reconciler/revalidate-product.json", &request)?;
    let answer = env
        .reconciler()
        .handle(event, std::time::Instant::now())
        .await?;
    assert_eq!(answer["statusCode"], 202, "{answer}");
    assert_eq!(
        env.queued_tags().await?,
        [
            "inventory:p-1002",
            "product:p-1002",
            "store:store-7:products"
        ]
    );
    Ok(())
}

/// The projector's listing-check sample: an SQS batch of one check, as the projector sends it
/// after creating p-1002 (no position left behind).
pub fn listing_check_batch() -> Value {
    let check = json!({"version": 1, "productId": "p-1002", "tags": ["store:store-7:products"],
                       "left": [], "eventTime": "2026-11-26T04:15:00.000Z", "waitedSecs": 0});
    let id = "4a1c0f6e-2b7d-4c3e-9f10-000000000001";
    let sender = ("AROAEXAMPLE:summary-projector", 1_795_667_701_000);
    json!({"Records": [sqs_record("ListingCheckQueue", id, &check, sender)]})
}

#[tokio::test]
async fn the_listing_check_event_queues_the_listing_tag_once_the_index_shows_it() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&product("p-1002", "store-7")).await?;
    env.project_pending().await?;
    env.queued_tags().await?;
    let event = check(
        "summary-projector/listing-checks.json",
        &listing_check_batch(),
    )?;
    let input = summary_projector::Input::parse(event)?;
    let answer = serde_json::to_value(env.projector().handle_input(input).await?)?;
    assert_eq!(answer["batchItemFailures"], json!([]));
    assert_eq!(env.queued_tags().await?, ["store:store-7:products"]);
    Ok(())
}

/// The tag-revalidator's sample: an SQS batch of two tag messages, as the projector writes
/// them, with a tag in common.
pub fn tag_batch() -> Value {
    let message = |id: &str, tags: &[&str]| {
        let body = json!({"version": 1, "tags": tags, "eventTime": "2026-11-26T04:15:00.000Z", "enqueuedAt": "2026-11-26T04:15:00.180Z"});
        let sender = ("AROAEXAMPLE:summary-projector", 1_795_667_700_180);
        sqs_record("TagQueue", id, &body, sender)
    };
    json!({"Records": [
        message("6d0f1b7e-1c3a-4e59-9d1f-000000000001", &["product:p-1001", "store:store-7:products"]),
        message("6d0f1b7e-1c3a-4e59-9d1f-000000000002", &["inventory:p-1002", "store:store-7:products"]),
    ]})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tag_batch_event_revalidates_each_tag_once() -> Result<()> {
    let env = TestEnv::new().await?;
    let stub = catalog_tests::storefront_stub::StorefrontStub::start(
        "sample-revalidate-secret-of-32-bytes",
    )
    .await?;
    let event = check("tag-revalidator/tag-batch.json", &tag_batch())?;
    let revalidator = tag_revalidator::Revalidator::new(
        vec![stub.url.clone()],
        tag_revalidator::client::RevalidateClient::new(
            b"sample-revalidate-secret-of-32-bytes",
            std::time::Duration::from_secs(2),
        )?,
        env.sqs.clone(),
        env.queues.tag_queue.clone(),
        128,
    );
    let response = revalidator.handle(serde_json::from_value(event)?).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        stub.tags(),
        [
            "inventory:p-1002",
            "product:p-1001",
            "store:store-7:products"
        ]
    );
    Ok(())
}
