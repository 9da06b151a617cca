//! One remote-assist session: a technician and a customer paired by an authorization code.
//!
//! The room decides: whether a joining or resuming connection is accepted; who receives each frame and message;
//! when input is dropped (view only, rate limit, customer away); when to ask the customer for a keyframe (at
//! most once per `keyframe_interval`, merged); and when the session ends (either side ends it, idle timeout,
//! maximum duration, a side that does not come back within the grace period, or the code expiring before both
//! sides joined). It does not authenticate: the transport verified the code or token before feeding `Join`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::collab::{CollabLimits, Deliveries, TransferNote, Transfers, Whiteboard};
use super::io::{DropReason, EndReason, Event, Input, Output};
use super::throttle::{IntervalThrottle, Throttled, TokenBucket};
use super::{ConnId, Frame, Role, TrackId};
use crate::protocol::message::PeerState;
use crate::protocol::{ClientMsg, ErrorCode, ServerMsg};

/// Notices about dropped input are sent at most this often, carrying the count dropped meanwhile: enough for a
/// technician's client to show "view only" without a notice per mouse move.
const NOTICE_INTERVAL: Duration = Duration::from_secs(1);

/// Session timing and limits (from the `[session]` config section).
#[derive(Debug, Clone)]
pub struct RoomConfig {
    pub idle_timeout: Duration,
    pub max_duration: Duration,
    pub resume_grace: Duration,
    pub keyframe_interval: Duration,
    pub input_rate_per_sec: f64,
    pub input_burst: u32,
    /// Whiteboard and file-transfer bounds.
    pub collab: CollabLimits,
}

#[derive(Debug, Default)]
struct Slot {
    conn: Option<ConnId>,
    generation: u32,
    joined: bool,
    away_since: Option<Instant>,
}

/// Counts events dropped for one reason and releases a notice at most every [`NOTICE_INTERVAL`].
#[derive(Debug, Default)]
struct Notice {
    pending: u32,
    last: Option<Instant>,
}

impl Notice {
    fn record(&mut self, now: Instant) -> Option<u32> {
        self.pending += 1;
        self.poll_due(now)
    }
    fn poll_due(&mut self, now: Instant) -> Option<u32> {
        let due = self.pending > 0 && self.last.is_none_or(|t| now >= t + NOTICE_INTERVAL);
        due.then(|| {
            self.last = Some(now);
            std::mem::take(&mut self.pending)
        })
    }
    fn poll_timeout(&self) -> Option<Instant> {
        // `record` sends at once when nothing was sent before, so a pending count always has a `last`.
        self.last
            .filter(|_| self.pending > 0)
            .map(|t| t + NOTICE_INTERVAL)
    }
}

/// A NOTICE covering one event.
pub(crate) fn notice_msg(code: ErrorCode, message: &str) -> ServerMsg {
    ServerMsg::Notice {
        code,
        count: 1,
        message: message.to_string(),
    }
}

/// The state machine of one session. See the module documentation.
#[derive(Debug)]
pub struct AssistRoom {
    cfg: RoomConfig,
    join_deadline: Instant,
    technician: Slot,
    customer: Slot,
    paired_at: Option<Instant>,
    control_allowed: bool,
    last_activity: Instant,
    input_bucket: TokenBucket,
    keyframes: IntervalThrottle,
    /// Latest group started per track (few tracks: a linear scan beats hashing).
    groups: Vec<(TrackId, u64)>,
    /// The technician joined or resumed mid-stream and must start at a keyframe.
    technician_needs_keyframe: bool,
    notices: [Notice; 3],
    whiteboard: Whiteboard,
    transfers: Transfers,
    /// Chat sent while the other side was not connected, delivered when it (re)joins; bounded by
    /// `collab.chat_history`, the oldest going first.
    held_chat: VecDeque<(Role, String)>,
    frames: u64,
    bytes: u64,
    ended: Option<EndReason>,
    out: VecDeque<Output>,
}

const NOTICE_VIEW_ONLY: usize = 0;
const NOTICE_RATE: usize = 1;
const NOTICE_AWAY: usize = 2;

