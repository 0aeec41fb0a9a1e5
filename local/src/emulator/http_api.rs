//! An HTTP server on localhost that stands in for API Gateway's HTTP API: each request takes
//! the first template route it matches, becomes the payload-format-2.0 event API Gateway
//! would send, and the function's answer becomes the response. Authorizers are not emulated:
//! the server listens on loopback only, and a request on an `AWS_IAM` route arrives as if a
//! local developer had signed it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::emulator::apigw::{authorize_iam, http_request};
use crate::emulator::function::Function;
use crate::emulator::stats::Stats;
use crate::shutdown::Shutdown;
use crate::template::event_sources::HttpRoute;

/// API Gateway's payload limit (10 MB); larger bodies get 413 as there.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// The routes of the API, the function behind each, and each route's own counters (requests
/// answered per route: a benchmark counts the storefront's listing renders by them).
pub type Routes = Arc<Vec<(HttpRoute, Arc<dyn Function>, Arc<Stats>)>>;

/// Serves `routes` on `listener` until `shutdown`; requests in flight are answered first.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    stats: Arc<Stats>,
    mut shutdown: Shutdown,
) -> Result<()> {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted.context("accepting a connection")?,
            _ = shutdown.stopped() => break,
        };
        let (routes, stats) = (routes.clone(), stats.clone());
        let service = hyper::service::service_fn(move |request| {
            let (routes, stats) = (routes.clone(), stats.clone());
            async move { Ok::<_, Infallible>(answer(request, &routes, &stats).await) }
        });
        let mut conn_shutdown = shutdown.clone();
        connections.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = conn_shutdown.stopped() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Binds `port` on loopback (0: any free port).
pub async fn bind(port: u16) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

async fn answer(
    request: Request<Incoming>,
    routes: &[(HttpRoute, Arc<dyn Function>, Arc<Stats>)],
    stats: &Stats,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let Some((route, function, route_stats)) = routes
        .iter()
        .find(|(route, _, _)| route.matches(parts.method.as_str(), parts.uri.path()))
    else {
        return plain(StatusCode::NOT_FOUND, "{\"message\":\"Not Found\"}");
    };
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
    };
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let body_text = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
    let mut event = http_request(
        parts.method.as_str(),
        target,
        &headers,
        body_text.as_deref(),
    );
    if route.authorizer.as_deref() == Some("AWS_IAM") {
        authorize_iam(&mut event);
    }
    Stats::add(&stats.invocations, 1);
    match function.invoke(event).await {
        Ok(reply) => {
            Stats::add(&stats.records, 1);
            Stats::add(&route_stats.records, 1);
            to_response(&reply)
        }
        Err(e) => {
            Stats::add(&stats.errors, 1);
            tracing::error!(error = %e, path = %parts.uri.path(), "the function failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// The HTTP response API Gateway makes of a function's payload-2.0 answer.
fn to_response(reply: &Value) -> Response<Full<Bytes>> {
    let status = reply
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::OK);
    let mut builder = Response::builder().status(status);
    if let Some(headers) = reply.get("headers").and_then(Value::as_object) {
        for (name, value) in headers {
            if let Some(value) = value.as_str() {
                builder = builder.header(name, value);
            }
        }
    }
    let body = reply
        .get("body")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bytes = if reply.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap_or_default()
    } else {
        body.as_bytes().to_vec()
    };
    builder
        .body(Full::new(Bytes::from(bytes)))
        .unwrap_or_else(|_| plain(StatusCode::BAD_GATEWAY, "Bad Gateway"))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}
