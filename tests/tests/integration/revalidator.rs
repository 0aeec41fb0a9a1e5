//! tag-revalidator against a local HTTP stand-in for the storefront's revalidate route and the
//! real tag queue (moto, from template.yaml, with its redrive policy): deduplication, chunking,
//! signatures, retries, Retry-After, partial batch failures and the dead-letter queue.

use catalog_tests::Inspect;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use aws_lambda_events::event::sqs::SqsEvent;
use catalog_local::provision::secrets;
use catalog_local::services;
use catalog_tests::eventually::within;
use catalog_tests::storefront_stub::{Reply, StorefrontStub};
use catalog_tests::TestEnv;
use tag_revalidator::client::RevalidateClient;
use tag_revalidator::secret::SecretReader;
use tag_revalidator::{Revalidator, Tally};

const SECRET: &str = "test-revalidate-secret-of-32-bytes";

fn revalidator(
    env: &TestEnv,
    endpoints: &[&str],
    secret: &str,
    timeout_ms: u64,
    max_tags: usize,
) -> Result<Revalidator> {
    Ok(Revalidator::new(
        endpoints.iter().map(|e| e.to_string()).collect(),
        RevalidateClient::new(secret.as_bytes(), Duration::from_millis(timeout_ms))?,
        env.sqs.clone(),
        env.queues.tag_queue.clone(),
        max_tags,
    ))
}

/// Queues one tag message per entry of `messages`.
async fn queue(env: &TestEnv, messages: &[Vec<String>]) -> Result<()> {
    for tags in messages {
        env.queue_tags(tags).await?;
    }
    Ok(())
}

/// Receives what is visible on `logical` queue now, as Lambda's SQS event.
async fn receive(env: &TestEnv, logical: &str) -> Result<SqsEvent> {
    env.receive_event(env.queues.url(logical)?, 0).await
}

/// The tag queue's messages once a delayed one is visible again (at most `limit`).
async fn redelivered(env: &TestEnv, limit: Duration) -> Result<SqsEvent> {
    within(limit)
        .every(Duration::from_millis(100))
        .holds(async || {
            let event = receive(env, "TagQueue").await?;
            anyhow::ensure!(!event.records.is_empty(), "never came back");
            Ok(event)
        })
        .await
}

fn failed_ids(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> BTreeSet<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

fn ids(event: &SqsEvent) -> Vec<String> {
    event
        .records
        .iter()
        .filter_map(|r| r.message_id.clone())
        .collect()
}

#[tokio::test]
async fn a_batch_is_deduplicated_and_chunked_to_the_endpoint_limit() -> Result<()> {
    let env = TestEnv::new().await?;
    let stub = StorefrontStub::start(SECRET).await?;
    // 3 messages, 300 distinct tags, 100 of them carried twice.
    let tag = |i: usize| format!("product:p{i:03}");
    queue(
        &env,
        &[
            (0..150).map(tag).collect(),
            (100..250).map(tag).collect(),
            (250..300).map(tag).collect(),
        ],
    )
    .await?;
    let event = receive(&env, "TagQueue").await?;
    assert_eq!(event.records.len(), 3);
    let (response, tally) = revalidator(&env, &[&stub.url], SECRET, 2000, 128)?
        .handle_tallied(event)
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        tally,
        Tally {
            tags_revalidated: 300,
            calls: 3,
            failed_calls: 0,
            config_errors: 0,
            ..Tally::default()
        }
    );
    let calls = stub.received();
    assert_eq!(calls.len(), 3);
    assert!(
        calls.iter().all(|c| c.tags.len() <= 128),
        "a call over Next.js's 128 tags"
    );
    let tags = stub.tags();
    let unique: BTreeSet<&String> = tags.iter().collect();
    assert_eq!(
        (tags.len(), unique.len()),
        (300, 300),
        "every tag exactly once"
    );
    assert_eq!(stub.refused(), 0, "every call was signed correctly");
    Ok(())
}

