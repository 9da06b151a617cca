//! One WebRTC peer's task: it owns the peer's str0m `Rtc` and stands in its room as a QUIC connection does.
//! Datagrams come from the endpoint's receive task; frames and control messages come from the room through
//! the same [`PeerHandle`] a QUIC connection has.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use str0m::change::SdpOffer;
use str0m::channel::{ChannelData, ChannelId};
use str0m::format::Codec as RtcCodec;
use str0m::media::{Frequency, KeyframeRequestKind, MediaData, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, IceCreds, Input, Output, Rtc};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::files::{self, Files};
use super::media::{self, rtp_timestamp, split_wire, Ingress, Slots, TrackIngress};
use super::negotiate::{negotiate, resume_token_of, Negotiated};
use super::{Datagram, PeerSlot, PeerTx, RtcConnectError, WebRtc};
use crate::core::{ConnId, Input as RoomInput, Origin, Popped, Role};
use crate::media::Codec;
use crate::protocol::message::LEN_PREFIX;
use crate::protocol::{ClientMsg, ErrorCode, Hello, ServerMsg};
use crate::relay::{ControlOut, MediaSlot, PeerHandle, Relay, RoomMsg};

/// How long a closing peer keeps its connection to deliver its last control messages.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Control messages waiting for the data channel; past it the room's queue fills (slow consumer).
const MAX_PENDING_MESSAGES: usize = 256;

/// What the endpoint hands a new peer's task.
pub(super) struct Setup {
    pub id: String,
    pub from: IpAddr,
    pub hello: Hello,
    pub offer: SdpOffer,
    /// The offer's video m-lines as written (their directions are the peer's).
    pub offered: Vec<media::VideoLine>,
    pub reply: oneshot::Sender<Result<Answered, RtcConnectError>>,
    pub leave: CancellationToken,
    pub tx: PeerTx,
    pub rx: mpsc::Receiver<Datagram>,
    pub slot: PeerSlot,
}

/// What the peer's task answers the signaling request with.
pub(super) struct Answered {
    pub answer: String,
    /// The resume token of the room's welcome: a peer whose connection never comes up returns with it.
    pub resume_token: Option<String>,
}

/// A close the room (or a full queue) asked for.
type Kill = Arc<Mutex<Option<(ErrorCode, String)>>>;

