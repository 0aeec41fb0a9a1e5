//! Identifiers parsed at the edge, so the core never re-checks them.
//!
//! Every id becomes part of a cache tag (`store:{storeId}:products`), and Next.js caps a tag at
//! 256 characters, so ids are bounded well below that.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest id accepted, in bytes. The longest tag built from one is 128 + 16 bytes.
pub const MAX_ID_LEN: usize = 128;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} is {len} bytes long; the limit is {MAX_ID_LEN}")]
    TooLong { kind: &'static str, len: usize },
    #[error("{kind} contains whitespace or a control character")]
    BadCharacter { kind: &'static str },
}

fn check(kind: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            kind,
            len: value.len(),
        });
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(IdError::BadCharacter { kind });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an id: non-empty, at most [`MAX_ID_LEN`] bytes, no whitespace or control characters.
            pub fn parse(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check($kind, &value)?;
                Ok(Self(value))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// The key of a product, in Products, Inventory and Summaries.
    ProductId,
    "productId"
);
id_type!(
    /// The store a product belongs to; the partition key of the listing index.
    StoreId,
    "storeId"
);
id_type!(
    /// A stock location (warehouse, shop) of an inventory row.
    LocationId,
    "locationId"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        assert_eq!(ProductId::parse("p-1").unwrap().as_str(), "p-1");
        assert!(StoreId::parse("ünïcode-store").is_ok());
    }

    #[test]
    fn rejects_empty_long_and_spaced_ids() {
        assert_eq!(
            ProductId::parse(""),
            Err(IdError::Empty { kind: "productId" })
        );
        assert!(matches!(
            StoreId::parse("x".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong { .. })
        ));
        assert!(matches!(
            LocationId::parse("a b"),
            Err(IdError::BadCharacter { .. })
        ));
    }

    #[test]
    fn deserializing_checks_the_id() {
        assert!(serde_json::from_str::<ProductId>("\"\"").is_err());
        assert!(serde_json::from_str::<ProductId>("\"p1\"").is_ok());
    }
}
