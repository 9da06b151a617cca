//! `/api/v1/assist-sessions`: remote-assist sessions created with the service credential (the operator key),
//! for automation, the demo clients and tests. Logged-in technicians start sessions from a ticket instead
//! (`POST /api/v1/tickets/{id}/assist`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::{rfc3339, ApiError, ApiState};
use crate::core::{EndReason, SessionId};
use crate::protocol::{ErrorCode, ALPN};
use crate::relay::{NewSession, RelayError};

/// Checks `Authorization: Bearer <operator key>`. Digests are compared, so the comparison takes the same
/// time whatever the key.
pub(crate) fn is_operator(state: &ApiState, headers: &HeaderMap) -> bool {
    let given = super::bearer_token(headers);
    let digest = |s: &str| {
        ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
            .as_ref()
            .to_vec()
    };
    !given.is_empty() && digest(given) == digest(&state.operator_key)
}

fn require_operator(state: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    if is_operator(state, headers) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized.as_str(),
            "the operator key is missing or wrong (Authorization: Bearer <operator key>)",
        ))
    }
}

/// The reply to `POST /api/v1/assist-sessions`.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RelayInfo {
    pub quic: String,
    pub alpn: String,
    pub cert_sha256: String,
}

/// Refuses with 503 `relay_disabled` when the server runs without its relay (`--no-relay`).
pub(crate) fn require_relay(s: &ApiState) -> Result<(), ApiError> {
    if s.relay.cfg.server.relay_enabled {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay_disabled",
            "this server runs without its relay (--no-relay): remote assistance is not available here",
        ))
    }
}

/// The JSON answer for a session just created (also used by `POST /api/v1/tickets/{id}/assist`).
pub(crate) fn created_body(s: &ApiState, new: NewSession) -> CreatedSession {
    CreatedSession {
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
    }
}

/// Creates a remote-assist session (service credential).
#[utoipa::path(post, path = "/api/v1/assist-sessions", tag = "assist",
    security(("operator_key" = [])),
    responses((status = 201, body = CreatedSession), (status = 401, body = super::ErrorBody),
        (status = 503, body = super::ErrorBody)))]
pub(crate) async fn create_session(
    State(s): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_operator(&s, &headers)?;
    require_relay(&s)?;
    let new = s.relay.create_session()?;
    Ok((StatusCode::CREATED, Json(created_body(&s, new))).into_response())
}

fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest.as_str(),
            "session id must be 32 hex digits",
        )
    })
}

/// A session's state (service credential).
#[utoipa::path(get, path = "/api/v1/assist-sessions/{id}", tag = "assist",
    security(("operator_key" = [])), params(("id" = String, Path, description = "32 hex digits")),
    responses((status = 200, body = SessionStateBody), (status = 401, body = super::ErrorBody),
        (status = 404, body = super::ErrorBody)))]
pub(crate) async fn get_session(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_operator(&s, &headers)?;
    let st = s
        .relay
        .session_state(session_id(&id)?)
        .ok_or(RelayError::SessionNotFound)?;
    Ok(Json(SessionStateBody {
        session_id: st.id.to_string(),
        created_at: rfc3339(st.created_at),
        code_expires_at: rfc3339(st.code_expires_at),
        state: if st.paired { "paired" } else { "waiting" }.into(),
    })
    .into_response())
}

/// Ends a session (service credential).
#[utoipa::path(delete, path = "/api/v1/assist-sessions/{id}", tag = "assist",
    security(("operator_key" = [])), params(("id" = String, Path, description = "32 hex digits")),
    responses((status = 204), (status = 401, body = super::ErrorBody), (status = 404, body = super::ErrorBody)))]
pub(crate) async fn end_session(
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

/// A session's state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionStateBody {
    pub session_id: String,
    pub created_at: String,
    pub code_expires_at: String,
    /// `waiting` (code not yet redeemed) or `paired`.
    pub state: String,
}