impl AssistRoom {
    /// A session waiting for both sides; it expires at `join_deadline` (the code's expiry) unless paired.
    pub fn new(now: Instant, cfg: RoomConfig, join_deadline: Instant) -> AssistRoom {
        AssistRoom {
            input_bucket: TokenBucket::new(now, cfg.input_rate_per_sec, cfg.input_burst),
            keyframes: IntervalThrottle::new(cfg.keyframe_interval),
            whiteboard: Whiteboard::new(cfg.collab.whiteboard_bytes),
            transfers: Transfers::new(cfg.collab),
            held_chat: VecDeque::new(),
            cfg,
            join_deadline,
            technician: Slot::default(),
            customer: Slot::default(),
            paired_at: None,
            control_allowed: false,
            last_activity: now,
            groups: Vec::new(),
            technician_needs_keyframe: false,
            notices: Default::default(),
            frames: 0,
            bytes: 0,
            ended: None,
            out: VecDeque::new(),
        }
    }

    pub fn is_ended(&self) -> Option<EndReason> {
        self.ended
    }

    pub fn is_paired(&self) -> bool {
        self.paired_at.is_some()
    }

    fn slot(&mut self, role: Role) -> &mut Slot {
        match role {
            Role::Technician => &mut self.technician,
            Role::Customer => &mut self.customer,
        }
    }

    fn role_of(&self, conn: ConnId) -> Option<Role> {
        if self.technician.conn == Some(conn) {
            Some(Role::Technician)
        } else if self.customer.conn == Some(conn) {
            Some(Role::Customer)
        } else {
            None
        }
    }

    fn conn_of(&self, role: Role) -> Option<ConnId> {
        match role {
            Role::Technician => self.technician.conn,
            Role::Customer => self.customer.conn,
        }
    }

    fn send(&mut self, role: Role, msg: ServerMsg) -> bool {
        match self.conn_of(role) {
            Some(conn) => {
                self.out.push_back(Output::Send { conn, msg });
                true
            }
            None => false,
        }
    }

    fn event(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    /// Feeds one event. Timers due at `now` are handled first.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.handle_timeout(now);
        if let Some(reason) = self.ended {
            // Only joins need an answer once the session is over; everything else is moot.
            if let Input::Join { conn, .. } = input {
                self.out.push_back(Output::Close {
                    conn,
                    code: reason.code(),
                    reason: reason.as_str(),
                });
            }
            return;
        }
        match input {
            Input::Join {
                conn,
                role,
                resume,
                allow_control,
            } => self.join(now, conn, role, resume, allow_control),
            Input::Left { conn } => self.left(now, conn),
            Input::Frame { conn, frame } => self.frame(now, conn, frame),
            Input::Message { conn, msg } => self.message(now, conn, msg),
            Input::Lagged { conn, .. } => {
                if self.role_of(conn) == Some(Role::Technician) {
                    self.request_keyframe(now, 0);
                }
            }
            Input::End { reason } => self.end(now, reason),
            Input::Enter { conn, .. } => self.out.push_back(Output::Close {
                conn,
                code: ErrorCode::UnexpectedMessage,
                reason: "this is a remote-assist session, not a meeting",
            }),
            Input::FileStream {
                conn,
                transfer,
                offset,
            } => self.file_stream(conn, transfer, offset),
            Input::Recording { .. } => {}
        }
    }

