//! Tickets over HTTP: the report form, lists, the workflow, messages, processing records, the audit log,
//! and remote assistance from a ticket. Customers see only their own tickets (others are 404); staff see
//! all. The workflow itself is decided in [`crate::tickets`].
//! - `POST/GET /api/v1/tickets`, `GET /api/v1/tickets/{id}`;
//! - `POST /api/v1/tickets/{id}/approve` and `/assign` (supervisors), `/status` (assignee or reporter);
//! - `GET/POST /api/v1/tickets/{id}/messages`, `/records`; `GET /api/v1/tickets/{id}/audit` (staff);
//! - `POST /api/v1/tickets/{id}/assist` (the assignee): a relay session bound to the ticket.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::assist::{created_body, CreatedSession};
use super::auth::Caller;
use super::{ApiError, ApiState, ErrorBody, JsonBody, QueryOf};
use crate::accounts::Role;
use crate::relay::SessionSummary;
use crate::tickets::desk::{AuditEntry, Desk, DeskError, Message, NewTicket, Record, Ticket};
use crate::tickets::list::{Page, TicketFilter};
use crate::tickets::Status;

impl From<DeskError> for ApiError {
    fn from(e: DeskError) -> ApiError {
        match e {
            DeskError::NotFound => ApiError::not_found("ticket"),
            DeskError::Invalid(m) => ApiError::validation(m),
            DeskError::Forbidden(m) => ApiError::forbidden(m),
            DeskError::Transition { message, allowed } => {
                ApiError::new(StatusCode::CONFLICT, "invalid_transition", message)
                    .with("allowed", serde_json::to_value(allowed).unwrap_or_default())
            }
            DeskError::Store(s) => s.into(),
        }
    }
}

/// Ticket `id` if `c` may see it, and so add messages and attachments to it: staff every ticket, a customer
/// only its own. A ticket the caller may not see is "not found", so its existence does not leak.
pub(crate) async fn ticket_access(s: &ApiState, c: &Caller, id: i64) -> Result<Ticket, ApiError> {
    let t = s.desk.get(id).await?;
    if c.role().is_staff() || t.reporter_id == c.id() {
        Ok(t)
    } else {
        Err(ApiError::not_found("ticket"))
    }
}

/// Files a ticket (any logged-in user; the caller is the reporter).
#[utoipa::path(post, path = "/api/v1/tickets", tag = "tickets", security(("bearer" = [])),
    request_body = NewTicket,
    responses((status = 201, body = Ticket), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_ticket(
    State(s): State<ApiState>,
    c: Caller,
    JsonBody(t): JsonBody<NewTicket>,
) -> Result<(StatusCode, Json<Ticket>), ApiError> {
    Ok((StatusCode::CREATED, Json(s.desk.create(&c.user, &t).await?)))
}

/// Lists tickets, newest first (customers: only their own).
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", security(("bearer" = [])),
    params(TicketFilter),
    responses((status = 200, body = Page<Ticket>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn list_tickets(
    State(s): State<ApiState>,
    c: Caller,
    QueryOf(f): QueryOf<TicketFilter>,
) -> Result<Json<Page<Ticket>>, ApiError> {
    let only = (!c.role().is_staff()).then_some(c.id());
    let max = s.relay.cfg.tickets.max_page_size;
    Ok(Json(s.desk.list(&f, only, max).await?))
}

/// One ticket.
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Ticket), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get_ticket(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Ticket>, ApiError> {
    Ok(Json(ticket_access(&s, &c, id).await?))
}

/// Approves a ticket awaiting approval (supervisors).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/approve", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Ticket), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn approve_ticket(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Ticket>, ApiError> {
    c.require(Role::Supervisor)?;
    Ok(Json(s.desk.approve(&c.user, id).await?))
}

/// `POST /api/v1/tickets/{id}/assign`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    pub assignee_id: i64,
}

/// Assigns or reassigns a ticket (supervisors).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/assign", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = Assign,
    responses((status = 200, body = Ticket), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn assign_ticket(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
    JsonBody(a): JsonBody<Assign>,
) -> Result<Json<Ticket>, ApiError> {
    c.require(Role::Supervisor)?;
    Ok(Json(s.desk.assign(&c.user, id, a.assignee_id).await?))
}

/// `POST /api/v1/tickets/{id}/status`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// `in_progress` (start, or the reporter's "not solved"), `awaiting_confirmation`, `done`.
    pub status: Status,
    /// Required when the reporter says it is not solved.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Moves a ticket along its workflow; an illegal change is 409 `invalid_transition` with `allowed`.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/status", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = StatusChange,
    responses((status = 200, body = Ticket), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn set_ticket_status(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
    JsonBody(b): JsonBody<StatusChange>,
) -> Result<Json<Ticket>, ApiError> {
    ticket_access(&s, &c, id).await?;
    Ok(Json(
        s.desk
            .set_status(&c.user, id, b.status, b.reason.as_deref())
            .await?,
    ))
}

/// `POST /api/v1/tickets/{id}/messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub body: String,
    /// An internal note (staff only; customers never see it).
    #[serde(default)]
    pub internal: bool,
}

/// Messages of a ticket (customers do not see internal notes).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/messages", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = [Message]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_messages(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Message>>, ApiError> {
    ticket_access(&s, &c, id).await?;
    Ok(Json(s.desk.messages(id, c.role().is_staff()).await?))
}

/// Adds a message or an internal note.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = NewMessage,
    responses((status = 201, body = Message), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn add_message(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
    JsonBody(m): JsonBody<NewMessage>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    ticket_access(&s, &c, id).await?;
    let msg = s.desk.add_message(&c.user, id, &m.body, m.internal).await?;
    Ok((StatusCode::CREATED, Json(msg)))
}

/// `POST /api/v1/tickets/{id}/records`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    #[serde(default)]
    pub steps: String,
    #[serde(default)]
    pub solution: String,
}

/// Processing records of a ticket.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/records", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = [Record]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_records(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Record>>, ApiError> {
    ticket_access(&s, &c, id).await?;
    Ok(Json(s.desk.records(id).await?))
}