pub(super) async fn run(ep: Arc<WebRtc>, s: Setup) {
    let relay = ep.relay.clone();
    let Setup {
        id,
        from,
        hello,
        offer,
        offered,
        reply,
        leave,
        tx,
        mut rx,
        slot: _slot,
    } = s;
    let creds = IceCreds::new();
    let refuse = |reply: oneshot::Sender<_>, e: RtcConnectError| {
        tracing::debug!(%from, code = e.code().as_str(), "WebRTC peer task refused its offer");
        let _ = reply.send(Err(e));
    };
    // The offer first: a refused offer must not spend the code or token it came with.
    let negotiated = match negotiate(&ep, creds.clone(), offer, &offered, &hello) {
        Ok(n) => n,
        Err(e) => {
            ep.forget(&id, &creds.ufrag, &tx, &[]);
            return refuse(reply, e);
        }
    };
    let adm = match relay.authenticate(from, hello) {
        Ok(a) => a,
        Err(e) => {
            ep.forget(&id, &creds.ufrag, &tx, &[]);
            let refusal = match e.retry_after() {
                Some(wait) => RtcConnectError::RateLimited(wait, e.to_string()),
                None => RtcConnectError::Refused(e.code(), e.to_string()),
            };
            return refuse(reply, refusal);
        }
    };
    let Negotiated {
        rtc,
        answer,
        mut publish,
        mut receive,
    } = negotiated;
    let (max_publish, max_receive) = match adm.role {
        Some(Role::Customer) => (1, 0),
        Some(Role::Technician) => (0, 1),
        None => (
            relay.cfg.meeting.max_tracks_per_presenter as usize,
            relay.cfg.webrtc.max_recv_tracks as usize,
        ),
    };
    publish.truncate(max_publish);
    receive.truncate(max_receive);

    // The peer's place in its room, as a QUIC connection's (transport/quic.rs).
    let cfg = &relay.cfg;
    let conn = relay.next_conn_id();
    let (ctl_tx, mut ctl_rx) = mpsc::channel(cfg.limits.control_queue);
    let (file_tx, mut file_rx) = mpsc::channel(cfg.meeting.max_transfers);
    let media = MediaSlot::new(relay.backlog_limits(), !receive.is_empty());
    let kill: Kill = Arc::new(Mutex::new(None));
    let killed = CancellationToken::new();
    let closer = {
        let (kill, killed) = (kill.clone(), killed.clone());
        Arc::new(move |code: ErrorCode, reason: &str| {
            kill.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert((code, reason.to_string()));
            killed.cancel();
        })
    };
    let peer = PeerHandle {
        conn,
        control: ctl_tx,
        media: media.clone(),
        closer,
        files: file_tx,
    };
    let room = adm.room.clone();
    let msg = match (adm.role, adm.entry.clone()) {
        (Some(role), _) => RoomMsg::Join {
            peer,
            role,
            resume: adm.resume,
            allow_control: adm.allow_control,
        },
        (None, Some(entry)) => RoomMsg::Enter { peer, entry },
        (None, None) => unreachable!("authenticate gives a role or an entry"),
    };
    if room.send(msg).await.is_err() {
        ep.forget(&id, &creds.ufrag, &tx, &[]);
        return refuse(
            reply,
            RtcConnectError::Refused(ErrorCode::SessionNotFound, "session not found".into()),
        );
    }
    // Answer only once the room has let the peer in: its first message is a welcome or a close.
    let first = tokio::time::timeout(cfg.session.hello_timeout.0, ctl_rx.recv()).await;
    let first = match first {
        Ok(Some(ControlOut::Close(code, reason))) => Err(RtcConnectError::Refused(code, reason)),
        Ok(Some(item)) => Ok(item),
        Ok(None) | Err(_) => {
            let killed = kill.lock().unwrap_or_else(|p| p.into_inner()).take();
            let (code, reason) =
                killed.unwrap_or((ErrorCode::Internal, "the room did not answer".into()));
            Err(RtcConnectError::Refused(code, reason))
        }
    };
    let first = match first {
        Ok(item) => item,
        Err(e) => {
            let _ = room.send(RoomMsg::Input(RoomInput::Left { conn })).await;
            media.close();
            ep.forget(&id, &creds.ufrag, &tx, &[]);
            return refuse(reply, e);
        }
    };
    ep.by_ufrag.insert(creds.ufrag.clone(), tx.clone());
    let m = &relay.metrics.webrtc;
    m.peers.with_label_values(&["connecting"]).inc();
    let resume_token = resume_token_of(&first);
    if reply
        .send(Ok(Answered {
            answer,
            resume_token,
        }))
        .is_err()
    {
        // The HTTP client went away before it got the answer: nobody will connect.
        m.peers.with_label_values(&["connecting"]).dec();
        let _ = room.send(RoomMsg::Input(RoomInput::Left { conn })).await;
        media.close();
        ep.forget(&id, &creds.ufrag, &tx, &[]);
        return;
    }
    tracing::debug!(%from, session = %adm.session, peer = %id, "WebRTC peer answered");

    let (files, mut file_work) = Files::new(conn);
    let mut p = Peer {
        ep: ep.clone(),
        relay: relay.clone(),
        room: room.clone(),
        files,
        rtc,
        conn,
        control: None,
        out: VecDeque::new(),
        to_room: Vec::new(),
        publish: publish
            .into_iter()
            .map(|mid| (mid, TrackIngress::new()))
            .collect(),
        slots: Slots::new(receive),
        pts: HashMap::new(),
        sources: Vec::new(),
        tx: tx.clone(),
        connected: false,
        done: None,
        closing: None,
        stats: HashMap::new(),
    };
    p.control_out(first);
    let control_deadline = tokio::time::Instant::now() + cfg.session.hello_timeout.0;
    let mut left = false;
    loop {
        p.flush_control();
        p.pump_files();
        let mut timeout = p.drive();
        // Events just handled (the control channel opening, a close) may have made messages writable.
        if p.flush_control() {
            timeout = p.drive();
        }
        for msg in p.to_room.drain(..) {
            if room.send(msg).await.is_err() {
                p.done.get_or_insert(None);
            }
        }
        if let Some(at) = p.closing {
            if Instant::now() >= at || (p.out.is_empty() && p.control_drained()) {
                p.done.get_or_insert(None);
            }
        }
        if p.done.is_some() || !p.rtc.is_alive() {
            break;
        }
        let wake = tokio::time::Instant::from_std(
            p.closing
                .map_or(timeout, |c| c.min(timeout))
                .max(Instant::now()),
        );
        // Before the channel opens messages wait in `out` (bounded), so a close (a replacing connection,
        // the session's end) ends a peer whose connection never came up at once.
        let ctl_ready = p.out.len() < MAX_PENDING_MESSAGES && p.closing.is_none();
        tokio::select! {
            dg = rx.recv() => match dg {
                Some(dg) => p.receive(dg),
                None => break,
            },
            item = ctl_rx.recv(), if ctl_ready => match item {
                Some(item) => p.control_out(item),
                None => p.close(ErrorCode::SessionEnded, "session ended".into()),
            },
            _ = media.notify.notified() => p.media_out(&media),
            Some(pipe) = file_rx.recv() => p.files.open_outbound(&mut p.rtc, &relay.tasks, pipe),
            Some(w) = file_work.recv(), if p.files.can_take(&mut p.rtc) => p.files.work(&mut p.rtc, w),
            _ = tokio::time::sleep_until(wake) => p.timeout(),
            _ = leave.cancelled(), if !left => {
                left = true;
                p.done.get_or_insert(None);
            }
            _ = killed.cancelled(), if p.closing.is_none() => {
                let (code, reason) = kill
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
                    .unwrap_or((ErrorCode::SessionEnded, "closed".into()));
                p.close(code, reason);
                p.closing = Some(Instant::now());
            }
            _ = tokio::time::sleep_until(control_deadline), if p.control.is_none() => {
                // Where it got stuck: no connectivity check ever answered (UDP blocked), DTLS never
                // completed, or connected without opening its control channel.
                let kind = if p.sources.is_empty() {
                    "ice"
                } else if !p.connected {
                    "dtls"
                } else {
                    "no_control_channel"
                };
                p.done = Some(Some(kind));
            }
        }
    }

    let _ = room.send(RoomMsg::Input(RoomInput::Left { conn })).await;
    media.close();
    if let Some(Some(kind)) = p.done {
        m.failures.with_label_values(&[kind]).inc();
    }
    p.rtc.disconnect();
    let _ = p.drive();
    let state = if p.connected {
        "connected"
    } else {
        "connecting"
    };
    m.peers.with_label_values(&[state]).dec();
    ep.forget(&id, &creds.ufrag, &tx, &p.sources);
    tracing::debug!(peer = %id, "WebRTC peer gone");
}

