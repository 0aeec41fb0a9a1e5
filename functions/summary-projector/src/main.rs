//! The summary-projector Lambda: DynamoDB Streams of Products and Inventory in, summaries and
//! tag messages out; and its listing-check queue, which holds listing tags until the index
//! shows the write. Every event source mapping must enable `ReportBatchItemFailures`, or a
//! partial failure would be taken as success.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use summary_projector::{Input, Projector};

#[tokio::main]
async fn main() -> Result<(), Error> {
    catalog::telemetry::init();
    let config = catalog::config::ProjectorConfig::from_env()?;
    let sdk = catalog::sdk::Sdk::from_env().await;
    let projector = Projector::new(&config, sdk.dynamodb(), sdk.sqs());
    let projector = &projector;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let input = Input::parse(event.payload)?;
            projector.handle_input(input).await.map_err(Error::from)
        },
    ))
    .await
}
