//! The HTTP routes: `POST /validate`, `POST /mutate`, `GET /healthz`, `GET /readyz`.
//!
//! Handlers read the body (bounded, per request and in total), decode the review, call
//! [`admission`](crate::adapters::admission), and answer. A body that is not an AdmissionReview gets a 4xx with a
//! short JSON error; a review that could be read always gets a 200 with a real AdmissionResponse, the
//! policy's failure mode answering when it cannot be judged (too large, or not in time). Large bodies are
//! decoded and judged in the blocking pool, a few at a time, so they never hold up the reactor (the accept
//! loop, health probes and other reviews).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use http_body_util::BodyExt;
use kube::core::admission::Operation;
use serde_json::json;
use tokio::sync::Semaphore;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tracing::{Span, debug, field::Empty, instrument, warn};

use super::baseline;
use super::connections::ClientIdentity;
use super::metrics::Refusal;
use super::state::AppState;
use crate::adapters::admission::{self, Outcome, Review, ScanError};
use crate::decision::Verdict;
use crate::domain::lookup::{Overlay, Prefetched};
use crate::domain::policy::PolicySet;
use crate::domain::workload::{Kind, ObjectLimits};

/// The largest body accepted by default: an UPDATE carries the object and the object before it, each up
/// to the API server's 3 MiB request limit as JSON (controller-runtime accepts 7 MiB too).
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;

/// Bodies up to this size are decoded and judged on the request's own task (microseconds); larger ones in
/// the blocking pool, after counting what their objects hold.
pub(crate) const INLINE_BODY_BYTES: usize = 128 * 1024;

/// Limits the router applies.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long one request may take, body included: below the webhook's `timeoutSeconds`. Past 90% of
    /// it the policy's failure mode answers.
    pub request_timeout: Duration,
    /// How many requests are handled at once; the rest wait.
    pub concurrency: usize,
    /// The largest body accepted (413 beyond).
    pub max_body_bytes: usize,
    /// Review bodies held at once, all requests together; a request that would go over is refused at
    /// once with 503 (the API server then applies the webhook's failurePolicy).
    pub max_inflight_bytes: usize,
    /// Large reviews decoded and judged at once, in the blocking pool.
    pub heavy_reviews: usize,
    /// What one object may ask of a decision.
    pub objects: ObjectLimits,
    /// Reviews only from clients whose certificate `--client-ca` verified (403 otherwise); the probes stay
    /// open, as the kubelet presents no certificate. Set by the server when it has a client CA.
    pub require_client_cert: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(8),
            concurrency: 1024,
            max_body_bytes: MAX_BODY_BYTES,
            max_inflight_bytes: 24 * 1024 * 1024,
            heavy_reviews: 2,
            objects: ObjectLimits::default(),
            require_client_cert: false,
        }
    }
}

/// The budgets every review draws on.
struct Gate {
    limits: Limits,
    /// One permit per body byte held.
    bytes: Semaphore,
    /// One permit per large review being decoded or judged.
    heavy: Arc<Semaphore>,
}

/// `POST` on one review path: the caller's verified identity (when `--client-ca` asks for one), the
/// headers and the body go to [`answer`].
fn review_route(gate: Arc<Gate>, path: Path) -> MethodRouter<Arc<AppState>> {
    post(
        move |State(s): State<Arc<AppState>>,
              identity: Option<Extension<ClientIdentity>>,
              headers: HeaderMap,
              body: Body| {
            let gate = Arc::clone(&gate);
            let verified = identity.is_some_and(|Extension(i)| i.verified);
            async move { answer(s, gate, verified, headers, body, path).await }
        },
    )
}

