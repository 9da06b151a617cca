//! The relay's session registry and the glue between the pure core and the transports.
//!
//! [`Relay`] issues sessions (code + technician join token), authenticates HELLOs (code, join token or resume
//! token, under the guessing limits), and runs one task per session ([`room`]) that owns its
//! [`crate::core::AssistRoom`]. The registry map is touched only when sessions and connections come and go,
//! never per frame.

pub mod addresses;
pub mod peer;
mod recorder;
pub mod room;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use addresses::{SessionSlot, SessionsPerAddress};
pub use peer::{Closer, ControlOut, FilePipe, MediaSlot, PeerHandle, FILE_PIPE_CHUNKS};
pub use room::RoomMsg;

use crate::clock::Clock;
use crate::config::Config;
use crate::core::{
    AssistRoom, BacklogLimits, ConnId, EndReason, Entry, Input, MeetingConfig, MeetingRoom, Role,
    RoomConfig, SessionId,
};
use crate::metrics::RelayMetrics;
use crate::pairing::{
    redeem_limited, AttemptLimiter, Claims, CodeBook, PairingError, Redeemed, TokenKey, TokenKind,
};
use crate::pairing::{MeetingClaims, MeetingTokenKind};
use crate::protocol::message::MeetingRole;
use crate::protocol::{ErrorCode, Hello};

/// Inputs queued per room before connection readers wait (backpressure reaches the sender through QUIC flow
/// control only when the relay itself is saturated; receivers never cause it).
const ROOM_QUEUE: usize = 256;
/// How often expired codes and idle limiter entries are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Why a HELLO was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// Code, token or rate-limit failure.
    #[error(transparent)]
    Pairing(#[from] PairingError),
    /// The session does not exist (ended, or never did).
    #[error("session not found or already ended")]
    SessionNotFound,
    /// A resume token was presented as a join token or the other way round.
    #[error("wrong kind of token for this HELLO")]
    WrongToken,
    /// The relay is shutting down.
    #[error("relay shutting down")]
    ShuttingDown,
    /// The source address already takes part in `limits.max_sessions_per_address` sessions.
    #[error("too many sessions from this address")]
    TooManySessions,
    /// A meeting's window is invalid (ends before it starts, or longer than allowed).
    #[error("{0}")]
    BadSchedule(String),
}

impl RelayError {
    pub fn code(&self) -> ErrorCode {
        match self {
            RelayError::Pairing(e) => e.code(),
            RelayError::SessionNotFound => ErrorCode::SessionNotFound,
            RelayError::WrongToken => ErrorCode::TokenInvalid,
            RelayError::ShuttingDown => ErrorCode::GoingAway,
            RelayError::TooManySessions => ErrorCode::TooManySessions,
            RelayError::BadSchedule(_) => ErrorCode::BadRequest,
        }
    }

    /// How long a rate-limited client waits before trying again.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            RelayError::Pairing(PairingError::RateLimited { retry_after }) => Some(*retry_after),
            _ => None,
        }
    }
}

/// A session just created through the API.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    /// Digits only.
    pub code: String,
    /// Grouped for people.
    pub code_display: String,
    pub expires_at: SystemTime,
    pub technician_token: String,
}

/// A meeting just created.
#[derive(Debug, Clone)]
pub struct NewMeeting {
    pub id: SessionId,
    /// Digits only; every guest uses it during the window.
    pub code: String,
    pub code_display: String,
    pub starts_at: SystemTime,
    pub ends_at: SystemTime,
}

/// What is known of a live session.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub id: SessionId,
    pub created_at: SystemTime,
    pub code_expires_at: SystemTime,
    pub paired: bool,
}

