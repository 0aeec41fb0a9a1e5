//! The event sources template.yaml gives each function, run as Lambda would run them: stream
//! mappings, SQS mappings, schedules and the HTTP API, each a task counted under its event
//! name.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use tokio::task::JoinSet;

use super::resources::{Queues, Tables};
use crate::emulator::function::{self, Function};
use crate::emulator::http_api;
use crate::emulator::queue_mapping::QueueMapping;
use crate::emulator::schedule;
use crate::emulator::stats::Stats;
use crate::emulator::stream_mapping::StreamMapping;
use crate::emulator::streams::StreamReader;
use crate::provision::queue_arn;
use crate::shutdown::Shutdown;
use crate::template::event_sources::{HttpRoute, QueueSource, ScheduleSource, StreamSource};

/// The running triggers and their counters.
pub struct Triggers {
    sqs: aws_sdk_sqs::Client,
    queues: Queues,
    poll_interval: Duration,
    shutdown: Shutdown,
    /// Counters by event name in template.yaml.
    pub stats: BTreeMap<String, Arc<Stats>>,
    pub tasks: JoinSet<Result<()>>,
}

impl Triggers {
    /// What stops every trigger, for tasks started beside them.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// No trigger yet; each one started stops on `shutdown`.
    pub fn new(
        sqs: &aws_sdk_sqs::Client,
        queues: Queues,
        poll_interval: Duration,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            sqs: sqs.clone(),
            queues,
            poll_interval,
            shutdown,
            stats: BTreeMap::new(),
            tasks: JoinSet::new(),
        }
    }

    fn counters(&mut self, name: &str) -> Arc<Stats> {
        let counters = Arc::new(Stats::default());
        self.stats.insert(name.to_owned(), counters.clone());
        counters
    }

    /// Starts `function` behind each stream source, reading the tables `tables` names.
    pub async fn streams(
        &mut self,
        sources: Vec<StreamSource>,
        (dynamodb, streams): (&aws_sdk_dynamodb::Client, &aws_sdk_dynamodbstreams::Client),
        tables: &Tables,
        function: Arc<dyn Function>,
    ) -> Result<()> {
        for source in sources {
            let table = tables
                .by_logical_id()
                .into_iter()
                .find(|(logical, _)| *logical == source.table)
                .map(|(_, name)| name)
                .ok_or_else(|| anyhow!("{}: unknown table {}", source.name, source.table))?;
            let start = ShardIteratorType::from(source.starting_position.as_str());
            let reader = StreamReader::new(dynamodb, streams.clone(), table, start).await?;
            let on_failure_url = match &source.on_failure_queue {
                Some(queue) => Some(self.queues.url(queue)?.to_owned()),
                None => None,
            };
            let mapping = StreamMapping {
                on_failure_url,
                stats: self.counters(&source.name),
                source,
                reader,
                function: function.clone(),
                sqs: self.sqs.clone(),
                poll_interval: self.poll_interval,
            };
            self.tasks.spawn(mapping.run(self.shutdown.clone()));
        }
        Ok(())
    }

    /// Starts `function` behind each SQS source.
    pub async fn queues(
        &mut self,
        sources: Vec<QueueSource>,
        function: Arc<dyn Function>,
    ) -> Result<()> {
        for source in sources {
            let queue_url = self.queues.url(&source.queue)?.to_owned();
            let queue_arn = queue_arn(&self.sqs, &queue_url).await?;
            let mapping = QueueMapping {
                stats: self.counters(&source.name),
                source,
                queue_url,
                queue_arn,
                function: function.clone(),
                sqs: self.sqs.clone(),
                poll_interval: self.poll_interval,
            };
            self.tasks.spawn(mapping.run(self.shutdown.clone()));
        }
        Ok(())
    }

    /// Invokes the reconciler whenever each schedule fires.
    pub fn schedules(
        &mut self,
        sources: Vec<ScheduleSource>,
        reconciler: Arc<function::Reconciler>,
    ) {
        for source in sources {
            let counters = self.counters(&source.name);
            self.tasks.spawn(run_schedule(
                source.expression,
                source.input,
                reconciler.clone(),
                counters,
                self.shutdown.clone(),
            ));
        }
    }

    /// Serves `routes` on 127.0.0.1:`port` (0: any free port), counted as `ListingApi`.
    pub async fn http(
        &mut self,
        routes: Vec<(HttpRoute, Arc<dyn Function>)>,
        port: u16,
    ) -> Result<SocketAddr> {
        let (listener, addr) = http_api::bind(port).await?;
        let counters = self.counters("ListingApi");
        let routes = routes
            .into_iter()
            .map(|(route, function)| {
                let route_counters = self.counters(&format!("ListingApi {}", route.name));
                (route, function, route_counters)
            })
            .collect();
        self.tasks.spawn(http_api::serve(
            listener,
            Arc::new(routes),
            counters,
            self.shutdown.clone(),
        ));
        Ok(addr)
    }
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
