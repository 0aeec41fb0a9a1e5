//! Logs and metrics in the shape Powertools for AWS Lambda gives other runtimes: JSON log lines
//! that carry the invocation's request id, cold-start flag and X-Ray trace id ([`logs`]), and
//! CloudWatch Embedded Metric Format documents, one per invocation, with a `ColdStart` metric
//! ([`metrics`]). There is no Rust Powertools; this module is the part of it catalog-sync uses.

pub mod logs;
pub mod metrics;

pub use logs::{init, invocation_span, subscriber, INVOCATION_SPAN};
pub use metrics::{emf_document, emit, set_metrics_writer, MetricSet, NAMESPACE};

use std::sync::Mutex;

/// The `service` of every log line and metric: `POWERTOOLS_SERVICE_NAME` (template.yaml sets
/// it), else `catalog-sync`.
pub fn service() -> String {
    std::env::var("POWERTOOLS_SERVICE_NAME").unwrap_or_else(|_| DEFAULT_SERVICE.to_owned())
}

/// The service name when `POWERTOOLS_SERVICE_NAME` is not set.
pub const DEFAULT_SERVICE: &str = "catalog-sync";

/// Lambda's application log levels, as `AWS_LAMBDA_LOG_LEVEL` names them (any case). The log
/// filter and the metric documents' `level` both read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum LambdaLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl LambdaLevel {
    /// The level a name gives; INFO for none or one Lambda does not have.
    fn parse(name: Option<&str>) -> Self {
        match name.map(str::to_ascii_uppercase).as_deref() {
            Some("TRACE") => Self::Trace,
            Some("DEBUG") => Self::Debug,
            Some("WARN") => Self::Warn,
            Some("ERROR") => Self::Error,
            Some("FATAL") => Self::Fatal,
            _ => Self::Info,
        }
    }
}

/// The functions that have begun their first invocation in this process. On Lambda a process
/// runs one function, so "first" is the cold start; the local stack runs all four in one
/// process and keeps one entry each.
struct ColdStarts(Mutex<Vec<String>>);

impl ColdStarts {
    const fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    /// True the first time `function` asks, false after.
    fn first(&self, function: &str) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.iter().any(|f| f == function) {
            return false;
        }
        seen.push(function.to_owned());
        true
    }

    /// Whether `function` has not begun an invocation yet (its init is still running).
    fn before_first(&self, function: &str) -> bool {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        !seen.iter().any(|f| f == function)
    }
}
