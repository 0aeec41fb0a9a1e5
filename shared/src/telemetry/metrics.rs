//! CloudWatch Embedded Metric Format: one JSON document per invocation on stdout, which
//! CloudWatch turns into metrics with no API call and no added latency.
//!
//! Every metric has the dimensions `service` and `function`, as Powertools Metrics adds
//! `service`; the first invocation of a function in a process adds `ColdStart` = 1.
//! A handwritten writer rather than `metrics_cloudwatch_embedded`: that crate keeps one global
//! recorder per process with fixed dimensions, which cannot tell apart the four functions the
//! local stack runs in one process (docs/operations.md has the measured comparison).

use std::io::Write;
use std::sync::Mutex;

use chrono::{SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::{ColdStarts, LambdaLevel};

/// The CloudWatch namespace of every catalog-sync metric.
pub const NAMESPACE: &str = "CatalogSync";

/// EMF's limit of values per metric in one document.
const MAX_VALUES: usize = 100;

static COLD_STARTS: ColdStarts = ColdStarts::new();

/// Where documents go: stdout (Lambda's log agent reads it) unless the local stack set a file.
static WRITER: Mutex<Option<Box<dyn Write + Send>>> = Mutex::new(None);

/// One invocation's metrics: per name a unit and every value recorded, in order. A name
/// recorded twice (two reconcile segments in one batch) keeps both values, as EMF allows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricSet {
    metrics: Vec<(&'static str, &'static str, Vec<f64>)>,
    /// A dimension beside `service` and `function` (the revalidator's `target`).
    dimension: Option<(&'static str, String)>,
}

impl MetricSet {
    /// An empty set whose metrics also carry the dimension `name` = `value`.
    pub fn with_dimension(name: &'static str, value: impl Into<String>) -> Self {
        Self {
            metrics: Vec::new(),
            dimension: Some((name, value.into())),
        }
    }

    /// Records `value` of `name` in `unit` (`Count`, `Milliseconds`, `Percent`, ...).
    pub fn add(&mut self, name: &'static str, value: f64, unit: &'static str) -> &mut Self {
        match self.metrics.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, values)) => values.push(value),
            None => self.metrics.push((name, unit, vec![value])),
        }
        self
    }

    /// Adds every value of `other`.
    pub fn extend(&mut self, other: &MetricSet) {
        for (name, unit, values) in &other.metrics {
            for value in values {
                self.add(name, *value, unit);
            }
        }
    }
}

impl FromIterator<(&'static str, f64, &'static str)> for MetricSet {
    fn from_iter<I: IntoIterator<Item = (&'static str, f64, &'static str)>>(iter: I) -> Self {
        let mut set = MetricSet::default();
        for (name, value, unit) in iter {
            set.add(name, value, unit);
        }
        set
    }
}

/// The `level` a document carries so that Lambda's log-level filter keeps it: with
/// `ApplicationLogLevel` set, Lambda treats a JSON line without a `level` (or without an RFC 3339
/// `timestamp`) as INFO and drops it at WARN and above, and the metrics with it. So a document
/// is stamped with the configured level when that is above INFO.
pub fn document_level(lambda_log_level: Option<&str>) -> &'static str {
    match LambdaLevel::parse(lambda_log_level).max(LambdaLevel::Info) {
        LambdaLevel::Warn => "WARN",
        LambdaLevel::Error => "ERROR",
        LambdaLevel::Fatal => "FATAL",
        _ => "INFO",
    }
}

/// The EMF documents for `metrics`: one, unless a name has more than 100 values. `level` is
/// [`document_level`]'s.
pub fn emf_document(
    service: &str,
    function: &str,
    level: &str,
    metrics: &MetricSet,
) -> Vec<String> {
    let most = metrics.metrics.iter().map(|(_, _, v)| v.len()).max();
    let documents = most.unwrap_or(0).div_ceil(MAX_VALUES);
    (0..documents)
        .map(|i| {
            let window = i * MAX_VALUES..(i + 1) * MAX_VALUES;
            let mut root = Map::new();
            let mut declared = Vec::new();
            for (name, unit, values) in &metrics.metrics {
                let Some(values) = values.get(window.start..values.len().min(window.end)) else {
                    continue;
                };
                if values.is_empty() {
                    continue;
                }
                declared.push(json!({"Name": name, "Unit": unit}));
                let value = match values {
                    [one] => json!(one),
                    many => json!(many),
                };
                root.insert((*name).to_owned(), value);
            }
            root.insert("service".into(), service.into());
            root.insert("function".into(), function.into());
            let mut dimensions = vec!["service", "function"];
            if let Some((name, value)) = &metrics.dimension {
                root.insert((*name).to_owned(), value.clone().into());
                dimensions.push(name);
            }
            root.insert("level".into(), level.into());
            let now = Utc::now();
            root.insert(
                "timestamp".into(),
                now.to_rfc3339_opts(SecondsFormat::Millis, true).into(),
            );
            root.insert(
                "_aws".into(),
                json!({
                    "Timestamp": now.timestamp_millis(),
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": [dimensions],
                        "Metrics": declared,
                    }],
                }),
            );
            Value::Object(root).to_string()
        })
        .collect()
}

