//! catalog-sync on one machine, with no Docker and no AWS account: the services
//! ([`services`]), the tables and queues of template.yaml ([`template`]) and the triggers it
//! gives each function ([`event_sources`]), emulated: stream mappings ([`stream_mapping`]),
//! queue mappings ([`queue_mapping`]), the schedule ([`schedule`]) and the HTTP API
//! ([`http_api`]), all wired together by [`stack`] (its resources, functions and triggers).

pub mod apigw;
pub mod consistency;
pub mod demo;
pub mod docker_bridge;
pub mod edits;
pub mod event_sources;
pub mod faults;
pub mod function;
pub mod http_api;
pub mod metrics_report;
pub mod provision;
pub mod proxy;
pub mod queue_mapping;
pub mod redrive;
pub mod sam_env;
pub mod schedule;
pub mod secrets;
pub mod services;
pub mod shutdown;
pub mod stack;
pub mod stats;
pub mod storefront;
pub mod stream_mapping;
pub mod streams;
pub mod template;

use std::path::PathBuf;

/// The workspace root: `CATALOG_ROOT`, else the folder above this crate.
pub fn workspace_root() -> PathBuf {
    std::env::var_os("CATALOG_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            root.canonicalize().unwrap_or(root)
        })
}

/// The Node.js that scripts/setup installs (22, the official binaries from npm, under
/// tools/): the storefront, its browser driver and the cache handler's tests run on it rather
/// than on whatever `node` the machine has.
pub fn node(root: &std::path::Path) -> PathBuf {
    root.join("tools/node_modules/.bin/node")
}

/// `PATH` with [`node`]'s folder first, for programs that find `node` through it (`next`'s
/// `#!/usr/bin/env node`).
pub fn path_with_node(root: &std::path::Path) -> String {
    let node = node(root);
    let ours = node.parent().unwrap_or(root);
    let rest = std::env::var("PATH").unwrap_or_default();
    format!("{}:{rest}", ours.display())
}

/// Where the local stack keeps its state and logs: `CATALOG_LOCAL_DIR`, else `.local` under
/// the root (git-ignored).
pub fn local_dir(root: &std::path::Path) -> PathBuf {
    std::env::var_os("CATALOG_LOCAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".local"))
}
