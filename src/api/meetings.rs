//! Meetings over HTTP: scheduling a meeting on the relay, who may see and join it, recording, minutes, ending.
//! - `POST /api/v1/meetings` (technicians and above): the relay's room and code, the host's join token,
//!   invitations, and a processing record on the ticket it is about (if any);
//! - `GET /api/v1/meetings` (the caller's: hosted or invited; supervisors and above: all), `GET .../{id}`;
//! - `POST .../{id}/join-token` (staff who may see it: the host as host, others as presenters; customers
//!   join with the code);
//! - `PUT .../{id}/recording` (administrators only);
//! - `POST .../{id}/minutes` (the host, supervisors and above): a knowledge-base article in the reserved
//!   category `meeting records`;
//! - `DELETE .../{id}` (the host, supervisors and above).
//!
//! Who may see a meeting: its host, its invitees, supervisors and administrators. To anyone else it is "not
//! found", as tickets are. The record lives in [`crate::meetings`]; the room in [`crate::relay`].

use std::path::Path as FsPath;
use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::assist::{require_relay, RelayInfo};
use super::auth::Caller;
use super::{rfc3339, ApiError, ApiState, ErrorBody, JsonBody, QueryOf};
use crate::accounts::Role;
use crate::core::{EndReason, SessionId};
use crate::kb::{self, NewArticle, Viewer, Visibility};
use crate::meetings::{self, Meeting, MeetingError, MeetingState};
use crate::protocol::message::MeetingRole;
use crate::protocol::ALPN;
use crate::relay::room::RecordingReply;
use crate::store::timestamp;
use crate::tickets::list::Page;

/// Meetings per page when `per_page` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

impl From<MeetingError> for ApiError {
    fn from(e: MeetingError) -> ApiError {
        match e {
            MeetingError::Invalid(m) => ApiError::validation(m),
            MeetingError::NotFound => ApiError::not_found("meeting"),
            MeetingError::Store(s) => s.into(),
        }
    }
}

/// `POST /api/v1/meetings`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMeetingRequest {
    /// 1 to 200 characters (surrounding spaces are trimmed).
    pub topic: String,
    /// RFC 3339 with any offset; default now. Up to 5 minutes in the past counts as now; at most
    /// `meeting.max_schedule_ahead` (90 days) ahead.
    #[serde(default)]
    pub starts_at: Option<String>,
    /// Default `meeting.default_duration` (60 minutes); 1 to `meeting.max_duration` (720 minutes).
    #[serde(default)]
    pub duration_minutes: Option<u32>,
    /// Users to invite (at most 200), each existing and enabled; customers join with the code.
    #[serde(default)]
    pub invitees: Vec<i64>,
    /// A ticket the meeting is about (the caller must be allowed to see it); the meeting is written to its
    /// processing records.
    #[serde(default)]
    pub ticket_id: Option<i64>,
}

/// A meeting's recording, as last started or stopped through the API.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordingInfo {
    /// Running (false once stopped or once the meeting ended).
    pub active: bool,
    /// The latest recording's directory, relative to the server's data directory.
    pub dir: String,
}

/// A meeting.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MeetingView {
    /// 32 hex digits.
    pub meeting_id: String,
    pub topic: String,
    pub host_id: i64,
    pub ticket_id: Option<i64>,
    pub starts_at: String,
    pub ends_at: String,
    pub created_at: String,
    pub state: MeetingState,
    /// The meeting code (digits only): guests join with it while the window is open.
    pub code: String,
    /// The code in groups of four, for reading out.
    pub code_display: String,
    /// Invited users, by id.
    pub invitees: Vec<i64>,
    /// `null` if it was never recorded.
    pub recording: Option<RecordingInfo>,
    /// The minutes (a knowledge-base article), once written.
    pub minutes_article_id: Option<i64>,
    /// When it was ended through the API, or (at the latest) when the server found its room gone.
    pub ended_at: Option<String>,
}

/// The answer to `POST /api/v1/meetings`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedMeeting {
    #[serde(flatten)]
    pub meeting: MeetingView,
    /// The host's join token (HELLO mode 4, docs/PROTOCOL.md), valid until the meeting ends.
    pub host_token: String,
    pub relay: RelayInfo,
}

/// The role a join token gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JoinRole {
    Host,
    Presenter,
}

/// The answer to `POST /api/v1/meetings/{id}/join-token`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JoinToken {
    /// For HELLO mode 4 (`Hello::Meeting`).
    pub token: String,
    pub role: JoinRole,
    /// The meeting's scheduled end.
    pub expires_at: String,
    pub relay: RelayInfo,
}

