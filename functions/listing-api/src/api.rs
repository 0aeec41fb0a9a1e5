//! The handler: routes a request, reads summaries, and answers with the card a caller may see.

use std::collections::HashSet;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use catalog::store::{ReadError, SummaryStore};
use catalog::telemetry::{self, MetricSet};
use catalog_core::http_path;
use catalog_core::ids::{ProductId, StoreId};
use catalog_core::listing::Listing;
use catalog_core::model::SummaryRecord;
use catalog_core::tags::{product_tags, Tag, TagSet};
use serde::Serialize;

use crate::cursor::CursorKey;
use crate::reply::{self, ApiError, Audience, CacheTags};
use crate::route::{self, Caller, Route};

const FUNCTION: &str = "listing-api";

/// The handler's state, built once at cold start.
#[derive(Debug, Clone)]
pub struct ListingApi {
    summaries: SummaryStore,
    cursors: CursorKey,
}

/// `GET /stores/{storeId}/products`
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListBody<'a> {
    store_id: &'a StoreId,
    items: Vec<SummaryRecord>,
    next_cursor: Option<String>,
}

/// `POST /products:batchGet`
#[derive(Serialize)]
struct BatchBody {
    products: Vec<SummaryRecord>,
    missing: Vec<ProductId>,
}

/// A shopper sees a product while it is on sale; a draft, archived or deleted one is as absent
/// as an id never used, so nobody learns which ids are drafts waiting to be published.
fn on_sale(record: SummaryRecord) -> Option<SummaryRecord> {
    record.summary.active.then_some(record)
}

/// An admin when API Gateway's IAM authorizer vouched for the caller (only the admin routes
/// have one), else a shopper.
fn caller(request: &ApiGatewayV2httpRequest) -> Caller {
    match http_path::iam_authorized(request) {
        true => Caller::Admin,
        false => Caller::Shopper,
    }
}

impl ListingApi {
    /// An API over `summaries`, signing cursors with `cursors`.
    pub fn new(summaries: SummaryStore, cursors: CursorKey) -> Self {
        Self { summaries, cursors }
    }

    /// Answers one API Gateway (HTTP API, payload v2) request. Client mistakes are 4xx with a
    /// JSON error; a DynamoDB fault is a 503 (throttling) or a 500 that reveals nothing.
    pub async fn handle(&self, request: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        let if_none_match = request
            .headers
            .get("if-none-match")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let path = http_path::path_without_stage(&request);
        let method = request.request_context.http.method.clone();
        let query = &request.query_string_parameters;
        let result = match route::route(&method, &path, query, caller(&request)) {
            Ok(route) => self.serve(route, &request, if_none_match.as_deref()).await,
            Err(err) => Err(err),
        };
        let response = result.unwrap_or_else(|err| {
            if err.status >= 500 {
                tracing::error!(status = err.status, code = err.code, %path, "request failed");
            }
            reply::error(&err)
        });
        tracing::debug!(%method, %path, status = response.status_code, "request answered");
        // A listing request has no figures of its own (API Gateway counts and times them);
        // this writes the cold start only.
        telemetry::emit(FUNCTION, &MetricSet::default());
        response
    }

    async fn serve(
        &self,
        route: Route,
        request: &ApiGatewayV2httpRequest,
        if_none_match: Option<&str>,
    ) -> Result<ApiGatewayV2httpResponse, ApiError> {
        match route {
            Route::List {
                listing,
                limit,
                cursor,
                admin,
            } => {
                let page = self.list(&listing, limit, cursor).await?;
                let audience = match admin {
                    true => Audience::Private,
                    false => Audience::Public(page.1),
                };
                Ok(reply::ok(&page.0, &audience, if_none_match))
            }
            Route::Get(id) => self.get(&id, if_none_match).await,
            Route::BatchGet => {
                let ids = route::batch_ids(&request_body(request)?)?;
                self.batch_get(&ids, if_none_match).await
            }
        }
    }

    /// A page of a store's listing, and its tags: the store's listing and each card's product.
    /// Every sort and filter of a store is under the one store tag, so a change that reorders
    /// or refilters any of them revalidates them all.
    async fn list<'a>(
        &self,
        listing: &'a Listing,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(ListBody<'a>, CacheTags), ApiError> {
        let store = listing.store();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let after = cursor
            .map(|c| self.cursors.open(&c, listing, now))
            .transpose()
            .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
        let page = self
            .summaries
            .list(listing, limit, after.as_ref())
            .await
            .map_err(store_error)?;
        let store_tag = TagSet::from([Tag::store_products(store)]);
        let mut tags = CacheTags {
            tags: store_tag.clone(),
            fallback: store_tag,
        };
        for item in &page.items {
            tags.tags.extend(product_tags(&item.summary.product_id, []));
        }
        let body = ListBody {
            store_id: store,
            next_cursor: page.next.map(|p| self.cursors.sign(listing, &p, now)),
            items: page.items,
        };
        Ok((body, tags))
    }

    /// One product's card.
    async fn get(
        &self,
        id: &ProductId,
        if_none_match: Option<&str>,
    ) -> Result<ApiGatewayV2httpResponse, ApiError> {
        let card = self.summaries.get_card(id).await.map_err(store_error)?;
        let card = card
            .and_then(on_sale)
            .ok_or_else(|| ApiError::not_found(format!("no product {id}")))?;
        let tags = CacheTags {
            tags: product_tags(id, []),
            ..CacheTags::default()
        };
        let audience = Audience::Public(tags);
        Ok(reply::ok(&card, &audience, if_none_match))
    }

    /// The cards of a cart's `ids` on sale (each once, in order), and the others: one shopper's
    /// cart, kept by no cache.
    async fn batch_get(
        &self,
        ids: &[ProductId],
        if_none_match: Option<&str>,
    ) -> Result<ApiGatewayV2httpResponse, ApiError> {
        let mut seen = HashSet::new();
        let distinct: Vec<ProductId> = ids.iter().filter(|id| seen.insert(*id)).cloned().collect();
        let mut cards = self
            .summaries
            .get_cards(&distinct)
            .await
            .map_err(store_error)?;
        let mut body = BatchBody {
            products: Vec::with_capacity(distinct.len()),
            missing: Vec::new(),
        };
        for id in distinct {
            match cards.remove(&id).and_then(on_sale) {
                Some(card) => body.products.push(card),
                None => body.missing.push(id),
            }
        }
        Ok(reply::ok(&body, &Audience::Private, if_none_match))
    }
}

fn request_body(request: &ApiGatewayV2httpRequest) -> Result<Vec<u8>, ApiError> {
    let body = request.body.as_deref().unwrap_or("");
    if request.is_base64_encoded {
        STANDARD
            .decode(body)
            .map_err(|_| ApiError::bad_request("invalid_body", "the body is not valid base64"))
    } else {
        Ok(body.as_bytes().to_vec())
    }
}

fn store_error(err: ReadError) -> ApiError {
    tracing::error!(error = %err, "summary read failed");
    match err {
        ReadError::Fault(fault) if fault.is_transient() => ApiError {
            status: 503,
            code: "unavailable",
            message: "the catalog is busy; retry shortly".into(),
        },
        _ => ApiError {
            status: 500,
            code: "internal",
            message: "internal error".into(),
        },
    }
}
