//! Client side of the protocol: connecting to a relay, the control stream, sending media groups. The demo
//! commands ([`technician`], [`customer`], [`meeting`]) are built on it, and so are the integration tests and
//! the load tool, so they all speak the protocol through one implementation.

pub mod customer;
pub mod files;
pub mod meeting;
pub mod screen;
pub mod script;
pub mod technician;
pub mod webrtc;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, ConnectionError, RecvStream, SendStream};

use crate::media::Codec;
use crate::protocol::message::split_message;
use crate::protocol::{ClientMsg, ErrorCode, FrameHeader, GroupHeader, Hello, ServerMsg, ALPN};
use crate::transport::tls::{self, ServerTrust, TlsError};

/// Why a client operation failed, in words for the person running it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The relay closed the connection with an application code (e.g. `code_expired`).
    #[error("{}: {reason} ({})", code.describe(), code.as_str())]
    Closed { code: ErrorCode, reason: String },
    /// The connection could not be made or broke (network, TLS, certificate mismatch).
    #[error("connection to the relay failed: {0}")]
    Connect(String),
    /// The relay sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// TLS configuration (e.g. a malformed fingerprint or CA file).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The HTTP API refused a request.
    #[error("API error {status}: {message} ({code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// Reading or writing a recording failed.
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
    /// Anything else, with context.
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// The close code, if the relay closed the connection with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Closed { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A failed stream write: when the connection is gone, why it went (a relay's close keeps its code, e.g.
/// `going_away` at shutdown), as [`connection_error`] says.
pub fn write_error(e: quinn::WriteError) -> ClientError {
    match e {
        quinn::WriteError::ConnectionLost(c) => connection_error(&c),
        other => ClientError::Connect(other.to_string()),
    }
}

/// Turns a quinn connection error into words; application closes keep their code.
pub fn connection_error(e: &ConnectionError) -> ClientError {
    match e {
        ConnectionError::ApplicationClosed(c) => {
            match ErrorCode::from_u32(c.error_code.into_inner() as u32) {
                Some(code) => ClientError::Closed {
                    code,
                    reason: String::from_utf8_lossy(&c.reason).into_owned(),
                },
                None => ClientError::Protocol(format!("unknown close code {}", c.error_code)),
            }
        }
        ConnectionError::TransportError(t) if t.to_string().contains("fingerprint") => {
            ClientError::Connect("the relay's certificate does not match the pinned SHA-256".into())
        }
        ConnectionError::TimedOut => ClientError::Connect(
            "timed out: no answer from the relay (is it running, is the address right, and is UDP let through?)"
                .into(),
        ),
        other => ClientError::Connect(other.to_string()),
    }
}

/// Client transport settings: keep-alives; a bounded receive window so that a reader that stops reading
/// makes the relay's backlog bound apply instead of data piling up in this process; and FIFO scheduling
/// of equal-priority streams so groups leave in order (docs/PROTOCOL.md, "Media").
pub fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(Duration::from_secs(4)))
        .max_idle_timeout(Some(Duration::from_secs(15).try_into().expect("small")))
        .receive_window((4u32 << 20).into())
        .stream_receive_window((2u32 << 20).into())
        .max_concurrent_uni_streams(64u32.into())
        // Groups go out in the order they are written: a new group never overtakes the tail of the last.
        .send_fairness(false);
    t
}

/// A client endpoint on an ephemeral port that trusts the relay as `trust` says.
pub fn endpoint(trust: &ServerTrust, bind: SocketAddr) -> Result<quinn::Endpoint, ClientError> {
    endpoint_with(trust, bind, transport_config())
}

/// [`endpoint`] with other transport settings (tests use small windows to stall a reader quickly).
pub fn endpoint_with(
    trust: &ServerTrust,
    bind: SocketAddr,
    transport: quinn::TransportConfig,
) -> Result<quinn::Endpoint, ClientError> {
    let tls = tls::client_config(trust, ALPN)?;
    let crypto = QuicClientConfig::try_from(tls).map_err(|e| ClientError::Other(e.to_string()))?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    cfg.transport_config(Arc::new(transport));
    let mut ep = client_endpoint(bind).map_err(|e| ClientError::Connect(e.to_string()))?;
    ep.set_default_client_config(cfg);
    Ok(ep)
}

/// [`endpoint`] for reaching `relay`: bound to an ephemeral port on the unspecified address of its family.
pub fn endpoint_for(
    trust: &ServerTrust,
    relay: SocketAddr,
) -> Result<quinn::Endpoint, ClientError> {
    let bind: SocketAddr = if relay.is_ipv6() {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    }
    .parse()
    .expect("literal");
    endpoint(trust, bind)
}

/// Receive and send buffer asked for the client's UDP socket (the kernel caps it at net.core.[rw]mem_max):
/// a keyframe burst must not overflow it.
const CLIENT_UDP_BUFFER: usize = 4 << 20;