/// Adds a processing record (the assignee or a supervisor).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/records", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = NewRecord,
    responses((status = 201, body = Record), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn add_record(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
    JsonBody(r): JsonBody<NewRecord>,
) -> Result<(StatusCode, Json<Record>), ApiError> {
    c.require(Role::Technician)?;
    let rec = s
        .desk
        .add_record(Some(&c.user), id, "process", &r.steps, &r.solution, "")
        .await?;
    Ok((StatusCode::CREATED, Json(rec)))
}

/// The audit log of a ticket (staff).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/audit", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = [AuditEntry]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn ticket_audit(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    c.require(Role::Technician)?;
    s.desk.get(id).await?;
    Ok(Json(s.desk.audit_log(id).await?))
}

/// A remote-assistance session started from a ticket.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketAssist {
    pub ticket_id: i64,
    #[serde(flatten)]
    pub session: CreatedSession,
}

/// Starts remote assistance from a ticket (its assignee): a 10-minute code for the customer and the
/// technician's join token. An assigned ticket moves to in progress. Start and end are written to the
/// ticket's processing records.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/assist", tag = "tickets", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 201, body = TicketAssist), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(crate) async fn assist_from_ticket(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<TicketAssist>), ApiError> {
    c.require(Role::Technician)?;
    let t = s.desk.get(id).await?;
    super::assist::require_relay(&s)?;
    if t.assignee_id != Some(c.id()) {
        return Err(ApiError::forbidden(
            "only the ticket's assignee starts remote assistance from it",
        ));
    }
    match t.status {
        Status::Assigned => {
            s.desk
                .set_status(&c.user, id, Status::InProgress, None)
                .await?;
        }
        Status::InProgress => {}
        other => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "invalid_transition",
                format!("remote assistance needs an assigned or in-progress ticket, not {other}"),
            ))
        }
    }
    let new = s.relay.create_session()?;
    let session = created_body(&s, new);
    s.desk
        .link_assist(&c.user, id, &session.session_id, &session.code_expires_at)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TicketAssist {
            ticket_id: id,
            session,
        }),
    ))
}

/// Writes each ended session that came from a ticket back to its processing records, and notes a meeting's
/// end on its record when it happens (not when the record is next read). When `stop` is cancelled (after
/// the relay has drained at shutdown) it writes what is still queued, then returns.
pub async fn write_back_sessions(
    desk: Desk,
    mut ended: tokio::sync::broadcast::Receiver<SessionSummary>,
    stop: tokio_util::sync::CancellationToken,
) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let record = |summary: SessionSummary| {
        let desk = desk.clone();
        async move {
            if let Err(e) = desk.assist_ended(&summary).await {
                tracing::warn!(error = %e, session = %summary.id, "could not record the session's end");
            }
            // A no-op for a remote-assist session (no meeting has its id). A room closed by a shutdown
            // has not ended its meeting: a restart within the window brings the room back.
            if summary.reason != crate::core::EndReason::Shutdown {
                let (id, at) = (
                    summary.id.to_string(),
                    crate::store::timestamp(summary.ended_at),
                );
                if let Err(e) = crate::meetings::mark_ended(&desk.store, &id, &at).await {
                    tracing::warn!(error = %e, meeting = %id, "could not record the meeting's end");
                }
            }
        }
    };
    loop {
        let next = tokio::select! {
            r = ended.recv() => r,
            () = stop.cancelled() => break,
        };
        match next {
            Ok(summary) => record(summary).await,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(
                    missed = n,
                    "session summaries missed (too many ended at once)"
                );
            }
            Err(RecvError::Closed) => return,
        }
    }
    loop {
        match ended.try_recv() {
            Ok(summary) => record(summary).await,
            Err(TryRecvError::Lagged(_)) => continue,
            Err(_) => return,
        }
    }
}

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/tickets", post(create_ticket).get(list_tickets))
        .route("/api/v1/tickets/{id}", get(get_ticket))
        .route("/api/v1/tickets/{id}/approve", post(approve_ticket))
        .route("/api/v1/tickets/{id}/assign", post(assign_ticket))
        .route("/api/v1/tickets/{id}/status", post(set_ticket_status))
        .route(
            "/api/v1/tickets/{id}/messages",
            get(list_messages).post(add_message),
        )
        .route(
            "/api/v1/tickets/{id}/records",
            get(list_records).post(add_record),
        )
        .route("/api/v1/tickets/{id}/audit", get(ticket_audit))
        .route("/api/v1/tickets/{id}/assist", post(assist_from_ticket))
}