    fn join(
        &mut self,
        now: Instant,
        conn: ConnId,
        role: Role,
        resume: Option<u32>,
        allow_control: bool,
    ) {
        let slot = self.slot(role);
        let refuse = match resume {
            None if slot.joined => Some(if slot.conn.is_some() {
                (ErrorCode::RoleTaken, "this role is already connected")
            } else {
                (
                    ErrorCode::ResumeRefused,
                    "already joined once: resume with the resume token",
                )
            }),
            Some(_) if !slot.joined => Some((ErrorCode::ResumeRefused, "nothing to resume")),
            Some(g) if g != slot.generation => {
                Some((ErrorCode::ResumeRefused, "resume token superseded"))
            }
            _ => None,
        };
        if let Some((code, reason)) = refuse {
            self.out.push_back(Output::Close { conn, code, reason });
            return;
        }
        let replaced = slot.conn.replace(conn);
        let first = !slot.joined;
        slot.joined = true;
        slot.away_since = None;
        slot.generation += 1;
        let generation = slot.generation;
        if let Some(old) = replaced {
            self.out.push_back(Output::Close {
                conn: old,
                code: ErrorCode::Replaced,
                reason: "resumed elsewhere",
            });
        }
        if role == Role::Customer && first {
            self.control_allowed = allow_control;
        }
        if role == Role::Customer && !first {
            // A resumed sender numbers its groups afresh on its new connection.
            self.groups.clear();
        }
        self.last_activity = now;
        let peer_present = self.conn_of(role.peer()).is_some();
        self.out.push_back(Output::Accepted {
            conn,
            role,
            generation,
            control_allowed: self.control_allowed,
            peer_present,
        });
        let state = if first {
            PeerState::Joined
        } else {
            PeerState::Resumed
        };
        self.send(role.peer(), ServerMsg::Peer { role, state });
        let mut msgs: Vec<ServerMsg> = self.whiteboard.snapshot().collect();
        let (held, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.held_chat)
            .into_iter()
            .partition(|(from, _)| *from != role);
        self.held_chat = kept;
        msgs.extend(
            held.into_iter()
                .map(|(from, text)| ServerMsg::Chat { from, text }),
        );
        if !msgs.is_empty() {
            self.out.push_back(Output::SendBatch { conn, msgs });
        }
        if !first {
            self.event(Event::PeerResumed(role));
        }
        if role == Role::Customer && first {
            let allowed = self.control_allowed;
            self.send(Role::Technician, ServerMsg::Control { allowed });
        }
        if self.paired_at.is_none()
            && self.technician.conn.is_some()
            && self.customer.conn.is_some()
        {
            self.paired_at = Some(now);
            self.event(Event::Paired);
        }
        if role == Role::Technician && !self.groups.is_empty() {
            // Mid-stream: start the technician at the next keyframe, and ask for one.
            self.technician_needs_keyframe = true;
            self.request_keyframe(now, 0);
        }
    }

    fn left(&mut self, now: Instant, conn: ConnId) {
        let Some(role) = self.role_of(conn) else {
            return;
        };
        let slot = self.slot(role);
        slot.conn = None;
        slot.away_since = Some(now);
        self.send(
            role.peer(),
            ServerMsg::Peer {
                role,
                state: PeerState::Away,
            },
        );
        self.event(Event::PeerAway(role));
    }

    fn frame(&mut self, now: Instant, conn: ConnId, frame: Frame) {
        if self.role_of(conn) != Some(Role::Customer) {
            return; // stale connection; the transport refuses media streams from technicians
        }
        self.last_activity = now;
        let size = frame.wire.len();
        let latest = self.groups.iter_mut().find(|(t, _)| *t == frame.track);
        match latest {
            Some((_, g)) if frame.group < *g => {
                self.event(Event::FrameDropped {
                    reason: DropReason::StaleGroup,
                    bytes: size,
                });
                return;
            }
            Some((_, g)) => *g = frame.group,
            None => self.groups.push((frame.track, frame.group)),
        }
        if frame.keyframe {
            self.keyframes.satisfy();
        }
        let Some(tech) = self.technician.conn else {
            self.event(Event::FrameDropped {
                reason: DropReason::NoReceiver,
                bytes: size,
            });
            return;
        };
        if self.technician_needs_keyframe {
            if !frame.keyframe {
                self.event(Event::FrameDropped {
                    reason: DropReason::AwaitingKeyframe,
                    bytes: size,
                });
                return;
            }
            self.technician_needs_keyframe = false;
        }
        self.frames += 1;
        self.bytes += size as u64;
        self.out.push_back(Output::Media { conn: tech, frame });
    }

