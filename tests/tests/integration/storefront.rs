//! The whole pipeline in a real browser: the local stack with the example Next.js storefront,
//! DynamoDB Local streams -> summary-projector -> tag queue -> tag-revalidator -> the
//! storefront's signed revalidate route -> `revalidateTag(tag, { expire: 0 })`, and Debian's
//! Chromium (driven by playwright-core) reloading the pages.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use catalog::store::SourceStore;
use catalog_core::ids::{LocationId, ProductId};
use catalog_core::model::MinorUnits;
use catalog_local::dev::demo::DemoSize;
use catalog_local::dev::edits::Editor;
use catalog_local::stack::{Delivery, Options, Stack, Storefront};
use catalog_tests::browser::{card, cents, hide_title, ids, Browser};
use catalog_tests::eventually::{demo_loaded, within};
use catalog_tests::revalidate_route::{post, signed_headers, signed_with_key};
use catalog_tests::Inspect;
use tag_revalidator::signature::AudienceKey;

/// A body of `bytes` bytes sent in 1 KiB chunks, without a Content-Length.
async fn post_chunked(url: &str, bytes: usize) -> Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').context("url")?;
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let head = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let chunk = format!("400\r\n{}\r\n", "a".repeat(1024));
    for _ in 0..bytes / 1024 {
        // The route may answer and close before the rest is sent.
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a browser test: scripts/test runs it, or --ignored storefront::"]
async fn a_shopper_sees_new_prices_and_stock_after_a_reload_and_other_stores_stay_cached(
) -> Result<()> {
    let (stack, secret) = stack_with_demo().await?;
    let shop = Shop::new(&stack)?;
    let mut browser = Browser::start()?;
    let b_before = card(&browser.load(&shop.store2)?, B)?.clone();
    ensure!(
        card(&browser.load(&shop.store1)?, A)?["price"] != "$12.34",
        "pick another price"
    );
    // B's summary changes behind the pipeline's back: no stream, no tags. Store-2's page must
    // keep showing the cached title until something revalidates store-2.
    hide_title(&stack, B, "Sneaky Title").await?;

    let editor = Editor::new(
        stack.dynamodb.clone(),
        stack.endpoints.tables.catalog.clone(),
    );
    a_price_and_stock_change_shows_in_store_1(&stack, &shop, &editor, &mut browser).await?;
    let b_after = card(&browser.load(&shop.store2)?, B)?.clone();
    assert_eq!(
        b_after, b_before,
        "store-2 was revalidated by a store-1 change"
    );
    revalidating_b_shows_its_hidden_title(&stack, &shop, &mut browser).await?;
    the_route_takes_only_genuine_calls(&format!("{}/api/revalidate", shop.url), &secret).await?;

    shop_in_the_browser(&stack, &editor, &mut browser).await?;
    stack.stop().await
}

/// p-00000 is in store-1, p-00001 in store-2 (demo data puts product i in store i % 2).
const A: &str = "p-00000";
const B: &str = "p-00001";

/// The storefront's URL and its two store pages.
struct Shop {
    url: String,
    store1: String,
    store2: String,
}

impl Shop {
    fn new(stack: &Stack) -> Result<Self> {
        let url = stack.endpoints.storefront.clone().context("storefront")?;
        Ok(Self {
            store1: format!("{url}/stores/store-1"),
            store2: format!("{url}/stores/store-2"),
            url,
        })
    }
}

/// A stack with one storefront instance on its revalidate route, the demo catalog projected;
/// and the secret its calls are signed with.
async fn stack_with_demo() -> Result<(Stack, String)> {
    let (dynamodb, sqs) = catalog_tests::endpoints();
    let options = Options {
        prefix: format!("sf{}-", std::process::id()),
        endpoints: Some((dynamodb, sqs)),
        storefront: Some(Storefront::one(Delivery::Http)),
        ..Options::default()
    };
    let secret = options.revalidate_secret.clone();
    let stack = Stack::start(&catalog_local::workspace_root(), options).await?;
    let size = DemoSize {
        products: 20,
        stores: 2,
        locations: 2,
        seed: 3,
    };
    demo_loaded(&stack, size).await?;
    Ok((stack, secret))
}

/// A's price and stock change in the tables; store-1's page and A's page show both.
async fn a_price_and_stock_change_shows_in_store_1(
    stack: &Stack,
    shop: &Shop,
    editor: &Editor,
    browser: &mut Browser,
) -> Result<()> {
    let a_id = ProductId::parse(A)?;
    let changed = Instant::now();
    editor.set_price(&a_id, MinorUnits::new(1234)?).await?;
    editor
        .set_stock(&a_id, &LocationId::parse("loc-1")?, 500, Some(0))
        .await?;
    let sources = SourceStore::new(stack.dynamodb.clone(), &stack.endpoints.tables.catalog);
    let rows = sources.inventory(&a_id).await?;
    let available: i64 = rows.iter().map(|r| (r.on_hand - r.reserved).max(0)).sum();
    let stock = format!("{available} in stock");
    let fresh = within(Duration::from_secs(10))
        .every(Duration::from_millis(100))
        .holds(async || {
            let shown = card(&browser.load(&shop.store1)?, A)?.clone();
            ensure!(
                shown["price"] == "$12.34" && shown["stock"] == stock,
                "store-1 never showed the change: {shown}"
            );
            Ok(changed.elapsed())
        })
        .await?;
    println!("store-1 page fresh in the browser {fresh:?} after the writes");
    let product_page = browser.load(&format!("{}/products/{A}", shop.url))?;
    assert_eq!(card(&product_page, A)?["price"], "$12.34");
    Ok(())
}

/// The check that store-2 stayed cached can fail: revalidating B (the admin route) shows the
/// title hidden in its summary.
async fn revalidating_b_shows_its_hidden_title(
    stack: &Stack,
    shop: &Shop,
    browser: &mut Browser,
) -> Result<()> {
    let admin = format!(
        "{}/admin/products/{B}/revalidate",
        stack.endpoints.listing_api
    );
    assert_eq!(post(&admin, &[], "").await?, 202);
    within(Duration::from_secs(10))
        .every(Duration::from_millis(100))
        .holds(async || {
            let title = card(&browser.load(&shop.store2)?, B)?["title"].clone();
            ensure!(
                title == "Sneaky Title",
                "revalidateProduct did not reach store-2"
            );
            Ok(())
        })
        .await
}

/// The real route refuses what is not a genuine call: unsigned, forged, tampered, expired,
/// signed for another storefront or with its key, replayed, malformed, too large.
async fn the_route_takes_only_genuine_calls(route: &str, secret: &str) -> Result<()> {
    let body = r#"{"tags":["store:store-2:products"]}"#;
    let now = chrono::Utc::now().timestamp();
    let signed = |secret: &str, timestamp: i64, nonce: &str, body: &str| {
        signed_headers(secret, route, timestamp, nonce, body)
    };
    let elsewhere = "https://shop-b.example/api/revalidate";
    // All a compromised shop-b holds is its own key: it signs nothing this route accepts.
    let b_key = AudienceKey::derive(secret.as_bytes(), elsewhere);
    let tampered = r#"{"tags":["store:store-1:products"]}"#;
    let refused = [
        ("unsigned", Vec::new(), body),
        ("forged", signed("wrong", now, "forged-1", body), body),
        (
            "tampered",
            signed(secret, now, "tampered-1", body),
            tampered,
        ),
        (
            "expired",
            signed(secret, now - 3600, "expired-1", body),
            body,
        ),
        (
            "signed for another storefront",
            signed_headers(secret, elsewhere, now, "misdirected-1", body),
            body,
        ),
        (
            "signed with another storefront's key",
            signed_with_key(&b_key, route, now, "other-key-1", body),
            body,
        ),
    ];
    for (what, headers, sent) in refused {
        assert_eq!(post(route, &headers, sent).await?, 401, "{what}");
    }
    let genuine = signed(secret, now, "genuine-1", body);
    assert_eq!(post(route, &genuine, body).await?, 200, "genuine");
    assert_eq!(post(route, &genuine, body).await?, 401, "replayed");
    let bad = r#"{"tags":"store:store-2:products"}"#;
    let malformed = signed(secret, now, "malformed-1", bad);
    assert_eq!(post(route, &malformed, bad).await?, 400, "malformed");
    // Size is counted in bytes and checked before the body is read: 40,000 "é" are 80,000
    // bytes (the old check counted 40,000 UTF-16 units and let them through to the HMAC).
    let wide = "é".repeat(40_000);
    assert_eq!(
        post(route, &[], &wide).await?,
        413,
        "80 KB of 2-byte characters"
    );
    assert_eq!(
        post_chunked(route, 1024 * 1024).await?,
        413,
        "1 MiB chunked"
    );
    Ok(())
}

/// A shopper's merchandising session: sort by price, page forward and back, toggle in-stock,
/// fill a cart; then a price change reorders the price-sorted page and shows in the cart, an
/// archived product is marked in the cart, and another store's page stays cached throughout.
async fn shop_in_the_browser(stack: &Stack, editor: &Editor, browser: &mut Browser) -> Result<()> {
    let shop = Shop::new(stack)?;
    let output = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("storefront");
    std::fs::create_dir_all(&output)?;
    sort_page_and_filter(&shop, editor, browser).await?;
    let (x, y) = two_products_into_the_cart(&shop, browser)?;
    // Store-2's page, cached now, then changed behind the pipeline's back: it must not move.
    // First let every tag already queued go out (the first part of the test revalidated
    // store-2).
    within(Duration::from_secs(30))
        .every(Duration::from_millis(200))
        .holds(async || {
            ensure!(
                stack.queue_empty("TagQueue").await?,
                "the tag queue never drained"
            );
            Ok(())
        })
        .await?;
    let store2_before = browser.load(&shop.store2)?;
    let hidden = ids(&store2_before)
        .first()
        .cloned()
        .context("store-2 lists something")?;
    hide_title(stack, &hidden, "Sneaky Two").await?;

    a_price_cut_shows_in_the_cart_and_the_order(&shop, editor, browser, &y).await?;
    browser.load(&format!(
        "{}/stores/store-1?sort=price_asc&limit=4",
        shop.url
    ))?;
    browser.act(serde_json::json!({"screenshot": output.join("store.png")}))?;
    // X archived: the cart marks it, and the total leaves it out.
    let archived = catalog_core::model::ProductStatus::Archived;
    editor.set_status(&ProductId::parse(&x)?, archived).await?;
    browser.until(
        &format!("{}/cart", shop.url),
        "the archived product marked",
        |p| {
            card(p, &x)
                .is_ok_and(|c| c["unavailable"] == true && c["stock"] == "No longer available")
        },
    )?;
    browser.act(serde_json::json!({"screenshot": output.join("cart.png")}))?;
    println!("screenshots: {}", output.display());

    let store2_after = browser.load(&shop.store2)?;
    ensure!(
        store2_after["products"] == store2_before["products"],
        "store-2 was revalidated by store-1's changes: {store2_after}"
    );
    Ok(())
}

/// "Price low to high" from the menu, four to a page, forward and back; then the in-stock
/// toggle keeps the sort and drops p-00002, sold out at both locations first.
async fn sort_page_and_filter(shop: &Shop, editor: &Editor, browser: &mut Browser) -> Result<()> {
    let sold_out = ProductId::parse("p-00002")?;
    for location in ["loc-1", "loc-2"] {
        let location = LocationId::parse(location)?;
        editor.set_stock(&sold_out, &location, 0, Some(0)).await?;
    }
    let all = format!("{}/stores/store-1?sort=price_asc&limit=100", shop.url);
    browser.until(&all, "p-00002 sold out", |p| {
        card(p, "p-00002").is_ok_and(|c| c["stock"] == "Out of stock")
    })?;

    browser.load(&format!("{}/stores/store-1?limit=4", shop.url))?;
    let first = browser.act(serde_json::json!({"select": ["#sort", "price_asc"]}))?;
    let url = first["url"].as_str().unwrap_or_default();
    ensure!(url.contains("sort=price_asc"), "{first}");
    let page1 = cents(&first);
    ensure!(
        page1.len() == 4 && page1.is_sorted(),
        "page 1 by price: {first}"
    );
    let second = browser.act(serde_json::json!({"click": "#next"}))?;
    let page2 = cents(&second);
    ensure!(
        page2.is_sorted() && page2[0] >= page1[3],
        "page 2 goes on by price: {second}"
    );
    ensure!(
        ids(&second).iter().all(|id| !ids(&first).contains(id)),
        "no product twice"
    );
    let back = browser.act(serde_json::json!({"click": "#previous"}))?;
    ensure!(
        ids(&back) == ids(&first),
        "previous is page 1 again: {back}"
    );

    let in_stock = browser.act(serde_json::json!({"click": "#in-stock"}))?;
    let url = in_stock["url"].as_str().unwrap_or_default();
    ensure!(
        url.contains("inStock=true") && url.contains("sort=price_asc"),
        "{in_stock}"
    );
    let whole = browser.load(&format!("{all}&inStock=true"))?;
    ensure!(
        card(&whole, "p-00002").is_err(),
        "sold out yet listed in stock: {whole}"
    );
    ensure!(cents(&whole).is_sorted() && !ids(&whole).is_empty());
    Ok(())
}

/// The first two products of the price-sorted in-stock page, added to the cart; the cart shows
/// both.
fn two_products_into_the_cart(shop: &Shop, browser: &mut Browser) -> Result<(String, String)> {
    let page = format!(
        "{}/stores/store-1?sort=price_asc&limit=4&inStock=true",
        shop.url
    );
    let picks = ids(&browser.load(&page)?);
    let (x, y) = (picks[0].clone(), picks[1].clone());
    for id in [&x, &y] {
        browser.act(serde_json::json!({"submit": format!("[data-product-id=\"{id}\"] .add")}))?;
    }
    let cart = browser.load(&format!("{}/cart", shop.url))?;
    ensure!(
        ids(&cart) == [x.clone(), y.clone()],
        "the cart holds both: {cart}"
    );
    Ok((x, y))
}

/// `y` drops to 1 cent: the cart shows it and the price-sorted page puts it first.
async fn a_price_cut_shows_in_the_cart_and_the_order(
    shop: &Shop,
    editor: &Editor,
    browser: &mut Browser,
    y: &str,
) -> Result<()> {
    editor
        .set_price(&ProductId::parse(y)?, MinorUnits::new(1)?)
        .await?;
    let in_cart = browser.until(
        &format!("{}/cart", shop.url),
        "the new price in the cart",
        |p| card(p, y).is_ok_and(|c| c["price"] == "$0.01"),
    )?;
    let sorted = format!("{}/stores/store-1?sort=price_asc&limit=4", shop.url);
    let reordered = browser.until(&sorted, "the reordered price page", |p| {
        ids(p).first().map(String::as_str) == Some(y) && cents(p).is_sorted()
    })?;
    println!(
        "price change: cart fresh after {in_cart:?}, price page reordered {reordered:?} later"
    );
    Ok(())
}
