//! The reconciler against DynamoDB Local and moto: runs fan out to the reconcile queue and are
//! worked segment by segment, as on AWS.

use catalog_tests::Inspect;
use std::time::Duration;

use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use catalog::store::SummaryStore;
use catalog_core::ids::ProductId;
use catalog_core::model::MinorUnits;
use catalog_core::reconcile::Field;
use catalog_core::tags::{StockTagPolicy, TagSet};
use catalog_core::testing::{product, stock, summary};
use catalog_tests::TestEnv;
use serde_json::json;

const BUDGET: Duration = Duration::from_secs(300);

/// 20 products in two stores with stock, projected.
async fn seeded() -> Result<TestEnv> {
    let env = TestEnv::new().await?;
    for i in 0..20 {
        let id = format!("p{i}");
        env.put_product(&product(&id, if i % 2 == 0 { "s1" } else { "s2" }))
            .await?;
        env.put_stock(&stock(&id, "l1", 5, 1)).await?;
    }
    env.project_pending().await?;
    env.drain_queue("TagQueue").await?;
    Ok(env)
}

async fn set_summary_attr(
    env: &TestEnv,
    id: &str,
    name: &str,
    value: AttributeValue,
) -> Result<()> {
    env.dynamodb
        .update_item()
        .table_name(&env.tables.summaries)
        .key("productId", AttributeValue::S(id.into()))
        .update_expression("SET #n = :v")
        .expression_attribute_names("#n", name)
        .expression_attribute_values(":v", value)
        .send()
        .await?;
    Ok(())
}

