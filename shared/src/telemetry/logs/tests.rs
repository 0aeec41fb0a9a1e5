use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use super::{invocation_span, lambda_directive, trace_root, with_level, KEYS};

/// Collects what the layer writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// Runs `body` under the layer at `level` and returns the lines it wrote.
fn logged(level: &str, body: impl FnOnce()) -> Vec<Value> {
    let capture = Capture::default();
    let filter = EnvFilter::new(lambda_directive(level));
    tracing::subscriber::with_default(with_level(capture.clone(), filter), body);
    capture.lines()
}

#[test]
fn each_line_carries_the_invocation_and_only_the_first_is_a_cold_start() {
    let lines = logged("INFO", || {
        tracing::info!(phase = "init", "starting");
        for request in ["req-1", "req-2"] {
            let _span = invocation_span("logs-test-fn", request).entered();
            tracing::info!(records = 3, "batch done");
        }
    });
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        for key in KEYS {
            assert!(line.get(key).is_some(), "{key} missing from {line}");
        }
    }
    assert_eq!(lines[0]["function_request_id"], Value::Null);
    assert_eq!(lines[1]["function_request_id"], "req-1");
    assert_eq!(lines[1]["function_name"], "logs-test-fn");
    assert_eq!(lines[1]["message"], "batch done");
    assert_eq!(lines[1]["records"], 3);
    assert_eq!(lines[1]["level"], "INFO");
    assert_eq!(lines[1]["cold_start"], true);
    assert_eq!(lines[2]["function_request_id"], "req-2");
    assert_eq!(lines[2]["cold_start"], false);
}

#[test]
fn at_warn_an_info_line_is_dropped_and_a_warn_line_keeps_its_request_id() {
    let lines = logged("WARN", || {
        let _span = invocation_span("logs-test-warn", "req-w").entered();
        tracing::info!("quiet");
        tracing::warn!("loud");
    });
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["message"], "loud");
    assert_eq!(lines[0]["level"], "WARN");
    assert_eq!(lines[0]["function_request_id"], "req-w");
}

#[test]
fn the_runtime_the_sdk_and_the_http_stack_stay_at_info_at_any_level() {
    assert_eq!(lambda_directive("FATAL"), "error");
    assert_eq!(lambda_directive("warn"), "warn");
    assert_eq!(lambda_directive("nonsense"), "info");
    assert_eq!(lambda_directive("DEBUG"), "debug");
    let lines = logged("TRACE", || {
        tracing::debug!(target: "aws_smithy_runtime::client", "sdk chatter");
        tracing::trace!(target: "lambda_runtime::layers::api_response", "raw JSON event");
        tracing::info!(target: "lambda_runtime::runtime", "runtime info");
        tracing::trace!(target: "awsome_crate", "not the sdk");
        tracing::debug!("ours");
    });
    let messages: Vec<&Value> = lines.iter().map(|l| &l["message"]).collect();
    assert_eq!(messages, ["runtime info", "not the sdk", "ours"]);
}

#[test]
fn the_trace_id_is_the_root_of_the_header() {
    assert_eq!(
        trace_root("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
        "1-5759e988-bd862e3fe1be46a994272793"
    );
    assert_eq!(trace_root("1-abc"), "1-abc");
}

#[test]
fn the_request_and_trace_ids_come_from_the_runtimes_span() {
    // The span lambda_runtime's TracingLayer opens, field for field.
    let lines = logged("INFO", || {
        let _span = tracing::info_span!(
            super::INVOCATION_SPAN,
            requestId = "r-x",
            xrayTraceId = "Root=1-abc-def;Parent=1;Sampled=1"
        )
        .entered();
        tracing::error!(error = %std::io::Error::other("boom"), "failed");
    });
    assert_eq!(lines[0]["function_request_id"], "r-x");
    assert_eq!(lines[0]["xray_trace_id"], "1-abc-def");
    assert_eq!(lines[0]["error"], "boom");
    assert_eq!(lines[0]["level"], "ERROR");
}