/// `PUT /api/v1/meetings/{id}/recording`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordingRequest {
    /// true: start (or keep) recording; false: stop.
    pub active: bool,
}

/// What the recording does now.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordingStatus {
    pub active: bool,
    /// The recording's directory, relative to the server's data directory (`null`: never recorded).
    pub dir: Option<String>,
    /// After a stop: the files written, relative to the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
    /// After a stop: bytes written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// `POST /api/v1/meetings/{id}/minutes`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MinutesRequest {
    /// Markdown, 1 to 100,000 characters.
    pub body: String,
    /// Default `Minutes: <topic>`; 1 to 200 characters.
    #[serde(default)]
    pub title: Option<String>,
}

/// The minutes just written.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MinutesCreated {
    pub article_id: i64,
}

/// `GET /api/v1/meetings` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MeetingQuery {
    /// From 1.
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// Default 20, at most `tickets.max_page_size` (100).
    #[param(minimum = 1)]
    pub per_page: Option<u32>,
}

fn relay_info(s: &ApiState) -> RelayInfo {
    RelayInfo {
        quic: s.quic_advertise.clone(),
        alpn: String::from_utf8_lossy(ALPN).into_owned(),
        cert_sha256: s.cert_sha256.clone(),
    }
}

fn now(s: &ApiState) -> SystemTime {
    s.relay.clock.wall()
}

/// A meeting id from the path; anything but 32 hex digits is 400 `bad_request`.
fn meeting_id(raw: &str) -> Result<SessionId, ApiError> {
    SessionId::parse(raw)
        .ok_or_else(|| ApiError::bad_request("the meeting id must be 32 hex digits"))
}

/// A user id as the relay's participant subject.
fn subject(c: &Caller) -> Result<u32, ApiError> {
    u32::try_from(c.id()).map_err(|_| {
        tracing::error!(user = c.id(), "user id does not fit a meeting token");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error (logged on the server)",
        )
    })
}

fn ended() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "the meeting has ended")
}

/// Who may see a meeting: its host, its invitees, supervisors and above.
fn may_see(m: &Meeting, c: &Caller) -> bool {
    m.is_host(c.id()) || m.is_invited(c.id()) || c.role() >= Role::Supervisor
}

/// Who may run a meeting (end it, write its minutes): its host, supervisors and above.
fn may_run(m: &Meeting, c: &Caller) -> bool {
    m.is_host(c.id()) || c.role() >= Role::Supervisor
}

/// Meeting `raw` if `c` may see it; otherwise, or if there is none, 404.
async fn visible(s: &ApiState, c: &Caller, raw: &str) -> Result<(SessionId, Meeting), ApiError> {
    let id = meeting_id(raw)?;
    let m = meetings::get(&s.desk.store, &id.to_string()).await?;
    if may_see(&m, c) {
        Ok((id, m))
    } else {
        Err(ApiError::not_found("meeting"))
    }
}

/// The meeting's state now. A meeting whose room is gone is noted as ended (at its scheduled end if that
/// has passed, else now), so the record says so after a restart too.
async fn state_of(s: &ApiState, m: &mut Meeting) -> Result<MeetingState, ApiError> {
    let id = SessionId::parse(&m.id);
    let room = id.is_some_and(|id| s.relay.session_state(id).is_some());
    let (starts_at, ends_at) = m.window();
    let now = now(s);
    let st = meetings::state(room, m.ended_at.is_some(), now, starts_at);
    if st == MeetingState::Ended && m.ended_at.is_none() {
        let at = timestamp(now.min(ends_at));
        meetings::mark_ended(&s.desk.store, &m.id, &at).await?;
        m.ended_at = Some(at);
        m.recording_active = false;
    }
    Ok(st)
}

async fn view(s: &ApiState, mut m: Meeting) -> Result<MeetingView, ApiError> {
    let state = state_of(s, &mut m).await?;
    Ok(MeetingView {
        code_display: crate::pairing::codes::display(&m.code),
        recording: m.recording_dir.map(|dir| RecordingInfo {
            active: m.recording_active,
            dir,
        }),
        meeting_id: m.id,
        topic: m.topic,
        host_id: m.host_id,
        ticket_id: m.ticket_id,
        starts_at: m.starts_at,
        ends_at: m.ends_at,
        created_at: m.created_at,
        state,
        code: m.code,
        invitees: m.invitees,
        minutes_article_id: m.minutes_article_id,
        ended_at: m.ended_at,
    })
}

