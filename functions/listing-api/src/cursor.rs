//! Opaque, tamper-proof page cursors: the index position of a page's last item, bound to the
//! store, sort and filters it came from, with an expiry, signed with HMAC-SHA256 under a key
//! named in the cursor, so that a key can be rotated without breaking a shopper's next page.
//!
//! A cursor is `{key id}.{payload}.{tag}` (base64url): the key id picks the current key or,
//! during a rotation, the previous one; the tag is the HMAC of `{key id}.{payload}` under it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use catalog_core::ids::ProductId;
use catalog_core::listing::{plan, Listing, ListingPosition};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest cursor accepted; real ones are far shorter.
const MAX_CURSOR_LEN: usize = 1024;
/// Shortest signing key accepted.
pub const MIN_KEY_LEN: usize = 16;
/// How long a cursor is honoured: far longer than a walk through a listing, and than the
/// storefront keeps a listing answer (its Next links) cached; after it, `cursor_expired`.
pub const CURSOR_TTL_SECS: i64 = 24 * 60 * 60;

/// One signing key and its id (the first 6 bytes of its SHA-256, base64url).
#[derive(Clone)]
struct NamedKey {
    id: String,
    key: Vec<u8>,
}

impl NamedKey {
    fn new(secret: &[u8]) -> Result<Self, KeyTooShort> {
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyTooShort);
        }
        let id = URL_SAFE_NO_PAD.encode(&Sha256::digest(secret)[..6]);
        Ok(Self {
            id,
            key: secret.to_vec(),
        })
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(self.id.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac
    }
}

/// The keys cursors are signed and opened with, read once at cold start: the current one
/// (`AWSCURRENT`) signs; it and, during a rotation, the previous one (`AWSPREVIOUS`) open.
#[derive(Clone)]
pub struct CursorKey {
    current: NamedKey,
    previous: Option<NamedKey>,
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(<redacted>)")
    }
}

/// A key shorter than [`MIN_KEY_LEN`] bytes.
#[derive(Debug, thiserror::Error)]
#[error("the cursor signing key must be at least {MIN_KEY_LEN} bytes")]
pub struct KeyTooShort;

/// Why a cursor was refused: all of them are a 400; an expired one (or one signed with a key
/// retired since) says so, so that a client starts again from the first page.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("cursor is malformed")]
    Malformed,
    #[error("cursor signature does not match")]
    BadSignature,
    #[error("cursor belongs to another store, sort or filter")]
    WrongQuery,
    #[error("cursor has expired: start again from the first page")]
    Expired,
}

impl CursorError {
    /// The error code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Expired => "cursor_expired",
            _ => "invalid_cursor",
        }
    }
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
    /// Expiry, Unix seconds.
    e: i64,
}

impl CursorKey {
    /// A key from secret bytes.
    pub fn new(secret: &[u8]) -> Result<Self, KeyTooShort> {
        Ok(Self {
            current: NamedKey::new(secret)?,
            previous: None,
        })
    }

    /// The keys as read at cold start: `current` signs, `previous` (during a rotation) opens.
    pub fn rotating(current: &[u8], previous: Option<&[u8]>) -> Result<Self, KeyTooShort> {
        let key = Self::new(current)?;
        match previous {
            Some(previous) => key.with_previous(previous),
            None => Ok(key),
        }
    }

    /// Also opens cursors signed with `previous` (the key before a rotation).
    pub fn with_previous(self, previous: &[u8]) -> Result<Self, KeyTooShort> {
        Ok(Self {
            previous: Some(NamedKey::new(previous)?),
            ..self
        })
    }

    /// `payload` sealed with the current key: what [`CursorKey::sign`] sends, exposed so
    /// the fuzz target can sign any payload.
    pub fn seal(&self, payload: &[u8]) -> String {
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let tag = self.current.mac(&payload).finalize().into_bytes();
        let id = &self.current.id;
        format!("{id}.{payload}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The cursor for the page of `listing` after `position`, issued at `now` (Unix seconds).
    pub fn sign(&self, listing: &Listing, position: &ListingPosition, now: i64) -> String {
        let body = Body {
            s: listing.store().to_string(),
            q: listing.fingerprint(),
            k: position.sort_key.clone(),
            p: position.product_id.to_string(),
            e: now.saturating_add(CURSOR_TTL_SECS),
        };
        self.seal(&serde_json::to_vec(&body).expect("a cursor body always serializes"))
    }

    /// Checks a cursor's signature (in constant time), its expiry against `now`, and that it
    /// belongs to `listing` (its store, sort and filters, and a position inside the listing's
    /// key range), and returns its position.
    pub fn open(
        &self,
        cursor: &str,
        listing: &Listing,
        now: i64,
    ) -> Result<ListingPosition, CursorError> {
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(CursorError::Malformed);
        }
        let mut parts = cursor.split('.');
        let (Some(id), Some(payload), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(CursorError::Malformed);
        };
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| CursorError::Malformed)?;
        // A key id we no longer hold: signed before the last rotation but one.
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == id)
            .ok_or(CursorError::Expired)?;
        key.mac(payload)
            .verify_slice(&tag)
            .map_err(|_| CursorError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| CursorError::Malformed)?;
        let body: Body = serde_json::from_slice(&payload).map_err(|_| CursorError::Malformed)?;
        if body.s != listing.store().as_str() || body.q != listing.fingerprint() {
            return Err(CursorError::WrongQuery);
        }
        if !plan(listing).range.contains(&body.k) {
            return Err(CursorError::WrongQuery);
        }
        if now > body.e {
            return Err(CursorError::Expired);
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

    const NOW: i64 = 1_795_650_000;

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
        let cursor = key().sign(&titles("s1"), &position(), NOW);
        assert_eq!(key().open(&cursor, &titles("s1"), NOW), Ok(position()));
    }

