//! Configuration, read from the environment once at cold start. A missing or bad value stops
//! the function with a message that names the variable.

use crate::store::TableNames;
use catalog_core::reconcile::MAX_SEGMENTS;
use catalog_core::tag_table::valid_storefront;
use catalog_core::tags::StockTagPolicy;

/// A variable that is missing or does not parse.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set (template.yaml sets it on AWS)")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// The message itself: a `main` that returns this error prints `Error: {:?}` at cold start,
/// and that line is what the function's log shows.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Reads a variable through `get`, so tests can pass a map instead of the process environment.
fn required(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    get(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// The summary-projector's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectorConfig {
    /// `PRODUCTS_TABLE`, `INVENTORY_TABLE`, `SUMMARIES_TABLE`.
    pub tables: TableNames,
    /// `TAG_QUEUE_URL`: where the tags to revalidate go.
    pub tag_queue_url: String,
    /// `PARKED_RECORDS_QUEUE_URL`: the dead-letter queue for records that can never succeed.
    pub parked_queue_url: String,
    /// `LISTING_CHECK_QUEUE_URL`: listing tags waiting for the index (the projector drains it).
    pub listing_check_queue_url: String,
    /// `STOCK_TAG_POLICY`: `eager` (default) or `quiet`.
    pub stock_tag_policy: StockTagPolicy,
}

impl ProjectorConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            tables: table_names(&get)?,
            tag_queue_url: queue_url(&get, "TAG_QUEUE_URL")?,
            parked_queue_url: queue_url(&get, "PARKED_RECORDS_QUEUE_URL")?,
            listing_check_queue_url: queue_url(&get, "LISTING_CHECK_QUEUE_URL")?,
            stock_tag_policy: stock_tag_policy(&get)?,
        })
    }
}

/// The reconciler's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcilerConfig {
    /// `PRODUCTS_TABLE`, `INVENTORY_TABLE`, `SUMMARIES_TABLE`.
    pub tables: TableNames,
    /// `RECONCILE_PROGRESS_TABLE`: each segment's step, so a duplicated message runs once.
    pub progress_table: String,
    /// `TAG_QUEUE_URL`: where the tags of repaired summaries go.
    pub tag_queue_url: String,
    /// `RECONCILE_QUEUE_URL`: one message per segment of a run.
    pub reconcile_queue_url: String,
    /// `LISTING_CHECK_QUEUE_URL`: repaired listings' tags waiting for the index.
    pub listing_check_queue_url: String,
    /// `RECONCILE_SEGMENTS`: parallel Scan segments of a scheduled run (default 4).
    pub default_segments: u32,
    /// `STOCK_TAG_POLICY`, as for the projector.
    pub stock_tag_policy: StockTagPolicy,
}

impl ReconcilerConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let default_segments = match get("RECONCILE_SEGMENTS").filter(|v| !v.trim().is_empty()) {
            None => 4,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (1..=MAX_SEGMENTS).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "RECONCILE_SEGMENTS",
                        reason: format!("{v:?} is not a whole number from 1 to {MAX_SEGMENTS}"),
                    })
                }
            },
        };
        Ok(Self {
            tables: table_names(&get)?,
            progress_table: required(&get, "RECONCILE_PROGRESS_TABLE")?,
            tag_queue_url: queue_url(&get, "TAG_QUEUE_URL")?,
            reconcile_queue_url: queue_url(&get, "RECONCILE_QUEUE_URL")?,
            listing_check_queue_url: queue_url(&get, "LISTING_CHECK_QUEUE_URL")?,
            default_segments,
            stock_tag_policy: stock_tag_policy(&get)?,
        })
    }
}

/// Where a secret comes from (the cursor key, the revalidate signing secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The ARN of a Secrets Manager secret (as template.yaml sets it).
    SecretsManager(String),
    /// The secret itself, for local runs only.
    Value(String),
}

impl SecretSource {
    /// Reads `arn_var`, else `value_var`. Empty means not set, so `sam local invoke --env-vars`
    /// can blank the ARN the template declares; an ARN that is not one (under `sam local` a
    /// `!Ref` gives the resource's logical id) is refused by name.
    fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
        arn_var: &'static str,
        value_var: &'static str,
    ) -> Result<Self, ConfigError> {
        let set = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        match (set(arn_var), set(value_var)) {
            (Some(arn), _) if arn.trim().starts_with("arn:") => {
                Ok(Self::SecretsManager(arn.trim().to_owned()))
            }
            (Some(arn), _) => Err(ConfigError::Invalid {
                name: arn_var,
                reason: format!("{arn:?} is not an ARN{SAM_LOCAL_HINT}"),
            }),
            (None, Some(value)) => Ok(Self::Value(value)),
            (None, None) => Err(ConfigError::Missing(arn_var)),
        }
    }
}

