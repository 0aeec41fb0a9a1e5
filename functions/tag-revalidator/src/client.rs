//! Signed revalidate calls over HTTP(S), each with a timeout, and what their answers mean.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::secret::{RotatingSecret, SecretReader};
use crate::signature;

/// How a call to a target went, whichever way it reaches the storefront (its revalidate
/// route over HTTP, or its log in the tag table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: the tags were revalidated.
    Done,
    /// 5xx, 429, a timeout or a connection error: worth retrying, after `after` if the
    /// endpoint said (`Retry-After`).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// Any other 4xx: the endpoint refuses the call (bad secret, wrong URL); retrying will not
    /// help until someone fixes the configuration.
    Refused { status: u16, reason: String },
    /// The call could not be made as configured (an endpoint that is no URL, a tag table
    /// missing or not writable by the role): retried and counted like a refusal.
    Misconfigured { reason: String },
}

/// Makes revalidate calls.
#[derive(Clone)]
pub struct RevalidateClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    secret: std::sync::Arc<RotatingSecret>,
    timeout: Duration,
}

impl std::fmt::Debug for RevalidateClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("RevalidateClient")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A nonce unique to this process's calls: the start time, the process id and a counter, in
/// hex joined by `-` (within [`signature::valid_nonce`]).
fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    let start = START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    });
    format!(
        "{start:x}-{:x}-{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `Retry-After` as seconds (the HTTP-date form is read as "later", without a time).
fn retry_after(value: Option<&hyper::header::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    Some(Duration::from_secs(text.parse::<u64>().ok().unwrap_or(60)))
}

/// Why a client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    SecretTooShort(#[from] signature::SecretTooShort),
    #[error("loading the TLS root certificates: {0}")]
    Tls(#[from] std::io::Error),
}

impl RevalidateClient {
    /// A client signing with keys derived from `secret` (at least 32 bytes), giving each call
    /// `timeout`.
    pub fn new(secret: &[u8], timeout: Duration) -> Result<Self, ClientError> {
        let secret = RotatingSecret::fixed(secret)?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)?
            .https_or_http()
            .enable_http1()
            .build();
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Ok(Self {
            http,
            secret: std::sync::Arc::new(secret),
            timeout,
        })
    }

    /// The same client, reading the secret again through `reader` when a storefront refuses
    /// a signature ([`Self::revalidate_or_reread`]).
    pub fn reading_secret_with(self, reader: SecretReader) -> Self {
        Self {
            secret: std::sync::Arc::new(self.secret.reading_with(reader)),
            ..self
        }
    }

    /// [`Self::revalidate`], repeated once with the secret's new value when the endpoint
    /// answered 401 and the secret turns out to have been rotated.
    pub async fn revalidate_or_reread(
        &self,
        endpoint: &str,
        tags: &[catalog_core::tags::Tag],
    ) -> Answer {
        let (generation, secret) = self.secret.current();
        match self.revalidate_with(&secret, endpoint, tags).await {
            Answer::Refused { status: 401, .. } if self.secret.read_again(generation).await => {
                self.revalidate(endpoint, tags).await
            }
            answer => answer,
        }
    }

    /// POSTs `{"tags": [...]}` to `endpoint`, signed for `endpoint` as its audience.
    pub async fn revalidate(&self, endpoint: &str, tags: &[catalog_core::tags::Tag]) -> Answer {
        self.revalidate_with(&self.secret.current().1, endpoint, tags)
            .await
    }

    /// [`Self::revalidate`] signed under `secret`: the value whose generation the caller read,
    /// so that a refusal is blamed on the value that was actually used.
    async fn revalidate_with(
        &self,
        secret: &[u8],
        endpoint: &str,
        tags: &[catalog_core::tags::Tag],
    ) -> Answer {
        let tags: Vec<&str> = tags.iter().map(|t| t.as_str()).collect();
        let body = serde_json::json!({ "tags": tags }).to_string();
        let key = signature::AudienceKey::derive(secret, endpoint);
        let signed = signature::sign(
            &key,
            endpoint,
            chrono::Utc::now().timestamp(),
            &nonce(),
            body.as_bytes(),
        );
        let request = match Request::post(endpoint)
            .header("content-type", "application/json")
            .header("x-catalog-timestamp", signed.timestamp.to_string())
            .header("x-catalog-nonce", &signed.nonce)
            .header("x-catalog-signature", &signed.signature)
            .body(Full::new(Bytes::from(body)))
        {
            Ok(r) => r,
            Err(e) => {
                return Answer::Misconfigured {
                    reason: format!("bad endpoint URL: {e}"),
                }
            }
        };
        let call = async {
            let response = self.http.request(request).await?;
            let status = response.status();
            let after = retry_after(response.headers().get(hyper::header::RETRY_AFTER));
            // The body is read (and capped) only to name the reason in the log.
            let body = response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            Ok::<_, hyper_util::client::legacy::Error>((status, after, text))
        };
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Answer::Retry {
                reason: format!("no answer within {:?}", self.timeout),
                after: None,
            },
            Ok(Err(e)) => Answer::Retry {
                reason: format!("connection failed: {e}"),
                after: None,
            },
            Ok(Ok((status, after, text))) => classify(status, after, text),
        }
    }
}

fn classify(status: StatusCode, after: Option<Duration>, text: String) -> Answer {
    if status.is_success() {
        Answer::Done
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Answer::Retry {
            reason: format!("{status}: {text}"),
            after,
        }
    } else {
        Answer::Refused {
            status: status.as_u16(),
            reason: format!("{status}: {text}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_mean_what_the_issue_says() {
        assert_eq!(classify(StatusCode::OK, None, String::new()), Answer::Done);
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(3)), String::new()),
            Answer::Retry { after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None, String::new()),
            Answer::Retry { .. }
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, None, String::new()),
            Answer::Refused { status: 401, .. }
        ));
        let header = hyper::header::HeaderValue::from_static("7");
        assert_eq!(retry_after(Some(&header)), Some(Duration::from_secs(7)));
        let date = hyper::header::HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT");
        assert_eq!(retry_after(Some(&date)), Some(Duration::from_secs(60)));
    }

    #[test]
    fn nonces_do_not_repeat() {
        let a: std::collections::HashSet<String> = (0..1000).map(|_| nonce()).collect();
        assert_eq!(a.len(), 1000);
        assert!(a.iter().all(|n| signature::valid_nonce(n)), "{a:?}");
    }
}
