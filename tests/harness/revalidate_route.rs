//! Calls to a storefront's revalidate route as the tag-revalidator makes them (signed) or as
//! anyone on the internet can (raw, signed or not).

use anyhow::{Context, Result};
use tag_revalidator::signature::{sign, AudienceKey};

/// A raw POST to the storefront's revalidate route, signed or not as the caller made it.
pub async fn post(url: &str, headers: &[(&str, String)], body: &str) -> Result<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').context("url")?;
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let mut request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    Ok(status)
}

/// The headers of a call signed for `audience` with its key under `secret`, as the
/// tag-revalidator signs.
pub fn signed_headers(
    secret: &str,
    audience: &str,
    timestamp: i64,
    nonce: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let key = AudienceKey::derive(secret.as_bytes(), audience);
    signed_with_key(&key, audience, timestamp, nonce, body)
}

/// The headers of a call to `audience` signed with `key`, whichever audience it belongs to.
pub fn signed_with_key(
    key: &AudienceKey,
    audience: &str,
    timestamp: i64,
    nonce: &str,
    body: &str,
) -> Vec<(&'static str, String)> {
    let signed = sign(key, audience, timestamp, nonce, body.as_bytes());
    vec![
        ("x-catalog-timestamp", signed.timestamp.to_string()),
        ("x-catalog-nonce", signed.nonce),
        ("x-catalog-signature", signed.signature),
    ]
}
