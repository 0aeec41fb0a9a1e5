//! Edits to the source tables, as a store's admin tools would make them: read the row, change
//! it, write it back only if nobody else wrote it meanwhile (`version` compare-and-swap), and
//! bump `version`.

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use catalog::store::TableNames;
use catalog_core::ids::{LocationId, ProductId};
use catalog_core::model::{InventoryRow, MinorUnits, Product, ProductStatus};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Tries of a compare-and-swap before giving up on a row that keeps changing.
const ATTEMPTS: u32 = 5;

/// The source tables, for editing.
#[derive(Debug, Clone)]
pub struct Editor {
    client: aws_sdk_dynamodb::Client,
    tables: TableNames,
}

impl Editor {
    pub fn new(client: aws_sdk_dynamodb::Client, tables: TableNames) -> Self {
        Self { client, tables }
    }

    /// Creates or replaces a product (its version continues from the stored one).
    pub async fn put_product(&self, product: Product) -> Result<Product> {
        let key = product_key(&product.product_id);
        self.update(
            &self.tables.products,
            key,
            move |current: Option<Product>| {
                Ok(Product {
                    version: current.map_or(1, |c| c.version + 1),
                    ..product.clone()
                })
            },
        )
        .await
    }

    /// Sets a product's price.
    pub async fn set_price(&self, id: &ProductId, price: MinorUnits) -> Result<Product> {
        self.edit_product(id, |p| p.price = price).await
    }

    /// Sets a product's status (`Archived` to archive it, `Active` to bring it back).
    pub async fn set_status(&self, id: &ProductId, status: ProductStatus) -> Result<Product> {
        self.edit_product(id, |p| p.status = status).await
    }

    /// Sets the stock at one location (creating the row if there is none).
    pub async fn set_stock(
        &self,
        id: &ProductId,
        location: &LocationId,
        on_hand: i64,
        reserved: Option<i64>,
    ) -> Result<InventoryRow> {
        let mut key = product_key(id);
        key.insert("locationId".into(), AttributeValue::S(location.to_string()));
        let (id, location) = (id.clone(), location.clone());
        self.update(
            &self.tables.inventory,
            key,
            move |current: Option<InventoryRow>| {
                Ok(InventoryRow {
                    product_id: id.clone(),
                    location_id: location.clone(),
                    on_hand,
                    reserved: reserved
                        .or(current.as_ref().map(|c| c.reserved))
                        .unwrap_or(0),
                    version: current.map_or(1, |c| c.version + 1),
                })
            },
        )
        .await
    }

    /// Deletes a product row (its stock rows stay, as a real catalog's would until cleaned up).
    pub async fn delete_product(&self, id: &ProductId) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.tables.products)
            .set_key(Some(product_key(id)))
            .send()
            .await
            .context("DeleteItem")?;
        Ok(())
    }

    async fn edit_product(&self, id: &ProductId, change: impl Fn(&mut Product)) -> Result<Product> {
        self.update(
            &self.tables.products,
            product_key(id),
            |current: Option<Product>| {
                let mut product = current.ok_or_else(|| anyhow!("no product {id}"))?;
                change(&mut product);
                product.version += 1;
                Ok(product)
            },
        )
        .await
    }

    /// Reads the row at `key`, computes its next value, and writes it if `version` is still
    /// the one read (or the row is still absent).
    async fn update<T: Serialize + DeserializeOwned + Versioned>(
        &self,
        table: &str,
        key: std::collections::HashMap<String, AttributeValue>,
        next: impl Fn(Option<T>) -> Result<T>,
    ) -> Result<T> {
        for _ in 0..ATTEMPTS {
            let current: Option<T> = self
                .client
                .get_item()
                .table_name(table)
                .set_key(Some(key.clone()))
                .consistent_read(true)
                .send()
                .await
                .with_context(|| format!("GetItem {table}"))?
                .item
                .map(serde_dynamo::from_item)
                .transpose()
                .with_context(|| format!("the row in {table} does not decode"))?;
            let read_version = current.as_ref().map(Versioned::version);
            let value = next(current)?;
            let mut put = self
                .client
                .put_item()
                .table_name(table)
                .set_item(Some(serde_dynamo::to_item(&value)?));
            put = match read_version {
                Some(v) => put
                    .condition_expression("version = :v")
                    .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
                None => put.condition_expression("attribute_not_exists(productId)"),
            };
            match put.send().await {
                Ok(_) => return Ok(value),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    continue
                }
                Err(e) => return Err(e).with_context(|| format!("PutItem {table}")),
            }
        }
        bail!("the row kept changing under {ATTEMPTS} attempts; try again")
    }
}

fn product_key(id: &ProductId) -> std::collections::HashMap<String, AttributeValue> {
    [("productId".to_owned(), AttributeValue::S(id.to_string()))].into()
}

/// A row with a writer's version number.
trait Versioned {
    fn version(&self) -> u64;
}

impl Versioned for Product {
    fn version(&self) -> u64 {
        self.version
    }
}

impl Versioned for InventoryRow {
    fn version(&self) -> u64 {
        self.version
    }
}