struct Peer {
    ep: Arc<WebRtc>,
    relay: Arc<Relay>,
    room: mpsc::Sender<RoomMsg>,
    files: Files,
    rtc: Rtc,
    conn: ConnId,
    /// The `control` data channel, once open.
    control: Option<ChannelId>,
    /// Encoded messages waiting for the control channel.
    out: VecDeque<Vec<u8>>,
    /// Inputs for the room, sent (awaiting its queue) after each round.
    to_room: Vec<RoomMsg>,
    publish: Vec<(Mid, TrackIngress)>,
    slots: Slots<Mid>,
    pts: HashMap<(Mid, Codec), Option<Pt>>,
    /// Addresses the peer's stack has sent to: the routes to it (forgotten at the end).
    sources: Vec<SocketAddr>,
    /// The peer's datagram queue, for those routes.
    tx: PeerTx,
    connected: bool,
    /// Set to end the loop; the inner value names a failure for the metrics.
    done: Option<Option<&'static str>>,
    /// Closing with a code: deliver the last messages until this instant.
    closing: Option<Instant>,
    /// Last cumulative RTP statistics per (m-line, egress).
    stats: HashMap<(Mid, bool), [u64; 3]>,
}

impl Peer {
    /// Moves file bytes both ways and counts what reached this peer.
    fn pump_files(&mut self) {
        let before = self.files.delivered;
        self.files.pump(&mut self.rtc);
        self.relay
            .metrics
            .file_bytes
            .inc_by(self.files.delivered - before);
    }

