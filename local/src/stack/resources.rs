//! What template.yaml declares, created under a prefix: the tables, the queues (each a
//! named field, so a missing one is a compile error, not a panic at `queues.tag_queue`),
//! and the secrets. Also each function's configuration, read from these as Lambda reads its
//! environment.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, Result};
use catalog::config::{ProjectorConfig, ReconcilerConfig};
use catalog::store::TableNames;
use catalog_core::tags::StockTagPolicy;
use serde::{Deserialize, Serialize};

/// The queues of template.yaml, by logical id (the serialized names are the logical ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Queues {
    pub tag_queue: String,
    pub tag_retry_queue: String,
    pub tag_dead_letter_queue: String,
    pub parked_records_queue: String,
    pub stream_failure_queue: String,
    pub reconcile_queue: String,
    pub reconcile_dead_letter_queue: String,
    pub listing_check_queue: String,
    pub listing_check_dead_letter_queue: String,
}

impl Queues {
    /// Every queue as (logical id, URL), in template order.
    pub fn all(&self) -> [(&'static str, &str); 9] {
        [
            ("TagQueue", &self.tag_queue),
            ("TagRetryQueue", &self.tag_retry_queue),
            ("TagDeadLetterQueue", &self.tag_dead_letter_queue),
            ("ParkedRecordsQueue", &self.parked_records_queue),
            ("StreamFailureQueue", &self.stream_failure_queue),
            ("ReconcileQueue", &self.reconcile_queue),
            (
                "ReconcileDeadLetterQueue",
                &self.reconcile_dead_letter_queue,
            ),
            ("ListingCheckQueue", &self.listing_check_queue),
            (
                "ListingCheckDeadLetterQueue",
                &self.listing_check_dead_letter_queue,
            ),
        ]
    }

    /// The URL of the queue with this logical id (as an event source names it).
    pub fn url(&self, logical: &str) -> Result<&str> {
        self.all()
            .into_iter()
            .find(|(id, _)| *id == logical)
            .map(|(_, url)| url)
            .ok_or_else(|| anyhow!("template.yaml has no queue {logical}"))
    }

    /// The queues `create_queues` made (logical id -> URL); every one the stack knows must be
    /// there, and no other.
    pub fn from_created(urls: HashMap<String, String>) -> Result<Self> {
        let urls = serde_json::to_value(urls)?;
        serde_json::from_value(urls).map_err(|e| {
            anyhow!("template.yaml's queues are not the ones the local stack knows: {e}")
        })
    }
}

/// Every table template.yaml declares, named under one prefix (on AWS, CloudFormation names
/// them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tables {
    /// The three every function reads (`PRODUCTS_TABLE`, `INVENTORY_TABLE`,
    /// `SUMMARIES_TABLE`).
    #[serde(flatten)]
    pub catalog: TableNames,
    /// The shared tag table (`TagTable`).
    pub tags: String,
    /// The reconciler's segment steps (`ReconcileProgressTable`).
    pub progress: String,
}

impl Tables {
    /// The names under `prefix`.
    pub fn under(prefix: &str) -> Self {
        Self {
            catalog: TableNames {
                products: format!("{prefix}Products"),
                inventory: format!("{prefix}Inventory"),
                summaries: format!("{prefix}Summaries"),
            },
            tags: format!("{prefix}Tags"),
            progress: format!("{prefix}ReconcileProgress"),
        }
    }

    /// Every table as (logical id in template.yaml, name).
    pub fn by_logical_id(&self) -> [(&'static str, &str); 5] {
        [
            ("ProductsTable", &self.catalog.products),
            ("InventoryTable", &self.catalog.inventory),
            ("SummariesTable", &self.catalog.summaries),
            ("TagTable", &self.tags),
            ("ReconcileProgressTable", &self.progress),
        ]
    }
}

/// The tables, queues and secrets of one stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub tables: Tables,
    pub queues: Queues,
    /// Logical id (`CursorSecret`, `RevalidateSecret`) -> ARN in the emulator's Secrets
    /// Manager.
    pub secrets: BTreeMap<String, String>,
}

