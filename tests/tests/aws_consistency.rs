//! The local stack's AWS-consistency mode is as weak as AWS: the listing index lags a write,
//! eventually consistent reads of Summaries may return the old item, and the pages that must
//! be fresh after a revalidation are (product and cart reads are consistent; listing pages
//! get their rechecks).

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use catalog::store::SummaryStore;
use catalog_core::ids::ProductId;
use catalog_core::testing::product;
use catalog_local::consistency::AwsConsistency;
use catalog_local::edits::Editor;
use catalog_local::stack::{Options, Stack};

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
            aws_consistency: Some(AwsConsistency {
                lag,
                hold: Duration::ZERO,
                seed: 3,
            }),
            ..Options::default()
        },
    )
    .await?;
    let editor = Editor::new(stack.dynamodb.clone(), stack.endpoints.tables.clone());
    let summaries = SummaryStore::new(stack.dynamodb.clone(), &stack.endpoints.tables.summaries);
    let id = ProductId::parse("p-weak")?;
    let written = Instant::now();
    editor.put_product(product("p-weak", "store-w")).await?;
    while summaries.get(&id).await?.is_none() {
        ensure!(
            written.elapsed() < Duration::from_secs(10),
            "never projected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let projected = written.elapsed();
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
    let seen = loop {
        let (_, listing) = get(api, "/stores/store-w/products").await?;
        if listing.contains("p-weak") {
            break written.elapsed();
        }
        ensure!(written.elapsed() < lag * 3, "the index never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    ensure!(
        seen >= projected + lag / 2 - Duration::from_millis(100),
        "listed after {seen:?}, projected after {projected:?}: the lag was not applied"
    );
    let (lagging, _, replicated) = stack.consistency.as_ref().unwrap().snapshot();
    ensure!(lagging > 0 && replicated > 0, "{lagging} {replicated}");
    stack.stop().await
}