/// Under `sam local`, a `!Ref` gives a resource's logical id instead of its name, URL or ARN.
const SAM_LOCAL_HINT: &str = " (under sam local, pass --env-vars .local/sam-env.json, which \
    scripts/dev writes)";

/// Whether `url` is an http(s) URL (what SQS queue URLs and revalidate routes are).
fn is_http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

/// Reads a queue URL, refusing what is not one (a logical id under `sam local`).
fn queue_url(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    let url = required(get, name)?.trim().to_owned();
    if is_http_url(&url) {
        Ok(url)
    } else {
        Err(ConfigError::Invalid {
            name,
            reason: format!("{url:?} is not a queue URL{SAM_LOCAL_HINT}"),
        })
    }
}

/// The listing-api's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingApiConfig {
    /// `SUMMARIES_TABLE`.
    pub summaries_table: String,
    /// `CURSOR_SECRET_ARN` (as template.yaml sets it), or `CURSOR_SECRET` for local runs: the
    /// key listing cursors are signed with.
    pub cursor_secret: SecretSource,
}

impl ListingApiConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            summaries_table: required(&get, "SUMMARIES_TABLE")?,
            cursor_secret: SecretSource::from_lookup(&get, "CURSOR_SECRET_ARN", "CURSOR_SECRET")?,
        })
    }
}

/// The longest `REVALIDATE_TIMEOUT_MS`: 2 calls and 1 s of inline wait within the
/// revalidator's 30 s function timeout (template.yaml; `tests/tests/integration/template.rs` checks it).
pub const MAX_REVALIDATE_TIMEOUT_MS: u64 = 12_000;

/// The tag-revalidator's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevalidatorConfig {
    /// `REVALIDATE_ENDPOINTS`: comma-separated URLs of every storefront's revalidate route.
    pub endpoints: Vec<String>,
    /// `TAG_TABLE` and `TAG_TABLE_STOREFRONTS`: the storefronts whose instances read their
    /// tags from the shared tag table.
    pub tag_table: Option<TagTableTarget>,
    pub secret: SecretSource,
    /// `TAG_QUEUE_URL`: to delay a failed message's next delivery (backoff, `Retry-After`).
    pub tag_queue_url: String,
    /// `TAG_RETRY_QUEUE_URL`: where a target's failed tags go, to be retried for it alone.
    pub tag_retry_queue_url: String,
    /// `REVALIDATE_TIMEOUT_MS`: per call (default 5000, at most 12 000: two calls and the
    /// inline retry wait must fit in the function's 30 s, or a timed-out invocation would
    /// fail every target's messages).
    pub timeout_ms: u64,
    /// `REVALIDATE_MAX_TAGS`: tags per call (default and maximum 128, Next.js's limit).
    pub max_tags_per_call: usize,
}

impl RevalidatorConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let endpoints = list(&get, "REVALIDATE_ENDPOINTS");
        let tag_table = TagTableTarget::from_lookup(&get)?;
        if endpoints.is_empty() && tag_table.is_none() {
            return Err(ConfigError::Invalid {
                name: "REVALIDATE_ENDPOINTS",
                reason: "no storefront to revalidate: set it, or TAG_TABLE_STOREFRONTS".into(),
            });
        }
        // Each URL is also the audience its calls are signed for: printable ASCII, no spaces.
        // Plain http (a call anyone on the path can read, hold and replay within the window) is
        // for the local stack only, which says so with REVALIDATE_ALLOW_HTTP=true.
        let allow_http = get("REVALIDATE_ALLOW_HTTP").is_some_and(|v| v.trim() == "true");
        for endpoint in &endpoints {
            let printable =
                endpoint.len() <= 2048 && endpoint.bytes().all(|b| b.is_ascii_graphic());
            let scheme_ok =
                endpoint.starts_with("https://") || (allow_http && endpoint.starts_with("http://"));
            if !printable || !scheme_ok {
                return Err(ConfigError::Invalid {
                    name: "REVALIDATE_ENDPOINTS",
                    reason: format!(
                        "{endpoint:?} is not an https URL of printable ASCII (http:// only with \
                         REVALIDATE_ALLOW_HTTP=true, for a local stack)"
                    ),
                });
            }
        }
        let secret = SecretSource::from_lookup(&get, "REVALIDATE_SECRET_ARN", "REVALIDATE_SECRET")?;
        let number = |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if range.contains(&n) => Ok(n),
                    _ => Err(ConfigError::Invalid {
                        name,
                        reason: format!("{v:?} is not a whole number in {range:?}"),
                    }),
                },
            }
        };
        Ok(Self {
            endpoints,
            tag_table,
            secret,
            tag_queue_url: queue_url(&get, "TAG_QUEUE_URL")?,
            tag_retry_queue_url: queue_url(&get, "TAG_RETRY_QUEUE_URL")?,
            timeout_ms: number(
                "REVALIDATE_TIMEOUT_MS",
                5000,
                100..=MAX_REVALIDATE_TIMEOUT_MS,
            )?,
            max_tags_per_call: number("REVALIDATE_MAX_TAGS", 128, 1..=128)? as usize,
        })
    }
}

