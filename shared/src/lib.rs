//! catalog-sync's AWS half: every DynamoDB, SQS and Secrets Manager call, and the
//! orchestration the Lambda functions share. What it computes comes from `catalog_core`
//! (core/), which has no I/O.
//!
//! - [`store`]: the DynamoDB adapters (source tables, Summaries, the tag table, reconcile
//!   progress), with one paginate helper.
//! - [`queue`]: the SQS adapters (tag queue, listing checks, parking lot).
//! - [`listing_gate`]: queueing refreshed summaries' tags, listing tags once the index shows
//!   the write.
//! - [`refresh`]: the `Refresher`, which reads, decides and writes a summary exactly-once in
//!   effect (the projector's and the reconciler's repairs).
//! - [`config`], [`sdk`]: each function's settings and the SDK clients, read at cold start.
//! - [`fault`]: transient versus permanent failures; [`lambda`]: the replies handlers share.
//! - [`telemetry`]: structured logs and embedded metrics.

pub mod config;
pub mod fault;
pub mod lambda;
pub mod listing_gate;
pub mod queue;
pub mod refresh;
pub mod sdk;
pub mod store;
pub mod telemetry;
