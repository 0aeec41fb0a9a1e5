//! The path of an API Gateway (HTTP API, payload v2) request as its routes see it, for every
//! function behind the API: the raw path less a named stage's prefix, split into segments,
//! each percent-decoded. One decoder, so an id reads the same on every route.

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;

/// Whether API Gateway's `AWS_IAM` authorizer vouched for the caller (SigV4-signed, allowed by
/// an IAM policy). Admin routes check it themselves, so a route added to the API without the
/// authorizer, or an event that reaches a function another way, is not trusted.
pub fn iam_authorized(request: &ApiGatewayV2httpRequest) -> bool {
    let authorizer = request.request_context.authorizer.as_ref();
    authorizer.and_then(|a| a.iam.as_ref()).is_some()
}

/// A path segment with a broken `%XX` escape, or escapes that are not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the path has an invalid escape")]
pub struct InvalidEscape;

/// The path as routed: API Gateway's raw path less a named stage's prefix (`/prod/x` on
/// stage `prod` is `/x`; the `$default` stage has no prefix).
pub fn path_without_stage(request: &ApiGatewayV2httpRequest) -> String {
    let raw = request
        .raw_path
        .clone()
        .or_else(|| request.request_context.http.path.clone())
        .unwrap_or_default();
    match request.request_context.stage.as_deref() {
        Some(stage) if stage != "$default" => {
            let prefix = format!("/{stage}");
            match raw.strip_prefix(&prefix) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
                _ => raw,
            }
        }
        _ => raw,
    }
}

/// The raw (still escaped) segments of `path`, without leading or trailing slashes.
pub fn segments(path: &str) -> Vec<&str> {
    path.trim_matches('/').split('/').collect()
}

/// Decodes the `%XX` escapes of one path segment (`+` stays `+`: it means a space only in a
/// query string).
pub fn percent_decode(segment: &str) -> Result<String, InvalidEscape> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3).ok_or(InvalidEscape)?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(InvalidEscape);
            }
            out.push(u8::from_str_radix(hex, 16).map_err(|_| InvalidEscape)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| InvalidEscape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request(raw_path: &str, stage: &str) -> ApiGatewayV2httpRequest {
        let mut request = ApiGatewayV2httpRequest::default();
        request.raw_path = Some(raw_path.to_owned());
        request.request_context.stage = Some(stage.to_owned());
        request
    }

    #[test]
    fn a_named_stage_is_stripped_and_the_default_is_not() {
        assert_eq!(
            path_without_stage(&request("/prod/products/p1", "prod")),
            "/products/p1"
        );
        assert_eq!(path_without_stage(&request("/prod", "prod")), "");
        assert_eq!(
            path_without_stage(&request("/production/x", "prod")),
            "/production/x"
        );
        assert_eq!(
            path_without_stage(&request("/products/p1", "$default")),
            "/products/p1"
        );
    }

    #[test]
    fn escapes_decode_to_utf8_or_are_refused() {
        assert_eq!(percent_decode("caf%C3%A9").unwrap(), "café");
        assert_eq!(percent_decode("a%2Fb+c").unwrap(), "a/b+c");
        for bad in ["%", "%4", "%zz", "%+1", "%C3", "%FF"] {
            assert_eq!(percent_decode(bad), Err(InvalidEscape), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn encoding_any_text_then_decoding_gives_it_back(text in "\\PC{0,40}") {
            let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
            prop_assert_eq!(percent_decode(&encoded).unwrap(), text);
        }
    }
}
