//! `catalog-local metrics`: what the CloudWatch dashboard would show for a local run, read from
//! the EMF documents the functions wrote to `.local/logs/metrics.log`. Counts are summed; the
//! timings (unit `Milliseconds`) get p50, p99 and max, as the dashboard's freshness graphs do.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

/// Every value of one metric of one function, and its unit.
#[derive(Debug, Default, Clone, PartialEq)]
struct Series {
    unit: String,
    values: Vec<f64>,
}

/// The figures of a run, per function and metric.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct MetricsReport {
    documents: usize,
    unreadable: usize,
    series: BTreeMap<(String, String), Series>,
}

impl MetricsReport {
    /// Reads EMF documents, one per line; a line that is not one is counted, not fatal.
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Self {
        let mut report = Self::default();
        for line in lines.into_iter().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Value>(line) {
                Ok(doc) if doc.pointer("/_aws/CloudWatchMetrics").is_some() => report.add(&doc),
                _ => report.unreadable += 1,
            }
        }
        report
    }

    fn add(&mut self, doc: &Value) {
        self.documents += 1;
        let function = doc["function"].as_str().unwrap_or("?").to_owned();
        let declared = doc
            .pointer("/_aws/CloudWatchMetrics/0/Metrics")
            .and_then(Value::as_array);
        for metric in declared.into_iter().flatten() {
            let (Some(name), unit) = (metric["Name"].as_str(), metric["Unit"].as_str()) else {
                continue;
            };
            let series = self
                .series
                .entry((function.clone(), name.to_owned()))
                .or_default();
            series.unit = unit.unwrap_or("None").to_owned();
            match &doc[name] {
                Value::Array(values) => series
                    .values
                    .extend(values.iter().filter_map(Value::as_f64)),
                value => series.values.extend(value.as_f64()),
            }
        }
    }

    /// The sum of a metric's values (for a test or a script).
    pub fn sum(&self, function: &str, metric: &str) -> Option<f64> {
        self.series
            .get(&(function.to_owned(), metric.to_owned()))
            .map(|s| s.values.iter().sum())
    }
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl fmt::Display for MetricsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} EMF documents", self.documents)?;
        if self.unreadable > 0 {
            writeln!(f, "{} lines were not EMF documents", self.unreadable)?;
        }
        let mut current = "";
        for ((function, metric), series) in &self.series {
            if function != current {
                writeln!(f, "{function}")?;
                current = function;
            }
            let mut sorted = series.values.clone();
            sorted.sort_by(f64::total_cmp);
            if series.unit == "Milliseconds" && !sorted.is_empty() {
                writeln!(
                    f,
                    "  {metric:<22} n {:>6}  p50 {:>9.1} ms  p99 {:>9.1} ms  max {:>9.1} ms",
                    sorted.len(),
                    quantile(&sorted, 0.5),
                    quantile(&sorted, 0.99),
                    sorted[sorted.len() - 1]
                )?;
            } else {
                let sum: f64 = sorted.iter().sum();
                writeln!(
                    f,
                    "  {metric:<22} n {:>6}  sum {sum:>10} {}",
                    sorted.len(),
                    series.unit
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{quantile, MetricsReport};

    const DOC: &str = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"CatalogSync","Dimensions":[["service","function"]],"Metrics":[{"Name":"RecordsReceived","Unit":"Count"},{"Name":"ProjectionLag","Unit":"Milliseconds"},{"Name":"ColdStart","Unit":"Count"}]}]},"service":"catalog-sync","function":"summary-projector","RecordsReceived":4.0,"ProjectionLag":[120.0,80.0],"ColdStart":1.0}"#;

    #[test]
    fn counts_are_summed_and_timings_get_quantiles() {
        let second = DOC.replace(
            r#""ProjectionLag":[120.0,80.0]"#,
            r#""ProjectionLag":300.0"#,
        );
        let report = MetricsReport::from_lines([DOC, second.as_str(), "not json", ""]);
        assert_eq!(
            report.sum("summary-projector", "RecordsReceived"),
            Some(8.0)
        );
        assert_eq!(report.sum("summary-projector", "ColdStart"), Some(2.0));
        let text = report.to_string();
        assert!(
            text.starts_with("2 EMF documents\n1 lines were not EMF"),
            "{text}"
        );
        assert!(
            text.contains("ProjectionLag          n      3  p50     120.0 ms  p99     300.0 ms"),
            "{text}"
        );
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&sorted, 0.5), 50.0);
        assert_eq!(quantile(&sorted, 0.99), 99.0);
        assert_eq!(quantile(&[7.0], 0.99), 7.0);
    }
}
