//! The reconciler benchmark: products checked per second by a full run with 1 and with 4
//! segments (the segments running at once, as Lambda runs them), against a raw parallel Scan
//! of the same three tables with the same segment count, in one run. The backfill (a run on
//! an empty Summaries table) is timed on the way.

use catalog_tests::Inspect;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use catalog_core::reconcile::Report;
use catalog_core::testing::{product, stock};
use catalog_tests::TestEnv;
use futures::future::try_join_all;
use futures::stream::{self, StreamExt, TryStreamExt};
use reconciler::{Reconciler, RunRequest, Segment, SegmentMessage};

use crate::Flags;

type Item = std::collections::HashMap<String, AttributeValue>;

pub async fn run(flags: &Flags) -> Result<()> {
    let products: usize = flags.get("products", 20_000)?;
    let locations: usize = flags.get("locations", 2)?;
    let page: i32 = flags.get("page", 200)?;
    // The reconciler reads the tables, not their streams.
    let env = TestEnv::without_streams().await?;

    eprintln!("writing {products} products x {locations} locations...");
    let mut items = Vec::with_capacity(products);
    let mut rows = Vec::with_capacity(products * locations);
    for i in 0..products {
        let id = format!("p{i}");
        items.push(serde_dynamo::to_item(product(
            &id,
            &format!("s{}", i % 50),
        ))?);
        for l in 0..locations {
            rows.push(serde_dynamo::to_item(stock(&id, &format!("l{l}"), 7, 2))?);
        }
    }
    crate::seed::batch_write(&env.dynamodb, &env.tables.products, items).await?;
    crate::seed::batch_write(&env.dynamodb, &env.tables.inventory, rows).await?;

    let mut reconciler = env.reconciler();
    reconciler.worker_mut().page_size = page;
    eprintln!("backfilling summaries with a 4-segment run...");
    let (backfill, took) = run_once(&env, &reconciler, 4).await?;
    ensure!(
        backfill.repaired as usize == products,
        "backfill wrote {backfill:?}"
    );
    env.drain_queue("TagQueue").await?;
    let (raw_load, conditional_load) = floors(&env, 4).await?;

    let mut rows_out = Vec::new();
    for segments in [1u32, 4] {
        let mut best_scan = Duration::MAX;
        let mut best_run = Duration::MAX;
        for _ in 0..2 {
            best_scan = best_scan.min(raw_scan(&env, segments, page).await?);
            let (report, took) = run_once(&env, &reconciler, segments).await?;
            ensure!(
                report.checked as usize == products && report.discrepancies() == 0,
                "{report:?}"
            );
            best_run = best_run.min(took);
        }
        rows_out.push((segments, best_run, best_scan));
    }
    let rate = |d: Duration| products as f64 / d.as_secs_f64();
    println!("reconciler benchmark: {products} products, {locations} stock rows each, Scan pages of {page}, best of 2 runs each");
    println!(
        "  backfill (empty Summaries, 4 segments): {:>7.0} products/s ({:.1} s) | raw BatchWriteItem load of the same summaries, 4 at once {:>7.0} items/s ({:.1} s) | ratio {:.2}x",
        rate(took),
        took.as_secs_f64(),
        rate(raw_load),
        raw_load.as_secs_f64(),
        rate(took) / rate(raw_load)
    );
    println!(
        "  conditional floor: TransactWriteItems of 100 puts where nothing is stored, 4 loaders {:>7.0} items/s ({:.1} s) | backfill over it {:.2}x",
        rate(conditional_load),
        conditional_load.as_secs_f64(),
        rate(took) / rate(conditional_load)
    );
    for (segments, run, scan) in rows_out {
        println!(
            "  {segments} segment(s): reconciler {:>7.0} products/s ({:.1} s) | raw parallel Scan of the 3 tables {:>7.0} products/s ({:.1} s) | ratio {:.2}x",
            rate(run),
            run.as_secs_f64(),
            rate(scan),
            scan.as_secs_f64(),
            rate(run) / rate(scan)
        );
    }
    Ok(())
}

