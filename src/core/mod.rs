//! The forwarding core: who receives which frame, what is dropped, when to ask for a keyframe, when a session
//! ends. It is a set of plain state machines with no I/O, no tasks and no clock: callers feed events with
//! `handle_*(now, ..)` and drain decisions with `poll_output()` until it returns [`Output::Timeout`], then
//! call again at that time or when the next event arrives. The same inputs in the same order always give the
//! same outputs, which is what the scenario tests in `tests.rs` rely on.
//!
//! Deliberately not here: sockets, QUIC streams, tokens and codes (see `pairing`), metrics (outputs carry
//! [`Event`]s that the transport counts).

mod collab;
mod ids;
mod io;
mod meeting;
mod queue;
mod room;
mod throttle;

#[cfg(test)]
mod meeting_sim;
#[cfg(test)]
mod meeting_tests;
#[cfg(test)]
pub(crate) mod tests;

pub use collab::{CollabLimits, TransferNote};
pub use ids::{ConnId, Role, SessionId, TrackId};
pub use io::{DropReason, EndReason, Entry, Event, Input, Output, RosterEntry};
pub use meeting::{MeetingConfig, MeetingRoom, TRACKS_PER_PARTICIPANT};
pub use queue::{BacklogLimits, MediaQueue, Popped, PushOutcome};
pub use room::{AssistRoom, RoomConfig};
pub use throttle::{IntervalThrottle, Throttled, TokenBucket};

use bytes::Bytes;
use std::time::Instant;

/// The kind of connection a frame came in on. The core ignores it; the transports count frames that cross
/// from one kind to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    #[default]
    Quic,
    WebRtc,
}

/// One encoded frame as the relay carries it.
#[derive(Debug, Clone)]
pub struct Frame {
    pub track: TrackId,
    /// Group (stream) it arrived on; a group starts with a keyframe.
    pub group: u64,
    pub seq: u64,
    pub keyframe: bool,
    /// Header and payload exactly as they arrived on the group stream; forwarded without copying.
    pub wire: Bytes,
    /// When the relay finished reading it, for the forwarding-latency histogram.
    pub received_at: Instant,
    pub origin: Origin,
}