/// The webhook's router, over shared state. A plain function so tests can drive it without a socket.
pub fn router(state: Arc<AppState>, limits: Limits) -> Router {
    let gate = Arc::new(Gate {
        limits,
        bytes: Semaphore::new(limits.max_inflight_bytes.min(Semaphore::MAX_PERMITS)),
        heavy: Arc::new(Semaphore::new(limits.heavy_reviews.max(1))),
    });
    // One limit shared by both review routes (Router::layer would clone a plain ConcurrencyLimit per
    // route); probes stay outside it so a busy server still answers /healthz. The timeout below wraps it,
    // so time spent waiting for a slot counts.
    let reviews = Router::new()
        .route("/validate", review_route(Arc::clone(&gate), Path::Validate))
        .route("/mutate", review_route(gate, Path::Mutate))
        .route_layer(tower::limit::GlobalConcurrencyLimitLayer::new(limits.concurrency));
    Router::new()
        .merge(reviews)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        // After the routes: it applies to the method routers registered so far.
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error while handling the request",
            )
        }))
        // tower-http's TimeoutLayer answers with an empty body; the API server logs a webhook's error body,
        // so say what happened in the same JSON shape as every other error.
        .layer(
            tower::ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |_: tower::BoxError| async move {
                    error_response(
                        StatusCode::REQUEST_TIMEOUT,
                        &format!(
                            "the request took longer than {:?} (its body may not have arrived)",
                            limits.request_timeout
                        ),
                    )
                }))
                .layer(tower::timeout::TimeoutLayer::new(limits.request_timeout)),
        )
        .layer(TraceLayer::new_for_http())
}

/// A short JSON error body.
pub(crate) fn error_response(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": message, "code": status.as_u16() })),
    )
        .into_response()
}

async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "no such route; volguard serves POST /validate and POST /mutate",
    )
}

async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed; volguard serves POST /validate, POST /mutate, GET /healthz and GET /readyz",
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    match state.readiness() {
        Ok(()) => "ok".into_response(),
        Err(why) => error_response(StatusCode::SERVICE_UNAVAILABLE, &why),
    }
}

#[derive(Clone, Copy)]
enum Path {
    Validate,
    Mutate,
}

impl Path {
    fn as_str(self) -> &'static str {
        match self {
            Path::Validate => "validate",
            Path::Mutate => "mutate",
        }
    }
}

/// The declared `Content-Length`, if any.
fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

fn too_large(max: usize) -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the body is larger than {max} bytes"),
    )
}

/// Why a body was not read.
enum Unreadable {
    TooLarge,
    Busy,
    Broken(String),
}

/// Reads a body of at most the limit, holding one permit of the bytes-in-flight budget per byte: all of a
/// declared length up front (refused before it is read), else frame by frame as it arrives.
async fn read_budgeted(
    body: Body,
    declared: Option<usize>,
    gate: &Gate,
) -> Result<(Bytes, Option<tokio::sync::SemaphorePermit<'_>>), Unreadable> {
    let max = gate.limits.max_body_bytes;
    let take = |n: usize| gate.bytes.try_acquire_many(u32::try_from(n).unwrap_or(u32::MAX));
    let mut held = match declared {
        Some(n) => Some(take(n).map_err(|_| Unreadable::Busy)?),
        None => None,
    };
    let mut body = body;
    let mut read = Read::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Unreadable::Broken(e.to_string()))?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        if read.len() + chunk.len() > max {
            return Err(Unreadable::TooLarge);
        }
        if declared.is_none() && !chunk.is_empty() {
            let more = take(chunk.len()).map_err(|_| Unreadable::Busy)?;
            match held.as_mut() {
                Some(h) => h.merge(more),
                None => held = Some(more),
            }
        }
        read.push(chunk, declared, max);
    }
    Ok((read.into_bytes(), held))
}

/// A body as its frames arrive. A body that comes whole in one frame (a review read with its headers,
/// the common case over HTTP/1.1) stays the buffer hyper read it into. Any other is copied as it
/// arrives, into one buffer of the declared length, so no frame holds on to hyper's read buffer while
/// the next is read.
#[derive(Default)]
enum Read {
    #[default]
    Empty,
    Whole(Bytes),
    Copied(Vec<u8>),
}

impl Read {
    fn len(&self) -> usize {
        match self {
            Read::Empty => 0,
            Read::Whole(b) => b.len(),
            Read::Copied(v) => v.len(),
        }
    }

    /// Adds a frame of a body of `declared` length (if declared), of at most `max` bytes.
    fn push(&mut self, chunk: Bytes, declared: Option<usize>, max: usize) {
        if chunk.is_empty() {
            return;
        }
        *self = match std::mem::take(self) {
            Read::Empty if declared == Some(chunk.len()) => Read::Whole(chunk),
            Read::Empty => {
                let mut copied = Vec::with_capacity(declared.unwrap_or(0).min(max).max(chunk.len()));
                copied.extend_from_slice(&chunk);
                Read::Copied(copied)
            }
            // A body longer than it declared: hyper stops at the declared length, but be exact anyway.
            Read::Whole(first) => {
                let mut copied = Vec::with_capacity(first.len() + chunk.len());
                copied.extend_from_slice(&first);
                copied.extend_from_slice(&chunk);
                Read::Copied(copied)
            }
            Read::Copied(mut copied) => {
                copied.extend_from_slice(&chunk);
                Read::Copied(copied)
            }
        };
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Read::Empty => Bytes::new(),
            Read::Whole(b) => b,
            Read::Copied(v) => Bytes::from(v),
        }
    }
}

