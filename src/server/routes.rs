//! The HTTP routes: `POST /validate`, `POST /mutate`, `GET /healthz`, `GET /readyz`.
//!
//! Handlers read the body (bounded), decode the review, call [`admission`](crate::admission), and answer.
//! A body that is not an AdmissionReview gets a 4xx with a short JSON error; a review that could be read
//! always gets a 200 with a real AdmissionResponse.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use tracing::{Span, field::Empty, info, instrument, warn};

use super::baseline;
use super::state::AppState;
use crate::admission::{self, Outcome};
use crate::lookup::{Overlay, Prefetched};
use crate::policy::Verdict;
use kube::core::admission::Operation;

/// The largest body accepted (the API server's own request limit is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Limits the router applies.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long one request may take, body included: below the webhook's `timeoutSeconds`.
    pub request_timeout: Duration,
    /// How many requests are handled at once; the rest wait.
    pub concurrency: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(8),
            concurrency: 1024,
        }
    }
}

/// The webhook's router, over shared state. A plain function so tests can drive it without a socket.
pub fn router(state: Arc<AppState>, limits: Limits) -> Router {
    // One limit shared by both review routes (Router::layer would clone a plain ConcurrencyLimit per
    // route); probes stay outside it so a busy server still answers /healthz. The timeout below wraps it,
    // so time spent waiting for a slot counts.
    let reviews = Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
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
pub fn error_response(status: StatusCode, message: &str) -> Response {
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

async fn validate(State(state): State<Arc<AppState>>, body: Body) -> Response {
    answer(&state, body, Path::Validate).await
}

async fn mutate(State(state): State<Arc<AppState>>, body: Body) -> Response {
    answer(&state, body, Path::Mutate).await
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

/// Reads at most [`MAX_BODY_BYTES`]; a longer body is a 413.
async fn read_body(body: Body) -> Result<axum::body::Bytes, Response> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )),
        Err(e) => Err(error_response(
            StatusCode::BAD_REQUEST,
            &format!("could not read the body: {e}"),
        )),
    }
}

#[instrument(name = "review", skip_all, fields(path = path.as_str(), uid = Empty, kind = Empty, namespace = Empty,
    name = Empty, operation = Empty, dry_run = Empty, decision = Empty, duration_us = Empty))]
async fn answer(state: &AppState, body: Body, path: Path) -> Response {
    let started = Instant::now();
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    if state.baseline_allow_all {
        return allow_all(state, &bytes, path, started);
    }
    let review = match admission::parse(&bytes) {
        Ok(r) => r,
        Err(e) => return unreadable(state, path, &e),
    };
    let span = Span::current();
    span.record("uid", review.uid.as_str());
    span.record("kind", review.kind.kind.as_str());
    span.record("namespace", review.namespace.as_deref().unwrap_or(""));
    span.record("name", review.name.as_str());
    let operation = format!("{:?}", review.operation).to_uppercase();
    span.record("operation", operation.as_str());
    span.record("dry_run", review.dry_run);

    let policies = state.policies();
    // Only CREATE and UPDATE are judged; fetching for the others would be wasted round trips.
    let judged = matches!(review.operation, Operation::Create | Operation::Update);
    let extra = match (&state.prefetch, &review.object) {
        (Some(p), Some(object)) if judged => p.prefetch(object).await,
        _ => Prefetched::default(),
    };
    let lookup = Overlay::new(state.lookup.as_ref(), extra);
    let outcome: Outcome = match path {
        Path::Validate => admission::validate(&review, &lookup, &policies),
        Path::Mutate => admission::mutate(&review, &bytes, &lookup, &policies),
    };
    let decision = match outcome.verdict {
        Verdict::Allow if outcome.patched => "patched",
        Verdict::Allow => "allowed",
        Verdict::Warn => "warned",
        Verdict::Deny => "denied",
    };
    let elapsed = started.elapsed();
    span.record("decision", decision);
    span.record(
        "duration_us",
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
    );
    state
        .metrics
        .review(path.as_str(), operation, review.kind.kind.clone(), decision);
    for rule in &outcome.rules {
        state.metrics.finding(rule.as_str());
    }
    state.metrics.observe(path.as_str(), elapsed.as_secs_f64());
    info!(rules = ?outcome.rules, "Reviewed");
    axum::Json(admission::response::answer(&outcome.response)).into_response()
}

/// A body that is not a review volguard can read: logged, counted as `invalid`, answered 400 saying why.
fn unreadable(state: &AppState, path: Path, e: &admission::ReviewError) -> Response {
    warn!(error = %e, "Unreadable review");
    state
        .metrics
        .review(path.as_str(), "unknown".into(), "unknown".into(), "invalid");
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
    state
        .metrics
        .review(path.as_str(), "unknown".into(), "unknown".into(), "allowed");
    state.metrics.observe(path.as_str(), elapsed.as_secs_f64());
    info!(rules = %"[]", "Reviewed");
    axum::Json(answer).into_response()
}