/// The meeting rooms' settings from the `[meeting]` section.
pub fn meeting_config(cfg: &Config) -> MeetingConfig {
    let m = &cfg.meeting;
    MeetingConfig {
        resume_grace: m.resume_grace.0,
        keyframe_interval: m.keyframe_interval.0,
        idle_timeout: m.idle_timeout.0,
        max_participants: m.max_participants,
        max_tracks: m.max_tracks_per_presenter,
        group_cache_bytes: m.group_cache_bytes.usize(),
        collab: collab_limits(cfg),
    }
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A display name as the others see it: trimmed, no control characters, at most 64 characters.
pub fn clean_name(name: &str, fallback: &str) -> String {
    let n: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    let n = n.trim();
    if n.is_empty() {
        fallback.to_string()
    } else {
        n.to_string()
    }
}

/// Whiteboard and file-transfer bounds from the `[meeting]` section (shared by both kinds of room).
pub fn collab_limits(cfg: &Config) -> crate::core::CollabLimits {
    let m = &cfg.meeting;
    crate::core::CollabLimits {
        whiteboard_bytes: m.whiteboard_bytes.usize(),
        chat_history: m.chat_history,
        max_file_bytes: m.max_file_bytes.0,
        max_transfers: m.max_transfers,
    }
}

/// Sent on [`Relay::subscribe_ended`] when a session ends (for processing records).
#[derive(Debug, Clone)]
pub struct SessionSummary {
    pub id: SessionId,
    pub reason: EndReason,
    pub paired_for: Option<Duration>,
    pub bytes: u64,
    pub ended_at: SystemTime,
}

/// A HELLO that passed authentication.
#[derive(Debug)]
pub struct Admission<'a> {
    /// The connection's place among its address's sessions; hold it until the connection ends.
    pub slot: SessionSlot<'a>,
    pub session: SessionId,
    /// The side of a remote-assist session; `None` for a meeting participant (see `entry`).
    pub role: Option<Role>,
    pub resume: Option<u32>,
    pub allow_control: bool,
    /// Meetings: who enters.
    pub entry: Option<Entry>,
    pub room: mpsc::Sender<RoomMsg>,
}

#[derive(Debug)]
struct RoomEntry {
    tx: mpsc::Sender<RoomMsg>,
    code: String,
    created_at: SystemTime,
    code_expires_at: SystemTime,
    paired: AtomicBool,
}

/// The session registry. See the module documentation.
#[derive(Debug)]
pub struct Relay {
    pub cfg: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub codes: CodeBook,
    pub limiter: AttemptLimiter,
    pub tokens: TokenKey,
    pub metrics: RelayMetrics,
    /// `limits.max_sessions_per_address`, taken at HELLO.
    pub addresses: SessionsPerAddress,
    /// Cancelled when the server shuts down; rooms then end with `going_away`.
    pub shutdown: CancellationToken,
    /// Every room task, so shutdown can wait for them.
    pub tasks: TaskTracker,
    rooms: DashMap<SessionId, RoomEntry>,
    ended: broadcast::Sender<SessionSummary>,
    next_conn: AtomicU64,
    room_cfg: RoomConfig,
    meeting_cfg: MeetingConfig,
    rng: SystemRandom,
}

impl Relay {
    pub fn new(
        cfg: Arc<Config>,
        clock: Arc<dyn Clock>,
        token_secret: &[u8],
        metrics: RelayMetrics,
    ) -> Arc<Relay> {
        let now = clock.now();
        let s = &cfg.session;
        Arc::new(Relay {
            codes: CodeBook::new(
                cfg.pairing.code_digits,
                cfg.pairing.code_ttl.0,
                cfg.pairing.max_live_codes,
            ),
            limiter: AttemptLimiter::new(now, &cfg.pairing),
            tokens: TokenKey::new(token_secret),
            addresses: SessionsPerAddress::new(cfg.limits.max_sessions_per_address),
            room_cfg: RoomConfig {
                idle_timeout: s.idle_timeout.0,
                max_duration: s.max_duration.0,
                resume_grace: s.resume_grace.0,
                keyframe_interval: s.keyframe_interval.0,
                input_rate_per_sec: s.input_rate,
                input_burst: s.input_burst,
                collab: collab_limits(&cfg),
            },
            meeting_cfg: meeting_config(&cfg),
            metrics,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            rooms: DashMap::new(),
            ended: broadcast::channel(1024).0,
            next_conn: AtomicU64::new(1),
            rng: SystemRandom::new(),
            clock,
            cfg,
        })
    }

    /// Backlog bounds for a receiving connection.
    pub fn backlog_limits(&self) -> BacklogLimits {
        BacklogLimits {
            max_bytes: self.cfg.limits.backlog_max_bytes.usize(),
            max_age: self.cfg.limits.backlog_max_age.0,
        }
    }

