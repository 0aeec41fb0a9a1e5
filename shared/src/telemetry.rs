//! Logging and metrics: JSON log lines, and CloudWatch Embedded Metric Format (EMF) lines
//! that CloudWatch turns into metrics without any API call.

use chrono::Utc;
use serde_json::{json, Map, Value};

/// Installs a JSON subscriber for `tracing`, filtered by `RUST_LOG` (default `info`).
/// Call once, at cold start.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_env_filter(filter)
        .try_init();
}

/// The CloudWatch namespace of every catalog-sync metric.
pub const NAMESPACE: &str = "CatalogSync";

/// Builds one EMF line: `metrics` as counts (or the unit each names), dimensioned by function.
pub fn emf_line(function: &str, metrics: &[(&str, f64, &str)]) -> String {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["function"]],
                "Metrics": metrics.iter().map(|(name, _, unit)| json!({"Name": name, "Unit": unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    root.insert("function".into(), Value::from(function));
    for (name, value, _) in metrics {
        root.insert((*name).into(), json!(value));
    }
    Value::Object(root).to_string()
}

/// Prints one EMF line to stdout, where Lambda's log agent picks it up. `CATALOG_METRICS=off`
/// silences it (the benchmarks do, to keep their output to their figures).
pub fn emit(function: &str, metrics: &[(&str, f64, &str)]) {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ENABLED.get_or_init(|| std::env::var("CATALOG_METRICS").as_deref() != Ok("off")) {
        println!("{}", emf_line(function, metrics));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn emf_line_names_each_metric_and_its_value() {
        let line = super::emf_line("summary-projector", &[("RecordsProcessed", 3.0, "Count")]);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["RecordsProcessed"], 3.0);
        assert_eq!(v["function"], "summary-projector");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "RecordsProcessed"
        );
    }
}
