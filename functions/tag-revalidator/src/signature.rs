//! The signature on every revalidate call, so a storefront can reject forged, tampered,
//! expired, replayed and misdirected calls.
//!
//! Headers: `x-catalog-timestamp` (Unix seconds), `x-catalog-nonce` (unique per call, 8 to 64
//! characters of `A-Z a-z 0-9 _ -`) and `x-catalog-signature: v2=<hex HMAC-SHA256(secret,
//! "v2\n{audience}\n{timestamp}\n{nonce}\n{body}")>`. The audience is the endpoint URL as
//! configured; the storefront takes its own from its configuration, never from the call, so a
//! call made to one storefront cannot be replayed to another that shares the secret. No field
//! before the body can hold a newline, so the signed string splits only one way (the `v1`
//! form, `v1:{timestamp}:{nonce}:{body}` with any nonce, could be re-split by moving the start
//! of the body into the nonce). The storefront recomputes the HMAC over the raw body, compares
//! in constant time, accepts a timestamp within [`WINDOW_SECS`] of its clock, and remembers
//! nonces for that long.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a call's timestamp may be from the receiver's clock, either way.
pub const WINDOW_SECS: i64 = 300;
/// Nonce length bounds, in characters.
pub const NONCE_LEN: std::ops::RangeInclusive<usize> = 8..=64;
/// Longest audience.
pub const MAX_AUDIENCE_LEN: usize = 2048;

/// The headers of a signed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub timestamp: i64,
    pub nonce: String,
    /// `v2=<hex>`.
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

fn mac(secret: &[u8], audience: &str, timestamp: i64, nonce: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("v2\n{audience}\n{timestamp}\n{nonce}\n").as_bytes());
    mac.update(body);
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs `body` for `audience` at `timestamp` with `nonce`. The caller keeps to
/// [`valid_nonce`] and [`valid_audience`]; the receiver refuses anything else.
pub fn sign(secret: &[u8], audience: &str, timestamp: i64, nonce: &str, body: &[u8]) -> Signed {
    Signed {
        timestamp,
        nonce: nonce.to_owned(),
        signature: format!(
            "v2={}",
            hex(&mac(secret, audience, timestamp, nonce, body)
                .finalize()
                .into_bytes())
        ),
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
/// examples/storefront's TypeScript, and what the tests' stand-in storefront runs). Replays
/// are caught by the nonce memory, which is the receiver's.
pub fn verify(
    secret: &[u8],
    audience: &str,
    signed: &Signed,
    body: &[u8],
    now: i64,
) -> Result<(), Refused> {
    if !valid_nonce(&signed.nonce) {
        return Err(Refused::BadNonce);
    }
    let Some(given) = signed.signature.strip_prefix("v2=") else {
        return Err(Refused::BadSignature);
    };
    let given: Option<Vec<u8>> = (0..given.len())
        .step_by(2)
        .map(|i| {
            given
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let given = given.ok_or(Refused::BadSignature)?;
    // `verify_slice` compares in constant time.
    mac(secret, audience, signed.timestamp, &signed.nonce, body)
        .verify_slice(&given)
        .map_err(|_| Refused::BadSignature)?;
    if (now - signed.timestamp).abs() > WINDOW_SECS {
        return Err(Refused::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_650_000;
    const AUDIENCE: &str = "https://shop-a.example.com/api/revalidate";
    const NONCE: &str = "nonce-0001";

    #[test]
    fn a_signed_call_verifies_and_any_change_is_refused() {
        let body = br#"{"tags":["product:p1"]}"#;
        let signed = sign(b"secret", AUDIENCE, NOW, NONCE, body);
        let check = |signed: &Signed, body: &[u8], secret: &[u8], now| {
            verify(secret, AUDIENCE, signed, body, now)
        };
        assert_eq!(check(&signed, body, b"secret", NOW + 10), Ok(()));
        // Tampered body, wrong secret, another nonce, a forged signature.
        let tampered = br#"{"tags":["product:p2"]}"#;
        assert_eq!(
            check(&signed, tampered, b"secret", NOW),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            check(&signed, body, b"other", NOW),
            Err(Refused::BadSignature)
        );
        let renonced = Signed {
            nonce: "nonce-0002".into(),
            ..signed.clone()
        };
        assert_eq!(
            check(&renonced, body, b"secret", NOW),
            Err(Refused::BadSignature)
        );
        for forged in [
            format!("v2={}", "0".repeat(64)),
            "v2=zz".into(),
            "v1=00".into(),
        ] {
            let forged = Signed {
                signature: forged,
                ..signed.clone()
            };
            assert_eq!(
                check(&forged, body, b"secret", NOW),
                Err(Refused::BadSignature)
            );
        }
        // Moving the timestamp breaks the signature; an old one is expired.
        let moved = Signed {
            timestamp: NOW + 1,
            ..signed.clone()
        };
        assert_eq!(
            check(&moved, body, b"secret", NOW),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            check(&signed, body, b"secret", NOW + WINDOW_SECS + 1),
            Err(Refused::Expired)
        );
    }

    #[test]
    fn a_call_for_one_storefront_is_refused_by_another_sharing_the_secret() {
        let body = br#"{"tags":["product:p1"]}"#;
        let signed = sign(b"secret", AUDIENCE, NOW, NONCE, body);
        let other = "https://shop-b.example.com/api/revalidate";
        assert_eq!(
            verify(b"secret", other, &signed, body, NOW),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn moving_the_start_of_the_body_into_the_nonce_is_refused() {
        // The same signed bytes split another way: before v2, the nonce memory saw a "new"
        // nonce and the HMAC matched.
        let body = b"{\"tags\":\n[\"product:p1\"]}";
        let signed = sign(b"secret", AUDIENCE, NOW, NONCE, body);
        let shifted = Signed {
            nonce: format!("{NONCE}\n{{\"tags\":"),
            ..signed.clone()
        };
        let rest = b"[\"product:p1\"]}";
        assert_eq!(
            sign(b"secret", AUDIENCE, NOW, &shifted.nonce, rest).signature,
            signed.signature
        );
        assert_eq!(
            verify(b"secret", AUDIENCE, &shifted, rest, NOW),
            Err(Refused::BadNonce)
        );
    }

    /// examples/storefront/lib/signature-vectors.json, which the storefront's tests read too.
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
        timestamp: i64,
        nonce: String,
        body: String,
        signature: String,
    }

    #[test]
    fn matches_the_shared_vectors() {
        let vectors: Vectors = serde_json::from_str(include_str!(
            "../../../examples/storefront/lib/signature-vectors.json"
        ))
        .unwrap();
        for v in &vectors.signed {
            let signed = sign(
                v.secret.as_bytes(),
                &v.audience,
                v.timestamp,
                &v.nonce,
                v.body.as_bytes(),
            );
            assert_eq!(signed.signature, v.signature);
            assert!(valid_audience(&v.audience));
            let now = v.timestamp;
            let body = v.body.as_bytes();
            assert_eq!(
                verify(v.secret.as_bytes(), &v.audience, &signed, body, now),
                Ok(())
            );
        }
        for nonce in &vectors.bad_nonces {
            assert!(!valid_nonce(nonce), "{nonce:?}");
        }
    }
}
