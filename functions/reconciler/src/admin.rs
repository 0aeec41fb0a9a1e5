//! The admin route `POST /admin/products/{productId}/revalidate` (API Gateway HTTP API, IAM
//! authorized in template.yaml): queue every tag of one product now, after an admin edit made
//! outside the tables or to clear a page someone reports stale. The tag-revalidator then
//! revalidates them like any others.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::Method;
use catalog::fault::Fault;
use catalog::queue::TagPublisher;
use catalog::store::{SourceStore, SummaryStore};
use catalog_core::http_path;
use catalog_core::http_reply::{error, uncached_json};
use catalog_core::ids::ProductId;
use catalog_core::tags::{product_tags, TagSet};
use serde_json::json;

/// What the route needs.
#[derive(Debug, Clone)]
pub struct Admin {
    pub sources: SourceStore,
    pub summaries: SummaryStore,
    pub publisher: TagPublisher,
}

/// A refused request: (status, code, message).
type Refusal = (u16, &'static str, String);

/// The product of an IAM-authorized `POST /admin/products/{productId}/revalidate`: the template
/// puts the route behind `AWS_IAM`, and the function checks that it did (403 otherwise).
fn route(request: &ApiGatewayV2httpRequest) -> Result<ProductId, Refusal> {
    if !http_path::iam_authorized(request) {
        let message = "this route needs an IAM-authorized (SigV4) caller";
        return Err((403, "admin_only", message.into()));
    }
    let path = http_path::path_without_stage(request);
    product_of(&request.request_context.http.method, &path)
}

/// The product id of `POST /admin/products/{productId}/revalidate`, from the path as routed
/// (stage stripped) with the id percent-decoded exactly as listing-api decodes its ids.
fn product_of(method: &Method, path: &str) -> Result<ProductId, Refusal> {
    let ["admin", "products", id, "revalidate"] = http_path::segments(path)[..] else {
        return Err((404, "not_found", "no such route".into()));
    };
    if *method != Method::POST {
        return Err((405, "method_not_allowed", "use POST".into()));
    }
    let id = http_path::percent_decode(id).map_err(|e| (400, "invalid_path", e.to_string()))?;
    ProductId::parse(id).map_err(|e| (400, "invalid_product_id", e.to_string()))
}

impl Admin {
    /// Handles one admin request.
    pub async fn handle(&self, request: &ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        let id = match route(request) {
            Ok(id) => id,
            Err((status, code, message)) => return error(status, code, &message),
        };
        match revalidate_product(&self.sources, &self.summaries, &self.publisher, &id).await {
            Ok(tags) => {
                tracing::info!(product_id = %id, tags = tags.len(), "revalidation queued on demand");
                uncached_json(202, &json!({"productId": id, "tags": tags}))
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

/// Reads `id`'s summary and its Products row and queues all of its tags, with the listing of
/// both stores when they differ (the product moved and the summary has not caught up).
/// Returns the tags queued.
pub async fn revalidate_product(
    sources: &SourceStore,
    summaries: &SummaryStore,
    publisher: &TagPublisher,
    id: &ProductId,
) -> Result<TagSet, Fault> {
    let summary_store = summaries
        .get(id)
        .await?
        .and_then(|s| s.record)
        .map(|r| r.summary.store_id);
    let product_store = match sources.products(std::slice::from_ref(id)).await?.remove(id) {
        Some(Ok(Some(product))) => Some(product.store_id),
        // An undecodable row is parked by the projector; the summary still names a store.
        Some(Err(corrupt)) => {
            tracing::warn!(product_id = %id, error = %corrupt, "product row does not decode");
            None
        }
        _ => None,
    };
    let tags = product_tags(id, summary_store.iter().chain(product_store.iter()));
    publisher.publish(&tags, chrono::Utc::now()).await?;
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(result: Result<ProductId, Refusal>) -> u16 {
        result.map(|_| 202).unwrap_or_else(|(status, ..)| status)
    }

    #[test]
    fn only_iam_authorized_callers_are_routed() {
        let path = "/admin/products/p1/revalidate";
        let mut event = post_to(path);
        assert_eq!(status(route(&event)), 403);
        event.request_context.authorizer = serde_json::from_value(json!({"iam": {}})).unwrap();
        assert_eq!(status(route(&event)), 202);
    }

    fn post_to(path: &str) -> ApiGatewayV2httpRequest {
        let mut event = ApiGatewayV2httpRequest::default();
        event.raw_path = Some(path.into());
        event.request_context.http.method = Method::POST;
        event
    }

    #[test]
    fn ids_are_percent_decoded_as_listing_api_decodes_them() {
        let id = product_of(&Method::POST, "/admin/products/caf%C3%A9/revalidate").unwrap();
        assert_eq!(id.as_str(), "café");
        let id = product_of(&Method::POST, "/admin/products/a%2Fb/revalidate").unwrap();
        assert_eq!(id.as_str(), "a/b");
    }

    #[test]
    fn other_paths_methods_and_escapes_are_refused() {
        assert_eq!(status(product_of(&Method::POST, "/admin/products/p1")), 404);
        assert_eq!(
            status(product_of(&Method::POST, "/admin/products/a/b/revalidate")),
            404
        );
        assert_eq!(
            status(product_of(&Method::GET, "/admin/products/p1/revalidate")),
            405
        );
        assert_eq!(
            status(product_of(&Method::POST, "/admin/products/%C3/revalidate")),
            400
        );
        assert_eq!(
            status(product_of(
                &Method::POST,
                "/admin/products/a%20b/revalidate"
            )),
            400
        );
    }
}
