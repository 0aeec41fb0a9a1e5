//! Merchandising listings against DynamoDB Local: every sort and filter walks full pages in
//! exact order, each page one Query that reads nothing it throws away, and a cursor works only
//! in the listing that issued it. Summaries are made the real way: rows written, streams
//! projected.

use catalog_tests::Inspect;
use std::collections::HashSet;

use anyhow::Result;
use catalog::store::SummaryStore;
use catalog_core::ids::StoreId;
use catalog_core::listing::{listed, Filters, Listing, ListingPosition, Sort};
use catalog_core::model::{MinorUnits, ProductStatus, ProductSummary, Timestamp};
use catalog_core::testing::{product, stock};
use catalog_tests::TestEnv;
use serde_json::Value;

const PAGE: usize = 7;

/// 40 products in s1: prices with ties, stock from none to plenty, some untracked, some
/// without `createdAt`, some archived; and 3 in s2.
async fn seeded() -> Result<TestEnv> {
    let env = TestEnv::new().await?;
    for i in 0..40usize {
        let id = format!("p{i:02}");
        let mut p = product(&id, "s1");
        p.name = format!("{} {}", ["Mug", "lamp", "Tote", "kettle"][i % 4], 40 - i);
        p.price = MinorUnits::new([500, 1999, 1999, 250, 7500][i % 5] + (i as u64 % 3))?;
        p.track_inventory = i % 9 != 0;
        p.created_at = (i % 6 != 0)
            .then(|| {
                Timestamp::parse(&format!(
                    "2026-{:02}-{:02}T10:00:00Z",
                    1 + i % 11,
                    1 + i % 28
                ))
            })
            .transpose()?;
        if i % 8 == 7 {
            p.status = ProductStatus::Archived;
        }
        env.put_product(&p).await?;
        env.put_stock(&stock(&id, "l1", (i % 4) as i64 * 3, 0))
            .await?;
    }
    for i in 0..3 {
        env.put_product(&product(&format!("q{i}"), "s2")).await?;
    }
    env.project_pending().await?;
    Ok(env)
}

/// Every listing a storefront can ask for, with its query string.
fn listings() -> Vec<(Listing, String)> {
    let store = StoreId::parse("s1").unwrap();
    let mut out = Vec::new();
    for sort in Sort::ALL {
        for in_stock in [false, true] {
            let mut ranges = vec![(None, None)];
            if matches!(sort, Sort::PriceAsc | Sort::PriceDesc) {
                ranges.extend([
                    (Some(500), Some(2000)),
                    (Some(1999), None),
                    (None, Some(500)),
                ]);
            }
            for (min, max) in ranges {
                let filters = Filters {
                    in_stock,
                    min_price: min.map(|p| MinorUnits::new(p).unwrap()),
                    max_price: max.map(|p| MinorUnits::new(p).unwrap()),
                    include_inactive: false,
                };
                let mut query = format!("sort={sort}&limit={PAGE}");
                if in_stock {
                    query.push_str("&inStock=true");
                }
                for (name, value) in [("minPrice", min), ("maxPrice", max)] {
                    if let Some(v) = value {
                        query.push_str(&format!("&{name}={v}"));
                    }
                }
                out.push((Listing::new(store.clone(), sort, filters).unwrap(), query));
            }
        }
    }
    out
}

/// The store's summaries as stored (consistent reads).
async fn stored_summaries(env: &TestEnv) -> Result<Vec<ProductSummary>> {
    let mut all = Vec::new();
    for i in 0..40 {
        all.extend(env.summary(&format!("p{i:02}")).await?);
    }
    Ok(all)
}

/// What `listing` must show, computed the slow way from every summary (`listed`).
fn reference(listing: &Listing, all: &[ProductSummary]) -> Vec<String> {
    listed(listing, all)
        .iter()
        .map(|s| s.product_id.to_string())
        .collect()
}

/// The first product `query` lists.
async fn cheapest(env: &TestEnv, query: &str) -> Result<Option<String>> {
    let target = format!("/stores/s1/products?{query}&limit=1");
    let reply = env.call_api("GET", &target, &[], None).await?;
    Ok(ids(&reply.body).first().cloned())
}

