//! WebRTC signaling (docs/PROTOCOL.md section 13.1): `POST /api/v1/rtc` takes an SDP offer and the HELLO's
//! mode and secret, and answers with the SDP answer once the peer's room has let it in; `DELETE
//! /api/v1/rtc/{peer}` ends the peer.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::Router;
use serde::Deserialize;

use super::{ApiError, ApiState};
use crate::protocol::{ErrorCode, Hello};
use crate::transport::webrtc::RtcConnectError;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/api/v1/rtc",
            post(connect).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/api/v1/rtc/{peer}", delete(disconnect))
}

/// The response header of a `201` carrying the room's resume token (section 13.1): a peer whose
/// connection never comes up (so never reads its WELCOME) enters again with `as=resume` and it.
pub const RESUME_TOKEN_HEADER: &str = "assist-resume-token";

/// How the peer enters: the HELLO mode (section 4.3) whose secret is the bearer.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RtcMode {
    Customer,
    Technician,
    Meeting,
    Guest,
    Resume,
}

/// The query string of `POST /api/v1/rtc`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectQuery {
    /// The HELLO mode.
    #[serde(rename = "as")]
    #[param(rename = "as")]
    pub mode: RtcMode,
    /// Customers: allow the technician to control (default false).
    #[serde(default)]
    pub allow_control: bool,
    /// Meeting participants: the name shown to the others.
    #[serde(default)]
    pub name: String,
}

/// The HTTP status for a close code a QUIC client would get (section 13.1).
fn status_of(code: ErrorCode) -> StatusCode {
    use ErrorCode::*;
    match code {
        InvalidOffer | BadRequest | ProtocolViolation => StatusCode::BAD_REQUEST,
        Unauthorized => StatusCode::UNAUTHORIZED,
        CodeUnknown | CodeExpired | CodeUsed | TokenInvalid | TokenExpired | ResumeRefused
        | Removed | MeetingNotStarted | SessionExpired | UnexpectedMessage => StatusCode::FORBIDDEN,
        SessionNotFound | SessionEnded | PeerGone | IdleTimeout | MaxDuration => {
            StatusCode::NOT_FOUND
        }
        RoleTaken | MeetingFull | Replaced => StatusCode::CONFLICT,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        UnsupportedCodec => StatusCode::UNPROCESSABLE_ENTITY,
        RateLimited | TooManySessions | TooManyConnections => StatusCode::TOO_MANY_REQUESTS,
        Busy | GoingAway => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The answer to a refused offer.
fn refusal(e: RtcConnectError) -> ApiError {
    let code = e.code();
    let err = ApiError::new(status_of(code), code.as_str(), e.to_string());
    match e {
        RtcConnectError::RateLimited(wait, _) => {
            // Whole seconds, rounded up, at least 1 (as the message says).
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            err.with("retry_after_secs", secs.max(1).into())
        }
        _ => err,
    }
}

/// Enters a WebRTC peer (browser) into a session or meeting: the SDP offer in, the answer out.
#[utoipa::path(post, path = "/api/v1/rtc", tag = "webrtc",
    params(ConnectQuery),
    request_body(content = String, content_type = "application/sdp",
        description = "the SDP offer, with a data channel labelled `control`"),
    security(("code_or_token" = [])),
    responses(
        (status = 201, description = "the SDP answer; `Location` is the peer's URL for DELETE; \
            `Assist-Resume-Token` the resume token for entering again with `as=resume`",
            content_type = "application/sdp", body = String),
        (status = 400, body = super::ErrorBody), (status = 401, body = super::ErrorBody),
        (status = 403, body = super::ErrorBody), (status = 404, body = super::ErrorBody),
        (status = 409, body = super::ErrorBody), (status = 413, body = super::ErrorBody),
        (status = 415, body = super::ErrorBody), (status = 422, body = super::ErrorBody),
        (status = 429, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub(crate) async fn connect(
    State(s): State<ApiState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    query: Result<Query<ConnectQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match answer_offer(s, remote, query, headers, body).await {
        Ok(res) => res,
        // Every refusal's one log line; a server fault is an error.
        Err(e) => {
            let from = remote.ip();
            if e.status.is_server_error() && e.code == ErrorCode::Internal.as_str() {
                tracing::error!(%from, error = %e.message, "WebRTC offer failed");
            } else {
                tracing::info!(%from, code = e.code, error = %e.message, "WebRTC offer refused");
            }
            e.into_response()
        }
    }
}

async fn answer_offer(
    s: ApiState,
    remote: SocketAddr,
    query: Result<Query<ConnectQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    super::assist::require_relay(&s)?;
    let Some(webrtc) = s.webrtc.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay_disabled",
            "WebRTC is disabled on this server (webrtc.enabled = false)",
        ));
    };
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "query: {} (as=customer|technician|meeting|guest|resume)",
            e.body_text()
        ))
    })?;
    let secret = super::bearer_token(&headers).to_owned();
    if secret.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized.as_str(),
            "Authorization: Bearer <code or token> required",
        ));
    }
    let sdp_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/sdp"));
    if !sdp_type {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the offer must be sent as Content-Type: application/sdp",
        ));
    }
    let max = s.relay.cfg.webrtc.max_offer_bytes.usize();
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::PayloadTooLarge.as_str(),
            format!("the offer exceeds webrtc.max_offer_bytes ({max} bytes)"),
        )
    })?;
    let Ok(offer) = std::str::from_utf8(&bytes) else {
        return Err(refusal(RtcConnectError::Offer(
            "the offer is not UTF-8".into(),
        )));
    };
    let hello = match q.mode {
        RtcMode::Customer => Hello::Customer {
            code: secret,
            allow_control: q.allow_control,
        },
        RtcMode::Technician => Hello::Technician { token: secret },
        RtcMode::Meeting => Hello::Meeting {
            token: secret,
            name: q.name,
        },
        RtcMode::Guest => Hello::MeetingCode {
            code: secret,
            name: q.name,
        },
        RtcMode::Resume => Hello::Resume { token: secret },
    };
    match webrtc.connect(remote.ip(), hello, offer).await {
        Ok(c) => {
            let location = format!("/api/v1/rtc/{}", c.id);
            let mut res = (
                StatusCode::CREATED,
                [
                    (header::CONTENT_TYPE, "application/sdp".to_string()),
                    (header::LOCATION, location),
                ],
                c.answer,
            )
                .into_response();
            if let Some(t) = c.resume_token.and_then(|t| HeaderValue::from_str(&t).ok()) {
                res.headers_mut().insert(RESUME_TOKEN_HEADER, t);
            }
            Ok(res)
        }
        Err(e) => Err(refusal(e)),
    }
}

