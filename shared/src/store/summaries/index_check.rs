//! Reads of single index positions: whether the listing indexes show a summary as the table
//! holds it (the verdict is [`catalog_core::listing::check`]'s).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::try_join_all;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::super::{decode, product_id_of, Corrupt, ReadError};
use super::{SummaryItem, SummaryStore};
use crate::fault::classify;
use catalog_core::listing::check::{expectations, spans, Expectation, Index, IndexPosition, Span};
use catalog_core::model::ProductSummary;
use catalog_core::tags::StockTagPolicy;

/// Items a span's Query reads per position it wants before the positions left are read one
/// by one. On DynamoDB a Query is billed by the size it reads: ten index items of a few
/// hundred bytes cost about what one point Query's minimum (4 KB) does, so the span costs no
/// more read units than the point reads it replaces, in far fewer calls.
const SPAN_ITEMS_PER_POSITION: usize = 10;

/// What one span's Query found: the summaries it held by sort key, and the highest sort key
/// it covered (every position up to it not among `held` is empty).
struct SpanRead {
    index: Index,
    partition: String,
    held: HashMap<String, ProductSummary>,
    upto: String,
}

impl SpanRead {
    /// What the read saw at `position`: `None` if it did not reach it.
    fn at(&self, position: &IndexPosition) -> Option<Option<ProductSummary>> {
        let here = position.index == self.index && position.partition == self.partition;
        (here && position.sort <= self.upto).then(|| self.held.get(&position.sort).cloned())
    }
}

impl SummaryStore {
    /// [`index_shows`](Self::index_shows) for many products at once (each its `current` and
    /// `left`): the positions of each index partition are read by one Query over the range
    /// they span (up to [`SPAN_ITEMS_PER_POSITION`] items a position), and only positions
    /// that read did not reach by a Query each.
    pub async fn indexes_show(
        &self,
        products: &[(Option<&ProductSummary>, &[IndexPosition])],
        policy: StockTagPolicy,
    ) -> Result<Vec<bool>, ReadError> {
        let wanted: Vec<Vec<Expectation>> = products
            .iter()
            .map(|(current, left)| expectations(*current, left, policy))
            .collect();
        let spans = spans(wanted.iter().flatten().map(|e| &e.position));
        // Plain loops, not closures: futures built in closures over borrowed items are not
        // `Send` to the compiler (rust-lang/rust#102211).
        let mut span_reads = Vec::with_capacity(spans.len());
        for span in &spans {
            span_reads.push(self.read_span(span));
        }
        let reads = stream::iter(span_reads).buffer_unordered(16);
        let reads: Vec<SpanRead> = reads.try_collect().await?;
        let by_partition: HashMap<(Index, &str), &SpanRead> = reads
            .iter()
            .map(|r| ((r.index, r.partition.as_str()), r))
            .collect();
        let mut seen: HashMap<IndexPosition, Option<ProductSummary>> = HashMap::new();
        let mut points = Vec::new();
        for position in wanted.iter().flatten().map(|e| &e.position) {
            let read = by_partition.get(&(position.index, position.partition.as_str()));
            match read.and_then(|r| r.at(position)) {
                Some(found) => {
                    seen.insert(position.clone(), found);
                }
                None => points.push(self.index_entry_at(position.clone())),
            }
        }
        let found = stream::iter(points).buffer_unordered(16);
        let found: Vec<_> = found.try_collect().await?;
        seen.extend(found);
        Ok(wanted
            .iter()
            .map(|w| w.iter().all(|e| e.met(seen[&e.position].as_ref(), policy)))
            .collect())
    }

    /// Reads `span` from its lowest sort key up to its highest, or until its item budget is
    /// spent.
    async fn read_span(&self, span: &Span) -> Result<SpanRead, ReadError> {
        let budget = span.wanted * SPAN_ITEMS_PER_POSITION;
        let (index, sort_attr) = (span.index, span.index.sort_attr());
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index.name())
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", index.partition_attr())
            .expression_attribute_names("#sk", sort_attr)
            .expression_attribute_values(":pk", AttributeValue::S(span.partition.clone()))
            .expression_attribute_values(":from", AttributeValue::S(span.from.clone()))
            .expression_attribute_values(":to", AttributeValue::S(span.to.clone()))
            .limit(budget.min(1000) as i32)
            .into_paginator()
            .send();
        let mut read = SpanRead {
            index,
            partition: span.partition.clone(),
            held: HashMap::new(),
            upto: span.to.clone(),
        };
        let mut items = 0;
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("Query index span", e))?;
            items += page.count as usize;
            for item in page.items.unwrap_or_default() {
                let sort = sort_of(&item, sort_attr).unwrap_or_default();
                if let Some(summary) = self.index_item(item)? {
                    read.held.insert(sort, summary);
                }
            }
            let last = page.last_evaluated_key.as_ref();
            match last.and_then(|k| sort_of(k, sort_attr)) {
                Some(reached) if items >= budget => {
                    read.upto = reached;
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        Ok(read)
    }

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
        match output.items.unwrap_or_default().into_iter().next() {
            Some(item) => self.index_item(item),
            None => Ok(None),
        }
    }

    /// [`index_entry`](Self::index_entry), with its position.
    async fn index_entry_at(
        &self,
        position: IndexPosition,
    ) -> Result<(IndexPosition, Option<ProductSummary>), ReadError> {
        let found = self.index_entry(&position).await?;
        Ok((position, found))
    }

    /// The summary an index item shows (`None`: a tombstone).
    fn index_item(&self, item: super::super::Item) -> Result<Option<ProductSummary>, ReadError> {
        let id = product_id_of(&item).ok_or_else(|| Corrupt::keyless(&self.table))?;
        let stored = decode::<SummaryItem>(&self.table, &id, item)?.into_stored(&self.table)?;
        Ok(stored.record.map(|r| r.summary))
    }
}

/// The string value of `attr` in `item`.
fn sort_of(item: &super::super::Item, attr: &str) -> Option<String> {
    item.get(attr)?.as_s().ok().cloned()
}
