//! One meeting: many participants, screen-share tracks fanned out to every subscriber, the shared whiteboard,
//! chat with history, file transfers and the recording flag.
//!
//! The room decides who enters (a full meeting, a removed identity), who may publish (host and presenters),
//! who receives each frame (every connected participant subscribed to the track, except its publisher),
//! where a late joiner starts (the track's current group, held here and bounded in bytes, so it needs no
//! keyframe in the common case), when a publisher is asked for a keyframe (at most once per track per
//! `keyframe_interval`; requests from many subscribers merge), and when the meeting ends (the host ends it,
//! its scheduled window closes, or nobody has been connected for `idle_timeout`).
//!
//! Fan-out pushes one [`Output::Media`] per receiver: a `Frame` clone shares its bytes, so a frame is never
//! copied. The room task turns each into a push on that receiver's own bounded [`super::MediaQueue`]; a slow
//! receiver skips to its next keyframe there and nobody else notices.
//!
//! Track ids are room-wide: `participant × TRACKS_PER_PARTICIPANT + local track`, so a publisher that drops
//! and comes back keeps its track ids and every subscriber keeps receiving without doing anything.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::collab::{ChatHistory, CollabLimits, Deliveries, TransferNote, Transfers, Whiteboard};
use super::io::{DropReason, EndReason, Entry, Event, Input, Output};
use super::room::notice_msg;
use super::throttle::{IntervalThrottle, Throttled};
use super::{ConnId, Frame, TrackId};
use crate::protocol::message::{FileState, MeetingRole, ParticipantState, TrackState};
use crate::protocol::{ClientMsg, ErrorCode, ServerMsg};

#[path = "meeting_host.rs"]
mod host;

/// Track ids reserved per participant; a presenter's local track ids run below it.
pub const TRACKS_PER_PARTICIPANT: u32 = 16;

/// Meeting timing and limits (from the `[meeting]` config section).
#[derive(Debug, Clone)]
pub struct MeetingConfig {
    pub resume_grace: Duration,
    pub keyframe_interval: Duration,
    /// The meeting ends once nobody has been connected for this long (after the first join).
    pub idle_timeout: Duration,
    pub max_participants: usize,
    /// Tracks one presenter may publish at once (≤ [`TRACKS_PER_PARTICIPANT`]).
    pub max_tracks: u32,
    /// Bytes of a track's current group held for late joiners; a longer group is not held (they then wait
    /// for the next keyframe, and one is requested).
    pub group_cache_bytes: usize,
    pub collab: CollabLimits,
}

#[derive(Debug)]
struct Participant {
    id: u32,
    identity: String,
    name: String,
    role: MeetingRole,
    conn: Option<ConnId>,
    away_since: Option<Instant>,
    generation: u32,
    origin: Option<String>,
    /// Tracks it asked not to receive (usually none).
    unsubscribed: Vec<TrackId>,
    /// Tracks it must start at a keyframe (joined when no group was held).
    awaiting: Vec<TrackId>,
}

impl Participant {
    fn receives(&self, track: TrackId) -> bool {
        self.conn.is_some() && !self.unsubscribed.contains(&track)
    }
}

#[derive(Debug)]
struct Track {
    id: TrackId,
    publisher: u32,
    muted: bool,
    /// Latest group started on the publisher's current connection.
    group: Option<u64>,
    /// The current group from its keyframe, while it fits `group_cache_bytes`.
    cache: Vec<Frame>,
    cache_bytes: usize,
    keyframes: IntervalThrottle,
}

/// The state machine of one meeting. See the module documentation.
#[derive(Debug)]
pub struct MeetingRoom {
    cfg: MeetingConfig,
    ends_at: Instant,
    participants: Vec<Participant>,
    tracks: Vec<Track>,
    /// Identities (staff) and origins (guests) the host removed.
    banned: Vec<String>,
    next_participant: u32,
    starts_at: Instant,
    whiteboard: Whiteboard,
    chat: ChatHistory,
    transfers: Transfers,
    recording: bool,
    first_join: Option<Instant>,
    /// Since when nobody has been connected (after the first join).
    empty_since: Option<Instant>,
    frames: u64,
    bytes: u64,
    ended: Option<EndReason>,
    out: VecDeque<Output>,
}

