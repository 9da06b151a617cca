//! The HTTP API (axum), served under `/api/v1` with its OpenAPI 3 document at `/api/v1/openapi.json`.
//!
//! Every error is `{"error": {"code": "...", "message": "..."}}` with its status, mapped in one place
//! ([`ApiError`] and its `From` impls). The handlers are thin: they check who calls ([`auth::Caller`]), parse,
//! and call the services ([`crate::accounts`], [`crate::tickets`]), which own the SQL.
//! - [`assist`]: remote-assist sessions with the service credential (operator key);
//! - [`auth`]: login, logout, first-login setup (password change, phone binding);
//! - [`admin`]: users, approval rules, the outbox, the device registry;
//! - [`tickets`]: tickets, their workflow, messages, records, audit, remote assistance from a ticket;
//! - [`notify`]: notifications, listed and streamed (Server-Sent Events);
//! - [`kb`]: the knowledge base; [`attachments`]: files of tickets and articles;
//! - [`meetings`]: scheduled meetings, joining, recording, minutes;
//! - [`rtc`]: WebRTC signaling (an SDP offer in, the answer out) for browsers;
//! - [`web`]: the browser pages (customer, technician, meeting), embedded in the binary;
//! - `GET /healthz` (alive), `GET /readyz` (accepting sessions).
//!
//! Metrics are served by [`metrics_router`] on their own listener.

pub mod admin;
pub mod assist;
pub mod attachments;
pub mod auth;
pub mod kb;
pub mod meetings;
pub mod notify;
pub mod openapi;
pub mod rtc;
pub mod serve;
pub mod tickets;
pub mod web;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

pub use assist::{CreatedSession, RelayInfo};

use crate::accounts::{AccountError, Accounts};
use crate::protocol::ErrorCode;
use crate::relay::{Relay, RelayError};
use crate::store::StoreError;

/// JSON request bodies are capped at this size (attachments have their own limit,
/// `tickets.max_attachment_bytes`); a larger body is refused with 413 `payload_too_large`.
pub const MAX_JSON_BODY: usize = 256 << 10;

/// A request taking longer than this is answered 408 (streams of notifications are exempt).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    pub relay: Arc<Relay>,
    pub accounts: Accounts,
    pub desk: crate::tickets::desk::Desk,
    pub operator_key: String,
    pub quic_advertise: String,
    pub cert_sha256: String,
    /// The WebRTC endpoint (`None` when the relay or WebRTC is disabled).
    pub webrtc: Option<Arc<crate::transport::webrtc::WebRtc>>,
}

