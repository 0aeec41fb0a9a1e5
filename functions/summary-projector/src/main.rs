//! The summary-projector Lambda: DynamoDB Streams of Products and Inventory in, summaries and
//! tag messages out. The event source mappings must enable `ReportBatchItemFailures`, or a
//! partial failure would be taken as success.

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use summary_projector::Projector;

#[tokio::main]
async fn main() -> Result<(), Error> {
    catalog::telemetry::init();
    let config = catalog::config::ProjectorConfig::from_env()?;
    let sdk = catalog::sdk::Sdk::from_env().await;
    let projector = Projector::new(&config, sdk.dynamodb(), sdk.sqs());
    let projector = &projector;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        projector.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
