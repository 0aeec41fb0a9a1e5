//! A real browser for the end-to-end tests: Debian's Chromium driven by playwright-core
//! through `examples/storefront/e2e/browser.mjs`, and readers of the pages it returns.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use catalog_local::stack::Stack;
use serde_json::Value;

/// `node examples/storefront/e2e/browser.mjs`: one URL in, one JSON line out.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    pub fn start() -> Result<Self> {
        let root = catalog_local::workspace_root();
        let script = catalog_local::storefront::dir(&root).join("e2e/browser.mjs");
        let mut child = Command::new(catalog_local::node(&root))
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting node e2e/browser.mjs")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut browser = Self {
            child,
            stdin,
            stdout,
        };
        let ready = browser.line()?;
        ensure!(ready["ready"] == true, "browser did not start: {ready}");
        Ok(browser)
    }

    fn line(&mut self) -> Result<Value> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        ensure!(!line.is_empty(), "the browser exited");
        Ok(serde_json::from_str(&line)?)
    }

    /// Loads `url` afresh; the products it shows, by id.
    pub fn load(&mut self, url: &str) -> Result<Value> {
        writeln!(self.stdin, "{url}")?;
        let page = self.line()?;
        ensure!(page["status"] == 200, "{url}: {page}");
        Ok(page)
    }

    /// Acts on the current page as a shopper does (see e2e/browser.mjs); the page after it.
    pub fn act(&mut self, command: Value) -> Result<Value> {
        writeln!(self.stdin, "{command}")?;
        let page = self.line()?;
        ensure!(page.get("error").is_none(), "{command}: {page}");
        Ok(page)
    }

    /// Reloads `url` until `fresh` holds of the page, for at most 10 s; how long it took.
    pub fn until(
        &mut self,
        url: &str,
        what: &str,
        fresh: impl Fn(&Value) -> bool,
    ) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let page = self.load(url)?;
            if fresh(&page) {
                return Ok(start.elapsed());
            }
            ensure!(
                start.elapsed() < Duration::from_secs(10),
                "{what} never showed: {page}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The ids on a page, in order.
pub fn ids(page: &Value) -> Vec<String> {
    page["products"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The prices on a page in cents, in order ("$12.34" -> 1234).
pub fn cents(page: &Value) -> Vec<u64> {
    page["products"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["price"].as_str())
        .filter_map(|p| p.trim_start_matches('$').replace('.', "").parse().ok())
        .collect()
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The card of `id` on a loaded page.
pub fn card<'a>(page: &'a Value, id: &str) -> Result<&'a Value> {
    page["products"]
        .as_array()
        .and_then(|p| p.iter().find(|c| c["id"] == id))
        .with_context(|| format!("{id} is not on the page: {page}"))
}

/// Changes a summary's title behind the pipeline's back (no stream record, so no tag): a page
/// that shows it was re-rendered by something else's revalidation.
pub async fn hide_title(stack: &Stack, id: &str, title: &str) -> Result<()> {
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.endpoints.tables.catalog.summaries)
        .key("productId", AttributeValue::S(id.into()))
        .update_expression("SET title = :t")
        .expression_attribute_values(":t", AttributeValue::S(title.into()))
        .send()
        .await?;
    Ok(())
}
