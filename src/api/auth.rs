//! Who is calling, and the login endpoints.
//!
//! [`Caller`] extracts the logged-in user from `Authorization: Bearer <token>` and refuses (403
//! `setup_required`) a user whose first-login setup is not done; [`SetupCaller`] accepts such a user, for the
//! setup endpoints themselves. Routes:
//! - `POST /api/v1/auth/login` `{login, password}` (employee id or e-mail) -> token;
//! - `POST /api/v1/auth/logout`; `GET /api/v1/auth/me`;
//! - `POST /api/v1/auth/password` `{old_password, new_password}`;
//! - `POST /api/v1/auth/phone` `{phone}` sends a 6-digit code; `POST /api/v1/auth/phone/verify` `{code}`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, ErrorBody, JsonBody};
use crate::accounts::{LoginOk, Role, User};

/// A logged-in user whose first-login setup is done.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub token: String,
    pub ip: IpAddr,
}

/// A logged-in user, setup done or not (only for the setup endpoints).
#[derive(Debug, Clone)]
pub struct SetupCaller(pub Caller);

impl Caller {
    /// Refuses callers below `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.user.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {role} role or higher"
            )))
        }
    }
    /// Refuses anyone but administrators.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        self.require(Role::Administrator)
    }
    pub fn id(&self) -> i64 {
        self.user.id
    }
    pub fn role(&self) -> Role {
        self.user.role
    }
}

pub(crate) fn bearer(parts: &Parts) -> &str {
    super::bearer_token(&parts.headers)
}

pub(crate) fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip())
}

impl FromRequestParts<ApiState> for SetupCaller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, ApiError> {
        let token = bearer(parts).to_owned();
        let user = s.accounts.authenticate(&token).await?;
        Ok(SetupCaller(Caller {
            user,
            token,
            ip: client_ip(parts),
        }))
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, s: &ApiState) -> Result<Self, ApiError> {
        let SetupCaller(c) = SetupCaller::from_request_parts(parts, s).await?;
        if let Some(missing) = c.user.setup_missing() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "setup_required",
                format!("first login: {missing} before anything else"),
            ));
        }
        Ok(c)
    }
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Employee id or e-mail address.
    pub login: String,
    pub password: String,
}

/// Logs in by employee id or e-mail.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginOk), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn login(
    State(s): State<ApiState>,
    ConnectInfoOpt(ip): ConnectInfoOpt,
    JsonBody(req): JsonBody<LoginRequest>,
) -> Result<Json<LoginOk>, ApiError> {
    if req.login.len() > 254 || req.password.len() > 1024 {
        return Err(ApiError::validation("login or password too long"));
    }
    Ok(Json(s.accounts.login(ip, &req.login, &req.password).await?))
}

/// The caller's address (loopback when the router runs without connection info, as in tests).
pub struct ConnectInfoOpt(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ConnectInfoOpt {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ConnectInfoOpt(client_ip(parts)))
    }
}

/// Ends this login session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub(crate) async fn logout(
    State(s): State<ApiState>,
    SetupCaller(c): SetupCaller,
) -> Result<StatusCode, ApiError> {
    s.accounts.logout(&c.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who am I, and what setup is left.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub user: User,
    pub setup_required: Option<String>,
}

/// The logged-in user.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub(crate) async fn me(SetupCaller(c): SetupCaller) -> Json<Me> {
    Json(Me {
        setup_required: c.user.setup_missing().map(str::to_owned),
        user: c.user,
    })
}

/// `POST /api/v1/auth/password`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub old_password: String,
    pub new_password: String,
}

/// Changes the password (other sessions of the user are logged out).
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", security(("bearer" = [])),
    request_body = PasswordChange,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn change_password(
    State(s): State<ApiState>,
    SetupCaller(c): SetupCaller,
    JsonBody(req): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    if req.new_password.len() > 1024 || req.old_password.len() > 1024 {
        return Err(ApiError::validation("password too long"));
    }
    s.accounts
        .change_password(&c.user, &c.token, &req.old_password, &req.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/auth/phone`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneBinding {
    pub phone: String,
}

/// Sends a 6-digit verification code to the phone (through the configured sender; by default the outbox).
#[utoipa::path(post, path = "/api/v1/auth/phone", tag = "auth", security(("bearer" = [])),
    request_body = PhoneBinding,
    responses((status = 202), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub(crate) async fn bind_phone(
    State(s): State<ApiState>,
    SetupCaller(c): SetupCaller,
    JsonBody(req): JsonBody<PhoneBinding>,
) -> Result<StatusCode, ApiError> {
    s.accounts.start_phone_binding(&c.user, &req.phone).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `POST /api/v1/auth/phone/verify`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneCode {
    pub code: String,
}

/// Confirms the phone with the code it received.
#[utoipa::path(post, path = "/api/v1/auth/phone/verify", tag = "auth", security(("bearer" = [])),
    request_body = PhoneCode,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub(crate) async fn verify_phone(
    State(s): State<ApiState>,
    SetupCaller(c): SetupCaller,
    JsonBody(req): JsonBody<PhoneCode>,
) -> Result<StatusCode, ApiError> {
    s.accounts.verify_phone(c.ip, &c.user, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/me", get(me))
        .route("/api/v1/auth/password", post(change_password))
        .route("/api/v1/auth/phone", post(bind_phone))
        .route("/api/v1/auth/phone/verify", post(verify_phone))
}
