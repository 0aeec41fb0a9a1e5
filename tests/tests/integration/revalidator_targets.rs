//! Issue 29, item 3: each storefront target succeeds, retries and dead-letters on its own. One
//! healthy HTTP storefront, one that accepts connections and never answers, and one tag-table
//! storefront take 300 tag messages through the real queues (moto) and the real tag table
//! (DynamoDB Local), polled as Lambda's SQS mappings poll them: 5 containers on the tag queue,
//! 2 on the retry queue.

use catalog_tests::Inspect;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use catalog::store::TagTable;
use catalog_core::tag_table::{log_pk, LOG_SPAN};
use catalog_tests::eventually::within;
use catalog_tests::storefront_stub::StorefrontStub;
use catalog_tests::TestEnv;
use tag_revalidator::client::RevalidateClient;
use tag_revalidator::Revalidator;
use tokio::net::TcpListener;

const SECRET: &str = "test-revalidate-secret-of-32-bytes";
const MESSAGES: usize = 300;
/// Short, so that a hung call costs little test time; the isolation does not depend on it.
const TIMEOUT: Duration = Duration::from_millis(200);

/// A storefront that accepts connections and never answers; the sockets stay open.
async fn hung_storefront() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/api/revalidate", listener.local_addr()?);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Ok(url)
}

/// One Lambda container: its own revalidator (and so its own memory of failing targets),
/// writing the tag table through `dynamodb`.
fn container(
    env: &TestEnv,
    endpoints: &[&str],
    dynamodb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<Revalidator> {
    let client = RevalidateClient::new(SECRET.as_bytes(), TIMEOUT)?;
    let tags = TagTable::new(dynamodb.clone(), table, Duration::from_secs(5));
    Ok(Revalidator::new(
        endpoints.iter().map(|e| e.to_string()).collect(),
        client,
        env.sqs.clone(),
        env.queues.tag_queue.clone(),
        128,
    )
    .with_tag_table(tags, vec!["web".into()])
    .with_retry_queue(env.queues.tag_retry_queue.clone()))
}

/// Queues one message per product, each with its own tag; returns when each was sent (taken
/// before the send: the lag includes it).
async fn queue_messages(env: &TestEnv) -> Result<BTreeMap<String, Instant>> {
    let mut sent = BTreeMap::new();
    for i in 0..MESSAGES {
        let tag = format!("product:p{i:03}");
        sent.insert(tag.clone(), Instant::now());
        env.queue_tags(&[tag]).await?;
    }
    Ok(sent)
}

/// One delivery as Lambda's mapping makes it: the handler, then the messages it did not
/// report deleted. Returns how many were reported.
async fn deliver(
    env: &TestEnv,
    url: &str,
    revalidator: &Revalidator,
    event: SqsEvent,
) -> Result<usize> {
    let records = event.records.clone();
    let response = revalidator.handle(event).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    for record in records {
        if !failed.contains(&record.message_id.as_deref().unwrap_or_default()) {
            env.sqs
                .delete_message()
                .queue_url(url)
                .set_receipt_handle(record.receipt_handle)
                .send()
                .await?;
        }
    }
    Ok(failed.len())
}

/// 5 containers poll the tag queue while the messages are queued, until it is empty.
async fn revalidate_as_queued(
    env: &Arc<TestEnv>,
    containers: Vec<Revalidator>,
) -> Result<BTreeMap<String, Instant>> {
    let queued = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pollers: Vec<_> = containers
        .into_iter()
        .map(|revalidator| {
            let (env, queued) = (env.clone(), queued.clone());
            tokio::spawn(async move {
                let url = env.queues.tag_queue.clone();
                loop {
                    let done = queued.load(std::sync::atomic::Ordering::SeqCst);
                    let event = env.receive_event(&url, 1).await?;
                    if event.records.is_empty() {
                        if done {
                            return anyhow::Ok(());
                        }
                        continue;
                    }
                    deliver(&env, &url, &revalidator, event).await?;
                }
            })
        })
        .collect();
    let sent = queue_messages(env).await?;
    queued.store(true, std::sync::atomic::Ordering::SeqCst);
    for poller in futures::future::join_all(pollers).await {
        poller??;
    }
    Ok(sent)
}

/// Every message of the retry queue, received once (its first delivery due after the
/// handoff's delay): the targets they name. All but one are deleted; that one is visible
/// again, to follow through its retries (time compressed, below).
async fn collect_retries(env: &TestEnv) -> Result<Vec<String>> {
    let url = &env.queues.tag_retry_queue;
    let mut targets = Vec::new();
    let mut kept = None;
    while catalog_local::stack::queue_depth(&env.sqs, url).await? > u64::from(kept.is_some()) {
        let event = env.receive_event(url, 3).await?;
        for record in event.records {
            targets.push(target_of(&record));
            match kept {
                None => kept = record.receipt_handle,
                Some(_) => {
                    let delete = env.sqs.delete_message().queue_url(url);
                    delete
                        .set_receipt_handle(record.receipt_handle)
                        .send()
                        .await?;
                }
            }
        }
    }
    let visible = env.sqs.change_message_visibility().queue_url(url);
    visible
        .set_receipt_handle(kept)
        .visibility_timeout(0)
        .send()
        .await?;
    Ok(targets)
}

/// Delivers the retry queue's message until the queue dead-letters it; time compressed: after
/// each failed delivery the message is made visible at once, as if its backoff had passed.
async fn retry_until_dead_lettered(env: &TestEnv, revalidator: &Revalidator) -> Result<usize> {
    let start = Instant::now();
    let mut deliveries = 0;
    loop {
        let event = env.receive_event(&env.queues.tag_retry_queue, 1).await?;
        if event.records.is_empty() {
            return Ok(deliveries);
        }
        ensure!(
            start.elapsed() < Duration::from_secs(60),
            "never dead-lettered"
        );
        deliveries += 1;
        retry_once(env, revalidator, event).await?;
    }
}

fn target_of(record: &aws_lambda_events::event::sqs::SqsMessage) -> String {
    let body: serde_json::Value =
        serde_json::from_str(record.body.as_deref().unwrap_or("{}")).unwrap_or_default();
    body["target"].as_str().unwrap_or_default().to_owned()
}

/// One delivery of retry messages; the failed ones made visible again at once.
async fn retry_once(env: &TestEnv, revalidator: &Revalidator, event: SqsEvent) -> Result<()> {
    let url = &env.queues.tag_retry_queue;
    let handles: Vec<_> = event
        .records
        .iter()
        .map(|r| r.receipt_handle.clone())
        .collect();
    deliver(env, url, revalidator, event).await?;
    for handle in handles {
        // A deleted message's handle is refused; a failed one comes back at once.
        let _ = env
            .sqs
            .change_message_visibility()
            .queue_url(url)
            .set_receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await;
    }
    Ok(())
}

/// Every log item's tags for storefront `web`: tag -> how many times it was logged.
async fn logged_tags(env: &TestEnv, table: &str) -> Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for partition in 0..2 {
        let items = env
            .dynamodb
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(log_pk("web", partition * LOG_SPAN)),
            )
            .send()
            .await?
            .items
            .unwrap_or_default();
        for item in items {
            let tags = item
                .get("tags")
                .and_then(|t| t.as_ss().ok())
                .cloned()
                .unwrap_or_default();
            for tag in tags {
                *counts.entry(tag).or_insert(0) += 1;
            }
        }
    }
    Ok(counts)
}

