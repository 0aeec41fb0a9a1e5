//! The storefront as OpenNext builds it (docs/opennext.md), two ways side by side in one run:
//! with catalog-sync's tag cache (and its incremental-cache wrapper) and with no tag cache at
//! all (OpenNext's file-system cache alone: what a cached page costs when nothing is checked).
//! OpenNext's own DynamoDB tag cache is not a way here: it calls
//! `dynamodb.{region}.amazonaws.com` with no endpoint setting, so it cannot reach DynamoDB Local.
//!
//! - a cached product page's request time each way, interleaved: p50/p99 and their ratios;
//! - write -> the product page fresh, with the tag cache (the other way never is).

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use catalog_core::ids::ProductId;
use catalog_core::model::MinorUnits;
use catalog_local::dev::edits::Editor;
use catalog_local::rng::Rng;
use catalog_local::stack::{Delivery, Options, Stack, Storefront};

use crate::pipeline::get;
use crate::Flags;

/// Starts a stack with one OpenNext instance; `baseline` runs it with no tag cache.
async fn start(name: &str, baseline: bool, endpoints: Option<(String, String)>) -> Result<Stack> {
    let storefront_env = if baseline {
        let switch = "CATALOG_OPENNEXT_BENCH_BASELINE";
        vec![(switch.to_owned(), "no-tag-cache".to_owned())]
    } else {
        Vec::new()
    };
    let options = Options {
        prefix: format!("opennext-{name}-"),
        endpoints,
        storefront: Some(Storefront {
            instances: NonZeroUsize::MIN,
            delivery: Delivery::OpenNext,
        }),
        storefront_env,
        ..Options::default()
    };
    Stack::start(&catalog_local::workspace_root(), options).await
}

/// The storefront's URL of `stack`.
fn storefront(stack: &Stack) -> Result<String> {
    match &stack.endpoints.storefront {
        Some(url) => Ok(url.clone()),
        None => bail!("the stack started no storefront"),
    }
}

/// Sets `id`'s price and polls its product page every 10 ms until it shows; how long it took.
async fn write_to_fresh(
    editor: &Editor,
    url: &str,
    id: &ProductId,
    cents: u64,
) -> Result<Duration> {
    let shown = format!("class=\"price\">${}.{:02}<", cents / 100, cents % 100);
    let written = Instant::now();
    editor.set_price(id, MinorUnits::new(cents)?).await?;
    while !get(url).await?.contains(&shown) {
        if written.elapsed() > Duration::from_secs(20) {
            bail!("{url} never showed {shown}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(written.elapsed())
}

pub async fn run(flags: &Flags) -> Result<()> {
    let updates: usize = flags.get("updates", 40)?;
    let requests: usize = flags.get("requests", 1000)?;
    let size = crate::fleet::demo_size(flags)?;
    let tagged = start("tagged", false, None).await?;
    let shared = Some((
        tagged.endpoints.dynamodb.clone(),
        tagged.endpoints.sqs.clone(),
    ));
    let baseline = start("baseline", true, shared).await?;
    for stack in [&tagged, &baseline] {
        crate::latency::load_and_settle(stack, size).await?;
    }
    let ids = crate::fleet::shown_ids(size)?;

    // A cached page, one request each way in turn, after 50 warm-up rounds.
    let page = format!("/products/{}", ids[0]);
    let urls = [storefront(&tagged)? + &page, storefront(&baseline)? + &page];
    let (mut with_tags, mut without) = (Vec::new(), Vec::new());
    for i in 0..requests + 50 {
        for (url, samples) in urls.iter().zip([&mut with_tags, &mut without]) {
            let start = Instant::now();
            get(url).await?;
            if i >= 50 {
                samples.push(start.elapsed());
            }
        }
    }

    let editor = Editor::new(
        tagged.dynamodb.clone(),
        tagged.endpoints.tables.catalog.clone(),
    );
    let mut rng = Rng::new(7);
    let mut fresh = Vec::new();
    for i in 0..updates {
        let id = rng.pick(&ids).clone();
        let url = format!("{}/products/{id}", storefront(&tagged)?);
        get(&url).await?;
        fresh.push(write_to_fresh(&editor, &url, &id, 10_000 + i as u64).await?);
        tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
    }

    println!("opennext benchmark: OpenNext's build of the storefront (node wrapper, file-system cache), one instance each way; {requests} requests of one cached product page each way, interleaved; {updates} price changes, the product page polled every 10 ms until fresh");
    crate::latency::print_line("cached page, catalog-sync tag cache", &mut with_tags);
    crate::latency::print_line("cached page, no tag cache", &mut without);
    crate::latency::print_line("write -> fresh, catalog-sync tag cache", &mut fresh);
    let at = crate::latency::percentile;
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        let ratio = at(&mut with_tags, q) / at(&mut without, q);
        println!("  tag cache overhead at {name}: {ratio:.2}x no tag cache");
    }
    baseline.stop().await?;
    tagged.stop().await
}