/// One of each corruption: a deleted summary, a wrong price, a wrong store, an orphan.
async fn corrupt(env: &TestEnv) -> Result<()> {
    env.dynamodb
        .delete_item()
        .table_name(&env.tables.summaries)
        .key("productId", AttributeValue::S("p1".into()))
        .send()
        .await?;
    set_summary_attr(env, "p2", "price", AttributeValue::N("1".into())).await?;
    set_summary_attr(env, "p3", "storeId", AttributeValue::S("s9".into())).await?;
    let store = SummaryStore::new(env.dynamodb.clone(), &env.tables.summaries);
    let ghost = catalog_core::model::SummaryRecord {
        summary: summary("ghost", "s1"),
        updated_at: "2026-11-26T00:00:00.000Z".into(),
    };
    store
        .put(
            &ProductId::parse("ghost")?,
            Some(&ghost),
            None,
            &TagSet::new(),
            &Default::default(),
            0,
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn finds_exactly_the_corruptions_repairs_them_and_then_finds_none() -> Result<()> {
    let env = seeded().await?;
    corrupt(&env).await?;
    let reconciler = env.reconciler();

    let dry = env
        .reconcile(&reconciler, json!({"dryRun": true}), BUDGET)
        .await?;
    assert_eq!(
        (dry.checked, dry.missing, dry.orphans, dry.drifted),
        (21, 1, 1, 2),
        "{dry:?}"
    );
    assert_eq!(dry.drift_by_field.get(&Field::Price), Some(&1));
    assert_eq!(dry.drift_by_field.get(&Field::StoreId), Some(&1));
    assert_eq!(dry.repaired, 0);
    assert_eq!(env.summary("p1").await?, None, "a dry run repairs nothing");

    let real = env.reconcile(&reconciler, json!({}), BUDGET).await?;
    assert_eq!(
        (real.missing, real.orphans, real.drifted, real.repaired),
        (1, 1, 2, 4),
        "{real:?}"
    );
    for id in ["p1", "p2", "p3", "ghost"] {
        env.assert_converged(id).await?;
    }
    let tags = env.queued_tags().await?;
    for tag in [
        "product:p1",
        "product:p2",
        "store:s9:products",
        "store:s1:products",
        "product:ghost",
    ] {
        assert!(tags.iter().any(|t| t == tag), "{tag} not queued: {tags:?}");
    }

    let again = env.reconcile(&reconciler, json!({}), BUDGET).await?;
    assert_eq!(again.discrepancies(), 0, "{again:?}");
    assert_eq!(again.checked, 20);
    Ok(())
}

#[tokio::test]
async fn a_segment_out_of_time_resumes_from_its_checkpoint() -> Result<()> {
    let env = seeded().await?;
    corrupt(&env).await?;
    let mut reconciler = env.reconciler();
    reconciler.worker_mut().page_size = 3;
    // No time at all: every page ends the invocation and queues a continuation.
    let report = env
        .reconcile(&reconciler, json!({"segments": 3}), Duration::ZERO)
        .await?;
    assert_eq!(
        report.checked, 21,
        "each product exactly once, not restarted: {report:?}"
    );
    assert_eq!(report.repaired, 4);
    for i in 0..20 {
        env.assert_converged(&format!("p{i}")).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_store_run_checks_only_that_store() -> Result<()> {
    let env = seeded().await?;
    corrupt(&env).await?;
    let report = env
        .reconcile(
            &env.reconciler(),
            json!({"storeId": "s2", "dryRun": true}),
            BUDGET,
        )
        .await?;
    // s2 holds the odd products: p1 (missing) and p3 (moved to s9 in its summary).
    assert_eq!(report.checked, 10, "{report:?}");
    assert_eq!((report.missing, report.drifted, report.orphans), (1, 1, 0));
    Ok(())
}

#[tokio::test]
async fn bad_run_requests_are_refused_with_a_reason() -> Result<()> {
    let env = TestEnv::new().await?;
    let reconciler = env.reconciler();
    for detail in [
        json!({"segments": 0}),
        json!({"dryRun": "yes"}),
        json!({"storeId": ""}),
        json!({"surprise": 1}),
    ] {
        let event = json!({"detail-type": "Scheduled Event", "source": "x", "detail": detail});
        let err = reconciler
            .handle(event, std::time::Instant::now())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("invalid run request"), "{err}");
    }
    assert!(
        env.drain_queue("ReconcileQueue").await?.is_empty(),
        "nothing was started"
    );
    Ok(())
}

#[tokio::test]
async fn segment_messages_arrive_through_the_sqs_trigger() -> Result<()> {
    let env = seeded().await?;
    corrupt(&env).await?;
    let reconciler = env.reconciler();
    let schedule =
        json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}});
    assert_eq!(
        reconciler
            .handle(schedule, std::time::Instant::now())
            .await?["segments"],
        2
    );
    let bodies = env.drain_queue("ReconcileQueue").await?;
    assert_eq!(bodies.len(), 2);
    let mut records: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| json!({"messageId": format!("m{i}"), "body": body, "eventSource": "aws:sqs"}))
        .collect();
    records.push(json!({"messageId": "junk", "body": "{not a segment", "eventSource": "aws:sqs"}));
    let deadline = std::time::Instant::now() + BUDGET;
    let response = reconciler
        .handle(json!({"Records": records}), deadline)
        .await?;
    // Only the malformed message fails (and goes to the DLQ after its retries).
    assert_eq!(
        response["batchItemFailures"],
        json!([{"itemIdentifier": "junk"}])
    );
    for id in ["p1", "p2", "p3", "ghost"] {
        env.assert_converged(id).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_racing_live_writes_never_leaves_an_older_summary() -> Result<()> {
    let env = seeded().await?;
    let reconciler = env.reconciler();
    let writer = async {
        for round in 0..12u64 {
            for i in 0..20 {
                let mut p = product(&format!("p{i}"), if i % 2 == 0 { "s1" } else { "s2" });
                p.price = MinorUnits::new(2000 + round)?;
                p.version = round + 2;
                env.put_product(&p).await?;
            }
            let event = env.products_event().await?;
            anyhow::ensure!(env
                .projector()
                .handle(event)
                .await?
                .batch_item_failures
                .is_empty());
        }
        Ok::<_, anyhow::Error>(())
    };
    let checker = async {
        for _ in 0..4 {
            env.reconcile(&reconciler, json!({}), BUDGET).await?;
        }
        Ok::<_, anyhow::Error>(())
    };
    let (w, c) = tokio::join!(writer, checker);
    w?;
    c?;
    for i in 0..20 {
        let id = format!("p{i}");
        env.assert_converged(&id).await?;
        assert_eq!(env.summary(&id).await?.unwrap().price.get(), 2011);
    }
    Ok(())
}

/// Issue 13, defect 5: stock rows scanned at the start of a segment are older than the
/// summaries the projector writes while the segment runs; only what is still wrong when read
/// afresh may count. After the first page, every product's price and stock change and the
/// projector brings every summary up to date: the rest of the segment must find nothing to
/// report (the rows of its later pages are newer than the stock it scanned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_counted_only_when_a_fresh_read_confirms_it() -> Result<()> {
    use catalog::listing_gate::ListingGate;
    use catalog::queue::{ListingCheckQueue, TagPublisher};
    use catalog::refresh::Refresher;
    use catalog::store::SourceStore;
    use reconciler::worker::{Checkpoint, Share, Worker};

    let env = seeded().await?;
    let refresher = Refresher::new(
        SourceStore::new(env.dynamodb.clone(), &env.tables),
        SummaryStore::new(env.dynamodb.clone(), &env.tables.summaries),
        StockTagPolicy::Eager,
    );
    let gate = ListingGate::new(
        SummaryStore::new(env.dynamodb.clone(), &env.tables.summaries),
        TagPublisher::new(env.sqs.clone(), &env.queues.tag_queue),
        ListingCheckQueue::new(env.sqs.clone(), &env.queues.listing_check_queue),
        StockTagPolicy::Eager,
    );
    let mut worker = Worker::new(env.dynamodb.clone(), env.tables.clone(), refresher, gate);
    worker.page_size = 5;
    let share = Share {
        dry_run: false,
        store_id: None,
        segment: 0,
        total_segments: 1,
    };
    let runtime = tokio::runtime::Handle::current();
    let mut pages = 0;
    let (report, next) = worker
        .run(
            &share,
            Checkpoint::start(),
            std::time::Instant::now() + BUDGET,
            |_, _| {
                pages += 1;
                if pages == 1 {
                    tokio::task::block_in_place(|| {
                        runtime.block_on(async {
                            for i in 0..20 {
                                let id = format!("p{i}");
                                let mut p = product(&id, if i % 2 == 0 { "s1" } else { "s2" });
                                p.price = MinorUnits::new(2500)?;
                                p.version = 2;
                                env.put_product(&p).await?;
                                env.put_stock(&stock(&id, "l1", 9, 1)).await?;
                            }
                            env.project_pending().await
                        })
                    })
                    .expect("live writes while the segment runs");
                }
            },
        )
        .await?;
    assert!(next.is_none());
    assert!(pages > 1, "the segment took several pages");
    assert_eq!(report.checked, 20, "{report:?}");
    assert_eq!(report.discrepancies(), 0, "{report:?}");
    assert_eq!(report.repaired, 0, "{report:?}");
    Ok(())
}

