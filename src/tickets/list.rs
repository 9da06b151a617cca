//! Ticket lists: filters, text search and stable paging (`GET /api/v1/tickets`).

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Sqlite};

use super::desk::{
    check_len, ticket_from, Desk, DeskError, Ticket, TicketRow, MAX_SHORT, TICKET_COLUMNS,
};
use super::{Kind, Priority, Status};
use crate::store::{like_escape, timestamp};

/// List filters (`GET /api/v1/tickets`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TicketFilter {
    pub status: Option<Status>,
    pub kind: Option<Kind>,
    pub priority: Option<Priority>,
    pub assignee_id: Option<i64>,
    pub reporter_id: Option<i64>,
    /// Created at or after (RFC 3339).
    pub created_from: Option<String>,
    /// Created before (RFC 3339).
    pub created_to: Option<String>,
    /// Words in the title or the description.
    pub q: Option<String>,
    /// From 1.
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// A page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
}

impl Desk {
    /// A filtered, paginated list, newest first (ties broken by id). `only_reporter` restricts it to one
    /// reporter's tickets (customers).
    pub async fn list(
        &self,
        f: &TicketFilter,
        only_reporter: Option<i64>,
        max_page: u32,
    ) -> Result<Page<Ticket>, DeskError> {
        let page = f.page.unwrap_or(1).max(1);
        let per_page = f.per_page.unwrap_or(20).clamp(1, max_page.max(1));
        let time = |field: &str, v: &Option<String>| -> Result<Option<String>, DeskError> {
            v.as_deref()
                .map(|s| {
                    humantime::parse_rfc3339_weak(s)
                        .map(timestamp)
                        .map_err(|_| {
                            DeskError::Invalid(format!("{field}: not an RFC 3339 time: {s:?}"))
                        })
                })
                .transpose()
        };
        let (from, to) = (
            time("created_from", &f.created_from)?,
            time("created_to", &f.created_to)?,
        );
        if let Some(q) = &f.q {
            check_len("q", q, 0, MAX_SHORT)?;
        }
        let filters = |qb: &mut QueryBuilder<'_, Sqlite>| {
            qb.push(" WHERE 1 = 1");
            if let Some(v) = f.status {
                qb.push(" AND status = ").push_bind(v.as_str());
            }
            if let Some(v) = f.kind {
                qb.push(" AND kind = ").push_bind(v.as_str());
            }
            if let Some(v) = f.priority {
                qb.push(" AND priority = ").push_bind(v.as_str());
            }
            if let Some(v) = f.assignee_id {
                qb.push(" AND assignee_id = ").push_bind(v);
            }
            if let Some(v) = only_reporter.or(f.reporter_id) {
                qb.push(" AND reporter_id = ").push_bind(v);
            }
            if only_reporter.is_some() {
                if let Some(v) = f.reporter_id {
                    qb.push(" AND reporter_id = ").push_bind(v);
                }
            }
            if let Some(v) = from.clone() {
                qb.push(" AND created_at >= ").push_bind(v);
            }
            if let Some(v) = to.clone() {
                qb.push(" AND created_at < ").push_bind(v);
            }
            if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
                let pattern = format!("%{}%", like_escape(q));
                qb.push(" AND (title LIKE ")
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\' OR description LIKE ")
                    .push_bind(pattern)
                    .push(" ESCAPE '\\')");
            }
        };
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM tickets");
        filters(&mut count);
        let (total,): (i64,) = count.build_query_as().fetch_one(&self.store.pool).await?;
        let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {TICKET_COLUMNS} FROM tickets"));
        filters(&mut qb);
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(per_page))
            .push(" OFFSET ")
            .push_bind(i64::from(page - 1) * i64::from(per_page));
        let rows: Vec<TicketRow> = qb.build_query_as().fetch_all(&self.store.pool).await?;
        Ok(Page {
            items: rows.into_iter().map(ticket_from).collect(),
            total,
            page,
            per_page,
        })
    }
}
