//! Counts what catalog-sync's own calls cost: every request a client makes, by operation, and
//! for DynamoDB the capacity units DynamoDB reports for it (each request asks for
//! `ReturnConsumedCapacity: TOTAL`, which counts the table and its indexes).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::operation as ddb;
use aws_sdk_dynamodb::types::{ConsumedCapacity, ReturnConsumedCapacity};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut, Input,
    Output,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Requests and capacity units of one operation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub requests: u64,
    /// Requests answered with an error (a refused conditional write among them: AWS bills
    /// its write units, which DynamoDB does not report on the error).
    pub failed: u64,
    pub read_units: f64,
    pub write_units: f64,
}

/// What the metered clients used, by `Service.Operation`.
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<Mutex<BTreeMap<String, Usage>>>);

impl Meter {
    /// What was used since the last call, and a fresh start.
    pub fn take(&self) -> BTreeMap<String, Usage> {
        std::mem::take(&mut *self.0.lock().expect("meter lock"))
    }

    /// A DynamoDB client like `client` whose calls this meter counts.
    pub fn dynamodb(&self, client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        let config = client
            .config()
            .to_builder()
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// An SQS client like `client` whose calls this meter counts.
    pub fn sqs(&self, client: &aws_sdk_sqs::Client) -> aws_sdk_sqs::Client {
        let config = client
            .config()
            .to_builder()
            .interceptor(self.clone())
            .build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    fn add(&self, operation: String, outcome: Result<Vec<ConsumedCapacity>, ()>) {
        let writes = WRITES.iter().any(|w| operation.ends_with(w));
        let mut usage = self.0.lock().expect("meter lock");
        let usage = usage.entry(operation).or_default();
        usage.requests += 1;
        let Ok(capacity) = outcome else {
            usage.failed += 1;
            return;
        };
        for c in capacity {
            // DynamoDB Local may fill only the total: a write call's is write units.
            let (read, write) = match (c.read_capacity_units, c.write_capacity_units) {
                (None, None) if writes => (0.0, c.capacity_units.unwrap_or_default()),
                (None, None) => (c.capacity_units.unwrap_or_default(), 0.0),
                (read, write) => (read.unwrap_or_default(), write.unwrap_or_default()),
            };
            usage.read_units += read;
            usage.write_units += write;
        }
    }
}

const WRITES: [&str; 5] = [
    ".PutItem",
    ".UpdateItem",
    ".DeleteItem",
    ".BatchWriteItem",
    ".TransactWriteItems",
];

/// Asks for the capacity on every DynamoDB input that can report it.
fn ask_for_capacity(input: &mut Input) {
    let total = Some(ReturnConsumedCapacity::Total);
    macro_rules! ask {
        ($($op:ident :: $input:ident),*) => {
            $(if let Some(i) = input.downcast_mut::<ddb::$op::$input>() {
                i.return_consumed_capacity = total;
                return;
            })*
        };
    }
    ask!(
        get_item::GetItemInput,
        put_item::PutItemInput,
        update_item::UpdateItemInput,
        delete_item::DeleteItemInput,
        query::QueryInput,
        scan::ScanInput,
        batch_get_item::BatchGetItemInput,
        batch_write_item::BatchWriteItemInput,
        transact_write_items::TransactWriteItemsInput
    );
}

/// The capacity a DynamoDB output reports.
fn capacity_of(output: &Output) -> Vec<ConsumedCapacity> {
    macro_rules! one {
        ($($op:ident :: $output:ident),*) => {
            $(if let Some(o) = output.downcast_ref::<ddb::$op::$output>() {
                return o.consumed_capacity.clone().into_iter().collect();
            })*
        };
    }
    macro_rules! many {
        ($($op:ident :: $output:ident),*) => {
            $(if let Some(o) = output.downcast_ref::<ddb::$op::$output>() {
                return o.consumed_capacity.clone().unwrap_or_default();
            })*
        };
    }
    one!(
        get_item::GetItemOutput,
        put_item::PutItemOutput,
        update_item::UpdateItemOutput,
        delete_item::DeleteItemOutput,
        query::QueryOutput,
        scan::ScanOutput
    );
    many!(
        batch_get_item::BatchGetItemOutput,
        batch_write_item::BatchWriteItemOutput,
        transact_write_items::TransactWriteItemsOutput
    );
    Vec::new()
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "Meter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        ask_for_capacity(context.input_mut());
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let metadata = cfg.load::<Metadata>();
        let operation =
            metadata.map_or("?".to_owned(), |m| format!("{}.{}", m.service(), m.name()));
        let outcome = context.output_or_error().map(capacity_of).map_err(|_| ());
        self.add(operation, outcome);
        Ok(())
    }
}
