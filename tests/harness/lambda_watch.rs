//! The real function binaries under `cargo lambda watch` (cargo-lambda's Lambda Runtime API
//! emulator), invoked with `cargo lambda invoke`: what `sam local invoke` does, without Docker.
//! Each binary's stdout (its log lines and EMF documents) lands in the watcher's log file.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
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
/// storefront at `storefront` that shares `secret`. The resource variables are the ones
/// `Resources::environment` gives `sam local` and scripts/dev, so a variable a function starts
/// to require reaches these runs too; the tag table is left out (these tests do not create it,
/// and the revalidator would write it as well as call the storefront).
pub fn function_env(env: &TestEnv, storefront: &str, secret: &str) -> Vec<(String, String)> {
    let (dynamodb, sqs) = crate::endpoints();
    let resources = env
        .resources()
        .environment()
        .into_iter()
        .filter(|(var, _)| *var != "TAG_TABLE");
    [
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb),
        ("AWS_ENDPOINT_URL_SQS", sqs),
        // The template's default, which `sam local` gives too (it resolves parameters to defaults).
        ("RECONCILE_SEGMENTS", "4".to_owned()),
        (
            "CURSOR_SECRET",
            "local-cursor-secret-at-least-16-bytes".to_owned(),
        ),
        ("REVALIDATE_ENDPOINTS", storefront.to_owned()),
        ("REVALIDATE_ALLOW_HTTP", "true".to_owned()),
        ("REVALIDATE_SECRET", secret.to_owned()),
    ]
    .into_iter()
    .chain(resources)
    .map(|(k, v)| (k.to_owned(), v))
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

    /// Invokes `binary` with the sample event `events/{event}` and returns its answer. A
    /// function that exits (a missing variable, a panic in init) leaves `cargo lambda invoke`
    /// waiting for an answer that never comes, so the watcher's log is checked while it waits.
    pub fn invoke(&self, binary: &str, event: &str) -> Result<Value> {
        let root = catalog_local::workspace_root();
        let log_before = self.log_text()?.len();
        let mut child = Command::new(&self.cargo_lambda)
            .current_dir(&root)
            .args(["lambda", "invoke", binary, "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.port.to_string()])
            .args(["--output-format", "json"])
            .arg("--data-file")
            .arg(root.join("events").join(event))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running cargo lambda invoke")?;
        while child.try_wait()?.is_none() {
            let log = self.log_text()?;
            let since = log.get(log_before..).unwrap_or_default();
            if since.contains("command exited") {
                let _ = child.kill();
                bail!("{binary} {event}: the function exited; the watcher logged:\n{since}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = child.wait_with_output()?;
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

    fn log_text(&self) -> Result<String> {
        std::fs::read_to_string(&self.log).with_context(|| format!("reading {:?}", self.log))
    }

    /// Every JSON line the functions have written so far (the watcher's own lines are not JSON).
    pub fn json_lines(&self) -> Result<Vec<Value>> {
        Ok(self
            .log_text()?
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
            .filter(Value::is_object)
            .collect())
    }
}
