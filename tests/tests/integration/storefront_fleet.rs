//! Three storefront instances behind a round-robin proxy, each reading its tags from the tag
//! table through packages/next-cache-handler, in a real browser: a change reaches every
//! instance, a restarted instance serves fresh pages, a storefront that was down while changes
//! happened comes back fresh with nothing in any dead-letter queue, a `revalidateTag` in one
//! instance (its signed revalidate route) reaches the others, no button a visitor can press
//! revalidates anything, and another store's pages stay cached.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use catalog_core::ids::ProductId;
use catalog_core::model::MinorUnits;
use catalog_core::tag_table::{log_pk, log_sk, seq_pk, LOG_SPAN, SEQ_SK};
use catalog_local::dev::demo::DemoSize;
use catalog_local::dev::edits::Editor;
use catalog_local::layers::consistency::AwsConsistency;
use catalog_local::stack::{Delivery, Layer, Options, Stack, Storefront};
use catalog_local::storefront::LOCAL_STOREFRONT;
use catalog_tests::browser::{card, hide_title, Browser};
use catalog_tests::eventually::{demo_loaded, within};
use catalog_tests::revalidate_route::{post, signed_headers};
use catalog_tests::storefront_stub::get;
use catalog_tests::Inspect;
use serde_json::Value;
use std::num::NonZeroUsize;

/// The freshness bound: a change shows on every instance within this (the brief's 5 s).
const BOUND: Duration = Duration::from_secs(5);

/// One fleet at a time: two stacks of three Next.js servers on this 2-core machine would
/// measure the machine, not the pipeline.
static ONE_FLEET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A stack with three storefront instances on the tag table, `aws_consistency` as given, the
/// demo data loaded and projected.
async fn fleet_stack(name: &str, aws_consistency: Option<AwsConsistency>) -> Result<Stack> {
    let storefront = Storefront {
        instances: NonZeroUsize::new(3).expect("3 is not 0"),
        delivery: Delivery::TagTable,
    };
    let layers = aws_consistency
        .map(Layer::AwsConsistency)
        .into_iter()
        .collect();
    stack_with(name, storefront, layers).await
}

/// A stack named `name` with `storefront` and `layers`, 20 demo products in two stores loaded
/// and projected.
pub(crate) async fn stack_with(
    name: &str,
    storefront: Storefront,
    layers: Vec<Layer>,
) -> Result<Stack> {
    let (dynamodb, sqs) = catalog_tests::endpoints();
    let options = Options {
        prefix: format!("{name}{}-", std::process::id()),
        endpoints: Some((dynamodb, sqs)),
        storefront: Some(storefront),
        layers,
        ..Options::default()
    };
    let stack = Stack::start(&catalog_local::workspace_root(), options).await?;
    let size = DemoSize {
        products: 20,
        stores: 2,
        locations: 2,
        seed: 5,
    };
    demo_loaded(&stack, size).await?;
    Ok(stack)
}

/// Polls `page` on every instance at once, every 20 ms over plain HTTP, until `id`'s card
/// holds `text` on each; how long each took. (The browser then confirms what a shopper sees.)
pub(crate) async fn until_everywhere(
    instances: &[String],
    page: &str,
    id: &str,
    text: &str,
) -> Result<Vec<Duration>> {
    let start = Instant::now();
    let polls = instances.iter().map(|instance| {
        within(Duration::from_secs(15)).holds(async move || {
            let html = get(instance, page).await?;
            let shown = card_html(&html, id).is_some_and(|card| card.contains(text));
            ensure!(
                shown,
                "{text} never showed in {id}'s card at {instance}{page}"
            );
            Ok(start.elapsed())
        })
    });
    futures::future::try_join_all(polls).await
}

/// The HTML of `id`'s card on a page (from its `data-product-id` to the end of its element).
fn card_html<'a>(html: &'a str, id: &str) -> Option<&'a str> {
    let start = html.find(&format!("data-product-id=\"{id}\""))?;
    let card = &html[start..];
    Some(
        &card[..card
            .find("</li>")
            .or_else(|| card.find("</main>"))
            .unwrap_or(card.len())],
    )
}

