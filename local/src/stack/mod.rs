//! The whole pipeline on one machine: services, the template's tables and queues, every
//! function behind the event source mappings, schedule and HTTP API template.yaml gives it.

mod endpoints;
mod functions;
mod options;
mod resources;
mod triggers;

pub use endpoints::Endpoints;
pub use options::{Delivery, Layer, Options, Storefront, Wrap};

pub use functions::RECONCILE_SEGMENTS;
pub use resources::{Queues, Resources, Tables};

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::emulator::function::{self, Function};
use crate::emulator::stats::{Snapshot, Stats};
use crate::layers::consistency::ConsistencyStats;
use crate::provision::{create_queues, create_table_if_missing};
use crate::services::{self, Service};
use crate::shutdown::{self, Stopper};
use crate::template::Template;
use functions::Functions;
use triggers::Triggers;

/// A running stack. [`Stack::stop`] ends it cleanly.
pub struct Stack {
    pub endpoints: Endpoints,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Counters per trigger, by event name in template.yaml (`ProductsStream`,
    /// `InventoryStream`, `Segments`, `Daily`, `Tags`), and `ListingApi` for the HTTP API.
    pub stats: BTreeMap<String, Arc<Stats>>,
    /// What the AWS-consistency proxy did, when it runs.
    pub consistency: Option<Arc<ConsistencyStats>>,
    /// The storefront's instances, when started.
    pub storefront: Option<Arc<crate::storefront::Fleet>>,
    reconciler: Arc<function::Reconciler>,
    stopper: Stopper,
    tasks: JoinSet<Result<()>>,
    _services: Vec<Service>,
}

/// What the status screen shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub triggers: BTreeMap<String, Snapshot>,
    /// Logical queue id -> messages waiting (visible + in flight + delayed).
    pub queue_depths: BTreeMap<String, u64>,
}

impl Stack {
    /// Starts (or reuses, see [`services`]) DynamoDB Local and the SQS emulator, creates what
    /// template.yaml declares, and starts every trigger.
    pub async fn start(root: &Path, options: Options) -> Result<Self> {
        let template = Template::load(root)?;
        let (dynamodb_service, sqs_service) = start_services(root, &options).await?;
        let clients = Clients::new(&dynamodb_service.endpoint, &sqs_service.endpoint).await;
        let resources = create_resources(&template, &clients, &options).await?;
        let (stopper, shutdown) = shutdown::channel();
        let (functions_dynamodb, consistency) = functions::dynamodb_client(
            &template,
            &dynamodb_service.endpoint,
            &clients.dynamodb,
            &resources,
            &options,
            &shutdown,
        )
        .await?;
        let functions = Functions::new(&resources, &options, &functions_dynamodb, &clients.sqs)?;
        let queues = resources.queues.clone();
        let mut triggers = Triggers::new(&clients.sqs, queues, options.poll_interval, shutdown);
        let listing_api = start_triggers(
            &mut triggers,
            &template,
            &clients,
            &resources,
            &functions,
            &options,
        )
        .await?;
        let services = vec![dynamodb_service, sqs_service];
        let settings = crate::storefront::Settings {
            listing_api: listing_api.clone(),
            secret: options.revalidate_secret.clone(),
            tag_table: options
                .tag_table()
                .then(|| crate::storefront::TagTableSettings {
                    table: resources.tables.tags.clone(),
                    dynamodb: services[0].endpoint.clone(),
                    storefront: crate::storefront::LOCAL_STOREFRONT.to_owned(),
                }),
            env: options.storefront_env.clone(),
            opennext: match options.storefront {
                Some(s) if s.delivery == Delivery::OpenNext => {
                    Some(crate::storefront::opennext::prepare(root, &options.prefix)?)
                }
                _ => None,
            },
        };
        let fleet = start_storefront(root, settings, &options).await?;
        let (storefront, instances) = match &fleet {
            None => (None, Vec::new()),
            Some(fleet) => serve_fleet(fleet, &mut triggers).await?,
        };
        let mut revalidate_endpoints = options.revalidate_endpoints.clone();
        if let (Some(fleet), false) = (&fleet, options.tag_table()) {
            revalidate_endpoints.extend(fleet.revalidate_routes());
        }
        if !revalidate_endpoints.is_empty() || options.tag_table() {
            let endpoints = revalidate_endpoints.clone();
            let revalidator = functions::revalidator(endpoints, &resources, &options, &clients)?;
            let sources = template.event_sources("TagRevalidatorFunction")?.queues;
            triggers.queues(sources, revalidator).await?;
        }
        Ok(Self {
            endpoints: Endpoints {
                dynamodb: services[0].endpoint.clone(),
                sqs: services[1].endpoint.clone(),
                listing_api,
                storefront,
                storefront_instances: instances,
                revalidate_endpoints,
                tables: resources.tables,
                queues: resources.queues,
                secrets: resources.secrets,
            },
            dynamodb: clients.dynamodb,
            sqs: clients.sqs,
            stats: triggers.stats,
            consistency,
            storefront: fleet,
            reconciler: functions.reconciler,
            stopper,
            tasks: triggers.tasks,
            _services: services,
        })
    }

    /// Starts a reconciliation run now, as the schedule would (`detail` as in
    /// events/reconciler/*.json); its segments run through the reconcile queue.
    pub async fn reconcile(&self, detail: serde_json::Value) -> Result<serde_json::Value> {
        let event = serde_json::json!({
            "detail-type": "Scheduled Event",
            "source": "catalog-sync.local",
            "detail": detail,
        });
        Ok(self.reconciler.invoke(event).await?)
    }

