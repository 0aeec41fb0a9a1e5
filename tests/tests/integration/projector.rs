//! summary-projector against DynamoDB Local and the SQS emulator: real stream records, in
//! Lambda's event shape, handed to the real handler. Every scenario ends by checking that the
//! summary equals the projection of the final source rows.

use anyhow::Result;
use catalog_core::ids::StoreId;
use catalog_core::model::{MinorUnits, ProductStatus};
use catalog_core::testing::{product, stock};
use catalog_tests::Inspect;
use catalog_tests::TestEnv;

#[tokio::test]
async fn create_projects_the_product_and_its_stock() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&product("p1", "s1")).await?;
    env.put_stock(&stock("p1", "l1", 10, 2)).await?;
    env.put_stock(&stock("p1", "l2", 3, 5)).await?;
    env.project_pending().await?;

    let summary = env.summary("p1").await?.expect("a summary");
    assert_eq!(summary.inventory_available, Some(8));
    assert!(summary.active);
    assert_eq!(
        env.queued_tags().await?,
        ["inventory:p1", "product:p1", "store:s1:products"]
    );
    env.assert_converged("p1").await
}

#[tokio::test]
async fn price_change_invalidates_the_product_and_its_listing_only() -> Result<()> {
    let env = TestEnv::new().await?;
    let mut p = product("p1", "s1");
    env.put_product(&p).await?;
    env.put_stock(&stock("p1", "l1", 4, 0)).await?;
    env.project_pending().await?;
    env.queued_tags().await?;

    p.price = MinorUnits::new(2499)?;
    p.version += 1;
    env.put_product(&p).await?;
    env.project_pending().await?;
    assert_eq!(env.summary("p1").await?.unwrap().price.get(), 2499);
    assert_eq!(
        env.queued_tags().await?,
        ["product:p1", "store:s1:products"]
    );
    env.assert_converged("p1").await
}

#[tokio::test]
async fn stock_change_at_two_locations_sums_and_invalidates_stock() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&product("p1", "s1")).await?;
    env.put_stock(&stock("p1", "l1", 4, 0)).await?;
    env.put_stock(&stock("p1", "l2", 4, 0)).await?;
    env.project_pending().await?;
    env.queued_tags().await?;

    let mut l1 = stock("p1", "l1", 1, 0);
    l1.version = 2;
    let mut l2 = stock("p1", "l2", 9, 3);
    l2.version = 2;
    env.put_stock(&l1).await?;
    env.put_stock(&l2).await?;
    env.project_pending().await?;
    assert_eq!(
        env.summary("p1").await?.unwrap().inventory_available,
        Some(7)
    );
    assert_eq!(
        env.queued_tags().await?,
        ["inventory:p1", "store:s1:products"]
    );
    env.assert_converged("p1").await
}

#[tokio::test]
async fn archive_deactivates_and_delete_leaves_no_summary() -> Result<()> {
    let env = TestEnv::new().await?;
    let mut p = product("p1", "s1");
    env.put_product(&p).await?;
    env.project_pending().await?;
    env.queued_tags().await?;

    p.status = ProductStatus::Archived;
    p.version += 1;
    env.put_product(&p).await?;
    env.project_pending().await?;
    assert!(!env.summary("p1").await?.unwrap().active);
    assert_eq!(
        env.queued_tags().await?,
        ["product:p1", "store:s1:products"]
    );
    env.assert_converged("p1").await?;

    env.delete_product("p1").await?;
    env.project_pending().await?;
    assert_eq!(env.summary("p1").await?, None);
    let stored = env.stored("p1").await?.expect("a tombstone");
    assert!(stored.record.is_none());
    assert_eq!(
        env.queued_tags().await?,
        ["inventory:p1", "product:p1", "store:s1:products"]
    );
    env.assert_converged("p1").await
}

#[tokio::test]
async fn store_move_invalidates_both_listings() -> Result<()> {
    let env = TestEnv::new().await?;
    let mut p = product("p1", "s1");
    env.put_product(&p).await?;
    env.project_pending().await?;
    env.queued_tags().await?;

    p.store_id = StoreId::parse("s2")?;
    p.version += 1;
    env.put_product(&p).await?;
    env.project_pending().await?;
    assert_eq!(env.summary("p1").await?.unwrap().store_id.as_str(), "s2");
    assert_eq!(
        env.queued_tags().await?,
        ["product:p1", "store:s1:products", "store:s2:products"]
    );
    env.assert_converged("p1").await
}

