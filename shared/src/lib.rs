//! catalog-sync's shared library.
//!
//! The pure core, built with or without the `aws` feature: [`ids`], [`model`], [`projection`],
//! [`tags`], [`listing`] keys, [`stream`] record decoding, [`http_path`] decoding and the
//! [`reconcile`] compare. With `aws` (the default) come the adapters the Lambda functions
//! share: the DynamoDB `store`s, the SQS `queue`s, the `refresh` protocol that writes
//! summaries exactly-once in effect, `revalidate`, `config`, the `sdk` clients and `telemetry`. The fuzz targets
//! (fuzz/) build the core alone, without the AWS SDK.

#[cfg(feature = "aws")]
pub mod config;
#[cfg(feature = "aws")]
pub mod fault;
pub mod http_path;
pub mod ids;
pub mod listing;
pub mod model;
pub mod projection;
#[cfg(feature = "aws")]
pub mod queue;
pub mod reconcile;
#[cfg(feature = "aws")]
pub mod refresh;
#[cfg(feature = "aws")]
pub mod revalidate;
#[cfg(feature = "aws")]
pub mod sdk;
#[cfg(feature = "aws")]
pub mod store;
pub mod stream;
pub mod tags;
#[cfg(feature = "aws")]
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