    fn message(&mut self, now: Instant, conn: ConnId, msg: ClientMsg) {
        let Some(role) = self.role_of(conn) else {
            return;
        };
        self.last_activity = now;
        match (role, msg) {
            (Role::Technician, ClientMsg::Input(ev)) => self.input(now, ev),
            (_, ClientMsg::Chat(text)) => {
                if self.conn_of(role.peer()).is_some() {
                    self.send(role.peer(), ServerMsg::Chat { from: role, text });
                } else {
                    self.hold_chat(now, role, text);
                }
            }
            (_, ClientMsg::Clipboard(text)) => {
                self.relay_text(now, role, ServerMsg::Clipboard { from: role, text })
            }
            (Role::Customer, ClientMsg::SetControl(allowed)) => {
                if self.control_allowed != allowed {
                    self.control_allowed = allowed;
                    self.event(Event::ControlChanged(allowed));
                }
                self.send(Role::Customer, ServerMsg::Control { allowed });
                self.send(Role::Technician, ServerMsg::Control { allowed });
            }
            (Role::Technician, ClientMsg::KeyframeRequest { track }) => {
                self.request_keyframe(now, track)
            }
            (Role::Customer, ClientMsg::EndSession) => self.end(now, EndReason::ByCustomer),
            (Role::Technician, ClientMsg::EndSession) => self.end(now, EndReason::ByTechnician),
            (_, ClientMsg::Annotate(a)) => {
                let (from, kind) = (role.to_wire() as u32, a.kind);
                match self.whiteboard.apply(from, a) {
                    Ok(m) => {
                        self.send(Role::Customer, m.clone());
                        self.send(Role::Technician, m);
                        self.event(Event::Annotated { from, kind });
                    }
                    Err(code) => {
                        self.send(role, notice_msg(code, code.describe()));
                    }
                }
            }
            (_, ClientMsg::FileOffer(o)) => {
                let (me, peer) = (role.to_wire() as u32, role.peer().to_wire() as u32);
                if self.conn_of(role.peer()).is_none() {
                    let failed = ServerMsg::FileState {
                        transfer: 0,
                        reference: o.reference,
                        state: crate::protocol::message::FileState::Failed,
                        offset: 0,
                    };
                    self.send(role, failed);
                    let message =
                        format!("not offered: the {} is not connected", role.peer().as_str());
                    self.send(role, notice_msg(ErrorCode::PeerAway, &message));
                    return;
                }
                let (d, note) = self.transfers.offer(me, peer, o);
                self.deliver(d, note);
            }
            (
                _,
                ClientMsg::FileAnswer {
                    transfer,
                    accept,
                    offset,
                },
            ) => {
                let (d, note) =
                    self.transfers
                        .answer(role.to_wire() as u32, transfer, accept, offset);
                self.deliver(d, note);
            }
            (_, ClientMsg::FileResult { transfer, ok }) => {
                let (d, note) = self.transfers.result(role.to_wire() as u32, transfer, ok);
                self.deliver(d, note);
            }
            (_, ClientMsg::Hello(_)) => self.out.push_back(Output::Close {
                conn,
                code: ErrorCode::UnexpectedMessage,
                reason: "HELLO may be sent only once",
            }),
            (role, _) => {
                let message = format!("not permitted for the {}", role.as_str());
                self.send(
                    role,
                    ServerMsg::Notice {
                        code: ErrorCode::NotPermitted,
                        count: 1,
                        message,
                    },
                );
            }
        }
    }

    /// Sends collaboration messages addressed by participant (the role's wire value).
    fn deliver(&mut self, d: Deliveries, note: Option<TransferNote>) {
        for (to, msg) in d {
            if let Some(role) = u8::try_from(to).ok().and_then(Role::from_wire) {
                self.send(role, msg);
            }
        }
        if let Some(n) = note {
            self.event(Event::Transfer(n));
        }
    }

    fn file_stream(&mut self, conn: ConnId, transfer: u32, offset: u64) {
        let to = match self.role_of(conn) {
            None => Err(ErrorCode::TransferInvalid),
            Some(role) => self
                .transfers
                .stream(role.to_wire() as u32, transfer, offset)
                .and_then(|route| {
                    let to = u8::try_from(route.to).ok().and_then(Role::from_wire);
                    to.and_then(|r| self.conn_of(r))
                        .map(|c| (c, route.len))
                        .ok_or(ErrorCode::PeerAway)
                }),
        };
        self.out.push_back(Output::FileRoute {
            from: conn,
            transfer,
            offset,
            to,
        });
    }

    fn input(&mut self, now: Instant, ev: crate::protocol::InputEvent) {
        let drop = if self.customer.conn.is_none() {
            Some((DropReason::NoReceiver, NOTICE_AWAY))
        } else if !self.control_allowed {
            Some((DropReason::ViewOnly, NOTICE_VIEW_ONLY))
        } else if !self.input_bucket.try_take(now) {
            Some((DropReason::RateLimited, NOTICE_RATE))
        } else {
            None
        };
        match drop {
            None => {
                self.send(Role::Customer, ServerMsg::Input(ev));
                self.event(Event::InputForwarded);
            }
            Some((reason, notice)) => {
                self.event(Event::InputDropped(reason));
                if let Some(count) = self.notices[notice].record(now) {
                    self.send_notice(notice, count);
                }
            }
        }
    }

