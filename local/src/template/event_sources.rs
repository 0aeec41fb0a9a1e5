//! The event sources template.yaml gives each function (its stream and queue mappings and its
//! schedule), read from the same file `sam deploy` uses, so the local stack triggers functions
//! with the settings AWS would.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_yaml_ng::Value;

use crate::template::{get, get_att_target, Template};

/// A DynamoDB stream event source mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSource {
    /// The event's name in the template (`ProductsStream`).
    pub name: String,
    /// Logical id of the table whose stream it reads.
    pub table: String,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    /// `None`: retry until the record expires (the template should never say so).
    pub max_retries: Option<u32>,
    pub max_record_age: Option<Duration>,
    pub bisect_on_error: bool,
    pub report_item_failures: bool,
    /// Logical id of the SQS queue that receives batches that ran out of retries.
    pub on_failure_queue: Option<String>,
}

/// An SQS event source mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSource {
    pub name: String,
    /// Logical id of the queue.
    pub queue: String,
    pub batch_size: usize,
    pub batching_window: Duration,
    pub report_item_failures: bool,
}

/// A schedule (EventBridge Scheduler or rule) that invokes a function with a fixed input.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSource {
    pub name: String,
    /// `cron(...)` or `rate(...)`, as written.
    pub expression: String,
    /// The event the schedule sends.
    pub input: serde_json::Value,
}

/// A route of an HTTP API (`Type: HttpApi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    pub name: String,
    /// `GET`, `POST`, ...
    pub method: String,
    /// With `{param}` segments, as in the template.
    pub path: String,
    /// `AWS_IAM` or another authorizer's name; `None` for a public route.
    pub authorizer: Option<String>,
}

impl HttpRoute {
    /// Whether a request for `method` `path` takes this route.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        if !self.method.eq_ignore_ascii_case(method) && self.method != "ANY" {
            return false;
        }
        let pattern: Vec<&str> = self.path.split('/').collect();
        let actual: Vec<&str> = path.split('/').collect();
        pattern.len() == actual.len()
            && pattern.iter().zip(&actual).all(|(p, a)| {
                if let (Some(prefix), true) =
                    (p.split('{').next(), p.ends_with('}') && p.contains('{'))
                {
                    a.starts_with(prefix) && a.len() > prefix.len()
                } else {
                    p == a
                }
            })
    }
}

/// Everything that triggers one function.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventSources {
    pub streams: Vec<StreamSource>,
    pub queues: Vec<QueueSource>,
    pub schedules: Vec<ScheduleSource>,
    pub routes: Vec<HttpRoute>,
}

/// The logical id `v` (a `!GetAtt X.Attr`) names.
fn get_att(v: Option<&Value>) -> Option<String> {
    v.and_then(get_att_target)
}

fn seconds(v: Option<&Value>) -> Duration {
    Duration::from_secs(v.and_then(Value::as_u64).unwrap_or(0))
}

fn reports_item_failures(props: &Value) -> bool {
    get(props, "FunctionResponseTypes")
        .and_then(Value::as_sequence)
        .is_some_and(|s| {
            s.iter()
                .any(|t| t.as_str() == Some("ReportBatchItemFailures"))
        })
}

impl Template {
    /// The event sources of the function with this logical id.
    pub fn event_sources(&self, function: &str) -> Result<EventSources> {
        let resource = get(&self.document, "Resources")
            .and_then(|r| get(r, function))
            .ok_or_else(|| anyhow!("template.yaml has no resource {function}"))?;
        let mut sources = EventSources::default();
        let Some(events) = get(resource, "Properties")
            .and_then(|p| get(p, "Events"))
            .and_then(Value::as_mapping)
        else {
            return Ok(sources);
        };
        for (name, event) in events {
            let name = name.as_str().unwrap_or_default().to_owned();
            let props = get(event, "Properties").cloned().unwrap_or(Value::Null);
            let context = &format!("{function}.Events.{name}");
            match get(event, "Type").and_then(Value::as_str) {
                Some("DynamoDB") => sources
                    .streams
                    .push(StreamSource::read(name, &props, context)?),
                Some("SQS") => sources
                    .queues
                    .push(QueueSource::read(name, &props, context)?),
                Some("Schedule" | "ScheduleV2") => sources
                    .schedules
                    .push(ScheduleSource::read(name, &props, context)?),
                Some("HttpApi") => sources.routes.push(HttpRoute::read(name, &props, context)?),
                Some(other) => bail!("{}: event type {other} is not emulated", context),
                None => bail!("{}: no Type", context),
            }
        }
        sources.streams.sort_by(|a, b| a.name.cmp(&b.name));
        sources.queues.sort_by(|a, b| a.name.cmp(&b.name));
        sources.routes.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(sources)
    }
}

