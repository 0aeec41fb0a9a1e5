//! The tag-revalidator Lambda: the tag queue (SQS, with `ReportBatchItemFailures`) in, signed
//! revalidate calls to every storefront endpoint and tag-table writes out.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use catalog::config::RevalidatorConfig;
use catalog::sdk::Sdk;
use catalog::store::TagTable;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use tag_revalidator::client::RevalidateClient;
use tag_revalidator::secret;
use tag_revalidator::Revalidator;

#[tokio::main]
async fn main() -> Result<(), Error> {
    catalog::telemetry::init();
    let config = RevalidatorConfig::from_env()?;
    let sdk = Sdk::from_env().await;
    // Read at cold start, and again when a storefront refuses a signature (a rotation).
    let timeout = Duration::from_millis(config.timeout_ms);
    let client = RevalidateClient::new(sdk.secret(&config.secret).await?.as_bytes(), timeout)?;
    let client = client.reading_secret_with(secret::reader(&sdk, &config.secret));
    let mut revalidator = Revalidator::new(
        config.endpoints,
        client,
        sdk.sqs(),
        config.tag_queue_url,
        config.max_tags_per_call,
    )
    .with_retry_queue(config.tag_retry_queue_url);
    if let Some(target) = config.tag_table {
        let table = TagTable::new(sdk.dynamodb(), target.table, timeout);
        revalidator = revalidator.with_tag_table(table, target.storefronts);
    }
    let revalidator = &revalidator;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(revalidator.handle(event.payload).await)
    }))
    .await
}