/// The `kind` metric label: a kind of the table, or `other` (a label set a caller cannot grow).
fn kind_label(kind: &str) -> &'static str {
    Kind::from_name(kind).map_or("other", Kind::as_str)
}

fn operation_label(operation: &Operation) -> &'static str {
    match operation {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

// The review's span is at debug: at the default `info` its fields are never formatted, which cost a few
// microseconds a review. Warnings carry what they need themselves.
#[instrument(name = "review", level = "debug", skip_all, fields(path = path.as_str(), uid = Empty, kind = Empty, namespace = Empty,
    name = Empty, operation = Empty, dry_run = Empty, decision = Empty, duration_us = Empty))]
async fn answer(
    state: Arc<AppState>,
    gate: Arc<Gate>,
    verified: bool,
    headers: HeaderMap,
    body: Body,
    path: Path,
) -> Response {
    let started = Instant::now();
    let limits = gate.limits;
    if limits.require_client_cert && !verified {
        state.metrics.refused(Refusal::ClientCertificate);
        return error_response(
            StatusCode::FORBIDDEN,
            "volguard answers reviews only from clients presenting a certificate signed by its --client-ca",
        );
    }
    // Past this the failure mode answers, leaving time to write the answer before the outer timeout.
    let deadline = tokio::time::Instant::from_std(started) + limits.request_timeout.mul_f32(0.9);
    let declared = content_length(&headers);
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        state.metrics.refused(Refusal::BodyTooLarge);
        return too_large(limits.max_body_bytes);
    }
    let (bytes, _bytes_held) = match read_budgeted(body, declared, &gate).await {
        Ok(read) => read,
        Err(Unreadable::TooLarge) => {
            state.metrics.refused(Refusal::BodyTooLarge);
            return too_large(limits.max_body_bytes);
        }
        Err(Unreadable::Busy) => {
            state.metrics.refused(Refusal::Busy);
            let mut response = error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "volguard is busy: {} bytes of reviews are already being read (--max-inflight-bytes); retry",
                    limits.max_inflight_bytes
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return response;
        }
        Err(Unreadable::Broken(e)) => {
            return error_response(StatusCode::BAD_REQUEST, &format!("could not read the body: {e}"));
        }
    };
    if state.baseline_allow_all {
        return allow_all(&state, &bytes, path, started);
    }
    let policies = state.policies();
    let heavy = bytes.len() > INLINE_BODY_BYTES;
    let _heavy_held = if heavy {
        match tokio::time::timeout_at(deadline, Arc::clone(&gate.heavy).acquire_owned()).await {
            Ok(Ok(permit)) => Some(permit),
            _ => return late(&state, &bytes, &policies, path, started, None),
        }
    } else {
        None
    };
    let parsed = if heavy {
        let (b, object_limits) = (bytes.clone(), limits.objects);
        let work = tokio::task::spawn_blocking(move || read_review(&b, &object_limits));
        match tokio::time::timeout_at(deadline, work).await {
            Ok(Ok(parsed)) => parsed,
            _ => return late(&state, &bytes, &policies, path, started, None),
        }
    } else {
        read_review(&bytes, &limits.objects)
    };
    let review = match parsed {
        Ok(review) => review,
        Err(Unread::Review(e)) => return unreadable(&state, path, &e),
        Err(Unread::TooLarge(e)) => return over_limit(&state, &bytes, &policies, path, started, &e),
    };
    record(&review);
    let (operation, kind) = (operation_label(&review.operation), kind_label(&review.kind.kind));
    // Only CREATE and UPDATE are judged; fetching for the others would be wasted round trips.
    let judged = matches!(review.operation, Operation::Create | Operation::Update);
    let extra = match (&state.prefetch, &review.object) {
        (Some(p), Some(object)) if judged => {
            match tokio::time::timeout_at(deadline, p.prefetch(object)).await {
                Ok(extra) => extra,
                Err(_) => return late(&state, &bytes, &policies, path, started, Some(&review)),
            }
        }
        _ => Prefetched::default(),
    };
    let outcome = if heavy {
        let (s, p, object_limits) = (Arc::clone(&state), Arc::clone(&policies), limits.objects);
        let work = tokio::task::spawn_blocking(move || {
            let outcome = decide(&s, &p, &review, extra, path, &object_limits);
            (review, outcome)
        });
        match tokio::time::timeout_at(deadline, work).await {
            Ok(Ok((_, outcome))) => outcome,
            _ => return late(&state, &bytes, &policies, path, started, None),
        }
    } else {
        decide(&state, &policies, &review, extra, path, &limits.objects)
    };
    respond(&state, path, (operation, kind), &outcome, started)
}

