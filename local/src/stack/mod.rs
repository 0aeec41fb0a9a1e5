//! The whole pipeline on one machine: services, the template's tables and queues, every
//! function behind the event source mappings, schedule and HTTP API template.yaml gives it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_sqs::types::QueueAttributeName;
use catalog::config::{ProjectorConfig, ReconcilerConfig};
use catalog::store::{SummaryStore, TableNames};
use catalog_core::tags::StockTagPolicy;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::consistency::{AwsConsistency, ConsistencyProxy, ConsistencyStats};
use crate::event_sources::{HttpRoute, QueueSource};
use crate::function::{self, Function};
use crate::queue_mapping::QueueMapping;
use crate::services::{self, Service};
use crate::shutdown::{self, Shutdown, Stopper};
use crate::stats::{Snapshot, Stats};
use crate::stream_mapping::StreamMapping;
use crate::template::{create_queues, Template};
use crate::{http_api, schedule};

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
    /// Which interfaces started services listen on (every one lets `sam local` containers in).
    pub listen: services::Listen,
    /// Revalidate routes the tag-revalidator calls (besides the storefront's, if started).
    /// With none and no storefront, tag messages wait in the tag queue.
    pub revalidate_endpoints: Vec<String>,
    /// Start examples/storefront (Next.js) against the local listing API.
    pub storefront: bool,
    /// The secret revalidate calls are signed with (`REVALIDATE_SECRET` locally).
    pub revalidate_secret: String,
    /// Per-call timeout of the tag-revalidator.
    pub revalidate_timeout: Duration,
    /// Throttles the functions' DynamoDB calls (chaos runs); the stack's own client is spared.
    pub throttling: Option<Arc<crate::faults::Throttling>>,
    /// Makes the functions' DynamoDB as weak as AWS's: a lagging index and replica, held
    /// writes (see [`crate::consistency`]). The stack's own client is spared.
    pub aws_consistency: Option<AwsConsistency>,
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
            storefront: false,
            revalidate_secret: "local-revalidate-secret-not-for-production".into(),
            revalidate_timeout: Duration::from_secs(5),
            throttling: None,
            aws_consistency: None,
        }
    }
}

/// Where everything is, written to `.local/stack.json` for the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    pub dynamodb: String,
    pub sqs: String,
    pub listing_api: String,
    /// The example storefront, when started.
    pub storefront: Option<String>,
    /// Where the tag-revalidator sends tags.
    pub revalidate_endpoints: Vec<String>,
    pub tables: TableNames,
    /// Logical id (as in template.yaml) -> queue URL.
    pub queues: BTreeMap<String, String>,
    /// Logical id (`CursorSecret`, `RevalidateSecret`) -> ARN in the emulator's Secrets
    /// Manager, holding the local values.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

impl Endpoints {
    /// The file the running stack writes and the CLI reads.
    pub fn path(root: &Path) -> PathBuf {
        crate::local_dir(root).join("stack.json")
    }

    /// Reads the running stack's endpoints.
    pub fn read(root: &Path) -> Result<Self> {
        let path = Self::path(root);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{path:?} is missing: start the stack first (scripts/dev)"))?;
        serde_json::from_str(&text).with_context(|| format!("reading {path:?}"))
    }

