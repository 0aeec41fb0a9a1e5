//! `sam local invoke` and `sam local start-api` for real: the arm64 bootstraps `sam build`
//! left in .aws-sam/build, in Docker (under qemu on an x86 machine), against DynamoDB Local and
//! moto, configured only through the `--env-vars` file the local stack writes
//! (catalog_local::dev::sam_env). Every file in events/ must give the answer it gives on the
//! binaries under `cargo lambda watch` (lambda_binaries.rs), with the same effects.
//!
//! Needs Docker with the base image (scripts/sam-local) and the deployable build
//! (scripts/build-lambdas), so it is ignored by default; scripts/test runs it after the build:
//!   cargo test -p catalog-tests --test integration -- --ignored sam_local:: --nocapture

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use catalog_local::dev::sam_env;
use catalog_local::services::{self, Service};
use catalog_local::stack::Endpoints;
use catalog_tests::sample_events::{check_effects, outcome, seed, CASES};
use catalog_tests::storefront_stub::{self, StorefrontStub};
use catalog_tests::TestEnv;
use serde_json::Value;

const SECRET: &str = "sample-revalidate-secret-of-32-bytes";

fn sam_cli() -> Result<PathBuf> {
    let path = catalog_local::workspace_root().join("tools/.sam-venv/bin/sam");
    ensure!(path.exists(), "{path:?} is missing: run scripts/setup");
    Ok(path)
}

/// Fails early, and says what to run, when Docker or the build is missing.
fn check_prerequisites(root: &Path) -> Result<()> {
    let docker = Command::new("docker").arg("info").output();
    ensure!(
        docker.is_ok_and(|o| o.status.success()),
        "Docker does not answer: run scripts/sam-local (it installs and starts it)"
    );
    let built = root.join(".aws-sam/build/template.yaml");
    ensure!(
        built.exists(),
        "{built:?} is missing: run scripts/build-lambdas"
    );
    Ok(())
}

/// `sam local` pointed at `env`'s tables and queues through the files the local stack writes
/// for its own (catalog_local::dev::sam_env), with the template's two secrets created in moto.
struct SamLocal {
    root: PathBuf,
    env_vars: PathBuf,
    shell: Vec<(&'static str, String)>,
}

impl SamLocal {
    async fn new(env: &TestEnv, revalidate: &str, dir: &Path) -> Result<Self> {
        let (dynamodb, sqs) = catalog_tests::endpoints();
        let secrets_client = aws_sdk_secretsmanager::Client::new(&services::sdk_config(&sqs).await);
        let prefix = format!("{}-", env.tables.summaries);
        let secrets = [
            ("CursorSecret", "local-cursor-secret-at-least-16-bytes"),
            ("RevalidateSecret", SECRET),
        ];
        let endpoints = Endpoints {
            dynamodb,
            sqs,
            listing_api: String::new(),
            storefront: None,
            storefront_instances: Vec::new(),
            revalidate_endpoints: Vec::new(),
            tables: env.resources().tables,
            queues: env.queues.clone(),
            secrets: catalog_local::provision::secrets::create(&secrets_client, &prefix, &secrets)
                .await?,
        };
        let env_vars = dir.join("sam-env.json");
        sam_env::write(&env_vars, &endpoints, &[revalidate.to_owned()])?;
        Ok(Self {
            root: catalog_local::workspace_root(),
            env_vars,
            shell: sam_env::shell_vars(&endpoints),
        })
    }

    /// `sam local <args>` with the flags every command here takes, as the README gives them.
    fn command(&self, args: &[&str]) -> Result<Command> {
        let mut command = Command::new(sam_cli()?);
        command
            .current_dir(&self.root)
            .args(["local"])
            .args(args)
            .arg("--env-vars")
            .arg(&self.env_vars)
            .args([
                "--add-host",
                "host.docker.internal:host-gateway",
                "--skip-pull-image",
                "--invoke-image",
                catalog_local::dev::sam_env::STANDIN_IMAGE,
            ])
            .envs(self.shell.iter().map(|(k, v)| (k, v)));
        Ok(command)
    }

