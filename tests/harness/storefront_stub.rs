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
use tag_revalidator::signature::{verify, AudienceKey, Signed};

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

/// Random misbehaviour, for chaos runs: percentages of calls answered 5xx, 429 with
/// `Retry-After: 1`, or only after `hang` (longer than the caller's timeout).
#[derive(Debug, Clone)]
pub struct Chaos {
    pub server_errors: u64,
    pub too_many: u64,
    pub hangs: u64,
    pub hang: Duration,
    pub seed: u64,
}

/// A cached page whose last render failed: the next visit renders it afresh.
const EXPIRED: &str = "(expired)";

/// Next.js's page cache, emulated: each page is cached with its tags; a revalidation of any of
/// its tags refetches it from the listing API, as the next request after `revalidateTag`
/// would.
#[derive(Default)]
struct Pages {
    listing_api: String,
    /// path -> (tags, fetch sequence of the cached copy, cached body)
    cached: std::collections::BTreeMap<String, (Vec<String>, u64, String)>,
    next_fetch: u64,
    /// path -> when each body was cached, in order.
    history: std::collections::BTreeMap<String, Vec<(Instant, String)>>,
}

#[derive(Default)]
struct State {
    pages: Pages,
    chaos: Option<(Chaos, catalog_local::rng::Rng)>,
    down: bool,
    /// Faults injected, by kind.
    injected: std::collections::BTreeMap<&'static str, usize>,
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
    /// Starts a stub on a free loopback port that accepts calls signed with `secret`.
    pub async fn start(secret: &str) -> Result<Self> {
        Self::start_on("127.0.0.1", None, secret).await
    }

    /// Starts a stub that `sam local` containers call: listening on the Docker bridge's
    /// address, at the URL (and signing audience) `http://host.docker.internal:PORT/api/revalidate`.
    pub async fn start_for_containers(secret: &str) -> Result<Self> {
        let host = catalog_local::dev::sam_env::CONTAINER_HOST;
        let bridge = catalog_local::services::docker_bridge::address()?.to_string();
        Self::start_on(&bridge, Some(host), secret).await
    }

