//! The ticket desk: every read and write of tickets, their messages, records and audit entries.
//! Callers have already checked who may call; the desk enforces the workflow and validates fields.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::Sqlite;
use time::UtcOffset;

use super::notify::{self, Hub, Notification};
use super::{
    action_to, allowed_statuses, number, transition, Action, Facts, Kind, Priority, Status,
};
use crate::accounts::{Role, User};
use crate::clock::Clock;
use crate::store::{business_day, timestamp, Store, StoreError, WriteTx};

/// Why a desk operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// No such ticket (or one the caller may not see).
    #[error("no such ticket")]
    NotFound,
    /// A field is missing or malformed.
    #[error("{0}")]
    Invalid(String),
    /// The workflow does not allow this change now; `allowed` are the statuses the caller may set.
    #[error("{message}")]
    Transition {
        message: String,
        allowed: Vec<Status>,
    },
    /// The caller may not do this to this ticket.
    #[error("{0}")]
    Forbidden(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for DeskError {
    fn from(e: sqlx::Error) -> DeskError {
        DeskError::Store(StoreError::Sql(e))
    }
}

/// A ticket as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Ticket {
    pub id: i64,
    /// `GD` + business day + daily serial, e.g. `GD202310270001`.
    pub number: String,
    pub title: String,
    pub reporter_id: i64,
    pub department: String,
    pub contact: String,
    pub kind: Kind,
    pub priority: Priority,
    pub description: String,
    /// A registered device, if one was picked.
    pub device_id: Option<i64>,
    /// A device typed in (when none was picked).
    pub device_text: String,
    pub status: Status,
    pub assignee_id: Option<i64>,
    pub approved_by: Option<i64>,
    /// Times the reporter said it was not solved.
    pub reopen_count: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(sqlx::FromRow)]
pub(super) struct TicketRow {
    id: i64,
    number: String,
    title: String,
    reporter_id: i64,
    department: String,
    contact: String,
    kind: String,
    priority: String,
    description: String,
    device_id: Option<i64>,
    device_text: String,
    status: String,
    assignee_id: Option<i64>,
    approved_by: Option<i64>,
    reopen_count: i64,
    created_at: String,
    updated_at: String,
}

pub(super) const TICKET_COLUMNS: &str = "id, number, title, reporter_id, department, contact, kind, priority, \
     description, device_id, device_text, status, assignee_id, approved_by, reopen_count, created_at, updated_at";

pub(super) fn ticket_from(r: TicketRow) -> Ticket {
    Ticket {
        id: r.id,
        number: r.number,
        title: r.title,
        reporter_id: r.reporter_id,
        department: r.department,
        contact: r.contact,
        kind: r.kind.parse().unwrap_or(Kind::Other),
        priority: r.priority.parse().unwrap_or(Priority::Medium),
        description: r.description,
        device_id: r.device_id,
        device_text: r.device_text,
        status: r.status.parse().unwrap_or(Status::Received),
        assignee_id: r.assignee_id,
        approved_by: r.approved_by,
        reopen_count: r.reopen_count,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

impl Ticket {
    pub fn facts(&self) -> Facts {
        Facts {
            status: self.status,
            reporter_id: self.reporter_id,
            assignee_id: self.assignee_id,
        }
    }
}

/// The report form.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    /// 1 to 200 characters.
    pub title: String,
    pub kind: Kind,
    pub priority: Priority,
    #[serde(default)]
    pub description: String,
    /// Defaults to the reporter's department.
    #[serde(default)]
    pub department: Option<String>,
    /// Defaults to the reporter's contact.
    #[serde(default)]
    pub contact: Option<String>,
    /// A device from the registry (`GET /api/v1/devices`)...
    #[serde(default)]
    pub device_id: Option<i64>,
    /// ... or one typed in.
    #[serde(default)]
    pub device_text: String,
}

/// Limits on text fields (characters).
pub const MAX_TITLE: usize = 200;
pub const MAX_TEXT: usize = 20_000;
pub const MAX_SHORT: usize = 200;

pub(super) fn check_len(field: &str, v: &str, min: usize, max: usize) -> Result<(), DeskError> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(DeskError::Invalid(format!(
            "{field}: {min} to {max} characters, not {n}"
        )));
    }
    if v.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(DeskError::Invalid(format!(
            "{field}: control characters are not allowed"
        )));
    }
    Ok(())
}

