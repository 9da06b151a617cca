//! Knowledge-base endpoints (staff only: customers get 403 on every one):
//! - `POST /api/v1/kb/articles`, `GET /api/v1/kb/articles?q=&category=&page=&per_page=` (full-text search
//!   and category filter, paginated);
//! - `GET/PUT/DELETE /api/v1/kb/articles/{id}`;
//! - `GET /api/v1/kb/categories` (with counts of the articles the caller sees);
//! - `POST /api/v1/tickets/{id}/article`: a ticket's description and processing records as a new article.
//!
//! The rules (visibility, reserved category, search) live in [`crate::kb`]; an article the caller may not
//! see is 404, never 403. Also here: [`IdPath`] and [`QueryOf`], extractors that answer a malformed path id
//! or query string with our error shape.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::auth::Caller;
use super::{ApiError, ApiState, ErrorBody, IdPath, JsonBody, QueryOf};
use crate::accounts::Role;
use crate::kb::{
    self, Article, ArticlePage, ArticleUpdate, CategoryCount, KbError, ListQuery, NewArticle,
    Viewer, Visibility,
};

/// Articles per page when `per_page` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The category of articles made from tickets when the request names none.
pub const TICKET_ARTICLE_CATEGORY: &str = "tickets";

impl From<KbError> for ApiError {
    fn from(e: KbError) -> ApiError {
        match e {
            KbError::Invalid(m) => ApiError::validation(m),
            KbError::Reserved => {
                ApiError::new(StatusCode::FORBIDDEN, "reserved_category", e.to_string())
            }
            KbError::NotFound => ApiError::not_found("article"),
            KbError::Forbidden(m) => ApiError::forbidden(m),
            KbError::Store(s) => s.into(),
        }
    }
}

/// The caller as a knowledge-base reader, refusing customers.
pub(crate) fn staff(c: &Caller) -> Result<Viewer, ApiError> {
    c.require(Role::Technician)?;
    Ok(Viewer {
        id: c.id(),
        role: c.role(),
    })
}

pub(crate) fn now(s: &ApiState) -> String {
    crate::store::timestamp(s.accounts.clock.wall())
}

