//! The signing secret, read again when a storefront refuses a signature: a container started
//! before a rotation would otherwise sign with the old secret until Lambda recycles it, and
//! once the storefront drops the previous key every one of its calls would be refused (pages
//! stale until the messages dead-letter). A 401 is the check that the secret is still current.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::signature;

/// Reads the secret's current value (Secrets Manager's `AWSCURRENT`).
pub type SecretReader = Arc<dyn Fn() -> BoxFuture<'static, Result<String, String>> + Send + Sync>;

/// Reads `source` through `sdk` (Secrets Manager, or the given value).
pub fn reader(sdk: &catalog::sdk::Sdk, source: &catalog::config::SecretSource) -> SecretReader {
    let (sdk, source) = (sdk.clone(), source.clone());
    Arc::new(move || {
        let (sdk, source) = (sdk.clone(), source.clone());
        Box::pin(async move { sdk.secret(&source).await.map_err(|e| e.to_string()) })
    })
}

/// At most one read per this long per container, so that a storefront refusing every call
/// (a wrong URL, a wrong key) costs one GetSecretValue per 30 s, not one per message. A
/// message refused meanwhile is retried from the retry queue, which reads again then.
pub const READ_AGAIN_AFTER: Duration = Duration::from_secs(30);

/// A secret and the generation of its value (bumped by each new value read).
pub struct RotatingSecret {
    current: RwLock<(u64, Arc<[u8]>)>,
    reader: Option<SecretReader>,
    last_read: tokio::sync::Mutex<Option<Instant>>,
}

impl RotatingSecret {
    /// `secret`, never read again unless [`Self::reading_with`] says how.
    pub fn fixed(secret: &[u8]) -> Result<Self, signature::SecretTooShort> {
        signature::check_secret(secret)?;
        Ok(Self {
            current: RwLock::new((0, secret.into())),
            reader: None,
            last_read: tokio::sync::Mutex::new(None),
        })
    }

    /// The same secret, read again through `reader` when [`Self::read_again`] is asked.
    pub fn reading_with(&self, reader: SecretReader) -> Self {
        Self {
            current: RwLock::new(self.current()),
            reader: Some(reader),
            last_read: tokio::sync::Mutex::new(None),
        }
    }

    /// The value to sign with and its generation.
    pub fn current(&self) -> (u64, Arc<[u8]>) {
        self.current.read().expect("secret lock").clone()
    }

    /// After a call signed with generation `seen` was refused: whether a newer value is now
    /// current (read by this call or by a concurrent one), so that the call is worth repeating.
    pub async fn read_again(&self, seen: u64) -> bool {
        let Some(reader) = &self.reader else {
            return false;
        };
        let mut last_read = self.last_read.lock().await;
        if self.current().0 != seen {
            return true;
        }
        if last_read.is_some_and(|at| at.elapsed() < READ_AGAIN_AFTER) {
            return false;
        }
        *last_read = Some(Instant::now());
        let value = match reader().await {
            Ok(value) => value,
            Err(reason) => {
                tracing::warn!(%reason, "reading the revalidate secret again failed");
                return false;
            }
        };
        let mut current = self.current.write().expect("secret lock");
        if signature::check_secret(value.as_bytes()).is_err() || *current.1 == *value.as_bytes() {
            return false;
        }
        tracing::info!("the revalidate secret was rotated; signing with its new value");
        *current = (current.0 + 1, value.as_bytes().into());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "the-old-secret-of-32-bytes-or-more";
    const NEW: &str = "the-new-secret-of-32-bytes-or-more";

    fn reading(value: &'static str, reads: Arc<std::sync::atomic::AtomicUsize>) -> RotatingSecret {
        let reader: SecretReader = Arc::new(move || {
            reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move { Ok(value.to_owned()) })
        });
        RotatingSecret::fixed(OLD.as_bytes())
            .unwrap()
            .reading_with(reader)
    }

    #[tokio::test]
    async fn a_new_value_is_taken_once_and_reads_are_spaced() {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let secret = reading(NEW, reads.clone());
        assert!(secret.read_again(0).await, "the rotated value is taken");
        assert_eq!(&*secret.current().1, NEW.as_bytes());
        // A call signed with the old generation learns of the new one without a read.
        assert!(secret.read_again(0).await);
        // Refused again with the new value: no read for READ_AGAIN_AFTER.
        assert!(!secret.read_again(1).await);
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_unchanged_or_short_value_is_not_worth_a_second_call() {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        assert!(!reading(OLD, reads.clone()).read_again(0).await);
        assert!(!reading("short", reads).read_again(0).await);
        let fixed = RotatingSecret::fixed(OLD.as_bytes()).unwrap();
        assert!(!fixed.read_again(0).await);
    }
}
