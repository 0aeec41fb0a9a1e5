//! The integration-test harness: DynamoDB Local and moto started once per test binary, and a
//! fresh set of tables and queues (created from template.yaml) for every test. What a test
//! reads back, from a `TestEnv` or a whole local `Stack` alike, is [`Inspect`].

pub mod browser;
pub mod eventually;
pub mod inspect;
pub mod lambda_watch;
pub mod listening;
pub mod metric_refs;
pub mod revalidate_route;
pub mod sample_events;
pub mod storefront_stub;

pub use inspect::{expected_summary, Inspect};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use catalog::config::ProjectorConfig;
use catalog::store::{SummaryStore, TableNames};
use catalog_core::model::{InventoryRow, Product};
use catalog_core::tags::StockTagPolicy;
use catalog_local::emulator::queue_mapping::lambda_record;
use catalog_local::emulator::streams::{decode_event, lambda_event, StreamReader};
use catalog_local::provision::create_queues;
use catalog_local::services::{self, Service};
use catalog_local::stack::{Queues, Resources, Tables};
use catalog_local::template::Template;
use summary_projector::Projector;

/// A listing-api response, as API Gateway would receive it.
#[derive(Debug, Clone)]
pub struct ApiReply {
    pub status: u16,
    pub headers: serde_json::Value,
    pub body: serde_json::Value,
}

impl ApiReply {
    /// A response header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.as_str())
    }
}

struct Services {
    dynamodb: Service,
    sqs: Service,
}

static LISTEN: OnceLock<services::Listen> = OnceLock::new();

/// Makes this test binary's services listen on the Docker bridge too, so that containers
/// reach them. Call it before the first [`TestEnv`]; it fails if the services already run.
pub fn listen_for_containers() -> Result<()> {
    let bridge = catalog_local::services::docker_bridge::address()?;
    LISTEN
        .set(services::Listen::LoopbackAnd(bridge))
        .map_err(|_| anyhow::anyhow!("the services were started before listen_for_containers"))
}

fn services() -> &'static Services {
    static SERVICES: OnceLock<Services> = OnceLock::new();
    SERVICES.get_or_init(|| {
        let root = catalog_local::workspace_root();
        let listen = *LISTEN.get_or_init(services::Listen::default);
        Services {
            dynamodb: services::dynamodb_local(&root, listen).expect("starting DynamoDB Local"),
            sqs: services::sqs_emulator(&root, listen).expect("starting the SQS emulator"),
        }
    })
}

/// The endpoints of the shared DynamoDB Local and SQS emulator (started on first use).
pub fn endpoints() -> (String, String) {
    let services = services();
    (
        services.dynamodb.endpoint.clone(),
        services.sqs.endpoint.clone(),
    )
}

/// One test's own tables, queues and stream readers on the shared local services.
pub struct TestEnv {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub tables: TableNames,
    pub queues: Queues,
    pub config: ProjectorConfig,
    /// `None` when the tables were made without streams ([`TestEnv::without_streams`]).
    streams: Option<Streams>,
}

/// Everything a stream reader has now, as the JSON event Lambda sends.
async fn drain_json(reader: &tokio::sync::Mutex<StreamReader>) -> Result<serde_json::Value> {
    let mut reader = reader.lock().await;
    let records = reader.drain().await?;
    Ok(lambda_event(&records, reader.stream_arn()))
}

struct Streams {
    products: tokio::sync::Mutex<StreamReader>,
    inventory: tokio::sync::Mutex<StreamReader>,
}

impl TestEnv {
    /// Creates the template's tables and queues under a name prefix no other test uses.
    pub async fn new() -> Result<Self> {
        Self::create(true).await
    }

    /// The same tables without streams, for work that only reads the tables: DynamoDB Local
    /// looks up the stream's description on every write, which grows slow with tens of
    /// thousands of stream records.
    pub async fn without_streams() -> Result<Self> {
        Self::create(false).await
    }

