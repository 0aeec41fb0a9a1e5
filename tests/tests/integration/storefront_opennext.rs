//! The storefront as OpenNext builds it for Lambda (examples/storefront/open-next.config.ts),
//! two instances sharing one file-system incremental cache as Lambda instances share S3, its
//! tag cache on the tag table, in a real browser: a price change shows on the product and
//! store pages of both, another store's pages stay cached, and an instance started after a
//! change was made while every instance was down (a cold start, with only stale entries in the
//! shared cache) serves the change at once. No revalidate route is called: the revalidator
//! has none. And no catalog page may be held by CloudFront in front (docs/opennext.md, "CDN"):
//! each is sent `private, no-store`.

use std::num::NonZeroUsize;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use catalog_core::ids::ProductId;
use catalog_core::model::MinorUnits;
use catalog_local::dev::edits::Editor;
use catalog_local::stack::{Delivery, Stack, Storefront};
use catalog_tests::browser::{card, hide_title, Browser};
use catalog_tests::eventually::within;
use catalog_tests::storefront_stub::response;
use serde_json::Value;

use super::storefront_fleet::{
    log_position, logged_tags_since, price_is, stack_with, until_everywhere,
};

/// The freshness bound: a change shows on every instance within this (the brief's 5 s).
const BOUND: Duration = Duration::from_secs(5);
/// p-00000 is in store-1, p-00001 in store-2 (product i is in store i % 2).
const A: &str = "p-00000";
const B: &str = "p-00001";
const STORE1: &str = "/stores/store-1?limit=100";
const STORE2: &str = "/stores/store-2?limit=100";

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a browser test: scripts/test runs it, or --ignored storefront_opennext::"]
async fn the_opennext_build_is_fresh_through_its_tag_cache_alone() -> Result<()> {
    let storefront = Storefront {
        instances: NonZeroUsize::new(2).expect("2 is not 0"),
        delivery: Delivery::OpenNext,
    };
    let stack = stack_with("opennext", storefront, Vec::new()).await?;
    ensure!(
        stack.endpoints.revalidate_endpoints.is_empty(),
        "the revalidator calls {:?}",
        stack.endpoints.revalidate_endpoints
    );
    let instances = stack.endpoints.storefront_instances.clone();
    no_catalog_page_may_be_held_at_the_edge(&instances[0]).await?;
    let mut browser = Browser::start()?;
    let store2_cached = card(&browser.load(&format!("{}{STORE2}", instances[0]))?, B)?.clone();
    for instance in &instances {
        browser.load(&format!("{instance}{STORE1}"))?;
        browser.load(&format!("{instance}/products/{A}"))?;
    }
    hide_title(&stack, B, "Sneaky Title").await?;
    let editor = Editor::new(
        stack.dynamodb.clone(),
        stack.endpoints.tables.catalog.clone(),
    );
    a_price_change_shows_on_every_instance(&instances, &editor, &mut browser, &store2_cached)
        .await?;
    a_cold_start_after_an_outage_serves_the_change(&stack, &editor, &mut browser, &store2_cached)
        .await?;
    drop(browser);
    stack.stop().await
}

/// A price change shows on the store page and the product page of both instances within the
/// bound, and store-2's page stays cached.
async fn a_price_change_shows_on_every_instance(
    instances: &[String],
    editor: &Editor,
    browser: &mut Browser,
    store2_cached: &Value,
) -> Result<()> {
    editor
        .set_price(&ProductId::parse(A)?, MinorUnits::new(1234)?)
        .await?;
    let store = until_everywhere(instances, STORE1, A, "$12.34").await?;
    let product = until_everywhere(instances, &format!("/products/{A}"), A, "$12.34").await?;
    println!("price change fresh after {store:?} (store page), {product:?} (product page)");
    ensure!(
        store.iter().chain(&product).all(|t| *t < BOUND),
        "{store:?} {product:?}"
    );
    for instance in instances {
        let page = browser.load(&format!("{instance}{STORE1}"))?;
        ensure!(price_is(A, "$12.34")(&page), "{instance}: {page}");
        let other = card(&browser.load(&format!("{instance}{STORE2}"))?, B)?.clone();
        ensure!(
            &other == store2_cached,
            "{instance}: store-2 was revalidated by a store-1 change"
        );
    }
    Ok(())
}

/// Every instance down while a change is written and its tags logged: the first cold start
/// finds only entries stamped before it in the shared cache, reads the log back past their
/// stamps, and serves the change at once (store-2 still cached).
async fn a_cold_start_after_an_outage_serves_the_change(
    stack: &Stack,
    editor: &Editor,
    browser: &mut Browser,
    store2_cached: &Value,
) -> Result<()> {
    let fleet = stack.storefront.clone().context("storefront")?;
    let instances = &stack.endpoints.storefront_instances;
    fleet.stop(0);
    fleet.stop(1);
    let before = log_position(stack).await?;
    editor
        .set_price(&ProductId::parse(A)?, MinorUnits::new(2345)?)
        .await?;
    let wanted = [format!("product:{A}"), "store:store-1:products".to_owned()];
    within(Duration::from_secs(15))
        .holds(async || {
            let logged = logged_tags_since(stack, before).await?;
            let missing: Vec<_> = wanted.iter().filter(|t| !logged.contains(*t)).collect();
            ensure!(missing.is_empty(), "{missing:?} never reached the tag log");
            Ok(())
        })
        .await?;
    fleet.restart(1)?;
    let restarted = browser.load(&format!("{}{STORE1}", instances[1]))?;
    ensure!(price_is(A, "$23.45")(&restarted), "cold start: {restarted}");
    let other = card(&browser.load(&format!("{}{STORE2}", instances[1]))?, B)?.clone();
    ensure!(
        &other == store2_cached,
        "the cold start re-rendered store-2"
    );
    Ok(())
}

/// Every page that shows catalog data is sent `private, no-store`: CloudFront (with a cache
/// policy of minimum TTL 0, as docs/opennext.md requires) keeps none, so no invalidation is
/// needed. A page made static or ISR would fail here, before an edge could serve it stale.
async fn no_catalog_page_may_be_held_at_the_edge(instance: &str) -> Result<()> {
    for page in [
        STORE1,
        STORE2,
        "/stores/store-1",
        &format!("/products/{A}"),
        "/cart",
    ] {
        let (head, _) = response(instance, page).await?;
        let control = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("cache-control:")
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        ensure!(
            control.contains("private") && control.contains("no-store"),
            "{page} is sent cache-control {control:?}: an edge cache would hold it"
        );
    }
    Ok(())
}
