//! Attachment endpoints; the files themselves are [`crate::attachments`]'s.
//! - `POST /api/v1/tickets/{id}/attachments?name=<file name>` (the raw file as the body; whoever may add to
//!   the ticket), `GET /api/v1/tickets/{id}/attachments` (whoever may read it);
//! - `POST/GET /api/v1/kb/articles/{id}/attachments` (staff; upload: whoever may edit the article, list:
//!   whoever may see it);
//! - `GET /api/v1/attachments/{id}`: the file, with the permission of the ticket or article it belongs to.
//!
//! Uploads are streamed with their own body limit: per file `tickets.max_attachment_bytes`, per ticket or
//! article `tickets.max_owner_attachment_bytes`; over either, 413 `payload_too_large` and nothing is kept.
//! Downloads are read whole into memory (an attachment is at most `max_attachment_bytes`).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::Caller;
use super::kb::{now, staff};
use super::{ApiError, ApiState, ErrorBody};
use super::{IdPath, QueryOf};
use crate::attachments::{self, Attachment, AttachmentError, AttachmentStore, OwnerKind};
use crate::kb::{self, KbError};

/// The body limit of the upload routes for axum's buffering extractors, which these handlers do not use:
/// they stream the body and enforce the configured limits themselves.
pub const UPLOAD_BODY_CEILING: usize = 1 << 30;

impl From<AttachmentError> for ApiError {
    fn from(e: AttachmentError) -> ApiError {
        match e {
            AttachmentError::TooLarge { limit, .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                e.to_string(),
            )
            .with("limit_bytes", limit.into()),
            AttachmentError::Body(m) => ApiError::bad_request(format!("reading the upload: {m}")),
            AttachmentError::Io(io) => {
                tracing::error!(error = %io, "attachment storage");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error (logged on the server)",
                )
            }
            AttachmentError::Store(s) => s.into(),
        }
    }
}

/// `?name=` of an upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The original file name (kept as metadata only, sanitised).
    pub name: Option<String>,
}

fn files(s: &ApiState) -> AttachmentStore {
    AttachmentStore::new(&s.relay.cfg.server.data_dir)
}

/// Receives and attaches one upload after the caller's permission on the owner was checked.
async fn upload(
    s: &ApiState,
    c: &Caller,
    owner: OwnerKind,
    owner_id: i64,
    name: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Attachment>), ApiError> {
    let max = s.relay.cfg.tickets.max_attachment_bytes.0;
    let too_large = || AttachmentError::TooLarge {
        what: "a file may hold",
        limit: max,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large().into());
    }
    let file_name = attachments::sanitize_file_name(name.as_deref().unwrap_or(""));
    let store = files(s);
    let up = store.receive(body, max, &file_name).await?;
    let a = store
        .commit(
            &s.accounts.store,
            up,
            owner,
            owner_id,
            &file_name,
            c.id(),
            &now(s),
            s.relay.cfg.tickets.max_owner_attachment_bytes.0,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// Attaches a file to a ticket (the raw file as the body).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/attachments", tag = "attachments", security(("bearer" = [])),
    params(("id" = i64, Path), UploadQuery),
    request_body(content = String, content_type = "application/octet-stream", description = "the file"),
    responses((status = 201, body = Attachment), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub(crate) async fn upload_ticket(
    State(s): State<ApiState>,
    c: Caller,
    IdPath(id): IdPath,
    QueryOf(q): QueryOf<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Attachment>), ApiError> {
    super::tickets::ticket_access(&s, &c, id).await?;
    upload(&s, &c, OwnerKind::Ticket, id, q.name, &headers, body).await
}

/// The attachments of a ticket.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/attachments", tag = "attachments", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = [Attachment]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_ticket(
    State(s): State<ApiState>,
    c: Caller,
    IdPath(id): IdPath,
) -> Result<Json<Vec<Attachment>>, ApiError> {
    super::tickets::ticket_access(&s, &c, id).await?;
    Ok(Json(
        attachments::list(&s.accounts.store, OwnerKind::Ticket, id).await?,
    ))
}

/// Attaches a file to an article (staff who may edit it; the raw file as the body).
#[utoipa::path(post, path = "/api/v1/kb/articles/{id}/attachments", tag = "attachments",
    security(("bearer" = [])), params(("id" = i64, Path), UploadQuery),
    request_body(content = String, content_type = "application/octet-stream", description = "the file"),
    responses((status = 201, body = Attachment), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn upload_article(
    State(s): State<ApiState>,
    c: Caller,
    IdPath(id): IdPath,
    QueryOf(q): QueryOf<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Attachment>), ApiError> {
    let v = staff(&c)?;
    let a = kb::get_article(&s.accounts.store, v, id).await?;
    if !kb::may_edit(&a, v) {
        return Err(KbError::Forbidden(
            "only the author or a supervisor may add attachments to this article",
        )
        .into());
    }
    upload(&s, &c, OwnerKind::Article, id, q.name, &headers, body).await
}

/// The attachments of an article.
#[utoipa::path(get, path = "/api/v1/kb/articles/{id}/attachments", tag = "attachments",
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = [Attachment]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn list_article(
    State(s): State<ApiState>,
    c: Caller,
    IdPath(id): IdPath,
) -> Result<Json<Vec<Attachment>>, ApiError> {
    let v = staff(&c)?;
    kb::get_article(&s.accounts.store, v, id).await?;
    Ok(Json(
        attachments::list(&s.accounts.store, OwnerKind::Article, id).await?,
    ))
}

/// `filename*=UTF-8''...` of RFC 6266 / RFC 8187: every byte but `attr-char` percent-encoded.
pub fn content_disposition(file_name: &str) -> String {
    let mut v = String::from("attachment; filename*=UTF-8''");
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            v.push(char::from(b));
        } else {
            v.push_str(&format!("%{b:02X}"));
        }
    }
    v
}

