//! The storefront as OpenNext builds it for Lambda, run locally: OpenNext's node wrapper and
//! converter, its file-system incremental cache, and catalog-sync's tag cache on the local tag
//! table (examples/storefront/open-next.config.ts, built with `CATALOG_OPENNEXT_LOCAL=1` by
//! scripts/setup).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

use super::Settings;
use crate::services::{self, Service};

/// Copies the build's server and its prerendered cache into a folder of this stack's own, where
/// its instances share the file-system cache as Lambda instances share S3, and returns the
/// server's folder. The server keeps the cache at `../../cache` from its own folder (as in
/// `.open-next`), so each stack needs its own copy of both: a cache left by another run would
/// hold stamps of another tag table.
pub fn prepare(root: &Path, prefix: &str) -> Result<PathBuf> {
    let build = super::dir(root).join(".open-next");
    let server = build.join("server-functions/default");
    if !server.join("index.mjs").exists() {
        bail!("the storefront's OpenNext build is missing: run scripts/setup (open-next build in {build:?})");
    }
    let run =
        crate::local_dir(root)
            .join("opennext")
            .join(format!("{}{}", prefix, std::process::id()));
    if run.exists() {
        std::fs::remove_dir_all(&run).with_context(|| format!("emptying {run:?}"))?;
    }
    let run_server = run.join("server-functions/default");
    std::fs::create_dir_all(run_server.parent().context("a folder under the run")?)?;
    copy(&server, &run_server)?;
    copy(&build.join("cache"), &run.join("cache"))?;
    Ok(run_server)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .context("running cp")?;
    ensure!(status.success(), "copying {from:?} to {to:?} failed");
    Ok(())
}

/// Starts one instance of the server copied to `server` on `port`.
pub fn start(root: &Path, settings: &Settings, server: &Path, port: u16) -> Result<Service> {
    ensure!(
        settings.tag_table.is_some(),
        "OpenNext's build reads its tags from the tag table: it needs the tag table's settings"
    );
    let log = services::log_dir(root)?.join(format!("storefront-opennext-{port}.log"));
    let args = vec![server.join("index.mjs").display().to_string()];
    let mut envs = super::envs(root, settings, port);
    envs.push(("PORT".to_owned(), port.to_string()));
    envs.push(("CATALOG_OPENNEXT_CACHE".to_owned(), "fs".to_owned()));
    services::start(
        &crate::node(root),
        &args,
        &envs,
        port,
        &log,
        Duration::from_secs(60),
    )
}
