//! CloudWatch metrics as CloudWatch identifies them (namespace, name and the exact set of
//! dimensions), read from both ends: what template.yaml's alarms and dashboard reference, and
//! what the functions' EMF documents emit. A metric referenced with other dimensions than it
//! is emitted with is a different metric: the graph stays empty and the alarm never fires.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use catalog::telemetry::NAMESPACE;
use catalog_local::template::Template;
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

/// One CatalogSync metric: its name and its dimensions.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetricId {
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
}

/// Every CatalogSync metric the template's alarms and dashboards reference.
pub fn referenced(t: &Template) -> Result<BTreeSet<MetricId>> {
    let mut found = BTreeSet::new();
    let resources = t.document["Resources"]
        .as_mapping()
        .context("no Resources")?;
    for (id, resource) in resources {
        match resource["Type"].as_str() {
            Some("AWS::CloudWatch::Alarm") => alarm_metrics(&resource["Properties"], &mut found),
            Some("AWS::CloudWatch::Dashboard") => {
                let body = match &resource["Properties"]["DashboardBody"] {
                    Yaml::Tagged(sub) if sub.tag == "Sub" => sub.value.as_str(),
                    other => other.as_str(),
                };
                let body = body.with_context(|| format!("{id:?} has no DashboardBody string"))?;
                dashboard_metrics(&without_substitutions(body), &mut found)
                    .with_context(|| format!("reading {id:?}'s DashboardBody"))?;
            }
            _ => {}
        }
    }
    Ok(found)
}

/// The CatalogSync metrics declared in EMF documents.
pub fn emitted<'a>(documents: impl IntoIterator<Item = &'a Json>) -> BTreeSet<MetricId> {
    let mut found = BTreeSet::new();
    for doc in documents {
        for directive in doc["_aws"]["CloudWatchMetrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if directive["Namespace"] != NAMESPACE {
                continue;
            }
            for set in directive["Dimensions"].as_array().into_iter().flatten() {
                let dimensions: BTreeMap<String, String> = set
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Json::as_str)
                    .map(|k| (k.to_owned(), doc[k].as_str().unwrap_or("?").to_owned()))
                    .collect();
                for metric in directive["Metrics"].as_array().into_iter().flatten() {
                    if let Some(name) = metric["Name"].as_str() {
                        found.insert(MetricId {
                            name: name.to_owned(),
                            dimensions: dimensions.clone(),
                        });
                    }
                }
            }
        }
    }
    found
}

fn alarm_metrics(properties: &Yaml, found: &mut BTreeSet<MetricId>) {
    let mut add = |metric: &Yaml| {
        if metric["Namespace"].as_str() != Some(NAMESPACE) {
            return;
        }
        let dimensions = metric["Dimensions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|d| {
                Some((
                    d["Name"].as_str()?.to_owned(),
                    d["Value"].as_str()?.to_owned(),
                ))
            })
            .collect();
        found.insert(MetricId {
            name: metric["MetricName"].as_str().unwrap_or("?").to_owned(),
            dimensions,
        });
    };
    add(properties);
    for query in properties["Metrics"].as_sequence().into_iter().flatten() {
        add(&query["MetricStat"]["Metric"]);
    }
}

/// A `!Sub` body with each `${...}` replaced, so it parses as the JSON it becomes.
fn without_substitutions(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        out.push_str("SUBSTITUTED");
        rest = rest[start..]
            .find('}')
            .map_or("", |end| &rest[start + end + 1..]);
    }
    out.push_str(rest);
    out
}

/// The metrics of every widget, with CloudWatch's `"..."` shorthand expanded: it repeats the
/// row above, replacing as many trailing items as follow it.
fn dashboard_metrics(body: &str, found: &mut BTreeSet<MetricId>) -> Result<()> {
    let body: Json = serde_json::from_str(body)?;
    for widget in body["widgets"].as_array().into_iter().flatten() {
        let mut previous: Vec<String> = Vec::new();
        for row in widget["properties"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let items: Vec<String> = row
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            let row = match items.first().map(String::as_str) {
                None => continue,
                Some("...") => {
                    let tail = &items[1..];
                    if tail.len() > previous.len() {
                        bail!("a \"...\" row replaces more than the row above has");
                    }
                    let mut row = previous[..previous.len() - tail.len()].to_vec();
                    row.extend_from_slice(tail);
                    row
                }
                Some(_) => items,
            };
            if row.len() < 2 || row.len() % 2 != 0 {
                bail!("metric row {row:?} is not namespace, name and dimension pairs");
            }
            if row[0] == NAMESPACE {
                found.insert(MetricId {
                    name: row[1].clone(),
                    dimensions: row[2..]
                        .chunks(2)
                        .map(|kv| (kv[0].clone(), kv[1].clone()))
                        .collect(),
                });
            }
            previous = row;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{dashboard_metrics, without_substitutions};
    use std::collections::BTreeSet;

    #[test]
    fn the_ellipsis_repeats_the_row_above_with_its_tail_replaced() {
        let body = r#"{"widgets":[{"properties":{"metrics":[
            ["CatalogSync","ColdStart","service","s","function","a"],
            ["...","b"],
            ["...",{"stat":"p99"}],
            [{"expression":"m1"}],
            ["AWS/Lambda","Errors","FunctionName","${F}"]
        ]}}]}"#;
        let mut found = BTreeSet::new();
        dashboard_metrics(&without_substitutions(body), &mut found).unwrap();
        let functions: Vec<_> = found
            .iter()
            .map(|m| m.dimensions["function"].clone())
            .collect();
        assert_eq!(functions, ["a", "b"]);
    }
}
