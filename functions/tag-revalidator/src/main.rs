//! The tag-revalidator Lambda: the tag queue (SQS, with `ReportBatchItemFailures`) in, signed
//! revalidate calls to every storefront out.

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsEvent;
use catalog::config::{RevalidatorConfig, SecretSource};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use tag_revalidator::client::RevalidateClient;
use tag_revalidator::Revalidator;

/// The signing secret, read once at cold start: from Secrets Manager on AWS, from
/// `REVALIDATE_SECRET` locally.
async fn secret(source: &SecretSource, aws: &aws_config::SdkConfig) -> Result<String, Error> {
    Ok(match source {
        SecretSource::SecretsManager(arn) => aws_sdk_secretsmanager::Client::new(aws)
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await?
            .secret_string
            .ok_or("the revalidate secret has no SecretString")?,
        SecretSource::Value(value) => value.clone(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    catalog::telemetry::init();
    let config = RevalidatorConfig::from_env()?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = RevalidateClient::new(
        secret(&config.secret, &aws).await?.as_bytes(),
        Duration::from_millis(config.timeout_ms),
    )?;
    let revalidator = Revalidator::new(
        config.endpoints,
        client,
        aws_sdk_sqs::Client::new(&aws),
        config.tag_queue_url,
        config.max_tags_per_call,
    );
    let revalidator = &revalidator;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(revalidator.handle(event.payload).await)
    }))
    .await
}
