//! template.yaml and the code agree: table keys, the listing index, stream views, and the
//! environment each function reads.

use std::collections::HashSet;

use anyhow::{Context, Result};
use catalog::config::ProjectorConfig;
use catalog::store::summaries::LISTING_INDEX;
use catalog_local::template::Template;
use serde_yaml_ng::Value;

fn template() -> Result<Template> {
    Template::load(&catalog_local::workspace_root())
}

/// The environment variable names a function gets: Globals plus its own.
fn env_names(t: &Template, function: &str) -> Result<HashSet<String>> {
    let vars = |v: Option<&Value>| -> HashSet<String> {
        v.and_then(|v| v.get("Environment"))
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .map(|m| {
                m.keys()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let globals = t.document.get("Globals").and_then(|g| g.get("Function"));
    let own = t.document["Resources"]
        .get(function)
        .with_context(|| format!("no {function}"))?
        .get("Properties");
    Ok(vars(globals).union(&vars(own)).cloned().collect())
}

#[test]
fn the_listing_index_is_the_one_the_code_queries() -> Result<()> {
    let t = template()?;
    let index = &t.table("SummariesTable")?.indexes[0];
    assert_eq!(index.name, LISTING_INDEX);
    assert_eq!(
        index.key_schema,
        [
            ("storeId".into(), "HASH".into()),
            ("listSk".into(), "RANGE".into())
        ]
    );
    // The bookkeeping attributes stay out of the index, so clearing the outbox is free there.
    assert_eq!(index.projection_type, "INCLUDE");
    assert!(!index
        .non_key_attributes
        .iter()
        .any(|a| a == "pendingTags" || a == "revision"));
    Ok(())
}

#[test]
fn both_source_tables_stream_new_and_old_images() -> Result<()> {
    let t = template()?;
    for table in ["ProductsTable", "InventoryTable"] {
        assert_eq!(
            t.table(table)?.stream_view_type.as_deref(),
            Some("NEW_AND_OLD_IMAGES"),
            "{table}"
        );
    }
    Ok(())
}

#[test]
fn the_projector_gets_every_variable_it_reads() -> Result<()> {
    let t = template()?;
    let names = env_names(&t, "SummaryProjectorFunction")?;
    let config = ProjectorConfig::from_lookup(|name| {
        names.contains(name).then(|| match name {
            "STOCK_TAG_POLICY" => "eager".to_owned(),
            _ => "set".to_owned(),
        })
    });
    assert!(config.is_ok(), "{config:?}");
    Ok(())
}

#[test]
fn the_projector_reports_batch_item_failures_on_both_streams() -> Result<()> {
    let t = template()?;
    let events = &t.document["Resources"]["SummaryProjectorFunction"]["Properties"]["Events"];
    for stream in ["ProductsStream", "InventoryStream"] {
        let props = &events[stream]["Properties"];
        assert_eq!(
            props["FunctionResponseTypes"][0].as_str(),
            Some("ReportBatchItemFailures")
        );
        assert!(
            props["MaximumRetryAttempts"]
                .as_i64()
                .is_some_and(|n| n >= 0),
            "{stream}: retries must be finite"
        );
        assert!(
            props.get("DestinationConfig").is_some(),
            "{stream}: needs an on-failure destination"
        );
    }
    Ok(())
}

/// Every `Action` and `Resource` string in the template, with where it was found.
fn policy_strings(value: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let key = k.as_str().unwrap_or("?");
                let here = format!("{path}.{key}");
                if key == "Action" || key == "Resource" {
                    // Plain strings, and the text of !Sub and friends.
                    let mut leaf = |v: &Value| {
                        let text = match v {
                            Value::Tagged(t) => t.value.as_str(),
                            other => other.as_str(),
                        };
                        if let Some(s) = text {
                            out.push((here.clone(), s.to_owned()));
                        }
                    };
                    match v {
                        Value::Sequence(items) => items.iter().for_each(&mut leaf),
                        other => leaf(other),
                    }
                }
                policy_strings(v, &here, out);
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                policy_strings(v, &format!("{path}[{i}]"), out);
            }
        }
        Value::Tagged(t) => policy_strings(&t.value, path, out),
        _ => {}
    }
}

#[test]
fn no_policy_has_a_wildcard_action_or_resource() -> Result<()> {
    let t = template()?;
    let mut found = Vec::new();
    policy_strings(&t.document, "", &mut found);
    assert!(found.len() > 5, "the walk found the policies: {found:?}");
    let wild: Vec<_> = found.iter().filter(|(_, s)| s.contains('*')).collect();
    assert!(wild.is_empty(), "wildcards: {wild:?}");
    Ok(())
}

#[test]
fn the_listing_api_only_reads_summaries() -> Result<()> {
    let t = template()?;
    let mut found = Vec::new();
    policy_strings(
        &t.document["Resources"]["ListingApiFunction"]["Properties"]["Policies"],
        "",
        &mut found,
    );
    let actions: HashSet<&str> = found
        .iter()
        .filter(|(path, _)| path.ends_with("Action"))
        .map(|(_, a)| a.as_str())
        .collect();
    let reads: HashSet<&str> = [
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "secretsmanager:GetSecretValue",
    ]
    .into();
    assert_eq!(actions, reads);
    Ok(())
}

