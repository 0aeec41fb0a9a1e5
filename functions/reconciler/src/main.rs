//! The reconciler Lambda: an EventBridge schedule (or an on-demand event of the same shape)
//! starts a run; the reconcile queue (with ReportBatchItemFailures) runs its segments.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use reconciler::Reconciler;
use serde_json::Value;

/// The invocation's deadline (epoch milliseconds) as an `Instant`.
fn deadline(epoch_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    Instant::now() + Duration::from_millis(epoch_ms.saturating_sub(now_ms))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    catalog::telemetry::init();
    let config = catalog::config::ReconcilerConfig::from_env()?;
    let sdk = catalog::sdk::Sdk::from_env().await;
    let reconciler = Reconciler::new(&config, sdk.dynamodb(), sdk.sqs());
    let reconciler = &reconciler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = deadline(event.context.deadline);
        reconciler
            .handle(event.payload, deadline)
            .await
            .map_err(Error::from)
    }))
    .await
}
