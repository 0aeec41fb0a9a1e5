//! Consistent BatchGetItem by product id, with the unprocessed keys retried.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::KeysAndAttributes;
use aws_sdk_dynamodb::Client;
use futures::future::try_join_all;

use super::{key, Item};
use crate::fault::{classify, Fault};
use crate::ids::ProductId;

/// BatchGetItem takes at most this many keys a call.
const MAX_KEYS: usize = 100;
/// Rounds of retrying unprocessed keys before the read counts as throttled.
const MAX_ROUNDS: u32 = 8;

/// Reads the items of `ids` from `table` with strongly consistent reads, keyed by product id.
/// Ids with no item are absent from the map.
pub(crate) async fn batch_get(
    client: &Client,
    table: &str,
    ids: &[ProductId],
) -> Result<HashMap<String, Item>, Fault> {
    let chunks = ids
        .chunks(MAX_KEYS)
        .map(|chunk| batch_get_chunk(client, table, chunk));
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

async fn batch_get_chunk(
    client: &Client,
    table: &str,
    ids: &[ProductId],
) -> Result<Vec<Item>, Fault> {
    let mut keys = KeysAndAttributes::builder()
        .set_keys(Some(ids.iter().map(key).collect()))
        .consistent_read(true)
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
