//! Parsing a request into one of the three routes, or a 4xx saying what is wrong.

use aws_lambda_events::http::Method;
use aws_lambda_events::query_map::QueryMap;
use catalog_core::http_path;
use catalog_core::ids::{ProductId, StoreId};
use catalog_core::listing::{Filters, Listing, Sort};
use catalog_core::model::MinorUnits;

use crate::reply::ApiError;

/// Items per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 24;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 100;
/// Most ids in one batchGet.
pub const MAX_BATCH_IDS: usize = 100;
/// Largest batchGet body, in bytes: 100 ids of 128 bytes with room to spare.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// Who is calling, as API Gateway vouches for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Anyone on the internet: sees products on sale only.
    Shopper,
    /// A SigV4-signed caller that the `AWS_IAM` authorizer let through (admin routes only).
    Admin,
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /stores/{storeId}/products?limit=&cursor=&sort=&inStock=&minPrice=&maxPrice=`, or
    /// for an admin `GET /admin/stores/{storeId}/products?...&includeInactive=`.
    List {
        listing: Listing,
        limit: usize,
        cursor: Option<String>,
        /// The admin route: its answers may show drafts, so no cache keeps them.
        admin: bool,
    },
    /// `GET /products/{productId}`
    Get(ProductId),
    /// `POST /products:batchGet`
    BatchGet,
}

/// Decodes one path segment (the same decoder as the admin route's).
fn percent_decode(segment: &str) -> Result<String, ApiError> {
    http_path::percent_decode(segment)
        .map_err(|e| ApiError::bad_request("invalid_path", e.to_string()))
}

fn parse_bool(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(_) => Err(ApiError::bad_request(
            "invalid_parameter",
            format!("{name} must be true or false"),
        )),
    }
}

fn parse_limit(value: Option<&str>) -> Result<usize, ApiError> {
    let Some(value) = value else {
        return Ok(DEFAULT_LIMIT);
    };
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
        )),
    }
}

fn method_is(method: &Method, route: Route, expected: Method) -> Result<Route, ApiError> {
    if *method == expected {
        Ok(route)
    } else {
        Err(ApiError {
            status: 405,
            code: "method_not_allowed",
            message: format!("use {expected} for this route"),
        })
    }
}

fn parse_sort(value: Option<&str>) -> Result<Sort, ApiError> {
    value.map_or(Ok(Sort::Title), |v| {
        v.parse().map_err(|e: catalog_core::listing::UnknownSort| {
            ApiError::bad_request("invalid_sort", e.to_string())
        })
    })
}

fn parse_price(name: &str, value: Option<&str>) -> Result<Option<MinorUnits>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::bad_request(
            "invalid_price",
            format!("{name} must be a whole number of minor units (cents), 0 or more"),
        )
    };
    let units: u64 = value.parse().map_err(|_| invalid())?;
    MinorUnits::new(units).map(Some).map_err(|_| invalid())
}

/// The sort and filters of a listing request, checked against what an index can answer.
fn parse_listing(
    store: StoreId,
    query: &QueryMap,
    include_inactive: bool,
) -> Result<Listing, ApiError> {
    let filters = Filters {
        in_stock: parse_bool("inStock", query.first("inStock"))?,
        min_price: parse_price("minPrice", query.first("minPrice"))?,
        max_price: parse_price("maxPrice", query.first("maxPrice"))?,
        include_inactive,
    };
    Listing::new(store, parse_sort(query.first("sort"))?, filters)
        .map_err(|e| ApiError::bad_request(e.code(), e.to_string()))
}

fn list(store: &str, query: &QueryMap, admin: bool) -> Result<Route, ApiError> {
    let include_inactive = admin && parse_bool("includeInactive", query.first("includeInactive"))?;
    let store = StoreId::parse(percent_decode(store)?)
        .map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
    Ok(Route::List {
        listing: parse_listing(store, query, include_inactive)?,
        limit: parse_limit(query.first("limit"))?,
        cursor: query
            .first("cursor")
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        admin,
    })
}

fn admin_only(message: &str) -> ApiError {
    ApiError {
        status: 403,
        code: "admin_only",
        message: message.to_owned(),
    }
}

/// Routes `method` and `path` (without the stage prefix) for `caller`. Unpublished products
/// are an admin's business: `includeInactive` is refused on the public listing and the admin
/// listing refuses a caller API Gateway did not authorize.
pub fn route(
    method: &Method,
    path: &str,
    query: &QueryMap,
    caller: Caller,
) -> Result<Route, ApiError> {
    let include_inactive = || parse_bool("includeInactive", query.first("includeInactive"));
    match http_path::segments(path).as_slice() {
        ["stores", store, "products"] => {
            if include_inactive()? {
                return Err(admin_only(
                    "includeInactive is for GET /admin/stores/{storeId}/products (IAM-authorized)",
                ));
            }
            method_is(method, list(store, query, false)?, Method::GET)
        }
        ["admin", "stores", store, "products"] => {
            if caller != Caller::Admin {
                return Err(admin_only(
                    "this route needs an IAM-authorized (SigV4) caller",
                ));
            }
            method_is(method, list(store, query, true)?, Method::GET)
        }
        ["products:batchGet"] => method_is(method, Route::BatchGet, Method::POST),
        ["products", id] => {
            let id = ProductId::parse(percent_decode(id)?)
                .map_err(|e| ApiError::bad_request("invalid_id", e.to_string()))?;
            method_is(method, Route::Get(id), Method::GET)
        }
        _ => Err(ApiError::not_found(format!("no route for {method} {path}"))),
    }
}

/// Parses a batchGet body: `{"productIds": [...]}` with 1 to 100 valid ids. Duplicates are
/// kept in the returned order for the response, and read once.
pub fn batch_ids(body: &[u8]) -> Result<Vec<ProductId>, ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError {
            status: 413,
            code: "body_too_large",
            message: format!("the body is over {MAX_BODY_BYTES} bytes"),
        });
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| ApiError::bad_request("invalid_json", "the body is not valid JSON"))?;
    let ids = value
        .get("productIds")
        .and_then(|v| v.as_array())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_body",
                "the body must be {\"productIds\": [\"...\"]}",
            )
        })?;
    if ids.is_empty() || ids.len() > MAX_BATCH_IDS {
        return Err(ApiError::bad_request(
            "too_many_ids",
            format!("productIds must hold 1 to {MAX_BATCH_IDS} ids"),
        ));
    }
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            let text = id.as_str().ok_or_else(|| {
                ApiError::bad_request("invalid_id", format!("productIds[{i}] is not a string"))
            })?;
            ProductId::parse(text)
                .map_err(|e| ApiError::bad_request("invalid_id", format!("productIds[{i}]: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> QueryMap {
        let map: std::collections::HashMap<String, Vec<String>> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect();
        QueryMap::from(map)
    }

    #[test]
    fn routes_the_three_paths() {
        let q = query(&[]);
        assert!(matches!(
            route(&Method::GET, "/stores/s%201x/products", &q, Caller::Shopper),
            Err(ApiError {
                code: "invalid_id",
                ..
            })
        ));
        assert_eq!(
            route(&Method::GET, "/stores/s1/products", &q, Caller::Shopper).unwrap(),
            Route::List {
                listing: Listing::by_title(StoreId::parse("s1").unwrap()),
                limit: DEFAULT_LIMIT,
                cursor: None,
                admin: false,
            }
        );
        assert_eq!(
            route(&Method::GET, "/products/p%2D1", &q, Caller::Shopper).unwrap(),
            Route::Get(ProductId::parse("p-1").unwrap())
        );
        assert_eq!(
            route(&Method::POST, "/products:batchGet", &q, Caller::Shopper).unwrap(),
            Route::BatchGet
        );
        assert_eq!(
            route(&Method::GET, "/nope", &q, Caller::Shopper)
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            route(&Method::DELETE, "/products/p1", &q, Caller::Shopper)
                .unwrap_err()
                .status,
            405
        );
    }

    #[test]
    fn limit_and_flags_are_checked() {
        for bad in ["0", "101", "-1", "ten", "1.5"] {
            let err = route(
                &Method::GET,
                "/stores/s1/products",
                &query(&[("limit", bad)]),
                Caller::Shopper,
            )
            .unwrap_err();
            assert_eq!(err.code, "invalid_limit", "{bad}");
        }
        let err = route(
            &Method::GET,
            "/stores/s1/products",
            &query(&[("includeInactive", "yes")]),
            Caller::Shopper,
        )
        .unwrap_err();
        assert_eq!(err.status, 400);
        // Only the listings read the flag.
        let junk = query(&[("includeInactive", "maybe")]);
        assert!(route(&Method::GET, "/products/p1", &junk, Caller::Shopper).is_ok());
    }

    #[test]
    fn unpublished_products_are_listed_for_admins_only() {
        let all = query(&[("includeInactive", "true")]);
        let public = route(&Method::GET, "/stores/s1/products", &all, Caller::Shopper);
        assert_eq!(public.unwrap_err().code, "admin_only");
        let path = "/admin/stores/s1/products";
        let shopper = route(&Method::GET, path, &all, Caller::Shopper);
        assert_eq!(shopper.unwrap_err().status, 403);
        assert!(matches!(
            route(&Method::GET, path, &all, Caller::Admin),
            Ok(Route::List { listing, .. }) if listing.filters().include_inactive
        ));
    }

    #[test]
    fn sorts_and_filters_are_parsed_and_bad_combinations_refused() {
        let list = |pairs: &[(&str, &str)]| {
            route(
                &Method::GET,
                "/stores/s1/products",
                &query(pairs),
                Caller::Shopper,
            )
        };
        let Ok(Route::List { listing, .. }) = list(&[
            ("sort", "price_desc"),
            ("inStock", "true"),
            ("minPrice", "100"),
            ("maxPrice", "2500"),
        ]) else {
            panic!("a price listing with filters is accepted");
        };
        assert_eq!(listing.sort(), Sort::PriceDesc);
        assert!(listing.filters().in_stock);
        assert_eq!(
            listing.filters().max_price,
            Some(MinorUnits::new(2500).unwrap())
        );
        for (pairs, code) in [
            (&[("sort", "cheapest")][..], "invalid_sort"),
            (
                &[("sort", "price_asc"), ("minPrice", "-1")],
                "invalid_price",
            ),
            (
                &[("sort", "price_asc"), ("maxPrice", "1e3")],
                "invalid_price",
            ),
            (
                &[("sort", "price_asc"), ("maxPrice", "9007199254740992")],
                "invalid_price",
            ),
            (&[("minPrice", "100")], "price_filter_needs_price_sort"),
            (
                &[("sort", "newest"), ("maxPrice", "100")],
                "price_filter_needs_price_sort",
            ),
            (
                &[("sort", "price_asc"), ("minPrice", "5"), ("maxPrice", "4")],
                "invalid_price_range",
            ),
            (&[("inStock", "yes")], "invalid_parameter"),
        ] {
            let err = list(pairs).unwrap_err();
            assert_eq!((err.status, err.code), (400, code), "{pairs:?}");
        }
        let admin = query(&[("includeInactive", "true"), ("sort", "newest")]);
        let err = route(
            &Method::GET,
            "/admin/stores/s1/products",
            &admin,
            Caller::Admin,
        );
        assert_eq!(err.unwrap_err().code, "unsupported_combination");
    }

    #[test]
    fn batch_bodies_are_checked() {
        assert_eq!(batch_ids(br#"{"productIds":["a","b"]}"#).unwrap().len(), 2);
        for (body, code) in [
            (&b"{"[..], "invalid_json"),
            (br#"{"ids":[]}"#, "invalid_body"),
            (br#"{"productIds":[]}"#, "too_many_ids"),
            (br#"{"productIds":[1]}"#, "invalid_id"),
            (br#"{"productIds":[""]}"#, "invalid_id"),
        ] {
            assert_eq!(batch_ids(body).unwrap_err().code, code);
        }
        let many = format!(
            "{{\"productIds\":[{}]}}",
            (0..101)
                .map(|i| format!("\"p{i}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(batch_ids(many.as_bytes()).unwrap_err().code, "too_many_ids");
        assert_eq!(
            batch_ids(&vec![b' '; MAX_BODY_BYTES + 1])
                .unwrap_err()
                .status,
            413
        );
    }
}