/// Issue 13, defect 3: a correct summary whose outbox was never queued (stream retries
/// exhausted after a failed publish) keeps its pages stale until the reconciler queues and
/// clears it. A fresh outbox (a projector about to queue it) is queued too, but is no
/// discrepancy.
#[tokio::test]
async fn a_stuck_outbox_is_queued_cleared_and_reported() -> Result<()> {
    let env = seeded().await?;
    env.delete_product("p6").await?;
    env.project_pending().await?;
    env.drain_queue("TagQueue").await?;
    let long_ago = "2026-01-01T00:00:00.000Z";
    let stuck = |tags: &[&str]| AttributeValue::Ss(tags.iter().map(|t| t.to_string()).collect());
    set_summary_attr(
        &env,
        "p4",
        "pendingTags",
        stuck(&["product:p4", "store:s1:products"]),
    )
    .await?;
    set_summary_attr(&env, "p4", "updatedAt", AttributeValue::S(long_ago.into())).await?;
    set_summary_attr(&env, "p6", "pendingTags", stuck(&["product:p6"])).await?;
    set_summary_attr(
        &env,
        "p6",
        "deletedAt",
        AttributeValue::N("1767139200".into()),
    )
    .await?;
    // In flight: written just now, about to be queued by its projector; not counted.
    set_summary_attr(&env, "p8", "pendingTags", stuck(&["product:p8"])).await?;
    let reconciler = env.reconciler();

    let dry = env
        .reconcile(&reconciler, json!({"dryRun": true}), BUDGET)
        .await?;
    assert_eq!(dry.stuck_outboxes, 2, "{dry:?}");
    assert_eq!(dry.discrepancies(), 2, "{dry:?}");
    assert!(
        env.queued_tags().await?.is_empty(),
        "a dry run queues nothing"
    );

    let real = env.reconcile(&reconciler, json!({}), BUDGET).await?;
    assert_eq!((real.stuck_outboxes, real.repaired), (2, 2), "{real:?}");
    let tags = env.queued_tags().await?;
    for tag in ["product:p4", "store:s1:products", "product:p6"] {
        assert!(tags.iter().any(|t| t == tag), "{tag} not queued: {tags:?}");
    }
    for id in ["p4", "p6", "p8"] {
        let left = env.stored(id).await?.unwrap().pending_tags;
        assert!(left.is_empty(), "{id} still holds {left:?}");
    }

    let again = env.reconcile(&reconciler, json!({}), BUDGET).await?;
    assert_eq!(again.discrepancies(), 0, "{again:?}");
    Ok(())
}