    /// Clients for these endpoints.
    pub async fn clients(&self) -> (aws_sdk_dynamodb::Client, aws_sdk_sqs::Client) {
        (
            aws_sdk_dynamodb::Client::new(&services::sdk_config(&self.dynamodb).await),
            aws_sdk_sqs::Client::new(&services::sdk_config(&self.sqs).await),
        )
    }
}

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
        let (dynamodb_service, sqs_service) = match &options.endpoints {
            Some((dynamodb, sqs)) => (Service::existing(dynamodb), Service::existing(sqs)),
            None => {
                let (root, listen) = (root.to_owned(), options.listen);
                tokio::task::spawn_blocking(move || -> Result<(Service, Service)> {
                    Ok((
                        services::dynamodb_local(&root)?,
                        services::sqs_emulator(&root, listen)?,
                    ))
                })
                .await??
            }
        };
        let dynamodb_config = services::sdk_config(&dynamodb_service.endpoint).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&dynamodb_config);
        let streams = aws_sdk_dynamodbstreams::Client::new(&dynamodb_config);
        let sqs_config = services::sdk_config(&sqs_service.endpoint).await;
        let sqs = aws_sdk_sqs::Client::new(&sqs_config);
        let tables = TableNames {
            products: format!("{}Products", options.prefix),
            inventory: format!("{}Inventory", options.prefix),
            summaries: format!("{}Summaries", options.prefix),
        };
        let mut table_names = HashMap::new();
        for (logical, name) in [
            ("ProductsTable", &tables.products),
            ("InventoryTable", &tables.inventory),
            ("SummariesTable", &tables.summaries),
        ] {
            create_table_if_missing(&template, &dynamodb, logical, name).await?;
            table_names.insert(logical.to_owned(), name.clone());
        }
        let queues = create_queues(&template, &sqs, &options.prefix).await?;
        let secrets = crate::secrets::create(
            &aws_sdk_secretsmanager::Client::new(&sqs_config),
            &options.prefix,
            &[
                ("CursorSecret", &options.cursor_secret),
                ("RevalidateSecret", &options.revalidate_secret),
            ],
        )
        .await?;
        let (stopper, shutdown) = shutdown::channel();

        // What the functions use: the same endpoint, or the AWS-consistency proxy in front of
        // it; throttled in chaos runs.
        let mut functions_config = dynamodb_config.clone();
        let mut consistency = None;
        if let Some(settings) = options.aws_consistency {
            let replica = crate::consistency::replica_name(&tables.summaries);
            create_table_if_missing(&template, &dynamodb, "SummariesTable", &replica).await?;
            let proxy = ConsistencyProxy::start(
                &dynamodb_service.endpoint,
                dynamodb.clone(),
                &tables.summaries,
                &replica,
                settings,
                shutdown.clone(),
            )
            .await?;
            functions_config = services::sdk_config(&proxy.endpoint).await;
            consistency = Some(proxy.stats);
        }
        let functions_dynamodb = match &options.throttling {
            Some(throttling) => {
                services::wrapped_dynamodb(&functions_config, |http| throttling.wrap(http))
            }
            None => aws_sdk_dynamodb::Client::new(&functions_config),
        };

        let projector: Arc<dyn Function> = Arc::new(summary_projector::Projector::new(
            &ProjectorConfig {
                tables: tables.clone(),
                tag_queue_url: queues["TagQueue"].clone(),
                parked_queue_url: queues["ParkedRecordsQueue"].clone(),
                stock_tag_policy: options.stock_tag_policy,
            },
            functions_dynamodb.clone(),
            sqs.clone(),
        ));
        let projector = match &options.wrap_projector {
            Some(wrap) => wrap(projector),
            None => projector,
        };
        let reconciler = Arc::new(function::Reconciler {
            handler: reconciler::Reconciler::new(
                &ReconcilerConfig {
                    tables: tables.clone(),
                    tag_queue_url: queues["TagQueue"].clone(),
                    reconcile_queue_url: queues["ReconcileQueue"].clone(),
                    default_segments: 4,
                    stock_tag_policy: options.stock_tag_policy,
                },
                functions_dynamodb.clone(),
                sqs.clone(),
            ),
            timeout: Duration::from_secs(900),
        });
        let listing: Arc<dyn Function> = Arc::new(listing_api::ListingApi::new(
            SummaryStore::new(functions_dynamodb.clone(), tables.summaries.clone()),
            listing_api::cursor::CursorKey::new(options.cursor_secret.as_bytes())?,
        ));

        let mut tasks = JoinSet::new();
        let mut stats: BTreeMap<String, Arc<Stats>> = BTreeMap::new();

        for source in template.event_sources("SummaryProjectorFunction")?.streams {
            let table = table_names
                .get(&source.table)
                .ok_or_else(|| anyhow!("{}: unknown table {}", source.name, source.table))?;
            let start = ShardIteratorType::from(source.starting_position.as_str());
            let reader =
                crate::streams::StreamReader::new(&dynamodb, streams.clone(), table, start).await?;
            let counters = Arc::new(Stats::default());
            stats.insert(source.name.clone(), counters.clone());
            let mapping = StreamMapping {
                on_failure_url: source.on_failure_queue.as_ref().map(|q| queues[q].clone()),
                source,
                reader,
                function: projector.clone(),
                sqs: sqs.clone(),
                poll_interval: options.poll_interval,
                stats: counters,
            };
            tasks.spawn(mapping.run(shutdown.clone()));
        }

        let reconciler_sources = template.event_sources("ReconcilerFunction")?;
        let mut queue_triggers = QueueTriggers {
            sqs: &sqs,
            queues: &queues,
            poll_interval: options.poll_interval,
            stats: &mut stats,
            tasks: &mut tasks,
            shutdown: &shutdown,
        };
        queue_triggers
            .spawn(reconciler_sources.queues.clone(), reconciler.clone())
            .await?;
        for source in reconciler_sources.schedules.clone() {
            let counters = Arc::new(Stats::default());
            stats.insert(source.name.clone(), counters.clone());
            tasks.spawn(run_schedule(
                source.expression,
                source.input,
                reconciler.clone(),
                counters,
                shutdown.clone(),
            ));
        }

        let mut routes: Vec<(HttpRoute, Arc<dyn Function>)> = Vec::new();
        for route in template.event_sources("ListingApiFunction")?.routes {
            routes.push((route, listing.clone()));
        }
        for route in reconciler_sources.routes {
            routes.push((route, reconciler.clone() as Arc<dyn Function>));
        }
        let (listener, addr) = http_api::bind(options.listing_port).await?;
        let counters = Arc::new(Stats::default());
        stats.insert("ListingApi".into(), counters.clone());
        tasks.spawn(http_api::serve(
            listener,
            Arc::new(routes),
            counters,
            shutdown.clone(),
        ));

        let listing_api = format!("http://{addr}");
        let mut revalidate_endpoints = options.revalidate_endpoints.clone();
        let mut storefront = None;
        let mut services = vec![dynamodb_service, sqs_service];
        if options.storefront {
            let (root, api, secret) = (
                root.to_owned(),
                listing_api.clone(),
                options.revalidate_secret.clone(),
            );
            let (service, route) =
                tokio::task::spawn_blocking(move || crate::storefront::start(&root, &api, &secret))
                    .await??;
            storefront = Some(service.endpoint.clone());
            revalidate_endpoints.push(route);
            services.push(service);
        }
        if !revalidate_endpoints.is_empty() {
            let revalidator: Arc<dyn Function> = Arc::new(tag_revalidator::Revalidator::new(
                revalidate_endpoints.clone(),
                tag_revalidator::client::RevalidateClient::new(
                    options.revalidate_secret.as_bytes(),
                    options.revalidate_timeout,
                )?,
                sqs.clone(),
                queues["TagQueue"].clone(),
                128,
            ));
            let sources = template.event_sources("TagRevalidatorFunction")?.queues;
            QueueTriggers {
                sqs: &sqs,
                queues: &queues,
                poll_interval: options.poll_interval,
                stats: &mut stats,
                tasks: &mut tasks,
                shutdown: &shutdown,
            }
            .spawn(sources, revalidator)
            .await?;
        }

        Ok(Self {
            endpoints: Endpoints {
                dynamodb: services[0].endpoint.clone(),
                sqs: services[1].endpoint.clone(),
                listing_api,
                storefront,
                revalidate_endpoints,
                tables,
                queues: queues.into_iter().collect(),
                secrets,
            },
            dynamodb,
            sqs,
            stats,
            consistency,
            reconciler,
            stopper,
            tasks,
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
        for (logical, url) in &self.endpoints.queues {
            queue_depths.insert(logical.clone(), queue_depth(&self.sqs, url).await?);
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

async fn create_table_if_missing(
    template: &Template,
    dynamodb: &aws_sdk_dynamodb::Client,
    logical: &str,
    name: &str,
) -> Result<()> {
    let exists = dynamodb
        .describe_table()
        .table_name(name)
        .send()
        .await
        .is_ok();
    if !exists {
        template.table(logical)?.create(dynamodb, name).await?;
    }
    Ok(())
}

/// What starting a function's SQS triggers needs.
struct QueueTriggers<'a> {
    sqs: &'a aws_sdk_sqs::Client,
    queues: &'a HashMap<String, String>,
    poll_interval: Duration,
    stats: &'a mut BTreeMap<String, Arc<Stats>>,
    tasks: &'a mut JoinSet<Result<()>>,
    shutdown: &'a Shutdown,
}

impl QueueTriggers<'_> {
    /// Starts `function` behind each of `sources`, counted under each source's name.
    async fn spawn(
        &mut self,
        sources: Vec<QueueSource>,
        function: Arc<dyn Function>,
    ) -> Result<()> {
        for source in sources {
            let queue_url = self
                .queues
                .get(&source.queue)
                .ok_or_else(|| anyhow!("{}: unknown queue {}", source.name, source.queue))?
                .clone();
            let queue_arn = self
                .sqs
                .get_queue_attributes()
                .queue_url(&queue_url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await?
                .attributes
                .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
                .ok_or_else(|| anyhow!("no QueueArn for {queue_url}"))?;
            let counters = Arc::new(Stats::default());
            self.stats.insert(source.name.clone(), counters.clone());
            let mapping = QueueMapping {
                source,
                queue_url,
                queue_arn,
                function: function.clone(),
                sqs: self.sqs.clone(),
                poll_interval: self.poll_interval,
                stats: counters,
            };
            self.tasks.spawn(mapping.run(self.shutdown.clone()));
        }
        Ok(())
    }
}

/// Messages in a queue: visible, in flight, or delayed (the listing rechecks wait there).
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

/// Invokes `function` with `input` whenever `expression` fires.
async fn run_schedule(
    expression: String,
    input: serde_json::Value,
    function: Arc<function::Reconciler>,
    stats: Arc<Stats>,
    mut shutdown: Shutdown,
) -> Result<()> {
    loop {
        let wait = schedule::next_delay(&expression, chrono::Utc::now())?;
        if !shutdown.sleep(wait).await {
            return Ok(());
        }
        Stats::add(&stats.invocations, 1);
        match function.invoke(input.clone()).await {
            Ok(answer) => {
                Stats::add(&stats.records, 1);
                tracing::info!(%answer, "scheduled reconciliation started");
            }
            Err(e) => {
                Stats::add(&stats.errors, 1);
                tracing::error!(error = %e, "scheduled reconciliation failed to start");
            }
        }
    }
}
