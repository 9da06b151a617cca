//! The QUIC transport (quinn). One task per connection reads the control stream and, for a customer, its
//! media group streams; a control writer and a media writer task drain the queues the room task fills.
//! Nothing here decides anything: every decision is the room's.
//!
//! Per connection, in order: handshake (bounded by `max_connections` and `max_connections_per_address`),
//! HELLO on the first bidirectional stream within `hello_timeout`, authentication, then `Join` to the room.
//! A protocol error closes only the offending connection, with a documented code and one log line.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use dashmap::DashMap;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{Connection, ReadExactError, RecvStream, SendStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

pub use super::groups::{GroupEvent, GroupOrder, GroupStreams, StreamRules};
use super::tls::{self, Identity};
use super::{egress, varint, CONTROL_PRIORITY};
use crate::clock::Sleep;
use crate::config::Config;
use crate::core::{ConnId, Input, Role};
use crate::pairing::limiter::address_key;
use crate::protocol::media::MediaHeaderError;
use crate::protocol::message::{check_len, LEN_PREFIX};
use crate::protocol::{ClientMsg, DecodeError, ErrorCode, ALPN};
use crate::relay::{Admission, ControlOut, MediaSlot, PeerHandle, Relay, RelayError, RoomMsg};

/// How long a closing connection waits for its last control messages to be acknowledged.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Why a connection was closed by the relay.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The connection went away; nothing to report.
    #[error("connection closed")]
    Closed,
    /// No HELLO in time.
    #[error("no HELLO within the hello timeout")]
    HelloTimeout,
    /// A control message could not be decoded.
    #[error("bad control message: {0}")]
    Decode(#[from] DecodeError),
    /// A media header was invalid.
    #[error("bad media stream: {0}")]
    Media(#[from] MediaHeaderError),
    /// Any other breach of docs/PROTOCOL.md.
    #[error("protocol violation: {0}")]
    Violation(&'static str),
    /// A valid message that this peer may not send now.
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
    /// HELLO was refused.
    #[error("{0}")]
    Refused(#[from] RelayError),
    /// Too many connections from this address.
    #[error("too many connections from this address")]
    TooManyConnections,
}

impl ConnError {
    /// The close code this error is reported with (docs/PROTOCOL.md, "Error codes").
    pub fn code(&self) -> ErrorCode {
        match self {
            ConnError::Closed => ErrorCode::Ok,
            ConnError::HelloTimeout => ErrorCode::HelloTimeout,
            ConnError::Decode(DecodeError::Length { len, max }) if len > max => {
                ErrorCode::MessageTooLarge
            }
            ConnError::Decode(DecodeError::Invalid("version")) => ErrorCode::UnsupportedVersion,
            ConnError::Decode(_) | ConnError::Violation(_) => ErrorCode::ProtocolViolation,
            ConnError::Media(MediaHeaderError::TooLarge { .. }) => ErrorCode::FrameTooLarge,
            ConnError::Media(_) => ErrorCode::ProtocolViolation,
            ConnError::Unexpected(_) => ErrorCode::UnexpectedMessage,
            ConnError::Refused(e) => e.code(),
            ConnError::TooManyConnections => ErrorCode::TooManyConnections,
        }
    }
}

pub(super) fn read_err(e: ReadExactError, what: &'static str) -> ConnError {
    match e {
        ReadExactError::FinishedEarly(_) => ConnError::Violation(what),
        ReadExactError::ReadError(quinn::ReadError::Reset(_)) => {
            ConnError::Violation("stream reset by the peer")
        }
        ReadExactError::ReadError(_) => ConnError::Closed,
    }
}

/// Binds the UDP socket (with `limits.udp_buffer` buffers) and builds the quinn endpoint.
pub fn bind(
    cfg: &Config,
    identity: &Identity,
) -> Result<quinn::Endpoint, crate::server::ServerError> {
    use crate::server::ServerError;
    let tls = tls::server_config(identity, ALPN)?;
    let crypto = QuicServerConfig::try_from(tls).map_err(|e| ServerError::Quic(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let l = &cfg.limits;
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(1u32.into())
        .max_concurrent_uni_streams(l.max_streams_per_connection.into())
        .max_idle_timeout(Some(
            l.quic_idle_timeout
                .0
                .try_into()
                .map_err(|_| ServerError::Quic("quic_idle_timeout too large".into()))?,
        ))
        .keep_alive_interval(Some(l.quic_idle_timeout.0 / 3))
        .send_window(l.send_window.0)
        .send_fairness(false)
        .datagram_receive_buffer_size(None);
    server.transport_config(Arc::new(transport));

    let addr = cfg.server.quic_listen;
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        None,
    )
    .map_err(|e| ServerError::Bind {
        what: "QUIC",
        addr,
        source: e,
    })?;
    super::size_udp_buffers(&socket, l.udp_buffer.usize(), "QUIC");
    socket.bind(&addr.into()).map_err(|e| ServerError::Bind {
        what: "QUIC",
        addr,
        source: e,
    })?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server),
        socket.into(),
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| ServerError::Bind {
        what: "QUIC",
        addr,
        source: e,
    })?;
    Ok(endpoint)
}

/// Counts connections per address key; the slot is freed when the guard drops.
struct AddrGuard {
    map: Arc<DashMap<IpAddr, usize>>,
    key: IpAddr,
}

impl AddrGuard {
    fn acquire(map: &Arc<DashMap<IpAddr, usize>>, ip: IpAddr, max: usize) -> Option<AddrGuard> {
        let key = address_key(ip);
        let mut n = map.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddrGuard {
            map: map.clone(),
            key,
        })
    }
}

impl Drop for AddrGuard {
    fn drop(&mut self) {
        self.map.remove_if_mut(&self.key, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

/// Accepts connections until `cancel` fires.
pub async fn serve(endpoint: quinn::Endpoint, relay: Arc<Relay>, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(relay.cfg.limits.max_connections));
    let per_addr: Arc<DashMap<IpAddr, usize>> = Arc::new(DashMap::new());
    loop {
        let incoming = tokio::select! {
            i = endpoint.accept() => match i { Some(i) => i, None => break },
            _ = cancel.cancelled() => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            relay
                .metrics
                .connections_closed
                .with_label_values(&[ErrorCode::Busy.as_str()])
                .inc();
            incoming.refuse();
            continue;
        };
        let relay = relay.clone();
        let per_addr = per_addr.clone();
        relay.tasks.clone().spawn(async move {
            handle(relay, incoming, per_addr).await;
            drop(permit);
        });
    }
}

/// During shutdown: refuses every new connection (`CONNECTION_REFUSED`) until the endpoint closes, so a
/// client learns at once instead of waiting for a handshake that will not complete.
pub async fn refuse_all(endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        incoming.refuse();
    }
}

async fn handle(
    relay: Arc<Relay>,
    incoming: quinn::Incoming,
    per_addr: Arc<DashMap<IpAddr, usize>>,
) {
    let remote = incoming.remote_address();
    let Ok(connecting) = incoming.accept() else {
        return;
    };
    // One deadline for the handshake, the control stream and HELLO, on the relay's clock (so tests drive it).
    let mut deadline = relay
        .clock
        .sleep_until(relay.clock.now() + relay.cfg.session.hello_timeout.0);
    let conn = match before(&mut deadline, connecting).await {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            tracing::debug!(%remote, error = %e, "handshake failed");
            relay
                .metrics
                .connections_closed
                .with_label_values(&["handshake_failed"])
                .inc();
            return;
        }
        None => {
            relay
                .metrics
                .connections_closed
                .with_label_values(&[ErrorCode::HelloTimeout.as_str()])
                .inc();
            return;
        }
    };
    relay.metrics.connections_active.inc();
    let result = match AddrGuard::acquire(
        &per_addr,
        remote.ip(),
        relay.cfg.limits.max_connections_per_address,
    ) {
        Some(_guard) => run_connection(&relay, &conn, remote, &mut deadline).await,
        None => Err(ConnError::TooManyConnections),
    };
    if let Err(ConnError::Closed) = result {
        // Closed by the peer or the network; closes the relay made itself were counted with their code.
        let reason = match conn.close_reason() {
            Some(quinn::ConnectionError::LocallyClosed) | None => None,
            Some(
                quinn::ConnectionError::ApplicationClosed(_)
                | quinn::ConnectionError::ConnectionClosed(_),
            ) => Some("peer_closed"),
            Some(quinn::ConnectionError::TimedOut) => Some("timed_out"),
            Some(_) => Some("lost"),
        };
        if let Some(reason) = reason {
            relay
                .metrics
                .connections_closed
                .with_label_values(&[reason])
                .inc();
        }
    } else if let Err(e) = result {
        let code = e.code();
        tracing::info!(%remote, code = code.as_str(), error = %e, "closing connection");
        relay
            .metrics
            .connections_closed
            .with_label_values(&[code.as_str()])
            .inc();
        conn.close(varint(code), e.to_string().as_bytes());
    }
    relay.metrics.connections_active.dec();
}

/// Reads one control message; `Ok(None)` when the stream finished cleanly between messages.
pub async fn read_message(
    recv: &mut RecvStream,
    max: usize,
) -> Result<Option<ClientMsg>, ConnError> {
    let mut len = [0u8; LEN_PREFIX];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(read_err(e, "control message truncated")),
    }
    let len = check_len(u32::from_be_bytes(len), max)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body)
        .await
        .map_err(|e| read_err(e, "control message truncated"))?;
    Ok(Some(ClientMsg::decode(body[0], &body[1..])?))
}

