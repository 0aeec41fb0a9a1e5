//! The signature on every revalidate call, so a storefront can reject forged, tampered,
//! expired, replayed and misdirected calls, and holds no key that could sign for another.
//!
//! Headers: `x-catalog-timestamp` (Unix seconds), `x-catalog-nonce` (unique per call, 8 to 64
//! characters of `A-Z a-z 0-9 _ -`) and `x-catalog-signature: v3=<hex HMAC-SHA256(key,
//! "v3\n{audience}\n{timestamp}\n{nonce}\n{body}")>`. The audience is the endpoint URL as
//! configured, and the key is that audience's own ([`AudienceKey`]: HKDF-SHA256 of the
//! revalidate secret with the audience as `info`). The revalidator holds the secret; each
//! storefront holds only its key, so a storefront (or whoever takes one over) can verify its
//! own calls and sign none for another. No field before the body can hold a newline, so the
//! signed string splits only one way. The storefront recomputes the HMAC over the raw body,
//! compares in constant time, accepts a timestamp within [`WINDOW_SECS`] of its clock, and
//! remembers nonces for that long.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a call's timestamp may be from the receiver's clock, either way. Each attempt is
/// signed afresh, so only clock error counts against it; a receiver whose clock is further
/// off refuses every call (401), which the revalidator counts as a configuration error,
/// alarms on and dead-letters: loud, never a page silently left stale.
pub const WINDOW_SECS: i64 = 60;
/// Nonce length bounds, in characters.
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 8..=64;
/// Longest audience.
pub const MAX_AUDIENCE_LEN: usize = 2048;
/// The shortest revalidate secret: 256 bits, the HMAC's own strength.
pub const MIN_SECRET_BYTES: usize = 32;
/// Binds derived keys to this use and version of the scheme.
const KEY_SALT: &[u8] = b"catalog-sync/revalidate/v3";

/// The revalidate secret is shorter than [`MIN_SECRET_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the revalidate secret is {0} bytes; at least {MIN_SECRET_BYTES} are required")]
pub struct SecretTooShort(pub usize);

/// Refuses a secret shorter than [`MIN_SECRET_BYTES`].
pub fn check_secret(secret: &[u8]) -> Result<(), SecretTooShort> {
    match secret.len() {
        n if n < MIN_SECRET_BYTES => Err(SecretTooShort(n)),
        _ => Ok(()),
    }
}

/// One storefront's signing key: HKDF-SHA256(salt `catalog-sync/revalidate/v3`, the secret,
/// info = the audience). What the storefront is configured with (`REVALIDATE_KEY`, hex).
#[derive(Clone, PartialEq, Eq)]
pub struct AudienceKey([u8; 32]);

impl AudienceKey {
    /// The key of `audience` under `secret`.
    pub fn derive(secret: &[u8], audience: &str) -> Self {
        let mut key = [0; 32];
        Hkdf::<Sha256>::new(Some(KEY_SALT), secret)
            .expand(audience.as_bytes(), &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 length");
        Self(key)
    }

    /// The key as the storefront is configured with it: 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// A key written by [`AudienceKey::to_hex`].
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = unhex(text)?;
        Some(Self(bytes.try_into().ok()?))
    }
}

impl std::fmt::Debug for AudienceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AudienceKey(..)")
    }
}

/// The headers of a signed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub timestamp: i64,
    pub nonce: String,
    /// `v3=<hex>`.
    pub signature: String,
}

