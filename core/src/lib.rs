//! catalog-sync's pure core: what a summary is and how it is computed, decided and compared,
//! with no I/O. It depends on no AWS SDK crate, so nothing here can call DynamoDB or SQS; the
//! `catalog` crate (shared/) holds the adapters and orchestration that do.
//!
//! - [`ids`], [`model`]: parse-don't-validate ids and money, the source rows and the summary.
//! - [`projection`]: a product's rows to its summary.
//! - [`tags`]: cache tags and the tag diff between two summaries.
//! - [`listing`]: the `byStore` index's sort key and page positions.
//! - [`stream`]: which product a DynamoDB stream record is about.
//! - [`http_path`], [`http_reply`]: API Gateway's raw path, decoded; the JSON error reply.
//! - [`refresh`]: the refresh decision, the one conditional write a refresh makes.
//! - [`reconcile`]: the compare of a stored summary with its projection, and a run's report.
//! - [`messages`]: the bodies of tag-queue and parked-record messages.
//! - [`tag_table`]: the keys of the shared tag table that storefront instances read.

pub mod http_path;
pub mod http_reply;
pub mod ids;
pub mod listing;
pub mod messages;
pub mod model;
pub mod projection;
pub mod reconcile;
pub mod refresh;
pub mod stream;
pub mod tag_table;
pub mod tags;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
