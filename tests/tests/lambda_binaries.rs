//! Every file in events/ through the real function binaries, run by `cargo lambda watch` (the
//! Lambda Runtime API emulator) and sent with `cargo lambda invoke`, with DynamoDB Local and
//! moto behind them: what `sam local invoke` does with Docker, without Docker.

use anyhow::{ensure, Result};
use catalog::testing::{product, stock};
use catalog_tests::lambda_watch::{function_env, LambdaWatch};
use catalog_tests::TestEnv;

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_event_runs_on_the_real_binaries() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&product("p-1002", "store-7")).await?;
    env.put_stock(&stock("p-1002", "paris", 1, 0)).await?;

    let stub = catalog_tests::storefront_stub::StorefrontStub::start("sample-secret").await?;
    let mut vars = function_env(&env, &stub.url, "sample-secret");
    vars.push(("RUST_LOG".into(), "warn".into()));
    let watch = LambdaWatch::start(&vars)?;

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
        let answer = watch.invoke(binary, event)?;
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