    #[test]
    fn refuses_other_stores_sorts_filters_keys_and_edits() {
        let cursor = key().sign(&titles("s1"), &position(), NOW);
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
                key().open(&cursor, other, NOW),
                Err(CursorError::WrongQuery),
                "{other:?}"
            );
        }
        // Another key under the same id (a forged id cannot pick a key it does not name).
        let mut other_key = CursorKey::new(b"another key, also long enough!!").unwrap();
        other_key.current.id = key().current.id;
        assert_eq!(
            other_key.open(&cursor, &titles("s1"), NOW),
            Err(CursorError::BadSignature)
        );

        // Re-sign nothing, but edit the payload to point at another store.
        let [id, payload, tag]: [&str; 3] =
            cursor.split('.').collect::<Vec<_>>().try_into().unwrap();
        let mut body = URL_SAFE_NO_PAD.decode(payload).unwrap();
        let at = body.iter().position(|b| *b == b'1').unwrap();
        body[at] = b'2';
        let forged = format!("{id}.{}.{tag}", URL_SAFE_NO_PAD.encode(body));
        assert_eq!(
            key().open(&forged, &titles("s2"), NOW),
            Err(CursorError::BadSignature)
        );

        for junk in ["", "abc", "a.b.c", "!!.??", &"x".repeat(5000)] {
            assert!(key().open(junk, &titles("s1"), NOW).is_err(), "{junk}");
        }
    }

    #[test]
    fn a_position_outside_the_listings_range_is_refused() {
        // Signed by us, but for a key the listing cannot reach (an inactive product's).
        let inactive = ListingPosition {
            sort_key: "I#shirt#p1".into(),
            ..position()
        };
        let cursor = key().sign(&titles("s1"), &inactive, NOW);
        assert_eq!(
            key().open(&cursor, &titles("s1"), NOW),
            Err(CursorError::WrongQuery)
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(CursorKey::new(b"short").is_err());
        assert!(key().with_previous(b"short").is_err());
    }

    #[test]
    fn a_cursor_expires_after_its_ttl() {
        let cursor = key().sign(&titles("s1"), &position(), NOW);
        let last = NOW + CURSOR_TTL_SECS;
        assert_eq!(key().open(&cursor, &titles("s1"), last), Ok(position()));
        let expired = key().open(&cursor, &titles("s1"), last + 1);
        assert_eq!(expired, Err(CursorError::Expired));
        assert_eq!(CursorError::Expired.code(), "cursor_expired");
    }

    #[test]
    fn a_rotation_keeps_cursors_of_the_previous_key_and_retires_older_ones() {
        let (old, new, newer): (&[u8], &[u8], &[u8]) = (
            b"0123456789abcdef0123456789abcdef",
            b"the key after the rotation, 32b!",
            b"and the key after that one, 32b!",
        );
        let issued = CursorKey::new(old)
            .unwrap()
            .sign(&titles("s1"), &position(), NOW);
        let rotated = CursorKey::new(new).unwrap().with_previous(old).unwrap();
        assert_eq!(rotated.open(&issued, &titles("s1"), NOW), Ok(position()));
        // New cursors are signed with the new key only.
        let fresh = rotated.sign(&titles("s1"), &position(), NOW);
        let old_only = CursorKey::new(old).unwrap();
        assert_eq!(
            old_only.open(&fresh, &titles("s1"), NOW),
            Err(CursorError::Expired)
        );
        // Two rotations later the old key is gone: the shopper is told to start again.
        let twice = CursorKey::new(newer).unwrap().with_previous(new).unwrap();
        assert_eq!(
            twice.open(&issued, &titles("s1"), NOW),
            Err(CursorError::Expired)
        );
        assert_eq!(twice.open(&fresh, &titles("s1"), NOW), Ok(position()));
    }
}
