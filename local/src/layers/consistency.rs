//! AWS's weaker consistency, emulated. DynamoDB Local updates indexes synchronously and never
//! serves a stale read; DynamoDB does both: a global secondary index is updated asynchronously
//! (usually within a second, longer under load) and an eventually consistent read may come
//! from a replica that has not seen the latest write. Lambda also runs invocations at once, so
//! one refresh's read-to-write window overlaps another's.
//!
//! [`ConsistencyProxy`] sits between the functions and DynamoDB Local (an HTTP proxy of
//! DynamoDB's JSON protocol) and makes the Summaries table that weak:
//! - a **lagging replica**: a second table of the same definition, its listing indexes included.
//!   After every successful write to Summaries, the item gets copied to the replica a random
//!   delay later (between `lag / 2` and `lag`; in order per item). The copy is taken when
//!   due, so an item written again meanwhile arrives sooner than its own lag, never later;
//! - **reads that may be stale**: every Query of an index, and every GetItem, BatchGetItem,
//!   Query or Scan of Summaries without `ConsistentRead`, is answered from the replica;
//! - **held writes**: every PutItem and UpdateItem of Summaries (the refresh's conditional
//!   writes) waits a random delay (up to `hold`) before it goes on.
//!
//! Not modelled: lag on Products and Inventory (the functions read them consistently), a
//! replica that serves an item newer than another replica did (there is one replica), lag on
//! the stream itself, and throttling (see [`crate::layers::faults`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::rng::Rng;
use crate::shutdown::Shutdown;

/// How weak to make DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsConsistency {
    /// The longest the replica (and so the index) lags a write; each write's lag is drawn
    /// between half of this and all of it.
    pub lag: Duration,
    /// The longest a conditional write to Summaries is held.
    pub hold: Duration,
    pub seed: u64,
}

/// One copy of an item to the replica: when, and the `updatedAt` it held (`None`: a
/// tombstone, or the item was gone).
pub type ReplicaCopy = (std::time::Instant, Option<String>);

/// What the proxy did, for the figures a run prints.
#[derive(Debug, Default)]
pub struct ConsistencyStats {
    /// Reads answered from the lagging replica.
    pub lagging_reads: AtomicU64,
    /// Writes to Summaries held back.
    pub held_writes: AtomicU64,
    /// Writes applied to the replica.
    pub replicated: AtomicU64,
    /// When the replica (and so every listing index) took a copy of each product, and the
    /// copy's `updatedAt`, in order: when a summary write became visible to listing reads,
    /// which a test measures staleness from.
    pub copied_at: Mutex<HashMap<String, Vec<ReplicaCopy>>>,
}

/// A running proxy. Point the functions' DynamoDB client at `endpoint`.
pub struct ConsistencyProxy {
    pub endpoint: String,
    pub stats: Arc<ConsistencyStats>,
}

/// Replica writes due: (when, order of scheduling, product id), earliest first; and the last
/// due time per item, so that none overtakes another of the same item.
#[derive(Default)]
struct Schedule {
    due: BinaryHeap<Reverse<(Instant, u64, String)>>,
    last: HashMap<String, Instant>,
}

struct Shared {
    upstream: String,
    summaries: String,
    replica: String,
    settings: AwsConsistency,
    http: HttpClient<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    dynamodb: aws_sdk_dynamodb::Client,
    rng: Mutex<Rng>,
    schedule: Mutex<Schedule>,
    wake: tokio::sync::Notify,
    next_seq: AtomicU64,
    stats: Arc<ConsistencyStats>,
}