    /// The counters and queue depths now.
    pub async fn status(&self) -> Result<Status> {
        let mut queue_depths = BTreeMap::new();
        for (logical, url) in self.endpoints.queues.all() {
            queue_depths.insert(logical.to_owned(), queue_depth(&self.sqs, url).await?);
        }
        Ok(Status {
            triggers: self
                .stats
                .iter()
                .map(|(name, s)| (name.clone(), s.snapshot()))
                .collect(),
            queue_depths,
        })
    }

    /// Whether a trigger's loop has ended with an error (the stack is then not healthy).
    pub fn check(&mut self) -> Result<()> {
        while let Some(done) = self.tasks.try_join_next() {
            done.context("a trigger panicked")?
                .context("a trigger stopped")?;
        }
        Ok(())
    }

    /// Stops every trigger after its current batch, then the services.
    pub async fn stop(mut self) -> Result<()> {
        self.stopper.stop();
        let mut first_error = None;
        while let Some(done) = self.tasks.join_next().await {
            if let Err(e) = done.map_err(anyhow::Error::from).and_then(|r| r) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Messages in a queue: visible, in flight, or delayed (listing checks wait there).
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    let count = |name: &QueueAttributeName| {
        attributes
            .get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_default()
    };
    Ok(count(&QueueAttributeName::ApproximateNumberOfMessages)
        + count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        + count(&QueueAttributeName::ApproximateNumberOfMessagesDelayed))
}

/// The stack's own clients, spared the faults and lag injected into the functions'.
struct Clients {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    sqs: aws_sdk_sqs::Client,
    /// Secrets Manager, served by the SQS emulator (moto).
    secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    async fn new(dynamodb: &str, sqs: &str) -> Self {
        let dynamodb_config = services::sdk_config(dynamodb).await;
        let sqs_config = services::sdk_config(sqs).await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&dynamodb_config),
            streams: aws_sdk_dynamodbstreams::Client::new(&dynamodb_config),
            sqs: aws_sdk_sqs::Client::new(&sqs_config),
            secrets: aws_sdk_secretsmanager::Client::new(&sqs_config),
        }
    }
}

/// The services `options` names, or DynamoDB Local and the SQS emulator started (or reused).
async fn start_services(root: &Path, options: &Options) -> Result<(Service, Service)> {
    if let Some((dynamodb, sqs)) = &options.endpoints {
        return Ok((Service::existing(dynamodb), Service::existing(sqs)));
    }
    let (root, listen) = (root.to_owned(), options.listen);
    tokio::task::spawn_blocking(move || -> Result<(Service, Service)> {
        Ok((
            services::dynamodb_local(&root, listen)?,
            services::sqs_emulator(&root, listen)?,
        ))
    })
    .await?
}

/// Creates what template.yaml declares, under the options' prefix.
async fn create_resources(
    template: &Template,
    clients: &Clients,
    options: &Options,
) -> Result<Resources> {
    let tables = Tables::under(&options.prefix);
    for (logical, name) in tables.by_logical_id() {
        create_table_if_missing(template, &clients.dynamodb, logical, name).await?;
    }
    let queues =
        Queues::from_created(create_queues(template, &clients.sqs, &options.prefix).await?)?;
    let secrets = crate::provision::secrets::create(
        &clients.secrets,
        &options.prefix,
        &[
            ("CursorSecret", &options.cursor_secret),
            ("RevalidateSecret", &options.revalidate_secret),
        ],
    )
    .await?;
    Ok(Resources {
        tables,
        queues,
        secrets,
    })
}

/// Starts the projector's streams, the reconciler's queue and schedules, and the HTTP API;
/// returns the API's URL.
async fn start_triggers(
    triggers: &mut Triggers,
    template: &Template,
    clients: &Clients,
    resources: &Resources,
    functions: &Functions,
    options: &Options,
) -> Result<String> {
    let projector = template.event_sources("SummaryProjectorFunction")?;
    let clients_pair = (&clients.dynamodb, &clients.streams);
    triggers
        .streams(
            projector.streams,
            clients_pair,
            &resources.tables,
            functions.projector.clone(),
        )
        .await?;
    triggers
        .queues(projector.queues, functions.projector.clone())
        .await?;
    let reconciler = template.event_sources("ReconcilerFunction")?;
    triggers
        .queues(reconciler.queues, functions.reconciler.clone())
        .await?;
    triggers.schedules(reconciler.schedules, functions.reconciler.clone());
    let listing = template.event_sources("ListingApiFunction")?.routes;
    let routes = functions.routes(listing, reconciler.routes);
    let addr = triggers.http(routes, options.listing_port).await?;
    Ok(format!("http://{addr}"))
}

/// Starts examples/storefront's instances when the options ask for it.
async fn start_storefront(
    root: &Path,
    settings: crate::storefront::Settings,
    options: &Options,
) -> Result<Option<Arc<crate::storefront::Fleet>>> {
    let Some(storefront) = options.storefront else {
        return Ok(None);
    };
    let (root, count) = (root.to_owned(), storefront.instances.get());
    let fleet = tokio::task::spawn_blocking(move || {
        crate::storefront::Fleet::start(&root, settings, count)
    })
    .await??;
    Ok(Some(Arc::new(fleet)))
}

/// The storefront's URL (a round-robin proxy in front of several instances) and, with
/// several, each instance's URL.
async fn serve_fleet(
    fleet: &crate::storefront::Fleet,
    triggers: &mut Triggers,
) -> Result<(Option<String>, Vec<String>)> {
    let ports = fleet.ports();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    if ports.len() == 1 {
        return Ok((urls.first().cloned(), Vec::new()));
    }
    let (url, proxy) = crate::storefront::proxy::start(ports, triggers.shutdown()).await?;
    triggers.tasks.spawn(proxy);
    Ok((Some(url), urls))
}
