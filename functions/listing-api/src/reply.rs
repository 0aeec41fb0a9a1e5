//! Building API Gateway responses: JSON bodies, cache headers, strong ETags and errors.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::header::{HeaderName, HeaderValue};
use aws_lambda_events::http::HeaderMap;
use catalog::tags::TagSet;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What a CDN or browser may do with a successful response: serve it for a second, then
/// serve it stale for four more while it refetches, so no shopper sees data older than 5 s
/// past a revalidation.
pub const CACHE_CONTROL: &str = "public, max-age=1, stale-while-revalidate=4";

/// A client or server error, as `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    /// A 400 with a code naming what is wrong.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: 400,
            code,
            message: message.into(),
        }
    }

    /// A 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: 404,
            code: "not_found",
            message: message.into(),
        }
    }
}

fn header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

fn response(status: u16, headers: HeaderMap, body: Option<String>) -> ApiGatewayV2httpResponse {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = body.map(Body::Text);
    response
}

/// The strong ETag of a body: a quoted SHA-256 prefix.
pub fn etag(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether an `If-None-Match` header value matches `etag` (weak comparison, as RFC 9110 asks
/// for this header).
pub fn matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

/// A 200 with `value` as JSON, its ETag, the cache headers and the `Cache-Tag` header listing
/// `tags`; or a 304 with no body when `if_none_match` matches.
pub fn ok(
    value: &impl Serialize,
    tags: &TagSet,
    if_none_match: Option<&str>,
) -> ApiGatewayV2httpResponse {
    let body = serde_json::to_string(value).expect("response bodies always serialize");
    let etag = etag(&body);
    let mut headers = HeaderMap::new();
    header(&mut headers, "etag", &etag);
    header(&mut headers, "cache-control", CACHE_CONTROL);
    let tag_list = tags
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",");
    header(&mut headers, "cache-tag", &tag_list);
    if if_none_match.is_some_and(|v| matches(v, &etag)) {
        return response(304, headers, None);
    }
    header(&mut headers, "content-type", "application/json");
    response(200, headers, Some(body))
}

/// The JSON error response for `error`; never cached.
pub fn error(error: &ApiError) -> ApiGatewayV2httpResponse {
    let body = serde_json::json!({"error": {"code": error.code, "message": error.message}});
    let mut headers = HeaderMap::new();
    header(&mut headers, "content-type", "application/json");
    header(&mut headers, "cache-control", "no-store");
    if error.status == 503 {
        header(&mut headers, "retry-after", "1");
    }
    response(error.status, headers, Some(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_star() {
        let tag = etag("{}");
        assert!(matches(&tag, &tag));
        assert!(matches(&format!("\"x\", W/{tag}"), &tag));
        assert!(matches("*", &tag));
        assert!(!matches("\"x\"", &tag));
    }

    #[test]
    fn a_matching_etag_gives_304_without_body() {
        let first = ok(&serde_json::json!({"a": 1}), &TagSet::new(), None);
        assert_eq!(first.status_code, 200);
        let tag = first.headers["etag"].to_str().unwrap().to_owned();
        let second = ok(&serde_json::json!({"a": 1}), &TagSet::new(), Some(&tag));
        assert_eq!(second.status_code, 304);
        assert!(second.body.is_none());
        assert_eq!(second.headers["etag"], first.headers["etag"]);
    }
}
