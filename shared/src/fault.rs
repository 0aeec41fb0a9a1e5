//! What went wrong with a call to AWS, sorted by what to do about it.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// A failed call: retry it later, or never.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// Throttling, a timeout, a dropped connection, a 5xx: retrying later can succeed, so
    /// nothing is dropped.
    #[error("transient: {0}")]
    Transient(String),
    /// The stack is wrong (a table missing, access denied, credentials unknown): retried like
    /// a transient fault, so nothing is dropped, but only a fix to the stack ends it, so a
    /// caller that counts configuration errors tells it apart.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
    /// The request itself is wrong (a validation error): retrying cannot succeed.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl Fault {
    /// Whether a retry can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Fault::Transient(_) | Fault::Misconfigured(_))
    }

    /// Whether the stack itself is wrong: see [`Fault::Misconfigured`].
    pub fn is_misconfigured(&self) -> bool {
        matches!(self, Fault::Misconfigured(_))
    }
}

/// Error codes that mean the stack is wrong, not the request or the moment.
const MISCONFIGURED_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "AccessDeniedException",
    "UnrecognizedClientException",
];

/// Error codes that mean the request can never succeed as sent.
const PERMANENT_CODES: &[&str] = &[
    "ValidationException",
    "SerializationException",
    "ItemCollectionSizeLimitExceededException",
    "InvalidParameterValue",
    "InvalidMessageContents",
    "BatchRequestTooLong",
    "AWS.SimpleQueueService.BatchRequestTooLong",
    "InvalidParameterValueException",
];

/// Sorts an SDK error: a service error with a permanent code is [`Fault::Permanent`], one
/// that names the stack's configuration is [`Fault::Misconfigured`], everything else
/// (throttling, timeouts, I/O, 5xx) is [`Fault::Transient`].
pub fn classify<E, R>(operation: &str, err: SdkError<E, R>) -> Fault
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = err.code().map(str::to_owned);
    let message = match (&code, err.message()) {
        (Some(code), Some(message)) => format!("{operation}: {code}: {message}"),
        (Some(code), None) => format!("{operation}: {code}"),
        _ => format!(
            "{operation}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(&err)
        ),
    };
    match code {
        Some(code) if PERMANENT_CODES.contains(&code.as_str()) => Fault::Permanent(message),
        Some(code) if MISCONFIGURED_CODES.contains(&code.as_str()) => Fault::Misconfigured(message),
        _ => Fault::Transient(message),
    }
}
