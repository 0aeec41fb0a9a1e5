//! Reads of index positions: whether the listing indexes show a summary as the table holds
//! it (the verdict is [`catalog_core::listing::check`]'s).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
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

/// What one span's Query found: the summaries it held by sort key, and the range it covered
/// (every position from `from` up to `upto` not among `held` is empty).
struct SpanRead {
    index: Index,
    partition: String,
    held: HashMap<String, ProductSummary>,
    from: String,
    upto: String,
}

impl SpanRead {
    /// What the read saw at `position`: `None` if it did not reach it.
    fn at(&self, position: &IndexPosition) -> Option<Option<ProductSummary>> {
        let here = position.index == self.index && position.partition == self.partition;
        let within = self.from <= position.sort && position.sort <= self.upto;
        (here && within).then(|| self.held.get(&position.sort).cloned())
    }
}

/// Span reads by index partition (the single positions read alone share a partition).
struct Reads<'a>(HashMap<(Index, &'a str), Vec<&'a SpanRead>>);

impl<'a> Reads<'a> {
    fn new(reads: &'a [SpanRead]) -> Self {
        let mut by_partition: HashMap<_, Vec<_>> = HashMap::new();
        for r in reads {
            by_partition
                .entry((r.index, r.partition.as_str()))
                .or_default()
                .push(r);
        }
        Self(by_partition)
    }

    /// What the reads saw at `position`: `None` if none reached it.
    fn at(&self, position: &IndexPosition) -> Option<Option<ProductSummary>> {
        let reads = self.0.get(&(position.index, position.partition.as_str()))?;
        reads.iter().find_map(|r| r.at(position))
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
        let positions = || wanted.iter().flatten().map(|e| &e.position);
        let spanned = self.read_spans(&spans(positions())).await?;
        // Positions past a span's budget: each read alone, as a span of one.
        let unread: Vec<Span> = {
            let spanned = Reads::new(&spanned);
            positions()
                .filter(|p| spanned.at(p).is_none())
                .map(|p| Span {
                    index: p.index,
                    partition: p.partition.clone(),
                    from: p.sort.clone(),
                    to: p.sort.clone(),
                    wanted: 1,
                })
                .collect()
        };
        let alone = self.read_spans(&unread).await?;
        let (spanned, alone) = (Reads::new(&spanned), Reads::new(&alone));
        let seen = |p: &IndexPosition| spanned.at(p).or_else(|| alone.at(p)).flatten();
        Ok(wanted
            .iter()
            .map(|w| w.iter().all(|e| e.met(seen(&e.position).as_ref(), policy)))
            .collect())
    }

    /// Reads `spans`, 16 at once.
    async fn read_spans(&self, spans: &[Span]) -> Result<Vec<SpanRead>, ReadError> {
        // A plain loop, not a closure: futures built in closures over borrowed items are not
        // `Send` to the compiler (rust-lang/rust#102211).
        let mut reads = Vec::with_capacity(spans.len());
        for span in spans {
            reads.push(self.read_span(span));
        }
        stream::iter(reads).buffer_unordered(16).try_collect().await
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
            from: span.from.clone(),
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
    /// tombstone) at each of its positions and nothing at each of `left`, read as a listing
    /// page reads (eventually consistent): [`indexes_show`](Self::indexes_show) for one product.
    pub async fn index_shows(
        &self,
        current: Option<&ProductSummary>,
        left: &[IndexPosition],
        policy: StockTagPolicy,
    ) -> Result<bool, ReadError> {
        let shown = self.indexes_show(&[(current, left)], policy).await?;
        Ok(shown.into_iter().all(|shows| shows))
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