/// Why a body was not read into a review.
enum Unread {
    Review(admission::ReviewError),
    TooLarge(ScanError),
}

/// Decodes a review; a large body's objects are counted first and refused over the limits.
fn read_review(bytes: &[u8], limits: &ObjectLimits) -> Result<Review, Unread> {
    if bytes.len() > INLINE_BODY_BYTES {
        match admission::scan(bytes, limits) {
            Ok(()) | Err(ScanError::Malformed) => {}
            Err(e) => return Err(Unread::TooLarge(e)),
        }
    }
    admission::parse(bytes).map_err(Unread::Review)
}

fn decide(
    state: &AppState,
    policies: &PolicySet,
    review: &Review,
    extra: Prefetched,
    path: Path,
    limits: &ObjectLimits,
) -> Outcome {
    let lookup = Overlay::new(state.lookup.as_ref(), extra);
    match path {
        Path::Validate => admission::validate_within(review, &lookup, policies, limits),
        Path::Mutate => admission::mutate_within(review, &lookup, policies, limits),
    }
}

/// Puts the review's identity on the span. Request fields are the caller's: their control characters
/// are escaped so a crafted name cannot forge log lines.
fn record(review: &Review) {
    let span = Span::current();
    // At the default `info` the span is off: nothing to escape for it.
    if span.is_disabled() {
        return;
    }
    span.record("uid", super::log::escaped(&review.uid).as_ref());
    span.record("kind", kind_label(&review.kind.kind));
    span.record(
        "namespace",
        super::log::escaped(review.namespace.as_deref().unwrap_or("")).as_ref(),
    );
    span.record("name", super::log::escaped(&review.name).as_ref());
    span.record("operation", operation_label(&review.operation));
    span.record("dry_run", review.dry_run);
}

/// Sends the answer, counted by `(operation, kind)`.
fn respond(
    state: &AppState,
    path: Path,
    (operation, kind): (&'static str, &'static str),
    outcome: &Outcome,
    started: Instant,
) -> Response {
    let decision = match outcome.verdict {
        Verdict::Allow if outcome.patched => "patched",
        Verdict::Allow => "allowed",
        Verdict::Warn => "warned",
        Verdict::Deny => "denied",
    };
    let elapsed = started.elapsed();
    let span = Span::current();
    span.record("decision", decision);
    span.record(
        "duration_us",
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
    );
    state.metrics.review(path.as_str(), operation, kind, decision);
    for rule in &outcome.rules {
        state.metrics.finding(rule.as_str());
    }
    state.metrics.observe(path.as_str(), elapsed.as_secs_f64());
    debug!(rules = ?outcome.rules, "Reviewed");
    axum::Json(admission::response::answer(&outcome.response)).into_response()
}

/// The answer when the decision did not come in time: the failure mode, saying so.
fn late(
    state: &AppState,
    bytes: &[u8],
    policies: &PolicySet,
    path: Path,
    started: Instant,
    review: Option<&Review>,
) -> Response {
    state.metrics.refused(Refusal::Deadline);
    let why = format!(
        "volguard could not decide within {} ms (the review waited for the server or a lookup)",
        started.elapsed().as_millis()
    );
    let uid = review.map(|r| super::log::escaped(&r.uid).into_owned());
    warn!(path = path.as_str(), uid, why, "Review not decided in time");
    undecided(state, bytes, policies, path, started, review, &why)
}

