//! The meeting scenarios' harness: a [`MeetingRoom`] on a simulated clock with peers that record what they
//! are sent.

use super::tests::collab_limits;
use super::*;
use crate::protocol::message::{Annotation, AnnotationKind};
use crate::protocol::message::{MeetingRole, ParticipantState, TrackState};
use crate::protocol::{ClientMsg, ErrorCode, ServerMsg};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use MeetingRole::{Host, Participant, Presenter};

/// 30 frames per second.
pub(super) const FRAME_GAP: Duration = Duration::from_millis(33);
pub(super) const KEYFRAME_INTERVAL: Duration = Duration::from_secs(1);
pub(super) const RESUME_GRACE: Duration = Duration::from_secs(30);
pub(super) const HOST: ConnId = ConnId(1);
pub(super) const PRESENTER: ConnId = ConnId(2);
pub(super) const VIEWER: ConnId = ConnId(3);
pub(super) const LATE: ConnId = ConnId(4);

pub(super) fn config() -> MeetingConfig {
    MeetingConfig {
        resume_grace: RESUME_GRACE,
        keyframe_interval: KEYFRAME_INTERVAL,
        idle_timeout: Duration::from_secs(300),
        max_participants: 200,
        max_tracks: 2,
        group_cache_bytes: 1 << 20,
        collab: collab_limits(),
    }
}

/// Where the room sends a file stream: the recipient and how many bytes, or why not.
type Route = Result<(ConnId, u64), ErrorCode>;

/// The items of `$from` (messages, events) that match the pattern, each mapped by the expression.
macro_rules! pick {
    ($from:expr, $pat:pat $(if $guard:expr)? => $out:expr) => {
        $from.iter().filter_map(|m| match m { $pat $(if $guard)? => Some($out), _ => None })
            .collect::<Vec<_>>()
    };
}
pub(super) use pick;

/// What one connection saw.
#[derive(Debug)]
pub(super) struct Peer {
    pub(super) queue: MediaQueue,
    /// Frames its writer took, with the (simulated) time it took each.
    pub(super) got: Vec<(Instant, Frame)>,
    pub(super) msgs: Vec<ServerMsg>,
    /// When each KEYFRAME_REQUEST was sent to it.
    pub(super) keyframe_requests: Vec<Instant>,
    pub(super) closed: Option<ErrorCode>,
    pub(super) admitted: Option<(u32, MeetingRole)>,
    /// Frames its queue discarded (skipped, or flushed by a lag), and stream resets its writer was told to do.
    pub(super) dropped: usize,
    pub(super) resets: usize,
}

/// The room plus what each connection received, doing with each output what the room task does.
pub(super) struct MeetingSim {
    pub(super) now: Instant,
    pub(super) ends_at: Instant,
    pub(super) room: MeetingRoom,
    pub(super) peers: BTreeMap<ConnId, Peer>,
    pub(super) events: Vec<Event>,
    /// `FileRoute`s as (from, to).
    pub(super) routes: Vec<(ConnId, Route)>,
    pub(super) published: Vec<Frame>,
    /// The last `Output::Timeout`: when the room asked to be woken.
    pub(super) wake_at: Instant,
}

impl MeetingSim {
    pub(super) fn new() -> MeetingSim {
        MeetingSim::with(|_| {})
    }

    pub(super) fn with(adjust: impl FnOnce(&mut MeetingConfig)) -> MeetingSim {
        let mut cfg = config();
        adjust(&mut cfg);
        let now = Instant::now();
        let ends_at = now + Duration::from_secs(3600);
        MeetingSim {
            now,
            ends_at,
            room: MeetingRoom::new(cfg, now, ends_at),
            peers: BTreeMap::new(),
            events: Vec::new(),
            routes: Vec::new(),
            published: Vec::new(),
            wake_at: ends_at,
        }
    }

    /// A host, a presenter and a viewer on HOST, PRESENTER and VIEWER; returns the presenter's track.
    pub(super) fn meeting() -> (MeetingSim, u32) {
        let mut s = MeetingSim::new();
        s.join(HOST, Host);
        let track = s.join(PRESENTER, Presenter) * TRACKS_PER_PARTICIPANT;
        s.join(VIEWER, Participant);
        (s, track)
    }

