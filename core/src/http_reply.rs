//! The JSON error reply both HTTP functions give (the listing API and the reconciler's admin
//! route): `{"error": {"code", "message"}}`, never cached. docs/openapi.yaml documents it.

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue};

/// A response with a JSON `body` that no cache may keep.
pub fn uncached_json(status: u16, body: &serde_json::Value) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(body.to_string()));
    response
}

/// The error reply: `code` for programs, `message` for people.
pub fn error(status: u16, code: &str, message: &str) -> ApiGatewayV2httpResponse {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    uncached_json(status, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_uncached_json_with_a_code_and_a_message() {
        let reply = error(404, "not_found", "no product p1");
        assert_eq!(reply.status_code, 404);
        assert_eq!(reply.headers["cache-control"], "no-store");
        assert_eq!(reply.headers["content-type"], "application/json");
        let Some(Body::Text(body)) = reply.body else {
            panic!("no text body")
        };
        assert_eq!(
            body,
            r#"{"error":{"code":"not_found","message":"no product p1"}}"#
        );
    }
}
