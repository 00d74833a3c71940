//! Counting INVALID_ARGUMENT refusals: `handoff_invalid_requests_total`
//! by `call` (the gRPC method) and `reason` (an [`InvalidReason`]).
//!
//! A handler knows why it refuses but not, in one place, which call it
//! serves; the server knows the call but not why. So every refusal is made
//! by [`invalid`], which tags the `Status` with its reason in a private
//! metadata key, and one layer around the whole server ([`CountInvalid`])
//! counts each INVALID_ARGUMENT answer by the request's method and that
//! tag, then strips the tag so it never reaches the caller. A refusal made
//! some other way still counts, as `unclassified`. Both labels come from
//! fixed lists, never from the caller's text.
//!
//! IngestBatch answers a malformed event with a REJECTED result in its
//! slot, not with a status: [`count`] is called for each such slot.
//!
//! A forwarded call's refusal is counted once, by the owner that made it:
//! the node that passes it back marks it with [`passed_on`], and the layer
//! here neither counts nor forwards the mark.

use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::codegen::Service;
use tonic::codegen::http;
use tonic::metadata::MetadataValue;

use crate::node::InvalidReason;

/// The metadata key that carries a refusal's reason from its handler to
/// [`CountInvalid`] (which removes it from the answer).
const REASON_KEY: &str = "x-handoff-invalid-reason";

/// The metadata key that marks a status another node made and counted
/// (see [`passed_on`]); removed from the answer.
const PASSED_ON_KEY: &str = "x-handoff-passed-on";

/// The methods of `handoff.v1`: the `call` label's values (anything else,
/// such as health or reflection, is `other`).
const CALLS: [&str; 10] = [
    "Ingest",
    "IngestBatch",
    "Authorize",
    "CheckMessage",
    "GetCustomer",
    "ListCustomers",
    "Subscribe",
    "ListOpen",
    "Acknowledge",
    "GetReport",
];

/// An INVALID_ARGUMENT status for `reason`, with a message for the caller.
pub fn invalid(reason: InvalidReason, message: impl Into<String>) -> Status {
    let mut status = Status::invalid_argument(message);
    status
        .metadata_mut()
        .insert(REASON_KEY, MetadataValue::from_static(reason.as_str()));
    status
}

/// `status`, as the shard's owner answered a forwarded call, to be passed
/// back to the caller as it is: its code, message and details. The
/// owner's response headers are not the caller's business and are
/// dropped; the mark keeps [`CountInvalid`] from counting the refusal a
/// second time.
pub fn passed_on(mut status: Status) -> Status {
    let metadata = status.metadata_mut();
    metadata.clear();
    metadata.insert(PASSED_ON_KEY, MetadataValue::from_static("1"));
    status
}

/// Counts one refusal of `call`.
pub fn count(call: &'static str, reason: &'static str) {
    metrics::counter!(
        "handoff_invalid_requests_total",
        "call" => call,
        "reason" => reason
    )
    .increment(1);
}

/// The `call` label of a request path (`/handoff.v1.Lifecycle/Ingest`).
fn call_of(path: &str) -> &'static str {
    let method = path.rsplit('/').next().unwrap_or_default();
    CALLS
        .iter()
        .find(|c| **c == method)
        .copied()
        .unwrap_or("other")
}

/// The `reason` label of a tag, from the fixed list.
fn reason_of(tag: Option<&http::HeaderValue>) -> &'static str {
    tag.and_then(|v| v.to_str().ok())
        .and_then(|text| InvalidReason::ALL.iter().find(|r| r.as_str() == text))
        .map_or("unclassified", |r| r.as_str())
}

/// The layer of [`CountInvalid`], for `Server::layer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountInvalidLayer;

impl<S> tower_layer::Layer<S> for CountInvalidLayer {
    type Service = CountInvalid<S>;
    fn layer(&self, inner: S) -> CountInvalid<S> {
        CountInvalid { inner }
    }
}

/// Wraps the server: counts every INVALID_ARGUMENT answer (see the module).
#[derive(Debug, Clone)]
pub struct CountInvalid<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for CountInvalid<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let call = call_of(request.uri().path());
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            let headers = response.headers_mut();
            let tag = headers.remove(REASON_KEY);
            let passed_on = headers.remove(PASSED_ON_KEY).is_some();
            // A refusal made before the answer starts is "trailers-only":
            // its status is in the headers. Invalid input is always
            // refused before any answer is sent.
            let refused = !passed_on
                && headers
                    .get("grpc-status")
                    .is_some_and(|s| s.as_bytes() == b"3");
            if refused {
                count(call, reason_of(tag.as_ref()));
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_fixed_lists() {
        assert_eq!(call_of("/handoff.v1.Lifecycle/IngestBatch"), "IngestBatch");
        assert_eq!(call_of("/grpc.health.v1.Health/Check"), "other");
        assert_eq!(call_of("/x/whatever the caller sent"), "other");
        let tag = http::HeaderValue::from_static("occurred_at_past");
        assert_eq!(reason_of(Some(&tag)), "occurred_at_past");
        let forged = http::HeaderValue::from_static("anything");
        assert_eq!(reason_of(Some(&forged)), "unclassified");
        assert_eq!(reason_of(None), "unclassified");
        let status = invalid(InvalidReason::Cursor, "bad cursor");
        assert_eq!(
            status.metadata().get(REASON_KEY).map(|v| v.to_str().ok()),
            Some(Some("cursor"))
        );
    }
}
