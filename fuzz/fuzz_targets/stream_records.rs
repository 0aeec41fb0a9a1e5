//! The stream record decoder, fed any JSON as Lambda might deliver a DynamoDB stream batch:
//! every record is either grouped under its product or named undecodable with a reason, never
//! both, never lost, and never a panic.
#![no_main]

use aws_lambda_events::event::dynamodb::Event;
use catalog_core::stream;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<Event>(data) else {
        return;
    };
    let grouped = stream::group(&event.records);
    let grouped_records: usize = grouped.records_of.values().map(Vec::len).sum();
    assert_eq!(
        grouped_records + grouped.undecodable.len(),
        event.records.len()
    );
    assert_eq!(grouped.ids.len(), grouped.records_of.len());
    for (i, record) in event.records.iter().enumerate() {
        let undecodable = grouped.undecodable.iter().any(|(j, _)| *j == i);
        assert_eq!(stream::decode(record).is_err(), undecodable);
    }
    if let [a, b, ..] = event.records.as_slice() {
        let (a, b) = (
            a.change.sequence_number.clone().unwrap_or_default(),
            b.change.sequence_number.clone().unwrap_or_default(),
        );
        assert_eq!(
            stream::sequence_cmp(&a, &b),
            stream::sequence_cmp(&b, &a).reverse()
        );
    }
});
