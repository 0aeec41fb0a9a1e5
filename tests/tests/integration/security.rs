//! Security checks docs/SECURITY.md points to: logs carry neither secrets nor request bodies,
//! every route bounds its input, and no secret value sits in template.yaml.

use catalog_tests::Inspect;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use catalog_tests::storefront_stub::StorefrontStub;
use catalog_tests::TestEnv;
use serde_json::json;

/// Everything logged while the guard lives, as JSON lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[tokio::test]
async fn logs_never_carry_the_secret_or_request_bodies() -> Result<()> {
    let env = TestEnv::new().await?;
    let logs = Captured::default();
    let _guard = logs.capture();

    // The revalidator, refused by a storefront with another secret: it logs loudly.
    let secret = "s3cret-value-that-must-never-leak";
    let stub = StorefrontStub::start("the-storefront-has-another").await?;
    let revalidator = tag_revalidator::Revalidator::new(
        vec![stub.url.clone()],
        tag_revalidator::client::RevalidateClient::new(secret.as_bytes(), Duration::from_secs(2))?,
        env.sqs.clone(),
        env.queues.tag_queue.clone(),
        128,
    );
    let body = json!({"version": 1, "tags": ["product:body-marker-1"], "eventTime": "2026-11-26T00:00:00Z", "enqueuedAt": "2026-11-26T00:00:00Z"});
    let event = json!({"Records": [{"messageId": "m1", "receiptHandle": "r1", "body": body.to_string(),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q", "awsRegion": "us-east-1"}]});
    let response = revalidator.handle(serde_json::from_value(event)?).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert!(format!("{revalidator:?}").contains("RevalidateClient"));
    assert!(
        !format!("{revalidator:?}").contains(secret),
        "Debug shows the secret"
    );

    // listing-api with a body and a cursor that are refused.
    let marker = "body-marker-2";
    let big = format!(r#"{{"ids":["{marker}"{}]}}"#, r#","p""#.repeat(200));
    let reply = env
        .call_api("POST", "/products:batchGet", &[], Some(&big))
        .await?;
    assert_eq!(reply.status, 400);

    let text = logs.text();
    assert!(
        text.contains("CONFIGURATION ERROR"),
        "the refusal was logged: {text}"
    );
    assert!(!text.contains(secret), "a log line carries the secret");
    assert!(
        !text.contains("body-marker"),
        "a log line carries a request or message body"
    );
    Ok(())
}

#[tokio::test]
async fn every_route_bounds_its_input() -> Result<()> {
    let env = TestEnv::new().await?;
    let long_id = "p".repeat(129);
    let cases: Vec<(&str, String, Option<String>, u16)> = vec![
        ("GET", "/stores/s1/products?limit=101".into(), None, 400),
        ("GET", format!("/stores/{long_id}/products"), None, 400),
        ("GET", format!("/products/{long_id}"), None, 400),
        (
            "GET",
            format!("/stores/s1/products?cursor={}", "c".repeat(5000)),
            None,
            400,
        ),
        (
            "POST",
            "/products:batchGet".into(),
            Some(" ".repeat(33 * 1024)),
            413,
        ),
        (
            "POST",
            "/products:batchGet".into(),
            Some(format!(r#"{{"ids":[{}]}}"#, vec![r#""p""#; 101].join(","))),
            400,
        ),
    ];
    for (method, target, body, status) in cases {
        let reply = env.call_api(method, &target, &[], body.as_deref()).await?;
        assert_eq!(
            reply.status,
            status,
            "{method} {}: {:?}",
            &target[..target.len().min(60)],
            reply.body
        );
        assert!(reply.body["error"]["code"].is_string());
    }
    // The revalidate route (examples/storefront/app/api/revalidate/route.ts) caps a body at
    // 64 KB and a call at 128 tags of 256 characters; tests/tests/integration/storefront.rs checks its
    // refusals. The tag-revalidator never sends more: tags are at most 256 characters
    // (catalog_core::tags) and calls at most 128 tags (tests/tests/integration/revalidator.rs).
    Ok(())
}

/// The admin route decodes its path as listing-api does: a non-ASCII id arrives
/// percent-encoded, and behind a named stage the path starts with the stage.
#[tokio::test]
async fn the_admin_route_decodes_ids_and_strips_a_named_stage() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&catalog_core::testing::product("café-1", "store-é"))
        .await?;
    let mut request = catalog_local::emulator::apigw::http_request(
        "POST",
        "/prod/admin/products/caf%C3%A9-1/revalidate",
        &[("content-length", "0")],
        None,
    );
    catalog_local::emulator::apigw::authorize_iam(&mut request);
    request["requestContext"]["stage"] = json!("prod");
    let answer = env
        .reconciler()
        .handle(request, std::time::Instant::now())
        .await?;
    assert_eq!(answer["statusCode"], 202, "{answer}");
    assert_eq!(
        env.queued_tags().await?,
        [
            "inventory:café-1",
            "product:café-1",
            "store:store-é:products"
        ]
    );
    Ok(())
}

/// The admin route trusts API Gateway's IAM authorizer, not the template alone: a request that
/// reaches the function without one (a misrouted event, a route added without
/// `AuthorizationType: AWS_IAM`) is refused and queues nothing.
#[tokio::test]
async fn the_admin_route_refuses_a_caller_no_iam_authorizer_vouched_for() -> Result<()> {
    let env = TestEnv::new().await?;
    env.put_product(&catalog_core::testing::product("p-1", "store-1"))
        .await?;
    let request = catalog_local::emulator::apigw::http_request(
        "POST",
        "/admin/products/p-1/revalidate",
        &[("content-length", "0")],
        None,
    );
    let answer = env
        .reconciler()
        .handle(request, std::time::Instant::now())
        .await?;
    assert_eq!(answer["statusCode"], 403, "{answer}");
    assert!(env.queued_tags().await?.is_empty());
    Ok(())
}

#[test]
fn no_secret_value_is_in_the_template() -> Result<()> {
    let template = catalog_local::template::Template::load(&catalog_local::workspace_root())?;
    let mut found = Vec::new();
    let resources = template.document["Resources"]
        .as_mapping()
        .expect("resources");
    for (id, resource) in resources {
        let vars = &resource["Properties"]["Environment"]["Variables"];
        for (name, value) in vars.as_mapping().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if name.contains("SECRET") {
                found.push(format!("{}.{name}", id.as_str().unwrap_or_default()));
                assert!(
                    name.ends_with("_ARN"),
                    "{name} must name a secret, not hold one"
                );
                assert!(
                    !matches!(value, serde_yaml_ng::Value::String(_)),
                    "{name} is a literal: {value:?}"
                );
            }
        }
    }
    assert_eq!(found.len(), 2, "{found:?}");
    Ok(())
}

/// What deny.toml allows: the licence and source sections of `cargo deny check`, which cannot
/// run here whole (its advisory database is on GitHub).
#[derive(serde::Deserialize)]
struct DenyPolicy {
    graph: Graph,
    licenses: Licenses,
    sources: Sources,
}

#[derive(serde::Deserialize)]
struct Graph {
    targets: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Licenses {
    allow: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Sources {
    allow_registry: Vec<String>,
}

impl DenyPolicy {
    /// Why `package` (from `cargo metadata`) is refused, if it is.
    fn refusal(&self, package: &serde_json::Value) -> Option<String> {
        let field = |key: &str| package[key].as_str().unwrap_or("?").to_owned();
        let name = format!("{} {}", field("name"), field("version"));
        let source = package["source"].as_str()?; // None: a workspace member.
        let registry = source.strip_prefix("registry+");
        if !registry.is_some_and(|r| self.sources.allow_registry.iter().any(|a| a == r)) {
            return Some(format!("{name}: source {source}"));
        }
        let Some(licence) = package["license"].as_str() else {
            return Some(format!("{name}: no licence expression"));
        };
        let allowed = spdx::Expression::parse_mode(licence, spdx::ParseMode::LAX)
            .is_ok_and(|e| e.evaluate(|r| self.licenses.allow.contains(&r.to_string())));
        (!allowed).then(|| format!("{name}: licence {licence}"))
    }
}

#[test]
fn every_dependency_has_an_allowed_licence_and_source() -> Result<()> {
    let root = catalog_local::workspace_root();
    let policy: DenyPolicy = toml::from_str(&std::fs::read_to_string(root.join("deny.toml"))?)?;
    let mut metadata = std::process::Command::new(env!("CARGO"));
    metadata
        .current_dir(&root)
        .args(["metadata", "--format-version", "1", "--locked"]);
    for target in &policy.graph.targets {
        metadata.args(["--filter-platform", target]);
    }
    let output = metadata.output()?;
    anyhow::ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let packages = metadata["packages"].as_array().expect("packages");
    assert!(packages.len() > 100, "only {} packages", packages.len());
    let refused: Vec<String> = packages.iter().filter_map(|p| policy.refusal(p)).collect();
    assert!(
        refused.is_empty(),
        "refused by deny.toml:\n{}",
        refused.join("\n")
    );
    Ok(())
}
