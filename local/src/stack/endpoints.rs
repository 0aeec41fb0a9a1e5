//! Where a running stack is: written to `.local/stack.json` for the CLI and the tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::resources::{Queues, Resources, Tables};
use crate::services;

/// Where everything is, written to `.local/stack.json` for the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    pub dynamodb: String,
    pub sqs: String,
    pub listing_api: String,
    /// The example storefront, when started (the proxy, with several instances).
    pub storefront: Option<String>,
    /// Each storefront instance, when there are several.
    #[serde(default)]
    pub storefront_instances: Vec<String>,
    /// Where the tag-revalidator sends tags.
    pub revalidate_endpoints: Vec<String>,
    pub tables: Tables,
    /// The queues, by logical id as in template.yaml.
    pub queues: Queues,
    /// Logical id (`CursorSecret`, `RevalidateSecret`) -> ARN in the emulator's Secrets
    /// Manager, holding the local values.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

impl Endpoints {
    /// The file the running stack writes and the CLI reads.
    pub fn path(root: &Path) -> PathBuf {
        crate::local_dir(root).join("stack.json")
    }

    /// Reads the running stack's endpoints.
    pub fn read(root: &Path) -> Result<Self> {
        let path = Self::path(root);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{path:?} is missing: start the stack first (scripts/dev)"))?;
        serde_json::from_str(&text).with_context(|| format!("reading {path:?}"))
    }

    /// The tables, queues and secrets, as the functions' configuration reads them.
    pub fn resources(&self) -> Resources {
        Resources {
            tables: self.tables.clone(),
            queues: self.queues.clone(),
            secrets: self.secrets.clone(),
        }
    }

    /// Clients for these endpoints.
    pub async fn clients(&self) -> (aws_sdk_dynamodb::Client, aws_sdk_sqs::Client) {
        (
            aws_sdk_dynamodb::Client::new(&services::sdk_config(&self.dynamodb).await),
            aws_sdk_sqs::Client::new(&services::sdk_config(&self.sqs).await),
        )
    }
}