/// The tag table and the storefronts the revalidator writes tags for there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagTableTarget {
    pub table: String,
    pub storefronts: Vec<String>,
}

impl TagTableTarget {
    /// `None` when `TAG_TABLE_STOREFRONTS` names none; then `TAG_TABLE` is not needed.
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ConfigError> {
        let storefronts = list(get, "TAG_TABLE_STOREFRONTS");
        if storefronts.is_empty() {
            return Ok(None);
        }
        if let Some(bad) = storefronts.iter().find(|s| !valid_storefront(s)) {
            return Err(ConfigError::Invalid {
                name: "TAG_TABLE_STOREFRONTS",
                reason: format!("{bad:?} is not 1 to 64 of A-Z a-z 0-9 _ -"),
            });
        }
        Ok(Some(Self {
            table: required(get, "TAG_TABLE")?,
            storefronts,
        }))
    }
}

/// A comma-separated variable's items, trimmed; none when unset.
fn list(get: &impl Fn(&str) -> Option<String>, name: &str) -> Vec<String> {
    get(name)
        .unwrap_or_default()
        .split(',')
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty())
        .collect()
}

/// Reads `STOCK_TAG_POLICY`: `eager` (the default) or `quiet`.
fn stock_tag_policy(get: &impl Fn(&str) -> Option<String>) -> Result<StockTagPolicy, ConfigError> {
    match get("STOCK_TAG_POLICY").filter(|v| !v.trim().is_empty()) {
        None => Ok(StockTagPolicy::default()),
        Some(v) => v.parse().map_err(
            |e: catalog_core::tags::UnknownPolicy| ConfigError::Invalid {
                name: "STOCK_TAG_POLICY",
                reason: e.to_string(),
            },
        ),
    }
}