/// Downloads an attachment (with the permission of its ticket or article).
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "attachments", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, description = "the file, with its sniffed content type",
            content_type = "*/*"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn download(
    State(s): State<ApiState>,
    c: Caller,
    IdPath(id): IdPath,
) -> Result<Response, ApiError> {
    let missing = || ApiError::not_found("attachment");
    let a = attachments::get(&s.accounts.store, id)
        .await?
        .ok_or_else(missing)?;
    match a.owner_kind {
        OwnerKind::Ticket => {
            super::tickets::ticket_access(&s, &c, a.owner_id)
                .await
                .map_err(|e| {
                    if e.status == StatusCode::NOT_FOUND {
                        missing()
                    } else {
                        e
                    }
                })?;
        }
        OwnerKind::Article => {
            // Customers see no article, so no article's attachment either.
            let v = staff(&c).map_err(|_| missing())?;
            kb::get_article(&s.accounts.store, v, a.owner_id)
                .await
                .map_err(|e| match e {
                    KbError::NotFound => missing(),
                    other => other.into(),
                })?;
        }
    }
    let path = files(&s).path_of(&a.sha256).ok_or_else(missing)?;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::from(AttachmentError::Io(e)))?;
    let ctype = HeaderValue::from_str(&a.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let disposition = HeaderValue::from_str(&content_disposition(&a.file_name))
        .unwrap_or(HeaderValue::from_static("attachment"));
    Ok((
        [
            (header::CONTENT_TYPE, ctype),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response())
}

pub(crate) fn routes() -> Router<ApiState> {
    let limit = || DefaultBodyLimit::max(UPLOAD_BODY_CEILING);
    Router::new()
        .route(
            "/api/v1/tickets/{id}/attachments",
            get(list_ticket).post(upload_ticket).layer(limit()),
        )
        .route(
            "/api/v1/kb/articles/{id}/attachments",
            get(list_article).post(upload_article).layer(limit()),
        )
        .route("/api/v1/attachments/{id}", get(download))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_percent_encoded_in_the_disposition() {
        assert_eq!(
            content_disposition("a b\"打.txt"),
            "attachment; filename*=UTF-8''a%20b%22%E6%89%93.txt"
        );
    }
}
