//! listing-api against DynamoDB Local through API Gateway's v2 request and response shapes.
//! Summaries are made the real way: source rows written, streams projected.

use catalog_tests::Inspect;
use std::collections::HashSet;

use anyhow::{ensure, Context, Result};
use catalog::store::SummaryStore;
use catalog_core::model::ProductStatus;
use catalog_core::testing::{product, stock};
use catalog_local::provision::secrets;
use catalog_local::services;
use catalog_tests::TestEnv;
use listing_api::cursor::CursorKey;
use serde_json::Value;

/// 24 active and 5 inactive products in s1 (titles out of order, mixed case), 4 in s2.
async fn seeded() -> Result<TestEnv> {
    let env = TestEnv::new().await?;
    for i in 0..29 {
        let mut p = product(&format!("p{i:02}"), "s1");
        p.name = format!("{} item {}", ["zeta", "Alpha", "mid"][i % 3], 29 - i);
        if i % 5 == 4 {
            p.status = ProductStatus::Archived;
        }
        env.put_product(&p).await?;
        env.put_stock(&stock(&format!("p{i:02}"), "l1", i as i64, 0))
            .await?;
    }
    for i in 0..4 {
        env.put_product(&product(&format!("q{i}"), "s2")).await?;
    }
    env.project_pending().await?;
    Ok(env)
}

/// Walks every page of s1 as a shopper sees it; returns the ids in order and the page sizes.
async fn walk(env: &TestEnv, query: &str) -> Result<(Vec<String>, Vec<usize>)> {
    env.walk_listing(false, "/stores/s1/products", query).await
}

/// [`walk`], on the admin listing.
async fn walk_admin(env: &TestEnv, query: &str) -> Result<(Vec<String>, Vec<usize>)> {
    env.walk_listing(true, "/admin/stores/s1/products", query)
        .await
}

#[tokio::test]
async fn pagination_walks_every_active_product_once_in_title_order() -> Result<()> {
    let env = seeded().await?;
    let (walked, sizes) = walk(&env, "limit=5").await?;
    assert_eq!(sizes, [5, 5, 5, 5, 4]);
    let distinct: HashSet<_> = walked.iter().collect();
    assert_eq!(distinct.len(), walked.len(), "no product twice");

    let mut expected = Vec::new();
    for i in 0..29 {
        let p = env.expected(&format!("p{i:02}")).await?.unwrap();
        if p.active {
            expected.push((p.title.to_lowercase(), p.product_id.to_string()));
        }
    }
    expected.sort();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();
    assert_eq!(walked, expected, "stable order: case-folded title, then id");

    // The same walk again gives the same pages.
    assert_eq!(walk(&env, "limit=5").await?.0, walked);
    Ok(())
}

#[tokio::test]
async fn inactive_products_appear_only_when_asked_for_and_after_active_ones() -> Result<()> {
    let env = seeded().await?;
    let (active, _) = walk(&env, "limit=100").await?;
    assert_eq!(active.len(), 24);
    let (all, _) = walk_admin(&env, "limit=7&includeInactive=true").await?;
    assert_eq!(all.len(), 29);
    assert_eq!(&all[..24], &active[..], "active first, in the same order");
    let reply = env
        .call_api("GET", "/stores/s1/products?limit=100", &[], None)
        .await?;
    assert!(reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["active"] == true));
    Ok(())
}

