//! The sample, scaled to the day and priced.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use catalog_local::template::Template;

use super::meter::Usage;
use super::prices::*;
use super::sample::{Invocations, Measured, Size};
use super::Day;

/// What a part of the day uses.
#[derive(Debug, Clone, Copy, Default)]
struct Bill {
    read_units: f64,
    write_units: f64,
    sqs_requests: f64,
    lambda_requests: f64,
    gb_seconds: f64,
    api_requests: f64,
}

impl Bill {
    /// `usage` (DynamoDB and SQS calls) and `invocations` of a function with `memory_gb`,
    /// times `scale`.
    fn of(usage: &BTreeMap<String, Usage>, run: Invocations, memory_gb: f64, scale: f64) -> Self {
        let sum = |f: fn(&Usage) -> f64| usage.values().map(f).sum::<f64>() * scale;
        let sqs = usage
            .iter()
            .filter(|(op, _)| op.starts_with("SQS."))
            .map(|(_, u)| u.requests as f64)
            .sum::<f64>()
            + 0.0; // An empty sum is -0.0.
        Self {
            read_units: sum(|u| u.read_units),
            write_units: sum(|u| u.write_units),
            sqs_requests: sqs * scale,
            lambda_requests: run.count as f64 * scale,
            gb_seconds: run.seconds * memory_gb * scale,
            api_requests: 0.0,
        }
    }

    fn usd(&self) -> f64 {
        self.read_units / 1e6 * DYNAMODB_READ_MILLION
            + self.write_units / 1e6 * DYNAMODB_WRITE_MILLION
            + self.sqs_requests / 1e6 * SQS_REQUEST_MILLION
            + self.lambda_requests / 1e6 * LAMBDA_REQUEST_MILLION
            + self.gb_seconds * LAMBDA_GB_SECOND
            + self.api_requests / 1e6 * HTTP_API_REQUEST_MILLION
    }

    fn line(&self, name: &str) -> String {
        format!(
            "  {name:<34} {:>12.0} {:>12.0} {:>11.0} {:>11.0} {:>10.1} {:>11.0} {:>9.2}",
            self.read_units,
            self.write_units,
            self.sqs_requests,
            self.lambda_requests,
            self.gb_seconds,
            self.api_requests,
            self.usd()
        )
    }
}

/// Each function's memory in template.yaml, in GB.
fn memory_gb(template: &Template, function: &str) -> Result<f64> {
    let own = &template.document["Resources"][function]["Properties"]["MemorySize"];
    let global = &template.document["Globals"]["Function"]["MemorySize"];
    let mb = own.as_f64().or(global.as_f64()).context("a MemorySize")?;
    Ok(mb / 1024.0)
}

/// Lambda's poller receives each event and deletes its messages: two requests an invocation.
fn with_poller(mut bill: Bill, invocations: Invocations, scale: f64) -> Bill {
    bill.sqs_requests += 2.0 * invocations.count as f64 * scale;
    bill
}

pub fn print(day: &Day, size: &Size, m: &Measured) -> Result<()> {
    let template = Template::load(&catalog_local::workspace_root())?;
    let memory = |f: &str| memory_gb(&template, f);
    let per_change = day.changes / size.changes as f64;
    let per_view = day.views / size.views as f64;
    let per_reconcile = day.catalog / size.products as f64;
    println!(
        "cost model: a day of {} changes (half stock, half price) to a {}-product catalog and {} listing views of {} cards",
        day.changes, day.catalog, day.views, crate::listing::PAGE
    );
    println!(
        "  measured on {} changes to {} products ({} records a projector invocation), {} views; units as DynamoDB Local reports them; Lambda durations as measured here",
        size.changes, size.products, size.batch, size.views
    );
    println!(
        "  {:<34} {:>12} {:>12} {:>11} {:>11} {:>10} {:>11} {:>9}",
        "per day", "read units", "write units", "SQS req", "Lambda req", "GB-s", "API req", "USD"
    );
    let projector = memory("SummaryProjectorFunction")?;
    let changes = Bill::of(&m.changes, m.projector, projector, per_change);
    let revalidator = Bill::of(
        &BTreeMap::new(),
        m.revalidator,
        memory("TagRevalidatorFunction")?,
        per_change,
    );
    let changes = with_poller(add(changes, revalidator), m.revalidator, per_change);
    let mut reconcile = Bill::of(
        &m.reconcile,
        m.reconciler,
        memory("ReconcilerFunction")?,
        per_reconcile,
    );
    // Its invocations do not grow with the catalog (a segment runs up to 15 minutes).
    reconcile.lambda_requests = m.reconciler.count as f64;
    let mut listing = Bill::of(
        &m.views[0],
        m.listing,
        memory("ListingApiFunction")?,
        per_view,
    );
    listing.api_requests = day.views;
    let total = add(add(changes, reconcile), listing);
    for (name, bill) in [
        ("changes (projector, revalidator)", changes),
        ("daily reconciliation", reconcile),
        ("listing views (listing-api)", listing),
        ("catalog-sync, total", total),
    ] {
        println!("{}", bill.line(name));
    }
    println!("  the same views without summaries (DynamoDB reads only; the storefront's own compute not counted):");
    for (name, usage) in [("N+1 join", &m.views[1]), ("BatchGet join", &m.views[2])] {
        let bill = Bill::of(usage, Invocations::default(), 0.0, per_view);
        println!("{}", bill.line(name));
    }
    per_change_by_operation(
        "steady state, projector and revalidator",
        &m.changes,
        size.changes,
    );
    per_change_by_operation(
        "caught up from a backlog, projector",
        &m.catch_up,
        size.changes,
    );
    Ok(())
}

fn add(a: Bill, b: Bill) -> Bill {
    Bill {
        read_units: a.read_units + b.read_units,
        write_units: a.write_units + b.write_units,
        sqs_requests: a.sqs_requests + b.sqs_requests,
        lambda_requests: a.lambda_requests + b.lambda_requests,
        gb_seconds: a.gb_seconds + b.gb_seconds,
        api_requests: a.api_requests + b.api_requests,
    }
}

/// Per change, by operation: where the units go.
fn per_change_by_operation(what: &str, usage: &BTreeMap<String, Usage>, changes: usize) {
    println!("  per change, {what} (requests, read units, write units, refused):");
    for (op, u) in usage {
        let n = changes as f64;
        println!(
            "    {op:<36} {:>6.2} {:>6.2} {:>6.2} {:>6.2}",
            u.requests as f64 / n,
            u.read_units / n,
            u.write_units / n,
            u.failed as f64 / n
        );
    }
}
