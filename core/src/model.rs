//! The catalog's records as they are stored: the two source tables and the summary.
//!
//! Field names on the wire are camelCase, as the Next.js storefront and the writers of the
//! source tables use them. Every type here is built by parsing, so a value that exists is valid.

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