impl ConsistencyProxy {
    /// Starts the proxy in front of `upstream` (DynamoDB Local), for the Summaries table named
    /// `summaries`, with its replica `replica` (already created), until `shutdown`.
    pub async fn start(
        upstream: &str,
        dynamodb: aws_sdk_dynamodb::Client,
        summaries: &str,
        replica: &str,
        settings: AwsConsistency,
        shutdown: Shutdown,
    ) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let stats = Arc::new(ConsistencyStats::default());
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            summaries: summaries.to_owned(),
            replica: replica.to_owned(),
            settings,
            http: HttpClient::builder(TokioExecutor::new()).build_http(),
            dynamodb,
            rng: Mutex::new(Rng::new(settings.seed)),
            schedule: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            next_seq: AtomicU64::new(0),
            stats: stats.clone(),
        });
        tokio::spawn(replicate(shared.clone(), shutdown.clone()));
        tokio::spawn(serve(listener, shared, shutdown));
        Ok(Self { endpoint, stats })
    }
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut shutdown: Shutdown) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
            _ = shutdown.stopped() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(shared.handle(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A DynamoDB-shaped error answer, for when the proxy itself fails.
fn error(message: String) -> Response<Full<Bytes>> {
    let body = serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
        "message": message,
    });
    Response::builder()
        .status(500)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

impl Shared {
    async fn handle(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        match self.relay(request).await {
            Ok(response) => response,
            Err(e) => error(format!("consistency proxy: {e:#}")),
        }
    }

    async fn relay(&self, request: Request<Incoming>) -> Result<Response<Full<Bytes>>> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await?.to_bytes();
        let operation = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.strip_prefix("DynamoDB_20120810."))
            .unwrap_or_default()
            .to_owned();
        let mut json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let on_summaries = json["TableName"].as_str() == Some(self.summaries.as_str());
        let lagging = self.route_read(&operation, &mut json);
        let write = on_summaries && matches!(operation.as_str(), "PutItem" | "UpdateItem");
        if write && !self.settings.hold.is_zero() {
            self.stats.held_writes.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(self.random_up_to(self.settings.hold)).await;
        }
        let body = if lagging {
            self.stats.lagging_reads.fetch_add(1, Ordering::Relaxed);
            Bytes::from(json.to_string())
        } else {
            body
        };
        let mut upstream = Request::builder().method(parts.method).uri(format!(
            "{}{}",
            self.upstream,
            parts.uri.path()
        ));
        for (name, value) in &parts.headers {
            if name != "host" && name != "content-length" {
                upstream = upstream.header(name, value);
            }
        }
        let response = self.http.request(upstream.body(Full::new(body))?).await?;
        let (parts, body) = response.into_parts();
        let mut body = body.collect().await?.to_bytes();
        if parts.status.is_success() {
            if on_summaries && matches!(operation.as_str(), "PutItem" | "UpdateItem" | "DeleteItem")
            {
                self.schedule(json["Key"].clone(), json["Item"]["productId"].clone());
            }
            if lagging && operation == "BatchGetItem" {
                body = self.rename_back(&body)?;
            }
        }
        let mut reply = Response::builder().status(parts.status);
        for (name, value) in &parts.headers {
            if name != "content-length" {
                reply = reply.header(name, value);
            }
        }
        Ok(reply.body(Full::new(body))?)
    }

    /// Points an eventually consistent read of Summaries (or any index Query) at the replica;
    /// `true` when it did.
    fn route_read(&self, operation: &str, json: &mut Value) -> bool {
        let consistent = json["ConsistentRead"].as_bool().unwrap_or(false);
        match operation {
            "GetItem" | "Query" | "Scan" => {
                let index = json.get("IndexName").is_some();
                let ours = json["TableName"].as_str() == Some(self.summaries.as_str());
                if ours && (index || !consistent) {
                    json["TableName"] = Value::String(self.replica.clone());
                    return true;
                }
                false
            }
            "BatchGetItem" => {
                let Some(items) = json["RequestItems"].as_object_mut() else {
                    return false;
                };
                let eventual = items
                    .get(&self.summaries)
                    .is_some_and(|r| !r["ConsistentRead"].as_bool().unwrap_or(false));
                if eventual {
                    let request = items.remove(&self.summaries).expect("just seen");
                    items.insert(self.replica.clone(), request);
                }
                eventual
            }
            _ => false,
        }
    }

    /// A BatchGetItem answer from the replica, with the table named as the caller asked.
    fn rename_back(&self, body: &Bytes) -> Result<Bytes> {
        let mut json: Value = serde_json::from_slice(body)?;
        for field in ["Responses", "UnprocessedKeys"] {
            if let Some(map) = json[field].as_object_mut() {
                if let Some(v) = map.remove(&self.replica) {
                    map.insert(self.summaries.clone(), v);
                }
            }
        }
        Ok(Bytes::from(json.to_string()))
    }

    fn random_up_to(&self, max: Duration) -> Duration {
        let ms = max.as_millis() as u64;
        let drawn = self.rng.lock().expect("not poisoned").below(ms.max(1) + 1);
        Duration::from_millis(drawn.min(ms))
    }

    /// Queues the item a write touched for the replica, `lag` (random) from now, after any
    /// write of the same item already queued.
    fn schedule(&self, key: Value, put_id: Value) {
        let id = key["productId"]["S"]
            .as_str()
            .or_else(|| put_id["S"].as_str())
            .map(str::to_owned);
        let Some(id) = id else { return };
        let lag = self.settings.lag / 2 + self.random_up_to(self.settings.lag / 2);
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut schedule = self.schedule.lock().expect("not poisoned");
        let mut at = Instant::now() + lag;
        if let Some(previous) = schedule.last.get(&id) {
            at = at.max(*previous + Duration::from_millis(1));
        }
        schedule.last.insert(id.clone(), at);
        schedule.due.push(Reverse((at, seq, id)));
        drop(schedule);
        self.wake.notify_one();
    }

    /// Copies `id` as it is now in Summaries to the replica. The copy is taken when due, which
    /// can only make the replica fresher than the lag drawn, never staler.
    async fn apply(&self, id: &str) -> Result<()> {
        let key = HashMap::from([("productId".to_owned(), AttributeValue::S(id.to_owned()))]);
        let item = self
            .dynamodb
            .get_item()
            .table_name(&self.summaries)
            .set_key(Some(key.clone()))
            .consistent_read(true)
            .send()
            .await?
            .item;
        let updated_at = item
            .as_ref()
            .and_then(|i| i.get("updatedAt"))
            .and_then(|v| v.as_s().ok())
            .cloned();
        match item {
            Some(item) => {
                self.dynamodb
                    .put_item()
                    .table_name(&self.replica)
                    .set_item(Some(item))
                    .send()
                    .await?;
            }
            None => {
                self.dynamodb
                    .delete_item()
                    .table_name(&self.replica)
                    .set_key(Some(key))
                    .send()
                    .await?;
            }
        }
        self.stats.replicated.fetch_add(1, Ordering::Relaxed);
        let mut copied = self.stats.copied_at.lock().expect("not poisoned");
        let copy = (std::time::Instant::now(), updated_at);
        copied.entry(id.to_owned()).or_default().push(copy);
        Ok(())
    }
}