/// Reads `PRODUCTS_TABLE`, `INVENTORY_TABLE` and `SUMMARIES_TABLE`.
pub fn table_names(get: &impl Fn(&str) -> Option<String>) -> Result<TableNames, ConfigError> {
    Ok(TableNames {
        products: required(get, "PRODUCTS_TABLE")?,
        inventory: required(get, "INVENTORY_TABLE")?,
        summaries: required(get, "SUMMARIES_TABLE")?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("PRODUCTS_TABLE", "P"),
        ("INVENTORY_TABLE", "I"),
        ("SUMMARIES_TABLE", "S"),
        ("TAG_QUEUE_URL", "http://q/tags"),
        ("PARKED_RECORDS_QUEUE_URL", "http://q/parked"),
        ("LISTING_CHECK_QUEUE_URL", "http://q/listing-checks"),
    ];

    #[test]
    fn reads_every_setting() {
        let config = ProjectorConfig::from_lookup(env(FULL)).unwrap();
        assert_eq!(config.tables.summaries, "S");
        assert_eq!(config.stock_tag_policy, StockTagPolicy::Eager);
    }

    #[test]
    fn revalidator_settings_name_what_is_wrong() {
        let base = [
            (
                "REVALIDATE_ENDPOINTS",
                "https://a.example/api/revalidate, https://b:3000/api/revalidate",
            ),
            ("REVALIDATE_SECRET", "s3cret"),
            ("TAG_QUEUE_URL", "http://q/tags"),
            ("TAG_RETRY_QUEUE_URL", "http://q/retries"),
        ];
        let config = RevalidatorConfig::from_lookup(env(&base)).unwrap();
        assert_eq!(config.endpoints.len(), 2);
        // Plain http only where the local stack allows it.
        let mut http = base.to_vec();
        http[0].1 = "https://a.example/api/revalidate, http://b:3000/api/revalidate";
        let err = RevalidatorConfig::from_lookup(env(&http)).unwrap_err();
        assert!(err.to_string().contains("http://b:3000"), "{err}");
        http.push(("REVALIDATE_ALLOW_HTTP", "true"));
        assert!(RevalidatorConfig::from_lookup(env(&http)).is_ok());
        assert_eq!(config.secret, SecretSource::Value("s3cret".into()));
        assert_eq!((config.timeout_ms, config.max_tags_per_call), (5000, 128));
        let mut arn = base.to_vec();
        arn.push(("REVALIDATE_SECRET_ARN", "arn:aws:secretsmanager:x"));
        assert!(matches!(
            RevalidatorConfig::from_lookup(env(&arn)).unwrap().secret,
            SecretSource::SecretsManager(_)
        ));
        let mut bad = base.to_vec();
        bad.push(("REVALIDATE_MAX_TAGS", "500"));
        let err = RevalidatorConfig::from_lookup(env(&bad)).unwrap_err();
        assert!(err.to_string().contains("REVALIDATE_MAX_TAGS"));
        let mut slow = base.to_vec();
        slow.push(("REVALIDATE_TIMEOUT_MS", "20000"));
        let err = RevalidatorConfig::from_lookup(env(&slow)).unwrap_err();
        assert!(err.to_string().contains("REVALIDATE_TIMEOUT_MS"), "{err}");
        let err = RevalidatorConfig::from_lookup(env(&base[1..])).unwrap_err();
        assert!(err.to_string().contains("REVALIDATE_ENDPOINTS"), "{err}");
        assert!(err.to_string().contains("TAG_TABLE_STOREFRONTS"), "{err}");
        let err = RevalidatorConfig::from_lookup(env(&[base[0], base[2], base[3]])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("REVALIDATE_SECRET_ARN"));
        let ftp = [
            ("REVALIDATE_ENDPOINTS", "ftp://x"),
            base[1],
            base[2],
            base[3],
        ];
        assert!(RevalidatorConfig::from_lookup(env(&ftp)).is_err());
    }

    #[test]
    fn the_tag_table_alone_is_enough_and_names_are_checked() {
        let base = [
            ("TAG_TABLE_STOREFRONTS", "web, web-eu"),
            ("TAG_TABLE", "catalog-Tags"),
            ("REVALIDATE_SECRET", "s3cret"),
            ("TAG_QUEUE_URL", "http://q/tags"),
            ("TAG_RETRY_QUEUE_URL", "http://q/retries"),
        ];
        let config = RevalidatorConfig::from_lookup(env(&base)).unwrap();
        assert!(config.endpoints.is_empty());
        let target = config.tag_table.unwrap();
        assert_eq!(target.table, "catalog-Tags");
        assert_eq!(target.storefronts, ["web", "web-eu"]);
        let err =
            RevalidatorConfig::from_lookup(env(&[base[0], base[2], base[3], base[4]])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("TAG_TABLE"));
        let bad = [
            ("TAG_TABLE_STOREFRONTS", "web#1"),
            base[1],
            base[2],
            base[3],
            base[4],
        ];
        let err = RevalidatorConfig::from_lookup(env(&bad)).unwrap_err();
        assert!(err.to_string().contains("TAG_TABLE_STOREFRONTS"), "{err}");
    }

    #[test]
    fn names_the_missing_or_bad_variable() {
        let err = ProjectorConfig::from_lookup(env(&FULL[1..])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("PRODUCTS_TABLE"));
        assert!(err.to_string().contains("PRODUCTS_TABLE"));
        let mut bad = FULL.to_vec();
        bad.push(("STOCK_TAG_POLICY", "loud"));
        let err = ProjectorConfig::from_lookup(env(&bad)).unwrap_err();
        assert!(err.to_string().contains("STOCK_TAG_POLICY"));
    }

    /// What `sam local invoke` gives without `--env-vars`: every `!Ref` is a logical id.
    #[test]
    fn logical_ids_from_sam_local_are_refused_by_name() {
        let sam_local = [
            ("SUMMARIES_TABLE", "SummariesTable"),
            ("CURSOR_SECRET_ARN", "CursorSecret"),
        ];
        let err = ListingApiConfig::from_lookup(env(&sam_local)).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                name: "CURSOR_SECRET_ARN",
                ..
            }
        ));
        assert!(err.to_string().contains("--env-vars"), "{err}");
        let mut queues = FULL.to_vec();
        queues[3] = ("TAG_QUEUE_URL", "TagQueue");
        let err = ProjectorConfig::from_lookup(env(&queues)).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                name: "TAG_QUEUE_URL",
                ..
            }
        ));
    }

    #[test]
    fn an_empty_secret_arn_is_not_set() {
        let blanked = [
            ("SUMMARIES_TABLE", "S"),
            ("CURSOR_SECRET_ARN", ""),
            ("CURSOR_SECRET", "local-key"),
        ];
        let config = ListingApiConfig::from_lookup(env(&blanked)).unwrap();
        assert_eq!(
            config.cursor_secret,
            SecretSource::Value("local-key".into())
        );
        let err = ListingApiConfig::from_lookup(env(&blanked[..2])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("CURSOR_SECRET_ARN"));
        let arn = [
            ("SUMMARIES_TABLE", "S"),
            ("CURSOR_SECRET_ARN", "arn:aws:secretsmanager:x"),
        ];
        assert_eq!(
            ListingApiConfig::from_lookup(env(&arn))
                .unwrap()
                .cursor_secret,
            SecretSource::SecretsManager("arn:aws:secretsmanager:x".into())
        );
    }
}