/// The last position handed out in the local storefront's tag log: it moves with every
/// revalidation any instance or the revalidator writes.
pub(crate) async fn log_position(stack: &Stack) -> Result<u64> {
    let item = stack
        .dynamodb
        .get_item()
        .table_name(&stack.endpoints.tables.tags)
        .key("pk", AttributeValue::S(seq_pk(LOCAL_STOREFRONT)))
        .key("sk", AttributeValue::S(SEQ_SK.into()))
        .consistent_read(true)
        .send()
        .await?;
    Ok(match item.item().and_then(|i| i.get("last")) {
        Some(AttributeValue::N(n)) => n.parse()?,
        _ => 0,
    })
}

/// The tags of the local storefront's log items past position `after`.
pub(crate) async fn logged_tags_since(
    stack: &Stack,
    after: u64,
) -> Result<std::collections::HashSet<String>> {
    let last = log_position(stack).await?;
    let mut tags = std::collections::HashSet::new();
    for partition in (after + 1) / LOG_SPAN..=last / LOG_SPAN {
        let page = stack
            .dynamodb
            .query()
            .table_name(&stack.endpoints.tables.tags)
            .key_condition_expression("pk = :pk AND sk > :after")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(log_pk(LOCAL_STOREFRONT, partition * LOG_SPAN)),
            )
            .expression_attribute_values(":after", AttributeValue::S(log_sk(after)))
            .consistent_read(true)
            .send()
            .await?;
        for item in page.items() {
            if let Some(AttributeValue::Ss(logged)) = item.get("tags") {
                tags.extend(logged.iter().cloned());
            }
        }
    }
    Ok(tags)
}

/// Presses every button of every form on `pages` of `instance`, as any visitor can: none may
/// revalidate anything (each would evict pages on every instance).
async fn public_buttons_revalidate_nothing(
    stack: &Stack,
    browser: &mut Browser,
    instance: &str,
    pages: &[String],
) -> Result<()> {
    let before = log_position(stack).await?;
    for page in pages {
        let loaded = browser.load(&format!("{instance}{page}"))?;
        for button in loaded["buttons"].as_array().context("buttons")? {
            browser.load(&format!("{instance}{page}"))?;
            browser.act(serde_json::json!({ "submit": button }))?;
            let after = log_position(stack).await?;
            ensure!(
                after == before,
                "pressing {button} on {page} revalidated tags (log {before} -> {after})"
            );
        }
    }
    Ok(())
}

