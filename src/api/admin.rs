//! Administration: users, approval rules, the outbox; and the device registry tickets refer to.
//! - `GET/POST /api/v1/users`, `GET/PATCH /api/v1/users/{id}`, `POST /api/v1/users/{id}/reset-password`
//!   (administrators);
//! - `GET/PUT /api/v1/approval-rules` (read: staff; write: administrators): which priorities need a
//!   supervisor's approval before assignment;
//! - `GET /api/v1/outbox` (administrators, also before their own first-login setup is done, since the
//!   default sender puts the bootstrap administrator's verification code there);
//! - `GET /api/v1/devices` (everyone logged in), `POST /api/v1/devices` (staff).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::auth::{Caller, SetupCaller};
use super::{ApiError, ApiState, ErrorBody, JsonBody};
use crate::accounts::{NewUser, Role, User, UserPatch};

/// Lists users.
#[utoipa::path(get, path = "/api/v1/users", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [User]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_users(
    State(s): State<ApiState>,
    c: Caller,
) -> Result<Json<Vec<User>>, ApiError> {
    c.require(Role::Supervisor)?;
    Ok(Json(s.accounts.users().await?))
}

/// Creates a user (who must change the password and bind a phone at first login).
#[utoipa::path(post, path = "/api/v1/users", tag = "admin", security(("bearer" = [])), request_body = NewUser,
    responses((status = 201, body = User), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_user(
    State(s): State<ApiState>,
    c: Caller,
    JsonBody(u): JsonBody<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    c.require_admin()?;
    Ok((StatusCode::CREATED, Json(s.accounts.create_user(&u).await?)))
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn get_user(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Json<User>, ApiError> {
    if c.id() != id {
        c.require(Role::Supervisor)?;
    }
    Ok(Json(s.accounts.user(id).await?))
}

/// Changes a user's name, department, contact, role, or disables it (which logs it out).
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = UserPatch,
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn update_user(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
    JsonBody(p): JsonBody<UserPatch>,
) -> Result<Json<User>, ApiError> {
    c.require_admin()?;
    if id == c.id()
        && (p.disabled == Some(true) || p.role.is_some_and(|r| r != Role::Administrator))
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "administrators cannot disable or demote themselves",
        ));
    }
    Ok(Json(s.accounts.update_user(id, &p).await?))
}

/// A one-time password set by an administrator.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResetPassword {
    /// Give it to the user; it must be changed at the next login.
    pub one_time_password: String,
}

/// Sets a new one-time password and logs the user out everywhere.
#[utoipa::path(post, path = "/api/v1/users/{id}/reset-password", tag = "admin", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = ResetPassword), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn reset_password(
    State(s): State<ApiState>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Json<ResetPassword>, ApiError> {
    c.require_admin()?;
    if id == c.id() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "change your own password with POST /api/v1/auth/password",
        ));
    }
    Ok(Json(ResetPassword {
        one_time_password: s.accounts.reset_password(id).await?,
    }))
}

/// Whether tickets of a priority need a supervisor's approval before they can be assigned.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// `urgent`, `high`, `medium` or `low`.
    pub priority: String,
    pub needs_approval: bool,
}

pub(crate) const PRIORITIES: [&str; 4] = ["urgent", "high", "medium", "low"];

/// The approval rules.
#[utoipa::path(get, path = "/api/v1/approval-rules", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [ApprovalRule]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn get_rules(
    State(s): State<ApiState>,
    c: Caller,
) -> Result<Json<Vec<ApprovalRule>>, ApiError> {
    c.require(Role::Technician)?;
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "SELECT priority, needs_approval FROM approval_rules ORDER BY CASE priority \
         WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END",
    )
    .fetch_all(&s.accounts.store.pool)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(priority, needs_approval)| ApprovalRule {
                priority,
                needs_approval,
            })
            .collect(),
    ))
}

