//! The HTTP API (axum). Every error is `{"error": {"code": "...", "message": "..."}}` with its status, mapped
//! in one place ([`ApiError`]'s `IntoResponse`). Routes:
//! - `POST /api/v1/assist-sessions` (operator key): create a remote-assist session.
//! - `GET /api/v1/assist-sessions/{id}`, `DELETE /api/v1/assist-sessions/{id}` (operator key).
//! - `GET /healthz` (alive), `GET /readyz` (accepting sessions).
//!
//! Metrics are served by [`metrics_router`] on their own listener.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::core::{EndReason, SessionId};
use crate::protocol::{ErrorCode, ALPN};
use crate::relay::{Relay, RelayError};

/// Request bodies are capped at this size. The assist-session endpoints read no body, so nothing is refused
/// today; `payload_too_large` (docs/PROTOCOL.md) is reserved for endpoints that will.
const MAX_BODY: usize = 64 << 10;

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    pub relay: Arc<Relay>,
    pub operator_key: String,
    pub quic_advertise: String,
    pub cert_sha256: String,
}

/// An error answered as JSON.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({ "error": { "code": self.code.as_str(), "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<RelayError> for ApiError {
    fn from(e: RelayError) -> ApiError {
        let status = match e.code() {
            ErrorCode::Busy | ErrorCode::GoingAway => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::SessionNotFound => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Checks `Authorization: Bearer <operator key>`. Digests are compared, so the comparison takes the same
/// time whatever the key.
fn require_operator(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let digest = |s: &str| {
        ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
            .as_ref()
            .to_vec()
    };
    if given.is_empty() || digest(given) != digest(&state.operator_key) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "operator key required",
        ));
    }
    Ok(())
}

/// The reply to `POST /api/v1/assist-sessions`.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct CreatedSession {
    pub session_id: String,
    /// Digits only.
    pub code: String,
    /// For reading out: groups of four.
    pub code_display: String,
    pub code_expires_at: String,
    pub technician_token: String,
    pub relay: RelayInfo,
}

/// How to reach the relay.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct RelayInfo {
    pub quic: String,
    pub alpn: String,
    pub cert_sha256: String,
}

async fn create_session(
    State(s): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_operator(&s, &headers)?;
    let new = s.relay.create_session()?;
    let body = CreatedSession {
        session_id: new.id.to_string(),
        code: new.code,
        code_display: new.code_display,
        code_expires_at: rfc3339(new.expires_at),
        technician_token: new.technician_token,
        relay: RelayInfo {
            quic: s.quic_advertise.clone(),
            alpn: String::from_utf8_lossy(ALPN).into_owned(),
            cert_sha256: s.cert_sha256.clone(),
        },
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "session id must be 32 hex digits",
        )
    })
}

async fn get_session(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_operator(&s, &headers)?;
    let st = s
        .relay
        .session_state(session_id(&id)?)
        .ok_or(RelayError::SessionNotFound)?;
    Ok(Json(serde_json::json!({
        "session_id": st.id.to_string(),
        "created_at": rfc3339(st.created_at),
        "code_expires_at": rfc3339(st.code_expires_at),
        "state": if st.paired { "paired" } else { "waiting" },
    }))
    .into_response())
}

async fn end_session(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_operator(&s, &headers)?;
    if s.relay
        .end_session(session_id(&id)?, EndReason::ByOperator)
        .await
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(RelayError::SessionNotFound.into())
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(State(s): State<ApiState>) -> Response {
    if s.relay.shutdown.is_cancelled() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::GoingAway,
            "shutting down",
        )
        .into_response()
    } else {
        Json(serde_json::json!({ "status": "ready", "sessions": s.relay.session_count() }))
            .into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::BadRequest,
        "no such endpoint",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        "method not allowed here",
    )
}

/// The API router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/api/v1/assist-sessions",
            axum::routing::post(create_session),
        )
        .route(
            "/api/v1/assist-sessions/{id}",
            get(get_session).delete(end_session),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
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
