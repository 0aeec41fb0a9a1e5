//! Opaque, tamper-proof page cursors: the index position of a page's last item, bound to the
//! store, sort and filters it came from, signed with HMAC-SHA256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use catalog_core::ids::ProductId;
use catalog_core::listing::{plan, Listing, ListingPosition};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Longest cursor accepted; real ones are far shorter.
const MAX_CURSOR_LEN: usize = 1024;
/// Shortest signing key accepted.
pub const MIN_KEY_LEN: usize = 16;

/// The signing key, read once at cold start.
#[derive(Clone)]
pub struct CursorKey(Vec<u8>);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(<redacted>)")
    }
}

/// A key shorter than [`MIN_KEY_LEN`] bytes.
#[derive(Debug, thiserror::Error)]
#[error("the cursor signing key must be at least {MIN_KEY_LEN} bytes")]
pub struct KeyTooShort;

/// Why a cursor was refused. Deliberately vague to the caller: all of them are a 400.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("cursor is malformed")]
    Malformed,
    #[error("cursor signature does not match")]
    BadSignature,
    #[error("cursor belongs to another store, sort or filter")]
    WrongQuery,
}

#[derive(Serialize, Deserialize)]
struct Body {
    /// Store.
    s: String,
    /// The sort and filters ([`Listing::fingerprint`]).
    q: String,
    /// The index sort key of the last item.
    k: String,
    /// productId of the last item.
    p: String,
}

impl CursorKey {
    /// A key from secret bytes.
    pub fn new(secret: &[u8]) -> Result<Self, KeyTooShort> {
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyTooShort);
        }
        Ok(Self(secret.to_vec()))
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(payload);
        mac
    }

    /// The cursor for the page of `listing` after `position`.
    pub fn sign(&self, listing: &Listing, position: &ListingPosition) -> String {
        let body = Body {
            s: listing.store().to_string(),
            q: listing.fingerprint(),
            k: position.sort_key.clone(),
            p: position.product_id.to_string(),
        };
        let payload = serde_json::to_vec(&body).expect("a cursor body always serializes");
        let tag = self.mac(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Checks a cursor's signature (in constant time) and that it belongs to `listing` (its
    /// store, sort and filters, and a position inside the listing's key range), and returns
    /// its position.
    pub fn open(&self, cursor: &str, listing: &Listing) -> Result<ListingPosition, CursorError> {
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(CursorError::Malformed);
        }
        let (payload, tag) = cursor.split_once('.').ok_or(CursorError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| CursorError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CursorError::Malformed)?;
        self.mac(&payload)
            .verify_slice(&tag)
            .map_err(|_| CursorError::BadSignature)?;
        let body: Body = serde_json::from_slice(&payload).map_err(|_| CursorError::Malformed)?;
        if body.s != listing.store().as_str() || body.q != listing.fingerprint() {
            return Err(CursorError::WrongQuery);
        }
        if !plan(listing).range.contains(&body.k) {
            return Err(CursorError::WrongQuery);
        }
        Ok(ListingPosition {
            product_id: ProductId::parse(body.p).map_err(|_| CursorError::Malformed)?,
            sort_key: body.k,
        })
    }
}

#[cfg(test)]
mod tests {
    use catalog_core::ids::StoreId;
    use catalog_core::listing::{Filters, Sort};
    use catalog_core::model::MinorUnits;

    use super::*;

    fn key() -> CursorKey {
        CursorKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn position() -> ListingPosition {
        ListingPosition {
            product_id: ProductId::parse("p1").unwrap(),
            sort_key: "A#shirt#p1".into(),
        }
    }

    fn listing(store: &str, sort: Sort, filters: Filters) -> Listing {
        Listing::new(StoreId::parse(store).unwrap(), sort, filters).unwrap()
    }

    fn titles(store: &str) -> Listing {
        listing(store, Sort::Title, Filters::default())
    }

    #[test]
    fn round_trips_for_its_own_listing() {
        let cursor = key().sign(&titles("s1"), &position());
        assert_eq!(key().open(&cursor, &titles("s1")), Ok(position()));
    }

    #[test]
    fn refuses_other_stores_sorts_filters_keys_and_edits() {
        let cursor = key().sign(&titles("s1"), &position());
        let price = Some(MinorUnits::new(100).unwrap());
        let others = [
            titles("s2"),
            listing(
                "s1",
                Sort::Title,
                Filters {
                    in_stock: true,
                    ..Filters::default()
                },
            ),
            listing(
                "s1",
                Sort::Title,
                Filters {
                    include_inactive: true,
                    ..Filters::default()
                },
            ),
            listing("s1", Sort::PriceAsc, Filters::default()),
            listing(
                "s1",
                Sort::PriceAsc,
                Filters {
                    min_price: price,
                    ..Filters::default()
                },
            ),
            listing("s1", Sort::Newest, Filters::default()),
        ];
        for other in &others {
            assert_eq!(
                key().open(&cursor, other),
                Err(CursorError::WrongQuery),
                "{other:?}"
            );
        }
        let other_key = CursorKey::new(b"another key, also long enough!!").unwrap();
        assert_eq!(
            other_key.open(&cursor, &titles("s1")),
            Err(CursorError::BadSignature)
        );

        // Re-sign nothing, but edit the payload to point at another store.
        let (payload, tag) = cursor.split_once('.').unwrap();
        let mut body = URL_SAFE_NO_PAD.decode(payload).unwrap();
        let at = body.iter().position(|b| *b == b'1').unwrap();
        body[at] = b'2';
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(body));
        assert_eq!(
            key().open(&forged, &titles("s2")),
            Err(CursorError::BadSignature)
        );

        for junk in ["", "abc", "a.b.c", "!!.??", &"x".repeat(5000)] {
            assert!(key().open(junk, &titles("s1")).is_err(), "{junk}");
        }
    }

    #[test]
    fn a_position_outside_the_listings_range_is_refused() {
        // Signed by us, but for a key the listing cannot reach (an inactive product's).
        let inactive = ListingPosition {
            sort_key: "I#shirt#p1".into(),
            ..position()
        };
        let cursor = key().sign(&titles("s1"), &inactive);
        assert_eq!(
            key().open(&cursor, &titles("s1")),
            Err(CursorError::WrongQuery)
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(CursorKey::new(b"short").is_err());
    }
}