fn client_endpoint(bind: SocketAddr) -> std::io::Result<quinn::Endpoint> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(bind),
        socket2::Type::DGRAM,
        None,
    )?;
    let _ = socket.set_recv_buffer_size(CLIENT_UDP_BUFFER);
    let _ = socket.set_send_buffer_size(CLIENT_UDP_BUFFER);
    socket.bind(&bind.into())?;
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket.into(),
        Arc::new(quinn::TokioRuntime),
    )
}

/// Resolves `host:port`.
pub async fn resolve(relay: &str) -> Result<SocketAddr, ClientError> {
    let has_port = relay
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !has_port {
        return Err(ClientError::Connect(format!(
            "the relay address {relay:?} needs a port: HOST:PORT, e.g. 127.0.0.1:4433 or [::1]:4433"
        )));
    }
    tokio::net::lookup_host(relay)
        .await
        .map_err(|e| ClientError::Connect(format!("cannot resolve {relay}: {e}")))?
        .next()
        .ok_or_else(|| ClientError::Connect(format!("{relay} resolves to no address")))
}

/// Whether `typed` can be a code (an authorization or meeting code): 6 to 18 digits, spaces and dashes
/// allowed. Anything else is refused before it reaches the relay, where it would count as a failed guess
/// against this address.
pub fn is_code(typed: &str) -> bool {
    let digits = typed.chars().filter(|c| !matches!(c, ' ' | '-'));
    let (mut n, mut ok) = (0, true);
    for c in digits {
        n += 1;
        ok &= c.is_ascii_digit();
    }
    ok && (6..=18).contains(&n)
}

/// Relay messages may exceed `max_message_bytes` by this much (docs/PROTOCOL.md, "Limits").
pub const RELAY_MESSAGE_SLACK: usize = 16;

/// Sends control messages.
pub struct ControlSender {
    send: SendStream,
    buf: BytesMut,
}

impl ControlSender {
    /// Abandons the control stream (RESET_STREAM); the relay treats it as a protocol violation.
    pub fn reset(&mut self) {
        let _ = self.send.reset(0u32.into());
    }

    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), ClientError> {
        self.buf.clear();
        msg.encode(&mut self.buf);
        self.send
            .write_all(&self.buf)
            .await
            .map_err(|e| ClientError::Connect(e.to_string()))
    }
}

/// Receives control messages.
pub struct ControlReceiver {
    recv: RecvStream,
    buf: BytesMut,
    max: usize,
}

impl ControlReceiver {
    /// The next message; `Ok(None)` when the relay finished the stream (it is closing the connection).
    pub async fn recv(&mut self) -> Result<Option<ServerMsg>, ClientError> {
        loop {
            if let Some((ty, body)) = split_message(&mut self.buf, self.max)
                .map_err(|e| ClientError::Protocol(e.to_string()))?
            {
                return ServerMsg::decode(ty, &body)
                    .map(Some)
                    .map_err(|e| ClientError::Protocol(e.to_string()));
            }
            match self.recv.read_chunk(64 << 10, true).await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk.bytes),
                Ok(None) => return Ok(None),
                Err(quinn::ReadError::ConnectionLost(e)) => return Err(connection_error(&e)),
                Err(e) => return Err(ClientError::Connect(e.to_string())),
            }
        }
    }
}

/// A joined session.
pub struct Session {
    pub conn: Connection,
    pub tx: ControlSender,
    pub rx: ControlReceiver,
    /// The WELCOME message.
    pub welcome: ServerMsg,
}

impl Session {
    pub fn resume_token(&self) -> &str {
        match &self.welcome {
            ServerMsg::Welcome { resume_token, .. } => resume_token,
            ServerMsg::MeetingWelcome(w) => &w.resume_token,
            _ => "",
        }
    }

    /// The participant id a meeting gave this client (0 in a remote-assist session).
    pub fn participant(&self) -> u32 {
        match &self.welcome {
            ServerMsg::MeetingWelcome(w) => w.participant,
            _ => 0,
        }
    }

    /// Waits for the relay to close the connection and returns how.
    pub async fn closed(&self) -> ClientError {
        connection_error(&self.conn.closed().await)
    }
}