impl StreamSource {
    /// Reads a `DynamoDB` event's properties; `context` names the event in errors.
    fn read(name: String, props: &Value, context: &str) -> Result<Self> {
        Ok(Self {
            table: get_att(get(props, "Stream"))
                .with_context(|| format!("{}: Stream must be !GetAtt", context))?,
            starting_position: get(props, "StartingPosition")
                .and_then(Value::as_str)
                .unwrap_or("LATEST")
                .to_owned(),
            batch_size: get(props, "BatchSize")
                .and_then(Value::as_u64)
                .unwrap_or(100) as usize,
            batching_window: seconds(get(props, "MaximumBatchingWindowInSeconds")),
            max_retries: get(props, "MaximumRetryAttempts")
                .and_then(Value::as_i64)
                .filter(|n| *n >= 0)
                .map(|n| n as u32),
            max_record_age: get(props, "MaximumRecordAgeInSeconds")
                .and_then(Value::as_i64)
                .filter(|n| *n > 0)
                .map(|n| Duration::from_secs(n as u64)),
            bisect_on_error: get(props, "BisectBatchOnFunctionError")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            report_item_failures: reports_item_failures(props),
            on_failure_queue: get_att(
                get(props, "DestinationConfig")
                    .and_then(|d| get(d, "OnFailure"))
                    .and_then(|d| get(d, "Destination")),
            ),
            name,
        })
    }
}

impl QueueSource {
    fn read(name: String, props: &Value, context: &str) -> Result<Self> {
        Ok(Self {
            queue: get_att(get(props, "Queue"))
                .with_context(|| format!("{}: Queue must be !GetAtt", context))?,
            batch_size: get(props, "BatchSize")
                .and_then(Value::as_u64)
                .unwrap_or(10) as usize,
            batching_window: seconds(get(props, "MaximumBatchingWindowInSeconds")),
            report_item_failures: reports_item_failures(props),
            name,
        })
    }
}

impl ScheduleSource {
    fn read(name: String, props: &Value, context: &str) -> Result<Self> {
        let input = match get(props, "Input").and_then(Value::as_str) {
            Some(text) => serde_json::from_str(text)
                .with_context(|| format!("{}: Input is not JSON", context))?,
            None => serde_json::json!({}),
        };
        Ok(Self {
            expression: get(props, "ScheduleExpression")
                .and_then(Value::as_str)
                .with_context(|| format!("{}: no ScheduleExpression", context))?
                .to_owned(),
            input,
            name,
        })
    }
}

impl HttpRoute {
    fn read(name: String, props: &Value, context: &str) -> Result<Self> {
        let text = |key: &str| {
            get(props, key)
                .and_then(Value::as_str)
                .with_context(|| format!("{}: no {key}", context))
        };
        Ok(Self {
            method: text("Method")?.to_uppercase(),
            path: text("Path")?.to_owned(),
            authorizer: get(props, "Auth")
                .and_then(|a| get(a, "Authorizer"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_projector_and_reconciler_sources() {
        let template = Template::load(&crate::workspace_root()).unwrap();
        let projector = template.event_sources("SummaryProjectorFunction").unwrap();
        let tables: Vec<&str> = projector.streams.iter().map(|s| s.table.as_str()).collect();
        assert_eq!(tables, ["InventoryTable", "ProductsTable"]);
        let products = &projector.streams[1];
        assert_eq!(products.starting_position, "TRIM_HORIZON");
        assert_eq!(products.batch_size, 100);
        assert_eq!(products.max_retries, Some(10));
        assert!(products.bisect_on_error && products.report_item_failures);
        assert_eq!(
            products.on_failure_queue.as_deref(),
            Some("StreamFailureQueue")
        );

        let reconciler = template.event_sources("ReconcilerFunction").unwrap();
        assert_eq!(reconciler.queues[0].queue, "ReconcileQueue");
        assert_eq!(reconciler.queues[0].batch_size, 1);
        assert!(reconciler.schedules[0].expression.starts_with("cron("));
        assert_eq!(
            reconciler.schedules[0].input["detail-type"],
            "Scheduled Event"
        );
        let admin = &reconciler.routes[0];
        assert_eq!(admin.authorizer.as_deref(), Some("AWS_IAM"));
        assert!(admin.matches("POST", "/admin/products/p-1/revalidate"));
        assert!(!admin.matches("GET", "/admin/products/p-1/revalidate"));
        assert!(!admin.matches("POST", "/admin/products//revalidate"));

        let listing = template.event_sources("ListingApiFunction").unwrap();
        let batch_get = listing
            .routes
            .iter()
            .find(|r| r.name == "BatchGet")
            .unwrap();
        assert!(batch_get.matches("POST", "/products:batchGet"));
        let get = listing
            .routes
            .iter()
            .find(|r| r.name == "GetProduct")
            .unwrap();
        assert!(get.matches("GET", "/products/p-1") && !get.matches("GET", "/products/p-1/x"));
        for route in &listing.routes {
            let admin = route.path.starts_with("/admin/");
            assert_eq!(route.authorizer.is_some(), admin, "{}", route.path);
        }
    }
}
