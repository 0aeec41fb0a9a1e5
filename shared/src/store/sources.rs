//! Reads of the source tables, Products and Inventory. catalog-sync never writes them.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::batch_get::{batch_get, decode_each, CONSISTENT};
use super::pages::{read_page, segment_scan, Page, Slice};
use super::{decode, product_id_of, Corrupt, Item, ReadError, TableNames};
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
    ) -> Result<HashMap<ProductId, Result<Option<Product>, Corrupt>>, Fault> {
        let found = batch_get(&self.client, &self.products, ids, CONSISTENT).await?;
        Ok(decode_each(ids, found, |id, item| {
            decode::<Product>(&self.products, id, item)
        }))
    }

    /// About how many products there are: DescribeTable's item count, which DynamoDB updates
    /// about every six hours. For progress estimates only.
    pub async fn approximate_products(&self) -> Result<u64, Fault> {
        let table = self.client.describe_table().table_name(&self.products);
        let described = table
            .send()
            .await
            .map_err(|e| classify("DescribeTable", e))?;
        let count = described.table.and_then(|t| t.item_count).unwrap_or(0);
        Ok(count.max(0) as u64)
    }

    /// Every stock row of `id`, with a consistent Query (all pages).
    pub async fn inventory(&self, id: &ProductId) -> Result<Vec<InventoryRow>, ReadError> {
        let mut items = self
            .client
            .query()
            .table_name(&self.inventory)
            .key_condition_expression("productId = :p")
            .expression_attribute_values(":p", AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut rows = Vec::new();
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| classify("Query inventory", e))?;
            rows.push(decode::<InventoryRow>(&self.inventory, id, item)?);
        }
        Ok(rows)
    }

    /// One page of Products in `slice`, each row decoded (a row that does not decode is an
    /// `Err`, for the caller to count).
    pub async fn products_page(
        &self,
        slice: &Slice,
        limit: i32,
        start: Option<Item>,
    ) -> Result<Page<Result<Product, Corrupt>>, Fault> {
        let page = read_page(&self.client, &self.products, slice, limit, start).await?;
        let items = page
            .items
            .into_iter()
            .map(|item| match product_id_of(&item) {
                Some(id) => decode::<Product>(&self.products, &id, item),
                None => Err(Corrupt::keyless(&self.products)),
            })
            .collect();
        Ok(Page {
            items,
            next: page.next,
        })
    }

    /// The stock rows of one Scan segment of Inventory, by product; `None` past `max_rows`
    /// (rows past the cap may belong to products already held, so no product may trust a
    /// partial map). An undecodable row is left out: its product's own Query reports it.
    pub async fn scan_stock(
        &self,
        segment: u32,
        total: u32,
        max_rows: usize,
    ) -> Result<Option<HashMap<ProductId, Vec<InventoryRow>>>, Fault> {
        let mut items = segment_scan(&self.client, &self.inventory, segment, total)
            .into_paginator()
            .items()
            .send();
        let (mut rows, mut held) = (HashMap::<ProductId, Vec<InventoryRow>>::new(), 0usize);
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| classify("Scan inventory", e))?;
            match serde_dynamo::from_item::<_, InventoryRow>(item) {
                Ok(row) => rows.entry(row.product_id.clone()).or_default().push(row),
                Err(e) => tracing::warn!(error = %e, "undecodable stock row in scan"),
            }
            held += 1;
            if held > max_rows {
                tracing::warn!(held, "segment has more stock rows than max_joined_rows");
                return Ok(None);
            }
        }
        Ok(Some(rows))
    }
}
