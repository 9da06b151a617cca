//! Notifications: the stored list, marking read, and a live Server-Sent Events stream.
//! - `GET /api/v1/notifications?unread=true`;
//! - `POST /api/v1/notifications/{id}/read`;
//! - `GET /api/v1/notifications/stream`: `event: notification` with the notification as JSON data, one per
//!   new notification of the caller; `event: lagged` when the stream fell behind (reload the list); a
//!   comment every 15 s keeps proxies from closing it. The stream ends when the login session is revoked
//!   or expires (checked at each event and keep-alive).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::auth::Caller;
use super::{ApiError, ApiState, ErrorBody};
use crate::tickets::notify::Notification;

/// How often an idle stream sends a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `?unread=true` lists only unread notifications.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    pub unread: Option<bool>,
}

/// The caller's notifications, newest first (at most 200).
#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications", security(("bearer" = [])),
    params(NotificationQuery),
    responses((status = 200, body = [Notification]), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_notifications(
    State(s): State<ApiState>,
    c: Caller,
    super::QueryOf(q): super::QueryOf<NotificationQuery>,
) -> Result<Json<Vec<Notification>>, ApiError> {
    Ok(Json(
        s.desk
            .notifications(c.id(), q.unread.unwrap_or(false))
            .await?,
    ))
}

/// Marks one of the caller's notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn mark_notification_read(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if s.desk.mark_read(c.id(), id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("notification"))
    }
}

/// Live notifications of the caller (Server-Sent Events, `text/event-stream`).
#[utoipa::path(get, path = "/api/v1/notifications/stream", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of `notification` events",
        content_type = "text/event-stream", body = String), (status = 401, body = ErrorBody)))]
pub(crate) async fn stream_notifications(
    State(s): State<ApiState>,
    c: Caller,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = s.desk.hub.subscribe();
    let state = (rx, s, c);
    let events = futures_util::stream::unfold(state, |(mut rx, s, c)| async move {
        loop {
            let next = tokio::time::timeout(KEEP_ALIVE, rx.recv()).await;
            // The session may have been revoked (logout, password change, user disabled) meanwhile.
            if s.accounts.authenticate(&c.token).await.is_err() {
                return None;
            }
            let event = match next {
                Err(_) => Event::default().comment("keep-alive"),
                Ok(Ok(n)) if n.user_id == c.id() => Event::default()
                    .event("notification")
                    .id(n.id.to_string())
                    .json_data(&n)
                    .unwrap_or_else(|_| Event::default().comment("unencodable")),
                Ok(Ok(_)) => continue,
                Ok(Err(RecvError::Lagged(n))) => Event::default()
                    .event("lagged")
                    .data(format!("{n} notifications skipped; reload the list")),
                Ok(Err(RecvError::Closed)) => return None,
            };
            return Some((Ok(event), (rx, s, c)));
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE * 2))
}

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/notifications", get(list_notifications))
        .route(
            "/api/v1/notifications/{id}/read",
            post(mark_notification_read),
        )
        .route("/api/v1/notifications/stream", get(stream_notifications))
}