    fn send_notice(&mut self, notice: usize, count: u32) {
        let (code, text) = match notice {
            NOTICE_VIEW_ONLY => (
                ErrorCode::InputViewOnly,
                "input dropped: the customer allows view only",
            ),
            NOTICE_RATE => (
                ErrorCode::InputRateLimited,
                "input dropped: too many events per second",
            ),
            _ => (
                ErrorCode::PeerAway,
                "not delivered: the customer is not connected",
            ),
        };
        self.send(
            Role::Technician,
            ServerMsg::Notice {
                code,
                count,
                message: text.to_string(),
            },
        );
    }

    /// Keeps a chat line for a side that is not connected, and tells the sender.
    fn hold_chat(&mut self, now: Instant, from: Role, text: String) {
        if self.cfg.collab.chat_history == 0 {
            return self.relay_text(now, from, ServerMsg::Chat { from, text });
        }
        if self.held_chat.len() == self.cfg.collab.chat_history {
            self.held_chat.pop_front();
        }
        self.held_chat.push_back((from, text));
        let message = format!(
            "the {} is not connected: the message is held until it joins (the last {} are kept)",
            from.peer().as_str(),
            self.cfg.collab.chat_history
        );
        self.send(from, notice_msg(ErrorCode::PeerAway, &message));
    }

    fn relay_text(&mut self, _now: Instant, from: Role, msg: ServerMsg) {
        if !self.send(from.peer(), msg) {
            let message = format!(
                "not delivered: the {} is not connected",
                from.peer().as_str()
            );
            self.send(
                from,
                ServerMsg::Notice {
                    code: ErrorCode::PeerAway,
                    count: 1,
                    message,
                },
            );
        }
    }

    fn request_keyframe(&mut self, now: Instant, track: TrackId) {
        if self.customer.conn.is_none() {
            return;
        }
        let sent = self.keyframes.request(now) == Throttled::Send;
        if sent {
            self.send(Role::Customer, ServerMsg::KeyframeRequest { track });
        }
        self.event(Event::KeyframeRequest { sent });
    }

    fn end(&mut self, now: Instant, reason: EndReason) {
        if self.ended.is_some() {
            return;
        }
        self.ended = Some(reason);
        for conn in [self.technician.conn.take(), self.customer.conn.take()]
            .into_iter()
            .flatten()
        {
            self.out.push_back(Output::Close {
                conn,
                code: reason.code(),
                reason: reason.as_str(),
            });
        }
        let paired_for = self.paired_at.map(|t| now.saturating_duration_since(t));
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
        let reason = match self.paired_at {
            None if now >= self.join_deadline => Some(EndReason::Expired),
            Some(p) if now >= p + self.cfg.max_duration => Some(EndReason::MaxDuration),
            Some(_) if now >= self.last_activity + self.cfg.idle_timeout => {
                Some(EndReason::IdleTimeout)
            }
            _ => [Role::Customer, Role::Technician]
                .into_iter()
                .find_map(|r| {
                    let away = match r {
                        Role::Technician => self.technician.away_since,
                        Role::Customer => self.customer.away_since,
                    };
                    away.filter(|t| now >= *t + self.cfg.resume_grace)
                        .map(|_| EndReason::PeerGone(r))
                }),
        };
        if let Some(reason) = reason {
            self.end(now, reason);
            return;
        }
        if self.keyframes.poll_due(now)
            && self.send(Role::Customer, ServerMsg::KeyframeRequest { track: 0 })
        {
            self.event(Event::KeyframeRequest { sent: true });
        }
        for i in 0..self.notices.len() {
            if let Some(count) = self.notices[i].poll_due(now) {
                self.send_notice(i, count);
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
        let far = self.last_activity + Duration::from_secs(86_400 * 365);
        if self.ended.is_some() {
            return far;
        }
        let mut t = match self.paired_at {
            None => self.join_deadline,
            Some(p) => (p + self.cfg.max_duration).min(self.last_activity + self.cfg.idle_timeout),
        };
        for away in [self.technician.away_since, self.customer.away_since]
            .into_iter()
            .flatten()
        {
            t = t.min(away + self.cfg.resume_grace);
        }
        let timers = self.notices.iter().filter_map(Notice::poll_timeout);
        self.keyframes
            .poll_timeout()
            .into_iter()
            .chain(timers)
            .fold(t, Instant::min)
    }
}
