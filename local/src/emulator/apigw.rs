//! API Gateway HTTP API (payload format 2.0) requests, as API Gateway builds them, so a local
//! HTTP server or a test hands listing-api exactly what AWS would.

use serde_json::{json, Map, Value};

/// The event API Gateway sends for `method path?query` with `headers` and `body`.
pub fn http_request(
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Value {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut params: Map<String, Value> = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode_component(v);
        // API Gateway joins repeated parameters with commas.
        match params.get_mut(k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                params.insert(k.to_owned(), Value::String(v));
            }
        }
    }
    let headers: Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), Value::String((*v).to_owned())))
        .collect();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "catalog-local"},
            "requestId": "local",
            "routeKey": "$default",
            "stage": "$default",
            "time": "26/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0
        },
        "isBase64Encoded": false
    });
    if !params.is_empty() {
        event["queryStringParameters"] = Value::Object(params);
    }
    if let Some(body) = body {
        event["body"] = Value::String(body.to_owned());
    }
    event
}

/// Marks `event` as API Gateway marks a request its `AWS_IAM` authorizer let through: the
/// caller's identity under `requestContext.authorizer.iam`. Locally the caller is whoever can
/// reach the loopback port, shown as a local developer.
pub fn authorize_iam(event: &mut Value) {
    event["requestContext"]["authorizer"] = json!({
        "iam": {
            "accessKey": "ASIALOCALDEVELOPER00",
            "accountId": "000000000000",
            "callerId": "AIDALOCALDEVELOPER00",
            "userArn": "arn:aws:iam::000000000000:user/local-developer",
            "userId": "AIDALOCALDEVELOPER00"
        }
    });
}

/// Decodes `+` and `%XX` in a query component, as API Gateway does.
fn decode_component(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match v
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
