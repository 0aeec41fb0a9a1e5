//! How reconcile segment messages survive SQS's delivery against DynamoDB Local and moto: a
//! message delivered twice (or a continuation sent twice) runs and counts once, a continuation
//! lost after its step committed is sent again, and repairs whose tags could not be queued go
//! out a minute later.

use catalog_tests::Inspect;
use std::time::{Duration, Instant};

use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use catalog::store::Write;
use catalog::store::{Claim, ProgressStore};
use catalog_core::ids::ProductId;
use catalog_core::reconcile::Report;
use catalog_core::tags::StockTagPolicy;
use catalog_core::testing::{product, stock};
use catalog_tests::{unique_id, TestEnv};
use reconciler::{Reconciler, Segment, SegmentMessage};
use serde_json::json;

const BUDGET: Duration = Duration::from_secs(300);

/// Six products in one store, projected, with p2's summary price drifted.
async fn drifted() -> Result<TestEnv> {
    let env = TestEnv::new().await?;
    for i in 0..6 {
        let id = format!("p{i}");
        env.put_product(&product(&id, "s1")).await?;
        env.put_stock(&stock(&id, "l1", 5, 1)).await?;
    }
    env.project_pending().await?;
    env.drain_queue("TagQueue").await?;
    env.dynamodb
        .update_item()
        .table_name(&env.tables.summaries)
        .key("productId", AttributeValue::S("p2".into()))
        .update_expression("SET price = :p")
        .expression_attribute_values(":p", AttributeValue::N("1".into()))
        .send()
        .await?;
    Ok(env)
}

/// The first message of a new one-segment run.
fn first_step() -> Result<SegmentMessage> {
    Ok(serde_json::from_value(json!({
        "version": 1, "runId": format!("run-{}", unique_id()), "step": 0,
        "startedAt": "2026-11-26T00:00:00.000Z",
        "share": {"dryRun": false, "storeId": null, "segment": 0, "totalSegments": 1},
        "checkpoint": {"phase": "products", "startKey": null},
        "report": {"checked": 0, "missing": 0, "orphans": 0, "drifted": 0, "driftByField": {},
                   "repaired": 0, "repairFailures": 0}
    }))?)
}

/// Delivers every queued segment message `copies` times at once (as SQS may, or as a
/// continuation sent twice would), each invocation with `budget`, until the queue is empty;
/// the finished reports added up, and how many deliveries were duplicates.
async fn deliver(
    env: &TestEnv,
    reconciler: &Reconciler,
    copies: usize,
    budget: Duration,
) -> Result<(Report, usize)> {
    let (mut total, mut duplicates) = (Report::default(), 0);
    loop {
        let bodies = env.drain_queue("ReconcileQueue").await?;
        if bodies.is_empty() {
            return Ok((total, duplicates));
        }
        let deliveries = bodies
            .iter()
            .flat_map(|body| (0..copies).map(move |_| body));
        let runs = deliveries.map(|body| async move {
            let message: SegmentMessage = serde_json::from_str(body)?;
            let delivery = unique_id();
            let deadline = Instant::now() + budget;
            anyhow::Ok(reconciler.run_segment(message, &delivery, deadline).await?)
        });
        for outcome in futures::future::try_join_all(runs).await? {
            match outcome {
                Segment::Finished(report) => total.merge(&report),
                Segment::Duplicate => duplicates += 1,
                Segment::Continued(_) => {}
            }
        }
    }
}

async fn queue_first_step(env: &TestEnv, message: &SegmentMessage) -> Result<()> {
    let body = serde_json::to_string(message)?;
    let url = env.queues.reconcile_queue.clone();
    catalog::queue::send_bodies(&env.sqs, &url, vec![(body, 0)]).await?;
    Ok(())
}

#[tokio::test]
async fn every_message_delivered_twice_still_counts_each_product_once() -> Result<()> {
    let env = drifted().await?;
    let mut reconciler = env.reconciler();
    reconciler.worker_mut().page_size = 2;
    queue_first_step(&env, &first_step()?).await?;

    // Every step delivered twice at once. Each invocation has only the 30 s the reconciler
    // keeps back for queueing, so every page is a step (and its lease lasts those 30 s).
    let (report, duplicates) = deliver(&env, &reconciler, 2, Duration::from_secs(30)).await?;

    assert_eq!(report.checked, 6, "each product once: {report:?}");
    assert_eq!((report.drifted, report.repaired), (1, 1), "{report:?}");
    assert!(duplicates >= 4, "one duplicate per step: {duplicates}");
    env.assert_converged("p2").await?;
    Ok(())
}

