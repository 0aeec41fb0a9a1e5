//! Cold-start init time of each function: from exec to the binary's first request for an
//! event on a minimal local Runtime API (what Lambda reports as Init Duration, less the
//! sandbox's own start). Host builds with the release profile the bootstraps use: the arm64
//! bootstraps themselves cannot run on this machine.
//!
//! ```text
//! cargo build --release -p summary-projector -p listing-api -p reconciler -p tag-revalidator
//! cargo run --profile bench-fast -p bench -- init [--against DIR]
//! ```

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::Flags;

const FUNCTIONS: [&str; 4] = [
    "summary-projector",
    "listing-api",
    "reconciler",
    "tag-revalidator",
];

pub async fn run(flags: &Flags) -> Result<()> {
    let runs: usize = flags.get("runs", 20)?;
    let dir = catalog_local::workspace_root().join("target/release");
    // `--against DIR`: the same four binaries from another build (say, the last commit's),
    // cold-started alternately with these, so a change is measured side by side.
    let against: Option<PathBuf> = flags
        .get("against", String::new())
        .map(|d| (!d.is_empty()).then(|| PathBuf::from(d)))?;
    println!("init benchmark: exec to first GET /runtime/invocation/next, host build (release profile), {runs} cold starts each");
    for function in FUNCTIONS {
        let binary = dir.join(function);
        ensure!(
            binary.exists(),
            "{binary:?} missing: cargo build --release -p {function}"
        );
        let other = against.as_ref().map(|d| d.join(function));
        let (mut samples, mut others) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
        for _ in 0..runs {
            samples.push(cold_start(&binary)?);
            if let Some(other) = &other {
                others.push(cold_start(other)?);
            }
        }
        let (p50, max) = summary(&mut samples);
        print!("  {function:<18} p50 {p50:>6.1} ms   max {max:>6.1} ms");
        if !others.is_empty() {
            let (other_p50, other_max) = summary(&mut others);
            print!(
                "   against: p50 {other_p50:>6.1} ms   max {other_max:>6.1} ms   ratio p50 {:.2}",
                p50 / other_p50
            );
        }
        println!();
    }
    Ok(())
}

/// p50 and max, in milliseconds.
fn summary(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() - 1]),
    )
}

fn cold_start(binary: &std::path::Path) -> Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let api = listener.local_addr()?.to_string();
    let start = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", "init-bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "init-bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "init-bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("PRODUCTS_TABLE", "Products")
        .env("INVENTORY_TABLE", "Inventory")
        .env("SUMMARIES_TABLE", "Summaries")
        .env("TAG_QUEUE_URL", "http://127.0.0.1:1/tags")
        .env("TAG_RETRY_QUEUE_URL", "http://127.0.0.1:1/tag-retries")
        .env("PARKED_RECORDS_QUEUE_URL", "http://127.0.0.1:1/parked")
        .env("RECONCILE_QUEUE_URL", "http://127.0.0.1:1/reconcile")
        .env("RECONCILE_PROGRESS_TABLE", "ReconcileProgress")
        .env(
            "LISTING_CHECK_QUEUE_URL",
            "http://127.0.0.1:1/listing-checks",
        )
        .env("CURSOR_SECRET", "init-bench-cursor-secret-0123456789")
        .env("REVALIDATE_ENDPOINTS", "http://127.0.0.1:1/api/revalidate")
        .env("REVALIDATE_ALLOW_HTTP", "true")
        .env(
            "REVALIDATE_SECRET",
            "init-bench-revalidate-secret-of-32-bytes",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {binary:?}"))?;
    // The first connection is the runtime asking for its first event: init is over. A binary
    // that exits first (a variable it now requires) would leave a blocking accept waiting.
    listener.set_nonblocking(true)?;
    let accepted = loop {
        match listener.accept() {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => break other,
        }
        if let Some(status) = child.try_wait()? {
            bail!("{binary:?} exited ({status}) before asking for an event");
        }
        std::thread::sleep(Duration::from_micros(200));
    };
    let took = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    accepted.context("the function never asked for an event")?;
    Ok(took)
}
