//! Tickets: numbering, workflow, messages, processing records, audit, and remote assistance from a ticket.

use axum::Router;

use super::auth::Caller;
use super::{ApiError, ApiState};

/// Whether `c` may read (`write == false`) or add to (`write == true`) ticket `id`: staff may read every
/// ticket and add to it; a customer only its own tickets. A ticket the caller may not see is "not found".
pub(crate) async fn ticket_access(
    s: &ApiState,
    c: &Caller,
    id: i64,
    write: bool,
) -> Result<(), ApiError> {
    let _ = write;
    let row: Option<(i64,)> = sqlx::query_as("SELECT reporter_id FROM tickets WHERE id = $1")
        .bind(id)
        .fetch_optional(&s.accounts.store.pool)
        .await?;
    match row {
        Some((reporter,)) if c.role().is_staff() || reporter == c.id() => Ok(()),
        _ => Err(ApiError::not_found("ticket")),
    }
}

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
}
