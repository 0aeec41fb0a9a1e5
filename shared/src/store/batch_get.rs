//! Consistent BatchGetItem by product id, with the unprocessed keys retried.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_sdk_dynamodb::Client;
use futures::future::try_join_all;

use super::{key, Corrupt, Item};
use crate::fault::{classify, Fault};
use catalog_core::ids::ProductId;

/// Keys per BatchGetItem call (it takes up to 100). A call is answered when its last key is
/// read, so a projector batch's ~80 keys go as concurrent calls of 25: the same read units,
/// and on DynamoDB Local a replayed backlog (nothing but this read) 1.3x to 1.45x faster
/// (docs/BENCHMARKS.md, "Where a catch-up batch goes").
const KEYS_PER_CALL: usize = 25;
/// Rounds of retrying unprocessed keys before the read counts as throttled.
const MAX_ROUNDS: u32 = 8;

/// How a batch read reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadMode<'a> {
    /// Strongly consistent (the write path) or eventually consistent (half the cost; listings).
    pub consistent: bool,
    /// The attributes to fetch, all of them when `None`.
    pub attributes: Option<&'a [&'a str]>,
}

/// Consistent reads of whole items.
pub(crate) const CONSISTENT: ReadMode<'static> = ReadMode {
    consistent: true,
    attributes: None,
};

/// Reads the items of `ids` (distinct) from `table`, keyed by product id. Ids with no item are
/// absent from the map.
pub(crate) async fn batch_get(
    client: &Client,
    table: &str,
    ids: &[ProductId],
    mode: ReadMode<'_>,
) -> Result<HashMap<String, Item>, Fault> {
    let chunks = ids
        .chunks(KEYS_PER_CALL)
        .map(|chunk| batch_get_chunk(client, table, chunk, mode));
    let mut found = HashMap::with_capacity(ids.len());
    for items in try_join_all(chunks).await? {
        for item in items {
            if let Some(id) = item.get("productId").and_then(|v| v.as_s().ok()) {
                found.insert(id.clone(), item);
            }
        }
    }
    Ok(found)
}

/// Each of `ids` with its item decoded by `decode`: `Ok(None)` where there is no item,
/// `Err(Corrupt)` where it does not decode.
pub(crate) fn decode_each<T>(
    ids: &[ProductId],
    mut found: HashMap<String, Item>,
    decode: impl Fn(&ProductId, Item) -> Result<T, Corrupt>,
) -> HashMap<ProductId, Result<Option<T>, Corrupt>> {
    ids.iter()
        .map(|id| {
            let decoded = found.remove(id.as_str()).map(|item| decode(id, item));
            (id.clone(), decoded.transpose())
        })
        .collect()
}

async fn batch_get_chunk(
    client: &Client,
    table: &str,
    ids: &[ProductId],
    mode: ReadMode<'_>,
) -> Result<Vec<Item>, Fault> {
    let mut request = KeysAndAttributes::builder()
        .set_keys(Some(ids.iter().map(key).collect()))
        .consistent_read(mode.consistent);
    if let Some(attributes) = mode.attributes {
        let (expression, names) = projection(attributes);
        request = request
            .projection_expression(expression)
            .set_expression_attribute_names(Some(names));
    }
    let mut keys = request
        .build()
        .map_err(|e| Fault::Permanent(format!("BatchGetItem keys: {e}")))?;
    let mut items = Vec::with_capacity(ids.len());
    for round in 0..MAX_ROUNDS {
        let output = client
            .batch_get_item()
            .request_items(table, keys)
            .send()
            .await
            .map_err(|e| classify("BatchGetItem", e))?;
        if let Some(mut responses) = output.responses {
            items.extend(responses.remove(table).unwrap_or_default());
        }
        match output.unprocessed_keys.and_then(|mut u| u.remove(table)) {
            Some(rest) if !rest.keys.is_empty() => {
                keys = rest;
                tokio::time::sleep(Duration::from_millis(10 << round)).await;
            }
            _ => return Ok(items),
        }
    }
    Err(Fault::Transient(format!(
        "BatchGetItem on {table}: keys still unprocessed after {MAX_ROUNDS} rounds"
    )))
}

/// A projection expression naming `attributes` through placeholders (`#a0, #a1`), so that no
/// attribute name can collide with a DynamoDB reserved word.
pub(crate) fn projection(attributes: &[&str]) -> (String, HashMap<String, String>) {
    let names: HashMap<String, String> = attributes
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("#a{i}"), (*a).to_owned()))
        .collect();
    let expression = (0..attributes.len())
        .map(|i| format!("#a{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    (expression, names)
}