#[tokio::test]
async fn a_duplicated_batch_writes_nothing_and_queues_nothing() -> Result<()> {
    let env = TestEnv::new().await?;
    let mut p = product("p1", "s1");
    env.put_product(&p).await?;
    let event = env.products_event().await?;
    let projector = env.projector();
    projector.handle(event.clone()).await?;
    let first = env.stored("p1").await?.unwrap();
    assert_eq!(env.tag_messages().await?.len(), 1);

    // The summary covers the record: no write at all.
    let response = projector.handle(event).await?;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(env.stored("p1").await?.unwrap(), first);
    assert!(env.tag_messages().await?.is_empty());

    // A record no version places (its writer kept the version) is refreshed again: content
    // unchanged, so only the fence.
    p.slug = "renamed-slug".into();
    env.put_product(&p).await?;
    let unplaced = env.products_event().await?;
    projector.handle(unplaced.clone()).await?;
    let before = env.stored("p1").await?.unwrap();
    projector.handle(unplaced).await?;
    let after = env.stored("p1").await?.unwrap();
    assert_eq!(
        after.record, before.record,
        "content and updatedAt unchanged"
    );
    assert_eq!(after.revision, before.revision + 1, "only the fence");
    assert!(env.tag_messages().await?.is_empty());
    env.assert_converged("p1").await
}

#[tokio::test]
async fn a_batch_replayed_after_later_changes_is_a_harmless_success() -> Result<()> {
    let env = TestEnv::new().await?;
    let mut p = product("p1", "s1");
    env.put_product(&p).await?;
    let old_event = env.products_event().await?;
    let projector = env.projector();
    projector.handle(old_event.clone()).await?;

    p.name = "Renamed".into();
    p.version += 1;
    env.put_product(&p).await?;
    env.project_pending().await?;
    env.queued_tags().await?;

    // The crash-and-replay case: the first batch comes again, after the rename.
    let response = projector.handle(old_event).await?;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(env.summary("p1").await?.unwrap().title, "Renamed");
    assert!(env.queued_tags().await?.is_empty());
    env.assert_converged("p1").await
}

#[tokio::test]
async fn inventory_records_before_product_records_converge() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_stock(&stock("p1", "l1", 6, 1)).await?;
    env.put_product(&product("p1", "s1")).await?;
    env.put_stock(&stock("p1", "l2", 2, 0)).await?;
    let projector = env.projector();
    // Reversed: the Inventory batch first, then the Products batch.
    let inventory = env.inventory_event().await?;
    let products = env.products_event().await?;
    projector.handle(inventory).await?;
    projector.handle(products).await?;
    assert_eq!(
        env.summary("p1").await?.unwrap().inventory_available,
        Some(7)
    );
    env.assert_converged("p1").await?;

    // And a stock row for a product that does not exist yet leaves no live summary.
    env.put_stock(&stock("p9", "l1", 1, 0)).await?;
    env.project_pending().await?;
    assert_eq!(env.summary("p9").await?, None);
    env.assert_converged("p9").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_invocations_for_one_product_converge() -> Result<()> {
    let env = TestEnv::new().await?;
    let mut p = product("p1", "s1");
    env.put_product(&p).await?;
    env.project_pending().await?;
    for round in 0..10u32 {
        p.price = MinorUnits::new(1000 + u64::from(round))?;
        p.version += 1;
        env.put_product(&p).await?;
        let mut row = stock("p1", "l1", i64::from(round), 0);
        row.version = u64::from(round) + 2;
        env.put_stock(&row).await?;
        let products = env.products_event().await?;
        let inventory = env.inventory_event().await?;
        // One invocation per table's shard, at the same time, as Lambda runs them.
        let (a, b) = (env.projector(), env.projector());
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { a.handle(products).await }),
            tokio::spawn(async move { b.handle(inventory).await })
        );
        assert!(ra??.batch_item_failures.is_empty());
        assert!(rb??.batch_item_failures.is_empty());
        env.assert_converged("p1").await?;
    }
    assert_eq!(env.summary("p1").await?.unwrap().price.get(), 1009);
    Ok(())
}

