//! The task that owns one session's [`AssistRoom`]: the only place its state is touched, so forwarding takes
//! no locks beyond the receiver's media queue. It reads the clock once per wake-up, feeds the room, and
//! carries out every output: frames into receivers' backlogs (never waiting), messages into bounded control
//! queues (a peer that lets its queue fill up is closed as a slow consumer), closes, metrics and logs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::peer::{ControlOut, FilePipe, PeerHandle, FILE_PIPE_CHUNKS};
use super::recorder::RoomRecorder;
use super::Relay;
use crate::core::{
    AssistRoom, ConnId, EndReason, Entry, Event, Input, MeetingRoom, Output, PushOutcome, Role,
    SessionId,
};
use crate::pairing::{Claims, MeetingClaims, MeetingTokenKind, TokenKind};
use crate::protocol::message::MeetingWelcome;
use crate::protocol::{ErrorCode, ServerMsg};
use crate::recording::StopReason;

/// The state machine a room task owns.
#[derive(Debug)]
pub enum Core {
    Assist(AssistRoom),
    Meeting(MeetingRoom),
}

impl Core {
    fn handle_input(&mut self, now: Instant, input: Input) {
        match self {
            Core::Assist(r) => r.handle_input(now, input),
            Core::Meeting(r) => r.handle_input(now, input),
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Core::Assist(r) => r.handle_timeout(now),
            Core::Meeting(r) => r.handle_timeout(now),
        }
    }
    fn poll_output(&mut self) -> Output {
        match self {
            Core::Assist(r) => r.poll_output(),
            Core::Meeting(r) => r.poll_output(),
        }
    }
    fn is_ended(&self) -> Option<EndReason> {
        match self {
            Core::Assist(r) => r.is_ended(),
            Core::Meeting(r) => r.is_ended(),
        }
    }
    fn is_meeting(&self) -> bool {
        matches!(self, Core::Meeting(_))
    }
}

/// Where the bytes of a file stream go: a channel to the recipient's writer and how many bytes to pass, or
/// the code to refuse the stream with.
pub type FileRouteReply = Result<(mpsc::Sender<bytes::Bytes>, u64), ErrorCode>;

/// What a recording request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingReply {
    /// Recording now, into this directory.
    Started { dir: std::path::PathBuf },
    /// Was already recording into this directory.
    AlreadyRunning { dir: std::path::PathBuf },
    /// Stopped; the summary's directory, files and bytes.
    Stopped {
        dir: std::path::PathBuf,
        files: Vec<std::path::PathBuf>,
        bytes: u64,
    },
    /// Was not recording.
    NotRunning,
    /// Not a meeting, or the recording could not start (the message says why).
    Refused(String),
}

/// Messages to a room task.
#[derive(Debug)]
pub enum RoomMsg {
    /// A connection authenticated for this session.
    Join {
        peer: PeerHandle,
        role: Role,
        resume: Option<u32>,
        allow_control: bool,
    },
    /// Meetings: an authenticated connection enters.
    Enter { peer: PeerHandle, entry: Entry },
    /// Any other input for the core.
    Input(Input),
    /// `conn` opened a file stream: where should its bytes go?
    FileStream {
        conn: ConnId,
        transfer: u32,
        offset: u64,
        reply: oneshot::Sender<FileRouteReply>,
    },
    /// Meetings: start or stop recording.
    Recording {
        on: bool,
        reply: oneshot::Sender<RecordingReply>,
    },
}

/// What the room task holds besides the core.
struct Task {
    peers: HashMap<ConnId, PeerHandle>,
    files: HashMap<(ConnId, u32), oneshot::Sender<FileRouteReply>>,
    recorder: Option<RoomRecorder>,
}

/// How many queued inputs the task handles before it yields, so one busy session cannot hog a worker.
const INPUTS_PER_WAKE: usize = 64;

