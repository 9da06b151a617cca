//! Prometheus metrics. Each subsystem's metrics live in one struct registered once on the server's own
//! registry (no global default registry). Labels take values from small fixed sets (reasons, results,
//! roles); never a session, peer or address.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Metrics of the relay: sessions, codes, forwarding, input, connections.
#[derive(Debug, Clone)]
pub struct RelayMetrics {
    pub sessions_active: IntGauge,
    pub sessions_paired: IntCounter,
    pub sessions_ended: IntCounterVec,
    pub codes_issued: IntCounter,
    pub codes_redeemed: IntCounter,
    pub code_failures: IntCounterVec,
    pub frames_forwarded: IntCounter,
    pub bytes_forwarded: IntCounter,
    pub frames_dropped: IntCounterVec,
    pub keyframe_requests: IntCounterVec,
    pub input_events: IntCounterVec,
    pub forwarding_latency: Histogram,
    pub connections_active: IntGauge,
    pub connections_closed: IntCounterVec,
    pub groups_reset: IntCounter,
    pub meetings_active: IntGauge,
    pub annotations: IntCounter,
    pub chat_messages: IntCounter,
    pub file_transfers: IntCounterVec,
    pub file_bytes: IntCounter,
    pub recordings_active: IntGauge,
    pub recordings_stopped: IntCounterVec,
    pub webrtc: WebRtcMetrics,
}

/// Metrics of the WebRTC transport (docs/PROTOCOL.md section 13).
#[derive(Debug, Clone)]
pub struct WebRtcMetrics {
    /// Peer connections by state: `connecting` (answered, ICE/DTLS not done), `connected`.
    pub peers: IntGaugeVec,
    /// Peers that never connected or lost their connection, by kind: `ice` (no connectivity, or consent lost),
    /// `dtls` (handshake or channel failure), `no_control_channel`.
    pub failures: IntCounterVec,
    pub rtp_packets: IntCounterVec,
    pub rtp_bytes: IntCounterVec,
    pub nacks: IntCounterVec,
    pub plis: IntCounterVec,
    /// Control data-channel messages (`direction`), counted per message: both series resolved once.
    pub channel_messages: InOut,
    /// Frames that crossed between transports (`direction`), counted per frame: both series resolved once.
    pub bridged_frames: Bridged,
    pub dropped_datagrams: IntCounterVec,
}

/// `webrtc_channel_messages_total{direction="in"|"out"}`.
#[derive(Debug, Clone)]
pub struct InOut {
    pub incoming: IntCounter,
    pub outgoing: IntCounter,
}

/// `webrtc_bridged_frames_total{direction="quic_to_webrtc"|"webrtc_to_quic"}`.
#[derive(Debug, Clone)]
pub struct Bridged {
    pub quic_to_webrtc: IntCounter,
    pub webrtc_to_quic: IntCounter,
}

impl WebRtcMetrics {
    fn register(r: &Registry) -> WebRtcMetrics {
        let peers = IntGaugeVec::new(
            Opts::new(
                "assist_relay_webrtc_peers",
                "WebRTC peer connections now, by state: connecting, connected",
            ),
            &["state"],
        )
        .expect("valid metric");
        r.register(Box::new(peers.clone()))
            .expect("registered once");
        let m = WebRtcMetrics {
            peers,
            failures: counter_vec(
                r,
                "webrtc_failures_total",
                "WebRTC peers that failed, by kind: ice (no connectivity or consent lost), dtls, \
                 no_control_channel",
                "kind",
            ),
            rtp_packets: counter_vec(
                r,
                "webrtc_rtp_packets_total",
                "RTP packets, by direction: in (from publishers), out (to receivers, retransmissions included)",
                "direction",
            ),
            rtp_bytes: counter_vec(
                r,
                "webrtc_rtp_bytes_total",
                "RTP payload bytes, by direction: in, out",
                "direction",
            ),
            nacks: counter_vec(
                r,
                "webrtc_nacks_total",
                "NACKs, by direction: received (from receivers), sent (to publishers)",
                "direction",
            ),
            plis: counter_vec(
                r,
                "webrtc_plis_total",
                "Keyframe requests (PLI or FIR), by direction: received (from a receiver; passed to the room's \
                 throttle, see keyframe_requests_total), sent (to a publisher: requests that passed the throttle, and the \
                 relay's own when a publisher's frame was lost or too large)",
                "direction",
            ),
            channel_messages: {
                let v = counter_vec(
                    r,
                    "webrtc_channel_messages_total",
                    "Control data-channel messages, by direction: in, out",
                    "direction",
                );
                InOut {
                    incoming: v.with_label_values(&["in"]),
                    outgoing: v.with_label_values(&["out"]),
                }
            },
            bridged_frames: {
                let v = counter_vec(
                    r,
                    "webrtc_bridged_frames_total",
                    "Frames that crossed between transports, by direction: quic_to_webrtc, webrtc_to_quic",
                    "direction",
                );
                Bridged {
                    quic_to_webrtc: v.with_label_values(&["quic_to_webrtc"]),
                    webrtc_to_quic: v.with_label_values(&["webrtc_to_quic"]),
                }
            },
            dropped_datagrams: counter_vec(
                r,
                "webrtc_dropped_datagrams_total",
                "UDP datagrams on the WebRTC port not given to any peer, by reason: unknown_source (not a STUN \
                 request for a known peer: garbage or stray), queue_full (the peer's task is behind), oversized, \
                 malformed (from a known peer: not STUN, DTLS or RTP/RTCP, or refused by its stack)",
                "reason",
            ),
        };
        // Every documented series exists from the start (at 0), so dashboards and rate() have data.
        for state in ["connecting", "connected"] {
            m.peers.with_label_values(&[state]);
        }
        let series: [(&IntCounterVec, &[&str]); 6] = [
            (&m.failures, &["ice", "dtls", "no_control_channel"]),
            (&m.rtp_packets, &["in", "out"]),
            (&m.rtp_bytes, &["in", "out"]),
            (&m.nacks, &["received", "sent"]),
            (&m.plis, &["received", "sent"]),
            (
                &m.dropped_datagrams,
                &["unknown_source", "queue_full", "oversized", "malformed"],
            ),
        ];
        for (vec, values) in series {
            for v in values {
                vec.with_label_values(&[v]);
            }
        }
        m
    }
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(format!("assist_relay_{name}"), help).expect("valid metric");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, label: &str) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(format!("assist_relay_{name}"), help), &[label])
        .expect("valid metric");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(format!("assist_relay_{name}"), help).expect("valid metric");
    r.register(Box::new(g.clone())).expect("registered once");
    g
}

