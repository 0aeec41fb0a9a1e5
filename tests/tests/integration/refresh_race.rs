//! The refresh protocol under an interleaving DynamoDB Local never produces by itself: one
//! refresh's conditional write is held back (a gate in front of its PutItem) while another
//! invocation reads, decides and finishes. The summary must still end as the projection of
//! the final rows.

use catalog_tests::Inspect;
use std::time::Duration;

use anyhow::{ensure, Result};
use catalog::refresh::{Change, Refresher};
use catalog::store::{SourceStore, SummaryStore};
use catalog_core::ids::ProductId;
use catalog_core::tags::StockTagPolicy;
use catalog_core::testing::{product, stock};
use catalog_local::layers::faults::Gate;
use catalog_local::services;
use catalog_tests::TestEnv;

fn refresher(env: &TestEnv, dynamodb: aws_sdk_dynamodb::Client) -> Refresher {
    Refresher::new(
        SourceStore::new(dynamodb.clone(), &env.tables),
        SummaryStore::new(dynamodb, &env.tables.summaries),
        StockTagPolicy::Eager,
    )
}

/// Issue 13, defect 1: an "unchanged" verdict must fence a slower, stale writer.
///
/// Summary at revision 1 shows 5 in stock. A slug edit (not on the card) and a reservation
/// (5 -> 0) arrive on the two streams. The Products-stream refresh W reads revision 1 and
/// stock 0 and computes 0; its PutItem is held. The reservation is released (0 -> 5). The
/// Inventory-stream refresh X reads 5 = stored: unchanged. Then W's write is let through.
#[tokio::test]
async fn an_unchanged_verdict_fences_a_slower_stale_writer() -> Result<()> {
    let env = TestEnv::without_streams().await?;
    let id = ProductId::parse("p-race")?;
    let mut p = product("p-race", "store-1");
    env.put_product(&p).await?;
    env.put_stock(&stock("p-race", "loc-1", 5, 0)).await?;
    let plain = refresher(&env, env.dynamodb.clone());
    plain.refresh(std::slice::from_ref(&id)).await[0].clone()?;
    ensure!(env.stored("p-race").await?.map(|s| s.revision) == Some(1));

    p.slug = "p-race-renamed".into();
    p.version += 1;
    env.put_product(&p).await?;
    env.put_stock(&stock("p-race", "loc-1", 5, 5)).await?;

    let gate = Gate::new("PutItem");
    let config = services::sdk_config(&catalog_tests::endpoints().0).await;
    let gated = refresher(
        &env,
        services::wrapped_dynamodb(&config, |http| gate.wrap(http)),
    );
    let slow = {
        let id = id.clone();
        tokio::spawn(async move { gated.refresh(&[id]).await })
    };
    tokio::time::timeout(Duration::from_secs(10), gate.held()).await?;

    env.put_stock(&stock("p-race", "loc-1", 5, 0)).await?;
    let fast = plain.refresh(std::slice::from_ref(&id)).await[0].clone()?;
    ensure!(fast.change == Change::Unchanged, "X finds 5 = stored");
    gate.release();
    slow.await?[0].clone()?;

    let summary = env.summary("p-race").await?;
    ensure!(
        summary == env.expected("p-race").await?,
        "the summary must match the final rows (5 in stock), found {:?}",
        summary.map(|s| s.inventory_available)
    );
    Ok(())
}