#[tokio::test]
async fn a_poison_record_is_parked_and_the_rest_of_the_batch_goes_on() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&product("good", "s1")).await?;
    // A writer stored a fractional price: no retry can project this row.
    let mut bad =
        serde_dynamo::to_item::<_, std::collections::HashMap<_, _>>(product("bad", "s1"))?;
    bad.insert(
        "price".into(),
        aws_sdk_dynamodb::types::AttributeValue::N("19.99".into()),
    );
    env.put_item(&env.tables.products.clone(), bad).await?;
    env.put_product(&product("good2", "s1")).await?;

    let event = env.products_event().await?;
    let response = env.projector().handle(event).await?;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert!(env.summary("good").await?.is_some());
    assert!(env.summary("good2").await?.is_some());
    assert_eq!(env.summary("bad").await?, None);

    let parked = env.parked().await?;
    assert_eq!(parked.len(), 1, "{parked:#?}");
    assert_eq!(parked[0].keys["productId"]["S"], "bad");
    assert!(parked[0].reason.contains("price"), "{}", parked[0].reason);
    assert!(parked[0].sequence_number.is_some());
    env.assert_converged("good").await
}

#[tokio::test]
async fn a_record_without_a_product_key_is_parked() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&product("p1", "s1")).await?;
    let mut event = env.products_event().await?;
    let mut broken = event.records[0].clone();
    broken.change.keys = serde_dynamo::Item::from(std::collections::HashMap::<
        String,
        serde_dynamo::AttributeValue,
    >::new());
    broken.event_id = "broken".into();
    event.records.insert(0, broken);
    let response = env.projector().handle(event).await?;
    assert!(response.batch_item_failures.is_empty());
    let parked = env.parked().await?;
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].event_id, "broken");
    assert!(
        parked[0].reason.contains("productId"),
        "{}",
        parked[0].reason
    );
    env.assert_converged("p1").await
}

#[tokio::test]
async fn transient_failures_are_reported_from_the_first_failed_record() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&product("p1", "s1")).await?;
    env.put_product(&product("p2", "s1")).await?;
    let event = env.products_event().await?;
    let first_sequence = event.records[0].change.sequence_number.clone();

    // The summaries table is unreachable (missing): a retry could succeed, so nothing is parked.
    let mut broken = env.config.clone();
    broken.tables.summaries = "no-such-table".into();
    let response = env.projector_with(&broken).handle(event.clone()).await?;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier,
        first_sequence
    );
    assert!(env.parked().await?.is_empty());

    // Lambda retries the batch: now it goes through.
    let response = env.projector().handle(event).await?;
    assert!(response.batch_item_failures.is_empty());
    env.assert_converged("p1").await?;
    env.assert_converged("p2").await
}

#[tokio::test]
async fn tags_survive_a_queue_outage_in_the_summary_outbox() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&product("p1", "s1")).await?;
    let event = env.products_event().await?;

    let mut broken = env.config.clone();
    broken.tag_queue_url = format!("{}-gone", env.config.tag_queue_url);
    let response = env.projector_with(&broken).handle(event.clone()).await?;
    assert_eq!(
        response.batch_item_failures.len(),
        1,
        "the send failed, so retry"
    );
    let stored = env.stored("p1").await?.unwrap();
    assert!(stored.record.is_some(), "the summary itself was written");
    assert_eq!(
        stored.pending_tags.len(),
        3,
        "and its tags wait in the outbox"
    );

    // The retry finds the summary current, but sends what the outbox still holds.
    let response = env.projector().handle(event).await?;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        env.queued_tags().await?,
        ["inventory:p1", "product:p1", "store:s1:products"]
    );
    assert!(env.stored("p1").await?.unwrap().pending_tags.is_empty());
    env.assert_converged("p1").await
}

#[tokio::test]
async fn a_product_deleted_while_being_projected_is_not_resurrected() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&product("p1", "s1")).await?;
    let create = env.products_event().await?;
    env.delete_product("p1").await?;
    let delete = env.products_event().await?;
    let projector = env.projector();
    // The delete is projected first (a tombstone), then the stale create arrives.
    projector.handle(delete).await?;
    projector.handle(create).await?;
    assert_eq!(env.summary("p1").await?, None);
    env.assert_converged("p1").await
}

