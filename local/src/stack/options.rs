//! How to run the stack.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use catalog_core::tags::StockTagPolicy;

use crate::emulator::function::Function;
use crate::layers::consistency::AwsConsistency;
use crate::services;

/// Wraps a function before the stack invokes it (tests inject faults this way).
pub type Wrap = Arc<dyn Fn(Arc<dyn Function>) -> Arc<dyn Function> + Send + Sync>;

/// How to run the stack.
#[derive(Clone)]
pub struct Options {
    /// Prefix of every table and queue name.
    pub prefix: String,
    /// Wait between polls of an idle stream or queue (AWS: 250 ms for streams).
    pub poll_interval: Duration,
    /// Port of the listing API on 127.0.0.1 (0: any free port).
    pub listing_port: u16,
    pub stock_tag_policy: StockTagPolicy,
    /// Applied to the summary-projector before the stream mappings invoke it.
    pub wrap_projector: Option<Wrap>,
    /// The signing key of listing cursors (`CURSOR_SECRET` locally).
    pub cursor_secret: String,
    /// DynamoDB and SQS endpoints already running, to use instead of starting services.
    pub endpoints: Option<(String, String)>,
    /// Where started services listen (the Docker bridge too lets `sam local` containers in).
    pub listen: services::Listen,
    /// Revalidate routes the tag-revalidator calls (besides the storefront's, if started).
    /// With none and no storefront, tag messages wait in the tag queue.
    pub revalidate_endpoints: Vec<String>,
    /// Start examples/storefront (Next.js) against the local listing API.
    pub storefront: Option<Storefront>,
    /// More environment for every storefront instance (a benchmark's baseline switch).
    pub storefront_env: Vec<(String, String)>,
    /// The secret revalidate calls are signed with (`REVALIDATE_SECRET` locally).
    pub revalidate_secret: String,
    /// Per-call timeout of the tag-revalidator.
    pub revalidate_timeout: Duration,
    /// What stands between the functions and DynamoDB, outermost first; the stack's own
    /// client is spared every layer.
    pub layers: Vec<Layer>,
}

/// The example storefront the stack starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storefront {
    /// More than one: behind a round-robin proxy.
    pub instances: NonZeroUsize,
    pub delivery: Delivery,
}

impl Storefront {
    /// One instance, taking its tags as `delivery` says.
    pub fn one(delivery: Delivery) -> Self {
        Self {
            instances: NonZeroUsize::MIN,
            delivery,
        }
    }
}

/// How the tag-revalidator reaches the storefront.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Signed calls to each instance's revalidate route.
    Http,
    /// Writes to the tag table, which every instance reads (packages/next-cache-handler).
    TagTable,
    /// Writes to the tag table, which OpenNext's build of the storefront reads through its tag
    /// cache (packages/next-cache-handler/src/opennext.ts), as on Lambda: no revalidate route.
    OpenNext,
}

/// A layer between the functions and DynamoDB.
#[derive(Clone)]
pub enum Layer {
    /// Throttles their calls (chaos runs).
    Throttling(Arc<crate::layers::faults::Throttling>),
    /// Makes their DynamoDB as weak as AWS's: a lagging index and replica, held writes (see
    /// [`crate::layers::consistency`]).
    AwsConsistency(AwsConsistency),
}

impl Options {
    /// Whether the revalidator writes the tag table for the storefront.
    pub fn tag_table(&self) -> bool {
        self.storefront
            .is_some_and(|s| matches!(s.delivery, Delivery::TagTable | Delivery::OpenNext))
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            prefix: "catalog-".into(),
            poll_interval: Duration::from_millis(250),
            listing_port: 0,
            stock_tag_policy: StockTagPolicy::Eager,
            wrap_projector: None,
            cursor_secret: "local-cursor-secret-not-for-production".into(),
            endpoints: None,
            listen: services::Listen::Loopback,
            revalidate_endpoints: Vec::new(),
            storefront: None,
            storefront_env: Vec::new(),
            revalidate_secret: "local-revalidate-secret-not-for-production".into(),
            revalidate_timeout: Duration::from_secs(5),
            layers: Vec::new(),
        }
    }
}
