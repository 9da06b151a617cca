//! A WebRTC client built on str0m, speaking docs/PROTOCOL.md section 13 as a browser does: an SDP offer with
//! a `control` data channel and video m-lines, POSTed to `/api/v1/rtc`; then RTP and control messages. The
//! integration tests and the load tool use it as the browser-style peer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use str0m::change::SdpAnswer;
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::format::Codec as RtcCodec;
use str0m::media::{Direction, Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::ClientError;
use crate::media::{Codec, MediaFrame};
use crate::protocol::message::LEN_PREFIX;
use crate::protocol::{ClientMsg, ServerMsg};

/// What the peer offers.
#[derive(Debug, Clone)]
pub struct RtcOptions {
    /// `sendonly` video m-lines (local tracks 0, 1, ...).
    pub send_tracks: usize,
    /// `recvonly` video m-lines.
    pub recv_tracks: usize,
    /// Codecs offered (VP8, H.264).
    pub codecs: Vec<Codec>,
    /// Create the `control` data channel (a peer without it is refused with `invalid_offer`).
    pub control_channel: bool,
}

impl Default for RtcOptions {
    fn default() -> RtcOptions {
        RtcOptions {
            send_tracks: 0,
            recv_tracks: 0,
            codecs: vec![Codec::Vp8, Codec::H264],
            control_channel: true,
        }
    }
}

/// What the peer saw.
#[derive(Debug)]
pub enum RtcEvent {
    /// ICE and DTLS are up.
    Connected,
    /// The control channel is open.
    ControlOpen,
    /// A control message from the relay.
    Message(ServerMsg),
    /// A control message that did not decode (type, error).
    Undecodable(u8, String),
    /// A whole frame on receiving m-line `index` (0-based among the receiving m-lines).
    Frame {
        index: usize,
        codec: Codec,
        keyframe: bool,
        rtp_time: u64,
        contiguous: bool,
        data: Vec<u8>,
    },
    /// The relay asked for a keyframe (PLI/FIR) on sending m-line `index`.
    KeyframeRequested { index: usize },
    /// A file channel (`file:<transfer>:<offset>`) the relay opened, with every byte it carried, once closed.
    File { label: String, data: Vec<u8> },
    /// The connection is gone.
    Closed,
}

enum Cmd {
    Send(Vec<u8>),
    Frame(usize, MediaFrame),
    RequestKeyframe(usize),
    Stall(Duration),
    File(String, Vec<u8>),
    Close,
}

/// A connected WebRTC peer. Events arrive on [`RtcClient::events`]; dropping the client ends the peer.
pub struct RtcClient {
    cmd: mpsc::Sender<Cmd>,
    pub events: mpsc::Receiver<RtcEvent>,
    /// The peer's URL (`Location` of the answer) for `DELETE`.
    pub location: String,
    /// The answer's `Assist-Resume-Token`: enters again (`as=resume`) if this connection never comes up.
    pub resume_token: Option<String>,
    api: String,
    /// The local UDP address.
    pub local: SocketAddr,
}

impl RtcClient {
    /// Offers to `{api}/api/v1/rtc?{query}` (e.g. `as=customer&allow_control=true`) with `bearer`.
    pub async fn connect(
        api: &str,
        query: &str,
        bearer: &str,
        opts: &RtcOptions,
    ) -> Result<RtcClient, ClientError> {
        let socket = bind_udp().map_err(|e| ClientError::Connect(e.to_string()))?;
        let local = socket
            .local_addr()
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let mut cfg = RtcConfig::new()
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .clear_codecs();
        for c in &opts.codecs {
            cfg = match c {
                Codec::Vp8 => cfg.enable_vp8(true),
                Codec::H264 => cfg.enable_h264(true),
                Codec::Vp9 => cfg.enable_vp9(true),
                Codec::Av1 => cfg.enable_av1(true),
            };
        }
        let mut rtc = cfg.build(Instant::now());
        let candidate =
            Candidate::host(local, "udp").map_err(|e| ClientError::Other(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        let send: Vec<Mid> = (0..opts.send_tracks)
            .map(|_| change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None))
            .collect();
        let recv: Vec<Mid> = (0..opts.recv_tracks)
            .map(|_| change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None))
            .collect();
        if opts.control_channel {
            change.add_channel("control".into());
        }
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| ClientError::Other("nothing to offer".into()))?;
        let url = format!("{api}/api/v1/rtc?{query}");
        let res = reqwest::Client::new()
            .post(&url)
            .bearer_auth(bearer)
            .header("content-type", "application/sdp")
            .body(offer.to_sdp_string())
            .send()
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let status = res.status();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let resume_token = res
            .headers()
            .get(crate::api::rtc::RESUME_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = res
            .text()
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        if status.as_u16() != 201 {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            return Err(ClientError::Api {
                status: status.as_u16(),
                code: v["error"]["code"].as_str().unwrap_or("").to_string(),
                message: v["error"]["message"].as_str().unwrap_or(&body).to_string(),
            });
        }
        let answer = SdpAnswer::from_sdp_string(&body)
            .map_err(|e| ClientError::Protocol(format!("bad answer: {e}")))?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| ClientError::Protocol(format!("answer not accepted: {e}")))?;
        let (cmd, cmd_rx) = mpsc::channel(256);
        let (ev_tx, events) = mpsc::channel(4096);
        let task = Task {
            rtc,
            socket,
            local,
            send,
            recv,
            control: None,
            events: ev_tx,
            pending: Vec::new(),
            sending: Vec::new(),
            receiving: Vec::new(),
        };
        tokio::spawn(task.run(cmd_rx));
        Ok(RtcClient {
            cmd,
            events,
            location,
            resume_token,
            api: api.to_string(),
            local,
        })
    }

    /// Sends a control message (its wire form without the length prefix).
    pub async fn send(&self, msg: &ClientMsg) {
        let mut buf = BytesMut::new();
        msg.encode(&mut buf);
        self.send_raw(buf[LEN_PREFIX..].to_vec()).await;
    }

    /// Sends raw bytes on the control channel.
    pub async fn send_raw(&self, bytes: Vec<u8>) {
        let _ = self.cmd.send(Cmd::Send(bytes)).await;
    }

    /// Sends a frame on sending m-line `index` (RTP timestamp from its `pts_us`).
    pub async fn send_frame(&self, index: usize, frame: MediaFrame) {
        let _ = self.cmd.send(Cmd::Frame(index, frame)).await;
    }

    /// Asks for a keyframe (PLI) on receiving m-line `index`.
    pub async fn request_keyframe(&self, index: usize) {
        let _ = self.cmd.send(Cmd::RequestKeyframe(index)).await;
    }

    /// Sends `data` on a new channel labelled `file:<transfer>:<offset>` (an accepted transfer's bytes from
    /// `offset`), then closes it.
    pub async fn send_file(&self, transfer: u32, offset: u64, data: Vec<u8>) {
        let label = format!("file:{transfer}:{offset}");
        let _ = self.cmd.send(Cmd::File(label, data)).await;
    }

    /// Stops reading the socket for `d`, as a viewer whose machine froze: what arrives meanwhile is lost
    /// once the socket's buffer is full.
    pub async fn stall(&self, d: Duration) {
        let _ = self.cmd.send(Cmd::Stall(d)).await;
    }

    /// Leaves as a browser page does: `DELETE` of the peer's URL (the relay sees it leave at once), then the
    /// connection is closed.
    pub async fn close(&self) {
        if !self.location.is_empty() {
            let _ = reqwest::Client::new()
                .delete(format!("{}{}", self.api, self.location))
                .send()
                .await;
        }
        self.drop_connection().await;
    }

    /// Closes the connection without telling the relay (a tab that vanished): the relay notices when ICE
    /// consent lapses.
    pub async fn drop_connection(&self) {
        let _ = self.cmd.send(Cmd::Close).await;
    }

    /// The next event, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<RtcEvent> {
        tokio::time::timeout(timeout, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for the first control message that `f` accepts, skipping others (up to `timeout`).
    pub async fn wait_msg<T>(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(&ServerMsg) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .ok()
                .flatten()?;
            if let RtcEvent::Message(m) = &ev {
                if let Some(v) = f(m) {
                    return Some(v);
                }
            }
        }
    }
}

