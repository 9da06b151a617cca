//! The task that owns one session's [`AssistRoom`]: the only place its state is touched, so forwarding takes
//! no locks beyond the receiver's media queue. It reads the clock once per wake-up, feeds the room, and
//! carries out every output: frames into receivers' backlogs (never waiting), messages into bounded control
//! queues (a peer that lets its queue fill up is closed as a slow consumer), closes, metrics and logs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::peer::{ControlOut, PeerHandle};
use super::Relay;
use crate::core::{AssistRoom, ConnId, Event, Input, Output, PushOutcome, Role, SessionId};
use crate::pairing::{Claims, TokenKind};
use crate::protocol::{ErrorCode, ServerMsg};

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
    /// Any other input for the core.
    Input(Input),
}

/// How many queued inputs the task handles before it yields, so one busy session cannot hog a worker.
const INPUTS_PER_WAKE: usize = 64;

pub(super) async fn run(
    relay: Arc<Relay>,
    id: SessionId,
    mut room: AssistRoom,
    mut rx: mpsc::Receiver<RoomMsg>,
) {
    let clock = relay.clock.clone();
    let mut peers: HashMap<ConnId, PeerHandle> = HashMap::new();
    let mut sleep_at = clock.now();
    let mut sleep = clock.sleep_until(sleep_at);
    let cancel = relay.shutdown.clone();
    let mut shutting_down = false;
    loop {
        let deadline = drain(&relay, id, &mut room, &mut peers);
        if room.is_ended().is_some() {
            break;
        }
        if deadline != sleep_at {
            sleep_at = deadline;
            sleep = clock.sleep_until(deadline);
        }
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                let now = clock.now();
                feed(&mut room, &mut peers, now, msg);
                for _ in 1..INPUTS_PER_WAKE {
                    match rx.try_recv() {
                        Ok(msg) => feed(&mut room, &mut peers, now, msg),
                        Err(_) => break,
                    }
                }
            }
            _ = &mut sleep => room.handle_timeout(clock.now()),
            _ = cancel.cancelled(), if !shutting_down => {
                shutting_down = true;
                room.handle_input(clock.now(), Input::End { reason: crate::core::EndReason::Shutdown });
            }
        }
    }
    for (_, peer) in peers.drain() {
        peer.media.close();
    }
    // Connections that authenticated while the session was ending must not wait for a WELCOME forever.
    relay.forget(id);
    rx.close();
    let reason = room.is_ended().unwrap_or(crate::core::EndReason::Shutdown);
    while let Some(msg) = rx.recv().await {
        if let RoomMsg::Join { peer, .. } = msg {
            (peer.closer)(reason.code(), reason.as_str());
        }
    }
}

fn feed(
    room: &mut AssistRoom,
    peers: &mut HashMap<ConnId, PeerHandle>,
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
            peers.insert(conn, peer);
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
        RoomMsg::Input(input) => {
            if let Input::Left { conn } = &input {
                if let Some(p) = peers.remove(conn) {
                    p.media.close();
                }
            }
            room.handle_input(now, input);
        }
    }
}

/// Carries out outputs until the room asks to sleep; returns when to wake it.
fn drain(
    relay: &Relay,
    id: SessionId,
    room: &mut AssistRoom,
    peers: &mut HashMap<ConnId, PeerHandle>,
) -> Instant {
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
                if !peers.contains_key(&conn) {
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
                send(room, peers, relay, conn, welcome);
            }
            Output::Media { conn, frame } => {
                let Some(peer) = peers.get(&conn) else {
                    continue;
                };
                let now = relay.clock.now();
                let outcome = peer.media.lock().push(now, frame);
                match outcome {
                    PushOutcome::Queued => peer.media.notify.notify_one(),
                    PushOutcome::Skipped => m
                        .frames_dropped
                        .with_label_values(&["receiver_lagging"])
                        .inc(),
                    PushOutcome::Lagged {
                        dropped,
                        need_keyframe,
                        ..
                    } => {
                        peer.media.notify.notify_one();
                        m.frames_dropped
                            .with_label_values(&["receiver_lagging"])
                            .inc_by(dropped as u64);
                        m.groups_reset.inc();
                        tracing::debug!(session = %id, dropped, "receiver lagging: skipping to next keyframe");
                        if need_keyframe {
                            room.handle_input(now, Input::Lagged { conn, track: 0 });
                        }
                    }
                }
            }
            Output::Send { conn, msg } => send(room, peers, relay, conn, msg),
            Output::Close { conn, code, reason } => {
                if let Some(peer) = peers.remove(&conn) {
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
            Output::Event(e) => event(relay, id, e),
            Output::Admitted { .. } | Output::FileRoute { .. } | Output::Published(_) => {}
        }
    }
}

/// Queues a control message; a full queue means the peer stopped reading: close it as a slow consumer.
fn send(
    room: &mut AssistRoom,
    peers: &mut HashMap<ConnId, PeerHandle>,
    relay: &Relay,
    conn: ConnId,
    msg: ServerMsg,
) {
    let Some(peer) = peers.get(&conn) else { return };
    if peer.control.try_send(ControlOut::Msg(msg)).is_err() {
        let code = ErrorCode::SlowConsumer;
        (peer.closer)(code, "control messages not read");
        relay
            .metrics
            .connections_closed
            .with_label_values(&[code.as_str()])
            .inc();
        if let Some(p) = peers.remove(&conn) {
            p.media.close();
        }
        room.handle_input(relay.clock.now(), Input::Left { conn });
    }
}

fn event(relay: &Relay, id: SessionId, e: Event) {
    let m = &relay.metrics;
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
        Event::Participant { .. }
        | Event::Chat { .. }
        | Event::Annotated { .. }
        | Event::Transfer(_)
        | Event::Recording(_) => {}
    }
}
