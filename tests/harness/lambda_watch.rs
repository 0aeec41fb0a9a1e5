//! The real function binaries under `cargo lambda watch` (cargo-lambda's Lambda Runtime API
//! emulator), invoked with `cargo lambda invoke`: what `sam local invoke` does, without Docker.
//! Each binary's stdout (its log lines and EMF documents) lands in the watcher's log file.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use catalog_local::services::{self, Service};
use serde_json::Value;

use crate::TestEnv;

/// `CARGO_LAMBDA`, else the one scripts/setup installs into tools/.venv.
pub fn cargo_lambda() -> Result<PathBuf> {
    let path = std::env::var_os("CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| catalog_local::workspace_root().join("tools/.venv/bin/cargo-lambda"));
    ensure!(path.exists(), "{path:?} is missing: run scripts/setup");
    Ok(path)
}

/// The environment every function reads, pointed at `env`'s tables and queues and at a
/// storefront at `storefront` that shares `secret`.
pub fn function_env(env: &TestEnv, storefront: &str, secret: &str) -> Vec<(String, String)> {
    let (dynamodb, sqs) = crate::endpoints();
    [
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb),
        ("AWS_ENDPOINT_URL_SQS", &sqs),
        ("PRODUCTS_TABLE", &env.tables.products),
        ("INVENTORY_TABLE", &env.tables.inventory),
        ("SUMMARIES_TABLE", &env.tables.summaries),
        ("TAG_QUEUE_URL", &env.queues.tag_queue),
        ("PARKED_RECORDS_QUEUE_URL", &env.queues.parked_records_queue),
        ("RECONCILE_QUEUE_URL", &env.queues.reconcile_queue),
        ("LISTING_CHECK_QUEUE_URL", &env.queues.listing_check_queue),
        // The template's default, which `sam local` gives too (it resolves parameters to defaults).
        ("RECONCILE_SEGMENTS", "4"),
        ("CURSOR_SECRET", "local-cursor-secret-at-least-16-bytes"),
        ("REVALIDATE_ENDPOINTS", storefront),
        ("REVALIDATE_SECRET", secret),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A running `cargo lambda watch`; stopped on drop.
pub struct LambdaWatch {
    cargo_lambda: PathBuf,
    port: u16,
    log: PathBuf,
    _service: Service,
}

impl LambdaWatch {
    /// Starts the watcher with `vars` as every function's environment. It builds and starts a
    /// binary on its first invocation, and keeps that process for the next ones.
    pub fn start(vars: &[(String, String)]) -> Result<Self> {
        let cargo_lambda = cargo_lambda()?;
        let port = services::free_port()?;
        let mut args: Vec<String> = ["lambda", "watch", "--ignore-changes", "--quiet"]
            .map(str::to_owned)
            .to_vec();
        args.extend(["--invoke-address".into(), "127.0.0.1".into()]);
        args.extend(["--invoke-port".into(), port.to_string()]);
        for (k, v) in vars {
            args.extend(["--env-var".into(), format!("{k}={v}")]);
        }
        let root = catalog_local::workspace_root();
        let log = services::log_dir(&root)?.join(format!("cargo-lambda-watch-{port}.log"));
        // The watcher runs from the workspace root, so it builds the workspace's binaries.
        std::env::set_current_dir(&root)?;
        let service = services::start(
            &cargo_lambda,
            &args,
            &[],
            port,
            &log,
            Duration::from_secs(300),
        )?;
        Ok(Self {
            cargo_lambda,
            port,
            log,
            _service: service,
        })
    }

    /// Invokes `binary` with the sample event `events/{event}` and returns its answer.
    pub fn invoke(&self, binary: &str, event: &str) -> Result<Value> {
        let root = catalog_local::workspace_root();
        let output = Command::new(&self.cargo_lambda)
            .current_dir(&root)
            .args(["lambda", "invoke", binary, "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.port.to_string()])
            .args(["--output-format", "json"])
            .arg("--data-file")
            .arg(root.join("events").join(event))
            .output()
            .context("running cargo lambda invoke")?;
        ensure!(
            output.status.success(),
            "{binary} {event}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "{binary} {event} answered {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Every JSON line the functions have written so far (the watcher's own lines are not JSON).
    pub fn json_lines(&self) -> Result<Vec<Value>> {
        let text = std::fs::read_to_string(&self.log)
            .with_context(|| format!("reading {:?}", self.log))?;
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
            .filter(Value::is_object)
            .collect())
    }
}
