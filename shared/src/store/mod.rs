//! DynamoDB adapters: the source tables (read-only), the Summaries table, the tag table and
//! the reconciler's progress table.

mod batch_get;
pub mod pages;
pub mod progress;
pub mod sources;
pub mod summaries;
pub mod tag_table;

pub use pages::{Page, Slice, STORE_INDEX};
pub use progress::{Claim, Progress, ProgressStore, PROGRESS_TTL_SECS};
pub use sources::SourceStore;
pub use summaries::{NewSummary, Stored, SummaryStore, Write};
pub use tag_table::TagTable;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// A DynamoDB item as the SDK holds it.
pub type Item = HashMap<String, AttributeValue>;

/// The names of the three tables, read from the environment at cold start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableNames {
    pub products: String,
    pub inventory: String,
    pub summaries: String,
}

/// A row that exists but cannot be decoded: a bad write upstream that no retry will cure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table} item for product {product_id} cannot be decoded: {reason}")]
pub struct Corrupt {
    pub table: String,
    pub product_id: String,
    pub reason: String,
}

impl Corrupt {
    /// An item of `table` without a valid `productId`.
    pub(crate) fn keyless(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            product_id: "?".into(),
            reason: "item without a valid productId".into(),
        }
    }
}

/// A read of one product's rows failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Fault(#[from] crate::fault::Fault),
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
}

/// Where a read's caller cannot park the product, a corrupt row is a permanent failure.
impl From<ReadError> for crate::fault::Fault {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Fault(f) => f,
            ReadError::Corrupt(c) => Self::Permanent(c.to_string()),
        }
    }
}

/// A conditional write's result: applied, lost to another writer, or failed.
pub(crate) fn conditional<T, E, R>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
    what: &str,
) -> Result<Write, crate::fault::Fault>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    match result {
        Ok(_) => Ok(Write::Applied),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(Write::Conflict),
        Err(e) => Err(crate::fault::classify(what, e)),
    }
}

fn key(product_id: &catalog_core::ids::ProductId) -> Item {
    HashMap::from([(
        "productId".to_owned(),
        AttributeValue::S(product_id.to_string()),
    )])
}

/// The `productId` of an item, if it has a valid one.
pub fn product_id_of(item: &Item) -> Option<catalog_core::ids::ProductId> {
    let id = item.get("productId")?.as_s().ok()?;
    catalog_core::ids::ProductId::parse(id.as_str()).ok()
}

/// Decodes a row of `table` that belongs to product `id`. The reason names the field that
/// failed (`price: Failed to parse '19.99' as an integer`), so a parked record says what to fix.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    table: &str,
    id: &catalog_core::ids::ProductId,
    item: Item,
) -> Result<T, Corrupt> {
    let item = serde_dynamo::Item::from(item);
    let deserializer = serde_dynamo::Deserializer::from_attribute_value(
        serde_dynamo::AttributeValue::M(item.into()),
    );
    serde_path_to_error::deserialize(deserializer).map_err(|e| Corrupt {
        table: table.to_owned(),
        product_id: id.to_string(),
        reason: format!("{}: {}", e.path(), e.inner()),
    })
}