pub(crate) fn price_is(id: &'static str, price: &'static str) -> impl Fn(&Value) -> bool {
    move |page| card(page, id).is_ok_and(|c| c["price"] == price)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a browser test: scripts/test runs it, or --ignored storefront_fleet::"]
async fn every_instance_of_a_storefront_is_revalidated_through_the_tag_table() -> Result<()> {
    let _one = ONE_FLEET.lock().await;
    let stack = fleet_stack("fleet", None).await?;
    let fleet = Fleet::of(&stack)?;
    let mut browser = Browser::start()?;
    // Every instance caches both stores' pages.
    let mut b_cached = Vec::new();
    for instance in &fleet.instances {
        browser.load(&format!("{instance}{STORE1}"))?;
        b_cached.push(card(&browser.load(&format!("{instance}{STORE2}"))?, B)?.clone());
    }
    hide_title(&stack, B, "Sneaky Title").await?;
    // No visitor can revalidate: not from a product page, not from a store page.
    let pages = [format!("/products/{A}"), STORE1.to_owned()];
    public_buttons_revalidate_nothing(&stack, &mut browser, &fleet.instances[0], &pages).await?;

    let editor = Editor::new(
        stack.dynamodb.clone(),
        stack.endpoints.tables.catalog.clone(),
    );
    a_price_change_reaches_every_instance(&fleet, &editor, &mut browser).await?;
    for (instance, before) in fleet.instances.iter().zip(&b_cached) {
        let now = card(&browser.load(&format!("{instance}{STORE2}"))?, B)?.clone();
        ensure!(
            &now == before,
            "{instance}: store-2 was revalidated by a store-1 change"
        );
    }
    a_restarted_instance_serves_the_change_at_once(&fleet, &editor, &mut browser).await?;
    one_instances_revalidate_reaches_every_instance(&fleet, &mut browser).await?;
    nothing_waits_on_a_storefront_that_is_down(&stack, &fleet, &editor, &mut browser).await?;
    drop(browser);
    stack.stop().await
}

/// p-00000 is in store-1, p-00001 in store-2 (product i is in store i % 2).
const A: &str = "p-00000";
const B: &str = "p-00001";
const STORE1: &str = "/stores/store-1?limit=100";
const STORE2: &str = "/stores/store-2?limit=100";

/// The three instances, each by its URL, and the proxy in front of them.
struct Fleet {
    storefront: std::sync::Arc<catalog_local::storefront::Fleet>,
    instances: Vec<String>,
    proxy: String,
}

impl Fleet {
    fn of(stack: &Stack) -> Result<Self> {
        let instances = stack.endpoints.storefront_instances.clone();
        ensure!(instances.len() == 3, "{instances:?}");
        Ok(Self {
            storefront: stack.storefront.clone().context("storefront")?,
            instances,
            proxy: stack.endpoints.storefront.clone().context("proxy")?,
        })
    }
}

/// A price change reaches every instance within the bound, and the proxy whichever instance
/// answers.
async fn a_price_change_reaches_every_instance(
    fleet: &Fleet,
    editor: &Editor,
    browser: &mut Browser,
) -> Result<()> {
    editor
        .set_price(&ProductId::parse(A)?, MinorUnits::new(1234)?)
        .await?;
    let took = until_everywhere(&fleet.instances, STORE1, A, "$12.34").await?;
    println!("price change fresh on the 3 instances after {took:?}");
    ensure!(took.iter().all(|t| *t < BOUND), "{took:?}");
    for instance in &fleet.instances {
        let page = browser.load(&format!("{instance}{STORE1}"))?;
        ensure!(price_is(A, "$12.34")(&page), "{instance}: {page}");
    }
    for _ in 0..3 {
        let page = browser.load(&format!("{}{STORE1}", fleet.proxy))?;
        ensure!(price_is(A, "$12.34")(&page), "through the proxy: {page}");
    }
    Ok(())
}

/// An instance restarted after a change (which every instance shows) serves it at once.
async fn a_restarted_instance_serves_the_change_at_once(
    fleet: &Fleet,
    editor: &Editor,
    browser: &mut Browser,
) -> Result<()> {
    editor
        .set_price(&ProductId::parse(A)?, MinorUnits::new(2345)?)
        .await?;
    until_everywhere(&fleet.instances, STORE1, A, "$23.45").await?;
    fleet.storefront.restart(1)?;
    let restarted = browser.load(&format!("{}{STORE1}", fleet.instances[1]))?;
    ensure!(
        price_is(A, "$23.45")(&restarted),
        "restarted instance: {restarted}"
    );
    Ok(())
}

/// revalidateTag on instance 0 (its signed revalidate route, as an admin tool may call it)
/// reaches every instance: store-2 shows the hidden title everywhere.
async fn one_instances_revalidate_reaches_every_instance(
    fleet: &Fleet,
    browser: &mut Browser,
) -> Result<()> {
    let route = &fleet.storefront.revalidate_routes()[0];
    let body = format!(r#"{{"tags":["product:{B}","store:store-2:products"]}}"#);
    let secret = Options::default().revalidate_secret;
    let now = chrono::Utc::now().timestamp();
    let signed = signed_headers(&secret, route, now, "fleet-admin-1", &body);
    ensure!(
        post(route, &signed, &body).await? == 200,
        "signed call refused"
    );
    let took = until_everywhere(&fleet.instances, STORE2, B, "Sneaky Title").await?;
    for instance in &fleet.instances {
        let page = browser.load(&format!("{instance}{STORE2}"))?;
        ensure!(
            card(&page, B)?["title"] == "Sneaky Title",
            "{instance}: {page}"
        );
    }
    println!("one instance's revalidateTag fresh on the 3 instances after {took:?}");
    Ok(())
}

/// The whole storefront is down while a change happens: its tags drain anyway, nothing is
/// dead-lettered or parked, and every instance shows the change once back.
async fn nothing_waits_on_a_storefront_that_is_down(
    stack: &Stack,
    fleet: &Fleet,
    editor: &Editor,
    browser: &mut Browser,
) -> Result<()> {
    for i in 0..fleet.instances.len() {
        fleet.storefront.stop(i);
    }
    let before = log_position(stack).await?;
    editor
        .set_price(&ProductId::parse(A)?, MinorUnits::new(3456)?)
        .await?;
    // Both tags reach the log with every instance down (the listing tag after the listing
    // check sees the index show the write), and the queues drain.
    let wanted = [format!("product:{A}"), "store:store-1:products".to_owned()];
    within(Duration::from_secs(20))
        .every(Duration::from_millis(100))
        .holds(async || {
            let logged = logged_tags_since(stack, before).await?;
            let missing: Vec<_> = wanted.iter().filter(|t| !logged.contains(*t)).collect();
            ensure!(missing.is_empty(), "{missing:?} never reached the tag log");
            for queue in ["TagQueue", "ListingCheckQueue"] {
                ensure!(stack.queue_empty(queue).await?, "{queue} never drained");
            }
            Ok(())
        })
        .await?;
    for dlq in [
        "TagDeadLetterQueue",
        "ListingCheckDeadLetterQueue",
        "ParkedRecordsQueue",
        "StreamFailureQueue",
    ] {
        ensure!(stack.queue_empty(dlq).await?, "{dlq} is not empty");
    }
    for i in 0..fleet.instances.len() {
        fleet.storefront.restart(i)?;
    }
    for instance in &fleet.instances {
        let page = browser.load(&format!("{instance}{STORE1}"))?;
        ensure!(
            price_is(A, "$34.56")(&page),
            "{instance} after the outage: {page}"
        );
    }
    Ok(())
}

/// Issue 29: with the functions' DynamoDB as weak as AWS's (indexes and reads lagging 1 s,
/// writes held), successive price changes still reach every instance's product and store
/// pages within the bound. (No clock is compared any more: each instance notes when it
/// learned of a revalidation on its own clock; writers skewed by 1.5 s either way are in the
/// package's own tests.)
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a browser test: scripts/test runs it, or --ignored storefront_fleet::"]
async fn every_instance_of_a_storefront_is_fresh_with_aws_consistency() -> Result<()> {
    let _one = ONE_FLEET.lock().await;
    let weak = AwsConsistency {
        lag: Duration::from_secs(1),
        hold: Duration::from_millis(200),
        seed: 29,
    };
    let stack = fleet_stack("weakfleet", Some(weak)).await?;
    let instances = stack.endpoints.storefront_instances.clone();
    let (a, store1) = ("p-00000", "/stores/store-1?limit=100");
    let product = format!("/products/{a}");
    for instance in &instances {
        get(instance, store1).await?;
        get(instance, &product).await?;
    }
    let editor = Editor::new(
        stack.dynamodb.clone(),
        stack.endpoints.tables.catalog.clone(),
    );
    let a_id = ProductId::parse(a)?;
    for (cents, text) in [(1111, "$11.11"), (2222, "$22.22"), (3333, "$33.33")] {
        editor.set_price(&a_id, MinorUnits::new(cents)?).await?;
        let listing = until_everywhere(&instances, store1, a, text).await?;
        let page = until_everywhere(&instances, &product, a, text).await?;
        println!("{text}: store page fresh after {listing:?}, product page after {page:?}");
        ensure!(
            listing.iter().chain(&page).all(|t| *t < BOUND),
            "{listing:?} {page:?}"
        );
    }
    stack.stop().await
}