impl MeetingRoom {
    /// A meeting scheduled for `starts_at..ends_at`; it ends at `ends_at` at the latest, and its idle timer
    /// only runs from `starts_at` on (a host who tries the room early and leaves does not end it).
    pub fn new(cfg: MeetingConfig, starts_at: Instant, ends_at: Instant) -> MeetingRoom {
        MeetingRoom {
            whiteboard: Whiteboard::new(cfg.collab.whiteboard_bytes),
            chat: ChatHistory::new(cfg.collab.chat_history),
            transfers: Transfers::new(cfg.collab),
            cfg,
            starts_at,
            ends_at,
            participants: Vec::new(),
            tracks: Vec::new(),
            banned: Vec::new(),
            next_participant: 1,
            recording: false,
            first_join: None,
            empty_since: None,
            frames: 0,
            bytes: 0,
            ended: None,
            out: VecDeque::new(),
        }
    }

    pub fn is_ended(&self) -> Option<EndReason> {
        self.ended
    }

    /// Participants connected now.
    pub fn connected(&self) -> usize {
        self.participants
            .iter()
            .filter(|p| p.conn.is_some())
            .count()
    }

    fn by_conn(&self, conn: ConnId) -> Option<usize> {
        self.participants.iter().position(|p| p.conn == Some(conn))
    }

    fn by_id(&self, id: u32) -> Option<usize> {
        self.participants.iter().position(|p| p.id == id)
    }

    fn send(&mut self, participant: u32, msg: ServerMsg) -> bool {
        match self
            .by_id(participant)
            .and_then(|i| self.participants[i].conn)
        {
            Some(conn) => {
                self.out.push_back(Output::Send { conn, msg });
                true
            }
            None => false,
        }
    }

    fn broadcast(&mut self, msg: ServerMsg) {
        for p in &self.participants {
            if let Some(conn) = p.conn {
                self.out.push_back(Output::Send {
                    conn,
                    msg: msg.clone(),
                });
            }
        }
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    fn deliver(&mut self, d: Deliveries, notes: impl IntoIterator<Item = TransferNote>) {
        for (to, msg) in d {
            self.send(to, msg);
        }
        for n in notes {
            self.event(Event::Transfer(n));
        }
    }

    fn participant_msg(p: &Participant, state: ParticipantState) -> ServerMsg {
        ServerMsg::Participant {
            participant: p.id,
            role: p.role,
            state,
            name: p.name.clone(),
        }
    }

    fn announce(&mut self, i: usize, state: ParticipantState) {
        let p = &self.participants[i];
        let msg = Self::participant_msg(p, state);
        let e = Event::Participant {
            participant: p.id,
            name: p.name.clone(),
            role: p.role,
            state,
        };
        self.broadcast(msg);
        self.event(e);
    }

    /// Feeds one event. Timers due at `now` are handled first.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.handle_timeout(now);
        if let Some(reason) = self.ended {
            if let Input::Enter { conn, .. } | Input::Join { conn, .. } = input {
                self.out.push_back(Output::Close {
                    conn,
                    code: reason.code(),
                    reason: reason.as_str(),
                });
            }
            return;
        }
        match input {
            Input::Enter { conn, entry } => self.enter(now, conn, entry),
            Input::Join { conn, .. } => self.out.push_back(Output::Close {
                conn,
                code: ErrorCode::UnexpectedMessage,
                reason: "this is a meeting, not a remote-assist session",
            }),
            Input::Left { conn } => self.left(now, conn),
            Input::Frame { conn, frame } => self.frame(now, conn, frame),
            Input::Message { conn, msg } => self.message(now, conn, msg),
            Input::Lagged { conn, track } => {
                if self.by_conn(conn).is_some() {
                    self.request_keyframe(now, track);
                }
            }
            Input::End { reason } => self.end(now, reason),
            Input::FileStream {
                conn,
                transfer,
                offset,
            } => self.file_stream(conn, transfer, offset),
            Input::Recording { active, reason } => self.set_recording(now, active, reason),
        }
    }