impl RelayMetrics {
    pub fn register(r: &Registry) -> RelayMetrics {
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "assist_relay_forwarding_latency_seconds",
                "Time from the relay finishing reading a frame to finishing writing it to a receiver",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            ]),
        )
        .expect("valid metric");
        r.register(Box::new(latency.clone()))
            .expect("registered once");
        let m = RelayMetrics {
            sessions_active: gauge(
                r,
                "sessions_active",
                "Sessions that exist now (waiting or paired)",
            ),
            sessions_paired: counter(
                r,
                "sessions_paired_total",
                "Sessions in which both sides joined",
            ),
            sessions_ended: counter_vec(
                r,
                "sessions_ended_total",
                "Sessions ended, by reason",
                "reason",
            ),
            codes_issued: counter(r, "codes_issued_total", "Authorization codes issued"),
            codes_redeemed: counter(r, "codes_redeemed_total", "Authorization codes redeemed"),
            code_failures: counter_vec(
                r,
                "code_failures_total",
                "Failed code redemptions, by reason",
                "reason",
            ),
            frames_forwarded: counter(r, "frames_forwarded_total", "Frames written to receivers"),
            bytes_forwarded: counter(
                r,
                "bytes_forwarded_total",
                "Frame bytes (header and payload) written to receivers",
            ),
            frames_dropped: counter_vec(
                r,
                "frames_dropped_total",
                "Frames not forwarded, by reason",
                "reason",
            ),
            keyframe_requests: counter_vec(
                r,
                "keyframe_requests_total",
                "Keyframe requests: sent to the sender, or suppressed by the throttle",
                "result",
            ),
            input_events: counter_vec(
                r,
                "input_events_total",
                "Input events: forwarded, or dropped by reason",
                "result",
            ),
            forwarding_latency: latency,
            connections_active: gauge(r, "connections_active", "QUIC connections open now"),
            connections_closed: counter_vec(
                r,
                "connections_closed_total",
                "Connections closed, by reason: the relay's close code name (QUIC connections, and WebRTC peers \
                 the relay refused or closed), or peer_closed, timed_out, lost, handshake_failed, busy (QUIC \
                 connections refused at max_connections)",
                "reason",
            ),
            groups_reset: counter(
                r,
                "groups_reset_total",
                "Group streams reset because a receiver fell behind",
            ),
            meetings_active: gauge(r, "meetings_active", "Meetings that exist now"),
            annotations: counter(r, "annotations_total", "Whiteboard operations applied"),
            chat_messages: counter(r, "meeting_chat_messages_total", "Meeting chat lines"),
            file_transfers: counter_vec(
                r,
                "file_transfers_total",
                "File transfer state changes: offered, accepted, declined, completed, failed",
                "state",
            ),
            file_bytes: counter(
                r,
                "file_bytes_total",
                "File bytes passed from senders to recipients",
            ),
            recordings_active: gauge(r, "recordings_active", "Meeting recordings running now"),
            recordings_stopped: counter_vec(
                r,
                "recordings_stopped_total",
                "Recordings stopped, by reason: requested, meeting_ended, quota, disk_full, io_error",
                "reason",
            ),
            webrtc: WebRtcMetrics::register(r),
        };
        for result in ["sent", "suppressed"] {
            m.keyframe_requests.with_label_values(&[result]);
        }
        m
    }
}

/// The text exposition of a registry.
pub fn render(r: &Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&r.gather(), &mut buf)
        .expect("text encoding cannot fail");
    String::from_utf8(buf).expect("prometheus text is UTF-8")
}