fn ids(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["productId"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// Walks every page of `query` through the API: the ids in order and the page sizes.
async fn walk(env: &TestEnv, query: &str) -> Result<(Vec<String>, Vec<usize>)> {
    env.walk_listing(false, "/stores/s1/products", query).await
}

#[tokio::test]
async fn every_sort_and_filter_walks_full_pages_in_exact_order() -> Result<()> {
    let env = seeded().await?;
    let all = stored_summaries(&env).await?;
    assert!(
        all.iter().all(|s| s.created_at.is_some()),
        "every summary has a creation time"
    );
    for (listing, query) in listings() {
        let expected = reference(&listing, &all);
        assert!(!expected.is_empty(), "{query} lists something");
        let (walked, sizes) = walk(&env, &query).await?;
        assert_eq!(walked, expected, "{query}");
        let full = sizes.len() - 1;
        assert!(
            sizes[..full].iter().all(|n| *n == PAGE),
            "{query}: full pages {sizes:?}"
        );
        assert!(sizes[full] <= PAGE && (sizes[full] > 0 || sizes.len() == 1));
        let distinct: HashSet<&String> = walked.iter().collect();
        assert_eq!(distinct.len(), walked.len(), "{query}: no product twice");
        // The same walk again gives the same pages: cursors are stable.
        assert_eq!(walk(&env, &query).await?.0, walked, "{query}");
    }
    Ok(())
}

#[tokio::test]
async fn each_page_is_one_query_that_reads_nothing_it_throws_away() -> Result<()> {
    let env = seeded().await?;
    let store = SummaryStore::new(env.dynamodb.clone(), &env.tables.summaries);
    for (listing, query) in listings() {
        let mut after: Option<ListingPosition> = None;
        loop {
            let page = store.list(&listing, PAGE, after.as_ref()).await?;
            assert_eq!(page.scanned, page.returned, "{query}: ScannedCount = Count");
            // The page, plus one item to learn whether there is a next page.
            assert!(
                page.returned <= PAGE + 1,
                "{query}: one Query of at most {}",
                PAGE + 1
            );
            assert_eq!(
                page.returned,
                page.items.len() + usize::from(page.next.is_some())
            );
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_cursor_works_only_in_the_listing_that_issued_it() -> Result<()> {
    let env = seeded().await?;
    let first = env
        .call_api(
            "GET",
            "/stores/s1/products?sort=price_asc&inStock=true&minPrice=500&limit=3",
            &[],
            None,
        )
        .await?;
    let cursor = first.body["nextCursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let own = format!(
        "/stores/s1/products?sort=price_asc&inStock=true&minPrice=500&limit=3&cursor={cursor}"
    );
    assert_eq!(env.call_api("GET", &own, &[], None).await?.status, 200);
    for other in [
        "sort=title",
        "sort=price_desc&inStock=true&minPrice=500",
        "sort=price_asc&minPrice=500",
        "sort=price_asc&inStock=true&minPrice=501",
        "sort=price_asc&inStock=true",
        "sort=newest&inStock=true",
    ] {
        let target = format!("/stores/s1/products?{other}&limit=3&cursor={cursor}");
        let reply = env.call_api("GET", &target, &[], None).await?;
        assert_eq!(
            (reply.status, reply.body["error"]["code"].as_str()),
            (400, Some("invalid_cursor")),
            "{other}"
        );
    }
    let foreign = format!(
        "/stores/s2/products?sort=price_asc&inStock=true&minPrice=500&limit=3&cursor={cursor}"
    );
    assert_eq!(env.call_api("GET", &foreign, &[], None).await?.status, 400);
    Ok(())
}

#[tokio::test]
async fn bad_combinations_are_400s_with_a_code() -> Result<()> {
    let env = TestEnv::new().await?;
    for (query, code) in [
        ("sort=cheapest", "invalid_sort"),
        ("minPrice=100", "price_filter_needs_price_sort"),
        ("sort=newest&maxPrice=100", "price_filter_needs_price_sort"),
        (
            "sort=price_asc&minPrice=9&maxPrice=1",
            "invalid_price_range",
        ),
        ("sort=price_desc&minPrice=-5", "invalid_price"),
        ("inStock=maybe", "invalid_parameter"),
    ] {
        let reply = env
            .call_api("GET", &format!("/stores/s1/products?{query}"), &[], None)
            .await?;
        assert_eq!(
            (reply.status, reply.body["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}"
        );
    }
    let admin = env
        .call_api_as_admin(
            "GET",
            "/admin/stores/s1/products?includeInactive=true&sort=price_asc",
        )
        .await?;
    assert_eq!(admin.body["error"]["code"], "unsupported_combination");
    Ok(())
}

#[tokio::test]
async fn price_stock_and_creation_changes_move_products_between_listings() -> Result<()> {
    let env = seeded().await?;
    // A price cut to 1 makes p01 the cheapest; selling out drops it from the in-stock pages.
    let mut p = product("p01", "s1");
    p.name = "lamp 39".into();
    p.price = MinorUnits::new(1)?;
    p.created_at = Some(Timestamp::parse("2027-01-01T00:00:00Z")?);
    env.put_product(&p).await?;
    env.put_stock(&stock("p01", "l1", 5, 0)).await?;
    env.project_pending().await?;
    assert_eq!(
        cheapest(&env, "sort=price_asc").await?.as_deref(),
        Some("p01")
    );
    assert_eq!(
        cheapest(&env, "sort=price_asc&inStock=true")
            .await?
            .as_deref(),
        Some("p01")
    );
    assert_eq!(
        cheapest(&env, "sort=newest&inStock=true").await?.as_deref(),
        Some("p01")
    );
    env.put_stock(&stock("p01", "l1", 0, 0)).await?;
    env.project_pending().await?;
    assert_eq!(
        cheapest(&env, "sort=price_asc").await?.as_deref(),
        Some("p01")
    );
    assert_ne!(
        cheapest(&env, "sort=price_asc&inStock=true")
            .await?
            .as_deref(),
        Some("p01")
    );
    assert_ne!(
        cheapest(&env, "sort=newest&inStock=true").await?.as_deref(),
        Some("p01")
    );
    // Archived: gone from every shopper listing.
    p.status = ProductStatus::Archived;
    env.put_product(&p).await?;
    env.project_pending().await?;
    assert_ne!(
        cheapest(&env, "sort=price_asc").await?.as_deref(),
        Some("p01")
    );
    assert_ne!(cheapest(&env, "sort=newest").await?.as_deref(), Some("p01"));
    Ok(())
}