/// An outbox is queued because it holds tags, not because a clock says it is old: one written
/// seconds ago, one stamped an hour ahead by a writer whose clock runs fast, and a fresh
/// tombstone's are all queued and cleared (a duplicate of their projector's send at worst).
/// None of them counts as stuck: only an old outbox is a discrepancy.
#[tokio::test]
async fn every_pending_outbox_is_queued_whatever_its_clock_says() -> Result<()> {
    let env = seeded().await?;
    env.delete_product("p10").await?;
    env.project_pending().await?;
    env.drain_queue("TagQueue").await?;
    let pending = |id: &str| AttributeValue::Ss(vec![format!("product:{id}")]);
    let ahead = chrono::Utc::now() + chrono::Duration::hours(1);
    let ahead = ahead.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for id in ["p8", "p9", "p10"] {
        set_summary_attr(&env, id, "pendingTags", pending(id)).await?;
    }
    set_summary_attr(&env, "p9", "updatedAt", AttributeValue::S(ahead)).await?;

    let report = env.reconcile(&env.reconciler(), json!({}), BUDGET).await?;
    assert_eq!(report.discrepancies(), 0, "{report:?}");
    let tags = env.queued_tags().await?;
    for id in ["p8", "p9", "p10"] {
        let tag = format!("product:{id}");
        assert!(tags.contains(&tag), "{tag} not queued: {tags:?}");
        let left = env.stored(id).await?.expect("stored").pending_tags;
        assert!(left.is_empty(), "{id} still holds {left:?}");
    }
    let tombstone = env.stored("p10").await?.expect("a tombstone");
    assert!(
        tombstone.expires_at.is_some(),
        "its TTL starts: {tombstone:?}"
    );
    Ok(())
}

/// A deleted product whose tags never went out (the projector's publish failed, and the
/// stream gave up) keeps its tombstone until they do: no TTL while its outbox holds tags, so
/// DynamoDB cannot delete the tags with it. A run that reads Summaries page by page (as store
/// runs and segments past `max_joined_rows` do) queues them, however old, and the TTL starts.
#[tokio::test]
async fn a_tombstone_keeps_its_tags_until_a_run_queues_them() -> Result<()> {
    let env = seeded().await?;
    env.delete_product("p6").await?;
    let mut broken = env.resources().projector_config(StockTagPolicy::Eager)?;
    broken.tag_queue_url = format!("{}-gone", broken.tag_queue_url);
    let failed = env
        .projector_with(&broken)
        .handle(env.products_event().await?)
        .await?;
    assert!(
        !failed.batch_item_failures.is_empty(),
        "the publish should have failed"
    );

    // Written, with its tags pending and no expiry.
    let tombstone = env.stored("p6").await?.expect("a tombstone");
    assert!(tombstone.record.is_none() && !tombstone.pending_tags.is_empty());
    assert_eq!(
        tombstone.expires_at, None,
        "TTL would delete the pending tags"
    );

    // A day and more later: older than any stuck-outbox threshold, and than a TTL would be.
    let long_ago = chrono::Utc::now().timestamp() - 25 * 60 * 60;
    set_summary_attr(
        &env,
        "p6",
        "deletedAt",
        AttributeValue::N(long_ago.to_string()),
    )
    .await?;
    let mut reconciler = env.reconciler();
    reconciler.worker_mut().max_joined_rows = 0;
    let report = env.reconcile(&reconciler, json!({}), BUDGET).await?;
    assert_eq!(report.stuck_outboxes, 1, "{report:?}");
    let tags = env.queued_tags().await?;
    for tag in ["product:p6", "inventory:p6", "store:s1:products"] {
        assert!(tags.iter().any(|t| t == tag), "{tag} not queued: {tags:?}");
    }
    let flushed = env.stored("p6").await?.expect("still a tombstone");
    assert!(flushed.pending_tags.is_empty(), "{flushed:?}");
    let now = chrono::Utc::now().timestamp();
    assert!(flushed.expires_at.is_some_and(|t| t > now), "{flushed:?}");
    Ok(())
}

/// The backfill: products with nothing in Summaries are created in bulk from the rows the
/// segment scanned, their tags queued and their outboxes emptied.
#[tokio::test]
async fn a_backfill_creates_every_summary_queues_its_tags_and_empties_the_outboxes() -> Result<()> {
    // Set up: rows only; the projector never ran.
    let env = TestEnv::new().await?;
    for i in 0..12 {
        let id = format!("p{i}");
        env.put_product(&product(&id, if i % 2 == 0 { "s1" } else { "s2" }))
            .await?;
        env.put_stock(&stock(&id, "l1", 5, 1)).await?;
    }

    // Drive: one run, two segments.
    let report = env
        .reconcile(&env.reconciler(), json!({"segments": 2}), BUDGET)
        .await?;

    // Verify.
    assert_eq!((report.missing, report.repaired), (12, 12), "{report:?}");
    for i in 0..12 {
        let id = format!("p{i}");
        env.assert_converged(&id).await?;
        let stored = env.stored(&id).await?.expect("a summary");
        assert_eq!(stored.revision, 1, "{id}: one write");
        assert!(
            stored.pending_tags.is_empty(),
            "{id} keeps {:?}",
            stored.pending_tags
        );
        assert!(
            stored.covers.is_some(),
            "{id}: its versions are kept for the skip"
        );
    }
    let tags = env.queued_tags().await?;
    for tag in [
        "product:p0",
        "product:p11",
        "store:s1:products",
        "store:s2:products",
    ] {
        assert!(tags.iter().any(|t| t == tag), "{tag} not queued: {tags:?}");
    }
    Ok(())
}

