//! Opaque, tamper-proof page cursors: the listing-index position of a page's last item, bound
//! to the store and the query it came from, signed with HMAC-SHA256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use catalog_core::ids::{ProductId, StoreId};
use catalog_core::listing::ListingPosition;
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
    #[error("cursor belongs to another store or query")]
    WrongQuery,
}

#[derive(Serialize, Deserialize)]
struct Body {
    /// Store.
    s: String,
    /// includeInactive.
    i: bool,
    /// listSk of the last item.
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

    /// The cursor for the page after `position` in this store and query.
    pub fn sign(
        &self,
        store: &StoreId,
        include_inactive: bool,
        position: &ListingPosition,
    ) -> String {
        let body = Body {
            s: store.to_string(),
            i: include_inactive,
            k: position.list_sk.clone(),
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

    /// Checks a cursor's signature (in constant time) and that it belongs to this store and
    /// query, and returns its position.
    pub fn open(
        &self,
        cursor: &str,
        store: &StoreId,
        include_inactive: bool,
    ) -> Result<ListingPosition, CursorError> {
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
        if body.s != store.as_str() || body.i != include_inactive {
            return Err(CursorError::WrongQuery);
        }
        if !include_inactive && !body.k.starts_with("A#") {
            return Err(CursorError::WrongQuery);
        }
        Ok(ListingPosition {
            product_id: ProductId::parse(body.p).map_err(|_| CursorError::Malformed)?,
            list_sk: body.k,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn position() -> ListingPosition {
        ListingPosition {
            product_id: ProductId::parse("p1").unwrap(),
            list_sk: "A#shirt#p1".into(),
        }
    }

    #[test]
    fn round_trips_for_its_own_store_and_query() {
        let store = StoreId::parse("s1").unwrap();
        let cursor = key().sign(&store, false, &position());
        assert_eq!(key().open(&cursor, &store, false), Ok(position()));
    }

    #[test]
    fn refuses_other_stores_queries_keys_and_edits() {
        let store = StoreId::parse("s1").unwrap();
        let cursor = key().sign(&store, false, &position());
        let other = StoreId::parse("s2").unwrap();
        assert_eq!(
            key().open(&cursor, &other, false),
            Err(CursorError::WrongQuery)
        );
        assert_eq!(
            key().open(&cursor, &store, true),
            Err(CursorError::WrongQuery)
        );
        let other_key = CursorKey::new(b"another key, also long enough!!").unwrap();
        assert_eq!(
            other_key.open(&cursor, &store, false),
            Err(CursorError::BadSignature)
        );

        // Re-sign nothing, but edit the payload to point at another store.
        let (payload, tag) = cursor.split_once('.').unwrap();
        let mut body = URL_SAFE_NO_PAD.decode(payload).unwrap();
        let at = body.iter().position(|b| *b == b'1').unwrap();
        body[at] = b'2';
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(body));
        assert_eq!(
            key().open(&forged, &other, false),
            Err(CursorError::BadSignature)
        );

        for junk in ["", "abc", "a.b.c", "!!.??", &"x".repeat(5000)] {
            assert!(key().open(junk, &store, false).is_err(), "{junk}");
        }
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(CursorKey::new(b"short").is_err());
    }
}