#[tokio::test]
async fn every_endpoint_gets_every_tag() -> Result<()> {
    let env = TestEnv::new().await?;
    let (a, b) = (
        StorefrontStub::start(SECRET).await?,
        StorefrontStub::start(SECRET).await?,
    );
    queue(
        &env,
        &[vec!["product:p1".into(), "store:s1:products".into()]],
    )
    .await?;
    let event = receive(&env, "TagQueue").await?;
    let response = revalidator(&env, &[&a.url, &b.url], SECRET, 2000, 128)?
        .handle(event)
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(a.tags(), ["product:p1", "store:s1:products"]);
    assert_eq!(b.tags(), a.tags());
    Ok(())
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_counted_as_a_configuration_error() -> Result<()> {
    let env = TestEnv::new().await?;
    let stub = StorefrontStub::start(SECRET).await?;
    queue(&env, &[vec!["product:p1".into()]]).await?;
    let event = receive(&env, "TagQueue").await?;
    let all = ids(&event);
    let (response, tally) = revalidator(
        &env,
        &[&stub.url],
        "not-the-secret-the-storefront-knows",
        2000,
        128,
    )?
    .handle_tallied(event)
    .await;
    assert_eq!(failed_ids(&response), all.into_iter().collect());
    assert_eq!((tally.config_errors, stub.refused()), (1, 1));
    assert!(stub.tags().is_empty());
    Ok(())
}

/// A container started before a rotation holds the old secret; the storefront has dropped the
/// previous key. The first refused call reads the secret again (from moto's Secrets Manager,
/// through the function the cold start uses) and the tags arrive in the same invocation.
#[tokio::test]
async fn a_container_holding_a_rotated_out_secret_reads_it_again_on_a_401() -> Result<()> {
    const NEW: &str = "the-rotated-revalidate-secret-of-32-bytes";
    let env = TestEnv::new().await?;
    let (_, moto) = catalog_tests::endpoints();
    let secrets = aws_sdk_secretsmanager::Client::new(&services::sdk_config(&moto).await);
    let prefix = format!("{}-", env.tables.summaries);
    let arns = secrets::create(&secrets, &prefix, &[("RevalidateSecret", SECRET)]).await?;
    let arn = arns["RevalidateSecret"].clone();

    // Cold start before the rotation; then the rotation, and the storefront on the new key.
    let moto_secrets = secrets.clone();
    let reader: SecretReader = Arc::new(move || {
        let (secrets, arn) = (moto_secrets.clone(), arn.clone());
        Box::pin(async move {
            let read = catalog::sdk::secret_versions(&secrets, &arn).await;
            read.map(|(current, _)| current).map_err(|e| e.to_string())
        })
    });
    let client = RevalidateClient::new(SECRET.as_bytes(), Duration::from_secs(2))?;
    let client = client.reading_secret_with(reader.clone());
    let secrets = aws_sdk_secretsmanager::Client::new(&services::sdk_config(&moto).await);
    let arn = &arns["RevalidateSecret"];
    secrets
        .put_secret_value()
        .secret_id(arn)
        .secret_string(NEW)
        .send()
        .await?;
    let stub = StorefrontStub::start(NEW).await?;

    queue(&env, &[vec!["product:p1".into()]]).await?;
    let event = receive(&env, "TagQueue").await?;
    let revalidator = Revalidator::new(
        vec![stub.url.clone()],
        client,
        env.sqs.clone(),
        env.queues.tag_queue.clone(),
        128,
    );
    let (response, tally) = revalidator.handle_tallied(event).await;
    assert!(response.batch_item_failures.is_empty(), "{tally:?}");
    assert_eq!(
        (stub.refused(), stub.tags()),
        (1, vec!["product:p1".to_owned()])
    );
    Ok(())
}

#[tokio::test]
async fn a_5xx_is_retried_once_inline_then_the_message_is_held_back() -> Result<()> {
    let env = TestEnv::new().await?;
    let stub = StorefrontStub::start(SECRET).await?;
    queue(&env, &[vec!["product:p1".into()]]).await?;
    let revalidator = revalidator(&env, &[&stub.url], SECRET, 2000, 128)?;

    // One 503: the inline retry succeeds.
    stub.script([Reply::Status(503)]);
    let response = revalidator.handle(receive(&env, "TagQueue").await?).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((stub.requests(), stub.tags().len()), (2, 1));

    // Two 500s: the message fails, and comes back only after its backoff (2 s on the
    // first delivery), not at once and not after the 180 s visibility timeout.
    queue(&env, &[vec!["product:p2".into()]]).await?;
    stub.script([Reply::Status(500), Reply::Status(500)]);
    let event = receive(&env, "TagQueue").await?;
    let failed = ids(&event);
    let response = revalidator.handle(event).await;
    assert_eq!(failed_ids(&response), failed.iter().cloned().collect());
    let held = Instant::now();
    assert!(
        receive(&env, "TagQueue").await?.records.is_empty(),
        "held back"
    );
    let again = redelivered(&env, Duration::from_secs(10)).await?;
    assert!(
        held.elapsed() >= Duration::from_millis(1500),
        "came back after {:?}",
        held.elapsed()
    );
    assert_eq!(ids(&again), failed);
    assert!(revalidator
        .handle(again)
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(stub.tags(), ["product:p1", "product:p2"]);
    Ok(())
}

#[tokio::test]
async fn a_timeout_fails_the_call_within_the_timeout() -> Result<()> {
    let env = TestEnv::new().await?;
    let stub = StorefrontStub::start(SECRET).await?;
    queue(&env, &[vec!["product:p1".into()]]).await?;
    stub.script([
        Reply::Hang(Duration::from_secs(3)),
        Reply::Hang(Duration::from_secs(3)),
    ]);
    let event = receive(&env, "TagQueue").await?;
    let start = Instant::now();
    let (response, tally) = revalidator(&env, &[&stub.url], SECRET, 300, 128)?
        .handle_tallied(event)
        .await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(tally.failed_calls, 1);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn retry_after_is_honoured_inline_when_short_and_by_the_queue_when_long() -> Result<()> {
    let env = TestEnv::new().await?;
    let stub = StorefrontStub::start(SECRET).await?;
    let revalidator = revalidator(&env, &[&stub.url], SECRET, 2000, 128)?;

    queue(&env, &[vec!["product:p1".into()]]).await?;
    stub.script([Reply::RetryAfter(1)]);
    let start = Instant::now();
    let response = revalidator.handle(receive(&env, "TagQueue").await?).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "waited the second it was told"
    );

    queue(&env, &[vec!["product:p2".into()]]).await?;
    stub.script([Reply::RetryAfter(4)]);
    let response = revalidator.handle(receive(&env, "TagQueue").await?).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    let held = Instant::now();
    redelivered(&env, Duration::from_secs(15)).await?;
    assert!(
        held.elapsed() >= Duration::from_secs(3),
        "came back after {:?}, before Retry-After",
        held.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn only_the_messages_behind_a_failed_call_are_reported() -> Result<()> {
    let env = TestEnv::new().await?;
    let stub = StorefrontStub::start(SECRET).await?;
    queue(
        &env,
        &[
            vec!["product:a".into()],
            vec!["product:b".into()],
            vec!["product:c".into(), "product:b".into()],
            vec!["bad tag with spaces".into()],
        ],
    )
    .await?;
    let mut event = receive(&env, "TagQueue").await?;
    // A body that is not a tag message at all, beside them.
    let mut garbage = event.records[0].clone();
    garbage.message_id = Some("not-a-tag-message".into());
    garbage.body = Some("{\"hello\":".into());
    garbage.receipt_handle = None;
    event.records.push(garbage);
    let id_of = |tag: &str| {
        event
            .records
            .iter()
            .find(|r| r.body.as_deref().unwrap_or_default().contains(tag))
            .and_then(|r| r.message_id.clone())
            .unwrap()
    };
    let (a, b, c, bad) = (
        id_of("product:a"),
        id_of("\"product:b\"]"),
        id_of("product:c"),
        id_of("spaces"),
    );
    stub.fail_tag("product:b");
    // One tag a call, so each tag's fate is its own.
    let response = revalidator(&env, &[&stub.url], SECRET, 2000, 1)?
        .handle(event)
        .await;
    let failed = failed_ids(&response);
    assert!(!failed.contains(&a), "a went through");
    assert!(
        failed.contains(&b) && failed.contains(&c),
        "both messages carrying b fail"
    );
    assert!(
        failed.contains(&bad) && failed.contains("not-a-tag-message"),
        "unreadable ones are reported, not dropped"
    );
    let tags: BTreeSet<String> = stub.tags().into_iter().collect();
    assert_eq!(tags, ["product:a", "product:c"].map(String::from).into());
    Ok(())
}

/// Time compressed: after each failed delivery the test makes the held-back message visible
/// at once, as if its backoff (minutes, later on) had passed. The delivery count is what the
/// queue decides by.
#[tokio::test]
async fn a_message_that_keeps_failing_lands_in_the_dead_letter_queue() -> Result<()> {
    let env = TestEnv::new().await?;
    let stub = StorefrontStub::start(SECRET).await?;
    queue(&env, &[vec!["product:doomed".into()]]).await?;
    stub.set_down(true);
    let revalidator = revalidator(&env, &[&stub.url], SECRET, 2000, 128)?;
    let template = catalog_local::template::Template::load(&catalog_local::workspace_root())?;
    let (_, max_receive_count) = template.queue("TagQueue")?.redrive.clone().unwrap();
    let mut deliveries = 0;
    let start = Instant::now();
    loop {
        let event = receive(&env, "TagQueue").await?;
        if event.records.is_empty() {
            let dead = &env.queues.tag_dead_letter_queue;
            if catalog_local::stack::queue_depth(&env.sqs, dead).await? > 0 {
                break;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(60),
                "never dead-lettered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        deliveries += 1;
        let handle = event.records[0].receipt_handle.clone();
        assert_eq!(revalidator.handle(event).await.batch_item_failures.len(), 1);
        env.sqs
            .change_message_visibility()
            .queue_url(&env.queues.tag_queue)
            .set_receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await?;
    }
    assert_eq!(deliveries, max_receive_count);
    assert!(stub.tags().is_empty());

    // The recovery, once the storefront is back: one redrive, and the tags go out.
    let moved = catalog_local::dev::redrive::redrive(
        &env.sqs,
        &env.queues.tag_dead_letter_queue,
        &env.queues.tag_queue,
    )
    .await?;
    assert_eq!(moved, 1);
    stub.set_down(false);
    let event = receive(&env, "TagQueue").await?;
    assert_eq!(event.records.len(), 1, "redriven to the tag queue");
    assert!(revalidator
        .handle(event)
        .await
        .batch_item_failures
        .is_empty());
    assert_eq!(stub.tags(), ["product:doomed"]);
    Ok(())
}
