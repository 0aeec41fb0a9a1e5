//! The catalog's records as they are stored: the two source tables and the summary.
//!
//! Field names on the wire are camelCase, as the Next.js storefront and the writers of the
//! source tables use them. Every type here is built by parsing, so a value that exists is valid.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{LocationId, ProductId, StoreId};

/// Largest price accepted: JavaScript's `Number.MAX_SAFE_INTEGER`, so a storefront reading the
/// JSON never rounds a price.
pub const MAX_MINOR_UNITS: u64 = (1 << 53) - 1;

/// A price in the currency's minor units (cents). Never fractional, never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct MinorUnits(u64);

/// A price that is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("price {0} is above {MAX_MINOR_UNITS} minor units")]
pub struct PriceTooLarge(pub u64);

impl MinorUnits {
    /// Parses a price in minor units.
    pub fn new(value: u64) -> Result<Self, PriceTooLarge> {
        if value > MAX_MINOR_UNITS {
            return Err(PriceTooLarge(value));
        }
        Ok(Self(value))
    }

    /// The price as a plain integer.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl TryFrom<u64> for MinorUnits {
    type Error = PriceTooLarge;
    fn try_from(value: u64) -> Result<Self, PriceTooLarge> {
        Self::new(value)
    }
}

impl From<MinorUnits> for u64 {
    fn from(price: MinorUnits) -> u64 {
        price.0
    }
}

/// A point in time, UTC, to the millisecond. Written as RFC 3339 with a `Z` and exactly three
/// decimals (`2026-11-27T05:00:00.000Z`), so that text order is time order: the `newest`
/// listing index sorts on it. Parsed from any RFC 3339 offset in years 0 to 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Timestamp(DateTime<Utc>);

/// Text that is not an RFC 3339 time in years 0 to 9999.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an RFC 3339 time (for example 2026-11-27T05:00:00Z)")]
pub struct InvalidTimestamp(pub String);

impl Timestamp {
    /// Parses RFC 3339, keeping milliseconds (finer digits are cut, not rounded).
    pub fn parse(text: &str) -> Result<Self, InvalidTimestamp> {
        let invalid = || InvalidTimestamp(text.to_owned());
        let time = DateTime::parse_from_rfc3339(text).map_err(|_| invalid())?;
        let utc = time.with_timezone(&Utc);
        let millis = utc.timestamp_millis();
        let utc = DateTime::from_timestamp_millis(millis).ok_or_else(invalid)?;
        if !(0..=9999).contains(&chrono::Datelike::year(&utc)) {
            return Err(invalid());
        }
        Ok(Self(utc))
    }

    /// The time `now`, cut to milliseconds.
    pub fn from_utc(now: DateTime<Utc>) -> Self {
        Self::parse(&now.to_rfc3339_opts(SecondsFormat::Millis, true))
            .expect("a current time is in range")
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl TryFrom<String> for Timestamp {
    type Error = InvalidTimestamp;
    fn try_from(value: String) -> Result<Self, InvalidTimestamp> {
        Self::parse(&value)
    }
}

impl From<Timestamp> for String {
    fn from(time: Timestamp) -> String {
        time.to_string()
    }
}

/// Where a product is in its life. Only `Active` products are sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductStatus {
    Draft,
    Active,
    Archived,
}

/// One picture of a product; the lowest `position` is shown first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub url: String,
    pub position: u32,
}

/// A row of the Products table (key `productId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub product_id: ProductId,
    pub store_id: StoreId,
    pub name: String,
    #[serde(default)]
    pub slug: String,
    pub price: MinorUnits,
    pub status: ProductStatus,
    /// Set when the product was soft-deleted (RFC 3339); a deleted product is never active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<String>,
    #[serde(default)]
    pub images: Vec<Image>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// When false the product is always purchasable and its stock rows are ignored.
    #[serde(default = "tracked_by_default")]
    pub track_inventory: bool,
    /// When the product was created, if its writer says (the `newest` order; see
    /// [`inherit_created_at`](crate::projection::inherit_created_at) for the fallback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// Incremented by every writer of the row.
    pub version: u64,
}

fn tracked_by_default() -> bool {
    true
}

/// A row of the Inventory table (key `productId` + `locationId`): stock at one location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryRow {
    pub product_id: ProductId,
    pub location_id: LocationId,
    /// Units physically at the location. May go negative after an oversell.
    pub on_hand: i64,
    /// Units promised to open orders.
    #[serde(default)]
    pub reserved: i64,
    /// Incremented by every writer of the row.
    pub version: u64,
}

/// What a product card shows: one denormalized row per product, derived only by
/// [`project`](crate::projection::project).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSummary {
    pub product_id: ProductId,
    pub store_id: StoreId,
    pub title: String,
    pub price: MinorUnits,
    /// `status == ACTIVE` and not soft-deleted.
    pub active: bool,
    /// Units that can be sold now, summed over locations; `None` when inventory is not tracked
    /// (the product is always purchasable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_available: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_image_url: Option<String>,
    /// The product's `createdAt`, else when its summary was first written: the `newest`
    /// order. `None` only straight out of [`project`](crate::projection::project), before
    /// [`inherit_created_at`](crate::projection::inherit_created_at) fills it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
}

impl ProductSummary {
    /// Whether the product can be bought now: untracked products always can.
    pub fn in_stock(&self) -> bool {
        self.inventory_available.is_none_or(|units| units > 0)
    }
}

/// A summary as it is stored, with the time its content last changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryRecord {
    #[serde(flatten)]
    pub summary: ProductSummary,
    /// RFC 3339, UTC, milliseconds: when the content last changed.
    pub updated_at: String,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn timestamps_are_normalized_to_utc_milliseconds() {
        let t = Timestamp::parse("2026-11-27T07:00:00.123456+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-27T05:00:00.123Z");
        for bad in ["", "yesterday", "2026-11-27", "2026-13-01T00:00:00Z"] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// Text order is time order, which the `newest` index relies on.
        #[test]
        fn text_order_is_time_order(a in 0i64..253_402_300_799_999, b in 0i64..253_402_300_799_999) {
            let at = |ms| Timestamp::from_utc(DateTime::from_timestamp_millis(ms).unwrap());
            let (ta, tb) = (at(a), at(b));
            prop_assert_eq!(ta.to_string().cmp(&tb.to_string()), a.cmp(&b));
            prop_assert_eq!(Timestamp::parse(&ta.to_string()), Ok(ta));
        }
    }
}