/// A step commits, then queueing its continuation fails (the queue is unreachable): the
/// message's own redelivery queues the kept continuation, and the run finishes, counted once.
#[tokio::test]
async fn a_continuation_lost_after_its_commit_is_sent_again_by_the_redelivery() -> Result<()> {
    let env = drifted().await?;
    let mut config = env
        .resources()
        .reconciler_config(StockTagPolicy::Eager, 1)?;
    config.reconcile_queue_url = format!("{}-gone", config.reconcile_queue_url);
    let mut broken = Reconciler::new(&config, env.dynamodb.clone(), env.sqs.clone());
    broken.worker_mut().page_size = 2;
    let first = first_step()?;
    let (now, no_time) = (Instant::now, Duration::ZERO);

    // Phase 1: the step runs and commits; its continuation cannot be queued.
    let failed = broken
        .run_segment(first.clone(), "m1", now() + no_time)
        .await;
    assert!(failed.is_err(), "{failed:?}");

    // Phase 2: another delivery of the same step is a duplicate; the redelivery resends.
    let mut reconciler = env.reconciler();
    reconciler.worker_mut().page_size = 2;
    let other = reconciler
        .run_segment(first.clone(), "m2", now() + BUDGET)
        .await?;
    assert_eq!(other, Segment::Duplicate);
    let again = reconciler.run_segment(first, "m1", now() + BUDGET).await?;
    assert!(
        matches!(again, Segment::Continued(ref c) if c.step == 1),
        "{again:?}"
    );

    // Phase 3: the chain finishes from the resent continuation.
    let (report, _) = deliver(&env, &reconciler, 1, BUDGET).await?;
    assert_eq!(report.checked, 6, "{report:?}");
    assert_eq!((report.drifted, report.repaired), (1, 1), "{report:?}");
    Ok(())
}

/// The lease only saves work; the commit decides. A delivery whose lease ran out while it
/// worked (its clock behind the other's, or a pause) loses its commit to the one that took over.
#[tokio::test]
async fn a_delivery_whose_lease_passed_loses_its_commit() -> Result<()> {
    let env = TestEnv::new().await?;
    let progress = ProgressStore::new(env.dynamodb.clone(), env.resources().tables.progress);
    let at = ("run-lease", 0);
    let now = chrono::Utc::now().timestamp_millis();

    let first = progress.claim(at, 0, "m1", (now, now + 10)).await?;
    let held = progress.claim(at, 0, "m2", (now, now + 60_000)).await?;
    let taken = progress
        .claim(at, 0, "m2", (now + 20, now + 60_000))
        .await?;

    assert_eq!((first, taken), (Claim::Run, Claim::Run));
    assert!(matches!(held, Claim::Duplicate(_)), "{held:?}");
    assert_eq!(
        progress.commit(at, 0, "m1", Some("{}")).await?,
        Write::Conflict
    );
    assert_eq!(
        progress.commit(at, 0, "m2", Some("{}")).await?,
        Write::Applied
    );
    let late = progress.claim(at, 0, "m1", (now, now + 10)).await?;
    assert!(matches!(late, Claim::Duplicate(_)), "{late:?}");
    Ok(())
}

/// A segment whose repairs' tags cannot be queued no longer fails and waits out the reconcile
/// queue's 90-minute visibility timeout: it counts the repairs, stops after that page and
/// queues a continuation due in `RETRY_SECS` (60 s) that queues those tags before anything
/// else. The repair is counted once, by the run that made it.
#[tokio::test]
async fn a_segment_whose_tags_cannot_be_queued_queues_them_a_minute_later() -> Result<()> {
    let env = drifted().await?;
    let mut config = env
        .resources()
        .reconciler_config(StockTagPolicy::Eager, 1)?;
    config.tag_queue_url = format!("{}-gone", config.tag_queue_url);
    let broken = Reconciler::new(&config, env.dynamodb.clone(), env.sqs.clone());
    let deadline = || Instant::now() + BUDGET;

    // The tag queue is gone: the repair is written and counted, its tags wait in the outbox.
    let next = match broken.run_segment(first_step()?, "m1", deadline()).await? {
        Segment::Continued(next) => next,
        other => anyhow::bail!("expected a continuation, got {other:?}"),
    };
    assert_eq!(next.checkpoint.unsent, [ProductId::parse("p2")?]);
    let report = &next.report;
    assert_eq!((report.drifted, report.repaired), (1, 1), "{report:?}");
    assert!(
        env.drain_queue("ReconcileQueue").await?.is_empty(),
        "not due yet"
    );
    assert!(!env.stored("p2").await?.unwrap().pending_tags.is_empty());

    // Once due, the continuation queues them first, then finishes the segment.
    let done = env.reconciler().run_segment(next, "m2", deadline()).await?;
    let Segment::Finished(report) = done else {
        anyhow::bail!("expected the segment to finish, got {done:?}")
    };
    assert_eq!(
        (report.drifted, report.repaired),
        (1, 1),
        "counted once: {report:?}"
    );
    assert_eq!(
        env.queued_tags().await?,
        ["product:p2", "store:s1:products"]
    );
    assert!(env.stored("p2").await?.unwrap().pending_tags.is_empty());
    Ok(())
}
