//! template.yaml and the code agree: table keys, the listing index, stream views, and the
//! environment each function reads.

use std::collections::HashSet;

use anyhow::{Context, Result};
use catalog::config::ProjectorConfig;
use catalog::store::STORE_INDEX;
use catalog_core::ids::StoreId;
use catalog_core::listing::{plan, Filters, IndexQuery, Listing, Sort};
use catalog_core::model::MinorUnits;
use catalog_core::reconcile::MAX_SEGMENTS;
use catalog_local::template::{get_att_target, Template};
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
    assert_eq!(index.name, STORE_INDEX);
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

/// Every listing the API can plan, over every sort and filter.
fn every_plan() -> Vec<IndexQuery> {
    let store = StoreId::parse("s1").unwrap();
    let price = Some(MinorUnits::new(100).unwrap());
    let mut plans = Vec::new();
    for sort in Sort::ALL {
        for (in_stock, min_price, include_inactive) in [
            (false, None, false),
            (true, None, false),
            (false, price, false),
            (true, price, false),
            (false, None, true),
        ] {
            let filters = Filters {
                in_stock,
                min_price,
                max_price: None,
                include_inactive,
            };
            if let Ok(listing) = Listing::new(store.clone(), sort, filters) {
                plans.push(plan(&listing));
            }
        }
    }
    plans
}

