//! Loading source rows: BatchWriteItem, 25 items a call, one call at a time (DynamoDB Local
//! slows down about 25x when BatchWriteItem calls overlap: 20,000 items took 186 s from 8
//! threads and 7 s from one).

use std::collections::HashMap;

use anyhow::Result;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use futures::stream::{StreamExt, TryStreamExt};

/// Writes `items` to `table`, retrying unprocessed items.
pub async fn batch_write(
    client: &Client,
    table: &str,
    items: Vec<HashMap<String, AttributeValue>>,
) -> Result<()> {
    let writes = items.chunks(25).map(|chunk| async move {
        let mut pending: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                Ok(WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item.clone())).build()?)
                    .build())
            })
            .collect::<Result<_>>()?;
        while !pending.is_empty() {
            let output = client
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await?;
            pending = output
                .unprocessed_items
                .and_then(|mut u| u.remove(table))
                .unwrap_or_default();
        }
        Ok::<_, anyhow::Error>(())
    });
    futures::stream::iter(writes)
        .buffer_unordered(1)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