/// Replaces the approval rules for the priorities given.
#[utoipa::path(put, path = "/api/v1/approval-rules", tag = "admin", security(("bearer" = [])),
    request_body = [ApprovalRule],
    responses((status = 200, body = [ApprovalRule]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn put_rules(
    State(s): State<ApiState>,
    c: Caller,
    JsonBody(rules): JsonBody<Vec<ApprovalRule>>,
) -> Result<Json<Vec<ApprovalRule>>, ApiError> {
    c.require_admin()?;
    if let Some(bad) = rules
        .iter()
        .find(|r| !PRIORITIES.contains(&r.priority.as_str()))
    {
        return Err(ApiError::validation(format!(
            "unknown priority {:?}: one of {PRIORITIES:?}",
            bad.priority
        )));
    }
    let mut tx = s.accounts.store.write().await?;
    for r in &rules {
        sqlx::query("UPDATE approval_rules SET needs_approval = $1 WHERE priority = $2")
            .bind(r.needs_approval)
            .bind(&r.priority)
            .execute(&mut **tx)
            .await?;
    }
    tx.commit().await?;
    get_rules(State(s), c).await
}

/// One message the default sender delivered to the outbox.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutboxMessage {
    pub id: i64,
    pub user_id: Option<i64>,
    pub channel: String,
    pub recipient: String,
    pub body: String,
    pub created_at: String,
}

/// `?user_id=` filter for the outbox.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    pub user_id: Option<i64>,
}

/// Messages (verification codes, notifications) written by the outbox sender, newest first (at most 200).
#[utoipa::path(get, path = "/api/v1/outbox", tag = "admin", security(("bearer" = [])), params(OutboxQuery),
    responses((status = 200, body = [OutboxMessage]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn outbox(
    State(s): State<ApiState>,
    SetupCaller(c): SetupCaller,
    super::QueryOf(q): super::QueryOf<OutboxQuery>,
) -> Result<Json<Vec<OutboxMessage>>, ApiError> {
    c.require_admin()?;
    let rows: Vec<(i64, Option<i64>, String, String, String, String)> = sqlx::query_as(
        "SELECT id, user_id, channel, recipient, body, created_at FROM outbox \
         WHERE (CAST($1 AS BIGINT) IS NULL OR user_id = $1) ORDER BY id DESC LIMIT 200",
    )
    .bind(q.user_id)
    .fetch_all(&s.accounts.store.pool)
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| OutboxMessage {
                id: r.0,
                user_id: r.1,
                channel: r.2,
                recipient: r.3,
                body: r.4,
                created_at: r.5,
            })
            .collect(),
    ))
}

/// A registered device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Device {
    pub id: i64,
    pub number: String,
    pub model: String,
    pub owner: String,
}

/// A device to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    pub number: String,
    pub model: String,
    #[serde(default)]
    pub owner: String,
}

/// The device registry.
#[utoipa::path(get, path = "/api/v1/devices", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = [Device]), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_devices(
    State(s): State<ApiState>,
    _c: Caller,
) -> Result<Json<Vec<Device>>, ApiError> {
    let rows: Vec<(i64, String, String, String)> =
        sqlx::query_as("SELECT id, number, model, owner FROM devices ORDER BY number LIMIT 1000")
            .fetch_all(&s.accounts.store.pool)
            .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(id, number, model, owner)| Device {
                id,
                number,
                model,
                owner,
            })
            .collect(),
    ))
}

/// Registers a device.
#[utoipa::path(post, path = "/api/v1/devices", tag = "admin", security(("bearer" = [])), request_body = NewDevice,
    responses((status = 201, body = Device), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_device(
    State(s): State<ApiState>,
    c: Caller,
    JsonBody(d): JsonBody<NewDevice>,
) -> Result<(StatusCode, Json<Device>), ApiError> {
    c.require(Role::Technician)?;
    let (number, model) = (d.number.trim(), d.model.trim());
    if number.is_empty() || number.len() > 100 || model.is_empty() || model.len() > 200 {
        return Err(ApiError::validation(
            "number (1 to 100 characters) and model (1 to 200) are required",
        ));
    }
    let mut tx = s.accounts.store.write().await?;
    let dup: Option<(i64,)> = sqlx::query_as("SELECT id FROM devices WHERE number = $1")
        .bind(number)
        .fetch_optional(&mut **tx)
        .await?;
    if dup.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("device {number} is already registered"),
        ));
    }
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO devices (number, model, owner) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(number)
    .bind(model)
    .bind(d.owner.trim())
    .fetch_one(&mut **tx)
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(Device {
            id,
            number: number.into(),
            model: model.into(),
            owner: d.owner.trim().into(),
        }),
    ))
}

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{id}", get(get_user).patch(update_user))
        .route("/api/v1/users/{id}/reset-password", post(reset_password))
        .route("/api/v1/approval-rules", get(get_rules).put(put_rules))
        .route("/api/v1/outbox", get(outbox))
        .route("/api/v1/devices", get(list_devices).post(create_device))
}
