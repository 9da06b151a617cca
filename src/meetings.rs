//! Scheduled meetings: their record in SQL (topic, host, window, code, invitees, recording directory,
//! minutes), the rules for a new meeting's window, topic and invitees, and the invitations.
//!
//! The live room is the relay's ([`crate::relay::Relay::create_meeting`]) and lives in memory only; this
//! module never touches it. Whether a meeting is scheduled, live or ended is decided by [`state`] from what
//! the relay says about the room and what is stored here. Roles are checked by the API
//! (`crate::api::meetings`): this module only offers the facts ([`Meeting::is_host`],
//! [`Meeting::is_invited`]).
//!
//! Invitations are ordinary notifications (kind [`INVITATION_KIND`]): stored, handed to the accounts' sender
//! (the outbox by default) in the transaction that stores the meeting, and returned so the caller publishes
//! them to live streams after the commit ([`crate::tickets::notify`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sqlx::{QueryBuilder, Sqlite};

use crate::config::MeetingSettings;
use crate::store::{Store, StoreError};
use crate::tickets::list::Page;
use crate::tickets::notify::{self, Notification};

/// Longest topic, in characters (after trimming).
pub const MAX_TOPIC_CHARS: usize = 200;
/// Invitees per meeting: enough for a department, small enough that one request's notifications stay one
/// short transaction.
pub const MAX_INVITEES: usize = 200;
/// Longest minutes body, in characters.
pub const MAX_MINUTES_CHARS: usize = 100_000;
/// A start this far in the past still counts as "now": a form filled in a minute ago, or clocks a little
/// apart, should not be refused.
pub const START_GRACE: Duration = Duration::from_secs(5 * 60);
/// The notification kind of an invitation.
pub const INVITATION_KIND: &str = "meeting_invitation";

/// Why a meeting operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MeetingError {
    /// A field breaks a rule (the message names it).
    #[error("{0}")]
    Invalid(String),
    /// No such meeting.
    #[error("no such meeting")]
    NotFound,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MeetingError {
    fn from(e: sqlx::Error) -> MeetingError {
        MeetingError::Store(e.into())
    }
}

fn invalid(msg: impl Into<String>) -> MeetingError {
    MeetingError::Invalid(msg.into())
}

/// Where a meeting is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MeetingState {
    /// The room exists but the window has not opened (the code is refused until it does).
    Scheduled,
    /// The window is open and the room exists.
    Live,
    /// Ended by the host or an operator, the window closed, idle too long, or the server restarted.
    Ended,
}

/// The state of a meeting whose room exists on the relay (`room`) or not, ended through the API or not,
/// at wall time `now`.
pub fn state(room: bool, ended: bool, now: SystemTime, starts_at: SystemTime) -> MeetingState {
    if ended || !room {
        MeetingState::Ended
    } else if now >= starts_at {
        MeetingState::Live
    } else {
        MeetingState::Scheduled
    }
}

/// A meeting as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Meeting {
    /// The relay's meeting id, 32 lowercase hex digits.
    pub id: String,
    pub topic: String,
    pub host_id: i64,
    pub ticket_id: Option<i64>,
    pub starts_at: String,
    pub ends_at: String,
    /// Digits only.
    pub code: String,
    pub created_at: String,
    /// The latest recording's directory, relative to the data directory.
    pub recording_dir: Option<String>,
    /// Whether that recording was running as last set through the API.
    pub recording_active: bool,
    pub minutes_article_id: Option<i64>,
    pub ended_at: Option<String>,
    /// Invited users, by id (ascending).
    pub invitees: Vec<i64>,
}

impl Meeting {
    pub fn is_host(&self, user: i64) -> bool {
        self.host_id == user
    }
    pub fn is_invited(&self, user: i64) -> bool {
        self.invitees.contains(&user)
    }
    /// The window's bounds as times (stored as RFC 3339 text).
    pub fn window(&self) -> (SystemTime, SystemTime) {
        (parse_stored(&self.starts_at), parse_stored(&self.ends_at))
    }
}

