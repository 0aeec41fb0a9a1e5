//! The `--env-vars` file for `sam local invoke` and `sam local start-api` against the running
//! stack (`.local/sam-env.json`): the table names, queue URLs and secret ARNs that a `!Ref`
//! gives on AWS, and endpoints a container reaches (`host.docker.internal`, which the sam
//! commands map with `--add-host host.docker.internal:host-gateway`).
//!
//! sam overrides only the variables template.yaml declares, so the endpoint variables are
//! declared there, empty.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use catalog::sdk::Service;
use serde_json::{json, Map, Value};

use crate::stack::Endpoints;

/// The host name containers reach this machine by.
pub const CONTAINER_HOST: &str = "host.docker.internal";

/// The stand-in for AWS's `provided.al2023` arm64 base image that scripts/sam-local builds,
/// under a name of our own so that no one mistakes it for AWS's image (`sam local ...
/// --invoke-image` this; scripts/sam-local spells the same name).
pub const STANDIN_IMAGE: &str = "catalog-sync/lambda-provided-standin:al2023-arm64";

/// Where the running stack writes the file.
pub fn path(root: &Path) -> PathBuf {
    crate::local_dir(root).join("sam-env.json")
}

/// `url` as a container reaches it: a loopback host becomes [`CONTAINER_HOST`].
pub fn for_container(url: &str) -> String {
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .fold(url.to_owned(), |url, host| {
            url.replacen(&format!("://{host}:"), &format!("://{CONTAINER_HOST}:"), 1)
        })
}

/// The file's content: every variable under `Parameters` (sam applies those to each function
/// that declares them). `revalidate_endpoints` become `REVALIDATE_ENDPOINTS` when there are
/// any: the revalidate routes a container can call (the local storefront signs for its
/// 127.0.0.1 URL only, so it is not one).
pub fn render(endpoints: &Endpoints, revalidate_endpoints: &[String]) -> Result<Value> {
    let services = [
        (Service::DynamoDb, &endpoints.dynamodb),
        (Service::Sqs, &endpoints.sqs),
        // moto serves Secrets Manager beside SQS.
        (Service::SecretsManager, &endpoints.sqs),
    ];
    let mut vars: Vec<(&str, String)> = services
        .into_iter()
        .map(|(service, url)| (service.endpoint_var(), url.clone()))
        .collect();
    vars.extend(endpoints.resources().environment());
    if !revalidate_endpoints.is_empty() {
        vars.push(("REVALIDATE_ENDPOINTS", revalidate_endpoints.join(",")));
        // The local routes are plain http; deployed ones must be https.
        vars.push(("REVALIDATE_ALLOW_HTTP", "true".to_owned()));
    }
    let vars: Map<String, Value> = vars
        .into_iter()
        .map(|(name, value)| (name.to_owned(), Value::String(for_container_all(&value))))
        .collect();
    Ok(json!({ "Parameters": vars }))
}

/// [`for_container`] for each of a comma-separated list of URLs (other values pass unchanged).
fn for_container_all(value: &str) -> String {
    value
        .split(',')
        .map(for_container)
        .collect::<Vec<_>>()
        .join(",")
}

/// What the shell running `sam local` needs, for `.local/sam-env.sh`: credentials the
/// emulators accept (sam hands the shell's credentials to the container), a region, and an STS
/// endpoint for sam's own account lookup (it calls GetCallerIdentity before every invoke, which
/// offline waits ~9 s for AWS; moto answers at once).
pub fn shell_vars(endpoints: &Endpoints) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "local".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local".to_owned()),
        ("AWS_REGION", crate::services::REGION.to_owned()),
        ("AWS_ENDPOINT_URL_STS", endpoints.sqs.clone()),
        ("SAM_CLI_TELEMETRY", "0".to_owned()),
    ]
}

/// The path of the shell file beside [`path`].
pub fn shell_path(root: &Path) -> PathBuf {
    crate::local_dir(root).join("sam-env.sh")
}

/// Writes [`shell_vars`] as `export` lines to `path`.
pub fn write_shell(path: &Path, endpoints: &Endpoints) -> Result<()> {
    let mut text = String::from(
        "# For `sam local` against the local stack: source .local/sam-env.sh (see README).\n",
    );
    for (name, value) in shell_vars(endpoints) {
        text += &format!("export {name}={value}\n");
    }
    std::fs::write(path, text).with_context(|| format!("writing {path:?}"))
}

/// Writes [`render`]'s file to `path`.
pub fn write(path: &Path, endpoints: &Endpoints, revalidate_endpoints: &[String]) -> Result<()> {
    let text = serde_json::to_string_pretty(&render(endpoints, revalidate_endpoints)?)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {path:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_become_the_container_host() {
        assert_eq!(
            for_container("http://127.0.0.1:4566/000000000000/q"),
            "http://host.docker.internal:4566/000000000000/q"
        );
        assert_eq!(
            for_container("http://localhost:8000"),
            "http://host.docker.internal:8000"
        );
        assert_eq!(
            for_container("https://shop.example.com/api"),
            "https://shop.example.com/api"
        );
    }
}
