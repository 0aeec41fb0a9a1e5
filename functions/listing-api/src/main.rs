//! The listing-api Lambda, behind an API Gateway HTTP API (payload format 2.0).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use catalog::store::SummaryStore;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use listing_api::cursor::CursorKey;
use listing_api::ListingApi;

/// The cursor signing key: the secret `CURSOR_SECRET_ARN` names in Secrets Manager (as
/// template.yaml sets it), or `CURSOR_SECRET` for local runs. Read once, at cold start.
async fn cursor_key(aws: &aws_config::SdkConfig) -> Result<CursorKey, Error> {
    let secret = match std::env::var("CURSOR_SECRET_ARN") {
        Ok(arn) => aws_sdk_secretsmanager::Client::new(aws)
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await?
            .secret_string
            .ok_or("the cursor secret has no SecretString")?,
        Err(_) => std::env::var("CURSOR_SECRET")
            .map_err(|_| "set CURSOR_SECRET_ARN (on AWS) or CURSOR_SECRET (locally)")?,
    };
    Ok(CursorKey::new(secret.as_bytes())?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    catalog::telemetry::init();
    let table = std::env::var("SUMMARIES_TABLE").map_err(|_| "SUMMARIES_TABLE is not set")?;
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let api = ListingApi::new(
        SummaryStore::new(aws_sdk_dynamodb::Client::new(&aws), table),
        cursor_key(&aws).await?,
    );
    let api = &api;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            Ok::<_, Error>(api.handle(event.payload).await)
        },
    ))
    .await
}