    pub(super) fn id(&self, conn: ConnId) -> u32 {
        self.peers[&conn].admitted.expect("admitted").0
    }

    pub(super) fn peer(&mut self, conn: ConnId) -> &mut Peer {
        self.peers.entry(conn).or_insert_with(|| Peer {
            queue: MediaQueue::new(BacklogLimits {
                max_bytes: 64 << 10,
                max_age: Duration::from_millis(500),
            }),
            got: Vec::new(),
            msgs: Vec::new(),
            keyframe_requests: Vec::new(),
            closed: None,
            admitted: None,
            dropped: 0,
            resets: 0,
        })
    }

    pub(super) fn input(&mut self, input: Input) {
        self.room.handle_input(self.now, input);
        self.drain();
    }

    pub(super) fn send(&mut self, conn: ConnId, msg: ClientMsg) {
        self.input(Input::Message { conn, msg });
    }

    pub(super) fn advance(&mut self, d: Duration) {
        self.now += d;
        self.room.handle_timeout(self.now);
        self.drain();
    }

    /// `conn` enters as `identity` (with `role` if it is new); returns its participant id.
    pub(super) fn enter(&mut self, conn: ConnId, identity: &str, role: MeetingRole) -> u32 {
        self.enter_with(conn, identity, role, None);
        self.id(conn)
    }

    pub(super) fn enter_with(
        &mut self,
        conn: ConnId,
        identity: &str,
        role: MeetingRole,
        resume: Option<(u32, u32)>,
    ) {
        let (identity, name) = (identity.to_string(), identity.to_string());
        let origin = identity.strip_prefix("guest@").map(str::to_string);
        let entry = Entry {
            identity,
            name,
            role,
            resume,
            origin,
        };
        self.input(Input::Enter { conn, entry });
    }

    /// `conn` enters with an identity of its own.
    pub(super) fn join(&mut self, conn: ConnId, role: MeetingRole) -> u32 {
        self.enter(conn, &format!("user:{}", conn.0), role)
    }

    /// `conn` publishes frame `seq` of `group` on its local track 0: `len` bytes, the first 8 being `seq`.
    pub(super) fn publish(
        &mut self,
        conn: ConnId,
        group: u64,
        seq: u64,
        keyframe: bool,
        len: usize,
    ) {
        let mut wire = vec![0u8; len.max(8)];
        wire[..8].copy_from_slice(&seq.to_be_bytes());
        let mut frame = super::tests::frame(group, seq, keyframe, 0);
        (frame.wire, frame.received_at) = (Bytes::from(wire), self.now);
        self.input(Input::Frame { conn, frame });
    }

    pub(super) fn mute(&mut self, by: ConnId, track: u32, muted: bool) {
        self.send(by, ClientMsg::MuteTrack { track, muted });
    }

    pub(super) fn remove(&mut self, by: ConnId, participant: u32) {
        self.send(by, ClientMsg::RemoveParticipant { participant });
    }

    pub(super) fn file_stream(&mut self, conn: ConnId, transfer: u32) {
        self.input(Input::FileStream {
            conn,
            transfer,
            offset: 0,
        });
    }

    pub(super) fn drain(&mut self) {
        loop {
            match self.room.poll_output() {
                Output::Timeout(t) => {
                    let ended = self.room.is_ended().is_some();
                    assert!(t > self.now || ended, "timeout must be in the future");
                    self.wake_at = t;
                    return;
                }
                Output::Admitted {
                    conn,
                    participant,
                    role,
                    ..
                } => {
                    self.peer(conn).admitted = Some((participant, role));
                }
                Output::Media { conn, frame } => self.push_media(conn, frame),
                Output::Send { conn, msg } => {
                    let now = self.now;
                    let p = self.peer(conn);
                    if matches!(msg, ServerMsg::KeyframeRequest { .. }) {
                        p.keyframe_requests.push(now);
                    }
                    p.msgs.push(msg);
                }
                Output::SendBatch { conn, msgs } => self.peer(conn).msgs.extend(msgs),
                Output::Close { conn, code, .. } => {
                    let p = self.peer(conn);
                    assert_eq!(p.closed, None, "{conn:?} closed twice");
                    p.closed = Some(code);
                    p.queue.close();
                }
                Output::Event(e) => self.events.push(e),
                Output::FileRoute { from, to, .. } => self.routes.push((from, to)),
                Output::Published(f) => self.published.push(f),
                other @ Output::Accepted { .. } => panic!("a meeting does not produce {other:?}"),
            }
        }
    }