/// A span in whole days when it is one ("90 days", not "2months 29days 2h 52m 48s"), else as humantime.
fn in_days(d: Duration) -> String {
    match d.as_secs() {
        s if s > 0 && s % 86_400 == 0 => format!("{} days", s / 86_400),
        _ => humantime::format_duration(d).to_string(),
    }
}

/// A time column as written by [`crate::store::timestamp`] (the epoch if it is somehow not one).
fn parse_stored(s: &str) -> SystemTime {
    humantime::parse_rfc3339(s).unwrap_or(UNIX_EPOCH)
}

/// `t` truncated to whole milliseconds, as the time columns keep it.
fn to_millis(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(crate::relay::unix_ms(t))
}

/// Parses an RFC 3339 time with any offset (`2024-05-01T09:30:00+08:00`, `...Z`).
pub fn parse_time(field: &str, s: &str) -> Result<SystemTime, MeetingError> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .map(SystemTime::from)
        .map_err(|_| invalid(format!("{field}: not an RFC 3339 time: {s:?}")))
}

/// A meeting's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub starts_at: SystemTime,
    pub ends_at: SystemTime,
}

/// The window of a new meeting asked for at `now`: `starts_at` (default now; up to [`START_GRACE`] in the
/// past counts as now; at most `max_schedule_ahead` ahead) and `duration_minutes` (default
/// `default_duration`, 1 to `max_duration`). Both ends in whole milliseconds.
pub fn window(
    now: SystemTime,
    starts_at: Option<SystemTime>,
    duration_minutes: Option<u32>,
    cfg: &MeetingSettings,
) -> Result<Window, MeetingError> {
    let now = to_millis(now);
    let start = match starts_at.map(to_millis) {
        None => now,
        Some(t) if t >= now => {
            if t.duration_since(now).unwrap_or_default() > cfg.max_schedule_ahead.0 {
                return Err(invalid(format!(
                    "starts_at: at most {} ahead",
                    in_days(cfg.max_schedule_ahead.0)
                )));
            }
            t
        }
        Some(t) if now.duration_since(t).unwrap_or_default() <= START_GRACE => now,
        Some(_) => {
            return Err(invalid(format!(
                "starts_at: in the past (more than {} ago)",
                humantime::format_duration(START_GRACE)
            )))
        }
    };
    let max_minutes = cfg.max_duration.0.as_secs() / 60;
    let length = match duration_minutes {
        None => cfg.default_duration.0.min(cfg.max_duration.0),
        Some(m) if m >= 1 && u64::from(m) <= max_minutes => Duration::from_secs(u64::from(m) * 60),
        Some(m) => {
            return Err(invalid(format!(
                "duration_minutes: 1 to {max_minutes}, not {m}"
            )))
        }
    };
    if length.is_zero() {
        return Err(invalid(
            "duration_minutes: meeting.default_duration is zero",
        ));
    }
    Ok(Window {
        starts_at: start,
        ends_at: start + length,
    })
}

/// The topic, trimmed, or why it is refused.
pub fn check_topic(raw: &str) -> Result<String, MeetingError> {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 || n > MAX_TOPIC_CHARS || t.chars().any(char::is_control) {
        return Err(invalid(format!(
            "topic: 1 to {MAX_TOPIC_CHARS} characters, no control characters (not {n})"
        )));
    }
    Ok(t.to_owned())
}

/// The invitees of a meeting hosted by `host`: each once, the host left out (they are there anyway);
/// every one an existing, enabled user, else the first that is not is named.
pub async fn check_invitees(
    store: &Store,
    host: i64,
    ids: &[i64],
) -> Result<Vec<i64>, MeetingError> {
    if ids.len() > MAX_INVITEES {
        return Err(invalid(format!(
            "invitees: at most {MAX_INVITEES}, not {}",
            ids.len()
        )));
    }
    let mut wanted: Vec<i64> = ids.iter().copied().filter(|id| *id != host).collect();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.is_empty() {
        return Ok(wanted);
    }
    let mut qb =
        QueryBuilder::<Sqlite>::new("SELECT id FROM users WHERE disabled = FALSE AND id IN (");
    let mut list = qb.separated(", ");
    for id in &wanted {
        list.push_bind(*id);
    }
    qb.push(")");
    let found: Vec<(i64,)> = qb.build_query_as().fetch_all(&store.pool).await?;
    let found: std::collections::HashSet<i64> = found.into_iter().map(|r| r.0).collect();
    // In the order given, so the message names the first one the client sent.
    if let Some(bad) = ids.iter().find(|id| **id != host && !found.contains(id)) {
        return Err(invalid(format!(
            "invitees: user {bad} does not exist or is disabled"
        )));
    }
    Ok(wanted)
}