    pub(crate) fn resume_token_ttl_ms(&self) -> u64 {
        (self.cfg.session.max_duration.0 + self.cfg.session.resume_grace.0).as_millis() as u64
    }

    /// Creates a session: a room task waiting for both sides, a code for the customer and a join token for
    /// the technician, both valid for `pairing.code_ttl`.
    pub fn create_session(self: &Arc<Self>) -> Result<NewSession, RelayError> {
        if self.shutdown.is_cancelled() {
            return Err(RelayError::ShuttingDown);
        }
        let id = self.new_id();
        let now = self.clock.now();
        let code = self.codes.issue(now, id)?;
        let expires_at = self.clock.wall_at(code.expires_at);
        let technician_token = self.tokens.sign(&Claims {
            kind: TokenKind::Join,
            role: Role::Technician,
            session: id,
            generation: 0,
            expires_unix_ms: unix_ms(expires_at),
        });
        let room = AssistRoom::new(now, self.room_cfg.clone(), code.expires_at);
        self.start_room(id, &code.code, expires_at, room::Core::Assist(room));
        self.metrics.sessions_active.inc();
        self.metrics.codes_issued.inc();
        tracing::info!(session = %id, "session created");
        Ok(NewSession {
            id,
            code: code.code,
            code_display: code.display,
            expires_at,
            technician_token,
        })
    }

    /// Registers a room under `id` (with the code that leads to it) and starts the task that owns it.
    fn start_room(
        self: &Arc<Self>,
        id: SessionId,
        code: &str,
        code_expires_at: SystemTime,
        core: room::Core,
    ) {
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        let entry = RoomEntry {
            tx,
            code: code.to_string(),
            created_at: self.clock.wall(),
            code_expires_at,
            paired: AtomicBool::new(false),
        };
        self.rooms.insert(id, entry);
        self.tasks.spawn(room::run(self.clone(), id, core, rx));
    }

    fn new_id(&self) -> SessionId {
        let mut raw = [0u8; 16];
        self.rng.fill(&mut raw).expect("system randomness");
        SessionId(raw)
    }

    /// Creates a meeting for the window `starts_at..ends_at`: a room task that lives until the window
    /// closes (or the host ends it, or nobody is connected for `meeting.idle_timeout`), and a multi-use
    /// code valid in the window.
    pub fn create_meeting(
        self: &Arc<Self>,
        starts_at: SystemTime,
        ends_at: SystemTime,
    ) -> Result<NewMeeting, RelayError> {
        if self.shutdown.is_cancelled() {
            return Err(RelayError::ShuttingDown);
        }
        let wall = self.clock.wall();
        let now = self.clock.now();
        if ends_at <= starts_at || ends_at <= wall {
            return Err(RelayError::BadSchedule(
                "the meeting must end after it starts, in the future".into(),
            ));
        }
        let at = |t: SystemTime| match t.duration_since(wall) {
            Ok(d) => now + d,
            Err(_) => now,
        };
        let id = self.new_id();
        let code = self
            .codes
            .issue_window(id, at(starts_at), at(ends_at), true)?;
        let room = MeetingRoom::new(self.meeting_cfg.clone(), at(starts_at), at(ends_at));
        self.start_room(id, &code.code, ends_at, room::Core::Meeting(room));
        self.metrics.meetings_active.inc();
        self.metrics.codes_issued.inc();
        tracing::info!(meeting = %id, "meeting created");
        Ok(NewMeeting {
            id,
            code: code.code,
            code_display: code.display,
            starts_at,
            ends_at,
        })
    }

    /// Brings back a meeting scheduled before a restart, with its id and code (join tokens stay valid: the
    /// token key is kept in the data directory). Its participants, whiteboard and chat are not kept.
    pub fn restore_meeting(
        self: &Arc<Self>,
        id: SessionId,
        code: &str,
        starts_at: SystemTime,
        ends_at: SystemTime,
    ) -> Result<(), RelayError> {
        let wall = self.clock.wall();
        let now = self.clock.now();
        let at = |t: SystemTime| match t.duration_since(wall) {
            Ok(d) => now + d,
            Err(_) => now,
        };
        if ends_at <= wall || self.rooms.contains_key(&id) {
            return Err(RelayError::SessionNotFound);
        }
        self.codes
            .restore(code, id, at(starts_at), at(ends_at), true)?;
        let room = MeetingRoom::new(self.meeting_cfg.clone(), at(starts_at), at(ends_at));
        self.start_room(id, code, ends_at, room::Core::Meeting(room));
        self.metrics.meetings_active.inc();
        Ok(())
    }