impl Resources {
    /// What a `!Ref` to each resource gives a function on AWS, by the variable template.yaml
    /// sets it in: table names, queue URLs and the ARNs of the secrets created.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PRODUCTS_TABLE", self.tables.catalog.products.clone()),
            ("INVENTORY_TABLE", self.tables.catalog.inventory.clone()),
            ("SUMMARIES_TABLE", self.tables.catalog.summaries.clone()),
            ("TAG_TABLE", self.tables.tags.clone()),
            ("RECONCILE_PROGRESS_TABLE", self.tables.progress.clone()),
            ("TAG_QUEUE_URL", self.queues.tag_queue.clone()),
            ("TAG_RETRY_QUEUE_URL", self.queues.tag_retry_queue.clone()),
            (
                "PARKED_RECORDS_QUEUE_URL",
                self.queues.parked_records_queue.clone(),
            ),
            ("RECONCILE_QUEUE_URL", self.queues.reconcile_queue.clone()),
            (
                "LISTING_CHECK_QUEUE_URL",
                self.queues.listing_check_queue.clone(),
            ),
        ];
        for (var, logical) in [
            ("CURSOR_SECRET_ARN", "CursorSecret"),
            ("REVALIDATE_SECRET_ARN", "RevalidateSecret"),
        ] {
            if let Some(arn) = self.secrets.get(logical) {
                env.push((var, arn.clone()));
            }
        }
        env
    }

    /// [`environment`](Self::environment) with the template's parameters set.
    fn environment_with(
        &self,
        policy: StockTagPolicy,
        segments: u32,
    ) -> HashMap<&'static str, String> {
        let mut env: HashMap<_, _> = self.environment().into_iter().collect();
        env.insert("STOCK_TAG_POLICY", policy.as_str().to_owned());
        env.insert("RECONCILE_SEGMENTS", segments.to_string());
        env
    }

    /// The summary-projector's configuration, read through its own `from_lookup`.
    pub fn projector_config(&self, policy: StockTagPolicy) -> Result<ProjectorConfig> {
        let env = self.environment_with(policy, 1);
        Ok(ProjectorConfig::from_lookup(|k| env.get(k).cloned())?)
    }

    /// The reconciler's configuration with `segments` Scan segments a run.
    pub fn reconciler_config(
        &self,
        policy: StockTagPolicy,
        segments: u32,
    ) -> Result<ReconcilerConfig> {
        let env = self.environment_with(policy, segments);
        Ok(ReconcilerConfig::from_lookup(|k| env.get(k).cloned())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(ids: &[&str]) -> HashMap<String, String> {
        ids.iter()
            .map(|id| (id.to_string(), format!("http://q/{id}")))
            .collect()
    }

    #[test]
    fn the_template_queues_are_exactly_the_known_ones() {
        let known = [
            "TagQueue",
            "TagRetryQueue",
            "TagDeadLetterQueue",
            "ParkedRecordsQueue",
            "StreamFailureQueue",
            "ReconcileQueue",
            "ReconcileDeadLetterQueue",
            "ListingCheckQueue",
            "ListingCheckDeadLetterQueue",
        ];
        let queues = Queues::from_created(created(&known)).unwrap();
        assert_eq!(
            queues.url("ReconcileQueue").unwrap(),
            "http://q/ReconcileQueue"
        );
        assert_eq!(queues.all().map(|(id, _)| id), known);
        let missing = Queues::from_created(created(&known[1..])).unwrap_err();
        assert!(missing.to_string().contains("TagQueue"), "{missing}");
        let extra = Queues::from_created(created(&[&known[..], &["NewQueue"]].concat()));
        assert!(extra.unwrap_err().to_string().contains("NewQueue"));
    }
}