/// A meeting to store (the relay has created its room).
#[derive(Debug, Clone)]
pub struct NewMeeting<'a> {
    pub id: &'a str,
    pub topic: &'a str,
    pub host_id: i64,
    pub ticket_id: Option<i64>,
    pub starts_at: &'a str,
    pub ends_at: &'a str,
    pub code: &'a str,
    pub created_at: &'a str,
    /// Already checked ([`check_invitees`]).
    pub invitees: &'a [i64],
}

/// Stores a meeting with its invitees and sends each invitee `invitation` (one transaction); returns the
/// meeting and the notifications to publish after the commit.
pub async fn insert(
    store: &Store,
    sender: &dyn crate::accounts::Sender,
    m: &NewMeeting<'_>,
    invitation: &str,
) -> Result<(Meeting, Vec<Notification>), MeetingError> {
    let mut tx = store.write().await?;
    sqlx::query(
        "INSERT INTO meetings (id, topic, host_id, ticket_id, starts_at, ends_at, code, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(m.id)
    .bind(m.topic)
    .bind(m.host_id)
    .bind(m.ticket_id)
    .bind(m.starts_at)
    .bind(m.ends_at)
    .bind(m.code)
    .bind(m.created_at)
    .execute(tx.conn())
    .await?;
    let mut sent = Vec::with_capacity(m.invitees.len());
    for user in m.invitees {
        sqlx::query("INSERT INTO meeting_invitees (meeting_id, user_id) VALUES ($1, $2)")
            .bind(m.id)
            .bind(*user)
            .execute(tx.conn())
            .await?;
        sent.push(
            notify::insert(
                &mut tx,
                sender,
                *user,
                INVITATION_KIND,
                None,
                invitation,
                m.created_at,
            )
            .await?,
        );
    }
    tx.commit().await?;
    let meeting = Meeting {
        id: m.id.to_owned(),
        topic: m.topic.to_owned(),
        host_id: m.host_id,
        ticket_id: m.ticket_id,
        starts_at: m.starts_at.to_owned(),
        ends_at: m.ends_at.to_owned(),
        code: m.code.to_owned(),
        created_at: m.created_at.to_owned(),
        recording_dir: None,
        recording_active: false,
        minutes_article_id: None,
        ended_at: None,
        invitees: m.invitees.to_vec(),
    };
    Ok((meeting, sent))
}

type MeetingRow = (
    String,
    String,
    i64,
    Option<i64>,
    String,
    String,
    String,
    String,
    Option<String>,
    bool,
    Option<i64>,
    Option<String>,
);

const MEETING_COLUMNS: &str =
    "id, topic, host_id, ticket_id, starts_at, ends_at, code, created_at, \
     recording_dir, recording_active, minutes_article_id, ended_at";

fn meeting_of(r: MeetingRow, invitees: Vec<i64>) -> Meeting {
    Meeting {
        id: r.0,
        topic: r.1,
        host_id: r.2,
        ticket_id: r.3,
        starts_at: r.4,
        ends_at: r.5,
        code: r.6,
        created_at: r.7,
        recording_dir: r.8,
        recording_active: r.9,
        minutes_article_id: r.10,
        ended_at: r.11,
        invitees,
    }
}

/// Meetings not ended whose window closes after `now` (a stored timestamp): id, code, start, end. The server
/// brings their rooms back at start.
pub async fn open(
    store: &Store,
    now: &str,
) -> Result<Vec<(String, String, SystemTime, SystemTime)>, MeetingError> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, code, starts_at, ends_at FROM meetings WHERE ended_at IS NULL AND ends_at > $1",
    )
    .bind(now)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, code, s, e)| (id, code, parse_stored(&s), parse_stored(&e)))
        .collect())
}