/// `fut`'s output, or `None` if the deadline passes first.
async fn before<T>(deadline: &mut Sleep, fut: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        v = fut => Some(v),
        () = deadline.as_mut() => None,
    }
}

async fn run_connection(
    relay: &Arc<Relay>,
    conn: &Connection,
    remote: SocketAddr,
    deadline: &mut Sleep,
) -> Result<(), ConnError> {
    let cfg = &relay.cfg;
    let max_msg = cfg.limits.max_message_bytes.usize();
    let (send, mut recv) = match before(deadline, conn.accept_bi()).await {
        Some(Ok(s)) => s,
        Some(Err(_)) => return Err(ConnError::Closed),
        None => return Err(ConnError::HelloTimeout),
    };
    let hello = match before(deadline, read_message(&mut recv, max_msg)).await {
        Some(Ok(Some(ClientMsg::Hello(h)))) => h,
        Some(Ok(Some(_))) => return Err(ConnError::Unexpected("the first message must be HELLO")),
        Some(Ok(None)) => return Err(ConnError::Violation("control stream finished before HELLO")),
        Some(Err(e)) => return Err(e),
        None => return Err(ConnError::HelloTimeout),
    };
    let Admission {
        slot: _slot,
        session,
        role,
        resume,
        allow_control,
        entry,
        room,
    } = relay.authenticate(remote.ip(), hello)?;
    let conn_id = relay.next_conn_id();
    let kind = role.map_or("meeting", Role::as_str);
    tracing::debug!(%remote, %session, kind, "hello accepted");

    // Technicians receive, customers publish, meeting participants do both (the room decides who presents).
    let receives = role != Some(Role::Customer);
    let max_tracks = match role {
        Some(Role::Customer) => 1,
        Some(Role::Technician) => 0,
        None => cfg.meeting.max_tracks_per_presenter,
    };
    let (ctl_tx, ctl_rx) = mpsc::channel(cfg.limits.control_queue);
    let (file_tx, file_rx) = mpsc::channel(cfg.meeting.max_transfers);
    let media = MediaSlot::new(relay.backlog_limits(), receives);
    let closer = {
        let c = conn.clone();
        Arc::new(move |code: ErrorCode, reason: &str| c.close(varint(code), reason.as_bytes()))
    };
    let _ = send.set_priority(CONTROL_PRIORITY);
    relay.tasks.spawn(control_writer(
        conn.clone(),
        send,
        ctl_rx,
        media.done.clone(),
    ));
    if receives {
        relay.tasks.spawn(egress::media_writer(
            relay.clone(),
            conn.clone(),
            media.clone(),
        ));
    }
    relay
        .tasks
        .spawn(egress::file_writer(relay.clone(), conn.clone(), file_rx));
    let peer = PeerHandle {
        conn: conn_id,
        control: ctl_tx,
        media: media.clone(),
        closer,
        files: file_tx,
    };
    let msg = match (role, entry) {
        (Some(role), _) => RoomMsg::Join {
            peer,
            role,
            resume,
            allow_control,
        },
        (None, Some(entry)) => RoomMsg::Enter { peer, entry },
        (None, None) => unreachable!("authenticate gives a role or an entry"),
    };
    if room.send(msg).await.is_err() {
        return Err(RelayError::SessionNotFound.into());
    }

    let rules = StreamRules {
        max_frame: cfg.limits.max_frame_bytes.usize(),
        max_tracks,
    };
    // Biased towards the frames: when a wake-up finds both a frame and a control message readable (a
    // presenter's last frames and its END_SESSION), the room gets the frames first, so an end or a leave
    // never overtakes frames the relay had already received.
    let result = tokio::select! {
        biased;
        r = ingress(relay, conn, &room, conn_id, rules) => r,
        r = control_reader(&mut recv, &room, conn_id, max_msg) => r,
        _ = conn.closed() => Err(ConnError::Closed),
    };
    let _ = room
        .send(RoomMsg::Input(Input::Left { conn: conn_id }))
        .await;
    media.close();
    result
}