fn p99(mut lags: Vec<Duration>) -> Duration {
    lags.sort();
    lags[(lags.len() * 99).div_ceil(100) - 1]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_storefront_is_retried_and_dead_lettered_alone() -> Result<()> {
    let env = Arc::new(TestEnv::new().await?);
    let table = env.create_tag_table().await?;
    let healthy = StorefrontStub::start(SECRET).await?;
    let hung = hung_storefront().await?;
    let endpoints = [healthy.url.as_str(), hung.as_str()];
    let containers = (0..5)
        .map(|_| container(&env, &endpoints, &env.dynamodb, &table))
        .collect::<Result<Vec<_>>>()?;

    // First revalidations: every message once at each healthy target, within seconds.
    let sent = revalidate_as_queued(&env, containers).await?;
    let received = healthy.received();
    let lags: Vec<Duration> = received
        .iter()
        .flat_map(|call| call.tags.iter().map(|tag| call.at - sent[tag]))
        .collect();
    ensure!(
        lags.len() == MESSAGES,
        "{} tags reached the healthy storefront, once each expected",
        lags.len()
    );
    let mut tags = healthy.tags();
    tags.sort();
    tags.dedup();
    ensure!(
        tags.len() == MESSAGES,
        "a tag went to the healthy storefront twice"
    );
    ensure!(
        p99(lags.clone()) < Duration::from_secs(5),
        "healthy lag p99 {:?}",
        p99(lags)
    );
    let logged = logged_tags(&env, &table).await?;
    ensure!(
        logged.len() == MESSAGES && logged.values().all(|n| *n == 1),
        "tag table: {logged:?}"
    );

    // The hung storefront's share: retried on its own queue and dead-lettered there.
    let targets = collect_retries(&env).await?;
    ensure!(
        !targets.is_empty() && targets.iter().all(|t| *t == hung),
        "{targets:?}"
    );
    let retrier = container(&env, &endpoints, &env.dynamodb, &table)?;
    let deliveries = retry_until_dead_lettered(&env, &retrier).await?;
    let template = catalog_local::template::Template::load(&catalog_local::workspace_root())?;
    let (_, max_receive_count) = template.queue("TagRetryQueue")?.redrive.clone().unwrap();
    ensure!(
        deliveries as i64 == max_receive_count - 1,
        "{deliveries} deliveries after the first"
    );
    let dead =
        catalog_local::stack::queue_depth(&env.sqs, &env.queues.tag_dead_letter_queue).await?;
    ensure!(dead == 1, "{dead} dead-lettered");
    ensure!(
        healthy.received().len() == received.len(),
        "the healthy storefront was called again"
    );
    ensure!(
        logged_tags(&env, &table).await? == logged,
        "the tag table was written again"
    );
    Ok(())
}

/// How long the tag table is throttled during the import.
const THROTTLED: Duration = Duration::from_secs(30);

/// Polls `url` as Lambda's mapping would, with one container, until `stop` is set and the
/// queue is empty (nothing visible, in flight or delayed).
async fn poll_until(
    env: Arc<TestEnv>,
    url: String,
    revalidator: Revalidator,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<()> {
    loop {
        let event = env.receive_event(&url, 1).await?;
        if !event.records.is_empty() {
            deliver(&env, &url, &revalidator, event).await?;
        } else if stop.load(std::sync::atomic::Ordering::SeqCst)
            && catalog_local::stack::queue_depth(&env.sqs, &url).await? == 0
        {
            return Ok(());
        }
    }
}

/// Issue 29: a bulk import while the tag table throttles every call. Once the throttling
/// ends, every tag is in the log (what every instance reads, five times a second) within
/// seconds, and nothing is dead-lettered.
#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_import_reaches_the_log_seconds_after_the_throttling_ends() -> Result<()> {
    let env = Arc::new(TestEnv::new().await?);
    let table = env.create_tag_table().await?;
    let throttling = catalog_local::layers::faults::Throttling::new(100, 29);
    let config = catalog_local::services::sdk_config(&catalog_tests::endpoints().0).await;
    let throttled = catalog_local::services::wrapped_dynamodb(&config, |h| throttling.wrap(h));

    // The import: 50 messages of 100 tags, queued while the table throttles.
    let all: Vec<String> = (0..5000).map(|i| format!("product:bulk-{i:04}")).collect();
    for chunk in all.chunks(100) {
        env.queue_tags(chunk).await?;
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let queues = [
        (env.queues.tag_queue.clone(), 5),
        (env.queues.tag_retry_queue.clone(), 2),
    ];
    let mut pollers = Vec::new();
    for (url, containers) in queues {
        for _ in 0..containers {
            let revalidator = container(&env, &[], &throttled, &table)?;
            let poll = poll_until(env.clone(), url.clone(), revalidator, stop.clone());
            pollers.push(tokio::spawn(poll));
        }
    }

    // The throttling ends; the log must hold every tag within seconds.
    tokio::time::sleep(THROTTLED).await;
    throttling.set_on(false);
    let ended = Instant::now();
    let fresh = within(Duration::from_secs(60))
        .every(Duration::from_millis(100))
        .holds(async || {
            let logged = logged_tags(&env, &table).await?.len();
            ensure!(
                logged == all.len(),
                "the log holds {logged} of {} tags",
                all.len()
            );
            Ok(ended.elapsed())
        })
        .await?;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for poller in futures::future::join_all(pollers).await {
        poller??;
    }
    println!(
        "every tag in the log {fresh:?} after the throttling ended ({} calls throttled)",
        throttling
            .injected
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    ensure!(fresh < Duration::from_secs(5), "{fresh:?}");
    let dead =
        catalog_local::stack::queue_depth(&env.sqs, &env.queues.tag_dead_letter_queue).await?;
    ensure!(dead == 0, "{dead} dead-lettered");
    Ok(())
}