/// A message on a ticket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema, sqlx::FromRow)]
pub struct Message {
    pub id: i64,
    pub ticket_id: i64,
    pub author_id: i64,
    /// Internal notes are for staff only; customers never see them.
    pub internal: bool,
    pub body: String,
    pub created_at: String,
}

/// A processing record: steps taken and the solution, or a remote-assistance session's summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema, sqlx::FromRow)]
pub struct Record {
    pub id: i64,
    pub ticket_id: i64,
    pub author_id: Option<i64>,
    /// `process` (by a person) or `assist` (a remote-assistance session).
    pub kind: String,
    pub steps: String,
    pub solution: String,
    /// For `assist`: session id, start, end, who ended it, duration and bytes.
    pub detail: String,
    pub created_at: String,
}

/// One audit entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub actor_id: Option<i64>,
    pub action: String,
    pub field: String,
    pub old_value: String,
    pub new_value: String,
    pub at: String,
}

/// The desk.
#[derive(Debug, Clone)]
pub struct Desk {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub zone: UtcOffset,
    pub hub: Hub,
    /// Notifications also go out through the accounts' sender (by default the outbox).
    pub sender: Arc<dyn crate::accounts::Sender>,
}

impl Desk {
    /// Stores a notification in `tx` and hands it to the sender; publish it after the commit.
    async fn notify(
        &self,
        tx: &mut WriteTx,
        at: &str,
        user: i64,
        kind: &str,
        ticket: i64,
        body: &str,
    ) -> Result<Notification, DeskError> {
        Ok(notify::insert(tx, &*self.sender, user, kind, Some(ticket), body, at).await?)
    }
}

