//! The tables and queues template.yaml declares, read from it (no I/O past reading the file):
//! [`crate::provision`] creates them on the local services, so the local stack and the tests
//! run on exactly what `sam deploy` creates.

pub mod event_sources;

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde_yaml_ng::Value;

/// A DynamoDB table of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDef {
    pub logical_id: String,
    pub attributes: Vec<(String, String)>,
    pub key_schema: Vec<(String, String)>,
    pub indexes: Vec<IndexDef>,
    pub stream_view_type: Option<String>,
    pub ttl_attribute: Option<String>,
}

/// A global secondary index of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexDef {
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    pub projection_type: String,
    pub non_key_attributes: Vec<String>,
}

/// An SQS queue of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueDef {
    pub logical_id: String,
    pub visibility_timeout: Option<i64>,
    pub retention: Option<i64>,
    /// (logical id of the dead-letter queue, maxReceiveCount)
    pub redrive: Option<(String, i64)>,
}

/// What the local stack needs of template.yaml.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub tables: Vec<TableDef>,
    pub queues: Vec<QueueDef>,
    /// The raw document, for the checks that read other parts.
    pub document: Value,
}

/// `v[key]`, if `v` is a mapping that has it.
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.as_mapping()?.get(key)
}

fn text(v: &Value, key: &str) -> Result<String> {
    get(v, key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("missing string {key}"))
}

fn pairs(v: Option<&Value>, a: &str, b: &str) -> Result<Vec<(String, String)>> {
    v.and_then(Value::as_sequence)
        .map(|seq| seq.iter().map(|e| Ok((text(e, a)?, text(e, b)?))).collect())
        .unwrap_or_else(|| Ok(Vec::new()))
}

/// The logical id a `!GetAtt X.Arn` names.
pub fn get_att_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) if t.tag == "GetAtt" => t
            .value
            .as_str()
            .and_then(|s| s.split('.').next())
            .map(str::to_owned),
        _ => None,
    }
}

impl Template {
    /// Reads `template.yaml` under `root`.
    pub fn load(root: &Path) -> Result<Self> {
        let path = root.join("template.yaml");
        let source = std::fs::read_to_string(&path).with_context(|| format!("reading {path:?}"))?;
        Self::parse(&source).with_context(|| format!("parsing {path:?}"))
    }

    /// Parses a template's text.
    pub fn parse(source: &str) -> Result<Self> {
        let document: Value = serde_yaml_ng::from_str(source)?;
        let resources = get(&document, "Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| anyhow!("no Resources"))?;
        let mut tables = Vec::new();
        let mut queues = Vec::new();
        for (id, resource) in resources {
            let id = id
                .as_str()
                .ok_or_else(|| anyhow!("non-string logical id"))?;
            let props = get(resource, "Properties").cloned().unwrap_or(Value::Null);
            match get(resource, "Type").and_then(Value::as_str) {
                Some("AWS::DynamoDB::Table") => tables.push(table(id, &props)?),
                Some("AWS::SQS::Queue") => queues.push(queue(id, &props)?),
                _ => {}
            }
        }
        Ok(Self {
            tables,
            queues,
            document,
        })
    }

    /// The table with this logical id.
    pub fn table(&self, logical_id: &str) -> Result<&TableDef> {
        self.tables
            .iter()
            .find(|t| t.logical_id == logical_id)
            .ok_or_else(|| anyhow!("template.yaml has no table {logical_id}"))
    }

    /// The queue with this logical id.
    pub fn queue(&self, logical_id: &str) -> Result<&QueueDef> {
        self.queues
            .iter()
            .find(|q| q.logical_id == logical_id)
            .ok_or_else(|| anyhow!("template.yaml has no queue {logical_id}"))
    }
}

fn table(id: &str, props: &Value) -> Result<TableDef> {
    let indexes = get(props, "GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .map(|seq| {
            seq.iter()
                .map(|gsi| {
                    let projection = get(gsi, "Projection").cloned().unwrap_or(Value::Null);
                    Ok(IndexDef {
                        name: text(gsi, "IndexName")?,
                        key_schema: pairs(get(gsi, "KeySchema"), "AttributeName", "KeyType")?,
                        projection_type: text(&projection, "ProjectionType")?,
                        non_key_attributes: get(&projection, "NonKeyAttributes")
                            .and_then(Value::as_sequence)
                            .map(|s| {
                                s.iter()
                                    .filter_map(|a| a.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?
        .unwrap_or_default();
    Ok(TableDef {
        logical_id: id.to_owned(),
        attributes: pairs(
            get(props, "AttributeDefinitions"),
            "AttributeName",
            "AttributeType",
        )?,
        key_schema: pairs(get(props, "KeySchema"), "AttributeName", "KeyType")?,
        indexes,
        stream_view_type: get(props, "StreamSpecification")
            .map(|s| text(s, "StreamViewType"))
            .transpose()?,
        ttl_attribute: get(props, "TimeToLiveSpecification")
            .map(|s| text(s, "AttributeName"))
            .transpose()?,
    })
}

fn queue(id: &str, props: &Value) -> Result<QueueDef> {
    let redrive = match get(props, "RedrivePolicy") {
        None => None,
        Some(policy) => {
            let target = get(policy, "deadLetterTargetArn")
                .and_then(get_att_target)
                .ok_or_else(|| anyhow!("{id}: deadLetterTargetArn must be !GetAtt Queue.Arn"))?;
            let max = get(policy, "maxReceiveCount")
                .and_then(Value::as_i64)
                .ok_or_else(|| anyhow!("{id}: maxReceiveCount missing"))?;
            Some((target, max))
        }
    };
    Ok(QueueDef {
        logical_id: id.to_owned(),
        visibility_timeout: get(props, "VisibilityTimeout").and_then(Value::as_i64),
        retention: get(props, "MessageRetentionPeriod").and_then(Value::as_i64),
        redrive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_template() {
        let template = Template::load(&crate::workspace_root()).unwrap();
        let products = template.table("ProductsTable").unwrap();
        assert_eq!(products.key_schema, [("productId".into(), "HASH".into())]);
        assert_eq!(
            products.stream_view_type.as_deref(),
            Some("NEW_AND_OLD_IMAGES")
        );
        let inventory = template.table("InventoryTable").unwrap();
        assert_eq!(inventory.key_schema.len(), 2);
        let summaries = template.table("SummariesTable").unwrap();
        assert_eq!(summaries.indexes[0].name, "byStore");
        assert_eq!(summaries.ttl_attribute.as_deref(), Some("expiresAt"));
        let tags = template.queue("TagQueue").unwrap();
        assert_eq!(tags.redrive, Some(("TagDeadLetterQueue".into(), 20)));
    }
}
