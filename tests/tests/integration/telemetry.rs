//! Each function's telemetry as Lambda would see it, from its real binary under
//! `cargo lambda watch`, invoked twice in one process: Powertools' keys on every log line, the
//! cold start flagged on the first invocation only, one `ColdStart` metric, and every metric
//! the dashboard and alarms read for that function emitted with the dimensions they read.

use std::collections::BTreeSet;

use anyhow::{ensure, Context, Result};
use catalog::telemetry::logs::KEYS;
use catalog_core::testing::{product, stock};
use catalog_local::template::Template;
use catalog_tests::lambda_watch::{function_env, LambdaWatch};
use catalog_tests::metric_refs::{self, MetricId};
use catalog_tests::storefront_stub::StorefrontStub;
use catalog_tests::TestEnv;
use serde_json::Value;

/// What the template gives every function as `POWERTOOLS_SERVICE_NAME`.
fn template_service(t: &Template) -> Result<String> {
    t.document["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        .as_str()
        .map(str::to_owned)
        .context("Globals set no POWERTOOLS_SERVICE_NAME")
}

/// Runs `binary` on `events/{first}`, then `events/{second}`, in one process; returns its JSON
/// lines.
async fn two_invocations(
    binary: &str,
    [first, second]: [&str; 2],
    service: &str,
) -> Result<Vec<Value>> {
    let env = TestEnv::new().await?;
    env.put_product(&product("p-1002", "store-7")).await?;
    env.put_stock(&stock("p-1002", "paris", 1, 0)).await?;
    let stub = StorefrontStub::start("sample-revalidate-secret-of-32-bytes").await?;
    let mut vars = function_env(&env, &stub.url, "sample-revalidate-secret-of-32-bytes");
    // As Lambda's advanced logging controls set it; DEBUG shows listing-api's request line.
    vars.push(("AWS_LAMBDA_LOG_LEVEL".into(), "DEBUG".into()));
    vars.push(("POWERTOOLS_SERVICE_NAME".into(), service.into()));
    let watch = LambdaWatch::start(&vars)?;
    watch.invoke(binary, first)?;
    watch.invoke(binary, second)?;
    watch.json_lines()
}

/// Every log line has the keys; the first request's lines say cold start, the second's don't.
fn check_logs(binary: &str, service: &str, logs: &[&Value]) -> Result<()> {
    for line in logs {
        for key in KEYS {
            ensure!(line.get(key).is_some(), "{key} missing from {line}");
        }
        ensure!(line["service"] == service, "service: {line}");
        ensure!(line["function_name"] == binary, "function_name: {line}");
    }
    let mut requests: Vec<(&str, bool)> = Vec::new();
    for line in logs {
        if let Some(id) = line["function_request_id"].as_str() {
            let cold = line["cold_start"]
                .as_bool()
                .context("cold_start is not a bool")?;
            if !requests.contains(&(id, cold)) {
                requests.push((id, cold));
            }
        }
    }
    ensure!(
        requests.len() == 2 && requests[0].1 && !requests[1].1 && requests[0].0 != requests[1].0,
        "expected two requests, the first cold and the second warm; got {requests:?}"
    );
    Ok(())
}

/// One `ColdStart` in all; every metric the template reads for this function was emitted.
fn check_metrics(binary: &str, template: &Template, documents: &[&Value]) -> Result<()> {
    // Lambda's level filter treats a line without a level or an RFC 3339 timestamp as INFO.
    for doc in documents {
        ensure!(doc["level"] == "INFO", "level: {doc}");
        let stamp = doc["timestamp"].as_str().unwrap_or_default();
        ensure!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "timestamp: {doc}"
        );
    }
    let cold: usize = documents
        .iter()
        .filter(|d| d.get("ColdStart").is_some())
        .count();
    ensure!(cold == 1, "{cold} documents carry ColdStart: {documents:?}");
    let emitted = metric_refs::emitted(documents.iter().copied());
    let read: BTreeSet<MetricId> = metric_refs::referenced(template)?
        .into_iter()
        .filter(|m| m.dimensions.get("function").map(String::as_str) == Some(binary))
        .collect();
    ensure!(!read.is_empty(), "the template reads no metric of {binary}");
    let missing: Vec<&MetricId> = read.difference(&emitted).collect();
    ensure!(
        missing.is_empty(),
        "the template reads metrics {binary} never emitted: {missing:?}\nemitted: {emitted:?}"
    );
    Ok(())
}

async fn check(binary: &str, events: [&str; 2]) -> Result<()> {
    let template = Template::load(&catalog_local::workspace_root())?;
    let service = template_service(&template)?;
    let lines = two_invocations(binary, events, &service).await?;
    let (documents, logs): (Vec<&Value>, Vec<&Value>) =
        lines.iter().partition(|l| l.get("_aws").is_some());
    check_logs(binary, &service, &logs)?;
    check_metrics(binary, &template, &documents)
}

#[tokio::test(flavor = "multi_thread")]
async fn summary_projector_logs_and_metrics() -> Result<()> {
    // Its two event sources: a stream batch, then a listing check.
    let events = [
        "summary-projector/products-stream.json",
        "summary-projector/listing-checks.json",
    ];
    check("summary-projector", events).await
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_api_logs_and_metrics() -> Result<()> {
    check("listing-api", ["listing-api/list-store.json"; 2]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn reconciler_logs_and_metrics() -> Result<()> {
    check("reconciler", ["reconciler/segment-batch.json"; 2]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_revalidator_logs_and_metrics() -> Result<()> {
    check("tag-revalidator", ["tag-revalidator/tag-batch.json"; 2]).await
}

/// At TRACE, the most a deployer can ask for, no line carries a request: lambda_runtime logs
/// each raw event at TRACE (SigV4 headers, batchGet and SQS bodies), so it stays at INFO
/// whatever the level, as the SDK and the HTTP stack do.
#[tokio::test(flavor = "multi_thread")]
async fn at_trace_no_line_carries_an_event() -> Result<()> {
    let env = TestEnv::new().await?;
    let stub = StorefrontStub::start("sample-revalidate-secret-of-32-bytes").await?;
    let mut vars = function_env(&env, &stub.url, "sample-revalidate-secret-of-32-bytes");
    vars.push(("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into()));
    let watch = LambdaWatch::start(&vars)?;
    watch.invoke("listing-api", "listing-api/batch-get.json")?;
    watch.invoke("tag-revalidator", "tag-revalidator/tag-batch.json")?;
    let lines = watch.json_lines()?;
    ensure!(!lines.is_empty(), "nothing was logged");
    for line in &lines {
        let text = line.to_string();
        // Keys only a whole API Gateway or SQS event has.
        for marker in ["routeKey", "receiptHandle", "raw JSON event"] {
            ensure!(!text.contains(marker), "{marker} logged: {text}");
        }
        let location = line["location"].as_str().unwrap_or_default();
        let chatty = matches!(line["level"].as_str(), Some("DEBUG" | "TRACE"));
        ensure!(
            !(chatty && location.starts_with("lambda_runtime")),
            "{text}"
        );
    }
    Ok(())
}
