//! One configuration tree for the file, the environment and the command line.
//!
//! Each section is declared once with [`section!`]: that gives a *layer* (every key optional; it derives clap
//! and serde, so the same type is read from `--flags`/`ASSIST_RELAY_*` and from the TOML file) and a
//! *resolved* struct with the defaults filled in. Precedence is file < environment < flags: clap already puts
//! flags over the environment, and [`ConfigLayer::merge`] puts both over the file. `config/assist-relay.example.toml`
//! lists every key; a test keeps it in step with this file.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod cli_env;
mod validate;
pub use cli_env::env_value_error;
pub use validate::check_env;

/// A duration written the human way: `10m`, `30s`, `500ms`, `4h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl FromStr for Dur {
    type Err = String;
    fn from_str(s: &str) -> Result<Dur, String> {
        humantime::parse_duration(s)
            .map(Dur)
            .map_err(|e| format!("invalid duration {s:?}: {e} (e.g. 10m, 30s)"))
    }
}
/// As one would type it, in exact units and no calendar months: `31days`, `1day 2h`, `1500ms` → `1s 500ms`.
impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), u64::from(self.0.subsec_nanos()));
        if secs == 0 && nanos == 0 {
            return f.write_str("0s");
        }
        let days = secs / 86_400;
        let parts = [
            (days, if days == 1 { "day" } else { "days" }),
            (secs / 3_600 % 24, "h"),
            (secs / 60 % 60, "m"),
            (secs % 60, "s"),
            (nanos / 1_000_000, "ms"),
            (nanos / 1_000 % 1_000, "us"),
            (nanos % 1_000, "ns"),
        ];
        let mut sep = "";
        for (n, unit) in parts.into_iter().filter(|(n, _)| *n > 0) {
            write!(f, "{sep}{n}{unit}")?;
            sep = " ";
        }
        Ok(())
    }
}
impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A byte count: `4MiB`, `64KiB`, `512` (KiB/MiB/GiB are powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            other => {
                return Err(format!(
                    "invalid size {s:?}: unknown unit {other:?} (use B, KiB, MiB, GiB)"
                ))
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid size {s:?} (e.g. 4MiB)"))?;
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("size {s:?} is too large"))
    }
}
impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        match n {
            _ if n >= 1 << 30 && n % (1 << 30) == 0 => write!(f, "{}GiB", n >> 30),
            _ if n >= 1 << 20 && n % (1 << 20) == 0 => write!(f, "{}MiB", n >> 20),
            _ if n >= 1 << 10 && n % (1 << 10) == 0 => write!(f, "{}KiB", n >> 10),
            _ => write!(f, "{n}B"),
        }
    }
}
impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}
impl ByteSize {
    pub fn usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// Declares a config section: a layer of optional keys (clap + serde) and its resolved form with defaults.
macro_rules! section {
    (
        $(#[doc = $sdoc:literal])*
        $layer:ident => $resolved:ident {
            $( $(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr, env = $env:literal $(, flag = $flag:literal)?; )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, Default, PartialEq, clap::Args, Deserialize, Serialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $layer {
            $( $(#[doc = $doc])* #[arg(long $(= $flag, id = $flag)?, env = $env, hide_env_values = true)] #[serde(skip_serializing_if = "Option::is_none")]
               pub $field: Option<$ty>, )*
        }

        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $resolved {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl $layer {
            /// Keys set in `over` win.
            pub fn merge(self, over: $layer) -> $layer {
                $layer { $( $field: over.$field.or(self.$field), )* }
            }
            /// Every key set to its default (for the example file test).
            pub fn defaults() -> $layer {
                $layer { $( $field: Some($default), )* }
            }
            pub fn resolve(&self) -> $resolved {
                $resolved { $( $field: self.$field.clone().unwrap_or_else(|| $default), )* }
            }
        }
    };
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("valid default address")
}

section! {
    /// `[server]`: listeners, data directory, credentials, shutdown.
    ServerLayer => ServerConfig {
        /// Directory for the keys and the self-signed certificate (created if missing).
        data_dir: PathBuf = PathBuf::from("data"), env = "ASSIST_RELAY_DATA_DIR";
        /// UDP address for QUIC clients.
        quic_listen: SocketAddr = addr("0.0.0.0:4433"), env = "ASSIST_RELAY_QUIC_LISTEN";
        /// Relay address handed to clients in API responses; empty: 127.0.0.1 with the bound QUIC port.
        quic_advertise: String = String::new(), env = "ASSIST_RELAY_QUIC_ADVERTISE";
        /// TCP address of the HTTP API (/api/v1, /healthz, /readyz).
        http_listen: SocketAddr = addr("127.0.0.1:8080"), env = "ASSIST_RELAY_HTTP_LISTEN";
        /// TCP address of the Prometheus endpoint (/metrics); keep it internal.
        metrics_listen: SocketAddr = addr("127.0.0.1:9464"), env = "ASSIST_RELAY_METRICS_LISTEN";
        /// Service credential for automation (Authorization: Bearer KEY). Empty: read `operator.key` from the
        /// data directory, creating a random one on first start.
        operator_key: String = String::new(), env = "ASSIST_RELAY_OPERATOR_KEY";
        /// Run the QUIC relay. `false` (or `serve --no-relay`) serves only the HTTP API (tickets, accounts,
        /// knowledge base); creating remote-assist sessions then answers 503 `relay_disabled`.
        relay_enabled: bool = true, env = "ASSIST_RELAY_RELAY_ENABLED";
        /// How long connected peers get to finish after SIGINT/SIGTERM before the process exits.
        /// Allowed: at most 10m.
        shutdown_grace: Dur = Dur(Duration::from_secs(5)), env = "ASSIST_RELAY_SHUTDOWN_GRACE";
    }
}

section! {
    /// `[tls]`: the relay's certificate.
    TlsLayer => TlsConfig {
        /// PEM certificate chain. Empty: a self-signed certificate in the data directory, made on first start.
        cert_file: String = String::new(), env = "ASSIST_RELAY_CERT_FILE";
        /// PEM private key for `cert_file`.
        key_file: String = String::new(), env = "ASSIST_RELAY_KEY_FILE";
        /// Names (DNS or IP) put in the self-signed certificate, comma-separated.
        self_signed_names: String = "localhost,127.0.0.1,::1".to_string(), env = "ASSIST_RELAY_SELF_SIGNED_NAMES";
    }
}

section! {
    /// `[pairing]`: authorization codes and the limits on guessing them (see README, "Why codes can't be guessed").
    PairingLayer => PairingConfig {
        /// How long an authorization code (and the technician's join token) stays valid.
        /// Allowed: 1s to 7days.
        code_ttl: Dur = Dur(Duration::from_secs(600)), env = "ASSIST_RELAY_CODE_TTL";
        /// Digits in a code.
        /// Allowed: 6 to 18.
        code_digits: u32 = 12, env = "ASSIST_RELAY_CODE_DIGITS";
        /// Codes live at once (the guessing bound assumes at most this many); creating more answers 503.
        /// Allowed: 1 to 1000000.
        max_live_codes: usize = 10_000, env = "ASSIST_RELAY_MAX_LIVE_CODES";
        /// Failed redemptions per second across all addresses (the bound the guessing math rests on).
        /// Allowed: above 0 (finite).
        global_failures_per_sec: f64 = 100.0, env = "ASSIST_RELAY_GLOBAL_FAILURES_PER_SEC";
        /// Burst allowance for the global failure budget.
        /// Allowed: 1 to 1000000.
        global_failure_burst: u32 = 1000, env = "ASSIST_RELAY_GLOBAL_FAILURE_BURST";
        /// Failed redemptions per minute from one address (IPv4 /32, IPv6 /64).
        /// Allowed: above 0 (finite).
        address_failures_per_min: f64 = 30.0, env = "ASSIST_RELAY_ADDRESS_FAILURES_PER_MIN";
        /// Burst allowance per address.
        /// Allowed: 1 to 1000000.
        address_failure_burst: u32 = 30, env = "ASSIST_RELAY_ADDRESS_FAILURE_BURST";
        /// Consecutive failures from one address before exponential backoff starts.
        /// Allowed: 0 (from the first failure) to 1000000.
        backoff_after: u32 = 5, env = "ASSIST_RELAY_BACKOFF_AFTER";
        /// Longest backoff for one address.
        /// Allowed: 1s to 1day.
        backoff_max: Dur = Dur(Duration::from_secs(60)), env = "ASSIST_RELAY_BACKOFF_MAX";
    }
}

section! {
    /// `[session]`: lifetime of a paired session.
    SessionLayer => SessionConfig {
        /// A paired session with no frames or messages for this long ends.
        /// Allowed: 1s to 30days.
        idle_timeout: Dur = Dur(Duration::from_secs(300)), env = "ASSIST_RELAY_IDLE_TIMEOUT";
        /// A paired session ends after this long in any case.
        /// Allowed: 1s to 30days.
        max_duration: Dur = Dur(Duration::from_secs(4 * 3600)), env = "ASSIST_RELAY_MAX_DURATION";
        /// A side whose connection drops may resume within this period.
        /// Allowed: 1s to 1h.
        resume_grace: Dur = Dur(Duration::from_secs(30)), env = "ASSIST_RELAY_RESUME_GRACE";
        /// At most one keyframe request per this interval reaches the customer.
        /// Allowed: 0s (every request passes) to 1m.
        keyframe_interval: Dur = Dur(Duration::from_millis(500)), env = "ASSIST_RELAY_KEYFRAME_INTERVAL";
        /// Input events per second forwarded per session.
        /// Allowed: above 0 (finite).
        input_rate: f64 = 250.0, env = "ASSIST_RELAY_INPUT_RATE";
        /// Input burst allowance per session.
        /// Allowed: 1 to 1000000.
        input_burst: u32 = 500, env = "ASSIST_RELAY_INPUT_BURST";
        /// A new connection must send HELLO within this time.
        /// Allowed: 1s to 10m.
        hello_timeout: Dur = Dur(Duration::from_secs(10)), env = "ASSIST_RELAY_HELLO_TIMEOUT";
    }
}

section! {
    /// `[limits]`: sizes, counts and queues.
    LimitsLayer => LimitsConfig {
        /// Largest media frame payload.
        /// Allowed: 16KiB to 1GiB.
        max_frame_bytes: ByteSize = ByteSize(4 << 20), env = "ASSIST_RELAY_MAX_FRAME_BYTES";
        /// Largest control message.
        /// Allowed: 1KiB to 16MiB.
        max_message_bytes: ByteSize = ByteSize(64 << 10), env = "ASSIST_RELAY_MAX_MESSAGE_BYTES";
        /// QUIC connections at once (further handshakes are refused).
        /// Allowed: 1 to 1000000.
        max_connections: usize = 10_000, env = "ASSIST_RELAY_MAX_CONNECTIONS";
        /// QUIC connections and WebRTC peers at once from one address (IPv4 /32, IPv6 /64), each kind counted apart.
        /// Allowed: 1 to 1000000.
        max_connections_per_address: usize = 32, env = "ASSIST_RELAY_MAX_CONNECTIONS_PER_ADDRESS";
        /// Sessions one address (IPv4 /32, IPv6 /64) takes part in at once; both sides of one session count once.
        /// Allowed: 1 to 1000000.
        max_sessions_per_address: usize = 16, env = "ASSIST_RELAY_MAX_SESSIONS_PER_ADDRESS";
        /// HTTP API connections at once; further ones are closed on accept.
        /// Allowed: 1 to 1000000.
        max_http_connections: usize = 4096, env = "ASSIST_RELAY_MAX_HTTP_CONNECTIONS";
        /// HTTP API connections at once from one address (IPv4 /32, IPv6 /64).
        /// Allowed: 1 to 1000000.
        max_http_connections_per_address: usize = 256, env = "ASSIST_RELAY_MAX_HTTP_CONNECTIONS_PER_ADDRESS";
        /// An HTTP client must send a complete request header within this time (else the connection closes).
        /// Allowed: 1s to 10m.
        http_header_timeout: Dur = Dur(Duration::from_secs(10)), env = "ASSIST_RELAY_HTTP_HEADER_TIMEOUT";
        /// Unidirectional streams a client may have open at once.
        /// Allowed: 1 to 10000.
        max_streams_per_connection: u32 = 32, env = "ASSIST_RELAY_MAX_STREAMS_PER_CONNECTION";
        /// A receiver whose backlog's oldest frame is older than this skips to the next keyframe.
        /// Allowed: 10ms to 1m.
        backlog_max_age: Dur = Dur(Duration::from_millis(1000)), env = "ASSIST_RELAY_BACKLOG_MAX_AGE";
        /// ... or whose backlog exceeds this many bytes.
        /// Allowed: 64KiB to 4GiB.
        backlog_max_bytes: ByteSize = ByteSize(8 << 20), env = "ASSIST_RELAY_BACKLOG_MAX_BYTES";
        /// Control messages queued per connection; a peer that lets more pile up is closed (slow_consumer).
        /// Allowed: 1 to 1000000.
        control_queue: usize = 1024, env = "ASSIST_RELAY_CONTROL_QUEUE";
        /// Unacknowledged bytes per connection inside QUIC; small keeps stale data out of the transport.
        /// Allowed: 16KiB to 1GiB.
        send_window: ByteSize = ByteSize(1 << 20), env = "ASSIST_RELAY_SEND_WINDOW";
        /// UDP socket send and receive buffer (the kernel may cap it at net.core.[rw]mem_max).
        /// Allowed: 64KiB to 1GiB.
        udp_buffer: ByteSize = ByteSize(8 << 20), env = "ASSIST_RELAY_UDP_BUFFER";
        /// A connection silent for this long is closed by QUIC (keep-alives keep healthy ones open).
        /// Allowed: 1s to 1h.
        quic_idle_timeout: Dur = Dur(Duration::from_secs(15)), env = "ASSIST_RELAY_QUIC_IDLE_TIMEOUT";
    }
}

section! {
    /// `[accounts]`: logins, first-login setup and their limits.
    AccountsLayer => AccountsConfig {
        /// How long a login session token stays valid.
        /// Allowed: 1s to 30days.
        login_ttl: Dur = Dur(Duration::from_secs(12 * 3600)), env = "ASSIST_RELAY_LOGIN_TTL";
        /// Password of the first administrator (`admin`), made on first start with an empty database. Empty: a
        /// random one-time password, printed once in the log. It must be changed at first login either way.
        bootstrap_password: String = String::new(), env = "ASSIST_RELAY_BOOTSTRAP_PASSWORD";
        /// Shortest password accepted.
        /// Allowed: 8 to 128.
        min_password_len: usize = 10, env = "ASSIST_RELAY_MIN_PASSWORD_LEN";
        /// Failed logins or verifications per minute from one address (and per account).
        /// Allowed: above 0 (finite).
        auth_failures_per_min: f64 = 10.0, env = "ASSIST_RELAY_AUTH_FAILURES_PER_MIN";
        /// Burst allowance for failed logins or verifications.
        /// Allowed: 1 to 1000000.
        auth_failure_burst: u32 = 10, env = "ASSIST_RELAY_AUTH_FAILURE_BURST";
        /// How long a phone verification code stays valid.
        /// Allowed: 1s to 1day.
        verification_ttl: Dur = Dur(Duration::from_secs(600)), env = "ASSIST_RELAY_VERIFICATION_TTL";
        /// Wrong entries of one verification code before it is void.
        /// Allowed: 1 to 100.
        verification_attempts: u32 = 5, env = "ASSIST_RELAY_VERIFICATION_ATTEMPTS";
        /// Verification codes sent to one user per hour (burst 3): each may cost a text message.
        /// Allowed: above 0 (finite).
        verification_sends_per_hour: f64 = 6.0, env = "ASSIST_RELAY_VERIFICATION_SENDS_PER_HOUR";
    }
}

section! {
    /// `[tickets]`: the ticket store, numbering and upload limits.
    TicketsLayer => TicketsConfig {
        /// SQLite database file. Empty: `assist-relay.db` in the data directory.
        database: String = String::new(), env = "ASSIST_RELAY_DATABASE";
        /// UTC offset of the business day that ticket numbers are dated by (`+08:00`, `-05:00`, `Z`).
        time_zone: String = "+08:00".to_string(), env = "ASSIST_RELAY_TIME_ZONE";
        /// Largest single attachment (ticket or article); larger uploads are refused with 413.
        /// Allowed: 1KiB to 4GiB.
        max_attachment_bytes: ByteSize = ByteSize(10 << 20), env = "ASSIST_RELAY_MAX_ATTACHMENT_BYTES";
        /// Total attachment bytes per ticket or article.
        /// Allowed: 1KiB to 1024GiB, and at least max_attachment_bytes.
        max_owner_attachment_bytes: ByteSize = ByteSize(50 << 20), env = "ASSIST_RELAY_MAX_OWNER_ATTACHMENT_BYTES";
        /// Largest page a list returns.
        /// Allowed: 1 to 10000.
        max_page_size: u32 = 100, env = "ASSIST_RELAY_MAX_PAGE_SIZE";
    }
}

section! {
    /// `[meeting]`: meetings, their collaboration channels (also used by remote-assist sessions) and recording.
    MeetingLayer => MeetingSettings {
        /// Participants a meeting admits at once (counting those away and allowed to come back); past it guests
        /// (code entries) are refused, staff with a join token still enter.
        /// Allowed: 1 to 1000000.
        max_participants: usize = 100, env = "ASSIST_RELAY_MEETING_MAX_PARTICIPANTS", flag = "meeting-max-participants";
        /// Screen-share tracks one presenter may publish at once.
        /// Allowed: 1 to 16.
        max_tracks_per_presenter: u32 = 4, env = "ASSIST_RELAY_MEETING_MAX_TRACKS_PER_PRESENTER", flag = "meeting-max-tracks-per-presenter";
        /// Bytes of a track's current group (keyframe and following frames) held so late joiners start at once.
        /// Allowed: 64KiB to 1GiB.
        group_cache_bytes: ByteSize = ByteSize(4 << 20), env = "ASSIST_RELAY_MEETING_GROUP_CACHE_BYTES", flag = "meeting-group-cache-bytes";
        /// At most one keyframe request per track per this interval reaches its publisher.
        /// Allowed: 0s (every request passes) to 1m.
        keyframe_interval: Dur = Dur(Duration::from_millis(500)), env = "ASSIST_RELAY_MEETING_KEYFRAME_INTERVAL", flag = "meeting-keyframe-interval";
        /// A participant whose connection drops may come back within this period.
        /// Allowed: 1s to 1h.
        resume_grace: Dur = Dur(Duration::from_secs(60)), env = "ASSIST_RELAY_MEETING_RESUME_GRACE", flag = "meeting-resume-grace";
        /// A meeting nobody has been connected to for this long ends.
        /// Allowed: 1s to 30days.
        idle_timeout: Dur = Dur(Duration::from_secs(600)), env = "ASSIST_RELAY_MEETING_IDLE_TIMEOUT", flag = "meeting-idle-timeout";
        /// Scheduled length of a meeting when its creator gives none.
        /// Allowed: 1s to 30days, and at most max_duration.
        default_duration: Dur = Dur(Duration::from_secs(3600)), env = "ASSIST_RELAY_MEETING_DEFAULT_DURATION", flag = "meeting-default-duration";
        /// Longest scheduled length a meeting may have.
        /// Allowed: 1s to 30days.
        max_duration: Dur = Dur(Duration::from_secs(12 * 3600)), env = "ASSIST_RELAY_MEETING_MAX_DURATION", flag = "meeting-max-duration";
        /// Furthest ahead a meeting may be scheduled.
        /// Allowed: at most 3650days.
        max_schedule_ahead: Dur = Dur(Duration::from_secs(90 * 86_400)), env = "ASSIST_RELAY_MEETING_MAX_SCHEDULE_AHEAD", flag = "meeting-max-schedule-ahead";
        /// Whiteboard bytes held per room for late joiners; past it drawing is refused until a clear.
        /// Allowed: 4KiB to 1GiB.
        whiteboard_bytes: ByteSize = ByteSize(1 << 20), env = "ASSIST_RELAY_MEETING_WHITEBOARD_BYTES", flag = "meeting-whiteboard-bytes";
        /// Chat lines a meeting keeps for late joiners.
        /// Allowed: 0 (keep none) to 10000.
        chat_history: usize = 200, env = "ASSIST_RELAY_MEETING_CHAT_HISTORY", flag = "meeting-chat-history";
        /// Largest file a transfer may carry (meetings and remote-assist sessions).
        /// Allowed: 1B to 1024GiB.
        max_file_bytes: ByteSize = ByteSize(2 << 30), env = "ASSIST_RELAY_MEETING_MAX_FILE_BYTES", flag = "meeting-max-file-bytes";
        /// File transfers open at once per room.
        /// Allowed: 1 to 1000000.
        max_transfers: usize = 16, env = "ASSIST_RELAY_MEETING_MAX_TRANSFERS", flag = "meeting-max-transfers";
        /// Bytes one recording may write (all its files and its log); reaching it stops the recording.
        /// Allowed: at least 1MiB.
        recording_quota: ByteSize = ByteSize(4 << 30), env = "ASSIST_RELAY_MEETING_RECORDING_QUOTA", flag = "meeting-recording-quota";
        /// Frames and events queued for a recording's writer; past it a track skips to its next keyframe.
        /// Allowed: 1 to 1000000.
        recording_queue: usize = 2048, env = "ASSIST_RELAY_MEETING_RECORDING_QUEUE", flag = "meeting-recording-queue";
    }
}

section! {
    /// `[webrtc]`: browsers and other WebRTC peers (docs/PROTOCOL.md section 13), all on one UDP port.
    WebRtcLayer => WebRtcConfig {
        /// Accept WebRTC peers (`POST /api/v1/rtc`). `false`: that endpoint answers 503 `relay_disabled`.
        enabled: bool = true, env = "ASSIST_RELAY_WEBRTC_ENABLED", flag = "webrtc-enabled";
        /// UDP address every WebRTC peer talks to (ICE, DTLS, RTP, data channels).
        listen: SocketAddr = addr("0.0.0.0:4434"), env = "ASSIST_RELAY_WEBRTC_LISTEN", flag = "webrtc-listen";
        /// Address put in the ICE candidate: an IP (the bound port is used) or IP:port, e.g. the public address
        /// of a NAT in front of a private bind address. Empty: the bound address, or loopback (127.0.0.1, or
        /// ::1 for [::]) when bound to the unspecified address.
        advertise: String = String::new(), env = "ASSIST_RELAY_WEBRTC_ADVERTISE", flag = "webrtc-advertise";
        /// WebRTC peers connected at once; further offers answer 503 `busy`.
        /// Allowed: 1 to 1000000.
        max_peers: usize = 2000, env = "ASSIST_RELAY_WEBRTC_MAX_PEERS", flag = "webrtc-max-peers";
        /// Largest SDP offer accepted (413 `payload_too_large`).
        /// Allowed: 4KiB to 1MiB.
        max_offer_bytes: ByteSize = ByteSize(64 << 10), env = "ASSIST_RELAY_WEBRTC_MAX_OFFER_BYTES", flag = "webrtc-max-offer-bytes";
        /// Receiving video m-lines a peer may use at once (shares it can show); further ones are not used.
        /// Allowed: 1 to 64.
        max_recv_tracks: u32 = 8, env = "ASSIST_RELAY_WEBRTC_MAX_RECV_TRACKS", flag = "webrtc-max-recv-tracks";
        /// UDP datagrams queued for one peer's task; past it they are dropped (and counted), as a network would.
        /// Allowed: 1 to 1000000.
        packet_queue: usize = 512, env = "ASSIST_RELAY_WEBRTC_PACKET_QUEUE", flag = "webrtc-packet-queue";
        /// RTP packets kept per sending m-line to answer NACKs (retransmission); the memory a viewer costs is
        /// about this many packets of up to 1.2 KB each per m-line it receives on.
        /// Allowed: 1 to 1000000.
        nack_history: usize = 512, env = "ASSIST_RELAY_WEBRTC_NACK_HISTORY", flag = "webrtc-nack-history";
    }
}

/// Every section, as read from one source.
#[derive(Debug, Clone, Default, PartialEq, clap::Args, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigLayer {
    #[command(flatten)]
    pub server: ServerLayer,
    #[command(flatten)]
    pub tls: TlsLayer,
    #[command(flatten)]
    pub pairing: PairingLayer,
    #[command(flatten)]
    pub session: SessionLayer,
    #[command(flatten)]
    pub limits: LimitsLayer,
    #[command(flatten)]
    pub accounts: AccountsLayer,
    #[command(flatten)]
    pub tickets: TicketsLayer,
    #[command(flatten)]
    pub meeting: MeetingLayer,
    #[command(flatten)]
    pub webrtc: WebRtcLayer,
}

/// The resolved configuration the server runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub pairing: PairingConfig,
    pub session: SessionConfig,
    pub limits: LimitsConfig,
    pub accounts: AccountsConfig,
    pub tickets: TicketsConfig,
    pub meeting: MeetingSettings,
    pub webrtc: WebRtcConfig,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or bad values.
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    /// A value is outside its allowed range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ConfigLayer {
    /// `over`'s keys win.
    pub fn merge(self, over: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            server: self.server.merge(over.server),
            tls: self.tls.merge(over.tls),
            pairing: self.pairing.merge(over.pairing),
            session: self.session.merge(over.session),
            limits: self.limits.merge(over.limits),
            accounts: self.accounts.merge(over.accounts),
            tickets: self.tickets.merge(over.tickets),
            meeting: self.meeting.merge(over.meeting),
            webrtc: self.webrtc.merge(over.webrtc),
        }
    }

    pub fn defaults() -> ConfigLayer {
        ConfigLayer {
            server: ServerLayer::defaults(),
            tls: TlsLayer::defaults(),
            pairing: PairingLayer::defaults(),
            session: SessionLayer::defaults(),
            limits: LimitsLayer::defaults(),
            accounts: AccountsLayer::defaults(),
            tickets: TicketsLayer::defaults(),
            meeting: MeetingLayer::defaults(),
            webrtc: WebRtcLayer::defaults(),
        }
    }

    pub fn from_toml(text: &str, path: &Path) -> Result<ConfigLayer, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    pub fn from_file(path: &Path) -> Result<ConfigLayer, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_owned(),
            source: e,
        })?;
        ConfigLayer::from_toml(&text, path)
    }

