//! What goes into and comes out of a room (a remote-assist session or a meeting): the inputs the transports
//! feed, the decisions the room task carries out, and the events it counts and logs.

use std::time::{Duration, Instant};

use super::collab::TransferNote;
use super::{ConnId, Frame, Role, TrackId};
use crate::protocol::message::{AnnotationKind, MeetingRole, ParticipantState};
use crate::protocol::{ClientMsg, ErrorCode, ServerMsg};

/// Events fed to the room.
#[derive(Debug)]
pub enum Input {
    /// An authenticated connection joins as `role`. `resume` carries the generation from a resume token;
    /// `allow_control` is the customer's consent on first join.
    Join {
        conn: ConnId,
        role: Role,
        resume: Option<u32>,
        allow_control: bool,
    },
    /// The connection is gone (closed, lost, or timed out at the transport).
    Left { conn: ConnId },
    /// A media frame read from `conn`.
    Frame { conn: ConnId, frame: Frame },
    /// A control message read from `conn` (after HELLO).
    Message { conn: ConnId, msg: ClientMsg },
    /// `conn`'s media backlog overflowed: `track` skips to its next keyframe.
    Lagged { conn: ConnId, track: TrackId },
    /// End the session from outside (operator API, server shutdown).
    End { reason: EndReason },
    /// Meetings: an authenticated connection enters (remote-assist sessions refuse it).
    Enter { conn: ConnId, entry: Entry },
    /// `conn` opened a file stream for `transfer` starting at `offset`.
    FileStream {
        conn: ConnId,
        transfer: u32,
        offset: u64,
    },
    /// Meetings: a recording started or stopped (`reason` is told to everyone).
    Recording { active: bool, reason: String },
}

/// Who enters a meeting.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Stable identity for a first join (`user:<id>` for staff); entering again with it replaces the old
    /// connection. Guests get a unique one and come back with their resume token instead.
    pub identity: String,
    /// Shown to the others.
    pub name: String,
    /// Role for a first join (an existing participant keeps the one it has).
    pub role: MeetingRole,
    /// The participant id and generation from a resume token.
    pub resume: Option<(u32, u32)>,
    /// Guests: where they connect from (the address key), so a guest the host removed stays out even
    /// though each code entry is a new identity. `None` for staff (their identity is enough).
    pub origin: Option<String>,
}

/// Decisions drained from the room.
#[derive(Debug)]
#[must_use]
pub enum Output {
    /// `conn` was accepted as `role`: send it WELCOME with a resume token for `generation`.
    Accepted {
        conn: ConnId,
        role: Role,
        generation: u32,
        control_allowed: bool,
        peer_present: bool,
    },
    /// Queue `frame` on `conn`'s media backlog.
    Media { conn: ConnId, frame: Frame },
    /// Send `msg` on `conn`'s control stream.
    Send { conn: ConnId, msg: ServerMsg },
    /// Send these messages on `conn`'s control stream in order, as one item of its control queue: the state
    /// a client gets when it enters (others present, tracks, whiteboard, chat) can hold thousands of
    /// messages, and its size says nothing about whether the client reads.
    SendBatch { conn: ConnId, msgs: Vec<ServerMsg> },
    /// Close `conn` with `code` (after flushing what was already sent to it).
    Close {
        conn: ConnId,
        code: ErrorCode,
        reason: &'static str,
    },
    /// Something to count or log.
    Event(Event),
    /// Nothing more until this time or the next input.
    Timeout(Instant),
    /// Meetings: `conn` entered as participant `participant`: send it MEETING_WELCOME.
    Admitted {
        conn: ConnId,
        participant: u32,
        /// Counts the participant's admissions: a resume token carries it, and only the latest one works.
        generation: u32,
        role: MeetingRole,
        recording: bool,
    },
    /// The file stream `from` opened for `transfer` at `offset`: pipe at most `len` bytes to `to`, or refuse
    /// it (STOP_SENDING) with the code.
    FileRoute {
        from: ConnId,
        transfer: u32,
        offset: u64,
        to: Result<(ConnId, u64), ErrorCode>,
    },
    /// Meetings: a frame accepted from a publisher, its `track` the room-wide id (for a recording); also,
    /// as a recording starts, each live track's held group again, so the recording starts from it.
    Published(Frame),
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    ByCustomer,
    ByTechnician,
    ByOperator,
    IdleTimeout,
    MaxDuration,
    /// This side left and did not resume within the grace period.
    PeerGone(Role),
    /// The code expired before both sides joined.
    Expired,
    Shutdown,
    /// Meetings: the host ended it.
    ByHost,
}

