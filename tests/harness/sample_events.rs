//! Every file in events/, with the answer its function must give against a stack seeded by
//! [`seed`]: shared by the run on the real binaries under `cargo lambda watch`
//! (lambda_binaries.rs) and the run under `sam local invoke` in Docker (sam_local.rs).

use anyhow::{ensure, Result};
use catalog_core::testing::{product, stock};
use serde_json::Value;

use crate::Inspect;
use crate::TestEnv;

/// One sample event: the function's template logical id and binary, the file under events/,
/// and the answer's [`outcome`].
pub struct Case {
    pub function: &'static str,
    pub binary: &'static str,
    pub event: &'static str,
    pub expected: &'static str,
}

const fn case(
    function: &'static str,
    binary: &'static str,
    event: &'static str,
    expected: &'static str,
) -> Case {
    Case {
        function,
        binary,
        event,
        expected,
    }
}

const PROJECTOR: (&str, &str) = ("SummaryProjectorFunction", "summary-projector");
const LISTING: (&str, &str) = ("ListingApiFunction", "listing-api");
const RECONCILER: (&str, &str) = ("ReconcilerFunction", "reconciler");
const REVALIDATOR: (&str, &str) = ("TagRevalidatorFunction", "tag-revalidator");

/// Every file in events/ (events.rs keeps the folder and the fixtures in step).
pub const CASES: [Case; 14] = [
    case(
        PROJECTOR.0,
        PROJECTOR.1,
        "summary-projector/products-stream.json",
        "no failures",
    ),
    case(
        PROJECTOR.0,
        PROJECTOR.1,
        "summary-projector/inventory-stream.json",
        "no failures",
    ),
    case(
        PROJECTOR.0,
        PROJECTOR.1,
        "summary-projector/listing-checks.json",
        "no failures",
    ),
    case(LISTING.0, LISTING.1, "listing-api/list-store.json", "200"),
    case(LISTING.0, LISTING.1, "listing-api/get-product.json", "200"),
    case(LISTING.0, LISTING.1, "listing-api/batch-get.json", "200"),
    case(LISTING.0, LISTING.1, "listing-api/bad-limit.json", "400"),
    case(
        LISTING.0,
        LISTING.1,
        "listing-api/unknown-route.json",
        "404",
    ),
    case(
        RECONCILER.0,
        RECONCILER.1,
        "reconciler/schedule.json",
        "4 segments",
    ),
    case(
        RECONCILER.0,
        RECONCILER.1,
        "reconciler/backfill.json",
        "4 segments",
    ),
    case(
        RECONCILER.0,
        RECONCILER.1,
        "reconciler/dry-run-one-store.json",
        "1 segments",
    ),
    case(
        RECONCILER.0,
        RECONCILER.1,
        "reconciler/segment-batch.json",
        "no failures",
    ),
    case(
        RECONCILER.0,
        RECONCILER.1,
        "reconciler/revalidate-product.json",
        "202",
    ),
    case(
        REVALIDATOR.0,
        REVALIDATOR.1,
        "tag-revalidator/tag-batch.json",
        "no failures",
    ),
];

/// The rows the events' answers depend on: p-1002 of store-7, with stock at one location.
pub async fn seed(env: &TestEnv) -> Result<()> {
    env.put_product(&product("p-1002", "store-7")).await?;
    env.put_stock(&stock("p-1002", "paris", 1, 0)).await
}

/// What an answer says: "no failures" for a batch with none (an error for a batch with
/// some), an API reply's status code, or how many segments a reconcile run started.
pub fn outcome(event: &str, answer: &Value) -> Result<String> {
    if let Some(failures) = answer.get("batchItemFailures") {
        ensure!(
            failures.as_array().is_some_and(|f| f.is_empty()),
            "{event}: {answer}"
        );
        Ok("no failures".to_owned())
    } else if let Some(status) = answer.get("statusCode") {
        Ok(status.to_string())
    } else {
        Ok(format!("{} segments", answer["segments"]))
    }
}

/// After every case ran: the projector's batches projected (p-1002 has its stock, p-1001 left
/// a tombstone) and queued p-1002's tags, and the revalidator's signed call was
/// accepted with these tags.
pub async fn check_effects(env: &TestEnv, revalidated: &[String]) -> Result<()> {
    let queued = env.queued_tags().await?;
    // p-1001 was created and deleted before any summary showed it: no tag.
    for tag in [
        "product:p-1002",
        "inventory:p-1002",
        "store:store-7:products",
    ] {
        ensure!(
            queued.iter().any(|t| t == tag),
            "{tag} was not queued: {queued:?}"
        );
    }
    env.assert_converged("p-1002").await?;
    env.assert_converged("p-1001").await?;
    let summary = env.summary("p-1002").await?;
    ensure!(
        summary.as_ref().and_then(|s| s.inventory_available) == Some(1),
        "p-1002's summary: {summary:?}"
    );
    ensure!(
        revalidated
            == [
                "inventory:p-1002",
                "product:p-1001",
                "store:store-7:products"
            ],
        "the storefront accepted {revalidated:?}"
    );
    Ok(())
}