    /// A join token for a staff member entering meeting `id` as `role`, valid until `expires_at`.
    pub fn meeting_token(
        &self,
        id: SessionId,
        user: u32,
        role: MeetingRole,
        expires_at: SystemTime,
    ) -> String {
        self.tokens.sign_meeting(&MeetingClaims {
            kind: MeetingTokenKind::Join,
            role,
            meeting: id,
            subject: user,
            generation: 0,
            expires_unix_ms: unix_ms(expires_at),
        })
    }

    /// Starts or stops a meeting's recording; the reply says what the room did.
    pub async fn set_recording(
        &self,
        id: SessionId,
        on: bool,
    ) -> Result<room::RecordingReply, RelayError> {
        let tx = self.room(id)?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        tx.send(RoomMsg::Recording { on, reply })
            .await
            .map_err(|_| RelayError::SessionNotFound)?;
        rx.await.map_err(|_| RelayError::SessionNotFound)
    }

    /// Asks a session to end; false if there is no such session.
    pub async fn end_session(&self, id: SessionId, reason: EndReason) -> bool {
        let Some(tx) = self.rooms.get(&id).map(|e| e.tx.clone()) else {
            return false;
        };
        tx.send(RoomMsg::Input(Input::End { reason })).await.is_ok()
    }

    pub fn session_state(&self, id: SessionId) -> Option<SessionState> {
        self.rooms.get(&id).map(|e| SessionState {
            id,
            created_at: e.created_at,
            code_expires_at: e.code_expires_at,
            paired: e.paired.load(Ordering::Relaxed),
        })
    }

    /// Sessions that exist now.
    pub fn session_count(&self) -> usize {
        self.rooms.len()
    }

    /// Every session end, for whoever keeps records.
    pub fn subscribe_ended(&self) -> broadcast::Receiver<SessionSummary> {
        self.ended.subscribe()
    }

    /// Fills `buf` from the system's secure random source.
    pub(crate) fn fill_random(&self, buf: &mut [u8]) {
        self.rng.fill(buf).expect("system randomness");
    }

    pub fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    fn room(&self, id: SessionId) -> Result<mpsc::Sender<RoomMsg>, RelayError> {
        self.rooms
            .get(&id)
            .map(|e| e.tx.clone())
            .ok_or(RelayError::SessionNotFound)
    }

