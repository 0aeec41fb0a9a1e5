//! catalog-sync on one machine, with no Docker and no AWS account. Each folder is one idea,
//! and each uses only those listed before it:
//!
//! - [`services`]: DynamoDB Local and the SQS emulator (moto), started or reused.
//! - [`template`]: what template.yaml declares (tables, queues, each function's triggers),
//!   read from the file and nothing else; [`provision`] creates it on the services.
//! - [`emulator`]: what AWS runs around a Lambda function: stream and queue mappings, the
//!   schedule, the HTTP API.
//! - [`layers`]: what makes the functions' DynamoDB as weak as AWS's (lag, held writes) or
//!   worse (throttling).
//! - [`storefront`]: the example Next.js storefront's instances and their proxy.
//! - [`stack`]: all of it wired together, as `Stack::start` with typed `Options`.
//! - [`dev`]: on top of a running stack: demo data, edits, redrive, the metrics report and the
//!   `sam local` environment file; the `catalog-local` CLI (src/bin) is built from these.
//!
//! [`rng`] (seeded draws) and [`shutdown`] (stopping loops) are small helpers any may use.
//! `scripts/import-cycles` checks that no two of these import each other.

pub mod dev;
pub mod emulator;
pub mod layers;
pub mod provision;
pub mod rng;
pub mod services;
pub mod shutdown;
pub mod stack;
pub mod storefront;
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