/// A ticket by id, read through `e` (the pool, or a write transaction's connection).
async fn load<'e, E>(e: E, id: i64) -> Result<Ticket, DeskError>
where
    E: sqlx::Executor<'e, Database = Sqlite>,
{
    let row: Option<TicketRow> = sqlx::query_as(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(e)
    .await?;
    row.map(ticket_from).ok_or(DeskError::NotFound)
}

/// Writes one audit entry: `[action, field, old value, new value]`.
async fn audit(
    tx: &mut WriteTx,
    at: &str,
    actor: Option<i64>,
    ticket: i64,
    [action, field, old, new]: [&str; 4],
) -> Result<(), DeskError> {
    sqlx::query(
        "INSERT INTO audit_log (actor_id, entity, entity_id, action, field, old_value, new_value, at) \
         VALUES ($1, 'ticket', $2, $3, $4, $5, $6, $7)",
    )
    .bind(actor)
    .bind(ticket)
    .bind(action)
    .bind(field)
    .bind(old)
    .bind(new)
    .bind(at)
    .execute(tx.conn())
    .await?;
    Ok(())
}

impl Desk {
    fn now(&self) -> String {
        timestamp(self.clock.wall())
    }

    /// Files a ticket for `reporter`.
    pub async fn create(&self, reporter: &User, t: &NewTicket) -> Result<Ticket, DeskError> {
        check_len("title", t.title.trim(), 1, MAX_TITLE)?;
        check_len("description", &t.description, 0, MAX_TEXT)?;
        check_len("device_text", &t.device_text, 0, MAX_SHORT)?;
        let department = t
            .department
            .clone()
            .unwrap_or_else(|| reporter.department.clone());
        let contact = t
            .contact
            .clone()
            .unwrap_or_else(|| reporter.contact.clone());
        check_len("department", &department, 0, MAX_SHORT)?;
        check_len("contact", &contact, 0, MAX_SHORT)?;
        let wall = self.clock.wall();
        let (now, day) = (timestamp(wall), business_day(wall, self.zone));
        let mut tx = self.store.write().await?;
        if let Some(d) = t.device_id {
            let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM devices WHERE id = $1")
                .bind(d)
                .fetch_optional(tx.conn())
                .await?;
            if found.is_none() {
                return Err(DeskError::Invalid(format!("device_id: no device {d}")));
            }
        }
        let (needs_approval,): (bool,) =
            sqlx::query_as("SELECT needs_approval FROM approval_rules WHERE priority = $1")
                .bind(t.priority.as_str())
                .fetch_optional(tx.conn())
                .await?
                .unwrap_or((false,));
        let status = if needs_approval {
            Status::AwaitingApproval
        } else {
            Status::Received
        };
        let (serial,): (i64,) = sqlx::query_as(
            "INSERT INTO ticket_serials (day, last_serial) VALUES ($1, 1) \
             ON CONFLICT (day) DO UPDATE SET last_serial = ticket_serials.last_serial + 1 RETURNING last_serial",
        )
        .bind(&day)
        .fetch_one(tx.conn())
        .await?;
        let row: TicketRow = sqlx::query_as(&format!(
            "INSERT INTO tickets (number, title, reporter_id, department, contact, kind, priority, description, \
             device_id, device_text, status, reopen_count, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $12) RETURNING {TICKET_COLUMNS}"
        ))
        .bind(number(&day, serial))
        .bind(t.title.trim())
        .bind(reporter.id)
        .bind(department.trim())
        .bind(contact.trim())
        .bind(t.kind.as_str())
        .bind(t.priority.as_str())
        .bind(&t.description)
        .bind(t.device_id)
        .bind(t.device_text.trim())
        .bind(status.as_str())
        .bind(&now)
        .fetch_one(tx.conn())
        .await?;
        let ticket = ticket_from(row);
        audit(
            &mut tx,
            &now,
            Some(reporter.id),
            ticket.id,
            ["create", "status", "", status.as_str()],
        )
        .await?;
        let mut sent = Vec::new();
        if needs_approval {
            let supervisors: Vec<(i64,)> = sqlx::query_as(
                "SELECT id FROM users WHERE role IN ('supervisor', 'administrator') AND disabled = FALSE",
            )
            .fetch_all(tx.conn())
            .await?;
            for (sid,) in supervisors {
                let body = format!("{} ({}) needs your approval", ticket.number, t.priority);
                sent.push(
                    self.notify(&mut tx, &now, sid, "approval_needed", ticket.id, &body)
                        .await?,
                );
            }
        }
        tx.commit().await?;
        self.hub.publish(sent);
        Ok(ticket)
    }

    /// A ticket by id.
    pub async fn get(&self, id: i64) -> Result<Ticket, DeskError> {
        load(&self.store.pool, id).await
    }

    /// Approves a ticket awaiting approval (supervisor).
    pub async fn approve(&self, by: &User, id: i64) -> Result<Ticket, DeskError> {
        let now = self.now();
        let mut tx = self.store.write().await?;
        let t = load(tx.conn(), id).await?;
        let Some(to) = transition(t.facts(), Action::Approve, by) else {
            return Err(refused(&t, by, "approve"));
        };
        sqlx::query(
            "UPDATE tickets SET status = $1, approved_by = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(to.as_str())
        .bind(by.id)
        .bind(&now)
        .bind(id)
        .execute(tx.conn())
        .await?;
        audit(
            &mut tx,
            &now,
            Some(by.id),
            id,
            ["approve", "status", t.status.as_str(), to.as_str()],
        )
        .await?;
        let body = format!("{} was approved", t.number);
        let n = self
            .notify(&mut tx, &now, t.reporter_id, "approved", id, &body)
            .await?;
        tx.commit().await?;
        self.hub.publish([n]);
        self.get(id).await
    }

    /// Assigns or reassigns a ticket (supervisor) to a technician or above.
    pub async fn assign(&self, by: &User, id: i64, assignee: i64) -> Result<Ticket, DeskError> {
        let now = self.now();
        let mut tx = self.store.write().await?;
        let t = load(tx.conn(), id).await?;
        let Some(to) = transition(t.facts(), Action::Assign, by) else {
            return Err(refused(&t, by, "assign"));
        };
        let who: Option<(String, bool)> =
            sqlx::query_as("SELECT role, disabled FROM users WHERE id = $1")
                .bind(assignee)
                .fetch_optional(tx.conn())
                .await?;
        match who {
            Some((role, false)) if role.parse::<Role>().is_ok_and(Role::is_staff) => {}
            _ => {
                return Err(DeskError::Invalid(format!(
                "assignee_id: {assignee} is not an enabled technician, supervisor or administrator"
            )))
            }
        }
        sqlx::query(
            "UPDATE tickets SET status = $1, assignee_id = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(to.as_str())
        .bind(assignee)
        .bind(&now)
        .bind(id)
        .execute(tx.conn())
        .await?;
        let old = t.assignee_id.map(|a| a.to_string()).unwrap_or_default();
        audit(
            &mut tx,
            &now,
            Some(by.id),
            id,
            ["assign", "assignee_id", &old, &assignee.to_string()],
        )
        .await?;
        if to != t.status {
            audit(
                &mut tx,
                &now,
                Some(by.id),
                id,
                ["assign", "status", t.status.as_str(), to.as_str()],
            )
            .await?;
        }
        let body = format!("{} \"{}\" was assigned to you", t.number, t.title);
        let n = self
            .notify(&mut tx, &now, assignee, "assigned", id, &body)
            .await?;
        tx.commit().await?;
        self.hub.publish([n]);
        self.get(id).await
    }

    /// Moves a ticket to `to` (start, resolve, confirm, or reject with a reason).
    pub async fn set_status(
        &self,
        by: &User,
        id: i64,
        to: Status,
        reason: Option<&str>,
    ) -> Result<Ticket, DeskError> {
        let now = self.now();
        let mut tx = self.store.write().await?;
        let t = load(tx.conn(), id).await?;
        let Some(action) = action_to(t.facts(), to, by) else {
            return Err(refused(&t, by, &format!("move to {to}")));
        };
        let reason = reason.map(str::trim).unwrap_or("");
        check_len("reason", reason, 0, MAX_TEXT)?;
        if action == Action::Reject && reason.is_empty() {
            return Err(DeskError::Invalid(
                "reason: say why it is not solved".into(),
            ));
        }
        let reopen = i64::from(action == Action::Reject);
        sqlx::query(
            "UPDATE tickets SET status = $1, reopen_count = reopen_count + $2, updated_at = $3 WHERE id = $4",
        )
        .bind(to.as_str())
        .bind(reopen)
        .bind(&now)
        .bind(id)
        .execute(tx.conn())
        .await?;
        let verb = match action {
            Action::Reject => "reopen",
            Action::Confirm => "confirm",
            Action::Resolve => "resolve",
            _ => "start",
        };
        audit(
            &mut tx,
            &now,
            Some(by.id),
            id,
            [verb, "status", t.status.as_str(), to.as_str()],
        )
        .await?;
        let mut sent = Vec::new();
        match action {
            Action::Resolve => {
                let body = format!("{} is solved: please confirm, or say it is not", t.number);
                sent.push(
                    self.notify(
                        &mut tx,
                        &now,
                        t.reporter_id,
                        "awaiting_confirmation",
                        id,
                        &body,
                    )
                    .await?,
                );
            }
            Action::Reject => {
                audit(
                    &mut tx,
                    &now,
                    Some(by.id),
                    id,
                    ["reopen", "reason", "", reason],
                )
                .await?;
                if let Some(a) = t.assignee_id {
                    let body = format!("{} was reported unsolved: {reason}", t.number);
                    sent.push(self.notify(&mut tx, &now, a, "reopened", id, &body).await?);
                }
            }
            Action::Confirm => {
                if let Some(a) = t.assignee_id {
                    let body = format!("{} was confirmed solved", t.number);
                    sent.push(
                        self.notify(&mut tx, &now, a, "confirmed", id, &body)
                            .await?,
                    );
                }
            }
            _ => {}
        }
        tx.commit().await?;
        self.hub.publish(sent);
        self.get(id).await
    }

    /// Adds a message (or, from staff, an internal note).
    pub async fn add_message(
        &self,
        by: &User,
        id: i64,
        body: &str,
        internal: bool,
    ) -> Result<Message, DeskError> {
        check_len("body", body.trim(), 1, MAX_TEXT)?;
        if internal && !by.role.is_staff() {
            return Err(DeskError::Forbidden(
                "only staff write internal notes".into(),
            ));
        }
        let now = self.now();
        let mut tx = self.store.write().await?;
        load(tx.conn(), id).await?;
        let (mid,): (i64,) = sqlx::query_as(
            "INSERT INTO ticket_messages (ticket_id, author_id, internal, body, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(id)
        .bind(by.id)
        .bind(internal)
        .bind(body.trim())
        .bind(&now)
        .fetch_one(tx.conn())
        .await?;
        let what = if internal { "note" } else { "message" };
        audit(
            &mut tx,
            &now,
            Some(by.id),
            id,
            [what, "", "", &mid.to_string()],
        )
        .await?;
        tx.commit().await?;
        Ok(Message {
            id: mid,
            ticket_id: id,
            author_id: by.id,
            internal,
            body: body.trim().to_owned(),
            created_at: now,
        })
    }

    /// Messages, oldest first; internal notes only for staff.
    pub async fn messages(&self, id: i64, staff: bool) -> Result<Vec<Message>, DeskError> {
        Ok(sqlx::query_as(
            "SELECT id, ticket_id, author_id, internal, body, created_at FROM ticket_messages \
             WHERE ticket_id = $1 AND (internal = FALSE OR $2) ORDER BY id",
        )
        .bind(id)
        .bind(staff)
        .fetch_all(&self.store.pool)
        .await?)
    }

    /// Adds a processing record (the assignee or a supervisor).
    pub async fn add_record(
        &self,
        by: Option<&User>,
        id: i64,
        kind: &str,
        steps: &str,
        solution: &str,
        detail: &str,
    ) -> Result<Record, DeskError> {
        check_len("steps", steps, 0, MAX_TEXT)?;
        check_len("solution", solution, 0, MAX_TEXT)?;
        if kind == "process" && steps.trim().is_empty() && solution.trim().is_empty() {
            return Err(DeskError::Invalid("steps or solution is required".into()));
        }
        let now = self.now();
        let mut tx = self.store.write().await?;
        let t = load(tx.conn(), id).await?;
        if let Some(u) = by {
            if t.assignee_id != Some(u.id) && u.role < Role::Supervisor {
                return Err(DeskError::Forbidden(
                    "only the assignee or a supervisor adds processing records".into(),
                ));
            }
        }
        let (rid,): (i64,) = sqlx::query_as(
            "INSERT INTO ticket_records (ticket_id, author_id, kind, steps, solution, detail, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(id)
        .bind(by.map(|u| u.id))
        .bind(kind)
        .bind(steps.trim())
        .bind(solution.trim())
        .bind(detail)
        .bind(&now)
        .fetch_one(tx.conn())
        .await?;
        audit(
            &mut tx,
            &now,
            by.map(|u| u.id),
            id,
            ["record", kind, "", &rid.to_string()],
        )
        .await?;
        tx.commit().await?;
        Ok(Record {
            id: rid,
            ticket_id: id,
            author_id: by.map(|u| u.id),
            kind: kind.to_owned(),
            steps: steps.trim().to_owned(),
            solution: solution.trim().to_owned(),
            detail: detail.to_owned(),
            created_at: now,
        })
    }

    /// Processing records, oldest first.
    pub async fn records(&self, id: i64) -> Result<Vec<Record>, DeskError> {
        Ok(sqlx::query_as(
            "SELECT id, ticket_id, author_id, kind, steps, solution, detail, created_at FROM ticket_records \
             WHERE ticket_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.store.pool)
        .await?)
    }

    /// The audit log of a ticket, oldest first.
    pub async fn audit_log(&self, id: i64) -> Result<Vec<AuditEntry>, DeskError> {
        Ok(sqlx::query_as(
            "SELECT id, actor_id, action, field, old_value, new_value, at FROM audit_log \
             WHERE entity = 'ticket' AND entity_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.store.pool)
        .await?)
    }
}

/// The refusal of an illegal transition, naming what the caller may do instead.
fn refused(t: &Ticket, by: &User, wanted: &str) -> DeskError {
    let allowed = allowed_statuses(t.facts(), by);
    let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
    DeskError::Transition {
        message: format!(
            "{wanted}: not allowed for a ticket that is {} (as {}); allowed now: {}",
            t.status,
            by.role,
            if names.is_empty() {
                "nothing".to_string()
            } else {
                names.join(", ")
            }
        ),
        allowed,
    }
}