#[test]
fn every_index_a_listing_queries_is_in_the_template_with_its_keys() -> Result<()> {
    let t = template()?;
    let table = t.table("SummariesTable")?;
    let plans = every_plan();
    // title: all, in stock, admin; each price sort: with and without stock and price filters;
    // newest: all, in stock.
    assert_eq!(
        plans.len(),
        3 + 4 + 4 + 2,
        "every accepted combination is planned"
    );
    for query in &plans {
        let index = table
            .indexes
            .iter()
            .find(|i| i.name == query.index)
            .with_context(|| format!("template.yaml has no index {}", query.index))?;
        assert_eq!(
            index.key_schema,
            [
                (query.partition_attr.into(), "HASH".into()),
                (query.sort_attr.into(), "RANGE".into())
            ],
            "{}",
            query.index
        );
        // The card is whole from any index, and the bookkeeping stays out of all of them.
        for attribute in [
            "title",
            "price",
            "active",
            "inventoryAvailable",
            "createdAt",
        ] {
            assert!(index.non_key_attributes.iter().any(|a| a == attribute));
        }
        assert!(!index
            .non_key_attributes
            .iter()
            .any(|a| a == "pendingTags" || a == "revision"));
    }
    let used: HashSet<&str> = plans.iter().map(|q| q.index).collect();
    assert_eq!(used.len(), table.indexes.len(), "an index no listing uses");
    // The listing API may Query each one, and the template names them one by one.
    let allowed: HashSet<String> = statements(&t)
        .into_iter()
        .filter(|s| s.role == "ListingApiRole" && s.actions.iter().any(|a| a == "dynamodb:Query"))
        .flat_map(|s| s.resources)
        .collect();
    for index in used {
        let arn = format!("${{SummariesTable.Arn}}/index/{index}");
        assert!(
            allowed.iter().any(|r| r.contains(&arn)),
            "ListingApiRole cannot Query {index}"
        );
    }
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

/// A value as it reaches the function on AWS: queue URLs are URLs, secret ARNs are ARNs.
fn deployed_value(name: &str) -> String {
    match name {
        "STOCK_TAG_POLICY" => "eager".to_owned(),
        "REVALIDATE_ENDPOINTS" => "https://shop.example/api/revalidate".to_owned(),
        "REVALIDATE_TIMEOUT_MS" => "5000".to_owned(),
        "TAG_TABLE_STOREFRONTS" => "web,web-eu".to_owned(),
        "RECONCILE_SEGMENTS" => "4".to_owned(),
        queue if queue.ends_with("_QUEUE_URL") => format!("https://sqs.example/1/{queue}"),
        arn if arn.ends_with("_ARN") => format!("arn:aws:secretsmanager:us-east-1:1:secret:{arn}"),
        _ => "set".to_owned(),
    }
}

#[test]
fn the_projector_gets_every_variable_it_reads() -> Result<()> {
    let t = template()?;
    let names = env_names(&t, "SummaryProjectorFunction")?;
    let config =
        ProjectorConfig::from_lookup(|name| names.contains(name).then(|| deployed_value(name)));
    assert!(config.is_ok(), "{config:?}");
    Ok(())
}

#[test]
fn the_listing_api_gets_every_variable_it_reads_and_no_plain_secret() -> Result<()> {
    let t = template()?;
    let names = env_names(&t, "ListingApiFunction")?;
    let config = catalog::config::ListingApiConfig::from_lookup(|name| {
        names.contains(name).then(|| deployed_value(name))
    });
    assert!(config.is_ok(), "{config:?}");
    assert!(names.contains("CURSOR_SECRET_ARN") && !names.contains("CURSOR_SECRET"));
    Ok(())
}

/// Every endpoint variable the functions read is declared, empty: "not set" on AWS, and
/// settable by `sam local invoke --env-vars` (which ignores undeclared variables).
#[test]
fn every_endpoint_variable_is_declared_empty_for_sam_local() -> Result<()> {
    use catalog::sdk::Service;
    let t = template()?;
    let globals = &t.document["Globals"]["Function"]["Environment"]["Variables"];
    for service in [Service::DynamoDb, Service::Sqs, Service::SecretsManager] {
        let name = service.endpoint_var();
        assert_eq!(globals[name].as_str(), Some(""), "{name}");
        let on_aws = |var: &str| globals[var].as_str().map(str::to_owned);
        assert_eq!(catalog::sdk::endpoint_url(service, on_aws), None, "{name}");
    }
    Ok(())
}

/// Under `sam local` a `!Ref` (or `!GetAtt`, `!If`) to a resource gives its logical id, so the
/// `--env-vars` file the local stack writes must set every such variable a function reads;
/// parameter references resolve to the parameter's default there and may stay.
#[test]
fn the_sam_local_env_file_sets_every_resource_reference() -> Result<()> {
    let t = template()?;
    let resources = t.document["Resources"].as_mapping().context("Resources")?;
    let is_resource = |text: &str| {
        let id = text.split('.').next().unwrap_or_default();
        resources.contains_key(id)
    };
    let names = |secrets: &[&str]| -> std::collections::BTreeMap<String, String> {
        secrets
            .iter()
            .map(|id| (id.to_string(), format!("arn:aws:secretsmanager:local:{id}")))
            .collect()
    };
    let endpoints = catalog_local::stack::Endpoints {
        dynamodb: "http://127.0.0.1:8000".into(),
        sqs: "http://127.0.0.1:5000".into(),
        listing_api: String::new(),
        storefront: None,
        storefront_instances: Vec::new(),
        revalidate_endpoints: Vec::new(),
        tables: catalog_local::stack::Tables::under("t-"),
        queues: catalog_local::stack::Queues::from_created(
            catalog_local::template::Template::load(&catalog_local::workspace_root())?
                .queues
                .iter()
                .map(|q| {
                    let id = &q.logical_id;
                    (
                        id.clone(),
                        format!("http://127.0.0.1:5000/000000000000/{id}"),
                    )
                })
                .collect(),
        )?,
        secrets: names(&["CursorSecret", "RevalidateSecret"]),
    };
    let file = catalog_local::dev::sam_env::render(&endpoints, &[])?;
    let set = file["Parameters"].as_object().context("Parameters")?;
    let mut missing = Vec::new();
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let own = &resource["Properties"]["Environment"]["Variables"];
        let globals = &t.document["Globals"]["Function"]["Environment"]["Variables"];
        for vars in [own, globals] {
            for (name, value) in vars.as_mapping().into_iter().flatten() {
                let mut refs = Vec::new();
                texts(value, &mut refs);
                let name = name.as_str().unwrap_or_default();
                let tagged = matches!(value, Value::Tagged(_));
                if tagged && refs.iter().any(|r| is_resource(r)) && !set.contains_key(name) {
                    missing.push(format!("{}.{name}", id.as_str().unwrap_or_default()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "sam-env.json does not set {missing:?}");
    // Endpoints reach the host from a container; nothing points at the container's own loopback.
    for (name, value) in set {
        let value = value.as_str().unwrap_or_default();
        assert!(!value.contains("127.0.0.1"), "{name} = {value}");
    }
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

/// One IAM statement as written: its role, actions, and resources as text (`!GetAtt X.Arn`
/// gives `X.Arn`, `!Sub` its pattern, `!If` both branches).
#[derive(Debug)]
struct Statement {
    role: String,
    actions: Vec<String>,
    resources: Vec<String>,
}

fn texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|v| texts(v, out)),
        Value::Tagged(t) => texts(&t.value, out),
        _ => {}
    }
}

/// Every statement of every role in the template.
fn statements(t: &Template) -> Vec<Statement> {
    let resources = t.document["Resources"].as_mapping().expect("resources");
    let mut out = Vec::new();
    for (id, resource) in resources {
        let policies = resource["Properties"]["Policies"].as_sequence();
        for policy in policies.into_iter().flatten() {
            let doc = &policy["PolicyDocument"]["Statement"];
            for statement in doc.as_sequence().into_iter().flatten() {
                let (mut actions, mut resources) = (Vec::new(), Vec::new());
                texts(&statement["Action"], &mut actions);
                texts(&statement["Resource"], &mut resources);
                out.push(Statement {
                    role: id.as_str().unwrap_or_default().to_owned(),
                    actions,
                    resources,
                });
            }
        }
    }
    out
}

/// The role a function runs as (`Role: !GetAtt XRole.Arn`).
fn role_of(t: &Template, function: &str) -> String {
    let mut role = Vec::new();
    texts(
        &t.document["Resources"][function]["Properties"]["Role"],
        &mut role,
    );
    role.concat().trim_end_matches(".Arn").to_owned()
}

#[test]
fn every_function_runs_as_its_own_role_with_no_managed_or_sam_policy() -> Result<()> {
    let t = template()?;
    let resources = t.document["Resources"].as_mapping().expect("resources");
    let mut roles = HashSet::new();
    for (id, resource) in resources {
        let id = id.as_str().unwrap_or_default();
        let props = &resource["Properties"];
        assert!(
            props.get("ManagedPolicyArns").is_none(),
            "{id} attaches managed policies"
        );
        if resource["Type"].as_str() == Some("AWS::Serverless::Function") {
            // `Policies` on a function makes SAM build the role, and its event sources then
            // attach AWS-managed policies on "*".
            assert!(props.get("Policies").is_none(), "{id} has SAM Policies");
            let role = role_of(&t, id);
            assert!(
                t.document["Resources"][role.as_str()]["Type"].as_str() == Some("AWS::IAM::Role"),
                "{id} runs as {role:?}, not a role of this template"
            );
            assert!(roles.insert(role), "{id} shares its role");
        }
    }
    assert_eq!(roles.len(), 4);
    Ok(())
}

/// The only wildcards left, and why: X-Ray's write actions take no resource, and a table's
/// streams are listed under `<table>/stream/*` (DynamoDB's own example policy).
fn allowed_wildcard(statement: &Statement, resource: &str) -> bool {
    let xray = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"];
    let only = |allowed: &[&str]| {
        statement
            .actions
            .iter()
            .all(|a| allowed.contains(&a.as_str()))
    };
    (resource == "*" && only(&xray))
        || (only(&["dynamodb:ListStreams"])
            && resource.starts_with("${")
            && resource.ends_with("Table.Arn}/stream/*"))
}

#[test]
fn no_policy_has_a_wildcard_action_or_resource() -> Result<()> {
    let t = template()?;
    let all = statements(&t);
    assert!(all.len() > 20, "the walk found the policies: {all:?}");
    for statement in &all {
        for action in &statement.actions {
            assert!(!action.contains('*'), "{}: action {action}", statement.role);
        }
        for resource in &statement.resources {
            assert!(
                !resource.contains('*') || allowed_wildcard(statement, resource),
                "{}: {:?} on {resource}",
                statement.role,
                statement.actions
            );
        }
    }
    Ok(())
}

/// Actions `role` may take on `resource` (as written in the template).
fn actions_on(all: &[Statement], role: &str, resource: &str) -> HashSet<String> {
    all.iter()
        .filter(|s| s.role == role && s.resources.iter().any(|r| r == resource))
        .flat_map(|s| s.actions.iter().cloned())
        .collect()
}

#[test]
fn each_trigger_is_readable_by_its_function_and_by_no_other() -> Result<()> {
    let t = template()?;
    let all = statements(&t);
    let consume: HashSet<String> = [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    ]
    .map(String::from)
    .into();
    let read_stream: HashSet<String> = [
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
    ]
    .map(String::from)
    .into();
    let triggers = [
        ("TagRevalidatorFunction", "TagQueue.Arn", &consume),
        ("ReconcilerFunction", "ReconcileQueue.Arn", &consume),
        (
            "SummaryProjectorFunction",
            "ProductsTable.StreamArn",
            &read_stream,
        ),
        (
            "SummaryProjectorFunction",
            "InventoryTable.StreamArn",
            &read_stream,
        ),
    ];
    for (function, resource, needed) in triggers {
        let role = role_of(&t, function);
        assert!(
            actions_on(&all, &role, resource).is_superset(needed),
            "{function} cannot consume {resource}"
        );
        for other in [
            "SummaryProjectorRole",
            "ReconcilerRole",
            "ListingApiRole",
            "TagRevalidatorRole",
        ] {
            if other != role {
                let granted = actions_on(&all, other, resource);
                assert!(
                    granted.is_disjoint(needed),
                    "{other} may consume {resource}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn the_listing_api_only_reads_summaries() -> Result<()> {
    let t = template()?;
    let actions: HashSet<String> = statements(&t)
        .into_iter()
        .filter(|s| s.role == "ListingApiRole")
        .flat_map(|s| s.actions)
        .collect();
    let allowed: HashSet<String> = [
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "secretsmanager:GetSecretValue",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    .map(String::from)
    .into();
    assert_eq!(actions, allowed);
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
        names.contains(name).then(|| deployed_value(name))
    });
    assert!(config.is_ok(), "{config:?}");
    // The secret comes from Secrets Manager, never from the template in plain text.
    assert!(names.contains("REVALIDATE_SECRET_ARN"));
    assert!(!names.contains("REVALIDATE_SECRET"));
    // Deployed calls go over https only: plain http is the local stack's alone.
    let function = &t.document["Resources"]["TagRevalidatorFunction"]["Properties"];
    let allow_http = &function["Environment"]["Variables"]["REVALIDATE_ALLOW_HTTP"];
    assert_eq!(allow_http.as_str(), Some(""), "never true when deployed");
    Ok(())
}

/// The tag table: the revalidator may only write it, nothing else of catalog-sync's touches it,
/// and the storefronts' managed policy allows exactly what packages/next-cache-handler calls.
#[test]
fn the_tag_table_is_written_by_the_revalidator_and_read_by_the_storefronts_only() -> Result<()> {
    let t = template()?;
    let all = statements(&t);
    let write: HashSet<String> = ["dynamodb:UpdateItem", "dynamodb:PutItem"]
        .map(String::from)
        .into();
    assert_eq!(
        actions_on(&all, "TagRevalidatorRole", "TagTable.Arn"),
        write
    );
    let dynamodb_resources: HashSet<String> = all
        .iter()
        .filter(|s| s.role == "TagRevalidatorRole")
        .filter(|s| s.actions.iter().any(|a| a.starts_with("dynamodb:")))
        .flat_map(|s| s.resources.iter().cloned())
        .collect();
    assert_eq!(
        dynamodb_resources,
        HashSet::from(["TagTable.Arn".to_owned()])
    );
    for role in ["SummaryProjectorRole", "ReconcilerRole", "ListingApiRole"] {
        assert!(actions_on(&all, role, "TagTable.Arn").is_empty(), "{role}");
    }
    let policy = &t.document["Resources"]["StorefrontTagTablePolicy"]["Properties"];
    let mut actions = Vec::new();
    let mut resources = Vec::new();
    for statement in policy["PolicyDocument"]["Statement"]
        .as_sequence()
        .into_iter()
        .flatten()
    {
        texts(&statement["Action"], &mut actions);
        texts(&statement["Resource"], &mut resources);
    }
    let mut expected: Vec<String> = write
        .into_iter()
        .chain(["dynamodb:Query".to_owned(), "dynamodb:GetItem".to_owned()])
        .collect();
    expected.sort();
    actions.sort();
    assert_eq!(actions, expected);
    assert_eq!(resources, ["TagTable.Arn"]);
    let names = env_names(&t, "TagRevalidatorFunction")?;
    assert!(names.contains("TAG_TABLE") && names.contains("TAG_TABLE_STOREFRONTS"));
    Ok(())
}

#[test]
fn the_tag_queues_suit_the_revalidator() -> Result<()> {
    let t = template()?;
    let sources = t.event_sources("TagRevalidatorFunction")?;
    let mut names: Vec<&str> = sources.queues.iter().map(|q| q.queue.as_str()).collect();
    names.sort();
    assert_eq!(names, ["TagQueue", "TagRetryQueue"]);
    assert!(sources.queues.iter().all(|q| q.report_item_failures));
    let timeout = t.document["Resources"]["TagRevalidatorFunction"]["Properties"]
        .get("Timeout")
        .or_else(|| t.document["Globals"]["Function"].get("Timeout"))
        .and_then(Value::as_i64)
        .context("a timeout")?;
    for name in names {
        let queue = t.queue(name)?;
        assert!(
            queue.visibility_timeout.unwrap_or(30) >= 6 * timeout,
            "{name}: visibility >= 6x timeout"
        );
        assert_eq!(
            queue.redrive.as_ref().map(|r| r.0.as_str()),
            Some("TagDeadLetterQueue")
        );
    }
    // Two calls of the longest timeout config allows, and the inline wait, fit the function's
    // timeout: a timed-out invocation would fail every target's messages.
    let longest = catalog::config::MAX_REVALIDATE_TIMEOUT_MS as i64;
    assert!(
        2 * longest + 1000 < timeout * 1000,
        "{longest} ms x 2 within {timeout} s"
    );
    let set = t.document["Resources"]["TagRevalidatorFunction"]["Properties"]["Environment"]
        ["Variables"]["REVALIDATE_TIMEOUT_MS"]
        .as_str()
        .context("REVALIDATE_TIMEOUT_MS")?;
    assert!(set.parse::<u64>()? <= catalog::config::MAX_REVALIDATE_TIMEOUT_MS);
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
    let api = &t.document["Resources"]["ListingHttpApi"]["Properties"];
    assert_eq!(api["Auth"]["EnableIamAuthorizer"].as_bool(), Some(true));
    assert!(
        api["Auth"].get("DefaultAuthorizer").is_none(),
        "listing routes must stay public"
    );
    // Each revalidateProduct evicts pages on every storefront instance: a leaked admin
    // credential in a loop must not be able to keep every cache empty.
    let revalidate = &api["RouteSettings"]["POST /admin/products/{productId}/revalidate"];
    let rate = revalidate["ThrottlingRateLimit"]
        .as_f64()
        .unwrap_or(f64::MAX);
    let burst = revalidate["ThrottlingBurstLimit"]
        .as_u64()
        .unwrap_or(u64::MAX);
    assert!(
        rate <= 10.0 && burst <= 20,
        "revalidateProduct throttle: {revalidate:?}"
    );
    Ok(())
}

#[test]
fn a_reconcile_run_is_capped_in_segments_and_in_concurrency() -> Result<()> {
    let t = template()?;
    let params = &t.document["Parameters"];
    let max_segments = params["ReconcileSegments"]["MaxValue"].as_u64();
    assert_eq!(max_segments, Some(u64::from(MAX_SEGMENTS)));
    let segments = &t.document["Resources"]["ReconcilerFunction"]["Properties"]["Events"]
        ["Segments"]["Properties"];
    let mut cap = Vec::new();
    texts(&segments["ScalingConfig"]["MaximumConcurrency"], &mut cap);
    assert_eq!(
        cap,
        ["ReconcileConcurrency"],
        "the segment trigger has no cap"
    );
    let concurrency = &params["ReconcileConcurrency"];
    // Lambda accepts 2 to 1000; more than 50 parallel Scans is a choice to make by hand.
    assert!(concurrency["MinValue"].as_u64() >= Some(2));
    assert!(concurrency["MaxValue"].as_u64() <= Some(50));
    let config = catalog::config::ReconcilerConfig::from_lookup(|name| match name {
        "RECONCILE_SEGMENTS" => Some((MAX_SEGMENTS + 1).to_string()),
        _ => Some(deployed_value(name)),
    });
    assert!(
        matches!(
            config,
            Err(catalog::config::ConfigError::Invalid {
                name: "RECONCILE_SEGMENTS",
                ..
            })
        ),
        "{} segments: {config:?}",
        MAX_SEGMENTS + 1
    );
    Ok(())
}

#[test]
fn every_catalog_sync_metric_the_template_reads_is_one_a_function_emits_for_this_service(
) -> Result<()> {
    // The per-function checks (tests/tests/integration/telemetry.rs) compare these with what each binary
    // emits; here, none may name a function or service they do not cover.
    let t = template()?;
    let service =
        &t.document["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"];
    assert_eq!(service.as_str(), Some(catalog::telemetry::DEFAULT_SERVICE));
    let read = catalog_tests::metric_refs::referenced(&t)?;
    assert!(
        read.len() >= 8,
        "the dashboard and alarms read only {read:?}"
    );
    let functions = [
        "summary-projector",
        "listing-api",
        "reconciler",
        "tag-revalidator",
    ];
    for metric in &read {
        let keys: Vec<&str> = metric.dimensions.keys().map(String::as_str).collect();
        assert_eq!(keys, ["function", "service"], "{metric:?}");
        assert_eq!(
            metric.dimensions["service"],
            catalog::telemetry::DEFAULT_SERVICE
        );
        assert!(
            functions.contains(&metric.dimensions["function"].as_str()),
            "{metric:?}"
        );
    }
    Ok(())
}

#[test]
fn every_function_logs_json_at_the_log_level_parameter_into_its_own_group() -> Result<()> {
    let t = template()?;
    assert!(t.document["Parameters"]["LogLevel"]["AllowedValues"]
        .as_sequence()
        .is_some_and(|v| v.iter().any(|l| l.as_str() == Some("DEBUG"))));
    for function in [
        "SummaryProjectorFunction",
        "ReconcilerFunction",
        "ListingApiFunction",
        "TagRevalidatorFunction",
    ] {
        let logging = &t.document["Resources"][function]["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"].as_str(), Some("JSON"), "{function}");
        let mut level = Vec::new();
        texts(&logging["ApplicationLogLevel"], &mut level);
        assert_eq!(level, ["LogLevel"], "{function}");
        assert!(logging.get("LogGroup").is_some(), "{function}");
    }
    Ok(())
}

#[test]
fn samconfig_gives_a_first_deploy_every_required_parameter_and_no_region() -> Result<()> {
    let t = template()?;
    let path = catalog_local::workspace_root().join("samconfig.toml");
    let config: toml::Table = std::fs::read_to_string(&path)?.parse()?;
    let deploy = &config["default"]["deploy"]["parameters"];
    let overrides: Vec<(String, String)> = deploy["parameter_overrides"]
        .as_array()
        .context("parameter_overrides is not a list")?
        .iter()
        .filter_map(|o| {
            o.as_str()?
                .split_once('=')
                .map(|(k, v)| (k.into(), v.into()))
        })
        .collect();
    let params = t.document["Parameters"]
        .as_mapping()
        .context("no Parameters")?;
    for (name, value) in &overrides {
        let param = &t.document["Parameters"][name.as_str()];
        assert!(
            !param.is_null(),
            "samconfig sets {name}, which the template does not have"
        );
        assert!(
            !value.is_empty(),
            "{name}= (empty) is refused by sam deploy"
        );
        if let Some(allowed) = param["AllowedValues"].as_sequence() {
            assert!(
                allowed.iter().any(|a| a.as_str() == Some(value)),
                "{name}={value}"
            );
        }
    }
    for (name, param) in params {
        let name = name.as_str().unwrap_or_default();
        if param.get("Default").is_none() {
            assert!(
                overrides.iter().any(|(k, _)| k == name),
                "a first deploy needs {name}"
            );
        }
    }
    assert!(deploy["capabilities"].as_str() == Some("CAPABILITY_IAM"));
    assert!(config["default"]["global"]["parameters"]
        .get("stack_name")
        .is_some());
    let text = std::fs::read_to_string(&path)?;
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("region")),
        "the region is the user's"
    );
    Ok(())
}

/// The parameter a `!Ref` names, or None for anything else.
fn ref_name(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tag) if tag.tag == "!Ref" => tag.value.as_str(),
        _ => None,
    }
}

/// A number, or a `!Ref` parameter's default.
fn number(t: &Template, value: &Value) -> Option<u64> {
    match ref_name(value) {
        Some(parameter) => t.document["Parameters"][parameter]["Default"].as_u64(),
        None => value.as_u64(),
    }
}

#[test]
fn public_reads_cannot_take_the_pipelines_concurrency() -> Result<()> {
    let t = template()?;
    let reserved = |function: &str| {
        let value =
            &t.document["Resources"][function]["Properties"]["ReservedConcurrentExecutions"];
        number(&t, value).with_context(|| format!("{function} reserves no concurrency"))
    };
    // listing-api's reservation caps it; the projector's and the revalidator's are their floors.
    let listing = reserved("ListingApiFunction")?;
    let projector = reserved("SummaryProjectorFunction")?;
    let revalidator = reserved("TagRevalidatorFunction")?;
    // Lambda throttles SQS pollers past the reservation: the revalidator's covers its triggers,
    // and a failing target's retries (TagRetryQueue) have fewer than the first revalidations.
    let pollers = |event: &str| {
        let value = &t.document["Resources"]["TagRevalidatorFunction"]["Properties"]["Events"]
            [event]["Properties"]["ScalingConfig"]["MaximumConcurrency"];
        number(&t, value).with_context(|| format!("{event} is uncapped"))
    };
    let (first, retries) = (pollers("Tags")?, pollers("Retries")?);
    assert_eq!(first + retries, revalidator);
    assert!(retries < first);
    // The listing checks share the projector's reservation with the streams: their pollers
    // are capped to a fifth of it, so a backlog of checks cannot hold back stream batches.
    let check_pollers = &t.document["Resources"]["SummaryProjectorFunction"]["Properties"]
        ["Events"]["ListingChecks"]["Properties"]["ScalingConfig"]["MaximumConcurrency"];
    let check_pollers = number(&t, check_pollers).context("listing checks are uncapped")?;
    let projector_floor = t.document["Parameters"]["ProjectorConcurrency"]["MinValue"].as_u64();
    assert!(projector_floor.is_some_and(|floor| check_pollers * 5 <= floor));
    // Lambda keeps 100 of an account's concurrency unreserved; the default quota is 1,000.
    assert!(listing + projector + revalidator + 100 <= 1000);

    // A batchGet reads up to 100 items, a listing one page: batchGet is throttled lower.
    let api = &t.document["Resources"]["ListingHttpApi"]["Properties"];
    let rate = |settings: &Value| settings["ThrottlingRateLimit"].as_u64();
    let batch_get = &api["RouteSettings"]["POST /products:batchGet"];
    assert!(
        rate(batch_get) < rate(&api["DefaultRouteSettings"]),
        "{batch_get:?}"
    );
    assert!(rate(batch_get).is_some());
    // Every request is logged where the stack keeps its logs.
    let logs = &api["AccessLogSettings"];
    let group = get_att_target(&logs["DestinationArn"]).context("access logs go nowhere")?;
    assert_eq!(
        t.document["Resources"][group.as_str()]["Type"].as_str(),
        Some("AWS::Logs::LogGroup")
    );
    assert!(logs["Format"]
        .as_str()
        .is_some_and(|f| f.contains("$context.routeKey")));
    Ok(())
}

/// The principal tag naming the storefront a role's instances belong to.
const STOREFRONT_TAG: &str = "${aws:PrincipalTag/catalog-storefront}";

/// IAM's `StringLike`: `*` matches any run of characters, `?` any one.
fn string_like(pattern: &str, text: &str) -> bool {
    match pattern.chars().next() {
        None => text.is_empty(),
        Some('*') => (0..=text.len())
            .filter(|i| text.is_char_boundary(*i))
            .any(|i| string_like(&pattern[1..], &text[i..])),
        Some(c) => {
            text.chars().next().is_some_and(|t| c == '?' || c == t) && {
                let (p, t) = (c.len_utf8(), text.chars().next().map_or(0, char::len_utf8));
                string_like(&pattern[p..], &text[t..])
            }
        }
    }
}

/// The `dynamodb:LeadingKeys` patterns of the storefronts' policy, and whether it refuses a
/// role without the storefront tag.
fn storefront_leading_keys() -> Result<(Vec<String>, bool)> {
    let t = template()?;
    let policy = &t.document["Resources"]["StorefrontTagTablePolicy"]["Properties"];
    let statements = policy["PolicyDocument"]["Statement"]
        .as_sequence()
        .context("statements")?;
    anyhow::ensure!(statements.len() == 1, "one statement: {statements:?}");
    let condition = &statements[0]["Condition"];
    let mut patterns = Vec::new();
    texts(
        &condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"],
        &mut patterns,
    );
    let tag_required =
        condition["Null"]["aws:PrincipalTag/catalog-storefront"].as_str() == Some("false");
    Ok((patterns, tag_required))
}

proptest::proptest! {
    /// A compromised storefront instance reaches its own storefront's counter and log and no
    /// other's: not "web-eu"'s from "web", whatever the names (before, the policy allowed the
    /// whole table).
    #[test]
    fn a_storefront_instance_reaches_only_its_own_tag_items(
        own in "[A-Za-z0-9_-]{1,12}",
        other in "[A-Za-z0-9_-]{1,12}",
        position in 0u64..10_000_000,
    ) {
        use catalog_core::tag_table::{log_pk, seq_pk};
        proptest::prop_assume!(own != other);
        let (patterns, tag_required) = storefront_leading_keys().unwrap();
        proptest::prop_assert!(tag_required, "a role without the tag must get nothing");
        let allowed = |key: &str| {
            patterns.iter().any(|p| string_like(&p.replace(STOREFRONT_TAG, &own), key))
        };
        for key in [seq_pk(&own), log_pk(&own, position)] {
            proptest::prop_assert!(allowed(&key), "{key} refused to {own}: {patterns:?}");
        }
        for key in [seq_pk(&other), log_pk(&other, position)] {
            proptest::prop_assert!(!allowed(&key), "{key} allowed to {own}: {patterns:?}");
        }
    }
}

#[test]
fn string_like_matches_as_iam_does() {
    assert!(string_like("log#web#*", "log#web#12"));
    assert!(!string_like("log#web#*", "log#web-eu#12"));
    assert!(string_like("seq#?eb", "seq#web"));
    assert!(!string_like("seq#web", "seq#web2"));
}