/// Creates an article (not in the reserved category "meeting records").
#[utoipa::path(post, path = "/api/v1/kb/articles", tag = "kb", security(("bearer" = [])),
    request_body = NewArticle,
    responses((status = 201, body = Article), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn create_article(
    State(s): State<ApiState>,
    c: Caller,
    JsonBody(new): JsonBody<NewArticle>,
) -> Result<(StatusCode, Json<Article>), ApiError> {
    let v = staff(&c)?;
    let a = kb::create_article(&s.accounts.store, &now(&s), v.id, &new, None, false).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

/// `GET /api/v1/kb/articles` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArticleQuery {
    /// Words to search for in titles, keywords and bodies (all must match).
    pub q: Option<String>,
    /// A category path: the category and everything under it.
    pub category: Option<String>,
    /// 1-based page number (default 1).
    pub page: Option<u32>,
    /// Articles per page (default 20, at most `tickets.max_page_size`).
    pub per_page: Option<u32>,
}

/// Lists or searches the articles the caller may see: by relevance when searching, else most recently
/// updated first.
#[utoipa::path(get, path = "/api/v1/kb/articles", tag = "kb", security(("bearer" = [])),
    params(ArticleQuery),
    responses((status = 200, body = ArticlePage), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn list_articles(
    State(s): State<ApiState>,
    c: Caller,
    QueryOf(q): QueryOf<ArticleQuery>,
) -> Result<Json<ArticlePage>, ApiError> {
    let v = staff(&c)?;
    let (page, per_page) = (q.page.unwrap_or(1), q.per_page.unwrap_or(DEFAULT_PAGE_SIZE));
    if page == 0 || per_page == 0 {
        return Err(ApiError::validation("page and per_page start at 1"));
    }
    let query = ListQuery {
        q: q.q.unwrap_or_default(),
        category: q.category.filter(|c| !c.trim().is_empty()),
        page,
        per_page: per_page.min(s.relay.cfg.tickets.max_page_size.max(1)),
    };
    Ok(Json(kb::list_articles(&s.accounts.store, v, &query).await?))
}

/// One article.
#[utoipa::path(get, path = "/api/v1/kb/articles/{id}", tag = "kb", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Article), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn get_article(
    State(s): State<ApiState>,
    c: Caller,
    IdPath(id): IdPath,
) -> Result<Json<Article>, ApiError> {
    let v = staff(&c)?;
    Ok(Json(kb::get_article(&s.accounts.store, v, id).await?))
}

/// Changes an article (its author, or a supervisor or higher for a public one; only the author changes
/// the visibility). Fields left out keep their value.
#[utoipa::path(put, path = "/api/v1/kb/articles/{id}", tag = "kb", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = ArticleUpdate,
    responses((status = 200, body = Article), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn update_article(
    State(s): State<ApiState>,
    c: Caller,
    IdPath(id): IdPath,
    JsonBody(upd): JsonBody<ArticleUpdate>,
) -> Result<Json<Article>, ApiError> {
    let v = staff(&c)?;
    let a = kb::update_article(&s.accounts.store, &now(&s), v, id, &upd, false).await?;
    Ok(Json(a))
}

/// Deletes an article and its attachments (its author, or an administrator).
#[utoipa::path(delete, path = "/api/v1/kb/articles/{id}", tag = "kb", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_article(
    State(s): State<ApiState>,
    c: Caller,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    let v = staff(&c)?;
    let hashes = kb::delete_article(&s.accounts.store, v, id).await?;
    let files = crate::attachments::AttachmentStore::new(&s.relay.cfg.server.data_dir);
    if let Err(e) = files.collect(&s.accounts.store, &hashes).await {
        // The article is gone; an unreferenced file is only wasted space.
        tracing::warn!(error = %e, "removing the deleted article's attachment files");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The categories of the articles the caller may see, with their counts.
#[utoipa::path(get, path = "/api/v1/kb/categories", tag = "kb", security(("bearer" = [])),
    responses((status = 200, body = [CategoryCount]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub(crate) async fn list_categories(
    State(s): State<ApiState>,
    c: Caller,
) -> Result<Json<Vec<CategoryCount>>, ApiError> {
    let v = staff(&c)?;
    Ok(Json(kb::categories(&s.accounts.store, v).await?))
}

/// `POST /api/v1/tickets/{id}/article`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketArticleRequest {
    /// Default `tickets`.
    pub category: Option<String>,
    /// Default `public`.
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub keywords: Vec<String>,
}

/// The Markdown body of an article made from a ticket: its description, then each processing record's
/// steps and solution (records with neither are left out).
pub fn ticket_markdown(description: &str, records: &[(String, String)]) -> String {
    let mut md = String::from("## Problem\n\n");
    md.push_str(description.trim());
    md.push('\n');
    let mut n = 0;
    for (steps, solution) in records {
        let (steps, solution) = (steps.trim(), solution.trim());
        if steps.is_empty() && solution.is_empty() {
            continue;
        }
        n += 1;
        md.push_str(&format!("\n## Record {n}\n"));
        if !steps.is_empty() {
            md.push_str(&format!("\n**Steps**\n\n{steps}\n"));
        }
        if !solution.is_empty() {
            md.push_str(&format!("\n**Solution**\n\n{solution}\n"));
        }
    }
    md
}

/// Turns a ticket's solution into an article: the ticket's title, a Markdown of its description and every
/// processing record's steps and solution.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/article", tag = "kb", security(("bearer" = [])),
    params(("id" = i64, Path)), request_body = TicketArticleRequest,
    responses((status = 201, body = Article), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn article_from_ticket(
    State(s): State<ApiState>,
    c: Caller,
    IdPath(id): IdPath,
    JsonBody(req): JsonBody<TicketArticleRequest>,
) -> Result<(StatusCode, Json<Article>), ApiError> {
    let v = staff(&c)?;
    super::tickets::ticket_access(&s, &c, id).await?;
    let pool = &s.accounts.store.pool;
    let (title, description): (String, String) =
        sqlx::query_as("SELECT title, description FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?
            .ok_or_else(|| ApiError::not_found("ticket"))?;
    let records: Vec<(String, String)> = sqlx::query_as(
        "SELECT steps, solution FROM ticket_records WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let title: String = title
        .chars()
        .filter(|ch| !ch.is_control())
        .take(kb::MAX_TITLE_CHARS)
        .collect();
    let new = NewArticle {
        category: req
            .category
            .unwrap_or_else(|| TICKET_ARTICLE_CATEGORY.to_owned()),
        title,
        keywords: req.keywords,
        body: ticket_markdown(&description, &records),
        visibility: req.visibility.unwrap_or_default(),
    };
    let a = kb::create_article(&s.accounts.store, &now(&s), v.id, &new, Some(id), false).await?;
    Ok((StatusCode::CREATED, Json(a)))
}

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/api/v1/kb/articles",
            get(list_articles).post(create_article),
        )
        .route(
            "/api/v1/kb/articles/{id}",
            get(get_article).put(update_article).delete(delete_article),
        )
        .route("/api/v1/kb/categories", get(list_categories))
        .route("/api/v1/tickets/{id}/article", post(article_from_ticket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_becomes_markdown() {
        let md = ticket_markdown(
            "Printer jams",
            &[
                ("opened tray".into(), "".into()),
                ("".into(), "".into()),
                ("".into(), "replaced roller".into()),
            ],
        );
        assert_eq!(
            md,
            "## Problem\n\nPrinter jams\n\n## Record 1\n\n**Steps**\n\nopened tray\n\n\
             ## Record 2\n\n**Solution**\n\nreplaced roller\n"
        );
    }
}