    /// Checks a HELLO from `from` and finds its room. The connection also takes its address's slot for the
    /// session (`limits.max_sessions_per_address`); a customer's is taken as its code is redeemed, so an
    /// address at the limit keeps the code unspent.
    pub fn authenticate(&self, from: IpAddr, hello: Hello) -> Result<Admission<'_>, RelayError> {
        if self.shutdown.is_cancelled() {
            return Err(RelayError::ShuttingDown);
        }
        let slot_for = |session| self.addresses.acquire(from, session);
        let now_ms = self.clock.unix_ms();
        let mut entry = None;
        let (session, role, resume, allow_control, slot) = match hello {
            Hello::Technician { token } => {
                let c = self.tokens.verify(&token, now_ms)?;
                if c.kind != TokenKind::Join || c.role != Role::Technician {
                    return Err(RelayError::WrongToken);
                }
                let slot = slot_for(c.session);
                (c.session, Some(Role::Technician), None, false, slot)
            }
            Hello::Customer {
                code,
                allow_control,
            } => {
                let (session, slot) = self.redeem(from, &code, false)?;
                (session, Some(Role::Customer), None, allow_control, slot)
            }
            Hello::Meeting { token, name } => {
                let c = self.tokens.verify_meeting(&token, now_ms)?;
                if c.kind != MeetingTokenKind::Join {
                    return Err(RelayError::WrongToken);
                }
                entry = Some(Entry {
                    identity: format!("user:{}", c.subject),
                    name: clean_name(&name, &format!("user {}", c.subject)),
                    role: c.role,
                    resume: None,
                    origin: None,
                });
                (c.meeting, None, None, false, slot_for(c.meeting))
            }
            Hello::MeetingCode { code, name } => {
                let (session, slot) = self.redeem(from, &code, true)?;
                let mut raw = [0u8; 8];
                self.rng.fill(&mut raw).expect("system randomness");
                entry = Some(Entry {
                    identity: format!("guest:{}", data_encoding::HEXLOWER.encode(&raw)),
                    name: clean_name(&name, "guest"),
                    role: MeetingRole::Participant,
                    resume: None,
                    origin: Some(crate::pairing::limiter::address_key(from).to_string()),
                });
                (session, None, None, false, slot)
            }
            Hello::Resume { token } if TokenKey::is_meeting_token(&token) => {
                let c = self.tokens.verify_meeting(&token, now_ms)?;
                if c.kind != MeetingTokenKind::Resume {
                    return Err(RelayError::WrongToken);
                }
                entry = Some(Entry {
                    identity: String::new(),
                    name: String::new(),
                    role: c.role,
                    resume: Some((c.subject, c.generation)),
                    origin: None,
                });
                (c.meeting, None, None, false, slot_for(c.meeting))
            }
            Hello::Resume { token } => {
                let c = self.tokens.verify(&token, now_ms)?;
                if c.kind != TokenKind::Resume {
                    return Err(RelayError::WrongToken);
                }
                let slot = slot_for(c.session);
                (c.session, Some(c.role), Some(c.generation), false, slot)
            }
        };
        let slot = slot.ok_or(RelayError::TooManySessions)?;
        Ok(Admission {
            slot,
            session,
            role,
            resume,
            allow_control,
            entry,
            room: self.room(session)?,
        })
    }

    /// Redeems a typed code (assist or meeting) under the guessing limits; the address's session slot is
    /// taken in the same step (`None`: the address is at its limit and the code was not spent).
    fn redeem(
        &self,
        from: IpAddr,
        code: &str,
        meeting: bool,
    ) -> Result<(SessionId, Option<SessionSlot<'_>>), RelayError> {
        let now = self.clock.now();
        let slot_for = |session| self.addresses.acquire(from, session);
        match redeem_limited(
            &self.codes,
            &self.limiter,
            now,
            from,
            code,
            meeting,
            slot_for,
        ) {
            Ok(Redeemed::Session(session, slot)) => {
                self.metrics.codes_redeemed.inc();
                Ok((session, Some(slot)))
            }
            Ok(Redeemed::Declined(session)) => Ok((session, None)),
            Err(e) => {
                self.metrics
                    .code_failures
                    .with_label_values(&[e.code().as_str()])
                    .inc();
                Err(e.into())
            }
        }
    }

    pub(crate) fn mark_paired(&self, id: SessionId) {
        if let Some(e) = self.rooms.get(&id) {
            e.paired.store(true, Ordering::Relaxed);
        }
    }

    /// Called by the room task as it exits.
    pub(crate) fn forget(&self, id: SessionId, meeting: bool) {
        if let Some((_, e)) = self.rooms.remove(&id) {
            self.codes.revoke(&e.code);
            if meeting {
                self.metrics.meetings_active.dec();
            } else {
                self.metrics.sessions_active.dec();
            }
        }
    }

    pub(crate) fn record_end(
        &self,
        id: SessionId,
        reason: EndReason,
        paired_for: Option<Duration>,
        bytes: u64,
    ) {
        let _ = self.ended.send(SessionSummary {
            id,
            reason,
            paired_for,
            bytes,
            ended_at: self.clock.wall(),
        });
    }

    /// Sweeps expired codes and idle limiter entries until shutdown.
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let relay = self.clone();
        self.tasks.spawn(async move {
            loop {
                let next = relay.clock.now() + SWEEP_INTERVAL;
                tokio::select! {
                    _ = relay.clock.sleep_until(next) => {}
                    _ = relay.shutdown.cancelled() => return,
                }
                let now = relay.clock.now();
                relay.codes.sweep(now);
                relay.limiter.sweep(now);
            }
        });
    }
}
