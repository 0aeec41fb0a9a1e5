//! The shared tag table end to end on its storage side: the real tag-revalidator writes it in
//! DynamoDB Local, and packages/next-cache-handler's own tests (node --test, against the same
//! DynamoDB Local) read what it wrote, with the same keys.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use catalog::store::TagTable;
use catalog_core::tag_table::log_pk;
use catalog_tests::TestEnv;
use serde_json::json;
use tag_revalidator::client::RevalidateClient;
use tag_revalidator::Revalidator;

const STOREFRONT: &str = "rust-writer";

fn revalidator(env: &TestEnv, table: TagTable) -> Result<Revalidator> {
    let client =
        RevalidateClient::new(b"unused-revalidate-secret-32-bytes", Duration::from_secs(5))?;
    let revalidator = Revalidator::new(
        Vec::new(),
        client,
        env.sqs.clone(),
        env.queues.tag_queue.clone(),
        128,
    );
    Ok(revalidator.with_tag_table(table, vec![STOREFRONT.into(), "other".into()]))
}

/// An SQS batch of one tag message per entry, as Lambda delivers it.
fn batch(messages: &[(&str, &[&str], bool)]) -> Result<SqsEvent> {
    let records: Vec<_> = messages
        .iter()
        .map(|(id, tags, recheck)| {
            let body = json!({"version": 1, "tags": tags, "eventTime": chrono::Utc::now().to_rfc3339(),
                "enqueuedAt": chrono::Utc::now().to_rfc3339(), "recheck": recheck});
            json!({"messageId": id, "receiptHandle": format!("rh-{id}"), "body": body.to_string(),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:tags"})
        })
        .collect();
    Ok(serde_json::from_value(json!({ "Records": records }))?)
}

/// What the log of `storefront` holds: tag -> how many log items carry it.
async fn tag_times(
    env: &TestEnv,
    table: &str,
    storefront: &str,
) -> Result<BTreeMap<String, usize>> {
    let items = env
        .dynamodb
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(log_pk(storefront, 0)))
        .send()
        .await?
        .items
        .unwrap_or_default();
    let mut logged = BTreeMap::new();
    for item in items {
        let tags = item
            .get("tags")
            .and_then(|v| v.as_ss().ok())
            .context("tags")?;
        for tag in tags {
            *logged.entry(tag.clone()).or_insert(0) += 1;
        }
    }
    Ok(logged)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_revalidator_writes_the_tag_table_and_the_handler_package_reads_it() -> Result<()> {
    let env = TestEnv::new().await?;
    let table = env.create_tag_table().await?;
    let revalidator = revalidator(
        &env,
        TagTable::new(env.dynamodb.clone(), &table, Duration::from_secs(5)),
    )?;

    let first = batch(&[
        ("m1", &["product:p1", "store:s1:products"], false),
        ("m2", &["product:p1"], false),
    ])?;
    let (response, tally) = revalidator.handle_tallied(first).await;
    ensure!(response.batch_item_failures.is_empty(), "{response:?}");
    ensure!(tally.tags_revalidated == 2 && tally.calls == 2, "{tally:?}");
    let before = tag_times(&env, &table, STOREFRONT).await?;
    ensure!(before.len() == 2, "{before:?}");
    ensure!(
        tag_times(&env, &table, "other").await?.len() == 2,
        "each storefront has its own items"
    );

    // A later revalidation of the store tag (a listing tag queued once the index showed the
    // write) is logged again, at its own position.
    let (response, _) = revalidator
        .handle_tallied(batch(&[("m3", &["store:s1:products"], true)])?)
        .await;
    ensure!(response.batch_item_failures.is_empty());
    let after = tag_times(&env, &table, STOREFRONT).await?;
    ensure!(
        after["store:s1:products"] == 2 && after["product:p1"] == 1,
        "{before:?} {after:?}"
    );

    let package = catalog_local::workspace_root().join("packages/next-cache-handler");
    ensure!(
        package.join("dist/index.js").exists(),
        "the package is not built: run scripts/setup"
    );
    let node = catalog_local::node(&catalog_local::workspace_root());
    let output = tokio::process::Command::new(node)
        .args(["--test", "test/*.test.ts"])
        .current_dir(&package)
        .env("DYNAMODB_ENDPOINT", catalog_tests::endpoints().0)
        .env("CATALOG_TAG_TABLE", &table)
        .env("RUST_WRITTEN", format!("{STOREFRONT}:product:p1"))
        .env("AWS_REGION", "us-east-1")
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout);
    println!("{text}{}", String::from_utf8_lossy(&output.stderr));
    ensure!(
        output.status.success(),
        "the package's tests failed (output above)"
    );
    ensure!(text.contains("# fail 0"), "no test summary in the output");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tag_table_outage_fails_the_messages_and_their_redelivery_lands() -> Result<()> {
    let env = TestEnv::new().await?;
    let table = env.create_tag_table().await?;
    let dead = aws_sdk_dynamodb::Client::new(
        &catalog_local::services::sdk_config(&format!("http://127.0.0.1:{}", closed_port()?)).await,
    );
    let down = revalidator(&env, TagTable::new(dead, &table, Duration::from_secs(2)))?;
    let event = batch(&[
        ("m1", &["product:p1"], false),
        ("m2", &["product:p2"], false),
    ])?;
    let (response, tally) = down.handle_tallied(event.clone()).await;
    ensure!(response.batch_item_failures.len() == 2, "{response:?}");
    ensure!(
        tally.failed_calls == 2 && tally.tags_revalidated == 0,
        "{tally:?}"
    );
    ensure!(tag_times(&env, &table, STOREFRONT).await?.is_empty());

    let up = revalidator(
        &env,
        TagTable::new(env.dynamodb.clone(), &table, Duration::from_secs(5)),
    )?;
    let (response, _) = up.handle_tallied(event).await;
    ensure!(response.batch_item_failures.is_empty(), "{response:?}");
    ensure!(tag_times(&env, &table, STOREFRONT).await?.len() == 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_tag_table_is_a_configuration_error_and_nothing_is_lost() -> Result<()> {
    let env = TestEnv::new().await?;
    let missing = TagTable::new(
        env.dynamodb.clone(),
        "no-such-table",
        Duration::from_secs(5),
    );
    let revalidator = revalidator(&env, missing)?;
    let event = batch(&[("m1", &["product:p1"], false)])?;
    let (response, tally) = revalidator.handle_tallied(event).await;
    ensure!(response.batch_item_failures.len() == 1, "{response:?}");
    ensure!(tally.config_errors == 2, "one per storefront: {tally:?}");
    Ok(())
}

fn closed_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The package and the storefront declare Node.js 22 and run on the one scripts/setup
/// installs: the AWS SDK for JavaScript supports no older Node from 2027.
#[test]
fn the_package_and_the_storefront_run_on_node_22() -> Result<()> {
    let root = catalog_local::workspace_root();
    let node = catalog_local::node(&root);
    let version = std::process::Command::new(&node).arg("--version").output();
    let version = String::from_utf8(version.with_context(|| format!("{node:?}"))?.stdout)?;
    ensure!(version.starts_with("v22."), "{node:?} is {version}");
    for dir in ["packages/next-cache-handler", "examples/storefront"] {
        let text = std::fs::read_to_string(root.join(dir).join("package.json"))?;
        let package: serde_json::Value = serde_json::from_str(&text)?;
        ensure!(
            package["engines"]["node"] == ">=22",
            "{dir}: {}",
            package["engines"]
        );
    }
    Ok(())
}
