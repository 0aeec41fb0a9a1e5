//! Every file in events/ through the real function binaries, run by `cargo lambda watch` (the
//! Lambda Runtime API emulator) and sent with `cargo lambda invoke`, with DynamoDB Local and
//! moto behind them: what `sam local invoke` does with Docker, without Docker.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use catalog::testing::{product, stock};
use catalog_local::services;
use catalog_tests::TestEnv;
use serde_json::Value;

/// `CARGO_LAMBDA`, else the one scripts/setup installs into tools/.venv.
fn cargo_lambda() -> Result<PathBuf> {
    let path = std::env::var_os("CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| catalog_local::workspace_root().join("tools/.venv/bin/cargo-lambda"));
    ensure!(path.exists(), "{path:?} is missing: run scripts/setup");
    Ok(path)
}

fn invoke(cargo_lambda: &PathBuf, port: u16, binary: &str, event: &str) -> Result<Value> {
    let root = catalog_local::workspace_root();
    let output = Command::new(cargo_lambda)
        .current_dir(&root)
        .args(["lambda", "invoke", binary, "--invoke-address", "127.0.0.1"])
        .args([
            "--invoke-port",
            &port.to_string(),
            "--output-format",
            "json",
        ])
        .arg("--data-file")
        .arg(root.join("events").join(event))
        .output()
        .context("running cargo lambda invoke")?;
    ensure!(
        output.status.success(),
        "{binary} {event}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "{binary} {event} answered {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_event_runs_on_the_real_binaries() -> Result<()> {
    let cargo_lambda = cargo_lambda()?;
    let env = TestEnv::new().await?;
    env.put_product(&product("p-1002", "store-7")).await?;
    env.put_stock(&stock("p-1002", "paris", 1, 0)).await?;

    let (dynamodb, sqs) = catalog_tests::endpoints();
    let stub = catalog_tests::storefront_stub::StorefrontStub::start("sample-secret").await?;
    let vars = [
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb),
        ("AWS_ENDPOINT_URL_SQS", sqs),
        ("PRODUCTS_TABLE", env.tables.products.clone()),
        ("INVENTORY_TABLE", env.tables.inventory.clone()),
        ("SUMMARIES_TABLE", env.tables.summaries.clone()),
        ("TAG_QUEUE_URL", env.queues["TagQueue"].clone()),
        (
            "PARKED_RECORDS_QUEUE_URL",
            env.queues["ParkedRecordsQueue"].clone(),
        ),
        ("RECONCILE_QUEUE_URL", env.queues["ReconcileQueue"].clone()),
        ("RECONCILE_SEGMENTS", "2".to_owned()),
        (
            "CURSOR_SECRET",
            "local-cursor-secret-at-least-16-bytes".to_owned(),
        ),
        ("REVALIDATE_ENDPOINTS", stub.url.clone()),
        ("REVALIDATE_SECRET", "sample-secret".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let port = services::free_port()?;
    let mut args: Vec<String> = ["lambda", "watch", "--ignore-changes", "--quiet"]
        .map(str::to_owned)
        .to_vec();
    args.extend(["--invoke-address".into(), "127.0.0.1".into()]);
    args.extend(["--invoke-port".into(), port.to_string()]);
    for (k, v) in &vars {
        args.extend(["--env-var".into(), format!("{k}={v}")]);
    }
    let root = catalog_local::workspace_root();
    let log = services::log_dir(&root)?.join(format!("cargo-lambda-watch-{port}.log"));
    // The watcher runs from the workspace root, so it builds the workspace's binaries.
    std::env::set_current_dir(&root)?;
    let _watch = services::start(
        &cargo_lambda,
        &args,
        &[],
        port,
        &log,
        Duration::from_secs(300),
    )?;

    let cases: [(&str, &str, &str); 13] = [
        (
            "summary-projector",
            "summary-projector/products-stream.json",
            "no failures",
        ),
        (
            "summary-projector",
            "summary-projector/inventory-stream.json",
            "no failures",
        ),
        ("listing-api", "listing-api/list-store.json", "200"),
        ("listing-api", "listing-api/get-product.json", "200"),
        ("listing-api", "listing-api/batch-get.json", "200"),
        ("listing-api", "listing-api/bad-limit.json", "400"),
        ("listing-api", "listing-api/unknown-route.json", "404"),
        ("reconciler", "reconciler/schedule.json", "2 segments"),
        ("reconciler", "reconciler/backfill.json", "4 segments"),
        (
            "reconciler",
            "reconciler/dry-run-one-store.json",
            "1 segments",
        ),
        ("reconciler", "reconciler/segment-batch.json", "no failures"),
        ("reconciler", "reconciler/revalidate-product.json", "202"),
        (
            "tag-revalidator",
            "tag-revalidator/tag-batch.json",
            "no failures",
        ),
    ];
    for (binary, event, expected) in cases {
        let answer = invoke(&cargo_lambda, port, binary, event)?;
        let got = if let Some(failures) = answer.get("batchItemFailures") {
            ensure!(
                failures.as_array().is_some_and(|f| f.is_empty()),
                "{event}: {answer}"
            );
            "no failures".to_owned()
        } else if let Some(status) = answer.get("statusCode") {
            status.to_string()
        } else {
            format!("{} segments", answer["segments"])
        };
        assert_eq!(got, expected, "{binary} {event}: {answer}");
    }
    // The projector's batches really projected: p-1002 has its stock, p-1001 left a tombstone.
    env.assert_converged("p-1002").await?;
    env.assert_converged("p-1001").await?;
    assert_eq!(
        env.summary("p-1002").await?.unwrap().inventory_available,
        Some(1)
    );
    // The revalidator's binary signed its call: the stub accepted it.
    assert_eq!(
        stub.tags(),
        [
            "inventory:p-1002",
            "product:p-1001",
            "store:store-7:products"
        ]
    );
    Ok(())
}