pub(super) async fn run(
    relay: Arc<Relay>,
    id: SessionId,
    mut room: Core,
    mut rx: mpsc::Receiver<RoomMsg>,
) {
    let clock = relay.clock.clone();
    let mut task = Task {
        peers: HashMap::new(),
        files: HashMap::new(),
        recorder: None,
    };
    let mut sleep_at = clock.now();
    let mut sleep = clock.sleep_until(sleep_at);
    let cancel = relay.shutdown.clone();
    let mut shutting_down = false;
    loop {
        let deadline = drain(&relay, id, &mut room, &mut task, clock.now());
        if room.is_ended().is_some() {
            break;
        }
        if deadline != sleep_at {
            sleep_at = deadline;
            sleep = clock.sleep_until(deadline);
        }
        let recorder_stopped = async {
            match task.recorder.as_ref() {
                Some(r) => r.stopped_by_itself().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                let now = clock.now();
                feed(&relay, id, &mut room, &mut task, now, msg).await;
                for _ in 1..INPUTS_PER_WAKE {
                    match rx.try_recv() {
                        Ok(msg) => feed(&relay, id, &mut room, &mut task, now, msg).await,
                        Err(_) => break,
                    }
                }
            }
            reason = recorder_stopped => {
                let rec = task.recorder.take().expect("a recorder stopped");
                // The recorder logged why; the meeting goes on and everyone is told.
                rec.finish(&relay, reason).await;
                let text = reason.describe().to_string();
                room.handle_input(clock.now(), Input::Recording { active: false, reason: text });
            }
            _ = &mut sleep => room.handle_timeout(clock.now()),
            _ = cancel.cancelled(), if !shutting_down => {
                shutting_down = true;
                room.handle_input(clock.now(), Input::End { reason: EndReason::Shutdown });
            }
        }
    }
    for (_, peer) in task.peers.drain() {
        peer.media.close();
    }
    if let Some(rec) = task.recorder.take() {
        // Ended with the meeting (no RECORDING message is left to send).
        rec.meeting_ended(
            &relay,
            room.is_ended().unwrap_or(EndReason::Shutdown).label(),
        );
        rec.finish(&relay, StopReason::MeetingEnded).await;
        relay.metrics.recordings_active.dec();
    }
    // Connections that authenticated while the session was ending must not wait for a WELCOME forever.
    relay.forget(id, room.is_meeting());
    rx.close();
    let reason = room.is_ended().unwrap_or(EndReason::Shutdown);
    while let Some(msg) = rx.recv().await {
        match msg {
            RoomMsg::Join { peer, .. } | RoomMsg::Enter { peer, .. } => {
                (peer.closer)(reason.code(), reason.as_str())
            }
            RoomMsg::Recording { reply, .. } => {
                let _ = reply.send(RecordingReply::Refused("the meeting has ended".into()));
            }
            RoomMsg::FileStream { reply, .. } => {
                let _ = reply.send(Err(ErrorCode::SessionEnded));
            }
            RoomMsg::Input(_) => {}
        }
    }
}

async fn feed(
    relay: &Arc<Relay>,
    id: SessionId,
    room: &mut Core,
    task: &mut Task,
    now: Instant,
    msg: RoomMsg,
) {
    match msg {
        RoomMsg::Join {
            peer,
            role,
            resume,
            allow_control,
        } => {
            let conn = peer.conn;
            task.peers.insert(conn, peer);
            room.handle_input(
                now,
                Input::Join {
                    conn,
                    role,
                    resume,
                    allow_control,
                },
            );
        }
        RoomMsg::Enter { peer, entry } => {
            let conn = peer.conn;
            task.peers.insert(conn, peer);
            room.handle_input(now, Input::Enter { conn, entry });
        }
        RoomMsg::Input(input) => {
            if let Input::Left { conn } = &input {
                if let Some(p) = task.peers.remove(conn) {
                    p.media.close();
                }
            }
            room.handle_input(now, input);
        }
        RoomMsg::FileStream {
            conn,
            transfer,
            offset,
            reply,
        } => {
            task.files.insert((conn, transfer), reply);
            room.handle_input(
                now,
                Input::FileStream {
                    conn,
                    transfer,
                    offset,
                },
            );
        }
        RoomMsg::Recording { on, reply } => {
            let answer = recording(relay, id, room, task, now, on).await;
            let _ = reply.send(answer);
        }
    }
}

async fn recording(
    relay: &Arc<Relay>,
    id: SessionId,
    room: &mut Core,
    task: &mut Task,
    now: Instant,
    on: bool,
) -> RecordingReply {
    if !room.is_meeting() {
        return RecordingReply::Refused("only meetings are recorded".into());
    }
    match (on, task.recorder.take()) {
        (true, Some(rec)) => {
            let dir = rec.dir().to_owned();
            task.recorder = Some(rec);
            RecordingReply::AlreadyRunning { dir }
        }
        (true, None) => match RoomRecorder::start(relay, id) {
            Ok(rec) => {
                let dir = rec.dir().to_owned();
                task.recorder = Some(rec);
                let reason = "started by an administrator".to_string();
                room.handle_input(
                    now,
                    Input::Recording {
                        active: true,
                        reason,
                    },
                );
                RecordingReply::Started { dir }
            }
            Err(e) => RecordingReply::Refused(e),
        },
        (false, Some(rec)) => {
            let summary = rec.finish(relay, StopReason::Requested).await;
            let reason = "stopped by an administrator".to_string();
            room.handle_input(
                now,
                Input::Recording {
                    active: false,
                    reason,
                },
            );
            RecordingReply::Stopped {
                dir: summary.dir,
                files: summary.files,
                bytes: summary.bytes,
            }
        }
        (false, None) => RecordingReply::NotRunning,
    }
}