/// A loopback UDP socket with a receive buffer as large as the kernel allows up to 8 MiB, as browsers ask for,
/// so a burst of a large frame's packets is not dropped while the task is busy.
fn bind_udp() -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
    let _ = socket.set_recv_buffer_size(8 << 20);
    let _ = socket.set_send_buffer_size(8 << 20);
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket.into())
}

struct Task {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    send: Vec<Mid>,
    recv: Vec<Mid>,
    control: Option<ChannelId>,
    events: mpsc::Sender<RtcEvent>,
    /// Control messages written before the channel opened.
    pending: Vec<Vec<u8>>,
    /// Files being sent: channel, bytes, how many written.
    sending: Vec<(ChannelId, Vec<u8>, usize)>,
    /// Files being received: channel, label, bytes so far.
    receiving: Vec<(ChannelId, String, Vec<u8>)>,
}

impl Task {
    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>) {
        let mut buf = vec![0u8; 2048];
        while let Some(timeout) = self.drive() {
            let wake = tokio::time::Instant::from_std(timeout.max(Instant::now()));
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => {
                    let Ok((n, source)) = r else { continue };
                    let Ok(contents) = buf[..n].try_into() else { continue };
                    let _ = self.rtc.handle_input(Input::Receive(
                        Instant::now(),
                        Receive { proto: Protocol::Udp, source, destination: self.local, contents },
                    ));
                }
                cmd = cmds.recv() => match cmd {
                    Some(Cmd::Send(b)) => self.write_control(b),
                    Some(Cmd::Frame(i, f)) => self.write_frame(i, f),
                    Some(Cmd::RequestKeyframe(i)) => {
                        if let Some(mut w) = self.recv.get(i).and_then(|m| self.rtc.writer(*m)) {
                            let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
                        }
                    }
                    Some(Cmd::Stall(d)) => tokio::time::sleep(d).await,
                    Some(Cmd::File(label, data)) => {
                        let id = self.rtc.direct_api().create_data_channel(ChannelConfig {
                            label,
                            ordered: true,
                            reliability: Reliability::Reliable,
                            negotiated: None,
                            protocol: String::new(),
                        });
                        self.sending.push((id, data, 0));
                    }
                    Some(Cmd::Close) | None => {
                        self.rtc.disconnect();
                        let _ = self.drive();
                        break;
                    }
                },
                _ = tokio::time::sleep_until(wake) => {
                    let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
                }
            }
        }
        let _ = self.events.try_send(RtcEvent::Closed);
    }

    /// Writes file bytes while the channels take them; closes a channel once all its bytes are out.
    fn pump_files(&mut self) {
        let mut done = Vec::new();
        for (i, (id, data, written)) in self.sending.iter_mut().enumerate() {
            let Some(mut ch) = self.rtc.channel(*id) else {
                continue;
            };
            while *written < data.len() && ch.buffered_amount() < 1 << 20 {
                let end = (*written + (64 << 10)).min(data.len());
                match ch.write(true, &data[*written..end]) {
                    Ok(true) => *written = end,
                    _ => break,
                }
            }
            if *written == data.len() && ch.buffered_amount() == 0 {
                done.push(i);
            }
        }
        for i in done.into_iter().rev() {
            let (id, ..) = self.sending.remove(i);
            self.rtc.direct_api().close_data_channel(id);
        }
    }

    /// Handles outputs until a timeout; `None` when the connection is over.
    fn drive(&mut self) -> Option<Instant> {
        self.pump_files();
        loop {
            if !self.rtc.is_alive() {
                return None;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => return Some(t),
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => {
                    if !self.event(e) {
                        return None;
                    }
                }
                Err(_) => return None,
            }
        }
    }

    fn event(&mut self, e: Event) -> bool {
        let ev = match e {
            Event::Connected => RtcEvent::Connected,
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => return false,
            Event::ChannelOpen(id, label) if label == "control" => {
                self.control = Some(id);
                for b in std::mem::take(&mut self.pending) {
                    self.write_control(b);
                }
                RtcEvent::ControlOpen
            }
            Event::ChannelData(d) if Some(d.id) == self.control => {
                let Some((&ty, body)) = d.data.split_first() else {
                    return true;
                };
                match ServerMsg::decode(ty, body) {
                    Ok(m) => RtcEvent::Message(m),
                    Err(e) => RtcEvent::Undecodable(ty, e.to_string()),
                }
            }
            Event::ChannelClose(id) if Some(id) == self.control => return false,
            Event::ChannelOpen(id, label) if label.starts_with("file:") => {
                if !self.sending.iter().any(|(s, ..)| *s == id) {
                    self.receiving.push((id, label, Vec::new()));
                }
                return true;
            }
            Event::ChannelData(d) if self.receiving.iter().any(|(r, ..)| *r == d.id) => {
                if let Some((.., buf)) = self.receiving.iter_mut().find(|(r, ..)| *r == d.id) {
                    buf.extend_from_slice(&d.data);
                }
                return true;
            }
            Event::ChannelClose(id) if self.receiving.iter().any(|(r, ..)| *r == id) => {
                let i = self
                    .receiving
                    .iter()
                    .position(|(r, ..)| *r == id)
                    .expect("present");
                let (_, label, data) = self.receiving.remove(i);
                RtcEvent::File { label, data }
            }
            Event::MediaData(d) => {
                let Some(index) = self.recv.iter().position(|m| *m == d.mid) else {
                    return true;
                };
                let codec = match d.params.spec().codec {
                    RtcCodec::Vp8 => Codec::Vp8,
                    RtcCodec::H264 => Codec::H264,
                    RtcCodec::Vp9 => Codec::Vp9,
                    RtcCodec::Av1 => Codec::Av1,
                    _ => return true,
                };
                RtcEvent::Frame {
                    index,
                    codec,
                    keyframe: d.is_keyframe(),
                    rtp_time: d.time.numer(),
                    contiguous: d.contiguous,
                    data: d.data.to_vec(),
                }
            }
            Event::KeyframeRequest(r) => {
                let Some(index) = self.send.iter().position(|m| *m == r.mid) else {
                    return true;
                };
                RtcEvent::KeyframeRequested { index }
            }
            _ => return true,
        };
        // A test or load generator that stops reading loses events rather than stalling the connection.
        let _ = self.events.try_send(ev);
        true
    }

    fn write_control(&mut self, b: Vec<u8>) {
        let Some(id) = self.control else {
            self.pending.push(b);
            return;
        };
        if let Some(mut ch) = self.rtc.channel(id) {
            let _ = ch.write(true, &b);
        }
    }

    fn write_frame(&mut self, index: usize, f: MediaFrame) {
        let Some(&mid) = self.send.get(index) else {
            return;
        };
        let Some(w) = self.rtc.writer(mid) else {
            return;
        };
        let want = match f.codec {
            Codec::Vp8 => RtcCodec::Vp8,
            Codec::H264 => RtcCodec::H264,
            Codec::Vp9 => RtcCodec::Vp9,
            Codec::Av1 => RtcCodec::Av1,
        };
        let Some(pt) = w
            .payload_params()
            .find(|p| {
                let s = p.spec();
                s.codec == want
                    && (want != RtcCodec::H264 || s.format.packetization_mode == Some(1))
            })
            .map(|p| p.pt())
        else {
            return;
        };
        let time = MediaTime::new(
            u64::from(crate::transport::webrtc::media::rtp_timestamp(f.pts_us)),
            Frequency::NINETY_KHZ,
        );
        let _ = w.write(pt, Instant::now(), time, f.data.to_vec());
    }
}
