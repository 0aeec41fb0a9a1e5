//! Fault injection for chaos runs: DynamoDB calls that fail with throttling, a set share of the
//! time, before they reach DynamoDB (as real throttling does: the request is not applied).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;

use crate::rng::Rng;

/// How often to throttle, and how often it happened.
#[derive(Debug)]
pub struct Throttling {
    percent: u64,
    rng: Mutex<Rng>,
    on: AtomicBool,
    /// Calls answered with a ThrottlingException.
    pub injected: AtomicU64,
}

impl Throttling {
    /// Throttles `percent`% of calls (seeded) while on.
    pub fn new(percent: u64, seed: u64) -> Arc<Self> {
        Arc::new(Self {
            percent,
            rng: Mutex::new(Rng::new(seed)),
            on: AtomicBool::new(true),
            injected: AtomicU64::new(0),
        })
    }

    /// Stops (or resumes) throttling.
    pub fn set_on(&self, on: bool) {
        self.on.store(on, Ordering::SeqCst);
    }

    fn fire(&self) -> bool {
        if !self.on.load(Ordering::SeqCst) {
            return false;
        }
        let fire = self.rng.lock().expect("not poisoned").chance(self.percent);
        if fire {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        fire
    }

    /// `inner`, throttled by `self`.
    pub fn wrap(self: &Arc<Self>, inner: SharedHttpClient) -> SharedHttpClient {
        SharedHttpClient::new(ThrottledClient {
            inner,
            throttling: self.clone(),
        })
    }
}

#[derive(Debug)]
struct ThrottledClient {
    inner: SharedHttpClient,
    throttling: Arc<Throttling>,
}

impl HttpClient for ThrottledClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(ThrottledConnector {
            inner: self.inner.http_connector(settings, components),
            throttling: self.throttling.clone(),
        })
    }
}

#[derive(Debug)]
struct ThrottledConnector {
    inner: SharedHttpConnector,
    throttling: Arc<Throttling>,
}

/// DynamoDB's answer to a throttled call.
fn throttled() -> HttpResponse {
    let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput (injected)."}"#;
    let mut response =
        HttpResponse::new(400.try_into().expect("a valid status"), SdkBody::from(body));
    response
        .headers_mut()
        .insert("content-type", "application/x-amz-json-1.0");
    response
}

impl HttpConnector for ThrottledConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if self.throttling.fire() {
            return HttpConnectorFuture::ready(Ok(throttled()));
        }
        self.inner.call(request)
    }
}

/// Holds back the first DynamoDB call of one operation (`PutItem`, say) until released, so a
/// test can place another invocation's whole refresh inside one refresh's read-to-write window.
#[derive(Debug, Default)]
pub struct Gate {
    operation: String,
    armed: AtomicBool,
    held: tokio::sync::Notify,
    released: tokio::sync::Notify,
}

impl Gate {
    /// A gate for the next call of `operation` (DynamoDB's name, e.g. `PutItem`).
    pub fn new(operation: &str) -> Arc<Self> {
        Arc::new(Self {
            operation: format!("DynamoDB_20120810.{operation}"),
            armed: AtomicBool::new(true),
            ..Self::default()
        })
    }

    /// Waits until a call is being held.
    pub async fn held(&self) {
        self.held.notified().await;
    }

    /// Lets the held call (or the next one, if none is held yet) through.
    pub fn release(&self) {
        self.released.notify_one();
    }

    /// `inner`, with this gate in front of it.
    pub fn wrap(self: &Arc<Self>, inner: SharedHttpClient) -> SharedHttpClient {
        SharedHttpClient::new(GatedClient {
            inner,
            gate: self.clone(),
        })
    }

    fn catches(&self, request: &HttpRequest) -> bool {
        request.headers().get("x-amz-target") == Some(self.operation.as_str())
            && self.armed.swap(false, Ordering::SeqCst)
    }
}

#[derive(Debug)]
struct GatedClient {
    inner: SharedHttpClient,
    gate: Arc<Gate>,
}

impl HttpClient for GatedClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(GatedConnector {
            inner: self.inner.http_connector(settings, components),
            gate: self.gate.clone(),
        })
    }
}

#[derive(Debug)]
struct GatedConnector {
    inner: SharedHttpConnector,
    gate: Arc<Gate>,
}

impl HttpConnector for GatedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if !self.gate.catches(&request) {
            return self.inner.call(request);
        }
        let (inner, gate) = (self.inner.clone(), self.gate.clone());
        HttpConnectorFuture::new(async move {
            gate.held.notify_one();
            gate.released.notified().await;
            inner.call(request).await
        })
    }
}
