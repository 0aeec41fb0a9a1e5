//! Which index and key range answer a listing: the sort and filters a request may ask for,
//! checked once ([`Listing::new`]), and the one Query that serves them ([`plan`]).

use std::fmt;
use std::str::FromStr;

use super::PRICE_DIGITS;
use crate::ids::StoreId;
use crate::model::{MinorUnits, MAX_MINOR_UNITS};

/// The listing orders a storefront offers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Sort {
    /// A to Z by case-folded title, ties by product id.
    #[default]
    Title,
    /// Cheapest first, ties by product id.
    PriceAsc,
    /// Dearest first, ties by product id descending.
    PriceDesc,
    /// Latest `createdAt` first, ties by product id descending.
    Newest,
}

impl Sort {
    /// Every sort, in the order a storefront's menu lists them.
    pub const ALL: [Sort; 4] = [Sort::Title, Sort::PriceAsc, Sort::PriceDesc, Sort::Newest];

    /// The name the API's `sort` parameter takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Title => "title",
            Sort::PriceAsc => "price_asc",
            Sort::PriceDesc => "price_desc",
            Sort::Newest => "newest",
        }
    }

    fn by_price(self) -> bool {
        matches!(self, Sort::PriceAsc | Sort::PriceDesc)
    }
}

impl fmt::Display for Sort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `sort` value the API does not offer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sort {0:?}: expected title, price_asc, price_desc or newest")]
pub struct UnknownSort(pub String);

impl FromStr for Sort {
    type Err = UnknownSort;
    fn from_str(s: &str) -> Result<Self, UnknownSort> {
        Sort::ALL
            .into_iter()
            .find(|sort| sort.as_str() == s)
            .ok_or_else(|| UnknownSort(s.to_owned()))
    }
}

/// A combination of sort and filters that no index answers with key conditions alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidListing {
    #[error("minPrice and maxPrice need sort=price_asc or sort=price_desc")]
    PriceFilterNeedsPriceSort,
    #[error("minPrice is above maxPrice")]
    EmptyPriceRange,
    #[error("includeInactive lists by title only, with no inStock or price filter")]
    InactiveOnlyByTitle,
}

impl InvalidListing {
    /// The API's error code for it.
    pub fn code(&self) -> &'static str {
        match self {
            Self::PriceFilterNeedsPriceSort => "price_filter_needs_price_sort",
            Self::EmptyPriceRange => "invalid_price_range",
            Self::InactiveOnlyByTitle => "unsupported_combination",
        }
    }
}

/// A listing's filters, as asked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Filters {
    /// Only products that can be bought now (`inventoryAvailable > 0`, or untracked).
    pub in_stock: bool,
    pub min_price: Option<MinorUnits>,
    pub max_price: Option<MinorUnits>,
    /// Admin only: inactive products too, after the active ones.
    pub include_inactive: bool,
}

/// A listing an index can answer: built only by [`Listing::new`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listing {
    store: StoreId,
    sort: Sort,
    filters: Filters,
}

impl Listing {
    /// Checks that some index answers `sort` with `filters` by key conditions alone.
    pub fn new(store: StoreId, sort: Sort, filters: Filters) -> Result<Self, InvalidListing> {
        let priced = filters.min_price.is_some() || filters.max_price.is_some();
        if priced && !sort.by_price() {
            return Err(InvalidListing::PriceFilterNeedsPriceSort);
        }
        if let (Some(min), Some(max)) = (filters.min_price, filters.max_price) {
            if min > max {
                return Err(InvalidListing::EmptyPriceRange);
            }
        }
        if filters.include_inactive && (sort != Sort::Title || filters.in_stock || priced) {
            return Err(InvalidListing::InactiveOnlyByTitle);
        }
        Ok(Self {
            store,
            sort,
            filters,
        })
    }

    /// A store's default listing: active products, A to Z.
    pub fn by_title(store: StoreId) -> Self {
        Self {
            store,
            sort: Sort::Title,
            filters: Filters::default(),
        }
    }

    pub fn store(&self) -> &StoreId {
        &self.store
    }