#[tokio::test]
async fn shoppers_cannot_tell_an_unpublished_product_from_an_unknown_id() -> Result<()> {
    let env = seeded().await?;
    // p04 is archived: to a product page and a cart it is as absent as an id never used, so
    // nobody learns which ids are drafts waiting to be published.
    let unpublished = env.call_api("GET", "/products/p04", &[], None).await?;
    let unknown = env.call_api("GET", "/products/p99", &[], None).await?;
    let shape = |reply: &catalog_tests::ApiReply, id: &str| {
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        (
            reply.status,
            reply.body["error"]["code"].clone(),
            message.replace(id, "{id}"),
        )
    };
    assert_eq!(shape(&unpublished, "p04"), shape(&unknown, "p99"));
    assert_eq!(unpublished.status, 404);
    let cart = env
        .call_api(
            "POST",
            "/products:batchGet",
            &[],
            Some(r#"{"productIds":["p04","p00","p99"]}"#),
        )
        .await?;
    let products = cart.body["products"].as_array().unwrap();
    assert_eq!(products.len(), 1);
    assert_eq!(products[0]["title"], "zeta item 29");
    assert_eq!(cart.body["missing"], serde_json::json!(["p04", "p99"]));
    // Listing them is an admin's business.
    let public = env
        .call_api("GET", "/stores/s1/products?includeInactive=true", &[], None)
        .await?;
    assert_eq!(
        (public.status, &public.body["error"]["code"]),
        (403, &"admin_only".into())
    );
    let unsigned = env
        .call_api(
            "GET",
            "/admin/stores/s1/products?includeInactive=true",
            &[],
            None,
        )
        .await?;
    assert_eq!(unsigned.status, 403);
    Ok(())
}

#[tokio::test]
async fn tampered_and_foreign_cursors_are_refused() -> Result<()> {
    let env = seeded().await?;
    let first = env
        .call_api("GET", "/stores/s1/products?limit=5", &[], None)
        .await?;
    let cursor = first.body["nextCursor"].as_str().unwrap().to_owned();

    let other_store = env
        .call_api(
            "GET",
            &format!("/stores/s2/products?cursor={cursor}"),
            &[],
            None,
        )
        .await?;
    let other_query = env
        .call_api_as_admin(
            "GET",
            &format!("/admin/stores/s1/products?includeInactive=true&cursor={cursor}"),
        )
        .await?;
    // One byte of the payload, past the key id.
    let mut edited = cursor.clone().into_bytes();
    let at = cursor.find('.').context("a key id")? + 4;
    edited[at] = if edited[at] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited)?;
    let tampered = env
        .call_api(
            "GET",
            &format!("/stores/s1/products?cursor={edited}"),
            &[],
            None,
        )
        .await?;
    let junk = env
        .call_api("GET", "/stores/s1/products?cursor=not-a-cursor", &[], None)
        .await?;
    for reply in [other_store, other_query, tampered, junk] {
        assert_eq!(reply.status, 400, "{:?}", reply.body);
        assert_eq!(reply.body["error"]["code"], "invalid_cursor");
    }
    Ok(())
}

#[tokio::test]
async fn a_matching_etag_gives_304_and_tags_name_the_contents() -> Result<()> {
    let env = seeded().await?;
    let first = env
        .call_api("GET", "/stores/s2/products", &[], None)
        .await?;
    assert_eq!(first.status, 200);
    let etag = first.header("etag").unwrap().to_owned();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong: {etag}"
    );
    assert_eq!(first.header("cache-control"), Some("public, no-cache"));
    let tags = first.header("cache-tag").unwrap();
    assert!(
        tags.contains("store:s2:products")
            && tags.contains("product:q0")
            && tags.contains("inventory:q3")
    );

    let again = env
        .call_api(
            "GET",
            "/stores/s2/products",
            &[("If-None-Match", &etag)],
            None,
        )
        .await?;
    assert_eq!(again.status, 304);
    assert_eq!(again.body, Value::Null);
    let changed = env
        .call_api(
            "GET",
            "/stores/s2/products",
            &[("If-None-Match", "\"something-else\"")],
            None,
        )
        .await?;
    assert_eq!(changed.status, 200);
    Ok(())
}

#[tokio::test]
async fn one_product_and_its_absence() -> Result<()> {
    let env = seeded().await?;
    let reply = env.call_api("GET", "/products/p03", &[], None).await?;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["inventoryAvailable"], 3);
    assert_eq!(reply.body["price"], 1999);
    assert!(reply.body.get("revision").is_none() && reply.body.get("pendingTags").is_none());

    env.delete_product("p03").await?;
    let event = env.products_event().await?;
    env.projector().handle(event).await?;
    let gone = env.call_api("GET", "/products/p03", &[], None).await?;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["error"]["code"], "not_found");
    Ok(())
}

