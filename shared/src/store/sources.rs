//! Reads of the source tables, Products and Inventory. catalog-sync never writes them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::batch_get::{batch_get, CONSISTENT};
use super::{decode, Item, ReadError, TableNames};
use crate::fault::{classify, Fault};
use catalog_core::ids::ProductId;
use catalog_core::model::{InventoryRow, Product};

/// The Products and Inventory tables, read with strongly consistent reads.
#[derive(Debug, Clone)]
pub struct SourceStore {
    client: Client,
    products: String,
    inventory: String,
}

impl SourceStore {
    /// A store over the tables named in `tables`.
    pub fn new(client: Client, tables: &TableNames) -> Self {
        Self {
            client,
            products: tables.products.clone(),
            inventory: tables.inventory.clone(),
        }
    }

    /// The current rows of `ids` in Products, one consistent BatchGetItem per 100 ids.
    /// An id with no row maps to `Ok(None)`; a row that does not decode to `Err(Corrupt)`.
    pub async fn products(
        &self,
        ids: &[ProductId],
    ) -> Result<HashMap<ProductId, Result<Option<Product>, super::Corrupt>>, Fault> {
        let mut found = batch_get(&self.client, &self.products, ids, CONSISTENT).await?;
        Ok(ids
            .iter()
            .map(|id| {
                let decoded = found
                    .remove(id.as_str())
                    .map(|item| decode::<Product>(&self.products, id, item))
                    .transpose();
                (id.clone(), decoded)
            })
            .collect())
    }

    /// Every stock row of `id`, with a consistent Query (all pages).
    pub async fn inventory(&self, id: &ProductId) -> Result<Vec<InventoryRow>, ReadError> {
        let mut rows = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.inventory)
                .key_condition_expression("productId = :p")
                .expression_attribute_values(":p", AttributeValue::S(id.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("Query inventory", e))?;
            for item in output.items.unwrap_or_default() {
                rows.push(decode::<InventoryRow>(&self.inventory, id, item)?);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(rows),
            }
        }
    }
}