    /// One `sam local invoke`: the function's answer, and the emulator's REPORT figures.
    fn invoke(&self, function: &str, event: &str) -> Result<(Value, Report)> {
        let event_file = format!("events/{event}");
        let output = self
            .command(&["invoke", function, "-e", &event_file])?
            .output()
            .context("running sam local invoke")?;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        // sam exits 0 even when the function failed: the answer is what counts.
        let answer = stdout
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
            .with_context(|| format!("{function} {event}: no JSON answer\n{stdout}\n{stderr}"))?;
        let report = Report::parse(&stderr)
            .with_context(|| format!("{function} {event}: no REPORT line\n{stderr}"))?;
        Ok((answer, report))
    }
}

/// The emulator's REPORT line: `Init Duration: 3.56 ms\tDuration: 528.54 ms\t...`.
#[derive(Debug, Clone, Copy)]
struct Report {
    init_ms: f64,
    duration_ms: f64,
}

impl Report {
    fn parse(stderr: &str) -> Option<Self> {
        let line = stderr.lines().find(|l| l.starts_with("REPORT RequestId"))?;
        let field = |name: &str| -> Option<f64> {
            let rest = line.split(&format!("\t{name}: ")).nth(1)?;
            rest.split(" ms").next()?.trim().parse().ok()
        };
        Some(Self {
            init_ms: field("Init Duration")?,
            duration_ms: field("Duration")?,
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Docker (scripts/sam-local) and sam build (scripts/build-lambdas)"]
async fn every_sample_event_answers_through_sam_local_invoke() -> Result<()> {
    let root = catalog_local::workspace_root();
    check_prerequisites(&root)?;
    catalog_tests::listen_for_containers()?;
    let env = TestEnv::new().await?;
    seed(&env).await?;
    let stub = StorefrontStub::start_for_containers(SECRET).await?;
    let sam = SamLocal::new(&env, &stub.url, &tempdir()?).await?;

    let mut reports = Vec::new();
    for case in CASES {
        let started = Instant::now();
        let (answer, report) = sam.invoke(case.function, case.event)?;
        let got = outcome(case.event, &answer)?;
        println!(
            "sam local invoke {:<26} {:<42} -> {got:<12} in {:>4.1} s; REPORT Init Duration {:.0} ms, Duration {:.0} ms",
            case.function,
            case.event,
            started.elapsed().as_secs_f64(),
            report.init_ms,
            report.duration_ms
        );
        assert_eq!(
            got, case.expected,
            "{} {}: {answer}",
            case.function, case.event
        );
        reports.push((case.function, report));
    }
    check_effects(&env, &stub.tags()).await?;
    report_cold_starts(&reports);

    let api = StartApi::start(&sam)?;
    let page = api.get("/stores/store-7/products").await?;
    ensure!(
        page.starts_with("HTTP/1.1 200") && page.contains("\"p-1002\""),
        "{page}"
    );
    let product = api.get("/products/p-1002").await?;
    ensure!(
        product.starts_with("HTTP/1.1 200") && product.contains("store-7"),
        "{product}"
    );
    let missing = api.get("/products/p-missing").await?;
    ensure!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    Ok(())
}

/// Every invoke is a cold start in a fresh container. Per function, the median of the
/// emulator's Init Duration and of the whole first invoke's Duration (the bootstrap's start
/// under qemu, its SDK set-up and secret read, and the handler), for docs/BENCHMARKS.md.
fn report_cold_starts(reports: &[(&str, Report)]) {
    let mut functions: Vec<&str> = reports.iter().map(|(f, _)| *f).collect();
    functions.dedup();
    let median = |mut ms: Vec<f64>| {
        ms.sort_by(f64::total_cmp);
        ms[ms.len() / 2]
    };
    for function in functions {
        let own: Vec<Report> = reports
            .iter()
            .filter(|(f, _)| *f == function)
            .map(|(_, r)| *r)
            .collect();
        println!(
            "cold start {function:<26} {} invokes: Init Duration median {:.1} ms, Duration median {:.0} ms",
            own.len(),
            median(own.iter().map(|r| r.init_ms).collect()),
            median(own.iter().map(|r| r.duration_ms).collect()),
        );
    }
}

/// `sam local start-api` on a free port, stopped on drop.
struct StartApi {
    base: String,
    _service: Service,
}

impl StartApi {
    fn start(sam: &SamLocal) -> Result<Self> {
        let port = services::free_port()?.to_string();
        let command = sam.command(&["start-api", "--port", &port])?;
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let envs: Vec<(String, String)> = sam
            .shell
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let log = services::log_dir(&sam.root)?.join(format!("sam-start-api-{port}.log"));
        std::env::set_current_dir(&sam.root)?;
        let timeout = Duration::from_secs(120);
        let service = services::start(&sam_cli()?, &args, &envs, port.parse()?, &log, timeout)?;
        Ok(Self {
            base: format!("http://127.0.0.1:{port}"),
            _service: service,
        })
    }

    /// A GET through API Gateway's emulation: the status line, a newline, and the body.
    async fn get(&self, path: &str) -> Result<String> {
        let started = Instant::now();
        let response = storefront_stub::get(&self.base, path).await?;
        println!(
            "sam local start-api GET {path:<26} -> {} in {:.1} s",
            response.lines().next().unwrap_or_default(),
            started.elapsed().as_secs_f64()
        );
        Ok(response)
    }
}

/// A fresh folder under the local logs folder (kept, for a look after a failure).
fn tempdir() -> Result<PathBuf> {
    let dir = services::log_dir(&catalog_local::workspace_root())?
        .join(format!("sam-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
