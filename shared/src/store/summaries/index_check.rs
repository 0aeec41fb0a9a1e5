//! Reads of single index positions: whether the listing indexes show a summary as the table
//! holds it (the verdict is [`catalog_core::listing::check`]'s).

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::try_join_all;

use super::super::{decode, product_id_of, Corrupt, ReadError};
use super::{SummaryItem, SummaryStore};
use crate::fault::classify;
use catalog_core::listing::check::{expectations, IndexPosition};
use catalog_core::model::ProductSummary;
use catalog_core::tags::StockTagPolicy;

impl SummaryStore {
    /// Whether every listing index holds `current` (what the table holds now; `None` for a
    /// tombstone) at each of its positions and nothing at each of `left`: one Query per
    /// position, at once, read as a listing page reads (eventually consistent).
    pub async fn index_shows(
        &self,
        current: Option<&ProductSummary>,
        left: &[IndexPosition],
        policy: StockTagPolicy,
    ) -> Result<bool, ReadError> {
        let wanted = expectations(current, left, policy);
        let seen = try_join_all(wanted.iter().map(|e| self.index_entry(&e.position))).await?;
        Ok(wanted
            .iter()
            .zip(&seen)
            .all(|(e, seen)| e.met(seen.as_ref(), policy)))
    }

    /// What the index holds at `position`: a Query on its exact key (at most one item, as
    /// every sort key ends in the product id).
    async fn index_entry(
        &self,
        position: &IndexPosition,
    ) -> Result<Option<ProductSummary>, ReadError> {
        let index = position.index;
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index.name())
            .key_condition_expression("#pk = :pk AND #sk = :sk")
            .expression_attribute_names("#pk", index.partition_attr())
            .expression_attribute_names("#sk", index.sort_attr())
            .expression_attribute_values(":pk", AttributeValue::S(position.partition.clone()))
            .expression_attribute_values(":sk", AttributeValue::S(position.sort.clone()))
            .send()
            .await
            .map_err(|e| classify("Query index position", e))?;
        let Some(item) = output.items.unwrap_or_default().into_iter().next() else {
            return Ok(None);
        };
        let id = product_id_of(&item).ok_or_else(|| Corrupt::keyless(&self.table))?;
        let stored = decode::<SummaryItem>(&self.table, &id, item)?.into_stored(&self.table)?;
        Ok(stored.record.map(|r| r.summary))
    }
}
