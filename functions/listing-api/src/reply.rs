//! Building API Gateway responses: JSON bodies, cache headers, strong ETags and errors.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::header::{HeaderName, HeaderValue};
use aws_lambda_events::http::HeaderMap;
use catalog_core::http_reply;
use catalog_core::tags::TagSet;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What any cache may do with a public answer (a listing page, a product card): keep it, but
/// ask the API before every reuse (`no-cache`; the strong ETag makes that a 304). A shared
/// cache in front of the API that served a copy even a second old after a revalidation would
/// hand Next.js the old body to cache, with no tag left to clear it.
pub const PUBLIC_CACHE_CONTROL: &str = "public, no-cache";

/// Admin listings (drafts) and carts (one shopper's): kept by no cache, shared or not.
pub const PRIVATE_CACHE_CONTROL: &str = "private, no-store";

/// Who an answer is for, which sets its cache headers.
#[derive(Debug, Clone)]
pub enum Audience {
    /// Anyone: [`PUBLIC_CACHE_CONTROL`] and a `Cache-Tag` for a CDN that purges by tag.
    Public(CacheTags),
    /// One caller: [`PRIVATE_CACHE_CONTROL`] and no `Cache-Tag` (nothing to purge).
    Private,
}

/// Most bytes in a `Cache-Tag` header. API Gateway bounds a response's headers (10 KB for an
/// HTTP API) and CDNs bound this one (16 KB at Cloudflare and Fastly, 1 KB per tag); a page's
/// full list beyond this falls back to its coarser tags.
pub const MAX_CACHE_TAG_BYTES: usize = 4096;

/// What a response's `Cache-Tag` header lists: `tags` when they fit, else `fallback` (for
/// example a listing's store tag in place of its products' tags), else no header; a CDN
/// checks with the API before reusing the response all the same ([`PUBLIC_CACHE_CONTROL`]).
#[derive(Debug, Clone, Default)]
pub struct CacheTags {
    pub tags: TagSet,
    pub fallback: TagSet,
}

/// One tag as a header token: bytes outside `A-Z a-z 0-9 - . _ ~ :` are percent-encoded
/// (UTF-8), so an id with a comma, a quote or non-ASCII letters stays one tag.
fn header_token(tag: &str) -> String {
    let mut out = String::with_capacity(tag.len());
    for b in tag.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `Cache-Tag` value for `tags`, within [`MAX_CACHE_TAG_BYTES`], if any fits.
pub fn cache_tag(tags: &CacheTags) -> Option<String> {
    [&tags.tags, &tags.fallback]
        .into_iter()
        .filter(|set| !set.is_empty())
        .map(|set| {
            set.iter()
                .map(|t| header_token(t.as_str()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .find(|value| value.len() <= MAX_CACHE_TAG_BYTES)
}

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

/// A 200 with `value` as JSON, its ETag and the cache headers of `audience` (for the public,
/// the `Cache-Tag` of [`cache_tag`]); or a 304 with no body when `if_none_match` matches.
pub fn ok(
    value: &impl Serialize,
    audience: &Audience,
    if_none_match: Option<&str>,
) -> ApiGatewayV2httpResponse {
    let body = serde_json::to_string(value).expect("response bodies always serialize");
    let etag = etag(&body);
    let mut headers = HeaderMap::new();
    header(&mut headers, "etag", &etag);
    match audience {
        Audience::Public(tags) => {
            header(&mut headers, "cache-control", PUBLIC_CACHE_CONTROL);
            if let Some(value) = cache_tag(tags) {
                header(&mut headers, "cache-tag", &value);
            }
        }
        Audience::Private => header(&mut headers, "cache-control", PRIVATE_CACHE_CONTROL),
    }
    if if_none_match.is_some_and(|v| matches(v, &etag)) {
        return response(304, headers, None);
    }
    header(&mut headers, "content-type", "application/json");
    response(200, headers, Some(body))
}

/// The JSON error response for `error`; never cached.
pub fn error(error: &ApiError) -> ApiGatewayV2httpResponse {
    let mut response = http_reply::error(error.status, error.code, &error.message);
    if error.status == 503 {
        header(&mut response.headers, "retry-after", "1");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use catalog_core::ids::{ProductId, StoreId};
    use catalog_core::tags::Tag;

    #[test]
    fn if_none_match_takes_lists_weak_tags_and_star() {
        let tag = etag("{}");
        assert!(matches(&tag, &tag));
        assert!(matches(&format!("\"x\", W/{tag}"), &tag));
        assert!(matches("*", &tag));
        assert!(!matches("\"x\"", &tag));
    }

    #[test]
    fn private_answers_are_stored_by_no_cache_and_carry_no_tags() {
        let tags = TagSet::from([product("p1")]);
        let public = ok(
            &"x",
            &Audience::Public(CacheTags {
                tags,
                ..CacheTags::default()
            }),
            None,
        );
        assert_eq!(public.headers["cache-control"], "public, no-cache");
        assert_eq!(public.headers["cache-tag"], "product:p1");
        let private = ok(&"x", &Audience::Private, None);
        assert_eq!(private.headers["cache-control"], "private, no-store");
        assert!(private.headers.get("cache-tag").is_none());
    }

    #[test]
    fn a_matching_etag_gives_304_without_body() {
        let public = Audience::Public(CacheTags::default());
        let first = ok(&serde_json::json!({"a": 1}), &public, None);
        assert_eq!(first.status_code, 200);
        let tag = first.headers["etag"].to_str().unwrap().to_owned();
        let second = ok(&serde_json::json!({"a": 1}), &public, Some(&tag));
        assert_eq!(second.status_code, 304);
        assert!(second.body.is_none());
        assert_eq!(second.headers["etag"], first.headers["etag"]);
    }

    fn header_of(tags: TagSet, fallback: TagSet) -> Option<String> {
        let audience = Audience::Public(CacheTags { tags, fallback });
        let reply = ok(&serde_json::json!({}), &audience, None);
        let value = reply.headers.get("cache-tag")?;
        Some(value.to_str().expect("visible ASCII").to_owned())
    }

    fn product(id: &str) -> Tag {
        Tag::product(&ProductId::parse(id).unwrap())
    }

    #[test]
    fn a_non_ascii_id_is_encoded_not_dropped() {
        let header = header_of(TagSet::from([product("café,1")]), TagSet::new());
        assert_eq!(header.as_deref(), Some("product:caf%C3%A9%2C1"));
    }

    #[test]
    fn a_hundred_long_ids_fall_back_to_the_store_tag() {
        let tags: TagSet = (0..100)
            .flat_map(|i| {
                let id = ProductId::parse(format!("{i:03}{}", "x".repeat(125))).unwrap();
                [Tag::product(&id), Tag::inventory(&id)]
            })
            .collect();
        let store = TagSet::from([Tag::store_products(&StoreId::parse("s1").unwrap())]);
        let header = header_of(tags.clone(), store).unwrap();
        assert_eq!(header, "store:s1:products");
        assert_eq!(header_of(tags, TagSet::new()), None);
    }

    proptest::proptest! {
        #[test]
        fn any_tags_give_one_visible_ascii_header_within_budget(
            ids in proptest::collection::vec("[^\\s\\p{C}]{1,40}", 0..150),
        ) {
            let tags: TagSet = ids.iter().map(|id| product(id)).collect();
            if let Some(header) = header_of(tags.clone(), TagSet::new()) {
                proptest::prop_assert!(header.len() <= MAX_CACHE_TAG_BYTES);
                proptest::prop_assert_eq!(header.split(',').count(), tags.len());
            }
        }
    }
}
