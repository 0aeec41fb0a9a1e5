//! Every file in events/ through the real function binaries, run by `cargo lambda watch` (the
//! Lambda Runtime API emulator) and sent with `cargo lambda invoke`, with DynamoDB Local and
//! moto behind them: what `sam local invoke` does with Docker (sam_local.rs), without Docker.

use anyhow::Result;
use catalog_tests::lambda_watch::{function_env, LambdaWatch};
use catalog_tests::sample_events::{check_effects, outcome, seed, CASES};
use catalog_tests::TestEnv;

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_event_runs_on_the_real_binaries() -> Result<()> {
    let env = TestEnv::new().await?;
    seed(&env).await?;

    let stub = catalog_tests::storefront_stub::StorefrontStub::start(
        "sample-revalidate-secret-of-32-bytes",
    )
    .await?;
    let mut vars = function_env(&env, &stub.url, "sample-revalidate-secret-of-32-bytes");
    vars.push(("RUST_LOG".into(), "warn".into()));
    let watch = LambdaWatch::start(&vars)?;

    for case in CASES {
        let answer = watch.invoke(case.binary, case.event)?;
        let got = outcome(case.event, &answer)?;
        assert_eq!(
            got, case.expected,
            "{} {}: {answer}",
            case.binary, case.event
        );
    }
    check_effects(&env, &stub.tags()).await
}
