//! The cost model: what catalog-sync's own calls cost for a named day of traffic. The real
//! functions run a sample of that day against DynamoDB Local and moto with a meter on every
//! client ([`meter`]: requests by operation, and the capacity units DynamoDB reports); the
//! sample is scaled to the day and priced at AWS's on-demand prices ([`prices`]), beside the
//! same listing views served by the N+1 and BatchGet joins a storefront would do instead.

mod meter;
mod prices;
mod report;
mod sample;

use anyhow::Result;

use crate::Flags;

/// The day being priced.
#[derive(Debug, Clone, Copy)]
pub struct Day {
    pub changes: f64,
    pub views: f64,
    pub catalog: f64,
}

pub async fn run(flags: &Flags) -> Result<()> {
    let day = Day {
        changes: flags.get("day-changes", 1_000_000.0)?,
        views: flags.get("day-views", 1_000_000.0)?,
        catalog: flags.get("catalog", 100_000.0)?,
    };
    let size = sample::Size {
        products: flags.get("products", 300)?,
        changes: flags.get("changes", 1_200)?,
        views: flags.get("views", 300)?,
        batch: flags.get("batch", 4)?,
    };
    let measured = sample::measure(&size).await?;
    report::print(&day, &size, &measured)
}