/// A whole run: the run request, then every segment at once until none is left.
pub(crate) async fn run_once(
    env: &TestEnv,
    reconciler: &Reconciler,
    segments: u32,
) -> Result<(Report, Duration)> {
    let start = Instant::now();
    let request = RunRequest {
        segments: Some(segments),
        ..RunRequest::default()
    };
    let run_id = format!("bench-{}", catalog_tests::unique_id());
    reconciler.start(&run_id, &request).await?;
    let mut total = Report::default();
    loop {
        let bodies = env.drain_queue("ReconcileQueue").await?;
        if bodies.is_empty() {
            return Ok((total, start.elapsed()));
        }
        let deadline = Instant::now() + Duration::from_secs(900);
        let runs = bodies.iter().map(|body| async move {
            let message: SegmentMessage = serde_json::from_str(body)?;
            let delivery = catalog_tests::unique_id();
            Ok::<_, anyhow::Error>(reconciler.run_segment(message, &delivery, deadline).await?)
        });
        for outcome in try_join_all(runs).await? {
            if let Segment::Finished(report) = outcome {
                total.merge(&report);
            }
        }
    }
}

/// The floors for a backfill: the summaries it wrote, read back and loaded into an empty
/// Summaries table, `parallel` loaders at once (as many as the backfill's segments), by
/// unconditional BatchWriteItem (25 items a call), and by the conditional writes any safe
/// backfill needs: TransactWriteItems of 100 `attribute_not_exists` puts, 4 calls at once a
/// loader, as the backfill sends them.
async fn floors(env: &TestEnv, parallel: usize) -> Result<(Duration, Duration)> {
    let items = env
        .dynamodb
        .scan()
        .table_name(&env.tables.summaries)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await?;
    let share = items.len().div_ceil(parallel).max(1);
    let empty = env.fresh_summaries("raw-load").await?.tables.summaries;
    let started = Instant::now();
    let loads = items
        .chunks(share)
        .map(|part| crate::seed::batch_write(&env.dynamodb, &empty, part.to_vec()));
    try_join_all(loads).await?;
    let raw = started.elapsed();
    let empty = env
        .fresh_summaries("conditional-load")
        .await?
        .tables
        .summaries;
    let started = Instant::now();
    let loads = items
        .chunks(share)
        .map(|part| conditional_load(&env.dynamodb, &empty, part));
    try_join_all(loads).await?;
    Ok((raw, started.elapsed()))
}

/// Puts `items` where nothing is stored, 100 to a TransactWriteItems, 4 calls at once.
async fn conditional_load(client: &Client, table: &str, items: &[Item]) -> Result<()> {
    let calls = items.chunks(100).map(|chunk| async move {
        let puts = chunk
            .iter()
            .map(|item| {
                let put = Put::builder()
                    .table_name(table)
                    .set_item(Some(item.clone()))
                    .condition_expression("attribute_not_exists(productId)")
                    .build()?;
                Ok(TransactWriteItem::builder().put(put).build())
            })
            .collect::<Result<Vec<_>>>()?;
        let call = client.transact_write_items().set_transact_items(Some(puts));
        call.send().await?;
        Ok::<_, anyhow::Error>(())
    });
    stream::iter(calls)
        .buffer_unordered(4)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Scans the three tables, `segments` segments each at once, consistent reads, the same page
/// size as the reconciler.
async fn raw_scan(env: &TestEnv, segments: u32, page: i32) -> Result<Duration> {
    let start = Instant::now();
    let tables = [
        &env.tables.products,
        &env.tables.inventory,
        &env.tables.summaries,
    ];
    let scans = (0..segments).map(|segment| async move {
        let mut count = 0usize;
        for table in tables {
            count += scan_segment(&env.dynamodb, table, segment, segments, page).await?;
        }
        Ok::<_, anyhow::Error>(count)
    });
    let counted: usize = try_join_all(scans).await?.into_iter().sum();
    ensure!(counted > 0);
    Ok(start.elapsed())
}

async fn scan_segment(
    client: &Client,
    table: &str,
    segment: u32,
    total: u32,
    page: i32,
) -> Result<usize> {
    let mut count = 0;
    let mut start = None;
    loop {
        let output = client
            .scan()
            .table_name(table)
            .segment(segment as i32)
            .total_segments(total as i32)
            .consistent_read(true)
            .limit(page)
            .set_exclusive_start_key(start.take())
            .send()
            .await?;
        count += output.items.map_or(0, |i| i.len());
        match output.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(count),
        }
    }
}