    fn enter(&mut self, now: Instant, conn: ConnId, entry: Entry) {
        let existing = match entry.resume {
            Some((id, _)) => self.by_id(id),
            None => self
                .participants
                .iter()
                .position(|p| p.identity == entry.identity),
        };
        if entry.resume.is_some() && existing.is_none() {
            self.out.push_back(Output::Close {
                conn,
                code: ErrorCode::ResumeRefused,
                reason: "no longer in the meeting",
            });
            return;
        }
        if let (Some(i), Some((_, generation))) = (existing, entry.resume) {
            if self.participants[i].generation != generation {
                self.out.push_back(Output::Close {
                    conn,
                    code: ErrorCode::ResumeRefused,
                    reason: "resume token superseded",
                });
                return;
            }
        }
        let banned = |s: &String| self.banned.contains(s);
        if banned(&entry.identity)
            || (existing.is_none() && entry.origin.as_ref().is_some_and(banned))
        {
            self.out.push_back(Output::Close {
                conn,
                code: ErrorCode::Removed,
                reason: "removed from this meeting by the host",
            });
            return;
        }
        let (i, state) = match existing {
            Some(i) => {
                let p = &mut self.participants[i];
                if let Some(old) = p.conn.replace(conn) {
                    self.out.push_back(Output::Close {
                        conn: old,
                        code: ErrorCode::Replaced,
                        reason: "joined again elsewhere",
                    });
                }
                p.away_since = None;
                p.awaiting.clear();
                let id = p.id;
                // Its new connection numbers groups afresh.
                for t in self.tracks.iter_mut().filter(|t| t.publisher == id) {
                    t.group = None;
                }
                (i, ParticipantState::Back)
            }
            None => {
                // Only guests are refused: a code anyone may hold must not lock the host or staff out.
                let guest = entry.origin.is_some();
                if guest && self.participants.len() >= self.cfg.max_participants {
                    self.out.push_back(Output::Close {
                        conn,
                        code: ErrorCode::MeetingFull,
                        reason: "the meeting is full",
                    });
                    return;
                }
                let id = self.next_participant;
                self.next_participant += 1;
                self.participants.push(Participant {
                    id,
                    identity: entry.identity,
                    name: entry.name,
                    role: entry.role,
                    conn: Some(conn),
                    away_since: None,
                    generation: 0,
                    origin: entry.origin,
                    unsubscribed: Vec::new(),
                    awaiting: Vec::new(),
                });
                (self.participants.len() - 1, ParticipantState::Present)
            }
        };
        self.first_join.get_or_insert(now);
        self.empty_since = None;
        self.participants[i].generation += 1;
        let p = &self.participants[i];
        let (id, role, generation) = (p.id, p.role, p.generation);
        self.out.push_back(Output::Admitted {
            conn,
            participant: id,
            generation,
            role,
            recording: self.recording,
        });
        // What the newcomer needs to see the room as it is.
        let mut hello = Vec::new();
        for p in self.participants.iter().filter(|p| p.id != id) {
            let st = if p.conn.is_some() {
                ParticipantState::Present
            } else {
                ParticipantState::Away
            };
            hello.push(Self::participant_msg(p, st));
        }
        for t in &self.tracks {
            hello.push(ServerMsg::Track {
                track: t.id,
                publisher: t.publisher,
                state: if t.muted {
                    TrackState::Muted
                } else {
                    TrackState::Live
                },
            });
        }
        hello.extend(self.whiteboard.snapshot());
        hello.extend(self.chat.replay());
        if !hello.is_empty() {
            self.out.push_back(Output::SendBatch { conn, msgs: hello });
        }
        self.announce(i, state);
        let tracks: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|t| t.publisher != id && !t.muted)
            .map(|t| t.id)
            .collect();
        for t in tracks {
            self.start_track(now, i, t);
        }
    }

    /// Starts participant `i` on `track`: from the held group when there is one, else at the next keyframe.
    fn start_track(&mut self, now: Instant, i: usize, track: TrackId) {
        let p = &self.participants[i];
        let Some(conn) = p.conn.filter(|_| p.receives(track)) else {
            return;
        };
        let Some(t) = self.tracks.iter().find(|t| t.id == track) else {
            return;
        };
        if t.cache.is_empty() {
            let p = &mut self.participants[i];
            if !p.awaiting.contains(&track) {
                p.awaiting.push(track);
            }
            self.request_keyframe(now, track);
            return;
        }
        // The held group starts at a keyframe: whatever it was waiting for (e.g. after an unmute it was not
        // subscribed for), it now has.
        self.participants[i].awaiting.retain(|a| *a != track);
        for frame in &t.cache {
            self.out.push_back(Output::Media {
                conn,
                frame: frame.clone(),
            });
        }
    }

    fn left(&mut self, now: Instant, conn: ConnId) {
        let Some(i) = self.by_conn(conn) else { return };
        let p = &mut self.participants[i];
        p.conn = None;
        p.away_since = Some(now);
        self.announce(i, ParticipantState::Away);
        if self.connected() == 0 {
            self.empty_since = Some(now);
        }
    }

    /// Takes participant `i` out of the meeting for good: its tracks end and its transfers fail.
    fn remove(&mut self, i: usize, state: ParticipantState) {
        // The departing connection was closed already: it hears nothing more.
        self.participants[i].conn = None;
        self.announce(i, state);
        let p = self.participants.remove(i);
        let ended: Vec<TrackId> = self
            .tracks
            .iter()
            .filter(|t| t.publisher == p.id)
            .map(|t| t.id)
            .collect();
        for t in ended {
            self.end_track(t);
        }
        let (d, notes) = self.transfers.drop_participant(p.id);
        self.deliver(d, notes);
    }

    fn end_track(&mut self, track: TrackId) {
        let Some(i) = self.tracks.iter().position(|t| t.id == track) else {
            return;
        };
        let t = self.tracks.swap_remove(i);
        self.whiteboard.forget_track(track);
        for p in &mut self.participants {
            p.awaiting.retain(|a| *a != track);
            p.unsubscribed.retain(|a| *a != track);
        }
        self.broadcast(ServerMsg::Track {
            track,
            publisher: t.publisher,
            state: TrackState::Ended,
        });
    }

    fn drop_frame(&mut self, reason: DropReason, bytes: usize) {
        self.event(Event::FrameDropped { reason, bytes });
    }

    fn frame(&mut self, now: Instant, conn: ConnId, mut frame: Frame) {
        let Some(i) = self.by_conn(conn) else { return };
        let size = frame.wire.len();
        let (pid, role) = (self.participants[i].id, self.participants[i].role);
        if !role.presents() || frame.track >= self.cfg.max_tracks {
            if frame.keyframe {
                let msg = notice_msg(ErrorCode::NotPermitted, "only presenters may share");
                self.send(pid, msg);
            }
            return self.drop_frame(DropReason::NotPresenter, size);
        }
        let id = pid * TRACKS_PER_PARTICIPANT + frame.track;
        frame.track = id;
        let ti = match self.tracks.iter().position(|t| t.id == id) {
            Some(ti) => ti,
            None => {
                self.tracks.push(Track {
                    id,
                    publisher: pid,
                    muted: false,
                    group: None,
                    cache: Vec::new(),
                    cache_bytes: 0,
                    keyframes: IntervalThrottle::new(self.cfg.keyframe_interval),
                });
                self.broadcast(ServerMsg::Track {
                    track: id,
                    publisher: pid,
                    state: TrackState::Live,
                });
                if !frame.keyframe {
                    // A share that starts mid-group (its publisher became a presenter while sending):
                    // everyone waits for its keyframe, and the publisher is asked for one.
                    for p in &mut self.participants {
                        if p.id != pid && !p.awaiting.contains(&id) {
                            p.awaiting.push(id);
                        }
                    }
                    self.request_keyframe(now, id);
                }
                self.tracks.len() - 1
            }
        };
        let cache_max = self.cfg.group_cache_bytes;
        let t = &mut self.tracks[ti];
        match t.group {
            Some(g) if frame.group < g => return self.drop_frame(DropReason::StaleGroup, size),
            _ => t.group = Some(frame.group),
        }
        if t.muted {
            return self.drop_frame(DropReason::Muted, size);
        }
        if frame.keyframe {
            t.keyframes.satisfy();
            t.cache.clear();
            t.cache_bytes = 0;
        }
        // The held group: from its keyframe, while it fits; a group that outgrows it is not held at all.
        let continues = t.cache.first().is_some_and(|f| f.group == frame.group) || frame.keyframe;
        if continues && t.cache_bytes + size <= cache_max {
            t.cache_bytes += size;
            t.cache.push(frame.clone());
        } else {
            t.cache.clear();
            t.cache_bytes = 0;
        }
        self.frames += 1;
        self.bytes += size as u64;
        for p in &mut self.participants {
            if p.id == pid || !p.receives(id) {
                continue;
            }
            if let Some(a) = p.awaiting.iter().position(|a| *a == id) {
                if !frame.keyframe {
                    continue;
                }
                p.awaiting.swap_remove(a);
            }
            let conn = p.conn.expect("receives() checked the connection");
            self.out.push_back(Output::Media {
                conn,
                frame: frame.clone(),
            });
        }
        self.out.push_back(Output::Published(frame));
    }

    fn message(&mut self, now: Instant, conn: ConnId, msg: ClientMsg) {
        let Some(i) = self.by_conn(conn) else { return };
        let (me, role) = (self.participants[i].id, self.participants[i].role);
        let host = role == MeetingRole::Host;
        match msg {
            ClientMsg::Chat(text) => {
                let m = self.chat.post(me, text.clone());
                self.broadcast(m);
                self.event(Event::Chat { from: me, text });
            }
            ClientMsg::Annotate(a) => {
                // Track 0 is the meeting's blank board; anything else must be a share that exists.
                if a.track != 0 && !self.tracks.iter().any(|t| t.id == a.track) {
                    self.send(
                        me,
                        notice_msg(ErrorCode::NotFound, "no such track to annotate"),
                    );
                    return;
                }
                let kind = a.kind;
                match self.whiteboard.apply(me, a) {
                    Ok(m) => {
                        self.broadcast(m);
                        self.event(Event::Annotated { from: me, kind });
                    }
                    Err(code) => {
                        self.send(me, notice_msg(code, code.describe()));
                    }
                }
            }
            ClientMsg::Subscribe { track, on } => {
                if !self.tracks.iter().any(|t| t.id == track) {
                    self.send(me, notice_msg(ErrorCode::NotFound, "no such track"));
                    return;
                }
                let p = &mut self.participants[i];
                let was = !p.unsubscribed.contains(&track);
                if on {
                    p.unsubscribed.retain(|t| *t != track);
                    if !was {
                        self.start_track(now, i, track);
                    }
                } else if was {
                    p.unsubscribed.push(track);
                    p.awaiting.retain(|t| *t != track);
                }
            }
            ClientMsg::KeyframeRequest { track } => {
                if self.participants[i].receives(track) {
                    self.request_keyframe(now, track);
                }
            }
            ClientMsg::MuteTrack { track, muted } if host => self.mute_track(now, me, track, muted),
            ClientMsg::RemoveParticipant { participant } if host => {
                self.remove_participant(me, participant)
            }
            ClientMsg::SetRole { participant, role } if host => {
                self.set_role(me, participant, role)
            }
            ClientMsg::EndSession if host => self.end(now, EndReason::ByHost),
            ClientMsg::EndSession => {
                self.out.push_back(Output::Close {
                    conn,
                    code: ErrorCode::SessionEnded,
                    reason: "left the meeting",
                });
                self.remove(i, ParticipantState::Left);
                if self.connected() == 0 {
                    self.empty_since = Some(now);
                }
            }
            ClientMsg::FileOffer(o) => {
                let to = o.to;
                let present = self
                    .by_id(to)
                    .is_some_and(|j| self.participants[j].conn.is_some() && to != me);
                if !present {
                    let failed = ServerMsg::FileState {
                        transfer: 0,
                        reference: o.reference,
                        state: FileState::Failed,
                        offset: 0,
                    };
                    self.send(me, failed);
                    let text = "not offered: no such participant connected";
                    self.send(me, notice_msg(ErrorCode::PeerAway, text));
                    return;
                }
                let (d, note) = self.transfers.offer(me, to, o);
                self.deliver(d, note);
            }
            ClientMsg::FileAnswer {
                transfer,
                accept,
                offset,
            } => {
                let (d, note) = self.transfers.answer(me, transfer, accept, offset);
                self.deliver(d, note);
            }
            ClientMsg::FileResult { transfer, ok } => {
                let (d, note) = self.transfers.result(me, transfer, ok);
                self.deliver(d, note);
            }
            ClientMsg::Hello(_) => self.out.push_back(Output::Close {
                conn,
                code: ErrorCode::UnexpectedMessage,
                reason: "HELLO may be sent only once",
            }),
            _ => {
                let text = format!("not permitted for a meeting {}", role.as_str());
                self.send(me, notice_msg(ErrorCode::NotPermitted, &text));
            }
        }
    }

    fn file_stream(&mut self, conn: ConnId, transfer: u32, offset: u64) {
        let to = match self.by_conn(conn) {
            None => Err(ErrorCode::TransferInvalid),
            Some(i) => {
                let me = self.participants[i].id;
                self.transfers
                    .stream(me, transfer, offset)
                    .and_then(|route| {
                        self.by_id(route.to)
                            .and_then(|j| self.participants[j].conn)
                            .map(|c| (c, route.len))
                            .ok_or(ErrorCode::PeerAway)
                    })
            }
        };
        self.out.push_back(Output::FileRoute {
            from: conn,
            transfer,
            offset,
            to,
        });
    }

    fn request_keyframe(&mut self, now: Instant, track: TrackId) {
        let Some(t) = self.tracks.iter_mut().find(|t| t.id == track) else {
            return;
        };
        if t.muted {
            return;
        }
        let sent = t.keyframes.request(now) == Throttled::Send;
        let (publisher, local) = (t.publisher, track % TRACKS_PER_PARTICIPANT);
        let sent = sent && self.send(publisher, ServerMsg::KeyframeRequest { track: local });
        self.event(Event::KeyframeRequest { sent });
    }

    fn end(&mut self, now: Instant, reason: EndReason) {
        if self.ended.is_some() {
            return;
        }
        self.ended = Some(reason);
        for p in &mut self.participants {
            if let Some(conn) = p.conn.take() {
                self.out.push_back(Output::Close {
                    conn,
                    code: reason.code(),
                    reason: reason.as_str(),
                });
            }
        }
        let paired_for = self.first_join.map(|t| now.saturating_duration_since(t));
        let (frames, bytes) = (self.frames, self.bytes);
        self.event(Event::Ended {
            reason,
            paired_for,
            frames,
            bytes,
        });
    }

    /// Handles every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ended.is_some() {
            return;
        }
        if now >= self.ends_at {
            return self.end(now, EndReason::MaxDuration);
        }
        if self
            .empty_since
            .is_some_and(|t| now >= t.max(self.starts_at) + self.cfg.idle_timeout)
        {
            return self.end(now, EndReason::IdleTimeout);
        }
        while let Some(i) = self.participants.iter().position(|p| {
            p.away_since
                .is_some_and(|t| now >= t + self.cfg.resume_grace)
        }) {
            self.remove(i, ParticipantState::Left);
        }
        let mut due = Vec::new();
        for t in &mut self.tracks {
            if t.keyframes.poll_due(now) && !t.muted {
                due.push((t.publisher, t.id % TRACKS_PER_PARTICIPANT));
            }
        }
        for (publisher, local) in due {
            if self.send(publisher, ServerMsg::KeyframeRequest { track: local }) {
                self.event(Event::KeyframeRequest { sent: true });
            }
        }
    }

    /// The next decision, or [`Output::Timeout`] with the next time the room must be woken.
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        Output::Timeout(self.next_timeout())
    }

    fn next_timeout(&self) -> Instant {
        let mut t = self.ends_at;
        if self.ended.is_some() {
            return t;
        }
        if let Some(e) = self.empty_since {
            t = t.min(e.max(self.starts_at) + self.cfg.idle_timeout);
        }
        for p in &self.participants {
            if let Some(a) = p.away_since {
                t = t.min(a + self.cfg.resume_grace);
            }
        }
        self.tracks
            .iter()
            .filter_map(|tr| tr.keyframes.poll_timeout())
            .fold(t, Instant::min)
    }
}
