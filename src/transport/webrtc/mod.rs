//! WebRTC peers (browsers) on one UDP port, with str0m (docs/PROTOCOL.md section 13).
//!
//! The only place the rest of the crate meets str0m. One task reads the shared socket and hands each datagram
//! to its peer's task: by source address once known, else by the ICE ufrag in a STUN binding request's
//! USERNAME (the relay's ufrag is new per peer). Anything else is dropped and counted. Each peer's task owns
//! its `Rtc` (sans-IO) and stands in the peer's room exactly as a QUIC connection does, through a
//! [`PeerHandle`](crate::relay::PeerHandle): frames in and out, control messages on the `control` data
//! channel.
//!
//! ```text
//! UDP socket ──recv task──► per-peer queue (bounded, drop when full) ──► peer task: Rtc ◄──► room task
//!      ▲                                                                    │
//!      └──────────────────────── send_to (non-blocking) ◄───────────────────┘
//! ```

mod files;
pub mod media;
mod negotiate;
mod peer;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dashmap::DashMap;
use str0m::config::CryptoProvider;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::protocol::{ErrorCode, Hello};
use crate::relay::Relay;

/// A datagram for one peer's task.
#[derive(Debug)]
pub(crate) struct Datagram {
    source: SocketAddr,
    at: Instant,
    data: Vec<u8>,
}

type PeerTx = mpsc::Sender<Datagram>;

/// Largest datagram read from the socket; longer ones are dropped (WebRTC keeps packets under the path MTU).
const MAX_DATAGRAM: usize = 2048;

/// Why an offer was not answered.
#[derive(Debug, thiserror::Error)]
pub enum RtcConnectError {
    /// The SDP could not be parsed or used.
    #[error("invalid offer: {0}")]
    Offer(String),
    /// No usable codec on an m-line the peer needs.
    #[error("{0}")]
    Codec(String),
    /// Refused by the relay or the room, with the close code a QUIC client would get.
    #[error("{1}")]
    Refused(ErrorCode, String),
    /// Too many failed attempts (`rate_limited`): the client may try again after the wait.
    #[error("{1}")]
    RateLimited(std::time::Duration, String),
}

impl RtcConnectError {
    pub fn code(&self) -> ErrorCode {
        match self {
            RtcConnectError::Offer(_) => ErrorCode::InvalidOffer,
            RtcConnectError::Codec(_) => ErrorCode::UnsupportedCodec,
            RtcConnectError::Refused(code, _) => *code,
            RtcConnectError::RateLimited(..) => ErrorCode::RateLimited,
        }
    }
}

/// An accepted offer.
#[derive(Debug)]
pub struct Connected {
    /// The peer's id (32 hex digits): `DELETE /api/v1/rtc/{id}` ends it.
    pub id: String,
    /// The SDP answer.
    pub answer: String,
    /// The resume token of the room's welcome (`Assist-Resume-Token`): a peer whose connection never
    /// comes up enters again with `as=resume` and this token instead of its spent code or token.
    pub resume_token: Option<String>,
}

/// A peer as the endpoint knows it.
#[derive(Debug)]
struct PeerEntry {
    /// Cancelled to end the peer (`DELETE`).
    leave: CancellationToken,
}

/// The WebRTC side of the relay: the shared socket and the peers on it.
#[derive(Debug)]
pub struct WebRtc {
    relay: Arc<Relay>,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    /// The address in the ICE candidate (`webrtc.advertise`).
    candidate: SocketAddr,
    crypto: Arc<CryptoProvider>,
    by_ufrag: DashMap<String, PeerTx>,
    by_addr: DashMap<SocketAddr, PeerTx>,
    peers: DashMap<String, PeerEntry>,
    count: AtomicUsize,
    per_address: DashMap<IpAddr, usize>,
}

impl WebRtc {
    /// Binds `webrtc.listen`.
    pub fn bind(cfg: &Config, relay: Arc<Relay>) -> std::io::Result<Arc<WebRtc>> {
        let w = &cfg.webrtc;
        let addr = w.listen;
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::DGRAM,
            None,
        )?;
        super::size_udp_buffers(&socket, cfg.limits.udp_buffer.usize(), "WebRTC");
        socket.bind(&addr.into())?;
        socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(socket.into())?;
        let local = socket.local_addr()?;
        let candidate = advertised(&w.advertise, local);
        Ok(Arc::new(WebRtc {
            relay,
            socket: Arc::new(socket),
            local,
            candidate,
            crypto: Arc::new(str0m::crypto::from_feature_flags()),
            by_ufrag: DashMap::new(),
            by_addr: DashMap::new(),
            peers: DashMap::new(),
            count: AtomicUsize::new(0),
            per_address: DashMap::new(),
        }))
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The address peers are told to send to.
    pub fn candidate_addr(&self) -> SocketAddr {
        self.candidate
    }

