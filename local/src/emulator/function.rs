//! The functions the local stack invokes, in process, through the same handler each binary's
//! `main` hands to `lambda_runtime`.
//!
//! An invocation takes the event as JSON and decodes it with serde exactly as the runtime does,
//! so a handler sees what AWS would send; the answer is serialized back to JSON, and a handler
//! error becomes a function error, as the runtime reports it. Running the built binaries under
//! `cargo lambda watch` instead would add an HTTP hop and a rebuild on every file change to
//! each invocation; the binaries themselves are exercised with every sample event by
//! tests/tests/integration/lambda_binaries.rs.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

/// A function error: what Lambda reports as `errorMessage` when a handler fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FunctionError(pub String);

/// The future of one invocation.
pub type Invocation<'a> = Pin<Box<dyn Future<Output = Result<Value, FunctionError>> + Send + 'a>>;

/// Something the stack can invoke with an event, as Lambda invokes a function.
pub trait Function: Send + Sync {
    /// Handles one event.
    fn invoke(&self, event: Value) -> Invocation<'_>;
}

/// Tags the invocation's log lines as Lambda's are: a request id of its own, the function's
/// name as template.yaml gives it, and the cold-start flag on its first invocation.
fn traced<'a>(
    function_name: &str,
    invocation: impl Future<Output = Result<Value, FunctionError>> + Send + 'a,
) -> Invocation<'a> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let request_id = format!(
        "local-{:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    Box::pin(invocation.instrument(catalog::telemetry::invocation_span(
        function_name,
        &request_id,
    )))
}

fn decode<T: DeserializeOwned>(event: Value) -> Result<T, FunctionError> {
    serde_json::from_value(event).map_err(|e| FunctionError(format!("decoding the event: {e}")))
}

fn encode(answer: impl serde::Serialize) -> Result<Value, FunctionError> {
    serde_json::to_value(answer).map_err(|e| FunctionError(format!("encoding the answer: {e}")))
}

/// Both of the projector's event sources, told apart as its `main` does.
impl Function for summary_projector::Projector {
    fn invoke(&self, event: Value) -> Invocation<'_> {
        traced("SummaryProjectorFunction", async move {
            let input = summary_projector::Input::parse(event)
                .map_err(|e| FunctionError(format!("decoding the event: {e}")))?;
            let response = self
                .handle_input(input)
                .await
                .map_err(|e| FunctionError(e.to_string()))?;
            encode(response)
        })
    }
}

/// The reconciler, with the 15-minute deadline its template timeout gives each invocation.
#[derive(Debug, Clone)]
pub struct Reconciler {
    pub handler: reconciler::Reconciler,
    pub timeout: Duration,
}

impl Function for Reconciler {
    fn invoke(&self, event: Value) -> Invocation<'_> {
        traced("ReconcilerFunction", async move {
            let deadline = Instant::now() + self.timeout;
            let answer = self
                .handler
                .handle(event, deadline)
                .await
                .map_err(|e| FunctionError(e.to_string()))?;
            Ok(answer)
        })
    }
}

impl Function for listing_api::ListingApi {
    fn invoke(&self, event: Value) -> Invocation<'_> {
        traced("ListingApiFunction", async move {
            let request: ApiGatewayV2httpRequest = decode(event)?;
            encode(self.handle(request).await)
        })
    }
}

impl Function for tag_revalidator::Revalidator {
    fn invoke(&self, event: Value) -> Invocation<'_> {
        traced("TagRevalidatorFunction", async move {
            let event: aws_lambda_events::event::sqs::SqsEvent = decode(event)?;
            encode(self.handle(event).await)
        })
    }
}
