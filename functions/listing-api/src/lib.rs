//! listing-api: listings, single products and cart batches served from the Summaries table
//! only. A listing page is one Query of the `byStore` index, never a read per product.
//!
//! [`route`], [`cursor`] and [`reply`] are the request's edge, pure; [`ListingApi`] (the
//! `aws` feature, on by default) reads DynamoDB. fuzz/ builds the edge alone.

#[cfg(feature = "aws")]
mod api;
pub mod cursor;
pub mod reply;
pub mod route;

#[cfg(feature = "aws")]
pub use api::ListingApi;