    /// What the room task does with `Output::Media`: push it, and on a lag ask for keyframes of the tracks
    /// now skipping.
    pub(super) fn push_media(&mut self, conn: ConnId, frame: Frame) {
        let now = self.now;
        let p = self.peer(conn);
        assert_eq!(p.closed, None, "media for closed {conn:?}");
        match p.queue.push(now, frame) {
            PushOutcome::Queued => {}
            PushOutcome::Skipped => p.dropped += 1,
            PushOutcome::Lagged {
                dropped,
                need_keyframe,
                ..
            } => {
                p.dropped += dropped;
                if need_keyframe {
                    for track in p.queue.skipping().to_vec() {
                        self.room.handle_input(now, Input::Lagged { conn, track });
                    }
                }
            }
        }
    }

    /// The writer of `conn` takes everything queued.
    pub(super) fn drain_writer(&mut self, conn: ConnId) {
        let now = self.now;
        let p = self.peer(conn);
        while let Some(item) = p.queue.pop() {
            match item {
                Popped::ResetStream => p.resets += 1,
                Popped::Frame(f) => p.got.push((now, f)),
            }
        }
    }

    pub(super) fn msgs(&self, conn: ConnId) -> &[ServerMsg] {
        self.peers.get(&conn).map_or(&[], |p| &p.msgs)
    }

    pub(super) fn seqs(&self, conn: ConnId) -> Vec<u64> {
        self.peers[&conn].got.iter().map(|(_, f)| f.seq).collect()
    }

    pub(super) fn closed(&self, conn: ConnId) -> Option<ErrorCode> {
        self.peers.get(&conn).and_then(|p| p.closed)
    }

    pub(super) fn notices(&self, conn: ConnId) -> Vec<ErrorCode> {
        pick!(self.msgs(conn), ServerMsg::Notice { code, .. } => *code)
    }

    /// What `conn` was told about participant `who`.
    pub(super) fn participant_news(&self, conn: ConnId, who: u32) -> Vec<ParticipantState> {
        pick!(self.msgs(conn), ServerMsg::Participant { participant, state, .. }
            if *participant == who => *state)
    }

    /// What `conn` was told about `track`.
    pub(super) fn track_news(&self, conn: ConnId, track: u32) -> Vec<TrackState> {
        pick!(self.msgs(conn), ServerMsg::Track { track: t, state, .. } if *t == track => *state)
    }

    /// Whiteboard operations `conn` received, as (seq, from, op).
    pub(super) fn annotations(&self, conn: ConnId) -> Vec<(u64, u32, Annotation)> {
        pick!(self.msgs(conn), ServerMsg::Annotation { seq, from, annotation }
            => (*seq, *from, annotation.clone()))
    }

    /// `Event::KeyframeRequest`s as (sent, merged into a pending one).
    pub(super) fn keyframe_request_events(&self) -> (usize, usize) {
        let sent = pick!(self.events, Event::KeyframeRequest { sent } => *sent);
        let n = sent.iter().filter(|sent| **sent).count();
        (n, sent.len() - n)
    }

    pub(super) fn drop_reasons(&self) -> Vec<DropReason> {
        pick!(self.events, Event::FrameDropped { reason, .. } => *reason)
    }
}

/// Asserts that consecutive instants are at least `gap` apart.
pub(super) fn assert_spaced(times: &[Instant], gap: Duration) {
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= gap, "only {:?} apart", w[1] - w[0]);
    }
}

/// A whiteboard operation on the blank board (track 0) with `points` points: `15 + 4 × points` bytes held.
pub(super) fn draw(kind: AnnotationKind, points: usize) -> ClientMsg {
    ClientMsg::Annotate(Annotation {
        kind,
        track: 0,
        color: 0xff00_00ff,
        width: 100,
        points: vec![(1, 2); points],
        text: String::new(),
    })
}