/// An error answered as JSON.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra fields beside `code` and `message` (e.g. `allowed` transitions).
    pub details: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (docs/API.md lists them).
    pub code: String,
    /// For people.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// 422 `validation_failed`: a field or query parameter breaks a rule (the message names it).
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }
    pub fn with(mut self, key: &str, value: serde_json::Value) -> ApiError {
        self.details
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut err = serde_json::Map::new();
        err.insert("code".into(), self.code.into());
        err.insert("message".into(), self.message.into());
        // A wait in the body is also the standard header.
        let retry = self
            .details
            .as_ref()
            .and_then(|d| d.get("retry_after_secs")?.as_u64());
        if let Some(d) = self.details {
            err.extend(d);
        }
        let mut res = (self.status, Json(serde_json::json!({ "error": err }))).into_response();
        if let Some(secs) = retry {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}

impl From<RelayError> for ApiError {
    fn from(e: RelayError) -> ApiError {
        let status = match e.code() {
            ErrorCode::Busy | ErrorCode::GoingAway => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::SessionNotFound => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code().as_str(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "database error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error (logged on the server)",
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> ApiError {
        StoreError::Sql(e).into()
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> ApiError {
        use AccountError as E;
        let (status, code) = match &e {
            E::BadCredentials => (StatusCode::UNAUTHORIZED, "bad_credentials"),
            E::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthorized"),
            E::WrongPassword => (StatusCode::FORBIDDEN, "wrong_password"),
            E::WeakPassword(_) => (StatusCode::UNPROCESSABLE_ENTITY, "weak_password"),
            E::BadVerification(_) => (StatusCode::UNPROCESSABLE_ENTITY, "bad_verification_code"),
            E::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            E::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            E::Taken(_) => (StatusCode::CONFLICT, "conflict"),
            E::NoSuchUser => (StatusCode::NOT_FOUND, "not_found"),
            E::Store(_) => {
                let E::Store(s) = e else { unreachable!() };
                return s.into();
            }
        };
        let retry = if let E::RateLimited(s) = &e {
            Some(*s)
        } else {
            None
        };
        let mut err = ApiError::new(status, code, e.to_string());
        if let Some(s) = retry {
            err = err.with("retry_after_secs", s.into());
        }
        err
    }
}

/// A numeric `{id}` path segment; anything else is 400 `bad_request`.
pub struct IdPath(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, ApiError> {
        match Path::<i64>::from_request_parts(parts, s).await {
            Ok(Path(id)) => Ok(IdPath(id)),
            Err(_) => Err(ApiError::bad_request(
                "the id in the path must be an integer",
            )),
        }
    }
}

/// A query string; a malformed one is 422 `validation_failed`.
pub struct QueryOf<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for QueryOf<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, s).await {
            Ok(Query(v)) => Ok(QueryOf(v)),
            Err(e) => Err(ApiError::validation(e.body_text())),
        }
    }
}

/// A JSON body that answers malformed JSON with our error shape (422 `validation_failed` or 400).
pub struct JsonBody<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(rej) => {
                use axum::extract::rejection::JsonRejection as R;
                let (status, code) = match &rej {
                    R::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
                    R::MissingJsonContentType(_) => {
                        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
                    }
                    _ if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
                    }
                    _ => (StatusCode::BAD_REQUEST, "bad_request"),
                };
                Err(ApiError::new(status, code, rej.body_text()))
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case), or `""`.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .unwrap_or("")
        .trim()
}

pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Object)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: 503 while shutting down.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Object), (status = 503, body = ErrorBody)))]
async fn readyz(State(s): State<ApiState>) -> Response {
    if s.relay.shutdown.is_cancelled() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::GoingAway.as_str(),
            "shutting down",
        )
        .into_response()
    } else {
        Json(serde_json::json!({ "status": "ready", "sessions": s.relay.session_count() }))
            .into_response()
    }
}

/// Turns any error answer that is not already JSON (a rejected path or query parameter, a body over the
/// limit, a timeout) into the JSON error shape, so every error a client sees has a code and a message.
async fn json_errors(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return res;
    }
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::UNPROCESSABLE_ENTITY => "validation_failed",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let (_, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message
    };
    ApiError::new(status, code, message).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed here",
    )
}

/// The API router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/assist-sessions", post(assist::create_session))
        .route(
            "/api/v1/assist-sessions/{id}",
            get(assist::get_session).delete(assist::end_session),
        )
        .merge(auth::routes())
        .merge(admin::routes())
        .merge(tickets::routes())
        .merge(notify::routes())
        .merge(kb::routes())
        .merge(attachments::routes())
        .merge(meetings::routes())
        .merge(rtc::routes())
        .merge(web::routes())
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        // A 5xx answer is the handler's decision, logged there where it is a fault (503 `busy` is not):
        // the trace layer only notes it.
        .layer(
            tower_http::trace::TraceLayer::new_for_http().on_failure(
                tower_http::trace::DefaultOnFailure::new().level(tracing::Level::DEBUG),
            ),
        )
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

/// `GET /metrics` in the Prometheus text format.
pub fn metrics_router(registry: prometheus::Registry) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let r = registry.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    crate::metrics::render(&r),
                )
            }
        }),
    )
}