/// Whether `nonce` has the alphabet and length both sides require.
pub fn valid_nonce(nonce: &str) -> bool {
    NONCE_LEN.contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `audience` can be signed for: printable ASCII without spaces, so never a newline.
pub fn valid_audience(audience: &str) -> bool {
    (1..=MAX_AUDIENCE_LEN).contains(&audience.len())
        && audience.bytes().all(|b| b.is_ascii_graphic())
}

fn mac(
    key: &AudienceKey,
    audience: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes any key length");
    mac.update(format!("v3\n{audience}\n{timestamp}\n{nonce}\n").as_bytes());
    mac.update(body);
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// Signs `body` for `audience` (with its key) at `timestamp` with `nonce`. The caller keeps to
/// [`valid_nonce`] and [`valid_audience`]; the receiver refuses anything else.
pub fn sign(key: &AudienceKey, audience: &str, timestamp: i64, nonce: &str, body: &[u8]) -> Signed {
    let mac = mac(key, audience, timestamp, nonce, body);
    Signed {
        timestamp,
        nonce: nonce.to_owned(),
        signature: format!("v3={}", hex(&mac.finalize().into_bytes())),
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the nonce is not 8 to 64 characters of A-Z a-z 0-9 _ -")]
    BadNonce,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the timestamp is outside the {WINDOW_SECS} s window")]
    Expired,
}

/// Checks a call made to `audience` as the storefront does (the reference for
/// examples/storefront's TypeScript, and what the tests' stand-in storefront runs): `keys` are
/// the audience's current key and, during a rotation, its previous one. Replays are caught by
/// the nonce memory, which is the receiver's.
pub fn verify(
    keys: &[AudienceKey],
    audience: &str,
    signed: &Signed,
    body: &[u8],
    now: i64,
) -> Result<(), Refused> {
    if !valid_nonce(&signed.nonce) {
        return Err(Refused::BadNonce);
    }
    let given = signed
        .signature
        .strip_prefix("v3=")
        .and_then(unhex)
        .ok_or(Refused::BadSignature)?;
    // `verify_slice` compares in constant time.
    let genuine = keys.iter().any(|key| {
        mac(key, audience, signed.timestamp, &signed.nonce, body)
            .verify_slice(&given)
            .is_ok()
    });
    if !genuine {
        return Err(Refused::BadSignature);
    }
    if (now - signed.timestamp).abs() > WINDOW_SECS {
        return Err(Refused::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_650_000;
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const AUDIENCE: &str = "https://shop-a.example.com/api/revalidate";
    const NONCE: &str = "nonce-0001";

    fn key() -> AudienceKey {
        AudienceKey::derive(SECRET, AUDIENCE)
    }

    #[test]
    fn a_signed_call_verifies_and_any_change_is_refused() {
        let body = br#"{"tags":["product:p1"]}"#;
        let signed = sign(&key(), AUDIENCE, NOW, NONCE, body);
        let check = |signed: &Signed, body: &[u8], key: AudienceKey, now| {
            verify(&[key], AUDIENCE, signed, body, now)
        };
        assert_eq!(check(&signed, body, key(), NOW + 10), Ok(()));
        // Tampered body, another secret's key, another nonce, a forged signature.
        let tampered = br#"{"tags":["product:p2"]}"#;
        let refused = Err(Refused::BadSignature);
        assert_eq!(check(&signed, tampered, key(), NOW), refused);
        let other = AudienceKey::derive(b"another-secret-of-32-bytes-or-more", AUDIENCE);
        assert_eq!(check(&signed, body, other, NOW), refused);
        let renonced = Signed {
            nonce: "nonce-0002".into(),
            ..signed.clone()
        };
        assert_eq!(check(&renonced, body, key(), NOW), refused);
        for forged in [
            format!("v3={}", "0".repeat(64)),
            "v3=zz".into(),
            "v2=00".into(),
        ] {
            let forged = Signed {
                signature: forged,
                ..signed.clone()
            };
            assert_eq!(check(&forged, body, key(), NOW), refused);
        }
        // Moving the timestamp breaks the signature; an old one is expired.
        let moved = Signed {
            timestamp: NOW + 1,
            ..signed.clone()
        };
        assert_eq!(check(&moved, body, key(), NOW), refused);
        let late = NOW + WINDOW_SECS + 1;
        assert_eq!(check(&signed, body, key(), late), Err(Refused::Expired));
    }

    #[test]
    fn one_storefronts_key_verifies_and_signs_for_no_other() {
        let body = br#"{"tags":["product:p1"]}"#;
        let other = "https://shop-b.example.com/api/revalidate";
        let other_key = AudienceKey::derive(SECRET, other);
        assert_ne!(other_key, key());
        // A call to shop-a is refused by shop-b, whichever audience shop-b checks it under.
        let signed = sign(&key(), AUDIENCE, NOW, NONCE, body);
        let refused = Err(Refused::BadSignature);
        assert_eq!(
            verify(std::slice::from_ref(&other_key), other, &signed, body, NOW),
            refused
        );
        // shop-b's key (all a compromised shop-b holds) cannot sign a call shop-a accepts.
        let forged = sign(&other_key, AUDIENCE, NOW, NONCE, body);
        assert_eq!(verify(&[key()], AUDIENCE, &forged, body, NOW), refused);
    }

    #[test]
    fn during_a_rotation_calls_signed_under_either_secret_verify() {
        let body = br#"{"tags":["product:p1"]}"#;
        let new = AudienceKey::derive(b"the-new-secret-of-32-bytes-or-more", AUDIENCE);
        let old_call = sign(&key(), AUDIENCE, NOW, NONCE, body);
        let new_call = sign(&new, AUDIENCE, NOW, NONCE, body);
        let both = [new.clone(), key()];
        assert_eq!(verify(&both, AUDIENCE, &old_call, body, NOW), Ok(()));
        assert_eq!(verify(&both, AUDIENCE, &new_call, body, NOW), Ok(()));
        let after = verify(&[new], AUDIENCE, &old_call, body, NOW);
        assert_eq!(after, Err(Refused::BadSignature));
    }

    #[test]
    fn secrets_under_32_bytes_are_refused_and_keys_round_trip_as_hex() {
        assert_eq!(check_secret(&SECRET[..31]), Err(SecretTooShort(31)));
        assert_eq!(check_secret(SECRET), Ok(()));
        assert_eq!(AudienceKey::from_hex(&key().to_hex()), Some(key()));
        assert_eq!(AudienceKey::from_hex(&key().to_hex()[2..]), None);
        assert_eq!(AudienceKey::from_hex(&"g".repeat(64)), None);
        assert_eq!(format!("{:?}", key()), "AudienceKey(..)");
    }

    #[test]
    fn moving_the_start_of_the_body_into_the_nonce_is_refused() {
        // The same signed bytes split another way: before v2, the nonce memory saw a "new"
        // nonce and the HMAC matched.
        let body = b"{\"tags\":\n[\"product:p1\"]}";
        let signed = sign(&key(), AUDIENCE, NOW, NONCE, body);
        let shifted = Signed {
            nonce: format!("{NONCE}\n{{\"tags\":"),
            ..signed.clone()
        };
        let rest = b"[\"product:p1\"]}";
        let resigned = sign(&key(), AUDIENCE, NOW, &shifted.nonce, rest);
        assert_eq!(resigned.signature, signed.signature);
        assert_eq!(
            verify(&[key()], AUDIENCE, &shifted, rest, NOW),
            Err(Refused::BadNonce)
        );
    }

    /// contracts/signature-vectors.json, which the storefront's tests read too.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Vectors {
        signed: Vec<Vector>,
        bad_nonces: Vec<String>,
    }

    #[derive(serde::Deserialize)]
    struct Vector {
        secret: String,
        audience: String,
        key: String,
        timestamp: i64,
        nonce: String,
        body: String,
        signature: String,
    }

    /// The vectors of contracts/, which the storefront's verifier is tested against too.
    fn vectors() -> Vectors {
        let contract = catalog_core::testing::contract("signature-vectors.json");
        serde_json::from_value(contract).unwrap()
    }

    #[test]
    fn matches_the_shared_vectors() {
        let vectors = vectors();
        for v in &vectors.signed {
            let key = AudienceKey::derive(v.secret.as_bytes(), &v.audience);
            assert_eq!(key.to_hex(), v.key);
            let body = v.body.as_bytes();
            let signed = sign(&key, &v.audience, v.timestamp, &v.nonce, body);
            assert_eq!(signed.signature, v.signature);
            assert!(valid_audience(&v.audience));
            let verified = verify(&[key], &v.audience, &signed, body, v.timestamp);
            assert_eq!(verified, Ok(()));
        }
        for nonce in &vectors.bad_nonces {
            assert!(!valid_nonce(nonce), "{nonce:?}");
        }
    }

    /// Prints the vectors' keys and signatures, to write them into the file when the scheme
    /// changes: `cargo test -p tag-revalidator print_vectors -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn print_vectors() {
        let vectors = vectors();
        for v in &vectors.signed {
            let key = AudienceKey::derive(v.secret.as_bytes(), &v.audience);
            let signed = sign(&key, &v.audience, v.timestamp, &v.nonce, v.body.as_bytes());
            println!("{} {}", key.to_hex(), signed.signature);
        }
    }
}
