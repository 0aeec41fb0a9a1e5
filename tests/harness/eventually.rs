//! The one way the tests wait for what the pipeline does in the background: look at the thing
//! itself until it holds, never sleep for a guessed time, and fail with what the last look saw.

use std::time::{Duration, Instant};

use anyhow::Result;

/// How long to keep looking, and how often.
#[derive(Debug, Clone, Copy)]
pub struct Eventually {
    limit: Duration,
    every: Duration,
}

/// Looks for at most `limit`, every 25 ms unless [`Eventually::every`] says otherwise.
pub fn within(limit: Duration) -> Eventually {
    Eventually {
        limit,
        every: Duration::from_millis(25),
    }
}

impl Eventually {
    /// Looks every `every` instead: for a look that reloads a page in a browser or runs a CLI.
    pub fn every(self, every: Duration) -> Self {
        Self { every, ..self }
    }

    /// Runs `look` until it succeeds, and returns what it returned. A failed look means "not
    /// yet" (so a look says why with `ensure!`); past the limit, the last failure is the error.
    pub async fn holds<T>(self, mut look: impl AsyncFnMut() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        loop {
            match look().await {
                Ok(value) => return Ok(value),
                Err(e) if start.elapsed() >= self.limit => {
                    return Err(e.context(format!("still so after {:?}", self.limit)));
                }
                Err(_) => tokio::time::sleep(self.every).await,
            }
        }
    }
}

/// Loads the demo catalog into a running stack and waits until it is projected and its tags
/// are handled ([`demo_settled`]).
pub async fn demo_loaded(
    stack: &catalog_local::stack::Stack,
    size: catalog_local::dev::demo::DemoSize,
) -> Result<()> {
    let tables = &stack.endpoints.tables.catalog;
    let loaded = catalog_local::dev::demo::load(&stack.dynamodb, tables, size, |_, _| {}).await?;
    demo_settled(stack, loaded).await
}

/// Waits (at most 30 s) until a stack has handled the `loaded` stream records of its demo
/// data and its tag queue is empty: the starting point of the storefront tests.
pub async fn demo_settled(stack: &catalog_local::stack::Stack, loaded: usize) -> Result<()> {
    let tag_queue = &stack.endpoints.queues.tag_queue;
    within(Duration::from_secs(30))
        .every(Duration::from_millis(100))
        .holds(async || {
            let status = stack.status().await?;
            let t = &status.triggers;
            let done = t["ProductsStream"].records + t["InventoryStream"].records;
            let queued = catalog_local::stack::queue_depth(&stack.sqs, tag_queue).await?;
            anyhow::ensure!(
                done == loaded as u64 && queued == 0,
                "never settled: {status:?}"
            );
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_look_that_never_holds_fails_with_its_last_reason() {
        let mut looks = 0;
        let result: Result<()> = within(Duration::from_millis(60))
            .every(Duration::from_millis(10))
            .holds(async || {
                looks += 1;
                anyhow::bail!("look {looks}")
            })
            .await;
        let err = format!("{:#}", result.unwrap_err());
        assert!(err.starts_with("still so after 60ms: look "), "{err}");
        assert!(
            err.ends_with(&format!("look {looks}")) && looks > 1,
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_first_look_that_holds_ends_the_wait_with_its_value() {
        let mut looks = 0;
        let value = within(Duration::from_secs(5))
            .every(Duration::from_millis(1))
            .holds(async || {
                looks += 1;
                anyhow::ensure!(looks == 3, "only {looks}");
                Ok(looks * 10)
            })
            .await;
        assert_eq!(value.unwrap(), 30);
    }
}
