//! Remote assistance from a ticket: the link between a relay session and its ticket, and the processing
//! records written when the session starts and ends (who ended it, duration, bytes).

use super::desk::{Desk, DeskError};
use crate::accounts::User;
use crate::store::timestamp;

impl Desk {
    /// Binds a relay session to a ticket and records its start.
    pub async fn link_assist(
        &self,
        tech: &User,
        ticket: i64,
        session: &str,
        code_expires_at: &str,
    ) -> Result<(), DeskError> {
        let now = timestamp(self.clock.wall());
        let mut tx = self.store.write().await?;
        sqlx::query(
            "INSERT INTO assist_links (session_id, ticket_id, technician_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(session)
        .bind(ticket)
        .bind(tech.id)
        .bind(&now)
        .execute(tx.conn())
        .await?;
        tx.commit().await?;
        let detail = format!(
            "remote assistance started: session {session}, technician {}, code valid until {code_expires_at}",
            tech.employee_id
        );
        self.add_record(None, ticket, "assist", "", "", &detail)
            .await?;
        Ok(())
    }

    /// Records the end of a session that came from a ticket (others are ignored).
    pub async fn assist_ended(&self, s: &crate::relay::SessionSummary) -> Result<(), DeskError> {
        let link: Option<(i64,)> =
            sqlx::query_as("SELECT ticket_id FROM assist_links WHERE session_id = $1")
                .bind(s.id.to_string())
                .fetch_optional(&self.store.pool)
                .await?;
        let Some((ticket,)) = link else {
            return Ok(());
        };
        use crate::core::EndReason as R;
        let ended_by = match s.reason {
            R::ByCustomer => "the customer",
            R::ByTechnician => "the technician",
            R::ByOperator => "the operator",
            R::IdleTimeout => "idle timeout",
            R::MaxDuration => "maximum duration",
            R::PeerGone(crate::core::Role::Customer) => "loss of the customer's connection",
            R::PeerGone(_) => "loss of the technician's connection",
            R::Expired => "expiry of the code before the customer joined",
            R::Shutdown => "relay shutdown",
            R::ByHost => "the host",
        };
        let detail = match s.paired_for {
            Some(d) => format!(
                "remote assistance ended: session {}, started {}, ended {}, ended by {ended_by}, duration {} s, {} bytes",
                s.id,
                timestamp(s.ended_at - d),
                timestamp(s.ended_at),
                d.as_secs(),
                s.bytes
            ),
            None => format!(
                "remote assistance ended before both sides had joined: session {}, ended {}, ended by {ended_by}",
                s.id,
                timestamp(s.ended_at)
            ),
        };
        self.add_record(None, ticket, "assist", "", "", &detail)
            .await?;
        Ok(())
    }
}
