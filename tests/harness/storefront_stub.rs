//! A stand-in for a storefront's revalidate route, for the revalidator's tests: it checks
//! each call's signature as the real route does (tag_revalidator::signature::verify, plus a
//! nonce memory), records the tags it accepted, and misbehaves on request.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tag_revalidator::signature::{verify, Signed};

/// How the stub answers one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200, tags revalidated.
    Ok,
    /// This status with no revalidation.
    Status(u16),
    /// 429 with `Retry-After: n`.
    RetryAfter(u64),
    /// Answers 200 only after this long (the caller's timeout should fire first).
    Hang(Duration),
}

/// One accepted call.
#[derive(Debug, Clone)]
pub struct Received {
    pub tags: Vec<String>,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    /// Calls carrying any of these tags get 500.
    failing: HashSet<String>,
    received: Vec<Received>,
    requests: usize,
    nonces: HashSet<String>,
    refused: usize,
}

/// The running stub; it stops with the test's runtime.
#[derive(Clone)]
pub struct StorefrontStub {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl StorefrontStub {
    /// Starts a stub on a free port that accepts calls signed with `secret`.
    pub async fn start(secret: &str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/api/revalidate", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State::default()));
        let secret = Arc::new(secret.as_bytes().to_vec());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, secret) = (shared.clone(), secret.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (state, secret) = (state.clone(), secret.clone());
                        async move { Ok::<_, Infallible>(answer(request, &state, &secret).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { url, state })
    }

    /// Answers the next calls with `replies`, in order (then 200).
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Fails (500) every call that carries `tag`, until [`StorefrontStub::heal`].
    pub fn fail_tag(&self, tag: &str) {
        self.state.lock().unwrap().failing.insert(tag.to_owned());
    }

    /// Stops failing any tag.
    pub fn heal(&self) {
        self.state.lock().unwrap().failing.clear();
    }

    /// The calls accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Every tag accepted so far, in order, repeats included.
    pub fn tags(&self) -> Vec<String> {
        self.received().into_iter().flat_map(|r| r.tags).collect()
    }

    /// Requests that reached the stub, whatever their answer.
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    /// Calls refused for their signature, timestamp or nonce.
    pub fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }
}

fn reply(status: u16, retry_after: Option<u64>) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(status);
    if let Some(after) = retry_after {
        builder = builder.header("retry-after", after.to_string());
    }
    builder
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("a valid response")
}

async fn answer(
    request: Request<Incoming>,
    state: &Mutex<State>,
    secret: &[u8],
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let signed = Signed {
        timestamp: header("x-catalog-timestamp")
            .and_then(|t| t.parse().ok())
            .unwrap_or_default(),
        nonce: header("x-catalog-nonce").unwrap_or_default(),
        signature: header("x-catalog-signature").unwrap_or_default(),
    };
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let next = {
        let mut state = state.lock().unwrap();
        state.requests += 1;
        let fresh = state.nonces.insert(signed.nonce.clone());
        if !fresh || verify(secret, &signed, &body, chrono::Utc::now().timestamp()).is_err() {
            state.refused += 1;
            return reply(401, None);
        }
        let tags: Vec<String> = match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) => v["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
            Err(_) => return reply(400, None),
        };
        if tags.iter().any(|t| state.failing.contains(t)) {
            return reply(500, None);
        }
        let next = state.script.pop_front().unwrap_or(Reply::Ok);
        if next == Reply::Ok {
            state.received.push(Received {
                tags: tags.clone(),
                at: Instant::now(),
            });
        }
        (next, tags)
    };
    match next {
        (Reply::Ok, _) => reply(200, None),
        (Reply::Status(status), _) => reply(status, None),
        (Reply::RetryAfter(after), _) => reply(429, Some(after)),
        (Reply::Hang(duration), tags) => {
            tokio::time::sleep(duration).await;
            state.lock().unwrap().received.push(Received {
                tags,
                at: Instant::now(),
            });
            reply(200, None)
        }
    }
}