/// Ends a WebRTC peer as if it had closed its connection.
#[utoipa::path(delete, path = "/api/v1/rtc/{peer}", tag = "webrtc",
    params(("peer" = String, Path, description = "the id from the `Location` of the answer")),
    responses((status = 204, description = "the peer is leaving"),
        (status = 404, body = super::ErrorBody), (status = 503, body = super::ErrorBody)))]
pub(crate) async fn disconnect(
    State(s): State<ApiState>,
    Path(peer): Path<String>,
) -> Result<StatusCode, ApiError> {
    let gone = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such WebRTC peer");
    let webrtc = s.webrtc.as_ref().ok_or_else(gone)?;
    if webrtc.disconnect(&peer) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(gone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_refusal_has_its_status() {
        for (code, status) in [
            (ErrorCode::InvalidOffer, 400),
            (ErrorCode::CodeUnknown, 403),
            (ErrorCode::TokenExpired, 403),
            (ErrorCode::SessionNotFound, 404),
            (ErrorCode::RoleTaken, 409),
            (ErrorCode::MeetingFull, 409),
            (ErrorCode::UnsupportedCodec, 422),
            (ErrorCode::RateLimited, 429),
            (ErrorCode::TooManySessions, 429),
            (ErrorCode::Busy, 503),
            (ErrorCode::GoingAway, 503),
        ] {
            assert_eq!(status_of(code).as_u16(), status, "{}", code.as_str());
        }
    }
}