    /// Handles str0m's outputs until it asks for a timeout; returns it.
    fn drive(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => return t,
                Ok(Output::Transmit(t)) => {
                    self.ep
                        .send(&self.tx, &mut self.sources, &t.contents, t.destination);
                }
                Ok(Output::Event(e)) => self.event(e),
                Err(e) => {
                    tracing::debug!(error = %e, "WebRTC peer failed");
                    self.done.get_or_insert(Some("dtls"));
                    return Instant::now() + Duration::from_secs(1);
                }
            }
        }
    }

    fn receive(&mut self, dg: Datagram) {
        let Ok(contents) = dg.data.as_slice().try_into() else {
            // Neither STUN, DTLS nor RTP/RTCP by its first byte (RFC 7983).
            self.count_malformed();
            return;
        };
        let input = Input::Receive(
            dg.at,
            Receive {
                proto: Protocol::Udp,
                source: dg.source,
                destination: self.ep.candidate,
                contents,
            },
        );
        if self.rtc.handle_input(input).is_err() {
            // A malformed packet is the peer's own problem: str0m drops it; only a fatal error ends the peer.
            self.count_malformed();
            if !self.rtc.is_alive() {
                self.done.get_or_insert(Some("dtls"));
            }
        }
    }

    fn count_malformed(&self) {
        let m = &self.relay.metrics.webrtc;
        m.dropped_datagrams.with_label_values(&["malformed"]).inc();
    }

    fn timeout(&mut self) {
        let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
    }

    fn event(&mut self, e: Event) {
        let m = &self.relay.metrics.webrtc;
        match e {
            Event::Connected if !self.connected => {
                self.connected = true;
                m.peers.with_label_values(&["connecting"]).dec();
                m.peers.with_label_values(&["connected"]).inc();
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.done.get_or_insert(Some("ice"));
            }
            Event::ChannelOpen(id, label) => {
                if label == "control" && self.control.is_none() {
                    self.control = Some(id);
                } else if self.files.owns(id) {
                    // A channel the relay opened to deliver a file.
                } else if let Some((transfer, offset)) = files::parse_label(&label) {
                    let tasks = self.relay.tasks.clone();
                    self.files
                        .open_inbound(id, transfer, offset, &self.room, &tasks);
                } else {
                    self.rtc.direct_api().close_data_channel(id);
                }
            }
            Event::ChannelData(d) if Some(d.id) == self.control => self.control_in(d),
            Event::ChannelData(d) if self.files.owns(d.id) => {
                self.files.data(&mut self.rtc, d.id, d.data)
            }
            Event::ChannelClose(id) if Some(id) == self.control => {
                // The client closed its control channel: it is leaving.
                self.done.get_or_insert(None);
            }
            Event::ChannelClose(id) if self.files.owns(id) => self.files.closed(&mut self.rtc, id),
            Event::MediaData(d) => self.media_in(d),
            Event::KeyframeRequest(r) => {
                if let Some(track) = self.slots.track_of(r.mid) {
                    m.plis.with_label_values(&["received"]).inc();
                    self.to_room.push(RoomMsg::Input(RoomInput::Message {
                        conn: self.conn,
                        msg: ClientMsg::KeyframeRequest { track },
                    }));
                }
            }
            Event::MediaIngressStats(s) => {
                self.count_stats(s.mid, false, [s.packets, s.bytes, s.nacks]);
            }
            Event::MediaEgressStats(s) => {
                self.count_stats(s.mid, true, [s.packets, s.bytes, s.nacks]);
            }
            _ => {}
        }
    }

    /// Adds the growth of str0m's cumulative counters to the metrics.
    fn count_stats(&mut self, mid: Mid, egress: bool, now: [u64; 3]) {
        let m = &self.relay.metrics.webrtc;
        let last = self.stats.entry((mid, egress)).or_insert([0; 3]);
        let d: Vec<u64> = now
            .iter()
            .zip(last.iter())
            .map(|(n, l)| n.saturating_sub(*l))
            .collect();
        *last = now;
        let (dir, nack_dir) = if egress {
            ("out", "received")
        } else {
            ("in", "sent")
        };
        m.rtp_packets.with_label_values(&[dir]).inc_by(d[0]);
        m.rtp_bytes.with_label_values(&[dir]).inc_by(d[1]);
        m.nacks.with_label_values(&[nack_dir]).inc_by(d[2]);
    }

    fn control_in(&mut self, d: ChannelData) {
        let m = &self.relay.metrics.webrtc;
        m.channel_messages.incoming.inc();
        let max = self.relay.cfg.limits.max_message_bytes.usize();
        let refusal = if !d.binary {
            Some((
                ErrorCode::ProtocolViolation,
                "control messages are binary".to_string(),
            ))
        } else if d.data.is_empty() {
            Some((
                ErrorCode::ProtocolViolation,
                "empty control message".to_string(),
            ))
        } else if d.data.len() > max {
            Some((
                ErrorCode::MessageTooLarge,
                format!("control message of {} bytes exceeds {max}", d.data.len()),
            ))
        } else {
            match ClientMsg::decode(d.data[0], &d.data[1..]) {
                Ok(ClientMsg::Hello(_)) => Some((
                    ErrorCode::UnexpectedMessage,
                    "HELLO is not sent over WebRTC: the offer was the HELLO".to_string(),
                )),
                Ok(msg) => {
                    if let ClientMsg::Subscribe { track, on: false } = msg {
                        if self.slots.release(track).is_some() {
                            self.queue_msg(&track_mid(track, ""));
                        }
                    }
                    self.to_room.push(RoomMsg::Input(RoomInput::Message {
                        conn: self.conn,
                        msg,
                    }));
                    None
                }
                Err(e) => Some((
                    ErrorCode::ProtocolViolation,
                    format!("protocol violation: {e}"),
                )),
            }
        };
        if let Some((code, reason)) = refusal {
            tracing::info!(code = code.as_str(), reason, "closing WebRTC peer");
            self.close(code, reason);
        }
    }

    /// A reassembled frame from the peer: numbered into groups and passed to the room.
    fn media_in(&mut self, d: MediaData) {
        let Some(i) = self.publish.iter().position(|(mid, _)| *mid == d.mid) else {
            return;
        };
        let codec = match d.params.spec().codec {
            RtcCodec::Vp8 => Codec::Vp8,
            RtcCodec::H264 => Codec::H264,
            _ => return,
        };
        let max_frame = self.relay.cfg.limits.max_frame_bytes.usize();
        let keyframe = d.is_keyframe();
        let outcome = self.publish[i].1.frame(
            i as u32,
            codec,
            keyframe,
            d.contiguous,
            d.time.numer() as u32,
            &d.data,
            max_frame,
            Instant::now(),
        );
        let metrics = &self.relay.metrics;
        match outcome {
            Ingress::Frame(frame) => self.to_room.push(RoomMsg::Input(RoomInput::Frame {
                conn: self.conn,
                frame,
            })),
            Ingress::WaitingForKeyframe { ask } => {
                metrics
                    .frames_dropped
                    .with_label_values(&["waiting_for_keyframe"])
                    .inc();
                if ask {
                    self.request_keyframe(d.mid);
                }
            }
            Ingress::TooLarge => {
                metrics
                    .frames_dropped
                    .with_label_values(&["frame_too_large"])
                    .inc();
                self.request_keyframe(d.mid);
            }
        }
    }

    fn request_keyframe(&mut self, mid: Mid) {
        if let Some(mut w) = self.rtc.writer(mid) {
            if w.request_keyframe(None, KeyframeRequestKind::Pli).is_ok() {
                self.relay
                    .metrics
                    .webrtc
                    .plis
                    .with_label_values(&["sent"])
                    .inc();
            }
        }
    }

    /// Frames the room queued for this peer, packetized onto their tracks' m-lines.
    fn media_out(&mut self, media: &MediaSlot) {
        let max_frame = self.relay.cfg.limits.max_frame_bytes.usize();
        loop {
            let popped = media.lock().pop();
            let frame = match popped {
                None => return,
                // RTP has no streams to reset: the queue has already skipped to a keyframe.
                Some(Popped::ResetStream) => continue,
                Some(Popped::Frame(f)) => f,
            };
            let relay = self.relay.clone();
            let m = &relay.metrics;
            let Some((header, payload)) = split_wire(&frame, max_frame) else {
                continue;
            };
            let Some((mid, new)) = self.slots.assign(frame.track) else {
                m.frames_dropped.with_label_values(&["no_mline"]).inc();
                continue;
            };
            if new {
                self.queue_msg(&track_mid(frame.track, &mid.to_string()));
            }
            let Some(pt) = self.pt_for(mid, header.codec) else {
                m.frames_dropped
                    .with_label_values(&["codec_not_negotiated"])
                    .inc();
                continue;
            };
            let Some(w) = self.rtc.writer(mid) else {
                continue;
            };
            let time = MediaTime::new(
                u64::from(rtp_timestamp(header.capture_ts_us)),
                Frequency::NINETY_KHZ,
            );
            // str0m keeps the payload as an `Arc<[u8]>`: built from the slice, one copy per receiver.
            if let Err(e) = w.write(pt, frame.received_at, time, &payload[..]) {
                tracing::debug!(error = %e, "RTP write failed");
                continue;
            }
            m.frames_forwarded.inc();
            m.bytes_forwarded.inc_by(frame.wire.len() as u64);
            m.forwarding_latency
                .observe(frame.received_at.elapsed().as_secs_f64());
            if frame.origin == Origin::Quic {
                m.webrtc.bridged_frames.quic_to_webrtc.inc();
            }
        }
    }

    /// The payload type negotiated on `mid` for `codec`, if any.
    fn pt_for(&mut self, mid: Mid, codec: Codec) -> Option<Pt> {
        if let Some(pt) = self.pts.get(&(mid, codec)) {
            return *pt;
        }
        let pt = self.rtc.writer(mid).and_then(|w| {
            w.payload_params()
                .find(|p| {
                    let spec = p.spec();
                    match (spec.codec, codec) {
                        (RtcCodec::Vp8, Codec::Vp8) => true,
                        (RtcCodec::H264, Codec::H264) => spec.format.packetization_mode == Some(1),
                        _ => false,
                    }
                })
                .map(|p| p.pt())
        });
        self.pts.insert((mid, codec), pt);
        pt
    }

    /// An item from the room for this peer.
    fn control_out(&mut self, item: ControlOut) {
        match item {
            ControlOut::Msg(msg) => self.server_msg(msg),
            ControlOut::Batch(msgs) => msgs.into_iter().for_each(|m| self.server_msg(m)),
            ControlOut::Close(code, reason) => self.close(code, reason),
        }
    }

    fn server_msg(&mut self, msg: ServerMsg) {
        match msg {
            // To a WebRTC publisher a keyframe request is a PLI on the track's m-line.
            ServerMsg::KeyframeRequest { track } => {
                if let Some(&(mid, _)) = self.publish.get(track as usize) {
                    self.request_keyframe(mid);
                }
            }
            ServerMsg::Track { track, state, .. } => {
                let ended = state != crate::protocol::message::TrackState::Live;
                self.queue_msg(&msg);
                if ended && self.slots.release(track).is_some() {
                    self.queue_msg(&track_mid(track, ""));
                }
            }
            msg => self.queue_msg(&msg),
        }
    }

    /// Queues a message for the control channel: its wire form without the length prefix.
    fn queue_msg(&mut self, msg: &ServerMsg) {
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        self.out.push_back(buf[LEN_PREFIX..].to_vec());
    }

    /// Sends CLOSE and ends the peer once it is delivered (or after [`CLOSE_LINGER`]).
    fn close(&mut self, code: ErrorCode, reason: String) {
        if self.closing.is_some() {
            return;
        }
        self.queue_msg(&ServerMsg::Close { code, reason });
        self.closing = Some(Instant::now() + CLOSE_LINGER);
        if self.control.is_none() {
            self.done.get_or_insert(None);
        }
    }

    /// Writes waiting messages while the channel takes them; true if it wrote any.
    fn flush_control(&mut self) -> bool {
        let Some(id) = self.control else {
            return false;
        };
        let mut wrote = false;
        while let Some(body) = self.out.front() {
            let Some(mut ch) = self.rtc.channel(id) else {
                break;
            };
            match ch.write(true, body) {
                Ok(true) => {
                    self.out.pop_front();
                    wrote = true;
                    self.relay.metrics.webrtc.channel_messages.outgoing.inc();
                }
                Ok(false) => break,
                Err(_) => {
                    self.done.get_or_insert(Some("dtls"));
                    break;
                }
            }
        }
        wrote
    }

    /// True when the control channel has nothing buffered (the last messages are on the wire).
    fn control_drained(&mut self) -> bool {
        match self.control.and_then(|id| self.rtc.channel(id)) {
            Some(mut ch) => ch.buffered_amount() == 0,
            None => true,
        }
    }
}

/// TRACK_MID: `track` is carried on m-line `mid` (empty: on none).
fn track_mid(track: u32, mid: &str) -> ServerMsg {
    ServerMsg::TrackMid {
        track,
        mid: mid.to_string(),
    }
}
