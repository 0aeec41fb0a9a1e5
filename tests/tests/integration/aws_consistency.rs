//! The local stack's AWS-consistency mode is as weak as AWS: the listing index lags a write,
//! eventually consistent reads of Summaries may return the old item, and the pages that must
//! be fresh after a revalidation are (product and cart reads are consistent; a listing's tag
//! goes out only once the index shows the write, however long it lags).

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use catalog::store::SummaryStore;
use catalog_core::ids::ProductId;
use catalog_core::testing::product;
use catalog_local::dev::edits::Editor;
use catalog_local::layers::consistency::AwsConsistency;
use catalog_local::stack::{Layer, Options, Stack};
use catalog_tests::eventually::within;

/// A GET on the listing API: (status, body).
async fn get(base: &str, path: &str) -> Result<(u16, String)> {
    let response = catalog_tests::storefront_stub::get(base, path).await?;
    let status = response.split(' ').nth(1).unwrap_or("0").parse()?;
    Ok((status, response))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_lags_and_card_reads_do_not() -> Result<()> {
    let (dynamodb, sqs) = catalog_tests::endpoints();
    let lag = Duration::from_millis(2000);
    let stack = Stack::start(
        &catalog_local::workspace_root(),
        Options {
            prefix: format!("weak{}-", std::process::id()),
            endpoints: Some((dynamodb, sqs)),
            layers: vec![Layer::AwsConsistency(AwsConsistency {
                lag,
                hold: Duration::ZERO,
                seed: 3,
            })],
            ..Options::default()
        },
    )
    .await?;
    let editor = Editor::new(
        stack.dynamodb.clone(),
        stack.endpoints.tables.catalog.clone(),
    );
    let summaries = SummaryStore::new(
        stack.dynamodb.clone(),
        &stack.endpoints.tables.catalog.summaries,
    );
    let id = ProductId::parse("p-weak")?;
    let written = Instant::now();
    editor.put_product(product("p-weak", "store-w")).await?;
    let projected = within(Duration::from_secs(10))
        .holds(async || {
            ensure!(summaries.get(&id).await?.is_some(), "never projected");
            Ok(written.elapsed())
        })
        .await?;
    let api = &stack.endpoints.listing_api;

    // Right after the write: the product page (a consistent read) has it, the listing (the
    // index, through the lagging replica) does not yet.
    let (status, _) = get(api, "/products/p-weak").await?;
    ensure!(status == 200, "product page {status} right after the write");
    let (_, listing) = get(api, "/stores/store-w/products").await?;
    ensure!(
        !listing.contains("p-weak"),
        "the listing showed the product {:?} after the write, before the index lag: {listing}",
        written.elapsed()
    );
    // Within the lag (at least half of it, at most all of it), the listing catches up.
    let seen = within(lag * 3)
        .holds(async || {
            let (_, listing) = get(api, "/stores/store-w/products").await?;
            ensure!(listing.contains("p-weak"), "the index never caught up");
            Ok(written.elapsed())
        })
        .await?;
    ensure!(
        seen >= projected + lag / 2 - Duration::from_millis(100),
        "listed after {seen:?}, projected after {projected:?}: the lag was not applied"
    );
    let (lagging, _, replicated) = stack.consistency.as_ref().unwrap().snapshot();
    ensure!(lagging > 0 && replicated > 0, "{lagging} {replicated}");
    stack.stop().await
}

/// Starts a stack whose listing index lags writes by up to `lag` (none: DynamoDB Local as is).
async fn lagging_stack(name: &str, lag: Option<Duration>) -> Result<Stack> {
    let (dynamodb, sqs) = catalog_tests::endpoints();
    Stack::start(
        &catalog_local::workspace_root(),
        Options {
            prefix: format!("{name}{}-", std::process::id()),
            endpoints: Some((dynamodb, sqs)),
            layers: lag
                .map(|lag| {
                    Layer::AwsConsistency(AwsConsistency {
                        lag,
                        hold: Duration::ZERO,
                        seed: 5,
                    })
                })
                .into_iter()
                .collect(),
            ..Options::default()
        },
    )
    .await
}

/// A store-tag message the tag queue delivered: how long after the write, and whether the
/// listing (what a re-render reads) already showed the product then.
#[derive(Debug)]
struct ListingTag {
    after: Duration,
    listed: bool,
}

/// Every message with `store:{store}:products` the tag queue delivers until `until` after
/// `written`, each checked against the listing API as it comes.
async fn listing_tags(
    stack: &Stack,
    (store, id): (&str, &str),
    written: Instant,
    until: Duration,
) -> Result<Vec<ListingTag>> {
    let queue = &stack.endpoints.queues.tag_queue;
    let tag = format!("store:{store}:products");
    let mut seen = Vec::new();
    while written.elapsed() < until {
        let received = stack.sqs.receive_message().queue_url(queue);
        let messages = received.max_number_of_messages(10).send().await?;
        for m in messages.messages.unwrap_or_default() {
            let body: serde_json::Value = serde_json::from_str(m.body().unwrap_or_default())?;
            if body["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| *t == *tag))
            {
                let after = written.elapsed();
                let (_, listing) = get(
                    &stack.endpoints.listing_api,
                    &format!("/stores/{store}/products"),
                )
                .await?;
                seen.push(ListingTag {
                    after,
                    listed: listing.contains(id),
                });
            }
            let handle = m.receipt_handle;
            stack
                .sqs
                .delete_message()
                .queue_url(queue)
                .set_receipt_handle(handle)
                .send()
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(seen)
}

/// A listing's tag goes out once the index shows the change, however long the index lags:
/// every re-render it causes reads the new listing, the first within `lag + 1.5 s`.
async fn listing_tags_follow_the_index(lag: Duration) -> Result<()> {
    let name = format!("lag{}s", lag.as_secs());
    let stack = lagging_stack(&name, Some(lag)).await?;
    let editor = Editor::new(
        stack.dynamodb.clone(),
        stack.endpoints.tables.catalog.clone(),
    );
    let (store, id) = (format!("store-{name}"), format!("p-{name}"));
    let written = Instant::now();
    editor.put_product(product(&id, &store)).await?;
    let tags = listing_tags(
        &stack,
        (&store, &id),
        written,
        lag * 2 + Duration::from_secs(3),
    )
    .await?;
    ensure!(!tags.is_empty(), "no listing tag was queued");
    ensure!(
        tags.iter().all(|t| t.listed),
        "a listing tag went out before the index showed the product: {tags:?}"
    );
    let first = tags[0].after;
    ensure!(
        first <= lag + Duration::from_millis(1500),
        "first listing tag after {first:?}"
    );
    stack.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_tags_wait_for_an_index_lagging_6_s() -> Result<()> {
    listing_tags_follow_the_index(Duration::from_secs(6)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_tags_wait_for_an_index_lagging_20_s() -> Result<()> {
    listing_tags_follow_the_index(Duration::from_secs(20)).await
}

/// Without index lag, a listing change costs one listing render: its tag goes out once,
/// with the product's own tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_current_index_costs_one_listing_render() -> Result<()> {
    let stack = lagging_stack("lag0s", None).await?;
    let editor = Editor::new(
        stack.dynamodb.clone(),
        stack.endpoints.tables.catalog.clone(),
    );
    let written = Instant::now();
    editor.put_product(product("p-lag0", "store-lag0")).await?;
    let tags = listing_tags(
        &stack,
        ("store-lag0", "p-lag0"),
        written,
        Duration::from_secs(7),
    )
    .await?;
    ensure!(tags.len() == 1 && tags[0].listed, "listing tags {tags:?}");
    stack.stop().await
}
