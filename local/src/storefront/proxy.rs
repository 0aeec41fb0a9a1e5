//! A round-robin HTTP proxy in front of several storefront instances, as a load balancer sits
//! in front of them on ECS or Kubernetes: each request goes to the next instance, and one that
//! refuses the connection (stopped, restarting) is skipped. The response names the instance
//! that answered in `x-storefront-instance` (its port), for the tests.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;

const MAX_BODY: usize = 10 * 1024 * 1024;

struct Upstreams {
    ports: Vec<u16>,
    next: AtomicUsize,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// Binds a free loopback port and proxies to `ports` until `shutdown`; returns the proxy's URL
/// and its task.
pub async fn start(
    ports: Vec<u16>,
    shutdown: Shutdown,
) -> Result<(String, impl std::future::Future<Output = Result<()>>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let upstreams = Arc::new(Upstreams {
        ports,
        next: AtomicUsize::new(0),
        client: Client::builder(TokioExecutor::new()).build_http(),
    });
    Ok((url, serve(listener, upstreams, shutdown)))
}

async fn serve(
    listener: TcpListener,
    upstreams: Arc<Upstreams>,
    mut shutdown: Shutdown,
) -> Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted.context("accepting a connection")?,
            _ = shutdown.stopped() => return Ok(()),
        };
        let upstreams = upstreams.clone();
        let service = hyper::service::service_fn(move |request| {
            let upstreams = upstreams.clone();
            async move { Ok::<_, Infallible>(forward(request, &upstreams).await) }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Sends `request` to the next instance that accepts a connection.
async fn forward(request: Request<Incoming>, upstreams: &Upstreams) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes())
    else {
        return reply(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    for _ in 0..upstreams.ports.len() {
        let port =
            upstreams.ports[upstreams.next.fetch_add(1, Ordering::Relaxed) % upstreams.ports.len()];
        let mut outgoing = Request::builder()
            .method(parts.method.clone())
            .uri(format!("http://127.0.0.1:{port}{path}"));
        for (name, value) in &parts.headers {
            outgoing = outgoing.header(name, value);
        }
        let Ok(outgoing) = outgoing.body(Full::new(body.clone())) else {
            return reply(StatusCode::BAD_REQUEST, "bad request");
        };
        let Ok(response) = upstreams.client.request(outgoing).await else {
            continue; // not listening: the next instance
        };
        let (mut head, incoming) = response.into_parts();
        let Ok(bytes) = incoming.collect().await.map(|b| b.to_bytes()) else {
            return reply(StatusCode::BAD_GATEWAY, "the instance broke off its answer");
        };
        head.headers.insert("x-storefront-instance", port.into());
        head.headers.remove(hyper::header::TRANSFER_ENCODING);
        return Response::from_parts(head, Full::new(bytes));
    }
    reply(StatusCode::BAD_GATEWAY, "no storefront instance is up")
}

fn reply(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
