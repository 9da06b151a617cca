//! Notifications (assigned, awaiting your confirmation, reopened, approval needed): kept per user in SQL and
//! published live to logged-in clients (Server-Sent Events) through a [`Hub`].
//!
//! Writers insert the row inside their own transaction with [`insert`] and publish with [`Hub::publish`]
//! after the commit, so a client never hears of a change that was rolled back. The hub is a bounded
//! broadcast: a stream that falls more than [`HUB_CAPACITY`] notifications behind skips the oldest and is
//! told to reload the list (`event: lagged`); nothing is lost from the stored list.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::store::{StoreError, WriteTx};

/// Notifications buffered for live streams.
pub const HUB_CAPACITY: usize = 1024;

/// One notification.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema, sqlx::FromRow)]
pub struct Notification {
    pub id: i64,
    pub user_id: i64,
    /// `assigned`, `awaiting_confirmation`, `reopened`, `approval_needed`, `approved`, `confirmed`.
    pub kind: String,
    pub ticket_id: Option<i64>,
    pub body: String,
    pub created_at: String,
    pub read: bool,
}

/// Live delivery of notifications to open streams.
#[derive(Debug, Clone)]
pub struct Hub {
    tx: broadcast::Sender<Notification>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            tx: broadcast::channel(HUB_CAPACITY).0,
        }
    }
}

impl Hub {
    pub fn publish(&self, items: impl IntoIterator<Item = Notification>) {
        for n in items {
            // No stream open: nothing to do; the row is stored.
            let _ = self.tx.send(n);
        }
    }
    pub fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.tx.subscribe()
    }
}

/// Stores a notification for `user_id` in `tx` and hands it to `sender` (addressed to the user's e-mail,
/// else phone, else employee id); publish it after the commit.
pub async fn insert(
    tx: &mut WriteTx,
    sender: &dyn crate::accounts::Sender,
    user_id: i64,
    kind: &str,
    ticket_id: Option<i64>,
    body: &str,
    at: &str,
) -> Result<Notification, StoreError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO notifications (user_id, kind, ticket_id, body, created_at, read) \
         VALUES ($1, $2, $3, $4, $5, FALSE) RETURNING id",
    )
    .bind(user_id)
    .bind(kind)
    .bind(ticket_id)
    .bind(body)
    .bind(at)
    .fetch_one(tx.conn())
    .await?;
    let (recipient,): (String,) =
        sqlx::query_as("SELECT COALESCE(email, phone, employee_id) FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_one(tx.conn())
            .await?;
    sender
        .send(
            tx,
            crate::accounts::Outgoing {
                user_id: Some(user_id),
                channel: "notification",
                recipient: &recipient,
                body,
                at,
            },
        )
        .await?;
    Ok(Notification {
        id,
        user_id,
        kind: kind.to_owned(),
        ticket_id,
        body: body.to_owned(),
        created_at: at.to_owned(),
        read: false,
    })
}

impl super::desk::Desk {
    /// A user's notifications, newest first (at most 200).
    pub async fn notifications(
        &self,
        user: i64,
        unread_only: bool,
    ) -> Result<Vec<Notification>, super::desk::DeskError> {
        Ok(sqlx::query_as(
            "SELECT id, user_id, kind, ticket_id, body, created_at, read FROM notifications \
             WHERE user_id = $1 AND (read = FALSE OR NOT $2) ORDER BY id DESC LIMIT 200",
        )
        .bind(user)
        .bind(unread_only)
        .fetch_all(&self.store.pool)
        .await?)
    }

    /// Marks a notification read; false if it is not the user's.
    pub async fn mark_read(&self, user: i64, id: i64) -> Result<bool, super::desk::DeskError> {
        let mut tx = self.store.write().await?;
        let r = sqlx::query("UPDATE notifications SET read = TRUE WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }
}