    /// Peers connected or connecting now.
    pub fn peer_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Reads the socket until `cancel`, handing datagrams to their peers.
    pub fn spawn(self: &Arc<Self>, cancel: CancellationToken) {
        let ep = self.clone();
        self.relay.tasks.spawn(async move {
            let mut buf = vec![0u8; MAX_DATAGRAM + 1];
            loop {
                let (n, source) = tokio::select! {
                    r = ep.socket.recv_from(&mut buf) => match r {
                        Ok(v) => v,
                        // ICMP errors (a peer's port closed) surface here on some systems; keep serving.
                        Err(_) => continue,
                    },
                    _ = cancel.cancelled() => break,
                };
                // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d: the peers see them as IPv4.
                let source = SocketAddr::new(source.ip().to_canonical(), source.port());
                ep.dispatch(source, &buf[..n]);
            }
        });
    }

    fn dispatch(&self, source: SocketAddr, data: &[u8]) {
        let m = &self.relay.metrics.webrtc;
        if data.len() > MAX_DATAGRAM {
            m.dropped_datagrams.with_label_values(&["oversized"]).inc();
            return;
        }
        // A STUN binding request goes to the peer it names (an address bound to one peer may start
        // checks for another); it does not bind its address: the peer learns the address when its stack
        // answers, that is once the request's integrity checked out ([`WebRtc::send`]). Everything else
        // goes by source address.
        let by_name = if data.first().is_some_and(|b| *b < 2) {
            self.route_stun(data)
        } else {
            None
        };
        let tx = match by_name.or_else(|| self.by_addr.get(&source).map(|tx| tx.clone())) {
            Some(tx) => tx,
            None => {
                m.dropped_datagrams
                    .with_label_values(&["unknown_source"])
                    .inc();
                return;
            }
        };
        let dg = Datagram {
            source,
            at: Instant::now(),
            data: data.to_vec(),
        };
        if tx.try_send(dg).is_err() {
            m.dropped_datagrams.with_label_values(&["queue_full"]).inc();
        }
    }

    /// The peer a STUN binding request is for (USERNAME is `<relay ufrag>:<peer ufrag>`).
    fn route_stun(&self, data: &[u8]) -> Option<PeerTx> {
        let msg = str0m::ice::StunMessage::parse(data).ok()?;
        if !msg.is_binding_request() {
            return None;
        }
        let (local, _) = msg.split_username()?;
        self.by_ufrag.get(local).map(|tx| tx.clone())
    }

    /// Answers an offer: authenticates `hello` from `from` as a QUIC HELLO would be, enters the peer in its
    /// room, and returns once the room has accepted it.
    pub async fn connect(
        self: &Arc<Self>,
        from: IpAddr,
        hello: Hello,
        offer: &str,
    ) -> Result<Connected, RtcConnectError> {
        let cfg = &self.relay.cfg;
        if self.relay.shutdown.is_cancelled() {
            return Err(RtcConnectError::Refused(
                ErrorCode::GoingAway,
                "relay shutting down".into(),
            ));
        }
        negotiate::check_is_sdp(offer)?;
        if !offer.lines().any(|l| l.starts_with("m=application")) {
            return Err(RtcConnectError::Offer(
                "the offer has no data channel (create the `control` channel before the offer)"
                    .into(),
            ));
        }
        let offered = media::video_mlines(offer);
        let parsed = str0m::change::SdpOffer::from_sdp_string(offer).map_err(|e| {
            RtcConnectError::Offer(format!(
                "not parseable SDP (RFC 8866: v=, o=, s=, t= then m= sections with a=mid and a \
                 direction): {}",
                parse_error_text(&e.to_string())
            ))
        })?;
        // After the parse: an offer str0m cannot read at all is told that first.
        negotiate::check_fingerprint(offer)?;
        let offer = parsed;
        let slot = PeerSlot::take(self, from)?;
        let (reply, answer) = oneshot::channel();
        let leave = CancellationToken::new();
        let id = random_id(&self.relay);
        self.peers.insert(
            id.clone(),
            PeerEntry {
                leave: leave.clone(),
            },
        );
        let (tx, rx) = mpsc::channel(cfg.webrtc.packet_queue);
        let setup = peer::Setup {
            id: id.clone(),
            from,
            hello,
            offer,
            offered,
            reply,
            leave,
            tx,
            rx,
            slot,
        };
        self.relay.tasks.spawn(peer::run(self.clone(), setup));
        match answer.await {
            Ok(Ok(a)) => Ok(Connected {
                id,
                answer: a.answer,
                resume_token: a.resume_token,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(RtcConnectError::Refused(
                ErrorCode::Internal,
                "the peer task ended before answering".into(),
            )),
        }
    }

    /// Ends a peer as if it had closed its connection. False if there is no such peer.
    pub fn disconnect(&self, id: &str) -> bool {
        match self.peers.get(id) {
            Some(p) => {
                p.leave.cancel();
                true
            }
            None => false,
        }
    }

    /// Sends a peer's datagram; the first one to an address routes that address's datagrams to the peer.
    fn send(&self, tx: &PeerTx, sources: &mut Vec<SocketAddr>, data: &[u8], to: SocketAddr) {
        if !sources.contains(&to) {
            sources.push(to);
            self.by_addr.insert(to, tx.clone());
        }
        let wire = match (to.ip(), self.local.is_ipv6()) {
            (IpAddr::V4(v4), true) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), to.port()),
            _ => to,
        };
        // UDP semantics: a full socket buffer drops the datagram; RTP and SCTP recover.
        let _ = self.socket.try_send_to(data, wire);
    }

