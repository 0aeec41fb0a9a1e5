//! listing-api's edge, as API Gateway hands it a request: the router (path, method, query),
//! the batchGet body parser, and the cursor decoder, including cursors that carry a valid
//! signature over any payload (the decoder past the MAC is otherwise out of a fuzzer's reach).
#![no_main]

use arbitrary::Arbitrary;
use aws_lambda_events::http::Method;
use aws_lambda_events::query_map::QueryMap;
use libfuzzer_sys::fuzz_target;
use catalog_core::listing::plan;
use listing_api::cursor::CursorKey;
use listing_api::route::{self, Caller, Route, MAX_LIMIT};

const KEY: &[u8] = b"fuzzing-cursor-key-of-32-bytes!!";
/// The time cursors are opened at (signed payloads carry any expiry).
const NOW: i64 = 1_795_650_000;

#[derive(Debug, Arbitrary)]
struct Request<'a> {
    method: u8,
    path: &'a str,
    query: Vec<(&'a str, &'a str)>,
    admin: bool,
    body: &'a [u8],
    /// A cursor payload to sign with the real key.
    signed_payload: Option<&'a [u8]>,
}

fuzz_target!(|r: Request| {
    let methods = [
        Method::GET,
        Method::POST,
        Method::DELETE,
        Method::PUT,
        Method::OPTIONS,
    ];
    let method = &methods[usize::from(r.method) % methods.len()];
    let mut pairs: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (k, v) in &r.query {
        pairs.entry(k.to_string()).or_default().push(v.to_string());
    }
    let caller = if r.admin {
        Caller::Admin
    } else {
        Caller::Shopper
    };
    let routed = route::route(method, r.path, &QueryMap::from(pairs), caller);
    if let Ok(Route::List {
        listing,
        limit,
        cursor,
        admin,
    }) = routed
    {
        assert!((1..=MAX_LIMIT).contains(&limit));
        // Only the admin route's answers are private; a shopper never reaches it.
        assert!(!admin || caller == Caller::Admin, "a shopper reached the admin listing");
        assert!(
            caller == Caller::Admin || !listing.filters().include_inactive,
            "a shopper listed inactive items"
        );
        let key = CursorKey::new(KEY).unwrap();
        let cursors = cursor.into_iter().chain(r.signed_payload.map(|p| key.seal(p)));
        for cursor in cursors {
            if let Ok(position) = key.open(&cursor, &listing, NOW) {
                assert!(plan(&listing).range.contains(&position.sort_key));
                // What opens is what the key would sign for this listing.
                let again = key.sign(&listing, &position, NOW);
                assert_eq!(key.open(&again, &listing, NOW).unwrap(), position);
            }
        }
    }
    if let Ok(ids) = route::batch_ids(r.body) {
        assert!((1..=route::MAX_BATCH_IDS).contains(&ids.len()));
    }
});
