//! The local stack (catalog-local) end to end: real stream polling, the real projector behind
//! the emulated event source mappings, the tag queue, the listing API over HTTP, and the
//! `catalog-local` binary and CLI as the README runs them.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use catalog_core::ids::{LocationId, ProductId};
use catalog_core::model::MinorUnits;
use catalog_core::testing::product;
use catalog_local::dev::edits::Editor;
use catalog_local::emulator::function::{Function, FunctionError, Invocation};
use catalog_local::stack::{queue_depth, Options, Stack, Wrap};
use catalog_tests::eventually::within;
use catalog_tests::Inspect;
use serde_json::{json, Value};

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A stack on the test binary's shared services, under a prefix of its own.
async fn stack(wrap: Option<Wrap>) -> Result<Stack> {
    let (dynamodb, sqs) = catalog_tests::endpoints();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Stack::start(
        &catalog_local::workspace_root(),
        Options {
            prefix: format!("ls{}-{n}-", std::process::id()),
            wrap_projector: wrap,
            endpoints: Some((dynamodb, sqs)),
            ..Options::default()
        },
    )
    .await
}

fn editor(stack: &Stack) -> Editor {
    Editor::new(
        stack.dynamodb.clone(),
        stack.endpoints.tables.catalog.clone(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stock_change_reaches_the_summary_and_the_tag_queue() -> Result<()> {
    let stack = stack(None).await?;
    let edit = editor(&stack);
    edit.put_product(product("p1", "s1")).await?;
    let (p1, l1) = (ProductId::parse("p1")?, LocationId::parse("l1")?);
    edit.set_stock(&p1, &l1, 5, None).await?;
    stock_shows(&stack, "p1", 5).await?;
    // Once the create's and the first stock row's records are handled, their tags are
    // queued (all at once: DynamoDB Local's indexes never lag); drain them, then expect
    // exactly the stock change's tags.
    within(Duration::from_secs(10))
        .holds(async || {
            let triggers = stack.status().await?.triggers;
            let handled = (
                triggers["ProductsStream"].records,
                triggers["InventoryStream"].records,
            );
            ensure!(handled == (1, 1), "records handled: {handled:?}");
            Ok(())
        })
        .await?;
    stack.tag_messages().await?;

    edit.set_stock(&p1, &l1, 9, None).await?;
    stock_shows(&stack, "p1", 9).await?;
    let tags = tags_until(&stack, "inventory:p1").await?;
    // Eager stock policy: the listing shows stock, so the store page is invalidated too, at
    // once: the index already showed the write, so no listing check waits.
    assert_eq!(tags, ["inventory:p1", "store:s1:products"]);
    assert!(stack.queue_empty("ListingCheckQueue").await?);
    stack.assert_converged("p1").await?;

    let status = stack.status().await?;
    assert_eq!(status.triggers["ProductsStream"].records, 1);
    assert_eq!(status.triggers["InventoryStream"].records, 2);
    assert_eq!(status.triggers["InventoryStream"].retries, 0);
    stack.stop().await
}

/// Waits (at most 10 s) until `id`'s summary shows `available` in stock.
async fn stock_shows(stack: &Stack, id: &str, available: u64) -> Result<()> {
    within(Duration::from_secs(10))
        .holds(async || {
            let shown = stack.summary(id).await?.and_then(|s| s.inventory_available);
            ensure!(shown == Some(available), "{id} shows {shown:?} in stock");
            Ok(())
        })
        .await
}

/// The tags drained from the tag queue, in order, until they hold `tag` (at most 10 s).
async fn tags_until(stack: &Stack, tag: &str) -> Result<Vec<String>> {
    let mut tags = Vec::new();
    within(Duration::from_secs(10))
        .holds(async || {
            let messages = stack.tag_messages().await?;
            tags.extend(messages.iter().flat_map(|m| &m.tags).map(|t| t.to_string()));
            ensure!(tags.iter().any(|t| t == tag), "no {tag} in {tags:?}");
            Ok(())
        })
        .await?;
    Ok(tags)
}

/// How the wrapper below fails the projector, once.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    /// Handle the first half of the first batch of 4+ records, report the rest failed.
    PartialBatch,
    /// Fail the whole first batch of 4+ records with a function error.
    FunctionError,
}

/// Per stream ARN, the (sequence number, product id) of each record the real handler got.
type Handled = Arc<Mutex<BTreeMap<String, Vec<(String, String)>>>>;

/// The real projector, made to fail one batch on purpose; records every sequence number it
/// lets through to the real handler, per stream.
struct Faulty {
    inner: Arc<dyn Function>,
    fault: Fault,
    fired: Mutex<bool>,
    handled: Handled,
}

impl Function for Faulty {
    fn invoke(&self, event: Value) -> Invocation<'_> {
        Box::pin(async move {
            let records = event["Records"].as_array().cloned().unwrap_or_default();
            let fire =
                records.len() >= 4 && !std::mem::replace(&mut *self.fired.lock().unwrap(), true);
            let (pass, failed_from) = match (fire, self.fault) {
                (false, _) => (records.clone(), None),
                (true, Fault::FunctionError) => {
                    return Err(FunctionError("injected function error".into()))
                }
                (true, Fault::PartialBatch) => {
                    let half = records.len() / 2;
                    (records[..half].to_vec(), Some(records[half].clone()))
                }
            };
            let answer = self.inner.invoke(json!({ "Records": pass })).await?;
            {
                let mut handled = self.handled.lock().unwrap();
                for r in &pass {
                    let stream = r["eventSourceARN"].as_str().unwrap_or_default().to_owned();
                    let seq = r["dynamodb"]["SequenceNumber"].as_str().unwrap_or_default();
                    let key = r["dynamodb"]["Keys"]["productId"]["S"]
                        .as_str()
                        .unwrap_or_default();
                    handled
                        .entry(stream)
                        .or_default()
                        .push((seq.to_owned(), key.to_owned()));
                }
            }
            match failed_from {
                None => Ok(answer),
                Some(first) => Ok(json!({"batchItemFailures": [
                    {"itemIdentifier": first["dynamodb"]["SequenceNumber"]}
                ]})),
            }
        })
    }
}

async fn retried_without_loss(fault: Fault) -> Result<()> {
    let handled: Handled = Arc::new(Mutex::new(BTreeMap::new()));
    let wrap: Wrap = {
        let handled = handled.clone();
        Arc::new(move |inner| {
            Arc::new(Faulty {
                inner,
                fault,
                fired: Mutex::new(false),
                handled: handled.clone(),
            }) as Arc<dyn Function>
        })
    };
    let mut options_stack = stack(Some(wrap)).await?;
    let stack = &mut options_stack;
    let edit = editor(stack);
    // Writes land faster than a poll, so the stream hands over batches of several records.
    let ids = ["p1", "p2", "p3"];
    for id in ids {
        edit.put_product(product(id, "s1")).await?;
    }
    for round in 1..=6u64 {
        for id in ids {
            edit.set_price(&ProductId::parse(id)?, MinorUnits::new(1000 + round)?)
                .await?;
        }
    }
    let written = 3 + 18;
    within(Duration::from_secs(20))
        .holds(async || {
            let handled = stack.status().await?.triggers["ProductsStream"].records;
            ensure!(handled == written, "{handled} of {written} records handled");
            Ok(())
        })
        .await?;
    for id in ids {
        let s = stack.summary(id).await?.context("a summary")?;
        assert_eq!(s.price.get(), 1006, "{id} ends at its last price");
        assert_eq!(Some(s), stack.expected(id).await?);
    }
    let status = stack.status().await?;
    let products = status.triggers["ProductsStream"];
    assert!(
        products.retries >= 1,
        "the failed batch was retried: {products:?}"
    );
    assert_eq!(products.given_up, 0);
    if fault == Fault::FunctionError {
        assert_eq!(products.errors, 1);
    }
    // Every record reached the real handler exactly once, in stream order: nothing lost,
    // nothing repeated, nothing reordered.
    let handled = handled.lock().unwrap().clone();
    let seqs: Vec<&(String, String)> = handled.values().flatten().collect();
    assert_eq!(seqs.len() as u64, written, "{handled:?}");
    for records in handled.values() {
        for pair in records.windows(2) {
            ensure!(
                catalog_core::stream::sequence_cmp(&pair[0].0, &pair[1].0).is_lt(),
                "out of order or repeated: {pair:?}"
            );
        }
    }
    ensure!(queue_depth(&stack.sqs, &stack.endpoints.queues.stream_failure_queue).await? == 0);
    options_stack.stop().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_partial_batch_failure_is_retried_from_the_failed_record() -> Result<()> {
    retried_without_loss(Fault::PartialBatch).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_error_is_bisected_and_retried() -> Result<()> {
    retried_without_loss(Fault::FunctionError).await
}

/// A `catalog-local` process in a process group of its own, stopped as Ctrl-C in a terminal
/// stops it: SIGINT to the whole group.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

fn catalog_local(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(catalog_local::workspace_root())
        .args(["run", "-q", "-p", "catalog-local", "--"])
        .args(args)
        .env("CATALOG_LOCAL_DIR", dir)
        .env_remove("DYNAMODB_ENDPOINT")
        .env_remove("SQS_ENDPOINT");
    command
}

/// Nothing the stack started accepts connections from the developer's network: its
/// emulators answer anyone, unsigned. Containers (`sam local`) get in through the Docker
/// bridge, where Docker runs.
fn only_loopback_and_the_docker_bridge_listen(stack: &Running) -> Result<()> {
    let bridge = catalog_local::services::docker_bridge::address().ok();
    let addresses = catalog_tests::listening::listening(stack.0.id().try_into()?)?;
    // DynamoDB Local, moto and the listing API at least.
    ensure!(
        addresses.len() >= 3,
        "too few listening sockets found: {addresses:?}"
    );
    let allowed = |a: &std::net::SocketAddr| {
        let ip = a.ip().to_canonical();
        ip.is_loopback() || Some(ip) == bridge
    };
    let outside: Vec<_> = addresses.iter().filter(|a| !allowed(a)).collect();
    ensure!(
        outside.is_empty(),
        "listening beyond loopback and the Docker bridge: {outside:?}"
    );
    if let Some(bridge) = bridge {
        let for_containers = addresses.iter().filter(|a| a.ip() == bridge).count();
        ensure!(
            for_containers >= 2,
            "DynamoDB Local and moto not on the bridge: {addresses:?}"
        );
    }
    Ok(())
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_run_command_and_the_cli_work_together() -> Result<()> {
    let cli = Cli::new()?;
    let running = cli.up().await?;
    a_stock_change_through_the_cli_shows_in_its_summary(&cli).await?;
    listings_take_the_merchandising_options(&cli)?;
    // 20 products + 60 stock rows from the demo loader, then the CLI's stock change.
    cli.screen_shows("records 81 (products 20, inventory 61)")
        .await?;
    the_telemetry_has_its_lambda_shapes(&cli)?;
    the_sam_local_files_point_at_the_containers_view(&cli)?;
    only_loopback_and_the_docker_bridge_listen(&running)?;
    drop(running);
    let log = read(&cli.dir.join("up.out"));
    assert!(log.contains("stopped."), "no clean stop: {log}");
    for file in ["stack.json", "sam-env.json", "sam-env.sh"] {
        assert!(!cli.dir.join(file).exists(), "{file} outlived the stack");
    }
    Ok(())
}

/// `catalog-local` as a developer runs it, in a state folder of its own.
struct Cli {
    dir: std::path::PathBuf,
}

impl Cli {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("catalog-local-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// `up` with a small demo catalog, once it says it is ready.
    async fn up(&self) -> Result<Running> {
        use std::os::unix::process::CommandExt;
        let (out, err) = (self.dir.join("up.out"), self.dir.join("up.err"));
        let child = catalog_local(&self.dir, &["up", "--products", "20", "--stores", "2"])
            .process_group(0)
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&err)?)
            .stdin(Stdio::null())
            .spawn()?;
        let running = Running(child);
        within(Duration::from_secs(180))
            .every(Duration::from_millis(200))
            .holds(async || {
                let (shown, err) = (read(&out), read(&err));
                ensure!(
                    shown.contains("ready"),
                    "the stack did not start: {shown}\n{err}"
                );
                Ok(())
            })
            .await?;
        Ok(running)
    }

    /// A command's stdout; its stderr is the error when it fails.
    fn run(&self, args: &[&str]) -> Result<String> {
        let output = catalog_local(&self.dir, args).output()?;
        ensure!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8(output.stdout)?)
    }

    fn json(&self, args: &[&str]) -> Result<Value> {
        Ok(serde_json::from_str(&self.run(args)?)?)
    }

    /// Waits (at most 10 s) until `up`'s status screen shows `text`.
    async fn screen_shows(&self, text: &str) -> Result<()> {
        within(Duration::from_secs(10))
            .every(Duration::from_millis(200))
            .holds(async || {
                let shown = read(&self.dir.join("up.out"));
                ensure!(
                    shown.contains(text),
                    "the status screen never showed {text}: {shown}"
                );
                Ok(())
            })
            .await
    }
}

async fn a_stock_change_through_the_cli_shows_in_its_summary(cli: &Cli) -> Result<()> {
    cli.run(&["stock", "p-00003", "loc-2", "500"])?;
    let summary = within(Duration::from_secs(30))
        .every(Duration::from_millis(200))
        .holds(async || {
            let summary = cli.json(&["summary", "p-00003"])?;
            let stock = &summary["inventoryAvailable"];
            ensure!(
                stock.as_u64() >= Some(500),
                "summary shows {stock} in stock"
            );
            Ok(summary)
        })
        .await?;
    assert_eq!(summary["productId"], "p-00003");
    Ok(())
}

/// The merchandising options reach the API: cheapest first, in stock, within a range; and a
/// combination no index answers comes back as the API's refusal.
fn listings_take_the_merchandising_options(cli: &Cli) -> Result<()> {
    let listing = cli.json(&["list", "store-2", "--limit", "5"])?;
    assert!(listing["items"].as_array().is_some_and(|i| !i.is_empty()));
    let cheap = cli.json(&[
        "list",
        "store-2",
        "--sort",
        "price_asc",
        "--in-stock",
        "--max-price",
        "10000",
    ])?;
    let items = cheap["items"].as_array().context("items")?;
    let prices: Vec<u64> = items.iter().filter_map(|i| i["price"].as_u64()).collect();
    ensure!(!prices.is_empty() && prices.is_sorted() && prices.iter().all(|p| *p <= 10_000));
    ensure!(items
        .iter()
        .all(|i| i["inventoryAvailable"].as_u64() != Some(0)));
    let refused = cli
        .run(&["list", "store-2", "--min-price", "100"])
        .unwrap_err();
    ensure!(
        refused
            .to_string()
            .contains("price_filter_needs_price_sort"),
        "{refused}"
    );
    Ok(())
}

/// The functions' telemetry, in the shapes it has on Lambda: EMF documents that
/// `catalog-local metrics` sums, and JSON log lines tagged with their invocation. A command
/// that runs a function here keeps its metrics off its stdout, in the stack's file.
fn the_telemetry_has_its_lambda_shapes(cli: &Cli) -> Result<()> {
    let started = cli.run(&["reconcile", "--dry-run"])?;
    ensure!(
        !started.contains(r#""_aws""#),
        "EMF on the CLI's stdout:\n{started}"
    );
    let metrics = cli.run(&["metrics"])?;
    let expected = [
        "summary-projector",
        "RecordsReceived",
        "ProjectionLag",
        "ColdStart",
        "reconciler",
    ];
    for name in expected {
        ensure!(metrics.contains(name), "no {name} in:\n{metrics}");
    }
    let logs = read(&cli.dir.join("logs/stack.log"));
    ensure!(
        logs.lines().any(
            |l| l.contains(r#""function_name":"SummaryProjectorFunction""#)
                && l.contains(r#""function_request_id":"local-"#)
        ),
        "no projector line with its request id in:\n{logs}"
    );
    Ok(())
}

/// The files `sam local` runs with: every variable pointing at the container's view of this
/// machine, the secrets by ARN, and sam's own STS call kept local.
fn the_sam_local_files_point_at_the_containers_view(cli: &Cli) -> Result<()> {
    let sam_env: Value = serde_json::from_str(&read(&cli.dir.join("sam-env.json")))?;
    let vars = &sam_env["Parameters"];
    for name in [
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SQS",
        "TAG_QUEUE_URL",
    ] {
        let value = vars[name].as_str().unwrap_or_default();
        ensure!(
            value.starts_with("http://host.docker.internal:"),
            "{name} = {value:?}"
        );
    }
    ensure!(vars["CURSOR_SECRET_ARN"]
        .as_str()
        .is_some_and(|a| a.starts_with("arn:")));
    let shell = read(&cli.dir.join("sam-env.sh"));
    ensure!(shell.contains("export AWS_ENDPOINT_URL_STS=http://127.0.0.1:"));
    Ok(())
}
