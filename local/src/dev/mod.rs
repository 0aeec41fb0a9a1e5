//! What a developer (and the tests and benchmarks) do with a running stack: load demo data
//! ([`demo`]), edit the source tables ([`edits`]), move dead letters back ([`redrive`]), sum the
//! run's metrics ([`metrics_report`]) and write `sam local`'s environment ([`sam_env`]).

pub mod demo;
pub mod edits;
pub mod metrics_report;
pub mod redrive;
pub mod sam_env;