#[tokio::test]
async fn batch_get_keeps_request_order_and_reports_missing_ids() -> Result<()> {
    let env = seeded().await?;
    let body = r#"{"productIds": ["q2", "p10", "nope", "q0", "p10"]}"#;
    let reply = env
        .call_api("POST", "/products:batchGet", &[], Some(body))
        .await?;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let got: Vec<&str> = reply.body["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["productId"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["q2", "p10", "q0"]);
    assert_eq!(reply.body["missing"], serde_json::json!(["nope"]));
    Ok(())
}

#[tokio::test]
async fn client_mistakes_are_4xx_json_errors_that_reveal_nothing() -> Result<()> {
    let env = TestEnv::new().await?;
    let hundred_and_one = format!(
        "{{\"productIds\":[{}]}}",
        (0..101)
            .map(|i| format!("\"p{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let cases: Vec<(&str, &str, Option<&str>, u16, &str)> = vec![
        ("GET", "/nowhere", None, 404, "not_found"),
        (
            "GET",
            "/stores/s1/products?limit=0",
            None,
            400,
            "invalid_limit",
        ),
        (
            "GET",
            "/stores/s1/products?limit=1000",
            None,
            400,
            "invalid_limit",
        ),
        (
            "GET",
            "/stores/s1/products?limit=abc",
            None,
            400,
            "invalid_limit",
        ),
        (
            "GET",
            "/stores/s1/products?includeInactive=maybe",
            None,
            400,
            "invalid_parameter",
        ),
        ("GET", "/stores/%ZZ/products", None, 400, "invalid_path"),
        ("DELETE", "/products/p1", None, 405, "method_not_allowed"),
        (
            "POST",
            "/products:batchGet",
            Some("{not json"),
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/products:batchGet",
            Some(&hundred_and_one),
            400,
            "too_many_ids",
        ),
        (
            "POST",
            "/products:batchGet",
            Some(r#"{"productIds":[1,2]}"#),
            400,
            "invalid_id",
        ),
        ("POST", "/products:batchGet", None, 400, "invalid_json"),
    ];
    for (method, target, body, status, code) in cases {
        let reply = env.call_api(method, target, &[], body).await?;
        assert_eq!(reply.status, status, "{method} {target}: {:?}", reply.body);
        assert_eq!(reply.body["error"]["code"], code, "{method} {target}");
        assert!(reply.body["error"]["message"].is_string());
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
    Ok(())
}

/// A shared cache may keep no admin listing (drafts) and no cart, and must check every public
/// answer with the API before reusing it; only public answers name their tags.
#[tokio::test]
async fn shared_caches_reuse_nothing_unchecked_and_keep_no_private_answer() -> Result<()> {
    let env = seeded().await?;
    let public = [
        env.call_api("GET", "/stores/s2/products", &[], None)
            .await?,
        env.call_api("GET", "/products/q0", &[], None).await?,
    ];
    for reply in &public {
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("cache-control"), Some("public, no-cache"));
        assert!(reply.header("cache-tag").is_some());
    }
    let cart = r#"{"productIds":["q0","q1"]}"#;
    let private = [
        env.call_api_as_admin("GET", "/admin/stores/s2/products?includeInactive=true")
            .await?,
        env.call_api_as_admin("GET", "/admin/stores/s2/products")
            .await?,
        env.call_api("POST", "/products:batchGet", &[], Some(cart))
            .await?,
    ];
    for reply in &private {
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        assert_eq!(reply.header("cache-control"), Some("private, no-store"));
        assert_eq!(reply.header("cache-tag"), None);
    }
    Ok(())
}

/// listing-api's cold start against the emulator's Secrets Manager: the cursor key's current
/// and previous values, as `main` reads them.
async fn cold_start(
    env: &TestEnv,
    secrets: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<listing_api::ListingApi> {
    let (current, previous) = catalog::sdk::secret_versions(secrets, arn).await?;
    let key = CursorKey::rotating(current.as_bytes(), previous.as_deref().map(str::as_bytes))?;
    let summaries = SummaryStore::new(env.dynamodb.clone(), &env.tables.summaries);
    Ok(listing_api::ListingApi::new(summaries, key))
}

/// A shopper is on page 1 when the cursor key is rotated and a new container starts: their
/// Next link still opens page 2. Two rotations later the same link is refused as expired
/// (`cursor_expired`, so the storefront starts again from page 1), never as forged.
#[tokio::test]
async fn a_key_rotation_mid_walk_keeps_the_shoppers_next_page() -> Result<()> {
    let env = seeded().await?;
    let (_, moto) = catalog_tests::endpoints();
    let secrets = aws_sdk_secretsmanager::Client::new(&services::sdk_config(&moto).await);
    let prefix = format!("{}-", env.tables.summaries);
    let keys = [
        "cursor-key-one-of-32-bytes-long!",
        "cursor-key-two-of-32-bytes-long!",
    ];
    let arns = secrets::create(&secrets, &prefix, &[("CursorSecret", keys[0])]).await?;
    let arn = &arns["CursorSecret"];
    let rotate = |value: &'static str| {
        let put = secrets
            .put_secret_value()
            .secret_id(arn)
            .secret_string(value);
        async move { put.send().await.map(|_| ()) }
    };

    // Before: page 1 and, for reference, page 2.
    let before = cold_start(&env, &secrets, arn).await?;
    let first = "/stores/s1/products?limit=10";
    let page1 = env.get_from(&before, first).await?;
    let cursor = page1.body["nextCursor"].as_str().context("a next page")?;
    let next = format!("{first}&cursor={cursor}");
    let expected = env.get_from(&before, &next).await?.body["items"].clone();

    // The rotation: a new container opens the old cursor.
    rotate(keys[1]).await?;
    let after = cold_start(&env, &secrets, arn).await?;
    let page2 = env.get_from(&after, &next).await?;
    ensure!(page2.status == 200, "after one rotation: {:?}", page2.body);
    ensure!(page2.body["items"] == expected, "another page 2");

    // Two rotations on, the old key is gone: expired, not forged.
    rotate("cursor-key-three-of-32-bytes-lng").await?;
    let later = cold_start(&env, &secrets, arn).await?;
    let refused = env.get_from(&later, &next).await?;
    ensure!(refused.status == 400, "{:?}", refused.body);
    let code = &refused.body["error"]["code"];
    ensure!(code == "cursor_expired", "{:?}", refused.body);
    Ok(())
}