/// Meeting `id` (32 lowercase hex digits).
pub async fn get(store: &Store, id: &str) -> Result<Meeting, MeetingError> {
    let row: Option<MeetingRow> = sqlx::query_as(&format!(
        "SELECT {MEETING_COLUMNS} FROM meetings WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&store.pool)
    .await?;
    let row = row.ok_or(MeetingError::NotFound)?;
    let invitees: Vec<(i64,)> = sqlx::query_as(
        "SELECT user_id FROM meeting_invitees WHERE meeting_id = $1 ORDER BY user_id",
    )
    .bind(id)
    .fetch_all(&store.pool)
    .await?;
    Ok(meeting_of(row, invitees.into_iter().map(|r| r.0).collect()))
}

/// A page of meetings, newest first (ties by id): those `only_for` hosts or is invited to, or all.
pub async fn list(
    store: &Store,
    only_for: Option<i64>,
    page: u32,
    per_page: u32,
) -> Result<Page<Meeting>, MeetingError> {
    let (page, per_page) = (page.max(1), per_page.max(1));
    let filter = |qb: &mut QueryBuilder<'_, Sqlite>| {
        if let Some(user) = only_for {
            qb.push(" WHERE host_id = ")
                .push_bind(user)
                .push(" OR id IN (SELECT meeting_id FROM meeting_invitees WHERE user_id = ")
                .push_bind(user)
                .push(")");
        }
    };
    let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM meetings");
    filter(&mut count);
    let (total,): (i64,) = count.build_query_as().fetch_one(&store.pool).await?;
    let mut qb = QueryBuilder::<Sqlite>::new(format!("SELECT {MEETING_COLUMNS} FROM meetings"));
    filter(&mut qb);
    qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(per_page))
        .push(" OFFSET ")
        .push_bind(i64::from(page - 1) * i64::from(per_page));
    let rows: Vec<MeetingRow> = qb.build_query_as().fetch_all(&store.pool).await?;
    let mut invitees: std::collections::HashMap<String, Vec<i64>> = Default::default();
    if !rows.is_empty() {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "SELECT meeting_id, user_id FROM meeting_invitees WHERE meeting_id IN (",
        );
        let mut ids = qb.separated(", ");
        for r in &rows {
            ids.push_bind(r.0.clone());
        }
        qb.push(") ORDER BY user_id");
        let pairs: Vec<(String, i64)> = qb.build_query_as().fetch_all(&store.pool).await?;
        for (m, u) in pairs {
            invitees.entry(m).or_default().push(u);
        }
    }
    let items = rows
        .into_iter()
        .map(|r| {
            let inv = invitees.remove(&r.0).unwrap_or_default();
            meeting_of(r, inv)
        })
        .collect();
    Ok(Page {
        items,
        total,
        page,
        per_page,
    })
}