impl EndReason {
    /// Close code sent to the peers still connected.
    pub fn code(self) -> ErrorCode {
        match self {
            EndReason::ByCustomer
            | EndReason::ByTechnician
            | EndReason::ByOperator
            | EndReason::ByHost => ErrorCode::SessionEnded,
            EndReason::IdleTimeout => ErrorCode::IdleTimeout,
            EndReason::MaxDuration => ErrorCode::MaxDuration,
            EndReason::PeerGone(_) => ErrorCode::PeerGone,
            EndReason::Expired => ErrorCode::SessionExpired,
            EndReason::Shutdown => ErrorCode::GoingAway,
        }
    }

    /// Close reason phrase and log word.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::ByCustomer => "ended by customer",
            EndReason::ByTechnician => "ended by technician",
            EndReason::ByOperator => "ended by operator",
            EndReason::IdleTimeout => "idle timeout",
            EndReason::MaxDuration => "maximum duration reached",
            EndReason::PeerGone(Role::Customer) => "customer did not come back",
            EndReason::PeerGone(Role::Technician) => "technician did not come back",
            EndReason::Expired => "code expired before both sides joined",
            EndReason::Shutdown => "relay shutting down",
            EndReason::ByHost => "ended by the host",
        }
    }

    /// Bounded metric label.
    pub fn label(self) -> &'static str {
        match self {
            EndReason::ByCustomer => "customer",
            EndReason::ByTechnician => "technician",
            EndReason::ByOperator => "operator",
            EndReason::IdleTimeout => "idle",
            EndReason::MaxDuration => "max_duration",
            EndReason::PeerGone(_) => "peer_gone",
            EndReason::Expired => "expired",
            EndReason::Shutdown => "shutdown",
            EndReason::ByHost => "host",
        }
    }
}

/// Why the room dropped a frame or an input event (metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Nobody to receive it (technician away or not yet joined).
    NoReceiver,
    /// It belongs to a group older than one already started.
    StaleGroup,
    /// The receiver is waiting for a keyframe (just joined or resumed).
    AwaitingKeyframe,
    /// Input while the customer allows view only.
    ViewOnly,
    /// Input over the per-session rate.
    RateLimited,
    /// Meetings: media from a participant who may not present (or a local track id out of range).
    NotPresenter,
    /// Meetings: the host muted the track.
    Muted,
}

impl DropReason {
    pub fn label(self) -> &'static str {
        match self {
            DropReason::NoReceiver => "no_receiver",
            DropReason::StaleGroup => "stale_group",
            DropReason::AwaitingKeyframe => "awaiting_keyframe",
            DropReason::ViewOnly => "view_only",
            DropReason::RateLimited => "rate_limited",
            DropReason::NotPresenter => "not_presenter",
            DropReason::Muted => "muted",
        }
    }
}

/// Things worth counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Paired,
    PeerAway(Role),
    PeerResumed(Role),
    ControlChanged(bool),
    FrameDropped {
        reason: DropReason,
        bytes: usize,
    },
    /// A keyframe request reached the customer (`sent`) or was merged into a pending one.
    KeyframeRequest {
        sent: bool,
    },
    InputForwarded,
    InputDropped(DropReason),
    Ended {
        reason: EndReason,
        paired_for: Option<Duration>,
        frames: u64,
        bytes: u64,
    },
    /// Meetings: a participant's presence or role changed.
    Participant {
        participant: u32,
        name: String,
        role: MeetingRole,
        state: ParticipantState,
    },
    /// A chat line (meetings).
    Chat {
        from: u32,
        text: String,
    },
    /// A whiteboard operation was applied.
    Annotated {
        from: u32,
        kind: AnnotationKind,
    },
    /// A file transfer changed state.
    Transfer(TransferNote),
    /// Meetings: recording switched on or off.
    Recording(bool),
    /// Meetings: who is in the meeting as a recording starts (right after `Recording(true)`), so the
    /// recording's log starts with everyone, not only those who join later.
    Roster(Vec<RosterEntry>),
}

/// One participant in an [`Event::Roster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub participant: u32,
    pub name: String,
    pub role: MeetingRole,
    /// Connected (`false`: away, within its resume grace period).
    pub present: bool,
}