/// Carries out outputs until the room asks to sleep; returns when to wake it.
/// `now` is read once per wake-up, not once per delivery (a frame fans out to every subscriber here).
fn drain(relay: &Relay, id: SessionId, room: &mut Core, task: &mut Task, now: Instant) -> Instant {
    let m = &relay.metrics;
    loop {
        match room.poll_output() {
            Output::Timeout(t) => return t,
            Output::Accepted {
                conn,
                role,
                generation,
                control_allowed,
                peer_present,
            } => {
                if !task.peers.contains_key(&conn) {
                    continue;
                }
                let claims = Claims {
                    kind: TokenKind::Resume,
                    role,
                    session: id,
                    generation,
                    expires_unix_ms: relay.clock.unix_ms() + relay.resume_token_ttl_ms(),
                };
                let welcome = ServerMsg::Welcome {
                    session: id.0,
                    role,
                    resume_token: relay.tokens.sign(&claims),
                    control_allowed,
                    peer_present,
                    resume_grace_ms: relay.cfg.session.resume_grace.0.as_millis() as u32,
                    max_frame_bytes: relay.cfg.limits.max_frame_bytes.0 as u32,
                    max_message_bytes: relay.cfg.limits.max_message_bytes.0 as u32,
                };
                tracing::info!(session = %id, role = role.as_str(), generation, "peer joined");
                send(room, task, relay, conn, ControlOut::Msg(welcome));
            }
            Output::Admitted {
                conn,
                participant,
                generation,
                role,
                recording,
            } => {
                if !task.peers.contains_key(&conn) {
                    continue;
                }
                let mc = &relay.cfg.meeting;
                let claims = MeetingClaims {
                    kind: MeetingTokenKind::Resume,
                    role,
                    meeting: id,
                    subject: participant,
                    generation,
                    expires_unix_ms: relay.clock.unix_ms()
                        + (mc.max_duration.0 + mc.resume_grace.0).as_millis() as u64,
                };
                let welcome = ServerMsg::MeetingWelcome(MeetingWelcome {
                    meeting: id.0,
                    participant,
                    role,
                    resume_token: relay.tokens.sign_meeting(&claims),
                    recording,
                    resume_grace_ms: mc.resume_grace.0.as_millis() as u32,
                    max_frame_bytes: relay.cfg.limits.max_frame_bytes.0 as u32,
                    max_message_bytes: relay.cfg.limits.max_message_bytes.0 as u32,
                    max_file_bytes: mc.max_file_bytes.0,
                    max_tracks: mc.max_tracks_per_presenter,
                });
                send(room, task, relay, conn, ControlOut::Msg(welcome));
            }
            Output::Media { conn, frame } => {
                let Some(peer) = task.peers.get(&conn) else {
                    continue;
                };
                let (outcome, skipping) = {
                    let mut q = peer.media.lock();
                    let outcome = q.push(now, frame);
                    let skipping = match outcome {
                        PushOutcome::Lagged {
                            need_keyframe: true,
                            ..
                        } => q.skipping().to_vec(),
                        _ => Vec::new(),
                    };
                    (outcome, skipping)
                };
                match outcome {
                    PushOutcome::Queued => peer.media.notify.notify_one(),
                    PushOutcome::Skipped => m
                        .frames_dropped
                        .with_label_values(&["receiver_lagging"])
                        .inc(),
                    PushOutcome::Lagged { dropped, .. } => {
                        peer.media.notify.notify_one();
                        m.frames_dropped
                            .with_label_values(&["receiver_lagging"])
                            .inc_by(dropped as u64);
                        m.groups_reset.inc();
                        tracing::debug!(session = %id, dropped, "receiver lagging: skipping to next keyframe");
                        for track in skipping {
                            room.handle_input(now, Input::Lagged { conn, track });
                        }
                    }
                }
            }
            Output::Send { conn, msg } => send(room, task, relay, conn, ControlOut::Msg(msg)),
            Output::SendBatch { conn, msgs } => {
                send(room, task, relay, conn, ControlOut::Batch(msgs))
            }
            Output::Close { conn, code, reason } => {
                if let Some(peer) = task.peers.remove(&conn) {
                    peer.media.finish();
                    m.connections_closed
                        .with_label_values(&[code.as_str()])
                        .inc();
                    if peer
                        .control
                        .try_send(ControlOut::Close(code, reason.to_string()))
                        .is_err()
                    {
                        (peer.closer)(code, reason);
                    }
                }
            }
            Output::FileRoute {
                from,
                transfer,
                offset,
                to,
            } => {
                let Some(reply) = task.files.remove(&(from, transfer)) else {
                    continue;
                };
                let route = to.and_then(|(to, len)| {
                    let peer = task.peers.get(&to).ok_or(ErrorCode::PeerAway)?;
                    let (tx, chunks) = mpsc::channel(FILE_PIPE_CHUNKS);
                    let pipe = FilePipe {
                        transfer,
                        offset,
                        len,
                        chunks,
                    };
                    peer.files.try_send(pipe).map_err(|_| ErrorCode::Busy)?;
                    Ok((tx, len))
                });
                let _ = reply.send(route);
            }
            Output::Published(frame) => {
                if let Some(rec) = task.recorder.as_ref() {
                    rec.frame(&frame);
                }
            }
            Output::Event(e) => event(relay, id, task, e),
        }
    }
}