/// Writes one invocation's metrics, plus `ColdStart` on the function's first invocation in
/// this process. Nothing is written for an empty set on a warm invocation.
/// `CATALOG_METRICS=off` silences it (the benchmarks do, to keep their output to their figures).
pub fn emit(function: &str, metrics: &MetricSet) {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*ENABLED.get_or_init(|| std::env::var("CATALOG_METRICS").as_deref() != Ok("off")) {
        return;
    }
    let mut metrics = metrics.clone();
    if COLD_STARTS.first(function) {
        metrics.add("ColdStart", 1.0, "Count");
    }
    static LEVEL: std::sync::OnceLock<&str> = std::sync::OnceLock::new();
    let level =
        LEVEL.get_or_init(|| document_level(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref()));
    let documents = emf_document(&super::service(), function, level, &metrics);
    if documents.is_empty() {
        return;
    }
    let mut writer = WRITER.lock().unwrap_or_else(|e| e.into_inner());
    for document in documents {
        match writer.as_mut() {
            Some(file) => {
                let _ = writeln!(file, "{document}");
            }
            None => println!("{document}"),
        }
    }
}

/// Sends every later document to `writer` instead of stdout (the local stack's
/// `.local/logs/metrics.log`).
pub fn set_metrics_writer(writer: Box<dyn Write + Send>) {
    *WRITER.lock().unwrap_or_else(|e| e.into_inner()) = Some(writer);
}

#[cfg(test)]
mod tests {
    use super::{emf_document, MetricSet};
    use serde_json::Value;

    fn parse(doc: &str) -> Value {
        serde_json::from_str(doc).unwrap()
    }

    #[test]
    fn a_document_declares_each_metric_with_the_service_and_function_dimensions() {
        let set: MetricSet = [("RecordsReceived", 3.0, "Count")].into_iter().collect();
        let docs = emf_document("catalog-sync", "summary-projector", "INFO", &set);
        assert_eq!(docs.len(), 1);
        let v = parse(&docs[0]);
        assert_eq!(v["RecordsReceived"], 3.0);
        assert_eq!(v["function"], "summary-projector");
        assert_eq!(v["service"], "catalog-sync");
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Metrics"][0]["Name"], "RecordsReceived");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["service", "function"]])
        );
    }

    #[test]
    fn a_set_with_a_dimension_declares_it_beside_service_and_function() {
        let mut set = MetricSet::with_dimension("target", "tag-table:web");
        set.add("TargetCalls", 1.0, "Count");
        let v = parse(&emf_document("s", "tag-revalidator", "INFO", &set)[0]);
        assert_eq!(v["target"], "tag-table:web");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["service", "function", "target"]])
        );
    }

    #[test]
    fn a_name_recorded_twice_keeps_both_values_in_one_document() {
        let mut set = MetricSet::default();
        set.add("Discrepancies", 2.0, "Count")
            .add("Discrepancies", 0.0, "Count");
        let docs = emf_document("s", "reconciler", "INFO", &set);
        assert_eq!(docs.len(), 1);
        assert_eq!(
            parse(&docs[0])["Discrepancies"],
            serde_json::json!([2.0, 0.0])
        );
    }

    #[test]
    fn more_than_a_hundred_values_split_into_documents_and_none_is_lost() {
        let set: MetricSet = (0..250)
            .map(|i| ("Lag", i as f64, "Milliseconds"))
            .collect();
        let docs = emf_document("s", "f", "INFO", &set);
        assert_eq!(docs.len(), 3);
        let total: usize = docs
            .iter()
            .map(|d| parse(d)["Lag"].as_array().map_or(1, Vec::len))
            .sum();
        assert_eq!(total, 250);
    }

    #[test]
    fn a_document_passes_lambdas_level_filter_at_any_level() {
        use super::document_level;
        assert_eq!(document_level(None), "INFO");
        assert_eq!(document_level(Some("DEBUG")), "INFO");
        assert_eq!(document_level(Some("warn")), "WARN");
        assert_eq!(document_level(Some("FATAL")), "FATAL");
        let set: MetricSet = [("ColdStart", 1.0, "Count")].into_iter().collect();
        let v = parse(&emf_document("s", "f", "ERROR", &set)[0]);
        assert_eq!(v["level"], "ERROR");
        let stamp = v["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{stamp}"
        );
    }

    #[test]
    fn an_empty_set_makes_no_document() {
        assert!(emf_document("s", "f", "INFO", &MetricSet::default()).is_empty());
    }
}