/// Connects, sends HELLO and waits for WELCOME (or the close code that refuses it).
pub async fn join(
    ep: &quinn::Endpoint,
    addr: SocketAddr,
    server_name: &str,
    hello: Hello,
) -> Result<Session, ClientError> {
    let conn = ep
        .connect(addr, server_name)
        .map_err(|e| ClientError::Connect(e.to_string()))?
        .await
        .map_err(|e| connection_error(&e))?;
    let (send, recv) = conn.open_bi().await.map_err(|e| connection_error(&e))?;
    let mut tx = ControlSender {
        send,
        buf: BytesMut::new(),
    };
    let mut rx = ControlReceiver {
        recv,
        buf: BytesMut::new(),
        max: 16 << 20,
    };
    tx.send(&ClientMsg::Hello(hello)).await?;
    let welcome = match rx.recv().await {
        Ok(Some(w @ (ServerMsg::Welcome { .. } | ServerMsg::MeetingWelcome(_)))) => w,
        Ok(Some(other)) => {
            return Err(ClientError::Protocol(format!(
                "expected WELCOME, got {other:?}"
            )))
        }
        Ok(None) | Err(ClientError::Connect(_)) => {
            return Err(connection_error(&conn.closed().await))
        }
        Err(e) => return Err(e),
    };
    let max_message = match &welcome {
        ServerMsg::Welcome {
            max_message_bytes, ..
        } => *max_message_bytes,
        ServerMsg::MeetingWelcome(w) => w.max_message_bytes,
        _ => unreachable!("matched above"),
    };
    // Forwarded messages carry a few bytes more than the sender's message.
    rx.max = max_message as usize + RELAY_MESSAGE_SLACK;
    Ok(Session {
        conn,
        tx,
        rx,
        welcome,
    })
}

/// Sends frames as media groups: a keyframe opens a new group stream, delta frames follow on it.
pub struct MediaSender {
    conn: Connection,
    track: u32,
    next_group: u64,
    seq: u64,
    current: Option<SendStream>,
}

impl MediaSender {
    pub fn new(conn: Connection, track: u32) -> MediaSender {
        MediaSender {
            conn,
            track,
            next_group: 0,
            seq: 0,
            current: None,
        }
    }

    /// Sends one frame. Delta frames before the first keyframe are skipped (returns false).
    pub async fn send(
        &mut self,
        codec: Codec,
        keyframe: bool,
        capture_ts_us: u64,
        payload: bytes::Bytes,
    ) -> Result<bool, ClientError> {
        let io = write_error;
        if keyframe {
            if let Some(mut s) = self.current.take() {
                let _ = s.finish();
            }
            let mut s = self
                .conn
                .open_uni()
                .await
                .map_err(|e| connection_error(&e))?;
            let header = GroupHeader {
                track: self.track,
                group: self.next_group,
            };
            self.next_group += 1;
            s.write_all(&header.encode()).await.map_err(io)?;
            self.current = Some(s);
        }
        let Some(s) = self.current.as_mut() else {
            return Ok(false);
        };
        let fh = FrameHeader {
            payload_len: u32::try_from(payload.len())
                .map_err(|_| ClientError::Other("frame too large".into()))?,
            codec,
            keyframe,
            seq: self.seq,
            capture_ts_us,
        };
        self.seq += 1;
        s.write_all(&fh.encode()).await.map_err(io)?;
        s.write_chunk(payload).await.map_err(io)?;
        Ok(true)
    }

    /// Finishes the open group and waits until the relay has acknowledged all of it.
    pub async fn flush(&mut self) {
        if let Some(mut s) = self.current.take() {
            let _ = s.finish();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.stopped()).await;
        }
    }
}

/// How the demo clients are told to trust the relay.
#[derive(Debug, Clone, clap::Args)]
pub struct TrustArgs {
    /// SHA-256 fingerprint of the relay's certificate (printed by `serve` and the technician; colons allowed).
    #[arg(long)]
    pub server_cert_sha256: Option<String>,
    /// PEM file of CA certificates to verify the relay against instead of a pinned fingerprint.
    #[arg(long, conflicts_with = "server_cert_sha256")]
    pub ca: Option<std::path::PathBuf>,
    /// Name to verify the relay's certificate against (with --ca).
    #[arg(long, default_value = "localhost")]
    pub server_name: String,
}

impl TrustArgs {
    /// The trust to use; `fallback_pin` (from the API) when neither flag is given.
    pub fn trust(&self, fallback_pin: Option<&str>) -> Result<ServerTrust, ClientError> {
        if let Some(ca) = &self.ca {
            return Ok(ServerTrust::CaFile(ca.clone()));
        }
        match self.server_cert_sha256.as_deref().or(fallback_pin) {
            Some(fp) => Ok(ServerTrust::Pin(tls::parse_fingerprint(fp)?)),
            None => Err(ClientError::Other(
                "say how to trust the relay: --server-cert-sha256 <fingerprint printed by the server> or --ca <file>"
                    .into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_on_a_closed_connection_reports_the_relays_close_code() {
        let close = quinn_proto::ApplicationClose {
            error_code: quinn::VarInt::from_u32(ErrorCode::GoingAway as u32),
            reason: bytes::Bytes::from_static(b"relay shutting down"),
        };
        let e = write_error(quinn::WriteError::ConnectionLost(
            ConnectionError::ApplicationClosed(close),
        ));
        assert_eq!(e.code(), Some(ErrorCode::GoingAway));
        assert!(e.to_string().contains("relay shutting down"), "{e}");
        let e = write_error(quinn::WriteError::ClosedStream);
        assert!(matches!(e, ClientError::Connect(_)));
    }
}