    pub fn sort(&self) -> Sort {
        self.sort
    }

    pub fn filters(&self) -> &Filters {
        &self.filters
    }

    /// The sort and filters as one canonical string (not the store): what a cursor is bound
    /// to, so a cursor from one listing is refused by another.
    pub fn fingerprint(&self) -> String {
        let price = |p: Option<MinorUnits>| p.map(|p| p.get().to_string()).unwrap_or_default();
        let f = &self.filters;
        format!(
            "{};s{};{}-{};i{}",
            self.sort,
            u8::from(f.in_stock),
            price(f.min_price),
            price(f.max_price),
            u8::from(f.include_inactive)
        )
    }
}

/// The sort key values a listing may read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyRange {
    /// The whole partition.
    All,
    /// `begins_with(sk, prefix)`.
    Prefix(String),
    /// `sk BETWEEN low AND high`, both inclusive.
    Between(String, String),
}

impl KeyRange {
    /// Whether `key` lies in the range: a cursor's position must.
    pub fn contains(&self, key: &str) -> bool {
        match self {
            KeyRange::All => true,
            KeyRange::Prefix(prefix) => key.starts_with(prefix.as_str()),
            KeyRange::Between(low, high) => low.as_str() <= key && key <= high.as_str(),
        }
    }
}

/// One Query: the index, its key attributes, the sort key range and the direction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexQuery {
    pub index: &'static str,
    /// Equal to the store id.
    pub partition_attr: &'static str,
    pub sort_attr: &'static str,
    pub range: KeyRange,
    /// `ScanIndexForward`.
    pub forward: bool,
}

/// The indexes of the Summaries table, as template.yaml names them.
pub mod index {
    pub const BY_STORE: &str = "byStore";
    pub const BY_STORE_PRICE: &str = "byStorePrice";
    pub const BY_STORE_NEWEST: &str = "byStoreNewest";
    pub const IN_STOCK_BY_TITLE: &str = "inStockByTitle";
    pub const IN_STOCK_BY_PRICE: &str = "inStockByPrice";
    pub const IN_STOCK_BY_NEWEST: &str = "inStockByNewest";
}

/// The one Query that answers `listing`.
pub fn plan(listing: &Listing) -> IndexQuery {
    let f = &listing.filters;
    let (all, in_stock) = match listing.sort {
        Sort::Title => (index::BY_STORE, index::IN_STOCK_BY_TITLE),
        Sort::PriceAsc | Sort::PriceDesc => (index::BY_STORE_PRICE, index::IN_STOCK_BY_PRICE),
        Sort::Newest => (index::BY_STORE_NEWEST, index::IN_STOCK_BY_NEWEST),
    };
    let (sort_attr, range) = match listing.sort {
        // Only byStore holds inactive products (under "I#"); the in-stock index has none.
        Sort::Title if f.include_inactive || f.in_stock => ("listSk", KeyRange::All),
        Sort::Title => ("listSk", KeyRange::Prefix("A#".into())),
        Sort::PriceAsc | Sort::PriceDesc => ("priceSk", price_range(f)),
        Sort::Newest => ("newSk", KeyRange::All),
    };
    IndexQuery {
        index: if f.in_stock { in_stock } else { all },
        partition_attr: if f.in_stock {
            "inStockStoreId"
        } else {
            "storeId"
        },
        sort_attr,
        range,
        forward: matches!(listing.sort, Sort::Title | Sort::PriceAsc),
    }
}

/// `priceSk` from `<min>#` to `<max>$`: `$` sorts just after `#`, so every product at the
/// top price is inside and no other key is.
fn price_range(filters: &Filters) -> KeyRange {
    if filters.min_price.is_none() && filters.max_price.is_none() {
        return KeyRange::All;
    }
    let min = filters.min_price.map_or(0, MinorUnits::get);
    let max = filters.max_price.map_or(MAX_MINOR_UNITS, MinorUnits::get);
    KeyRange::Between(
        format!("{min:0PRICE_DIGITS$}#"),
        format!("{max:0PRICE_DIGITS$}$"),
    )
}