    fn forget(&self, id: &str, ufrag: &str, tx: &PeerTx, sources: &[SocketAddr]) {
        self.peers.remove(id);
        self.by_ufrag.remove(ufrag);
        for s in sources {
            self.by_addr.remove_if(s, |_, t| t.same_channel(tx));
        }
    }
}

/// The peer's place under `webrtc.max_peers` and `limits.max_connections_per_address`; freed on drop.
#[derive(Debug)]
struct PeerSlot {
    ep: Arc<WebRtc>,
    key: IpAddr,
}

impl PeerSlot {
    fn take(ep: &Arc<WebRtc>, from: IpAddr) -> Result<PeerSlot, RtcConnectError> {
        let cfg = &ep.relay.cfg;
        let key = crate::pairing::limiter::address_key(from);
        if ep.count.fetch_add(1, Ordering::AcqRel) >= cfg.webrtc.max_peers {
            ep.count.fetch_sub(1, Ordering::AcqRel);
            return Err(RtcConnectError::Refused(
                ErrorCode::Busy,
                "too many WebRTC peers".into(),
            ));
        }
        let mut n = ep.per_address.entry(key).or_insert(0);
        if *n >= cfg.limits.max_connections_per_address {
            drop(n);
            ep.count.fetch_sub(1, Ordering::AcqRel);
            return Err(RtcConnectError::Refused(
                ErrorCode::TooManyConnections,
                "too many connections from this address".into(),
            ));
        }
        *n += 1;
        Ok(PeerSlot {
            ep: ep.clone(),
            key,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        self.ep.count.fetch_sub(1, Ordering::AcqRel);
        self.ep.per_address.remove_if_mut(&self.key, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

fn random_id(relay: &Relay) -> String {
    let mut raw = [0u8; 16];
    relay.fill_random(&mut raw);
    data_encoding::HEXLOWER.encode(&raw)
}

/// `webrtc.advertise` (IP or IP:port) resolved against the bound address.
/// The SDP parser's error without what only concerns its own memory (`at PointerOffset(0x...)`), on one
/// line and bounded.
fn parse_error_text(raw: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for line in raw.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let line = match line.find(" at PointerOffset(") {
            Some(i) => {
                let rest = &line[i + " at PointerOffset(".len()..];
                let after = rest.find(')').map_or("", |j| &rest[j + 1..]);
                format!("{}{after}", &line[..i])
            }
            None => line.to_string(),
        };
        out.push(line);
    }
    let mut text = out.join("; ");
    if text.len() > 200 {
        let mut cut = 200;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn advertised(advertise: &str, local: SocketAddr) -> SocketAddr {
    if let Ok(a) = advertise.parse::<SocketAddr>() {
        return SocketAddr::new(a.ip().to_canonical(), a.port());
    }
    if let Ok(ip) = advertise.parse::<IpAddr>() {
        return SocketAddr::new(ip.to_canonical(), local.port());
    }
    if local.ip().is_unspecified() {
        let ip: IpAddr = if local.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        return SocketAddr::new(ip, local.port());
    }
    local
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_lose_the_parsers_memory_offsets() {
        let raw = "SDP parse: Parse error at PointerOffset(0x7f622400edfc)\nUnexpected `m`\nExpected `v`\nsdp line\n";
        assert_eq!(
            parse_error_text(raw),
            "SDP parse: Parse error; Unexpected `m`; Expected `v`; sdp line"
        );
        assert!(parse_error_text(&"é".repeat(300)).chars().count() <= 101);
    }

    #[test]
    fn the_candidate_address_follows_advertise_or_the_binding() {
        let local: SocketAddr = "0.0.0.0:4434".parse().unwrap();
        assert_eq!(advertised("", local), "127.0.0.1:4434".parse().unwrap());
        assert_eq!(
            advertised("203.0.113.7", local),
            "203.0.113.7:4434".parse().unwrap()
        );
        assert_eq!(
            advertised("203.0.113.7:3478", local),
            "203.0.113.7:3478".parse().unwrap()
        );
        let bound: SocketAddr = "10.0.0.5:5000".parse().unwrap();
        assert_eq!(advertised("", bound), bound);
        let v6: SocketAddr = "[::]:4434".parse().unwrap();
        assert_eq!(advertised("", v6), "[::1]:4434".parse().unwrap());
    }
}