    async fn create(with_streams: bool) -> Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "t{}-{}-",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let services = services();
        let dynamodb_config = services::sdk_config(&services.dynamodb.endpoint).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&dynamodb_config);
        let streams = aws_sdk_dynamodbstreams::Client::new(&dynamodb_config);
        let sqs = aws_sdk_sqs::Client::new(&services::sdk_config(&services.sqs.endpoint).await);

        let template = Template::load(&catalog_local::workspace_root())?;
        let all = Tables::under(&prefix);
        // The tag table is made on demand (`create_tag_table`).
        for (logical, name) in all.by_logical_id() {
            if logical == "TagTable" {
                continue;
            }
            let mut table = template.table(logical)?.clone();
            if !with_streams {
                table.stream_view_type = None;
            }
            table.create(&dynamodb, name).await?;
        }
        let queues = Queues::from_created(create_queues(&template, &sqs, &prefix).await?)?;
        let tables = all.catalog.clone();
        let resources = Resources {
            tables: all,
            queues: queues.clone(),
            secrets: Default::default(),
        };
        let config = resources.projector_config(StockTagPolicy::Eager)?;
        let streams = if with_streams {
            let reader = |table: String| {
                let (dynamodb, streams) = (dynamodb.clone(), streams.clone());
                async move {
                    StreamReader::new(&dynamodb, streams, &table, ShardIteratorType::TrimHorizon)
                        .await
                        .map(tokio::sync::Mutex::new)
                }
            };
            Some(Streams {
                products: reader(tables.products.clone()).await?,
                inventory: reader(tables.inventory.clone()).await?,
            })
        } else {
            None
        };
        Ok(Self {
            dynamodb,
            sqs,
            tables,
            queues,
            config,
            streams,
        })
    }

    /// Creates this test's tag table (template.yaml's `TagTable`) and returns its name.
    pub async fn create_tag_table(&self) -> Result<String> {
        let name = self.resources().tables.tags;
        let template = Template::load(&catalog_local::workspace_root())?;
        template
            .table("TagTable")?
            .create(&self.dynamodb, &name)
            .await?;
        Ok(name)
    }

    /// This test's tables and queues (no secrets: tests pass theirs as values).
    pub fn resources(&self) -> Resources {
        let prefix = self.tables.products.trim_end_matches("Products");
        Resources {
            tables: Tables::under(prefix),
            queues: self.queues.clone(),
            secrets: Default::default(),
        }
    }

    /// The real projector, wired to this test's tables and queues.
    pub fn projector(&self) -> Projector {
        self.projector_with(&self.config)
    }

    /// The real projector with a changed configuration.
    pub fn projector_with(&self, config: &ProjectorConfig) -> Projector {
        Projector::new(config, self.dynamodb.clone(), self.sqs.clone())
    }

    /// A configuration whose Summaries table is a new, empty one (from the same template
    /// definition), so that two runs can project the same sources side by side.
    pub async fn fresh_summaries(&self, suffix: &str) -> Result<ProjectorConfig> {
        let template = Template::load(&catalog_local::workspace_root())?;
        let name = format!("{}-{suffix}", self.tables.summaries);
        template
            .table("SummariesTable")?
            .create(&self.dynamodb, &name)
            .await?;
        let mut config = self.config.clone();
        config.tables.summaries = name;
        Ok(config)
    }

    /// The real reconciler, wired to this test's tables and queues.
    pub fn reconciler(&self) -> reconciler::Reconciler {
        let config = self
            .resources()
            .reconciler_config(StockTagPolicy::Eager, 2)
            .expect("the test's own resources configure the reconciler");
        reconciler::Reconciler::new(&config, self.dynamodb.clone(), self.sqs.clone())
    }

    /// Runs a whole reconciliation as AWS would: the run request fans out segment messages to
    /// the reconcile queue, and each is handed to the reconciler as an SQS event until the
    /// queue is empty (continuations included). `segment_deadline` is each invocation's time
    /// budget. Returns the finished segments' reports, added up.
    pub async fn reconcile(
        &self,
        reconciler: &reconciler::Reconciler,
        detail: serde_json::Value,
        segment_deadline: std::time::Duration,
    ) -> Result<catalog_core::reconcile::Report> {
        let schedule = serde_json::json!({
            "version": "0", "id": format!("run-{}", unique_id()), "detail-type": "Scheduled Event",
            "source": "catalog-sync.test", "account": "000000000000", "time": "2026-11-26T03:30:00Z",
            "region": "us-east-1", "resources": [], "detail": detail,
        });
        reconciler
            .handle(schedule, std::time::Instant::now())
            .await?;
        let mut total = catalog_core::reconcile::Report::default();
        loop {
            let bodies = self.drain_queue("ReconcileQueue").await?;
            if bodies.is_empty() {
                return Ok(total);
            }
            for body in bodies {
                let message: reconciler::SegmentMessage = serde_json::from_str(&body)?;
                let deadline = std::time::Instant::now() + segment_deadline;
                let delivery = unique_id().to_string();
                let outcome = reconciler.run_segment(message, &delivery, deadline).await?;
                if let reconciler::Segment::Finished(report) = outcome {
                    total.merge(&report);
                }
            }
        }
    }

    /// The real listing-api over this test's Summaries table.
    pub fn listing_api(&self) -> listing_api::ListingApi {
        let key = listing_api::cursor::CursorKey::new(b"integration-test-cursor-key-32b!")
            .expect("a long enough key");
        listing_api::ListingApi::new(
            SummaryStore::new(self.dynamodb.clone(), &self.tables.summaries),
            key,
        )
    }

    /// Walks every page of `path?query` (as an admin when `admin`), following `nextCursor`:
    /// the product ids in order and the size of each page.
    pub async fn walk_listing(
        &self,
        admin: bool,
        path: &str,
        query: &str,
    ) -> Result<(Vec<String>, Vec<usize>)> {
        let (mut all, mut sizes, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
        loop {
            let target = match &cursor {
                None => format!("{path}?{query}"),
                Some(c) => format!("{path}?{query}&cursor={c}"),
            };
            let reply = if admin {
                self.call_api_as_admin("GET", &target).await?
            } else {
                self.call_api("GET", &target, &[], None).await?
            };
            anyhow::ensure!(reply.status == 200, "{target}: {:?}", reply.body);
            let page: Vec<String> = reply.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| i["productId"].as_str().unwrap_or_default().to_owned())
                .collect();
            sizes.push(page.len());
            all.extend(page);
            match reply.body["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok((all, sizes)),
            }
        }
    }

    /// Sends `method target` (with headers and body) to listing-api in API Gateway's v2 event
    /// shape; returns the status, the headers and the body parsed as JSON (`Null` if none).
    pub async fn call_api(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<ApiReply> {
        let event = catalog_local::emulator::apigw::http_request(method, target, headers, body);
        self.send_api(event).await
    }

    /// [`TestEnv::call_api`] as a caller API Gateway's IAM authorizer let through.
    pub async fn call_api_as_admin(&self, method: &str, target: &str) -> Result<ApiReply> {
        let mut event = catalog_local::emulator::apigw::http_request(method, target, &[], None);
        catalog_local::emulator::apigw::authorize_iam(&mut event);
        self.send_api(event).await
    }

    async fn send_api(&self, event: serde_json::Value) -> Result<ApiReply> {
        self.send_api_to(&self.listing_api(), event).await
    }

    /// A shopper's `GET target` to `api` (a listing-api built with other keys).
    pub async fn get_from(&self, api: &listing_api::ListingApi, target: &str) -> Result<ApiReply> {
        let event = catalog_local::emulator::apigw::http_request("GET", target, &[], None);
        self.send_api_to(api, event).await
    }

    async fn send_api_to(
        &self,
        api: &listing_api::ListingApi,
        event: serde_json::Value,
    ) -> Result<ApiReply> {
        let request = serde_json::from_value(event).context("API Gateway v2 request shape")?;
        let response = api.handle(request).await;
        // Through JSON, as the runtime would send it back to API Gateway.
        let response: serde_json::Value = serde_json::to_value(&response)?;
        let body = match response.get("body").and_then(|b| b.as_str()) {
            Some(text) => serde_json::from_str(text).context("response body is JSON")?,
            None => serde_json::Value::Null,
        };
        Ok(ApiReply {
            status: response["statusCode"].as_u64().unwrap_or_default() as u16,
            headers: response["headers"].clone(),
            body,
        })
    }

    /// Writes a product row as a writer would (whole item).
    pub async fn put_product(&self, product: &Product) -> Result<()> {
        self.put_item(&self.tables.products, serde_dynamo::to_item(product)?)
            .await
    }

    /// Writes a stock row.
    pub async fn put_stock(&self, row: &InventoryRow) -> Result<()> {
        self.put_item(&self.tables.inventory, serde_dynamo::to_item(row)?)
            .await
    }

    /// Writes a raw item to a table, for rows no valid type can express.
    pub async fn put_item(&self, table: &str, item: HashMap<String, AttributeValue>) -> Result<()> {
        self.dynamodb
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .with_context(|| format!("PutItem {table}"))?;
        Ok(())
    }

    /// Hard-deletes a product row.
    pub async fn delete_product(&self, id: &str) -> Result<()> {
        self.dynamodb
            .delete_item()
            .table_name(&self.tables.products)
            .key("productId", AttributeValue::S(id.into()))
            .send()
            .await?;
        Ok(())
    }

    /// The Products stream records written since the last call, as one Lambda event.
    pub async fn products_event(&self) -> Result<Event> {
        decode_event(&self.products_event_json().await?)
    }

    /// The same, as the JSON Lambda sends.
    pub async fn products_event_json(&self) -> Result<serde_json::Value> {
        let streams = self
            .streams
            .as_ref()
            .context("tables made without streams")?;
        drain_json(&streams.products).await
    }

    /// The Inventory stream records written since the last call, as one Lambda event.
    pub async fn inventory_event(&self) -> Result<Event> {
        decode_event(&self.inventory_event_json().await?)
    }

    /// The same, as the JSON Lambda sends.
    pub async fn inventory_event_json(&self) -> Result<serde_json::Value> {
        let streams = self
            .streams
            .as_ref()
            .context("tables made without streams")?;
        drain_json(&streams.inventory).await
    }

    /// Hands whatever both streams hold now to the real projector, Products first, and fails
    /// on any batch item failure.
    pub async fn project_pending(&self) -> Result<()> {
        let projector = self.projector();
        for event in [self.products_event().await?, self.inventory_event().await?] {
            let response = projector.handle(event).await?;
            anyhow::ensure!(response.batch_item_failures.is_empty(), "{response:?}");
        }
        Ok(())
    }

    /// Receives up to 10 messages visible on the queue at `url` (waiting up to `wait_secs`
    /// for one), as Lambda's SQS mapping hands them to a function.
    pub async fn receive_event(&self, url: &str, wait_secs: i32) -> Result<SqsEvent> {
        let arn = catalog_local::provision::queue_arn(&self.sqs, url).await?;
        let messages = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?
            .messages
            .unwrap_or_default();
        let records: Vec<_> = messages.iter().map(|m| lambda_record(m, &arn)).collect();
        Ok(serde_json::from_value(
            serde_json::json!({ "Records": records }),
        )?)
    }
}

/// An id no other call in any test process returns (run ids, SQS message ids).
pub fn unique_id() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("{}-{nanos}-{n}", std::process::id())
}
