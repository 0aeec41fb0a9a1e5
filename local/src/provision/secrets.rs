//! The template's two secrets (`CursorSecret`, `RevalidateSecret`), created in moto's Secrets
//! Manager with the local values, so that a function under `sam local` reads its secret the
//! way it does on AWS: by ARN, from Secrets Manager.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use aws_sdk_secretsmanager::Client;

/// Creates (or updates) one secret per `(logical id, value)` under `prefix`, and returns
/// logical id -> ARN.
pub async fn create(
    client: &Client,
    prefix: &str,
    secrets: &[(&str, &str)],
) -> Result<BTreeMap<String, String>> {
    let mut arns = BTreeMap::new();
    for (logical, value) in secrets {
        let name = format!("{prefix}{logical}");
        let created = client
            .create_secret()
            .name(&name)
            .secret_string(*value)
            .send()
            .await;
        let arn = match created {
            Ok(reply) => reply.arn,
            // A stack started again against the same emulator: keep its ARN, set the value.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_exists_exception()) =>
            {
                client
                    .put_secret_value()
                    .secret_id(&name)
                    .secret_string(*value)
                    .send()
                    .await
                    .with_context(|| format!("updating the secret {name}"))?
                    .arn
            }
            Err(e) => return Err(e).with_context(|| format!("creating the secret {name}")),
        };
        let arn = arn.with_context(|| format!("the secret {name} has no ARN"))?;
        arns.insert((*logical).to_owned(), arn);
    }
    Ok(arns)
}
