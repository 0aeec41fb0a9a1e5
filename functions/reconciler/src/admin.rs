//! The admin route `POST /admin/products/{productId}/revalidate` (API Gateway HTTP API, IAM
//! authorized in template.yaml): queue every tag of one product now.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue, Method};
use catalog::ids::ProductId;
use catalog::queue::TagPublisher;
use catalog::revalidate::revalidate_product;
use catalog::store::{SourceStore, SummaryStore};
use serde_json::{json, Value};

/// What the route needs.
#[derive(Debug, Clone)]
pub struct Admin {
    pub sources: SourceStore,
    pub summaries: SummaryStore,
    pub publisher: TagPublisher,
}

fn reply(status: i64, body: Value) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = status;
    response.headers = headers;
    response.body = Some(Body::Text(body.to_string()));
    response
}

fn error(status: i64, code: &str, message: &str) -> ApiGatewayV2httpResponse {
    reply(status, json!({"error": {"code": code, "message": message}}))
}

impl Admin {
    /// Handles one admin request.
    pub async fn handle(&self, request: &ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        let path = request.raw_path.as_deref().unwrap_or_default();
        let Some(id) = path
            .strip_prefix("/admin/products/")
            .and_then(|rest| rest.strip_suffix("/revalidate"))
        else {
            return error(404, "not_found", "no such route");
        };
        if request.request_context.http.method != Method::POST {
            return error(405, "method_not_allowed", "use POST");
        }
        let id = match ProductId::parse(id) {
            Ok(id) => id,
            Err(e) => return error(400, "invalid_product_id", &e.to_string()),
        };
        match revalidate_product(&self.sources, &self.summaries, &self.publisher, &id).await {
            Ok(tags) => {
                tracing::info!(product_id = %id, tags = tags.len(), "revalidation queued on demand");
                reply(202, json!({"productId": id, "tags": tags}))
            }
            Err(e) => {
                tracing::error!(product_id = %id, error = %e, "could not queue the revalidation");
                error(
                    503,
                    "unavailable",
                    "could not queue the revalidation; retry",
                )
            }
        }
    }
}