/// Applies due replica writes as they fall due, until `shutdown`: many at once (the replica
/// must keep up with the writes, or its lag would grow past the one drawn), one at a time per
/// item (each copies the item as it is when it runs, so the last to run must start last).
async fn replicate(shared: Arc<Shared>, mut shutdown: Shutdown) {
    let in_flight = Arc::new(tokio::sync::Semaphore::new(16));
    let per_item: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = Arc::default();
    loop {
        let next = {
            let schedule = shared.schedule.lock().expect("not poisoned");
            schedule.due.peek().map(|Reverse((at, _, _))| *at)
        };
        let wait = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = wait => {}
            _ = shared.wake.notified() => continue,
            _ = shutdown.stopped() => return,
        }
        let due = {
            let mut schedule = shared.schedule.lock().expect("not poisoned");
            match schedule.due.peek() {
                Some(Reverse((at, _, _))) if *at <= Instant::now() => schedule.due.pop(),
                _ => None,
            }
        };
        let Some(Reverse((_, _, id))) = due else {
            continue;
        };
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let item_lock = per_item
            .lock()
            .expect("not poisoned")
            .entry(id.clone())
            .or_default()
            .clone();
        // Taken in due order, before the next one is popped: no later copy of this item can
        // start before this one.
        let guard = item_lock.lock_owned().await;
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = shared.apply(&id).await {
                tracing::warn!(error = %e, product_id = %id, "replica write failed; retrying");
                shared.schedule(serde_json::json!({"productId": {"S": id}}), Value::Null);
            }
            drop((guard, permit));
        });
    }
}

/// The replica's name for a Summaries table.
pub fn replica_name(summaries: &str) -> String {
    format!("{summaries}-replica")
}

impl ConsistencyStats {
    /// The first time the replica held `id`'s summary as written at `updated_at`: from then
    /// on, listing reads show that write. `None` if it has not yet.
    pub fn shown_since(&self, id: &str, updated_at: &str) -> Option<std::time::Instant> {
        let copied = self.copied_at.lock().expect("not poisoned");
        let copies = copied.get(id)?;
        copies
            .iter()
            .find(|(_, copy)| copy.as_deref() == Some(updated_at))
            .map(|(at, _)| *at)
    }

    /// (reads answered from the replica, writes held, replica writes applied).
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.lagging_reads.load(Ordering::Relaxed),
            self.held_writes.load(Ordering::Relaxed),
            self.replicated.load(Ordering::Relaxed),
        )
    }
}