    async fn start_on(bind: &str, url_host: Option<&str>, secret: &str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind((bind, 0)).await?;
        let addr = listener.local_addr()?;
        let host = url_host.map_or_else(|| addr.ip().to_string(), str::to_owned);
        let url = format!("http://{host}:{}/api/revalidate", addr.port());
        let state = Arc::new(Mutex::new(State::default()));
        // Like a real storefront, the stub holds its own key, not the secret.
        let secret = Arc::new(AudienceKey::derive(secret.as_bytes(), &url));
        let audience: Arc<str> = url.clone().into();
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, secret, audience) = (shared.clone(), secret.clone(), audience.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let (state, secret, audience) =
                            (state.clone(), secret.clone(), audience.clone());
                        async move {
                            Ok::<_, Infallible>(answer(request, &state, &secret, &audience).await)
                        }
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

    /// Stops failing any tag, ends chaos and comes back up.
    pub fn heal(&self) {
        let mut state = self.state.lock().unwrap();
        state.failing.clear();
        state.chaos = None;
        state.down = false;
    }

    /// Misbehaves at random from now on (until [`StorefrontStub::heal`]).
    pub fn chaos(&self, chaos: Chaos) {
        let rng = catalog_local::rng::Rng::new(chaos.seed);
        self.state.lock().unwrap().chaos = Some((chaos, rng));
    }

    /// Answers every call 503 while down, as a storefront that is being redeployed.
    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Caches `pages` (path on the listing API, tags) now, and refreshes each when one of its
    /// tags is revalidated.
    pub async fn cache_pages(
        &self,
        listing_api: &str,
        pages: Vec<(String, Vec<String>)>,
    ) -> Result<()> {
        self.state.lock().unwrap().pages.listing_api = listing_api.to_owned();
        for (path, tags) in pages {
            let body = get(listing_api, &path).await?;
            self.state
                .lock()
                .unwrap()
                .pages
                .cached
                .insert(path, (tags, 0, body));
        }
        Ok(())
    }

    /// Cached pages that differ from what the listing API serves now (an expired page is
    /// rendered afresh on its next visit, so it is never stale).
    pub async fn stale_pages(&self) -> Result<Vec<String>> {
        let (base, pages): (String, Vec<(String, String)>) = {
            let state = self.state.lock().unwrap();
            let pages = state
                .pages
                .cached
                .iter()
                .map(|(path, (_, _, body))| (path.clone(), body.clone()))
                .collect();
            (state.pages.listing_api.clone(), pages)
        };
        let mut stale = Vec::new();
        for (path, body) in pages.into_iter().filter(|(_, body)| body != EXPIRED) {
            if get(&base, &path).await? != body {
                stale.push(path);
            }
        }
        Ok(stale)
    }

    /// How long each of `pages` (path -> when its content last changed) went on being served
    /// stale: from that change until the cache last took up the body the listing API serves
    /// now (an expired page counts as fresh: the next visit renders it). `None` for a page
    /// that is still stale.
    pub async fn staleness(
        &self,
        pages: &std::collections::BTreeMap<String, Instant>,
    ) -> Result<std::collections::BTreeMap<String, Option<Duration>>> {
        let base = self.state.lock().unwrap().pages.listing_api.clone();
        let mut found = std::collections::BTreeMap::new();
        for (path, changed) in pages {
            let now = get(&base, path).await?;
            let (cached, history) = {
                let state = self.state.lock().unwrap();
                let cached = state.pages.cached.get(path).map(|e| e.2.clone());
                let history = state.pages.history.get(path).cloned();
                (cached.unwrap_or_default(), history.unwrap_or_default())
            };
            let fresh = |body: &str| body == now || body == EXPIRED;
            let cached_fresh = fresh(&cached);
            let since = history
                .iter()
                .rev()
                .take_while(|(_, body)| fresh(body))
                .last()
                .map(|(at, _)| *at);
            let stale_for = match since {
                _ if !cached_fresh => None,
                Some(at) => Some(at.saturating_duration_since(*changed)),
                None => Some(Duration::ZERO),
            };
            found.insert(path.clone(), stale_for);
        }
        Ok(found)
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> std::collections::BTreeMap<&'static str, usize> {
        self.state.lock().unwrap().injected.clone()
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
    state: &Arc<Mutex<State>>,
    key: &AudienceKey,
    audience: &str,
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
        if !fresh
            || verify(
                std::slice::from_ref(key),
                audience,
                &signed,
                &body,
                chrono::Utc::now().timestamp(),
            )
            .is_err()
        {
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
        if state.down {
            *state.injected.entry("down (503)").or_default() += 1;
            return reply(503, None);
        }
        let chaotic = state.chaos.as_mut().and_then(|(chaos, rng)| {
            let roll = rng.below(100);
            if roll < chaos.server_errors {
                Some(("5xx", Reply::Status(500 + rng.below(4) as u16)))
            } else if roll < chaos.server_errors + chaos.too_many {
                Some(("429 Retry-After", Reply::RetryAfter(1)))
            } else if roll < chaos.server_errors + chaos.too_many + chaos.hangs {
                Some(("timeout", Reply::Hang(chaos.hang)))
            } else {
                None
            }
        });
        if let Some((kind, _)) = &chaotic {
            *state.injected.entry(kind).or_default() += 1;
        }
        let next = match chaotic {
            Some((_, reply)) => reply,
            None => state.script.pop_front().unwrap_or(Reply::Ok),
        };
        if next == Reply::Ok {
            state.received.push(Received {
                tags: tags.clone(),
                at: Instant::now(),
            });
        }
        (next, tags)
    };
    match next {
        (Reply::Ok, tags) => {
            tokio::spawn(refresh(state.clone(), tags));
            reply(200, None)
        }
        (Reply::Status(status), _) => reply(status, None),
        (Reply::RetryAfter(after), _) => reply(429, Some(after)),
        (Reply::Hang(duration), tags) => {
            tokio::time::sleep(duration).await;
            state.lock().unwrap().received.push(Received {
                tags: tags.clone(),
                at: Instant::now(),
            });
            tokio::spawn(refresh(state.clone(), tags));
            reply(200, None)
        }
    }
}

/// Refetches every cached page carrying one of `tags`; a slower, older fetch never overwrites
/// a newer one.
async fn refresh(state: Arc<Mutex<State>>, tags: Vec<String>) {
    let (base, due): (String, Vec<(String, u64)>) = {
        let mut state = state.lock().unwrap();
        let paths: Vec<String> = state
            .pages
            .cached
            .iter()
            .filter(|(_, (page_tags, _, _))| page_tags.iter().any(|t| tags.contains(t)))
            .map(|(path, _)| path.clone())
            .collect();
        let mut due = Vec::new();
        for path in paths {
            state.pages.next_fetch += 1;
            due.push((path, state.pages.next_fetch));
        }
        (state.pages.listing_api.clone(), due)
    };
    for (path, sequence) in due {
        // A render that fails (the listing API answering 5xx, say while DynamoDB throttles it)
        // caches nothing: the page stays expired and the next visit renders it afresh, as
        // Next.js does after `revalidateTag(tag, { expire: 0 })`.
        let body = match get(&base, &path).await {
            Ok(body) if body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.1 404") => {
                body
            }
            _ => {
                *state
                    .lock()
                    .unwrap()
                    .injected
                    .entry("page render failed (listing API)")
                    .or_default() += 1;
                EXPIRED.to_owned()
            }
        };
        let mut state = state.lock().unwrap();
        let pages = &mut state.pages;
        if let Some(entry) = pages.cached.get_mut(&path) {
            if entry.1 < sequence {
                entry.1 = sequence;
                entry.2 = body.clone();
                let history = pages.history.entry(path).or_default();
                history.push((Instant::now(), body));
            }
        }
    }
}

/// A plain HTTP/1.1 GET on the listing API: the status line, a newline, and the body.
pub async fn get(base: &str, path: &str) -> Result<String> {
    let (head, body) = response(base, path).await?;
    let status = head.lines().next().unwrap_or_default();
    Ok(format!("{status}\n{body}"))
}

/// A GET of `path` from `base`: the response's status line and headers, and its body.
pub async fn response(base: &str, path: &str) -> Result<(String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((head.to_owned(), body.to_owned()))
}
