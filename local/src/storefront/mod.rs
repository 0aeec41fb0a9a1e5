//! The example storefront (examples/storefront, Next.js 16) as a local service: one or more
//! `next start` instances on free ports, reading the local listing API and either accepting
//! revalidate calls signed with its own key (derived from the local secret) or reading their tags from the tag table.

pub mod opennext;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Result};

use tag_revalidator::signature::AudienceKey;

use crate::services::{self, Service};

/// The storefront's folder.
pub fn dir(root: &Path) -> PathBuf {
    root.join("examples").join("storefront")
}

/// What every instance of the storefront is started with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listing_api: String,
    /// catalog-sync's revalidate secret: each instance is given only its own route's key
    /// derived from it (`REVALIDATE_KEY`), never the secret.
    pub secret: String,
    /// Read tags from the tag table (packages/next-cache-handler) instead of only hearing
    /// revalidate calls.
    pub tag_table: Option<TagTableSettings>,
    /// Run OpenNext's build from this folder (`opennext::prepare`) instead of `next start`.
    pub opennext: Option<PathBuf>,
    /// More environment for every instance.
    pub env: Vec<(String, String)>,
}

/// Where the instances find the tag table.
#[derive(Debug, Clone)]
pub struct TagTableSettings {
    pub table: String,
    pub dynamodb: String,
    /// The storefront's name in the table (the revalidator's `TAG_TABLE_STOREFRONTS`).
    pub storefront: String,
}

/// The name the local stack gives its storefront in the tag table.
pub const LOCAL_STOREFRONT: &str = "local";

/// The revalidate route of the instance on `port`: the URL the revalidator calls, and so the
/// audience the route checks signatures against.
pub fn revalidate_route(port: u16) -> String {
    format!("http://127.0.0.1:{port}/api/revalidate")
}

/// The key the instance on `port` verifies its revalidate calls with.
pub fn revalidate_key(secret: &str, port: u16) -> String {
    AudienceKey::derive(secret.as_bytes(), &revalidate_route(port)).to_hex()
}

/// Starts one instance of the built storefront on `port`. Next.js keeps fetched data in
/// `.next/cache` across restarts, and a page must not outlive the tables it came from, so that
/// cache is emptied first; the tag-table handlers keep theirs in memory. One storefront on
/// Next's default handlers (of any number of instances) runs per checkout at a time; tag-table
/// ones may run beside it.
pub fn start(root: &Path, settings: &Settings, port: u16) -> Result<Service> {
    if let Some(server) = &settings.opennext {
        return opennext::start(root, settings, server, port);
    }
    let dir = dir(root);
    let next = dir.join("node_modules/.bin/next");
    if !next.exists() || !dir.join(".next/BUILD_ID").exists() {
        bail!("the storefront is not built: run scripts/setup (npm ci and next build in {dir:?})");
    }
    if settings.tag_table.is_none() {
        // Next's default handler keeps fetched data on disk; the tag-table handlers do not,
        // and leave another storefront's disk cache alone.
        let _ = std::fs::remove_dir_all(dir.join(".next/cache/fetch-cache"));
    }
    let log = services::log_dir(root)?.join(format!("storefront-{port}.log"));
    let args = vec![
        "start".to_owned(),
        dir.display().to_string(),
        "-H".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
    ];
    let envs = envs(root, settings, port);
    services::start(&next, &args, &envs, port, &log, Duration::from_secs(60))
}

/// What an instance on `port` is started with, either way it runs.
fn envs(root: &Path, settings: &Settings, port: u16) -> Vec<(String, String)> {
    let mut envs = vec![
        ("LISTING_API_URL", settings.listing_api.clone()),
        ("REVALIDATE_KEY", revalidate_key(&settings.secret, port)),
        ("REVALIDATE_AUDIENCE", revalidate_route(port)),
        ("NEXT_TELEMETRY_DISABLED", "1".to_owned()),
        ("PATH", crate::path_with_node(root)),
        ("NODE_ENV", "production".to_owned()),
    ];
    if let Some(tags) = &settings.tag_table {
        envs.extend([
            ("CATALOG_TAG_TABLE", tags.table.clone()),
            ("CATALOG_STOREFRONT", tags.storefront.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", tags.dynamodb.clone()),
            ("AWS_REGION", services::REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "local".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ]);
    }
    envs.into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .chain(settings.env.iter().cloned())
        .collect()
}

/// The running instances of the storefront, each on a fixed port so that the proxy in front
/// finds it again after a restart.
pub struct Fleet {
    root: PathBuf,
    settings: Settings,
    instances: Mutex<Vec<(u16, Option<Service>)>>,
}

impl Fleet {
    /// Starts `count` instances.
    pub fn start(root: &Path, settings: Settings, count: usize) -> Result<Self> {
        let mut instances = Vec::new();
        for _ in 0..count.max(1) {
            let port = services::free_port()?;
            instances.push((port, Some(start(root, &settings, port)?)));
        }
        Ok(Self {
            root: root.to_owned(),
            settings,
            instances: Mutex::new(instances),
        })
    }

    /// Each instance's port, running or not.
    pub fn ports(&self) -> Vec<u16> {
        self.lock().iter().map(|(port, _)| *port).collect()
    }

    /// Each instance's revalidate route.
    pub fn revalidate_routes(&self) -> Vec<String> {
        self.ports().into_iter().map(revalidate_route).collect()
    }

    /// Stops instance `i` at once (killed, as a crashed or scaled-in container; its memory
    /// cache goes with it).
    pub fn stop(&self, i: usize) {
        let (port, service) = {
            let mut instances = self.lock();
            (instances[i].0, instances[i].1.take())
        };
        if let Some(service) = service {
            service.kill();
        }
        // A killed process may hold its port a moment longer; a restart must not mistake it
        // for the new one.
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && start.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts instance `i` again on its port, as a new process. Blocks until it listens.
    pub fn restart(&self, i: usize) -> Result<()> {
        self.stop(i);
        let port = self.lock()[i].0;
        let service = start(&self.root, &self.settings, port)?;
        self.lock()[i].1 = Some(service);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u16, Option<Service>)>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }
}
