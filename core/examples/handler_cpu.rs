//! The CPU a summary-projector batch costs outside I/O: decode Lambda's event JSON (as the
//! runtime does), group the records by product, decode the current rows, project, and diff
//! the tags. Built with two profiles, it measures what `opt-level = "s"` costs against `3`.
//!
//! ```text
//! cargo build --release --example handler_cpu -p catalog-core
//! cargo build --profile release-o3 --example handler_cpu -p catalog-core
//! target/release/examples/handler_cpu --against target/release-o3/examples/handler_cpu
//! ```

use std::process::Command;
use std::time::Instant;

use aws_lambda_events::event::dynamodb::Event;
use catalog_core::model::{InventoryRow, Product};
use catalog_core::projection::project;
use catalog_core::stream::group;
use catalog_core::tags::{tags, StockTagPolicy};
use serde_json::{json, Value};

/// A batch of 100 MODIFY records, half Products and half Inventory, over 25 products.
fn batch() -> String {
    let records: Vec<Value> = (0..100)
        .map(|i| {
            let id = format!("p-{:05}", i % 25);
            let image = if i % 2 == 0 {
                json!({
                    "productId": {"S": id}, "storeId": {"S": "store-1"}, "name": {"S": format!("Linen Tote {i}")},
                    "slug": {"S": format!("linen-tote-{i}")}, "price": {"N": format!("{}", 1999 + i)},
                    "status": {"S": "ACTIVE"}, "version": {"N": format!("{i}")}, "trackInventory": {"BOOL": true},
                    "images": {"L": [{"M": {"url": {"S": format!("https://img.example/{id}/1.webp")}, "position": {"N": "1"}}},
                                     {"M": {"url": {"S": format!("https://img.example/{id}/0.webp")}, "position": {"N": "0"}}}]}
                })
            } else {
                json!({
                    "productId": {"S": id}, "locationId": {"S": format!("loc-{}", i % 3)},
                    "onHand": {"N": format!("{}", i % 40)}, "reserved": {"N": "1"}, "version": {"N": format!("{i}")}
                })
            };
            let keys = if i % 2 == 0 {
                json!({"productId": image["productId"]})
            } else {
                json!({"productId": image["productId"], "locationId": image["locationId"]})
            };
            json!({
                "eventID": format!("{i}"), "eventName": "MODIFY", "eventVersion": "1.1",
                "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
                "dynamodb": {"ApproximateCreationDateTime": 1795660000, "Keys": keys, "NewImage": image, "OldImage": image,
                             "SequenceNumber": format!("{:021}", i + 1), "SizeBytes": 400, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Products/stream/x"
            })
        })
        .collect();
    json!({ "Records": records }).to_string()
}

/// One batch's CPU work; returns something derived so nothing is optimized away.
fn work(text: &str) -> usize {
    let event: Event = serde_json::from_str(text).expect("a valid event");
    let grouped = group(&event.records);
    let mut products = std::collections::HashMap::new();
    let mut rows: std::collections::HashMap<String, Vec<InventoryRow>> = Default::default();
    for record in &event.records {
        let image = record.change.new_image.clone();
        if record.change.keys.contains_key("locationId") {
            let row: InventoryRow = serde_dynamo::from_item(image).expect("a stock row");
            rows.entry(row.product_id.to_string())
                .or_default()
                .push(row);
        } else {
            let product: Product = serde_dynamo::from_item(image).expect("a product");
            products.insert(product.product_id.to_string(), product);
        }
    }
    let mut count = 0;
    for id in &grouped.ids {
        let stock = rows.get(id.as_str()).map(Vec::as_slice).unwrap_or_default();
        let new = project(products.get(id.as_str()), stock);
        let old = project(products.get(id.as_str()), &stock[..stock.len() / 2]);
        count += tags(old.as_ref(), new.as_ref(), StockTagPolicy::Eager).len();
    }
    count
}

/// Microseconds per batch, the median of `rounds` timings of `per_round` batches.
fn measure(rounds: usize, per_round: usize) -> f64 {
    let text = batch();
    let mut sink = 0;
    for _ in 0..per_round {
        sink += work(&text);
    }
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_round {
                sink += work(&text);
            }
            start.elapsed().as_secs_f64() * 1e6 / per_round as f64
        })
        .collect();
    assert!(sink > 0);
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let against = args
        .iter()
        .position(|a| a == "--against")
        .and_then(|i| args.get(i + 1).cloned());
    let Some(other) = against else {
        // One measurement, printed alone (what --against reads from the other binary).
        println!("{:.2}", measure(15, 200));
        return;
    };
    let me = std::env::current_exe().expect("own path");
    let run = |binary: &std::path::Path| -> f64 {
        let out = Command::new(binary).output().expect("running a build");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a figure")
    };
    // Alternate the two builds, five times each, and keep each one's best.
    let (mut this, mut that) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        this = this.min(run(&me));
        that = that.min(run(std::path::Path::new(&other)));
    }
    println!("handler CPU benchmark: decode + group + decode rows + project + tag diff of a 100-record stream batch, best of 5 alternating runs each");
    println!("  {:<50} {this:>8.1} us per batch", me.display());
    println!("  {:<50} {that:>8.1} us per batch", other);
    println!("  ratio (first / second): {:.2}", this / that);
}
