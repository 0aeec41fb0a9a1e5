//! The listing-api Lambda, behind an API Gateway HTTP API (payload format 2.0).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use catalog::config::ListingApiConfig;
use catalog::sdk::Sdk;
use catalog::store::SummaryStore;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use listing_api::cursor::CursorKey;
use listing_api::ListingApi;

#[tokio::main]
async fn main() -> Result<(), Error> {
    catalog::telemetry::init();
    let config = ListingApiConfig::from_env()?;
    let sdk = Sdk::from_env().await;
    // Read once, at cold start: the current key signs; during a rotation the previous one
    // still opens the cursors it signed.
    let (current, previous) = sdk.secret_versions(&config.cursor_secret).await?;
    let cursor_key =
        CursorKey::rotating(current.as_bytes(), previous.as_deref().map(str::as_bytes))?;
    let api = ListingApi::new(
        SummaryStore::new(sdk.dynamodb(), config.summaries_table),
        cursor_key,
    );
    let api = &api;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            Ok::<_, Error>(api.handle(event.payload).await)
        },
    ))
    .await
}