/// Records the recording's directory (`None`: keep the stored one) and whether it runs.
pub async fn set_recording(
    store: &Store,
    id: &str,
    dir: Option<&str>,
    active: bool,
) -> Result<(), MeetingError> {
    let mut tx = store.write().await?;
    sqlx::query(
        "UPDATE meetings SET recording_dir = COALESCE($1, recording_dir), recording_active = $2 \
         WHERE id = $3",
    )
    .bind(dir)
    .bind(active)
    .bind(id)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Makes `article` the meeting's minutes unless it has some already (false then: nothing changed).
pub async fn claim_minutes(store: &Store, id: &str, article: i64) -> Result<bool, MeetingError> {
    let mut tx = store.write().await?;
    let r = sqlx::query(
        "UPDATE meetings SET minutes_article_id = $1 WHERE id = $2 AND minutes_article_id IS NULL",
    )
    .bind(article)
    .bind(id)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(r.rows_affected() == 1)
}

/// Notes that the meeting ended at `at`, or at its scheduled end if that came first (a room notices its
/// window close a moment late); no change if an end is already noted. A recording cannot outlive its room,
/// so it is no longer active either.
pub async fn mark_ended(store: &Store, id: &str, at: &str) -> Result<(), MeetingError> {
    let mut tx = store.write().await?;
    // Timestamps are stored in one RFC 3339 form (UTC, milliseconds), so they compare as text.
    sqlx::query(
        "UPDATE meetings SET ended_at = CASE WHEN $1 < ends_at THEN $1 ELSE ends_at END, \
         recording_active = FALSE WHERE id = $2 AND ended_at IS NULL",
    )
    .bind(at)
    .bind(id)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The Markdown of a meeting's minutes article: the minutes as written, then a line naming the meeting and,
/// if it was recorded, where the recording is.
pub fn minutes_markdown(body: &str, meeting_id: &str, recording_dir: Option<&str>) -> String {
    let mut md = body.trim_end().to_owned();
    md.push_str(&format!("\n\n---\nMeeting {meeting_id}"));
    if let Some(dir) = recording_dir {
        md.push_str(&format!(
            " · recording: `{dir}` (in the server's data directory)"
        ));
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Dur;

    fn cfg() -> MeetingSettings {
        let mut l = crate::config::MeetingLayer::defaults();
        l.default_duration = Some(Dur(Duration::from_secs(3600)));
        l.max_duration = Some(Dur(Duration::from_secs(4 * 3600)));
        l.max_schedule_ahead = Some(Dur(Duration::from_secs(86_400)));
        l.resolve()
    }

    #[test]
    fn the_window_defaults_to_now_and_the_default_length() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123) + Duration::from_nanos(456);
        let w = window(now, None, None, &cfg()).unwrap();
        assert_eq!(
            w.starts_at,
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );
        assert_eq!(
            w.ends_at.duration_since(w.starts_at).unwrap(),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn the_window_is_bounded() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let c = cfg();
        // A little in the past is now; more is refused.
        let w = window(now, Some(now - Duration::from_secs(120)), Some(30), &c).unwrap();
        assert_eq!(w.starts_at, now);
        assert!(window(
            now,
            Some(now - START_GRACE - Duration::from_secs(1)),
            None,
            &c
        )
        .is_err());
        // Up to max_schedule_ahead, not beyond.
        let day = Duration::from_secs(86_400);
        assert_eq!(
            window(now, Some(now + day), None, &c).unwrap().starts_at,
            now + day
        );
        assert!(window(now, Some(now + day + Duration::from_secs(1)), None, &c).is_err());
        // 1 to max_duration minutes.
        assert!(window(now, None, Some(0), &c).is_err());
        assert!(window(now, None, Some(240), &c).is_ok());
        assert!(window(now, None, Some(241), &c).is_err());
    }

    #[test]
    fn times_parse_with_any_offset() {
        let a = parse_time("t", "2024-05-01T09:30:00+08:00").unwrap();
        let b = parse_time("t", "2024-05-01T01:30:00Z").unwrap();
        assert_eq!(a, b);
        assert!(parse_time("t", "2024-05-01 09:30").is_err());
        assert!(parse_time("t", "tomorrow").is_err());
    }

    #[test]
    fn topics_are_trimmed_and_bounded() {
        assert_eq!(check_topic("  周会 weekly ").unwrap(), "周会 weekly");
        assert!(check_topic("   ").is_err());
        assert!(check_topic(&"会".repeat(200)).is_ok());
        assert!(check_topic(&"会".repeat(201)).is_err());
        assert!(check_topic("a\u{7}b").is_err());
    }

    #[test]
    fn state_follows_the_room_and_the_window() {
        let t = UNIX_EPOCH + Duration::from_secs(1000);
        let later = t + Duration::from_secs(1);
        assert_eq!(state(true, false, t, later), MeetingState::Scheduled);
        assert_eq!(state(true, false, later, later), MeetingState::Live);
        assert_eq!(state(false, false, later, t), MeetingState::Ended);
        assert_eq!(state(true, true, later, t), MeetingState::Ended);
    }

    #[test]
    fn minutes_end_with_the_meeting_and_its_recording() {
        let md = minutes_markdown("Agreed.\n\n", "ab12", Some("recordings/ab12"));
        assert_eq!(
            md,
            "Agreed.\n\n---\nMeeting ab12 · recording: `recordings/ab12` (in the server's data directory)\n"
        );
        assert_eq!(
            minutes_markdown("x", "ab12", None),
            "x\n\n---\nMeeting ab12\n"
        );
    }
}