    /// Fills defaults and checks ranges.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let cfg = Config {
            server: self.server.resolve(),
            tls: self.tls.resolve(),
            pairing: self.pairing.resolve(),
            session: self.session.resolve(),
            limits: self.limits.resolve(),
            accounts: self.accounts.resolve(),
            tickets: self.tickets.resolve(),
            meeting: self.meeting.resolve(),
            webrtc: self.webrtc.resolve(),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl Config {
    /// The defaults, with the data directory and every listener on loopback port 0 (for tests).
    pub fn for_tests(data_dir: &Path) -> Config {
        let mut layer = ConfigLayer::default();
        layer.server.data_dir = Some(data_dir.to_owned());
        layer.server.quic_listen = Some(addr("127.0.0.1:0"));
        layer.server.http_listen = Some(addr("127.0.0.1:0"));
        layer.server.metrics_listen = Some(addr("127.0.0.1:0"));
        layer.webrtc.listen = Some(addr("127.0.0.1:0"));
        layer.resolve().expect("test defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        layer: ConfigLayer,
    }

    const EXAMPLE: &str = include_str!("../config/assist-relay.example.toml");

    fn keys(v: &toml::Value, prefix: &str, out: &mut Vec<String>) {
        if let toml::Value::Table(t) = v {
            for (k, v) in t {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_table() {
                    keys(v, &name, out);
                } else {
                    out.push(name);
                }
            }
        }
    }

    #[test]
    fn example_file_lists_every_key_with_its_default() {
        let example = ConfigLayer::from_toml(EXAMPLE, Path::new("example")).unwrap();
        assert_eq!(
            example,
            ConfigLayer::defaults(),
            "example values must be the defaults"
        );
        let (mut want, mut got) = (Vec::new(), Vec::new());
        keys(
            &toml::Value::try_from(ConfigLayer::defaults()).unwrap(),
            "",
            &mut want,
        );
        keys(
            &toml::Value::Table(toml::from_str(EXAMPLE).unwrap()),
            "",
            &mut got,
        );
        want.sort();
        got.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn every_flag_has_its_env_var() {
        use clap::CommandFactory;
        for arg in Cli::command().get_arguments() {
            let long = arg.get_long().expect("every key is a long flag");
            let env = arg
                .get_env()
                .expect("every key has an env var")
                .to_string_lossy()
                .to_string();
            assert_eq!(
                env,
                format!("ASSIST_RELAY_{}", long.replace('-', "_").to_uppercase())
            );
        }
    }

    #[test]
    fn flags_win_over_file_and_file_over_defaults() {
        let file = ConfigLayer::from_toml(
            "[server]\nhttp_listen = \"127.0.0.1:1\"\nquic_listen = \"127.0.0.1:2\"\n[pairing]\ncode_ttl = \"5m\"\n",
            Path::new("f"),
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "x",
            "--quic-listen",
            "127.0.0.1:3",
            "--max-frame-bytes",
            "1MiB",
        ])
        .unwrap();
        let cfg = file.merge(cli.layer).resolve().unwrap();
        assert_eq!(cfg.server.http_listen, addr("127.0.0.1:1"));
        assert_eq!(cfg.server.quic_listen, addr("127.0.0.1:3"));
        assert_eq!(cfg.pairing.code_ttl, Dur(Duration::from_secs(300)));
        assert_eq!(cfg.limits.max_frame_bytes, ByteSize(1 << 20));
        assert_eq!(cfg.session.resume_grace, Dur(Duration::from_secs(30)));
    }

    #[test]
    fn bad_values_get_clear_errors() {
        let e = ConfigLayer::from_toml("[server]\nnope = 1\n", Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field") && e.contains("nope"), "{e}");
        let e = ConfigLayer::from_toml("[pairing]\ncode_ttl = \"ten\"\n", Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid duration"), "{e}");
        let mut l = ConfigLayer::default();
        l.pairing.code_digits = Some(4);
        assert!(l.resolve().unwrap_err().to_string().contains("code_digits"));
        let mut l = ConfigLayer::default();
        l.pairing.code_ttl = Some(Dur(Duration::ZERO));
        assert!(l
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("pairing.code_ttl must be at least 1s"));
        assert_eq!("4MiB".parse::<ByteSize>(), Ok(ByteSize(4 << 20)));
        assert!("4MB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(64 << 10).to_string(), "64KiB");
    }

    /// The "Allowed:" line of a key in the example file, from the comment block above `<field> = ` in its
    /// `[section]`.
    fn allowed_in_example(key: &str) -> Option<String> {
        let (section, field) = key.split_once('.')?;
        let body = EXAMPLE.split(&format!("[{section}]\n")).nth(1)?;
        let lines: Vec<&str> = body.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.starts_with(&format!("{field} = ")))?;
        lines[..at]
            .iter()
            .rev()
            .take_while(|l| l.starts_with('#'))
            .find_map(|l| l.strip_prefix("# Allowed: "))
            .map(str::to_string)
    }

    /// Guards against the documented bounds drifting from the checked ones: every range-checked key states
    /// its bounds in the example file, and `serve --help` says the same.
    #[test]
    fn every_range_is_stated_where_its_key_is_documented() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let ranges = ConfigLayer::default().resolve().unwrap().ranges();
        assert!(ranges.len() > 50);
        let mut wrong = Vec::new();
        for r in ranges {
            let Some(allowed) = allowed_in_example(r.key) else {
                wrong.push(format!("{}: no `# Allowed:` line in the example", r.key));
                continue;
            };
            let words: Vec<&str> = allowed
                .split(|c: char| c.is_whitespace() || c == ',' || c == '.')
                .collect();
            let max_stated = match &r.max {
                Some(max) => words.contains(&max.as_str()),
                None => allowed.starts_with("at least"),
            };
            let min_stated = words.contains(&r.min.as_str()) || allowed.starts_with("at most");
            if !(max_stated && min_stated) {
                wrong.push(format!(
                    "{}: {allowed:?} for {} to {:?}",
                    r.key, r.min, r.max
                ));
            }
            // The flag's help (its doc comment) carries the same line.
            let (section, field) = r.key.split_once('.').unwrap();
            let env = [
                format!("ASSIST_RELAY_{}", field.to_uppercase()),
                format!("ASSIST_RELAY_{section}_{field}").to_uppercase(),
            ];
            let arg = cmd
                .get_arguments()
                .find(|a| {
                    a.get_env()
                        .is_some_and(|e| env.iter().any(|n| e == n.as_str()))
                })
                .unwrap_or_else(|| panic!("{}: no flag", r.key));
            let help = arg.get_long_help().or(arg.get_help()).unwrap().to_string();
            // clap drops a help text's final period.
            if !help.contains(&format!("Allowed: {}", allowed.trim_end_matches('.'))) {
                wrong.push(format!("{}: --help {help:?} lacks {allowed:?}", r.key));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn a_duration_is_shown_as_it_is_typed() {
        for (d, shown) in [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(31 * 86_400), "31days"),
            (Duration::from_secs(86_400 + 7_200), "1day 2h"),
            (Duration::from_millis(1_500), "1s 500ms"),
            (Duration::from_micros(10), "10us"),
            (Duration::from_secs(3_650 * 86_400), "3650days"),
        ] {
            assert_eq!(Dur(d).to_string(), shown);
            assert_eq!(shown.parse::<Dur>(), Ok(Dur(d)), "{shown} reads back");
        }
    }
}