async fn control_reader(
    recv: &mut RecvStream,
    room: &mpsc::Sender<RoomMsg>,
    conn: ConnId,
    max: usize,
) -> Result<(), ConnError> {
    loop {
        match read_message(recv, max).await? {
            Some(msg) => {
                if room
                    .send(RoomMsg::Input(Input::Message { conn, msg }))
                    .await
                    .is_err()
                {
                    return Err(ConnError::Closed);
                }
            }
            // The client finished its control stream: it stays until it closes the connection.
            None => std::future::pending::<()>().await,
        }
    }
}

/// Writes control messages in batches. On `Close`: flushes, lets the media writer drain (both bounded by
/// [`CLOSE_LINGER`]), waits for the peer's acknowledgement, then closes the connection with the code.
async fn control_writer(
    conn: Connection,
    mut send: SendStream,
    mut rx: mpsc::Receiver<ControlOut>,
    media_done: CancellationToken,
) {
    let mut buf = BytesMut::with_capacity(4096);
    while let Some(first) = rx.recv().await {
        let mut close = None;
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                ControlOut::Msg(m) => m.encode(&mut buf),
                ControlOut::Batch(ms) => ms.iter().for_each(|m| m.encode(&mut buf)),
                ControlOut::Close(code, reason) => {
                    close = Some((code, reason));
                    break;
                }
            }
            next = rx.try_recv().ok();
        }
        if !buf.is_empty() {
            // Before a close the flush is bounded: a peer that stopped reading still gets its close code.
            let write = send.write_all(&buf);
            let result = match close {
                Some(_) => tokio::time::timeout(CLOSE_LINGER, write)
                    .await
                    .unwrap_or(Ok(())),
                None => write.await,
            };
            if let Err(e) = result {
                if let quinn::WriteError::Stopped(_) = e {
                    let code = ErrorCode::ProtocolViolation;
                    conn.close(
                        varint(code),
                        b"protocol violation: control stream stopped by the peer",
                    );
                }
                return;
            }
        }
        buf.clear();
        if let Some((code, reason)) = close {
            let _ = tokio::time::timeout(CLOSE_LINGER, media_done.cancelled()).await;
            let _ = send.finish();
            let _ = tokio::time::timeout(CLOSE_LINGER, send.stopped()).await;
            conn.close(varint(code), reason.as_bytes());
            return;
        }
    }
}

/// Feeds a peer's frames to its room and hands its file streams to [`egress::file_ingress`]. Group streams
/// from a peer that may not publish are stopped with `REFUSED` (the rules carry no tracks for it).
async fn ingress(
    relay: &Arc<Relay>,
    conn: &Connection,
    room: &mpsc::Sender<RoomMsg>,
    conn_id: ConnId,
    rules: StreamRules,
) -> Result<(), ConnError> {
    let mut groups = GroupStreams::with_rules(conn, rules, GroupOrder::Live);
    loop {
        match groups.next().await? {
            GroupEvent::Frame(frame) => {
                if room
                    .send(RoomMsg::Input(Input::Frame {
                        conn: conn_id,
                        frame,
                    }))
                    .await
                    .is_err()
                {
                    return Err(ConnError::Closed);
                }
            }
            GroupEvent::Stale { .. } => {
                relay
                    .metrics
                    .frames_dropped
                    .with_label_values(&["stale_group"])
                    .inc();
            }
            GroupEvent::File { header, stream } => {
                relay
                    .tasks
                    .spawn(egress::file_ingress(room.clone(), conn_id, header, stream));
            }
            GroupEvent::Ended { .. } => {}
        }
    }
}
