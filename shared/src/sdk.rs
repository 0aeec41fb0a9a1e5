//! The AWS SDK clients every function builds at cold start, and the one Secrets Manager read.
//!
//! Endpoints follow the SDK's own variables, `AWS_ENDPOINT_URL_<SERVICE>` then
//! `AWS_ENDPOINT_URL`, with one difference: an empty value means "not set". template.yaml
//! declares the service variables empty so that `sam local invoke --env-vars` may set them
//! (it only overrides declared variables); the SDK alone would take an empty one as the
//! endpoint `""` and fail every call.

use aws_config::SdkConfig;

use crate::config::SecretSource;

/// The services the functions call, with the suffix of their endpoint variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    Sqs,
    SecretsManager,
}

impl Service {
    /// The service's endpoint variable, as the SDK names it.
    pub fn endpoint_var(self) -> &'static str {
        match self {
            Self::DynamoDb => "AWS_ENDPOINT_URL_DYNAMODB",
            Self::Sqs => "AWS_ENDPOINT_URL_SQS",
            Self::SecretsManager => "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        }
    }
}

/// The endpoint `service` is called at, or `None` for AWS's own: the first non-empty of its
/// endpoint variable and `AWS_ENDPOINT_URL`.
pub fn endpoint_url(service: Service, get: impl Fn(&str) -> Option<String>) -> Option<String> {
    [service.endpoint_var(), "AWS_ENDPOINT_URL"]
        .into_iter()
        .filter_map(get)
        .map(|value| value.trim().to_owned())
        .find(|value| !value.is_empty())
}

/// The SDK configuration of the process environment, and the clients built from it.
#[derive(Debug, Clone)]
pub struct Sdk {
    config: SdkConfig,
}

impl Sdk {
    /// Loads the SDK's configuration (region, credentials) from the environment.
    pub async fn from_env() -> Self {
        Self {
            config: aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
        }
    }

    fn endpoint(service: Service) -> Option<String> {
        endpoint_url(service, |name| std::env::var(name).ok())
    }

    /// A DynamoDB client.
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let mut config = aws_sdk_dynamodb::config::Builder::from(&self.config);
        config.set_endpoint_url(Self::endpoint(Service::DynamoDb));
        aws_sdk_dynamodb::Client::from_conf(config.build())
    }

    /// An SQS client.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        let mut config = aws_sdk_sqs::config::Builder::from(&self.config);
        config.set_endpoint_url(Self::endpoint(Service::Sqs));
        aws_sdk_sqs::Client::from_conf(config.build())
    }

    /// The secret `source` names: read from Secrets Manager once, at cold start, or given.
    pub async fn secret(&self, source: &SecretSource) -> Result<String, SecretError> {
        Ok(self.secret_versions(source).await?.0)
    }

    /// The secret `source` names and, during a rotation, its previous value (Secrets
    /// Manager's `AWSPREVIOUS`; a given value has none).
    pub async fn secret_versions(
        &self,
        source: &SecretSource,
    ) -> Result<(String, Option<String>), SecretError> {
        let arn = match source {
            SecretSource::Value(value) => return Ok((value.clone(), None)),
            SecretSource::SecretsManager(arn) => arn,
        };
        let mut config = aws_sdk_secretsmanager::config::Builder::from(&self.config);
        config.set_endpoint_url(Self::endpoint(Service::SecretsManager));
        let client = aws_sdk_secretsmanager::Client::from_conf(config.build());
        secret_versions(&client, arn).await
    }
}

/// The `AWSCURRENT` value of the secret `arn` and its `AWSPREVIOUS` one, if it has one.
pub async fn secret_versions(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<(String, Option<String>), SecretError> {
    let read = |stage: &'static str| async move {
        let reply = client
            .get_secret_value()
            .secret_id(arn)
            .version_stage(stage)
            .send()
            .await;
        match reply {
            Ok(reply) => reply
                .secret_string
                .map(Some)
                .ok_or_else(|| SecretError::NotAString(arn.to_owned())),
            // A secret never rotated has no previous version.
            Err(e)
                if stage == "AWSPREVIOUS"
                    && e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(SecretError::Read {
                arn: arn.to_owned(),
                reason: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            }),
        }
    };
    let current = read("AWSCURRENT")
        .await?
        .ok_or_else(|| SecretError::NotAString(arn.into()))?;
    Ok((current, read("AWSPREVIOUS").await?))
}

/// Why a secret could not be read.
#[derive(thiserror::Error)]
pub enum SecretError {
    #[error("reading the secret {arn} from Secrets Manager: {reason}")]
    Read { arn: String, reason: String },
    #[error("the secret {0} has no SecretString")]
    NotAString(String),
}

/// The message itself, as for [`crate::config::ConfigError`]: it is the cold start's log line.
impl std::fmt::Debug for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn an_empty_endpoint_variable_is_not_set() {
        let template_on_aws = [
            ("AWS_ENDPOINT_URL_DYNAMODB", ""),
            ("AWS_ENDPOINT_URL_SQS", " "),
        ];
        assert_eq!(
            endpoint_url(Service::DynamoDb, lookup(&template_on_aws)),
            None
        );
        assert_eq!(endpoint_url(Service::Sqs, lookup(&template_on_aws)), None);
        assert_eq!(endpoint_url(Service::SecretsManager, lookup(&[])), None);
    }

    #[test]
    fn the_service_variable_wins_over_the_global_one() {
        let vars = [
            ("AWS_ENDPOINT_URL_DYNAMODB", "http://dynamodb:8000"),
            ("AWS_ENDPOINT_URL_SQS", ""),
            ("AWS_ENDPOINT_URL", "http://moto:5000"),
        ];
        assert_eq!(
            endpoint_url(Service::DynamoDb, lookup(&vars)).as_deref(),
            Some("http://dynamodb:8000")
        );
        assert_eq!(
            endpoint_url(Service::Sqs, lookup(&vars)).as_deref(),
            Some("http://moto:5000")
        );
    }
}
