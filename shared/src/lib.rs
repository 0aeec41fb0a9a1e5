//! catalog-sync's shared library.
//!
//! The pure core — [`projection`], [`tags`] and (later) `reconcile` — has no I/O. Around it sit
//! the adapters the Lambda functions share: the DynamoDB [`store`]s, the SQS [`queue`]s, the
//! [`refresh`] protocol that writes summaries exactly-once in effect, [`config`] and
//! [`telemetry`].

pub mod config;
pub mod fault;
pub mod http_path;
pub mod ids;
pub mod model;
pub mod projection;
pub mod queue;
pub mod reconcile;
pub mod refresh;
pub mod revalidate;
pub mod store;
pub mod stream;
pub mod tags;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