/// The backfill's bulk create never overwrites what a projector wrote after the segment was
/// scanned: only products with no item at all are written.
#[tokio::test]
async fn a_bulk_create_writes_only_where_nothing_is_stored() -> Result<()> {
    let env = TestEnv::new().await?;
    let store = SummaryStore::new(env.dynamodb.clone(), &env.tables.summaries);
    let record = |id: &str, cents| catalog_core::model::SummaryRecord {
        summary: catalog_core::model::ProductSummary {
            price: MinorUnits::new(cents).expect("a price"),
            ..summary(id, "s1")
        },
        updated_at: "2026-12-06T00:00:00.000Z".into(),
    };
    // The projector's newer summary of p1, and a tombstone of p2.
    let (p1, p2, p3) = (
        ProductId::parse("p1")?,
        ProductId::parse("p2")?,
        ProductId::parse("p3")?,
    );
    let none = TagSet::new();
    store
        .put(
            &p1,
            Some(&record("p1", 500)),
            None,
            &none,
            &Default::default(),
            0,
        )
        .await?;
    store
        .put(&p2, None, None, &none, &Default::default(), 0)
        .await?;

    let (old, covers) = (record("p1", 100), Default::default());
    let new = |id| catalog::store::NewSummary {
        id,
        record: &old,
        pending: &none,
        covers: &covers,
    };
    let written = store
        .create_many(&[new(&p1), new(&p2), new(&p3)], 0)
        .await?;

    assert_eq!(written, [false, false, true]);
    assert_eq!(env.summary("p1").await?.map(|s| s.price.get()), Some(500));
    assert_eq!(env.summary("p2").await?, None, "the tombstone stays");
    assert!(env.summary("p3").await?.is_some());
    Ok(())
}

/// The batched index check reads each index partition's span with one Query, up to its item
/// budget, and the positions past it one by one: every verdict is the one-by-one verdict.
#[tokio::test]
async fn the_batched_index_check_judges_each_product_as_the_single_check_does() -> Result<()> {
    // Set up: 80 summaries in one store, listed in every index: more than the budget of the
    // five products asked about below.
    let env = TestEnv::new().await?;
    let store = SummaryStore::new(env.dynamodb.clone(), &env.tables.summaries);
    let card = |i: usize| summary(&format!("p{i:02}"), "s1");
    for i in 0..80 {
        let record = catalog_core::model::SummaryRecord {
            summary: card(i),
            updated_at: "2026-12-06T00:00:00.000Z".into(),
        };
        let id = record.summary.product_id.clone();
        store
            .put(
                &id,
                Some(&record),
                None,
                &TagSet::new(),
                &Default::default(),
                0,
            )
            .await?;
    }

    // Drive: the first and last of the store (their span is wider than its budget), one whose
    // price the index does not hold yet, one the index still holds though it should be gone,
    // and one gone that the index never held.
    let repriced = catalog_core::model::ProductSummary {
        price: MinorUnits::new(5).expect("a price"),
        ..card(15)
    };
    let held = catalog_core::listing::check::positions(&card(10));
    let never = catalog_core::listing::check::positions(&summary("zz", "s1"));
    let (first, last) = (card(0), card(79));
    let asked = [
        (Some(&first), &[][..]),
        (Some(&last), &[][..]),
        (Some(&repriced), &[][..]),
        (None, &held[..]),
        (None, &never[..]),
    ];
    let batched = store.indexes_show(&asked, StockTagPolicy::Eager).await?;

    // Verify: against the one-by-one check, and the truth.
    let mut single = Vec::new();
    for (current, left) in asked {
        single.push(
            store
                .index_shows(current, left, StockTagPolicy::Eager)
                .await?,
        );
    }
    assert_eq!(batched, single);
    assert_eq!(batched, [true, true, false, false, true]);
    Ok(())
}
