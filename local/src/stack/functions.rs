//! The four functions as the stack runs them: built from the stack's resources the way each
//! Lambda builds itself from its environment, with the DynamoDB client the options ask for
//! (plain, behind the AWS-consistency proxy, or throttled).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use catalog::store::SummaryStore;

use super::resources::Resources;
use super::{Layer, Options};
use crate::emulator::function::{self, Function};
use crate::layers::consistency::{ConsistencyProxy, ConsistencyStats};
use crate::provision::create_table_if_missing;
use crate::services;
use crate::shutdown::Shutdown;
use crate::template::event_sources::HttpRoute;
use crate::template::Template;

/// Scan segments of a scheduled reconciliation, as template.yaml's `ReconcileSegments`
/// defaults them.
pub const RECONCILE_SEGMENTS: u32 = 4;

/// The functions the stack's triggers invoke (the tag-revalidator comes with its endpoints).
pub struct Functions {
    pub projector: Arc<dyn Function>,
    pub reconciler: Arc<function::Reconciler>,
    pub listing: Arc<dyn Function>,
}

impl Functions {
    /// The functions over `resources`, calling DynamoDB through `dynamodb`.
    pub fn new(
        resources: &Resources,
        options: &Options,
        dynamodb: &aws_sdk_dynamodb::Client,
        sqs: &aws_sdk_sqs::Client,
    ) -> Result<Self> {
        let policy = options.stock_tag_policy;
        let projector: Arc<dyn Function> = Arc::new(summary_projector::Projector::new(
            &resources.projector_config(policy)?,
            dynamodb.clone(),
            sqs.clone(),
        ));
        let reconciler = Arc::new(function::Reconciler {
            handler: reconciler::Reconciler::new(
                &resources.reconciler_config(policy, RECONCILE_SEGMENTS)?,
                dynamodb.clone(),
                sqs.clone(),
            ),
            timeout: Duration::from_secs(900),
        });
        let listing = Arc::new(listing_api::ListingApi::new(
            SummaryStore::new(dynamodb.clone(), resources.tables.catalog.summaries.clone()),
            listing_api::cursor::CursorKey::new(options.cursor_secret.as_bytes())?,
        ));
        Ok(Self {
            projector: match &options.wrap_projector {
                Some(wrap) => wrap(projector),
                None => projector,
            },
            reconciler,
            listing,
        })
    }

    /// The HTTP API: the listing API's routes and the reconciler's admin route.
    pub fn routes(
        &self,
        listing: Vec<HttpRoute>,
        reconciler: Vec<HttpRoute>,
    ) -> Vec<(HttpRoute, Arc<dyn Function>)> {
        let listing = listing.into_iter().map(|r| (r, self.listing.clone()));
        let admin = reconciler
            .into_iter()
            .map(|r| (r, self.reconciler.clone() as Arc<dyn Function>));
        listing.chain(admin).collect()
    }
}

/// The tag-revalidator, calling `endpoints` and, when the storefront reads the tag table,
/// writing its tags there.
pub fn revalidator(
    endpoints: Vec<String>,
    resources: &Resources,
    options: &Options,
    clients: &super::Clients,
) -> Result<Arc<dyn Function>> {
    let client = tag_revalidator::client::RevalidateClient::new(
        options.revalidate_secret.as_bytes(),
        options.revalidate_timeout,
    )?;
    let mut revalidator = tag_revalidator::Revalidator::new(
        endpoints,
        client,
        clients.sqs.clone(),
        resources.queues.tag_queue.clone(),
        128,
    )
    .with_retry_queue(resources.queues.tag_retry_queue.clone());
    if options.tag_table() {
        let table = catalog::store::TagTable::new(
            clients.dynamodb.clone(),
            &resources.tables.tags,
            options.revalidate_timeout,
        );
        let storefronts = vec![crate::storefront::LOCAL_STOREFRONT.to_owned()];
        revalidator = revalidator.with_tag_table(table, storefronts);
    }
    Ok(Arc::new(revalidator))
}

/// The DynamoDB client the functions use: the stack's endpoint, with `options.layers` between
/// (an AWS-consistency proxy in front of the endpoint, throttling around the client). The
/// stack's own client is spared them.
pub async fn dynamodb_client(
    template: &Template,
    endpoint: &str,
    dynamodb: &aws_sdk_dynamodb::Client,
    resources: &Resources,
    options: &Options,
    shutdown: &Shutdown,
) -> Result<(aws_sdk_dynamodb::Client, Option<Arc<ConsistencyStats>>)> {
    let mut config = services::sdk_config(endpoint).await;
    let mut consistency = None;
    let mut throttlings = Vec::new();
    for layer in &options.layers {
        match layer {
            Layer::Throttling(throttling) => throttlings.push(throttling.clone()),
            Layer::AwsConsistency(_) if consistency.is_some() => {
                bail!("one AWS-consistency layer at most: a second would lag the first's replica")
            }
            Layer::AwsConsistency(settings) => {
                let summaries = &resources.tables.catalog.summaries;
                let replica = crate::layers::consistency::replica_name(summaries);
                create_table_if_missing(template, dynamodb, "SummariesTable", &replica).await?;
                let (upstream, stack_client) = (endpoint, dynamodb.clone());
                let proxy = ConsistencyProxy::start(
                    upstream,
                    stack_client,
                    summaries,
                    &replica,
                    *settings,
                    shutdown.clone(),
                )
                .await?;
                config = services::sdk_config(&proxy.endpoint).await;
                consistency = Some(proxy.stats);
            }
        }
    }
    let client = services::wrapped_dynamodb(&config, |http| {
        throttlings.iter().fold(http, |http, t| t.wrap(http))
    });
    Ok((client, consistency))
}
