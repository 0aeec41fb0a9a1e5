//! The signature on every revalidate call, so a storefront can reject forged, tampered,
//! expired and replayed calls.
//!
//! Headers: `x-catalog-timestamp` (Unix seconds), `x-catalog-nonce` (unique per call) and
//! `x-catalog-signature: v1=<hex HMAC-SHA256(secret, "v1:{timestamp}:{nonce}:{body}")>`. The
//! storefront recomputes the HMAC over the raw body, compares in constant time, accepts a
//! timestamp within [`WINDOW_SECS`] of its clock, and remembers nonces for that long.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a call's timestamp may be from the receiver's clock, either way.
pub const WINDOW_SECS: i64 = 300;

/// The headers of a signed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub timestamp: i64,
    pub nonce: String,
    /// `v1=<hex>`.
    pub signature: String,
}

fn mac(secret: &[u8], timestamp: i64, nonce: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("v1:{timestamp}:{nonce}:").as_bytes());
    mac.update(body);
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Signs `body` at `timestamp` with `nonce`.
pub fn sign(secret: &[u8], timestamp: i64, nonce: &str, body: &[u8]) -> Signed {
    Signed {
        timestamp,
        nonce: nonce.to_owned(),
        signature: format!(
            "v1={}",
            hex(&mac(secret, timestamp, nonce, body).finalize().into_bytes())
        ),
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the signature does not match")]
    BadSignature,
    #[error("the timestamp is outside the {WINDOW_SECS} s window")]
    Expired,
}

/// Checks a call as the storefront does (the reference for examples/storefront's TypeScript,
/// and what the tests' stand-in storefront runs). Replays are caught by the nonce memory,
/// which is the receiver's.
pub fn verify(secret: &[u8], signed: &Signed, body: &[u8], now: i64) -> Result<(), Refused> {
    let Some(given) = signed.signature.strip_prefix("v1=") else {
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
    mac(secret, signed.timestamp, &signed.nonce, body)
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

    #[test]
    fn a_signed_call_verifies_and_any_change_is_refused() {
        let body = br#"{"tags":["product:p1"]}"#;
        let signed = sign(b"secret", NOW, "n1", body);
        assert_eq!(verify(b"secret", &signed, body, NOW + 10), Ok(()));
        // Tampered body, wrong secret, another nonce, a forged signature.
        let tampered = br#"{"tags":["product:p2"]}"#;
        assert_eq!(
            verify(b"secret", &signed, tampered, NOW),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(b"other", &signed, body, NOW),
            Err(Refused::BadSignature)
        );
        let renonced = Signed {
            nonce: "n2".into(),
            ..signed.clone()
        };
        assert_eq!(
            verify(b"secret", &renonced, body, NOW),
            Err(Refused::BadSignature)
        );
        let forged = Signed {
            signature: format!("v1={}", "0".repeat(64)),
            ..signed.clone()
        };
        assert_eq!(
            verify(b"secret", &forged, body, NOW),
            Err(Refused::BadSignature)
        );
        let garbage = Signed {
            signature: "v1=zz".into(),
            ..signed.clone()
        };
        assert_eq!(
            verify(b"secret", &garbage, body, NOW),
            Err(Refused::BadSignature)
        );
        // Moving the timestamp breaks the signature; an old one is expired.
        let moved = Signed {
            timestamp: NOW + 1,
            ..signed.clone()
        };
        assert_eq!(
            verify(b"secret", &moved, body, NOW),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(b"secret", &signed, body, NOW + WINDOW_SECS + 1),
            Err(Refused::Expired)
        );
    }

    #[test]
    fn matches_a_known_vector() {
        // examples/storefront/lib/signature.test.mjs checks the same vector, so the two
        // implementations agree byte for byte.
        let signed = sign(
            b"test-secret",
            1_700_000_000,
            "abc",
            br#"{"tags":["product:p1"]}"#,
        );
        assert_eq!(
            signed.signature,
            "v1=b84b8d69557bc23170bb560d1605fb370ab43292d85196f03ba21b574350c1b8"
        );
    }
}
