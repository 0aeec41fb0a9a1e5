//! The example storefront (examples/storefront, Next.js 16) as a local service: `next start`
//! on a free port, reading the local listing API and accepting revalidate calls signed with
//! the local secret.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::services::{self, Service};

/// The storefront's folder.
pub fn dir(root: &Path) -> PathBuf {
    root.join("examples").join("storefront")
}

/// Starts the built storefront. Its data cache is emptied first: Next.js keeps fetched data in
/// `.next/cache` across restarts, and a page must not outlive the tables it came from. One
/// storefront runs per checkout at a time.
pub fn start(root: &Path, listing_api: &str, secret: &str) -> Result<(Service, String)> {
    let dir = dir(root);
    let next = dir.join("node_modules/.bin/next");
    if !next.exists() || !dir.join(".next/BUILD_ID").exists() {
        bail!("the storefront is not built: run scripts/setup (npm ci and next build in {dir:?})");
    }
    let _ = std::fs::remove_dir_all(dir.join(".next/cache/fetch-cache"));
    let port = services::free_port()?;
    let log = services::log_dir(root)?.join(format!("storefront-{port}.log"));
    let args = vec![
        "start".to_owned(),
        dir.display().to_string(),
        "-H".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
    ];
    // The URL the revalidator calls is the audience the route checks signatures against.
    let revalidate = format!("http://127.0.0.1:{port}/api/revalidate");
    let envs = vec![
        ("LISTING_API_URL".to_owned(), listing_api.to_owned()),
        ("REVALIDATE_SECRET".to_owned(), secret.to_owned()),
        ("REVALIDATE_AUDIENCE".to_owned(), revalidate.clone()),
        ("NEXT_TELEMETRY_DISABLED".to_owned(), "1".to_owned()),
        ("NODE_ENV".to_owned(), "production".to_owned()),
    ];
    let service = services::start(&next, &args, &envs, port, &log, Duration::from_secs(60))?;
    Ok((service, revalidate))
}
