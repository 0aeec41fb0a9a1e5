//! catalog-sync on one machine, with no Docker and no AWS account: the services
//! ([`services`]), the tables and queues of template.yaml ([`template`]), and DynamoDB
//! Streams read into the exact event Lambda would send ([`streams`]).

pub mod apigw;
pub mod services;
pub mod streams;
pub mod template;

use std::path::PathBuf;

/// The workspace root: `CATALOG_ROOT`, else the folder above this crate.
pub fn workspace_root() -> PathBuf {
    std::env::var_os("CATALOG_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}
