//! docs/openapi.yaml tells the truth: its operations are exactly the template's HTTP routes,
//! and schemathesis, generating requests from it against the local API over HTTP, finds no
//! 5xx and no response the document does not describe.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use catalog_local::dev::demo::{self, DemoSize};
use catalog_local::stack::{Options, Stack};
use serde_yaml_ng::Value;

fn openapi() -> Result<Value> {
    let path = catalog_local::workspace_root().join("docs/openapi.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path:?}"))?;
    Ok(serde_yaml_ng::from_str(&text)?)
}

/// `METHOD /path` of every operation in the document.
fn documented() -> Result<BTreeSet<String>> {
    let doc = openapi()?;
    let paths = doc["paths"].as_mapping().context("paths")?;
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for (method, _) in item.as_mapping().into_iter().flatten() {
            let (path, method) = (path.as_str().unwrap_or(""), method.as_str().unwrap_or(""));
            out.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    Ok(out)
}

#[test]
fn the_document_has_exactly_the_templates_routes() -> Result<()> {
    let template = catalog_local::template::Template::load(&catalog_local::workspace_root())?;
    let mut routes = BTreeSet::new();
    for function in ["ListingApiFunction", "ReconcilerFunction"] {
        for r in template.event_sources(function)?.routes {
            routes.insert(format!("{} {}", r.method.to_uppercase(), r.path));
        }
    }
    assert_eq!(documented()?, routes);
    Ok(())
}

/// What the document promises: no 5xx, and every status, content type, header and body as
/// documented. Left out, by design: whether a schema-valid request is accepted (a cursor is
/// an opaque signed token, and ids are bounded in bytes, which JSON Schema cannot say), the
/// authentication checks (the local API does not emulate the IAM authorizer; the template
/// test checks the routes' authorizers), and 405 for undeclared methods (API Gateway answers
/// an unmatched method with 404, as the local API does).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance";

/// How many examples schemathesis generates per operation: `SCHEMATHESIS_EXAMPLES`, else 40.
fn examples() -> String {
    std::env::var("SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "40".into())
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_5xx_and_no_undocumented_response() -> Result<()> {
    let root = catalog_local::workspace_root();
    let cli = root.join("tools/.venv/bin/schemathesis");
    ensure!(
        cli.exists(),
        "schemathesis is not installed: run scripts/setup"
    );
    let (dynamodb, sqs) = catalog_tests::endpoints();
    let options = Options {
        prefix: format!("oa{}-", std::process::id()),
        endpoints: Some((dynamodb, sqs)),
        ..Options::default()
    };
    let stack = Stack::start(&root, options).await?;
    let size = DemoSize {
        products: 30,
        stores: 2,
        locations: 2,
        seed: 5,
    };
    demo::load(
        &stack.dynamodb,
        &stack.endpoints.tables.catalog,
        size,
        |_, _| {},
    )
    .await?;
    let api = stack.endpoints.listing_api.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(cli)
            .current_dir(&root)
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .args([
                "run",
                "docs/openapi.yaml",
                "--url",
                &api,
                "--checks",
                CHECKS,
            ])
            .args(["--max-examples", &examples(), "--seed", "1", "--no-color"])
            .output()
    })
    .await??;
    let text = String::from_utf8_lossy(&output.stdout);
    // CI's log shows the case count and any failure with a curl line to reproduce it.
    println!("{text}{}", String::from_utf8_lossy(&output.stderr));
    stack.stop().await?;
    ensure!(
        output.status.success(),
        "schemathesis found problems (above)"
    );
    Ok(())
}