/// The answer for a review whose object goes over a limit, known before it was decoded.
fn over_limit(
    state: &AppState,
    bytes: &[u8],
    policies: &PolicySet,
    path: Path,
    started: Instant,
    e: &ScanError,
) -> Response {
    state.metrics.refused(Refusal::ObjectLimit);
    let why = match e {
        ScanError::Exceeded { field, exceeded } => {
            format!("volguard could not judge the request's {field}: {exceeded}")
        }
        ScanError::Malformed => "volguard could not read the request".to_owned(),
    };
    undecided(state, bytes, policies, path, started, None, &why)
}

fn undecided(
    state: &AppState,
    bytes: &[u8],
    policies: &PolicySet,
    path: Path,
    started: Instant,
    review: Option<&Review>,
    why: &str,
) -> Response {
    let (outcome, labels) = match review {
        Some(r) => {
            let mode = r.object.as_ref().and_then(|o| policies.failure_mode_for(o));
            let labels = (operation_label(&r.operation), kind_label(&r.kind.kind));
            (admission::undecided(r, mode, why.to_owned()), labels)
        }
        None => match admission::uid_of(bytes) {
            Ok(uid) => (
                Outcome::from_response(admission::undecided_uid(&uid, policies, why)),
                ("unknown", "other"),
            ),
            Err(e) => return unreadable(state, path, &e),
        },
    };
    respond(state, path, labels, &outcome, started)
}

/// A body that is not a review volguard can read: logged, counted as `invalid`, answered 400 saying why.
fn unreadable(state: &AppState, path: Path, e: &admission::ReviewError) -> Response {
    warn!(path = path.as_str(), error = %super::log::escaped(&e.to_string()), "Unreadable review");
    state.metrics.review(path.as_str(), "unknown", "other", "invalid");
    error_response(StatusCode::BAD_REQUEST, &e.to_string())
}

/// The benchmark baseline's answer: the uid read, everything allowed, with the same span, log line and
/// metrics as a real review (operation and kind are not read, so they count as `unknown`).
fn allow_all(state: &AppState, bytes: &[u8], path: Path, started: Instant) -> Response {
    let answer = match baseline::allow(bytes) {
        Ok(a) => a,
        Err(e) => return unreadable(state, path, &e),
    };
    let elapsed = started.elapsed();
    let span = Span::current();
    span.record("uid", answer.uid());
    span.record("decision", "allowed");
    span.record(
        "duration_us",
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
    );
    state.metrics.review(path.as_str(), "unknown", "other", "allowed");
    state.metrics.observe(path.as_str(), elapsed.as_secs_f64());
    debug!(rules = %"[]", "Reviewed");
    axum::Json(answer).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_whole_in_one_frame_is_the_buffer_it_came_in() {
        let frame = Bytes::from_static(br#"{"kind":"AdmissionReview"}"#);
        let mut read = Read::default();
        read.push(Bytes::new(), Some(26), 100);
        read.push(frame.clone(), Some(26), 100);
        read.push(Bytes::new(), Some(26), 100);
        let body = read.into_bytes();
        assert_eq!(body, frame);
        assert_eq!(body.as_ptr(), frame.as_ptr(), "not copied");
    }

    #[test]
    fn a_body_in_several_frames_or_undeclared_is_copied_in_order() {
        let body = Bytes::from_static(br#"{"kind":"AdmissionReview"}"#);
        for declared in [Some(26), None] {
            let mut read = Read::default();
            let mut frames = Vec::new();
            for part in [&b"{\"kind\":"[..], b"", b"\"Admission", b"Review\"}"] {
                let frame = Bytes::copy_from_slice(part);
                frames.push(frame.clone());
                read.push(frame, declared, 100);
            }
            assert_eq!(read.len(), 26);
            let read = read.into_bytes();
            assert_eq!(read, body, "{declared:?}");
            assert!(
                frames.iter().all(|f| f.as_ptr() != read.as_ptr()),
                "copied, not held"
            );
        }
        // More than was declared after a whole frame (hyper stops at the declared length): still exact.
        let mut read = Read::default();
        read.push(Bytes::from_static(b"{\"kind\":"), Some(8), 100);
        read.push(Bytes::from_static(b"\"AdmissionReview\"}"), Some(8), 100);
        assert_eq!(read.into_bytes(), body);
        // A single frame without a declared length is copied too: hyper's buffer is not held.
        let mut read = Read::default();
        read.push(body.clone(), None, 100);
        assert_ne!(read.into_bytes().as_ptr(), body.as_ptr());
        assert_eq!(Read::default().into_bytes(), Bytes::new());
    }
}