#[test]
fn every_queue_where_failures_land_has_an_alarm_that_notifies() -> Result<()> {
    let t = template()?;
    let resources = t.document["Resources"].as_mapping().context("Resources")?;
    let alarmed: HashSet<String> = resources
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .filter(|r| r["Properties"].get("AlarmActions").is_some())
        .filter_map(|r| match &r["Properties"]["Dimensions"][0]["Value"] {
            Value::Tagged(tag) => tag
                .value
                .as_str()
                .and_then(|s| s.split('.').next())
                .map(str::to_owned),
            _ => None,
        })
        .collect();
    for queue in [
        "ParkedRecordsQueue",
        "StreamFailureQueue",
        "TagDeadLetterQueue",
        "ReconcileDeadLetterQueue",
    ] {
        assert!(alarmed.contains(queue), "no alarm on {queue}: {alarmed:?}");
    }
    assert!(
        alarmed.contains("SummaryProjectorFunction"),
        "projector alarms: {alarmed:?}"
    );
    Ok(())
}

#[test]
fn the_revalidator_gets_every_variable_it_reads_and_no_plain_secret() -> Result<()> {
    let t = template()?;
    let names = env_names(&t, "TagRevalidatorFunction")?;
    let config = catalog::config::RevalidatorConfig::from_lookup(|name| {
        names.contains(name).then(|| match name {
            "REVALIDATE_ENDPOINTS" => "https://shop.example/api/revalidate".to_owned(),
            "REVALIDATE_TIMEOUT_MS" => "5000".to_owned(),
            _ => "set".to_owned(),
        })
    });
    assert!(config.is_ok(), "{config:?}");
    // The secret comes from Secrets Manager, never from the template in plain text.
    assert!(names.contains("REVALIDATE_SECRET_ARN"));
    assert!(!names.contains("REVALIDATE_SECRET"));
    Ok(())
}

#[test]
fn the_tag_queue_suits_the_revalidator() -> Result<()> {
    let t = template()?;
    let sources = t.event_sources("TagRevalidatorFunction")?;
    let tags = &sources.queues[0];
    assert_eq!(tags.queue, "TagQueue");
    assert!(tags.report_item_failures);
    let timeout = t.document["Resources"]["TagRevalidatorFunction"]["Properties"]
        .get("Timeout")
        .or_else(|| t.document["Globals"]["Function"].get("Timeout"))
        .and_then(Value::as_i64)
        .context("a timeout")?;
    let queue = t.queue("TagQueue")?;
    assert!(
        queue.visibility_timeout.unwrap_or(30) >= 6 * timeout,
        "visibility >= 6x timeout"
    );
    assert_eq!(
        queue.redrive.as_ref().map(|r| r.0.as_str()),
        Some("TagDeadLetterQueue")
    );
    Ok(())
}

/// Issue 13, defect 4: a storefront down or deploying for an hour loses no invalidation. The
/// tag queue's receives, with the revalidator's backoff between them, must outlast it (5
/// receives did not: 62 s).
#[test]
fn the_tag_queue_outlasts_an_hour_of_storefront_outage() -> Result<()> {
    let t = template()?;
    let (_, max_receive_count) = t.queue("TagQueue")?.redrive.clone().context("a DLQ")?;
    let patience = tag_revalidator::backoff::patience(u32::try_from(max_receive_count)?);
    assert!(
        patience >= std::time::Duration::from_secs(3600),
        "messages are dead-lettered after {patience:?} of outage"
    );
    let retention = t.queue("TagQueue")?.retention.unwrap_or(345_600);
    assert!(
        retention as u64 > patience.as_secs(),
        "kept longer than retried"
    );
    Ok(())
}

#[test]
fn admin_routes_are_iam_authorized_and_the_shopper_routes_are_public() -> Result<()> {
    let t = template()?;
    let resources = t.document["Resources"].as_mapping().expect("resources");
    let mut admin = Vec::new();
    for (_, resource) in resources {
        let events = resource["Properties"]["Events"].as_mapping();
        for (_, event) in events.into_iter().flatten() {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let props = &event["Properties"];
            let path = props["Path"].as_str().unwrap_or_default();
            let authorizer = props["Auth"]["Authorizer"].as_str();
            if path.starts_with("/admin/") {
                assert_eq!(authorizer, Some("AWS_IAM"), "{path}");
                admin.push(path.to_owned());
            } else {
                assert_eq!(authorizer, None, "{path} is for shoppers");
            }
        }
    }
    admin.sort();
    assert_eq!(
        admin,
        [
            "/admin/products/{productId}/revalidate",
            "/admin/stores/{storeId}/products"
        ]
    );
    let api = &t.document["Resources"]["ListingHttpApi"]["Properties"]["Auth"];
    assert_eq!(api["EnableIamAuthorizer"].as_bool(), Some(true));
    assert!(
        api.get("DefaultAuthorizer").is_none(),
        "listing routes must stay public"
    );
    Ok(())
}