/// A listing-check message that does not parse is never dropped: it is reported until SQS
/// moves it to the listing-check dead-letter queue (alarmed), beside the checks that did.
#[tokio::test]
async fn a_listing_check_that_does_not_parse_is_reported_for_the_dead_letter_queue() -> Result<()> {
    let env = TestEnv::new().await?;
    let event = serde_json::json!({"Records": [
        {"messageId": "cut", "body": "{\"version\":1,\"productId\":", "eventSource": "aws:sqs"},
        {"messageId": "ok", "eventSource": "aws:sqs",
         "body": "{\"version\":1,\"productId\":\"p1\",\"tags\":[\"store:s1:products\"],\"left\":[],\"eventTime\":\"2026-11-26T04:15:00.000Z\",\"waitedSecs\":0}"}
    ]});
    let input = summary_projector::Input::parse(event)?;
    let answer = serde_json::to_value(env.projector().handle_input(input).await?)?;
    assert_eq!(
        answer["batchItemFailures"],
        serde_json::json!([{"itemIdentifier": "cut"}])
    );
    assert_eq!(env.queued_tags().await?, ["store:s1:products"]);
    Ok(())
}

/// Each record of `event` as a batch of its own, in stream order.
fn one_record_batches(
    event: aws_lambda_events::event::dynamodb::Event,
) -> Vec<aws_lambda_events::event::dynamodb::Event> {
    event
        .records
        .into_iter()
        .map(|record| {
            let mut batch = aws_lambda_events::event::dynamodb::Event::default();
            batch.records = vec![record];
            batch
        })
        .collect()
}

#[tokio::test]
async fn records_a_caught_up_summary_covers_cost_no_write() -> Result<()> {
    let env = TestEnv::new().await?;
    // A backlog: a product created with its stock, three price changes and a stock change.
    let mut p = product("p1", "s1");
    env.put_product(&p).await?;
    env.put_stock(&stock("p1", "l1", 10, 0)).await?;
    for price in [1500, 1600, 1700] {
        p.price = MinorUnits::new(price)?;
        p.version += 1;
        env.put_product(&p).await?;
    }
    let mut row = stock("p1", "l1", 4, 0);
    row.version = 2;
    env.put_stock(&row).await?;
    let mut batches = one_record_batches(env.products_event().await?);
    batches.extend(one_record_batches(env.inventory_event().await?));

    // The first batch (the product's INSERT) reads the final rows; every later record, the
    // stock row's INSERT too, is already in its summary.
    let projector = env.projector();
    projector.handle(batches.remove(0)).await?;
    let caught_up = env.stored("p1").await?.expect("a summary");
    env.tag_messages().await?;
    for batch in batches {
        let response = projector.handle(batch).await?;
        assert!(response.batch_item_failures.is_empty());
    }
    let after = env.stored("p1").await?.expect("a summary");
    assert_eq!(
        after.revision, caught_up.revision,
        "no write, not even a fence"
    );
    assert!(env.tag_messages().await?.is_empty());
    env.assert_converged("p1").await
}

#[tokio::test]
async fn a_re_created_product_is_never_taken_for_the_old_one() -> Result<()> {
    let env = TestEnv::new().await?;
    let mut p = product("p1", "s1");
    p.version = 5;
    env.put_product(&p).await?;
    env.project_pending().await?;

    // Deleted and created again: its versions restart below the 5 the summary covers.
    env.delete_product("p1").await?;
    p.version = 1;
    env.put_product(&p).await?;
    p.price = MinorUnits::new(4200)?;
    p.version = 2;
    env.put_product(&p).await?;

    // In stream order, one record at a time: REMOVE, INSERT, then MODIFY to version 2.
    let projector = env.projector();
    let batches = one_record_batches(env.products_event().await?);
    assert_eq!(batches.len(), 3);
    for batch in batches {
        projector.handle(batch).await?;
    }
    assert_eq!(
        env.summary("p1").await?.expect("a summary").price.get(),
        4200
    );
    env.assert_converged("p1").await
}

#[tokio::test]
async fn a_write_that_does_not_raise_the_version_is_never_skipped() -> Result<()> {
    let env = TestEnv::new().await?;
    let mut p = product("p1", "s1");
    env.put_product(&p).await?;
    env.project_pending().await?;

    // A writer that changes the price and leaves the version as it was.
    p.price = MinorUnits::new(999)?;
    env.put_product(&p).await?;
    env.project_pending().await?;
    assert_eq!(
        env.summary("p1").await?.expect("a summary").price.get(),
        999
    );
    env.assert_converged("p1").await
}