/// Queues a control message; a full queue means the peer stopped reading: close it as a slow consumer.
fn send(room: &mut Core, task: &mut Task, relay: &Relay, conn: ConnId, msg: ControlOut) {
    let Some(peer) = task.peers.get(&conn) else {
        return;
    };
    if peer.control.try_send(msg).is_err() {
        let code = ErrorCode::SlowConsumer;
        (peer.closer)(code, "control messages not read");
        relay
            .metrics
            .connections_closed
            .with_label_values(&[code.as_str()])
            .inc();
        if let Some(p) = task.peers.remove(&conn) {
            p.media.close();
        }
        room.handle_input(relay.clock.now(), Input::Left { conn });
    }
}

fn event(relay: &Relay, id: SessionId, task: &Task, e: Event) {
    let m = &relay.metrics;
    if let Some(rec) = task.recorder.as_ref() {
        rec.event(relay, &e);
    }
    match e {
        Event::Paired => {
            m.sessions_paired.inc();
            relay.mark_paired(id);
            tracing::info!(session = %id, "session paired");
        }
        Event::PeerAway(role) => {
            tracing::info!(session = %id, role = role.as_str(), "peer away; may resume")
        }
        Event::PeerResumed(role) => {
            tracing::info!(session = %id, role = role.as_str(), "peer resumed")
        }
        Event::ControlChanged(allowed) => {
            tracing::info!(session = %id, allowed, "control changed by customer")
        }
        Event::FrameDropped { reason, .. } => {
            m.frames_dropped.with_label_values(&[reason.label()]).inc()
        }
        Event::KeyframeRequest { sent } => m
            .keyframe_requests
            .with_label_values(&[if sent { "sent" } else { "suppressed" }])
            .inc(),
        Event::InputForwarded => m.input_events.with_label_values(&["forwarded"]).inc(),
        Event::InputDropped(reason) => m.input_events.with_label_values(&[reason.label()]).inc(),
        Event::Ended {
            reason,
            paired_for,
            frames,
            bytes,
        } => {
            m.sessions_ended.with_label_values(&[reason.label()]).inc();
            tracing::info!(
                session = %id,
                reason = reason.as_str(),
                paired_secs = paired_for.map(|d| d.as_secs_f64()),
                frames,
                bytes,
                "session ended"
            );
            relay.record_end(id, reason, paired_for, bytes);
        }
        Event::Participant {
            participant,
            role,
            state,
            ..
        } => {
            tracing::info!(meeting = %id, participant, role = role.as_str(), state = ?state, "participant");
        }
        Event::Chat { .. } => m.chat_messages.inc(),
        Event::Annotated { .. } => m.annotations.inc(),
        Event::Transfer(n) => {
            m.file_transfers
                .with_label_values(&[n.state.as_str()])
                .inc();
            tracing::info!(session = %id, transfer = n.transfer, from = n.from, to = n.to, size = n.size, state = n.state.as_str(), "file transfer");
        }
        Event::Recording(on) => {
            if on {
                m.recordings_active.inc();
            } else {
                m.recordings_active.dec();
            }
            tracing::info!(meeting = %id, recording = on, "recording");
        }
        // Only the recording's log keeps it.
        Event::Roster(_) => {}
    }
}