/// A path the relay reports, relative to the data directory when it lies under it (else as reported).
fn data_relative(s: &ApiState, p: &FsPath) -> String {
    let data = &s.relay.cfg.server.data_dir;
    if let Ok(r) = p.strip_prefix(data) {
        return r.display().to_string();
    }
    // One may be absolute and the other not.
    if let (Ok(d), Ok(q)) = (std::path::absolute(data), std::path::absolute(p)) {
        if let Ok(r) = q.strip_prefix(&d) {
            return r.display().to_string();
        }
    }
    p.display().to_string()
}

/// Schedules a meeting (technicians, supervisors, administrators): the relay's room and its code (valid
/// in the window), the host's join token, invitations to the invitees, and a processing record on the
/// ticket it is about.
#[utoipa::path(post, path = "/api/v1/meetings", tag = "meetings", security(("bearer" = [])),
    request_body = NewMeetingRequest,
    responses((status = 201, body = CreatedMeeting), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(crate) async fn create_meeting(
    State(s): State<ApiState>,
    c: Caller,
    JsonBody(req): JsonBody<NewMeetingRequest>,
) -> Result<(StatusCode, Json<CreatedMeeting>), ApiError> {
    c.require(Role::Technician)?;
    require_relay(&s)?;
    let topic = meetings::check_topic(&req.topic)?;
    let starts_at = req
        .starts_at
        .as_deref()
        .map(|t| meetings::parse_time("starts_at", t))
        .transpose()?;
    let wall = now(&s);
    let window = meetings::window(wall, starts_at, req.duration_minutes, &s.relay.cfg.meeting)?;
    let invitees = meetings::check_invitees(&s.desk.store, c.id(), &req.invitees).await?;
    let ticket = match req.ticket_id {
        Some(t) => Some(super::tickets::ticket_access(&s, &c, t).await?),
        None => None,
    };
    let host = subject(&c)?;

    let new = s.relay.create_meeting(window.starts_at, window.ends_at)?;
    let id = new.id.to_string();
    let (starts, ends) = (timestamp(new.starts_at), timestamp(new.ends_at));
    let invitation = format!(
        "{} invited you to the meeting \"{topic}\", {starts} to {ends} (UTC): meeting {id}, code {}",
        c.user.name, new.code_display
    );
    let row = meetings::NewMeeting {
        id: &id,
        topic: &topic,
        host_id: c.id(),
        ticket_id: ticket.as_ref().map(|t| t.id),
        starts_at: &starts,
        ends_at: &ends,
        code: &new.code,
        created_at: &timestamp(wall),
        invitees: &invitees,
    };
    let (meeting, sent) =
        match meetings::insert(&s.desk.store, &*s.desk.sender, &row, &invitation).await {
            Ok(r) => r,
            Err(e) => {
                // No record, no room: a meeting nobody can find must not hold a live code.
                s.relay.end_session(new.id, EndReason::ByOperator).await;
                return Err(e.into());
            }
        };
    s.desk.hub.publish(sent);
    if let Some(t) = &ticket {
        let detail = format!(
            "meeting {id} scheduled: \"{topic}\", {starts} to {ends}, host {}",
            c.user.employee_id
        );
        if let Err(e) = s
            .desk
            .add_record(None, t.id, "meeting", "", "", &detail)
            .await
        {
            // The meeting exists and is stored; only the note on the ticket is missing.
            tracing::warn!(error = %e, meeting = %id, ticket = t.id, "could not record the meeting on its ticket");
        }
    }
    let host_token = s
        .relay
        .meeting_token(new.id, host, MeetingRole::Host, new.ends_at);
    Ok((
        StatusCode::CREATED,
        Json(CreatedMeeting {
            meeting: view(&s, meeting).await?,
            host_token,
            relay: relay_info(&s),
        }),
    ))
}

/// The meetings the caller hosts or is invited to (supervisors and above: all), newest first.
#[utoipa::path(get, path = "/api/v1/meetings", tag = "meetings", security(("bearer" = [])),
    params(MeetingQuery),
    responses((status = 200, body = Page<MeetingView>), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn list_meetings(
    State(s): State<ApiState>,
    c: Caller,
    QueryOf(q): QueryOf<MeetingQuery>,
) -> Result<Json<Page<MeetingView>>, ApiError> {
    let (page, per_page) = (q.page.unwrap_or(1), q.per_page.unwrap_or(DEFAULT_PAGE_SIZE));
    if page == 0 || per_page == 0 {
        return Err(ApiError::validation("page and per_page start at 1"));
    }
    let per_page = per_page.min(s.relay.cfg.tickets.max_page_size.max(1));
    let only = (c.role() < Role::Supervisor).then_some(c.id());
    let found = meetings::list(&s.desk.store, only, page, per_page).await?;
    let mut items = Vec::with_capacity(found.items.len());
    for m in found.items {
        items.push(view(&s, m).await?);
    }
    Ok(Json(Page {
        items,
        total: found.total,
        page: found.page,
        per_page: found.per_page,
    }))
}

/// One meeting (its host, invitees, supervisors and administrators; others 404).
#[utoipa::path(get, path = "/api/v1/meetings/{id}", tag = "meetings", security(("bearer" = [])),
    params(("id" = String, Path, description = "32 hex digits", pattern = "^[0-9a-fA-F]{32}$")),
    responses((status = 200, body = MeetingView), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn get_meeting(
    State(s): State<ApiState>,
    c: Caller,
    Path(raw): Path<String>,
) -> Result<Json<MeetingView>, ApiError> {
    let (_, m) = visible(&s, &c, &raw).await?;
    Ok(Json(view(&s, m).await?))
}

/// A join token for a staff member who may see the meeting: the host enters as host, everyone else as a
/// presenter. Customers join with the meeting code instead (403). 404 once the meeting has ended.
#[utoipa::path(post, path = "/api/v1/meetings/{id}/join-token", tag = "meetings", security(("bearer" = [])),
    params(("id" = String, Path, description = "32 hex digits", pattern = "^[0-9a-fA-F]{32}$")),
    responses((status = 200, body = JoinToken), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn join_token(
    State(s): State<ApiState>,
    c: Caller,
    Path(raw): Path<String>,
) -> Result<Json<JoinToken>, ApiError> {
    let (id, mut m) = visible(&s, &c, &raw).await?;
    if !c.role().is_staff() {
        return Err(ApiError::forbidden(
            "customers join a meeting with its code, not a join token",
        ));
    }
    if state_of(&s, &mut m).await? == MeetingState::Ended {
        return Err(ended());
    }
    let role = if m.is_host(c.id()) {
        JoinRole::Host
    } else {
        JoinRole::Presenter
    };
    let wire_role = match role {
        JoinRole::Host => MeetingRole::Host,
        JoinRole::Presenter => MeetingRole::Presenter,
    };
    let (_, ends_at) = m.window();
    let token = s.relay.meeting_token(id, subject(&c)?, wire_role, ends_at);
    Ok(Json(JoinToken {
        token,
        role,
        expires_at: rfc3339(ends_at),
        relay: relay_info(&s),
    }))
}

/// Starts or stops recording (administrators only). The recording's directory is kept with the meeting.
/// 409 `recording_refused` when the relay cannot record (the message says why).
#[utoipa::path(put, path = "/api/v1/meetings/{id}/recording", tag = "meetings", security(("bearer" = [])),
    params(("id" = String, Path, description = "32 hex digits", pattern = "^[0-9a-fA-F]{32}$")), request_body = RecordingRequest,
    responses((status = 200, body = RecordingStatus), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn set_recording(
    State(s): State<ApiState>,
    c: Caller,
    Path(raw): Path<String>,
    JsonBody(req): JsonBody<RecordingRequest>,
) -> Result<Json<RecordingStatus>, ApiError> {
    c.require(Role::Administrator)
        .map_err(|_| ApiError::forbidden("only administrators record meetings"))?;
    let (id, mut m) = visible(&s, &c, &raw).await?;
    if state_of(&s, &mut m).await? == MeetingState::Ended {
        return Err(ended());
    }
    let reply = match s.relay.set_recording(id, req.active).await {
        Ok(r) => r,
        Err(crate::relay::RelayError::SessionNotFound) => {
            state_of(&s, &mut m).await?;
            return Err(ended());
        }
        Err(e) => return Err(e.into()),
    };
    let store = &s.desk.store;
    let status = match reply {
        RecordingReply::Started { dir } | RecordingReply::AlreadyRunning { dir } => {
            let dir = data_relative(&s, &dir);
            meetings::set_recording(store, &m.id, Some(&dir), true).await?;
            RecordingStatus {
                active: true,
                dir: Some(dir),
                files: None,
                bytes: None,
            }
        }
        RecordingReply::Stopped { dir, files, bytes } => {
            let dir = data_relative(&s, &dir);
            meetings::set_recording(store, &m.id, Some(&dir), false).await?;
            RecordingStatus {
                active: false,
                dir: Some(dir),
                files: Some(files.iter().map(|f| data_relative(&s, f)).collect()),
                bytes: Some(bytes),
            }
        }
        RecordingReply::NotRunning => {
            meetings::set_recording(store, &m.id, None, false).await?;
            RecordingStatus {
                active: false,
                dir: m.recording_dir,
                files: None,
                bytes: None,
            }
        }
        RecordingReply::Refused(why) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "recording_refused",
                why,
            ));
        }
    };
    Ok(Json(status))
}

/// Writes the meeting's minutes (its host, supervisors and administrators) as a knowledge-base article in
/// the reserved category `meeting records`: public, keywords `meeting` and the meeting id, the body
/// followed by a line naming the meeting and its recording's directory. Once only: 409 `conflict` (with
/// `article_id`) when the minutes exist; edit that article instead.
#[utoipa::path(post, path = "/api/v1/meetings/{id}/minutes", tag = "meetings", security(("bearer" = [])),
    params(("id" = String, Path, description = "32 hex digits", pattern = "^[0-9a-fA-F]{32}$")), request_body = MinutesRequest,
    responses((status = 201, body = MinutesCreated), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn write_minutes(
    State(s): State<ApiState>,
    c: Caller,
    Path(raw): Path<String>,
    JsonBody(req): JsonBody<MinutesRequest>,
) -> Result<(StatusCode, Json<MinutesCreated>), ApiError> {
    let (_, m) = visible(&s, &c, &raw).await?;
    if !may_run(&m, &c) {
        return Err(ApiError::forbidden(
            "only the meeting's host or a supervisor writes its minutes",
        ));
    }
    let exists = |article: i64| {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("the minutes exist already: article {article} (edit it with PUT /api/v1/kb/articles/{article})"),
        )
        .with("article_id", article.into())
    };
    if let Some(a) = m.minutes_article_id {
        return Err(exists(a));
    }
    let n = req.body.trim().chars().count();
    if n == 0 || n > meetings::MAX_MINUTES_CHARS {
        return Err(ApiError::validation(format!(
            "body: 1 to {} characters, not {n}",
            meetings::MAX_MINUTES_CHARS
        )));
    }
    let title = req.title.unwrap_or_else(|| {
        format!("Minutes: {}", m.topic)
            .chars()
            .take(kb::MAX_TITLE_CHARS)
            .collect()
    });
    let new = NewArticle {
        category: kb::RESERVED_CATEGORY.to_owned(),
        title,
        keywords: vec!["meeting".to_owned(), m.id.clone()],
        body: meetings::minutes_markdown(&req.body, &m.id, m.recording_dir.as_deref()),
        visibility: Visibility::Public,
    };
    let store = &s.desk.store;
    let at = timestamp(now(&s));
    let a = kb::create_article(store, &at, c.id(), &new, m.ticket_id, true).await?;
    if !meetings::claim_minutes(store, &m.id, a.id).await? {
        // Someone else's minutes landed first: take ours back.
        let v = Viewer {
            id: c.id(),
            role: c.role(),
        };
        if let Err(e) = kb::delete_article(store, v, a.id).await {
            tracing::warn!(error = %e, article = a.id, "removing duplicate meeting minutes");
        }
        let m = meetings::get(store, &m.id).await?;
        return Err(exists(m.minutes_article_id.unwrap_or(a.id)));
    }
    Ok((
        StatusCode::CREATED,
        Json(MinutesCreated { article_id: a.id }),
    ))
}

/// Ends the meeting for everyone (its host, supervisors and administrators). 404 if it has ended.
#[utoipa::path(delete, path = "/api/v1/meetings/{id}", tag = "meetings", security(("bearer" = [])),
    params(("id" = String, Path, description = "32 hex digits", pattern = "^[0-9a-fA-F]{32}$")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn end_meeting(
    State(s): State<ApiState>,
    c: Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (id, mut m) = visible(&s, &c, &raw).await?;
    if !may_run(&m, &c) {
        return Err(ApiError::forbidden(
            "only the meeting's host or a supervisor ends it",
        ));
    }
    if state_of(&s, &mut m).await? == MeetingState::Ended {
        return Err(ended());
    }
    let reason = if m.is_host(c.id()) {
        EndReason::ByHost
    } else {
        EndReason::ByOperator
    };
    let was_there = s.relay.end_session(id, reason).await;
    meetings::mark_ended(&s.desk.store, &m.id, &timestamp(now(&s))).await?;
    if was_there {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ended())
    }
}

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/meetings", post(create_meeting).get(list_meetings))
        .route(
            "/api/v1/meetings/{id}",
            get(get_meeting).delete(end_meeting),
        )
        .route("/api/v1/meetings/{id}/join-token", post(join_token))
        .route("/api/v1/meetings/{id}/recording", put(set_recording))
        .route("/api/v1/meetings/{id}/minutes", post(write_minutes))
}
