//! JSON log lines with the keys Powertools Logger writes, so one CloudWatch Logs Insights query
//! works across catalog-sync and a team's other functions:
//!
//! ```json
//! {"level":"INFO","timestamp":"2026-11-26T19:00:00.123Z","message":"batch projected",
//!  "service":"catalog-sync","function_name":"...","function_request_id":"...",
//!  "cold_start":true,"xray_trace_id":"1-...","location":"summary_projector:169","records":4}
//! ```
//!
//! The request id and trace id come from the span lambda_runtime opens around each invocation
//! (its `TracingLayer`, [`INVOCATION_SPAN`]), so handlers log as usual and every line inside an
//! invocation is tagged. Lines written during init, before the first invocation, have no
//! request id and `cold_start: true`. The level is `AWS_LAMBDA_LOG_LEVEL`, which Lambda sets
//! from the function's `LoggingConfig.ApplicationLogLevel`, else `RUST_LOG`, else INFO.

use std::fmt::Debug;
use std::io::Write;

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::{ColdStarts, LambdaLevel};

/// The name of the span lambda_runtime's `TracingLayer` opens per invocation, with the fields
/// `requestId` and `xrayTraceId`. The local stack opens one of its own ([`invocation_span`]).
pub const INVOCATION_SPAN: &str = "Lambda runtime invoke";

/// The keys every line carries, Powertools Logger's names (null where unknown).
pub const KEYS: [&str; 8] = [
    "level",
    "timestamp",
    "message",
    "service",
    "function_name",
    "function_request_id",
    "cold_start",
    "xray_trace_id",
];

static INVOCATIONS: ColdStarts = ColdStarts::new();

/// Installs the JSON log lines on stdout as the global subscriber. Call once, at cold start.
pub fn init() {
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout));
}

/// A subscriber writing catalog-sync's log lines to `writer`, at the level the environment
/// asks for. The invocation span is always recorded, so a WARN line still has its request id.
pub fn subscriber<W>(writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    with_level(writer, level())
}

fn with_level<W>(writer: W, level: EnvFilter) -> impl Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let invocation = filter_fn(|meta| meta.is_span() && meta.name() == INVOCATION_SPAN);
    let filter = level.and(filter_fn(capped)).or(invocation);
    tracing_subscriber::registry().with(JsonLines::new(writer).with_filter(filter))
}

/// Crates that log requests below INFO, whatever level the function runs at: lambda_runtime
/// logs each raw event at TRACE (SigV4 headers, batchGet and SQS bodies), and the SDK and the
/// HTTP stack log every request and retry, which would drown the function's own lines.
const CAPPED_AT_INFO: [&str; 7] = [
    "lambda_runtime",
    "aws",
    "hyper",
    "h2",
    "rustls",
    "tower",
    "reqwest",
];

/// Whether `meta` may be logged: at INFO or above, or not from a [`CAPPED_AT_INFO`] crate.
fn capped(meta: &Metadata<'_>) -> bool {
    let crate_name = meta.target().split("::").next().unwrap_or_default();
    let capped = CAPPED_AT_INFO.iter().any(|c| {
        crate_name
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('_'))
    });
    !capped || *meta.level() <= tracing::Level::INFO
}

/// An invocation span for code that runs a handler without lambda_runtime (the local stack):
/// it tags that invocation's lines as Lambda's would be.
pub fn invocation_span(function_name: &str, request_id: &str) -> tracing::Span {
    tracing::info_span!(
        INVOCATION_SPAN,
        requestId = request_id,
        functionName = function_name
    )
}

/// `AWS_LAMBDA_LOG_LEVEL` (TRACE, DEBUG, INFO, WARN, ERROR, FATAL), else `RUST_LOG`, else INFO.
fn level() -> EnvFilter {
    match std::env::var("AWS_LAMBDA_LOG_LEVEL") {
        Ok(level) => EnvFilter::new(lambda_directive(&level)),
        Err(_) => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    }
}

/// The filter directive for a Lambda log level ([`capped`] keeps the noisy crates at INFO).
fn lambda_directive(level: &str) -> &'static str {
    match LambdaLevel::parse(Some(level)) {
        LambdaLevel::Trace => "trace",
        LambdaLevel::Debug => "debug",
        LambdaLevel::Info => "info",
        LambdaLevel::Warn => "warn",
        LambdaLevel::Error | LambdaLevel::Fatal => "error",
    }
}

/// The invocation a line belongs to, kept on its span.
#[derive(Clone, Debug)]
struct Invocation {
    function_name: Option<String>,
    request_id: Option<String>,
    xray_trace_id: Option<String>,
    cold_start: bool,
}

/// The layer that writes one JSON object per event.
struct JsonLines<W> {
    service: String,
    function_name: Option<String>,
    writer: W,
}

impl<W> JsonLines<W> {
    fn new(writer: W) -> Self {
        Self {
            service: super::service(),
            function_name: std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
            writer,
        }
    }

    fn line(&self, meta: &Metadata<'_>, invocation: Option<Invocation>, fields: Fields) -> String {
        let function_name = invocation
            .as_ref()
            .and_then(|i| i.function_name.clone())
            .or_else(|| self.function_name.clone());
        let cold_start = match &invocation {
            Some(i) => i.cold_start,
            None => INVOCATIONS.before_first(function_name.as_deref().unwrap_or_default()),
        };
        let trace = invocation
            .as_ref()
            .and_then(|i| i.xray_trace_id.clone())
            .or_else(|| std::env::var("_X_AMZN_TRACE_ID").ok());
        let mut fields = fields.0;
        let mut line = Map::new();
        let mut put = |key: &str, value: Value| line.insert(key.to_owned(), value);
        put("level", meta.level().as_str().into());
        put(
            "timestamp",
            Utc::now()
                .to_rfc3339_opts(SecondsFormat::Millis, true)
                .into(),
        );
        put(
            "message",
            fields.remove("message").unwrap_or_else(|| "".into()),
        );
        put("service", self.service.clone().into());
        put("function_name", function_name.into());
        put(
            "function_request_id",
            invocation.and_then(|i| i.request_id).into(),
        );
        put("cold_start", cold_start.into());
        put("xray_trace_id", trace.as_deref().map(trace_root).into());
        put("location", location(meta).into());
        for (key, value) in fields {
            line.entry(key).or_insert(value);
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        text
    }
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != INVOCATION_SPAN {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let function_name = fields
            .string("functionName")
            .or_else(|| self.function_name.clone());
        let invocation = Invocation {
            cold_start: INVOCATIONS.first(function_name.as_deref().unwrap_or_default()),
            request_id: fields.string("requestId"),
            xray_trace_id: fields.string("xrayTraceId"),
            function_name,
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(invocation);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let invocation = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<Invocation>().cloned())
        });
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = self.line(event.metadata(), invocation, fields);
        let _ = self.writer.make_writer().write_all(line.as_bytes());
    }
}

/// `Root=1-abc;Parent=...;Sampled=1` -> `1-abc`, as Powertools reports it.
fn trace_root(header: &str) -> String {
    header
        .split(';')
        .find_map(|part| part.strip_prefix("Root="))
        .unwrap_or(header)
        .to_owned()
}

fn location(meta: &Metadata<'_>) -> String {
    format!(
        "{}:{}",
        meta.module_path().unwrap_or_else(|| meta.target()),
        meta.line().unwrap_or_default()
    )
}

/// An event's or a span's fields as JSON values.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn string(&self, key: &str) -> Option<String> {
        self.0.get(key).and_then(Value::as_str).map(str::to_owned)
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests;
