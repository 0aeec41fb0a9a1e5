//! Three storefront instances, revalidated two ways side by side in one run: through the tag
//! table (packages/next-cache-handler polling it) and by HTTP fan-out (the revalidator calling
//! each instance's route, Next's default handlers). Two local stacks share DynamoDB Local and
//! moto; their writes are interleaved.
//!
//! - write -> the product page fresh on all three instances, p50/p99/max, each way;
//! - a cached page's request time on a tag-table instance against a default one, interleaved
//!   (the handler's overhead; goal: within 5 % at p50);
//! - the tag table requests each instance made, per minute, from its metric lines.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use catalog_core::ids::ProductId;
use catalog_core::model::{MinorUnits, ProductStatus};
use catalog_local::dev::demo::{self, DemoSize};
use catalog_local::dev::edits::Editor;
use catalog_local::rng::Rng;
use catalog_local::stack::{Delivery, Options, Stack, Storefront};
use std::num::NonZeroUsize;

use crate::pipeline::get;
use crate::Flags;

/// One of the two ways, with its stack.
struct Way {
    stack: Stack,
    instances: Vec<String>,
    editor: Editor,
    fresh: Vec<Duration>,
}

impl Way {
    async fn start(
        name: &'static str,
        tag_table: bool,
        endpoints: Option<(String, String)>,
    ) -> Result<Self> {
        let options = Options {
            prefix: format!("fleet-{name}-"),
            endpoints,
            storefront: Some(Storefront {
                instances: NonZeroUsize::new(3).expect("3 is not 0"),
                delivery: if tag_table {
                    Delivery::TagTable
                } else {
                    Delivery::Http
                },
            }),
            ..Options::default()
        };
        let stack = Stack::start(&catalog_local::workspace_root(), options).await?;
        let instances = stack.endpoints.storefront_instances.clone();
        let editor = Editor::new(
            stack.dynamodb.clone(),
            stack.endpoints.tables.catalog.clone(),
        );
        Ok(Self {
            stack,
            instances,
            editor,
            fresh: Vec::new(),
        })
    }

    /// Sets `id`'s price and waits until every instance's product page shows it.
    async fn change(&mut self, id: &ProductId, cents: u64) -> Result<()> {
        let shown = format!("class=\"price\">${}.{:02}<", cents / 100, cents % 100);
        let written = Instant::now();
        self.editor.set_price(id, MinorUnits::new(cents)?).await?;
        let polls = self.instances.iter().map(|instance| {
            let (url, shown) = (format!("{instance}/products/{id}"), shown.clone());
            async move {
                while !get(&url).await?.contains(&shown) {
                    if written.elapsed() > Duration::from_secs(20) {
                        bail!("{url} never showed {shown}");
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(written.elapsed())
            }
        });
        let each = futures::future::try_join_all(polls).await?;
        self.fresh.push(each.into_iter().max().unwrap_or_default());
        Ok(())
    }
}

pub async fn run(flags: &Flags) -> Result<()> {
    let updates: usize = flags.get("updates", 60)?;
    let requests: usize = flags.get("requests", 1000)?;
    let size = demo_size(flags)?;
    let mut table = Way::start("table", true, None).await?;
    let shared = Some((
        table.stack.endpoints.dynamodb.clone(),
        table.stack.endpoints.sqs.clone(),
    ));
    let mut http = Way::start("http", false, shared).await?;
    for way in [&table, &http] {
        crate::latency::load_and_settle(&way.stack, size).await?;
    }
    let started = Instant::now();
    let ids = shown_ids(size)?;

    // The handler's overhead: the same cached page, one request each way in turn.
    let page = format!("/products/{}", ids[0]);
    let (mut with_table, mut default) = (Vec::new(), Vec::new());
    for i in 0..requests + 50 {
        for (way, samples) in [(&table, &mut with_table), (&http, &mut default)] {
            let url = format!("{}{page}", way.instances[i % 3]);
            let start = Instant::now();
            get(&url).await?;
            if i >= 50 {
                samples.push(start.elapsed());
            }
        }
    }

    let mut rng = Rng::new(7);
    for i in 0..updates {
        let id = rng.pick(&ids).clone();
        let cents = 10_000 + i as u64;
        // Alternate which way goes first, so that neither always follows the other.
        if i % 2 == 0 {
            table.change(&id, cents).await?;
            http.change(&id, cents).await?;
        } else {
            http.change(&id, cents).await?;
            table.change(&id, cents).await?;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    let ports = table
        .stack
        .storefront
        .as_ref()
        .context("storefront")?
        .ports();

    println!("fleet benchmark: 3 storefront instances each way, {updates} price changes interleaved, product pages polled every 10 ms on every instance until fresh; tag-table instances read the counter every 200 ms (the default)");
    crate::latency::print_line("tag table: write -> fresh on all 3", &mut table.fresh);
    crate::latency::print_line("HTTP fan-out: write -> fresh on all 3", &mut http.fresh);
    crate::latency::print_line("cached page, tag-table handler", &mut with_table);
    crate::latency::print_line("cached page, Next's default handler", &mut default);
    let p50 = crate::latency::percentile;
    let ratio = p50(&mut with_table, 0.5) / p50(&mut default, 0.5);
    println!("  handler overhead at p50: {ratio:.3}x Next's default (goal: at most 1.05x), {requests} requests each");
    let fresh = p50(&mut table.fresh, 0.5) / p50(&mut http.fresh, 0.5);
    println!("  write -> fresh at p50: tag table {fresh:.2}x HTTP fan-out (goal: at most 1.5x)");
    for port in &ports {
        let (requests, lines) = table_requests(&catalog_local::workspace_root(), *port)?;
        let per_minute = requests as f64 / lines.max(1) as f64;
        // At rest each request is a counter read of half a read unit; 43,200 minutes a month.
        let dollars = per_minute * 43_200.0 * 0.5 * 0.125 / 1e6;
        println!(
            "  instance :{port}: {requests} tag table requests in {lines} metric minutes = {per_minute:.1} a minute (run {minutes:.1} min), about ${dollars:.2} a month at $0.125 per million read units"
        );
    }
    http.stack.stop().await?;
    table.stack.stop().await
}

/// The catalog the storefront benches load: 30 products in 3 stores, `--seed` (default 1).
pub(crate) fn demo_size(flags: &Flags) -> Result<DemoSize> {
    Ok(DemoSize {
        products: 30,
        stores: 3,
        locations: 2,
        seed: flags.get("seed", 1)?,
    })
}

/// The demo products of `size` a storefront shows (active, not deleted).
pub(crate) fn shown_ids(size: DemoSize) -> Result<Vec<ProductId>> {
    let (products, _) = demo::generate(size)?;
    Ok(products
        .iter()
        .filter(|p| p.status == ProductStatus::Active && p.deleted_at.is_none())
        .map(|p| p.product_id.clone())
        .collect())
}

/// The `TagTableRequests` an instance reported in its metric lines (one a minute), and how many
/// lines there were.
fn table_requests(root: &Path, port: u16) -> Result<(u64, u64)> {
    let log = catalog_local::services::log_dir(root)?.join(format!("storefront-{port}.log"));
    let text = std::fs::read_to_string(&log).with_context(|| format!("{log:?}"))?;
    let mut total = (0, 0);
    for line in text.lines().filter(|l| l.contains("TagTableRequests")) {
        let value: serde_json::Value = serde_json::from_str(line)?;
        total.0 += value["TagTableRequests"].as_u64().unwrap_or_default();
        total.1 += 1;
    }
    Ok(total)
}
