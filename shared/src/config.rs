//! Configuration, read from the environment once at cold start. A missing or bad value stops
//! the function with a message that names the variable.

use crate::store::TableNames;
use crate::tags::StockTagPolicy;

/// A variable that is missing or does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (template.yaml sets it on AWS)")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Reads a variable through `get`, so tests can pass a map instead of the process environment.
fn required(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    get(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// The summary-projector's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectorConfig {
    /// `PRODUCTS_TABLE`, `INVENTORY_TABLE`, `SUMMARIES_TABLE`.
    pub tables: TableNames,
    /// `TAG_QUEUE_URL`: where the tags to revalidate go.
    pub tag_queue_url: String,
    /// `PARKED_RECORDS_QUEUE_URL`: the dead-letter queue for records that can never succeed.
    pub parked_queue_url: String,
    /// `STOCK_TAG_POLICY`: `eager` (default) or `quiet`.
    pub stock_tag_policy: StockTagPolicy,
}

impl ProjectorConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            tables: table_names(&get)?,
            tag_queue_url: required(&get, "TAG_QUEUE_URL")?,
            parked_queue_url: required(&get, "PARKED_RECORDS_QUEUE_URL")?,
            stock_tag_policy: stock_tag_policy(&get)?,
        })
    }
}

/// The reconciler's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcilerConfig {
    /// `PRODUCTS_TABLE`, `INVENTORY_TABLE`, `SUMMARIES_TABLE`.
    pub tables: TableNames,
    /// `TAG_QUEUE_URL`: where the tags of repaired summaries go.
    pub tag_queue_url: String,
    /// `RECONCILE_QUEUE_URL`: one message per segment of a run.
    pub reconcile_queue_url: String,
    /// `RECONCILE_SEGMENTS`: parallel Scan segments of a scheduled run (default 4).
    pub default_segments: u32,
    /// `STOCK_TAG_POLICY`, as for the projector.
    pub stock_tag_policy: StockTagPolicy,
}

impl ReconcilerConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let default_segments = match get("RECONCILE_SEGMENTS").filter(|v| !v.trim().is_empty()) {
            None => 4,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (1..=1000).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "RECONCILE_SEGMENTS",
                        reason: format!("{v:?} is not a whole number from 1 to 1000"),
                    })
                }
            },
        };
        Ok(Self {
            tables: table_names(&get)?,
            tag_queue_url: required(&get, "TAG_QUEUE_URL")?,
            reconcile_queue_url: required(&get, "RECONCILE_QUEUE_URL")?,
            default_segments,
            stock_tag_policy: stock_tag_policy(&get)?,
        })
    }
}

/// Reads `STOCK_TAG_POLICY`: `eager` (the default) or `quiet`.
fn stock_tag_policy(get: &impl Fn(&str) -> Option<String>) -> Result<StockTagPolicy, ConfigError> {
    match get("STOCK_TAG_POLICY").filter(|v| !v.trim().is_empty()) {
        None => Ok(StockTagPolicy::default()),
        Some(v) => v
            .parse()
            .map_err(|e: crate::tags::UnknownPolicy| ConfigError::Invalid {
                name: "STOCK_TAG_POLICY",
                reason: e.to_string(),
            }),
    }
}

/// Reads `PRODUCTS_TABLE`, `INVENTORY_TABLE` and `SUMMARIES_TABLE`.
pub fn table_names(get: &impl Fn(&str) -> Option<String>) -> Result<TableNames, ConfigError> {
    Ok(TableNames {
        products: required(get, "PRODUCTS_TABLE")?,
        inventory: required(get, "INVENTORY_TABLE")?,
        summaries: required(get, "SUMMARIES_TABLE")?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("PRODUCTS_TABLE", "P"),
        ("INVENTORY_TABLE", "I"),
        ("SUMMARIES_TABLE", "S"),
        ("TAG_QUEUE_URL", "http://q/tags"),
        ("PARKED_RECORDS_QUEUE_URL", "http://q/parked"),
    ];

    #[test]
    fn reads_every_setting() {
        let config = ProjectorConfig::from_lookup(env(FULL)).unwrap();
        assert_eq!(config.tables.summaries, "S");
        assert_eq!(config.stock_tag_policy, StockTagPolicy::Eager);
    }

    #[test]
    fn names_the_missing_or_bad_variable() {
        let err = ProjectorConfig::from_lookup(env(&FULL[1..])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("PRODUCTS_TABLE"));
        assert!(err.to_string().contains("PRODUCTS_TABLE"));
        let mut bad = FULL.to_vec();
        bad.push(("STOCK_TAG_POLICY", "loud"));
        let err = ProjectorConfig::from_lookup(env(&bad)).unwrap_err();
        assert!(err.to_string().contains("STOCK_TAG_POLICY"));
    }
}
