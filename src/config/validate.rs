//! The checks a resolved configuration passes before the server uses it: ranges, the address browsers are
//! given, and environment variables that were renamed.

use std::net::SocketAddr;

use super::{ByteSize, Config, ConfigError, Dur};

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        for (name, v) in [
            ("session.input_rate", self.session.input_rate),
            (
                "pairing.global_failures_per_sec",
                self.pairing.global_failures_per_sec,
            ),
            (
                "pairing.address_failures_per_min",
                self.pairing.address_failures_per_min,
            ),
            (
                "accounts.auth_failures_per_min",
                self.accounts.auth_failures_per_min,
            ),
            (
                "accounts.verification_sends_per_hour",
                self.accounts.verification_sends_per_hour,
            ),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return bad(format!("{name} must be positive and finite, not {v}"));
            }
        }
        if let Some(why) = self.ranges().iter().find_map(Range::refused) {
            return bad(why);
        }
        if let Err(why) = check_host_port(&self.server.quic_advertise) {
            return bad(format!(
                "server.quic_advertise {:?}: {why}",
                self.server.quic_advertise
            ));
        }
        if self.tls.cert_file.is_empty() != self.tls.key_file.is_empty() {
            return bad(
                "tls.cert_file and tls.key_file go together: set both, or neither for the self-signed certificate"
                    .into(),
            );
        }
        let w = &self.webrtc;
        if let Err(why) = check_advertise(&w.advertise, w.listen) {
            return bad(format!("webrtc.advertise {:?}: {why}", w.advertise));
        }
        let m = &self.meeting;
        if m.default_duration.0 > m.max_duration.0 {
            return bad(format!(
                "meeting.default_duration ({}) must not exceed meeting.max_duration ({})",
                m.default_duration, m.max_duration
            ));
        }
        let t = &self.tickets;
        if t.max_owner_attachment_bytes.0 < t.max_attachment_bytes.0 {
            return bad(format!(
                "tickets.max_owner_attachment_bytes ({}) must not be below tickets.max_attachment_bytes ({})",
                t.max_owner_attachment_bytes, t.max_attachment_bytes
            ));
        }
        if crate::store::parse_utc_offset(&t.time_zone).is_none() {
            return bad(format!(
                "tickets.time_zone must be a UTC offset like +08:00, not {:?}",
                t.time_zone
            ));
        }
        Ok(())
    }

    /// Every range-checked setting with its value and bounds. The "Allowed:" line of each key, in
    /// `config/assist-relay.example.toml` and in `serve --help`, states the same bounds (a test checks).
    pub(super) fn ranges(&self) -> Vec<Range> {
        let mut all = self.count_ranges();
        all.extend(self.size_ranges());
        all.extend(self.duration_ranges());
        all
    }

    /// Counts: at least `min` (0 would refuse everything, or make no sense), at most `max` where more is
    /// absurd and [`COUNT_MAX`] otherwise.
    fn count_ranges(&self) -> Vec<Range> {
        let (p, s, l, a, m, w) = (
            &self.pairing,
            &self.session,
            &self.limits,
            &self.accounts,
            &self.meeting,
            &self.webrtc,
        );
        let n = |v: usize| v as u64;
        [
            ("pairing.code_digits", p.code_digits.into(), 6, Some(18)),
            ("pairing.max_live_codes", n(p.max_live_codes), 1, None),
            // 0: back off from the first failure.
            ("pairing.backoff_after", p.backoff_after.into(), 0, None),
            (
                "pairing.global_failure_burst",
                p.global_failure_burst.into(),
                1,
                None,
            ),
            (
                "pairing.address_failure_burst",
                p.address_failure_burst.into(),
                1,
                None,
            ),
            ("session.input_burst", s.input_burst.into(), 1, None),
            ("limits.max_connections", n(l.max_connections), 1, None),
            (
                "limits.max_connections_per_address",
                n(l.max_connections_per_address),
                1,
                None,
            ),
            (
                "limits.max_sessions_per_address",
                n(l.max_sessions_per_address),
                1,
                None,
            ),
            (
                "limits.max_http_connections",
                n(l.max_http_connections),
                1,
                None,
            ),
            (
                "limits.max_http_connections_per_address",
                n(l.max_http_connections_per_address),
                1,
                None,
            ),
            (
                "limits.max_streams_per_connection",
                l.max_streams_per_connection.into(),
                1,
                Some(10_000),
            ),
            ("limits.control_queue", n(l.control_queue), 1, None),
            (
                "accounts.min_password_len",
                n(a.min_password_len),
                8,
                Some(128),
            ),
            (
                "accounts.auth_failure_burst",
                a.auth_failure_burst.into(),
                1,
                None,
            ),
            (
                "accounts.verification_attempts",
                a.verification_attempts.into(),
                1,
                Some(100),
            ),
            (
                "tickets.max_page_size",
                self.tickets.max_page_size.into(),
                1,
                Some(10_000),
            ),
            ("meeting.max_participants", n(m.max_participants), 1, None),
            (
                "meeting.max_tracks_per_presenter",
                m.max_tracks_per_presenter.into(),
                1,
                Some(crate::core::TRACKS_PER_PARTICIPANT.into()),
            ),
            ("meeting.chat_history", n(m.chat_history), 0, Some(10_000)),
            ("meeting.max_transfers", n(m.max_transfers), 1, None),
            ("meeting.recording_queue", n(m.recording_queue), 1, None),
            ("webrtc.max_peers", n(w.max_peers), 1, None),
            (
                "webrtc.max_recv_tracks",
                w.max_recv_tracks.into(),
                1,
                Some(64),
            ),
            ("webrtc.packet_queue", n(w.packet_queue), 1, None),
            ("webrtc.nack_history", n(w.nack_history), 1, None),
        ]
        .into_iter()
        // Queues, bursts and connection counts are sized in memory and in tokio's semaphores: no count
        // is unbounded.
        .map(|(key, v, min, max)| Range::new(key, v, min, Some(max.unwrap_or(COUNT_MAX))))
        .collect()
    }

    /// Byte sizes, between the bounds written in `config/assist-relay.example.toml`.
    fn size_ranges(&self) -> Vec<Range> {
        let (l, t, m) = (&self.limits, &self.tickets, &self.meeting);
        [
            (
                "limits.max_frame_bytes",
                l.max_frame_bytes,
                "16KiB",
                Some("1GiB"),
            ),
            (
                "limits.max_message_bytes",
                l.max_message_bytes,
                "1KiB",
                Some("16MiB"),
            ),
            (
                "limits.backlog_max_bytes",
                l.backlog_max_bytes,
                "64KiB",
                Some("4GiB"),
            ),
            ("limits.send_window", l.send_window, "16KiB", Some("1GiB")),
            ("limits.udp_buffer", l.udp_buffer, "64KiB", Some("1GiB")),
            (
                "tickets.max_attachment_bytes",
                t.max_attachment_bytes,
                "1KiB",
                Some("4GiB"),
            ),
            (
                "tickets.max_owner_attachment_bytes",
                t.max_owner_attachment_bytes,
                "1KiB",
                Some("1024GiB"),
            ),
            (
                "meeting.group_cache_bytes",
                m.group_cache_bytes,
                "64KiB",
                Some("1GiB"),
            ),
            (
                "meeting.whiteboard_bytes",
                m.whiteboard_bytes,
                "4KiB",
                Some("1GiB"),
            ),
            (
                "meeting.max_file_bytes",
                m.max_file_bytes,
                "1B",
                Some("1024GiB"),
            ),
            ("meeting.recording_quota", m.recording_quota, "1MiB", None),
            (
                "webrtc.max_offer_bytes",
                self.webrtc.max_offer_bytes,
                "4KiB",
                Some("1MiB"),
            ),
        ]
        .into_iter()
        .map(|(key, v, min, max)| {
            let bound = |b: &str| b.parse::<ByteSize>().expect("a valid bound");
            Range::new(key, v, bound(min), max.map(bound))
        })
        .collect()
    }

    /// Durations: long enough to be of use, short enough that deadlines stay meaningful (and representable).
    fn duration_ranges(&self) -> Vec<Range> {
        let (p, s, l, a, m) = (
            &self.pairing,
            &self.session,
            &self.limits,
            &self.accounts,
            &self.meeting,
        );
        [
            (
                "server.shutdown_grace",
                self.server.shutdown_grace,
                "0s",
                "10m",
            ),
            ("pairing.code_ttl", p.code_ttl, "1s", "7days"),
            ("pairing.backoff_max", p.backoff_max, "1s", "1day"),
            ("session.idle_timeout", s.idle_timeout, "1s", "30days"),
            ("session.max_duration", s.max_duration, "1s", "30days"),
            ("session.resume_grace", s.resume_grace, "1s", "1h"),
            ("session.keyframe_interval", s.keyframe_interval, "0s", "1m"),
            ("session.hello_timeout", s.hello_timeout, "1s", "10m"),
            (
                "limits.http_header_timeout",
                l.http_header_timeout,
                "1s",
                "10m",
            ),
            ("limits.backlog_max_age", l.backlog_max_age, "10ms", "1m"),
            ("limits.quic_idle_timeout", l.quic_idle_timeout, "1s", "1h"),
            ("accounts.login_ttl", a.login_ttl, "1s", "30days"),
            (
                "accounts.verification_ttl",
                a.verification_ttl,
                "1s",
                "1day",
            ),
            ("meeting.keyframe_interval", m.keyframe_interval, "0s", "1m"),
            ("meeting.resume_grace", m.resume_grace, "1s", "1h"),
            ("meeting.idle_timeout", m.idle_timeout, "1s", "30days"),
            (
                "meeting.default_duration",
                m.default_duration,
                "1s",
                "30days",
            ),
            ("meeting.max_duration", m.max_duration, "1s", "30days"),
            (
                "meeting.max_schedule_ahead",
                m.max_schedule_ahead,
                "0s",
                "3650days",
            ),
        ]
        .into_iter()
        .map(|(key, v, min, max)| {
            let bound = |b: &str| b.parse::<Dur>().expect("a valid bound");
            Range::new(key, v, bound(min), Some(bound(max)))
        })
        .collect()
    }
}

/// The largest count any setting takes (queues, bursts, connections, peers).
pub const COUNT_MAX: u64 = 1_000_000;

/// One range-checked setting: its bounds as they are written, and its value if that is out of them.
pub(super) struct Range {
    pub(super) key: &'static str,
    pub(super) min: String,
    /// `None`: no upper bound.
    pub(super) max: Option<String>,
    /// The value, when it is below `min` (`Below`) or above `max`.
    out: Option<(Side, String)>,
}

enum Side {
    Below,
    Above,
}

impl Range {
    fn new<T: PartialOrd + std::fmt::Display>(
        key: &'static str,
        v: T,
        min: T,
        max: Option<T>,
    ) -> Range {
        let out = if v < min {
            Some((Side::Below, v.to_string()))
        } else if max.as_ref().is_some_and(|max| v > *max) {
            Some((Side::Above, v.to_string()))
        } else {
            None
        };
        Range {
            key,
            min: min.to_string(),
            max: max.map(|m| m.to_string()),
            out,
        }
    }

    /// Why the value is refused, naming the key and the bound it crosses.
    fn refused(&self) -> Option<String> {
        let (key, (side, v)) = (self.key, self.out.as_ref()?);
        Some(match side {
            Side::Below => format!("{key} must be at least {}, not {v}", self.min),
            Side::Above => format!("{key} must be at most {}, not {v}", self.max.as_deref()?),
        })
    }
}

/// Environment variables that named `[meeting]` keys before every `[meeting]` key carried its section.
const RENAMED_ENV: [&str; 6] = [
    "WHITEBOARD_BYTES",
    "CHAT_HISTORY",
    "MAX_FILE_BYTES",
    "MAX_TRANSFERS",
    "RECORDING_QUOTA",
    "RECORDING_QUEUE",
];

/// Refuses an `ASSIST_RELAY_*` variable in `set` that is none of `known` (a typo, or a renamed setting), so
/// a deployment does not lose a setting without a word.
pub fn check_env(set: impl IntoIterator<Item = String>, known: &[&str]) -> Result<(), ConfigError> {
    for name in set {
        let Some(key) = name.strip_prefix("ASSIST_RELAY_") else {
            continue;
        };
        if known.contains(&name.as_str()) {
            continue;
        }
        return Err(ConfigError::Invalid(if RENAMED_ENV.contains(&key) {
            format!(
                "{name} is now ASSIST_RELAY_MEETING_{key} (meeting.{}): rename it",
                key.to_ascii_lowercase()
            )
        } else {
            format!("unknown environment variable {name} (`assist-relay serve --help` lists each setting's)")
        }));
    }
    Ok(())
}

/// `server.quic_advertise` is handed to clients as the relay's address: empty (derived from the bound port),
/// or `host:port` with a host name or IP (IPv6 in brackets) and a non-zero port.
fn check_host_port(advertise: &str) -> Result<(), &'static str> {
    if advertise.is_empty() || advertise.parse::<SocketAddr>().is_ok_and(|a| a.port() != 0) {
        return Ok(());
    }
    let Some((host, port)) = advertise.rsplit_once(':') else {
        return Err("must be host:port");
    };
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err("the port must be 1..=65535");
    }
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !name_ok {
        return Err("the host must be a DNS name or an IP address (IPv6 in brackets)");
    }
    Ok(())
}

/// `webrtc.advertise` must name an address a browser can send to: empty (derived from the listen
/// address), or a unicast IP (with an optional non-zero port) of the listen address's family.
fn check_advertise(advertise: &str, listen: SocketAddr) -> Result<(), &'static str> {
    if advertise.is_empty() {
        return Ok(());
    }
    let (ip, port) = match advertise.parse::<SocketAddr>() {
        Ok(a) => (a.ip(), Some(a.port())),
        Err(_) => match advertise.parse::<std::net::IpAddr>() {
            Ok(ip) => (ip, None),
            Err(_) => return Err("must be an IP address or IP:port"),
        },
    };
    // ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
    let ip = ip.to_canonical();
    // 0.0.0.0/8 ("this network") and 240.0.0.0/4 (reserved, broadcast included) reach nobody.
    let reserved =
        matches!(ip, std::net::IpAddr::V4(v4) if v4.octets()[0] == 0 || v4.octets()[0] >= 240);
    if ip.is_unspecified() || ip.is_multicast() || reserved {
        return Err("must be a unicast address peers can send to \
             (not unspecified, multicast, broadcast or reserved)");
    }
    if port == Some(0) {
        return Err("the port must not be 0");
    }
    // A dual-stack listen address ([::]) serves both families; any other serves its own.
    let dual = listen.ip().is_unspecified() && listen.is_ipv6();
    if !dual && ip.is_ipv4() != listen.is_ipv4() {
        return Err("must be of the same address family as webrtc.listen");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_renamed_variables_are_refused() {
        let known = ["ASSIST_RELAY_CODE_TTL", "ASSIST_RELAY_MEETING_CHAT_HISTORY"];
        let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(check_env(set(&["PATH", "ASSIST_RELAY_CODE_TTL"]), &known).is_ok());
        let e = check_env(set(&["ASSIST_RELAY_CODE_TTLL"]), &known)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown environment variable ASSIST_RELAY_CODE_TTLL"),
            "{e}"
        );
        let e = check_env(set(&["ASSIST_RELAY_CHAT_HISTORY"]), &known)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is now ASSIST_RELAY_MEETING_CHAT_HISTORY"),
            "{e}"
        );
    }

    #[test]
    fn the_quic_address_given_to_clients_is_host_and_port() {
        for ok in [
            "",
            "relay.example.com:4433",
            "203.0.113.7:443",
            "[2001:db8::1]:4433",
            "relay-1:4433",
        ] {
            assert_eq!(check_host_port(ok), Ok(()), "{ok}");
        }
        for bad in [
            "relay.example.com",
            "not valid at all:xx",
            "relay.example.com:0",
            "1.2.3.4:0",
            ":4433",
            "bad host:4433",
            "a..b:4433",
            "2001:db8::1",
        ] {
            assert!(check_host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_webrtc_candidate_must_be_reachable() {
        let v4: SocketAddr = "0.0.0.0:4434".parse().unwrap();
        let v6_any: SocketAddr = "[::]:4434".parse().unwrap();
        let v6: SocketAddr = "[::1]:4434".parse().unwrap();
        for (advertise, listen) in [
            ("", v4),
            ("203.0.113.7", v4),
            ("203.0.113.7:443", v4),
            ("2001:db8::1", v6_any),
            ("203.0.113.7", v6_any),
            ("[::1]:5000", v6),
        ] {
            assert_eq!(check_advertise(advertise, listen), Ok(()), "{advertise}");
        }
        for (advertise, listen) in [
            ("example.com", v4),
            ("0.0.0.0", v4),
            ("::", v6_any),
            ("224.0.0.1", v4),
            ("255.255.255.255", v4),
            ("1.2.3.4:0", v4),
            ("::ffff:0.0.0.0", v6),
            ("::ffff:224.0.0.1", v6_any),
            ("0.0.0.1", v4),
            ("240.0.0.1", v4),
            ("::ffff:127.0.0.1", v6),
            ("::1", v4),
            ("127.0.0.1", v6),
        ] {
            assert!(check_advertise(advertise, listen).is_err(), "{advertise}");
        }
    }

    #[test]
    fn zero_and_absurd_limits_are_refused_by_name() {
        use crate::config::ConfigLayer;
        use std::time::Duration;
        let size = |s: &str| Some(s.parse::<ByteSize>().unwrap());
        let dur = |s: &str| Some(s.parse::<Dur>().unwrap());
        type Tweak = fn(&mut ConfigLayer);
        let cases: [(Tweak, &str); 25] = [
            (
                |l| l.pairing.code_digits = Some(3),
                "pairing.code_digits must be at least 6, not 3",
            ),
            (
                |l| l.pairing.backoff_after = Some(4_000_000_000),
                "pairing.backoff_after must be at most 1000000",
            ),
            (
                |l| l.webrtc.max_offer_bytes = Some(ByteSize(0)),
                "webrtc.max_offer_bytes must be at least 4KiB, not 0B",
            ),
            (
                |l| l.webrtc.max_offer_bytes = Some(ByteSize(2 << 20)),
                "webrtc.max_offer_bytes must be at most 1MiB, not 2MiB",
            ),
            (
                |l| l.meeting.recording_quota = Some(ByteSize(0)),
                "meeting.recording_quota must be at least 1MiB, not 0B",
            ),
            (
                |l| l.meeting.max_file_bytes = Some(ByteSize(0)),
                "meeting.max_file_bytes must be at least 1B",
            ),
            (
                |l| l.meeting.whiteboard_bytes = Some(ByteSize(100)),
                "meeting.whiteboard_bytes must be at least 4KiB",
            ),
            (
                |l| l.meeting.group_cache_bytes = Some(ByteSize(0)),
                "meeting.group_cache_bytes must be at least 64KiB",
            ),
            (
                |l| l.limits.max_frame_bytes = Some(ByteSize(1)),
                "limits.max_frame_bytes must be at least 16KiB",
            ),
            (
                |l| l.limits.udp_buffer = Some(ByteSize(2 << 30)),
                "limits.udp_buffer must be at most 1GiB, not 2GiB",
            ),
            (
                |l| l.tickets.max_attachment_bytes = Some(ByteSize(0)),
                "tickets.max_attachment_bytes must be at least 1KiB",
            ),
            (
                |l| l.tickets.max_owner_attachment_bytes = Some(ByteSize(1 << 20)),
                "tickets.max_owner_attachment_bytes (1MiB) must not be below tickets.max_attachment_bytes (10MiB)",
            ),
            (
                |l| l.limits.max_sessions_per_address = Some(0),
                "limits.max_sessions_per_address must be at least 1, not 0",
            ),
            (
                |l| l.pairing.max_live_codes = Some(0),
                "pairing.max_live_codes must be at least 1",
            ),
            (
                |l| l.session.input_burst = Some(0),
                "session.input_burst must be at least 1",
            ),
            (
                |l| l.tickets.max_page_size = Some(0),
                "tickets.max_page_size must be at least 1",
            ),
            (
                |l| l.meeting.chat_history = Some(1_000_000),
                "meeting.chat_history must be at most 10000",
            ),
            (
                |l| l.webrtc.max_recv_tracks = Some(65),
                "webrtc.max_recv_tracks must be at most 64, not 65",
            ),
            (
                |l| l.webrtc.packet_queue = Some(usize::MAX),
                "webrtc.packet_queue must be at most 1000000, not 18446744073709551615",
            ),
            (
                |l| l.limits.control_queue = Some(1_000_001),
                "limits.control_queue must be at most 1000000",
            ),
            (
                |l| l.meeting.recording_queue = Some(usize::MAX),
                "meeting.recording_queue must be at most 1000000",
            ),
            (
                |l| l.pairing.global_failures_per_sec = Some(f64::INFINITY),
                "pairing.global_failures_per_sec must be positive and finite, not inf",
            ),
            (
                |l| l.session.max_duration = Some(Dur(Duration::from_secs(31 * 86_400))),
                "session.max_duration must be at most 30days, not 31days",
            ),
            (
                |l| l.session.resume_grace = Some(Dur(Duration::ZERO)),
                "session.resume_grace must be at least 1s, not 0s",
            ),
            (
                |l| l.limits.backlog_max_age = Some(Dur(Duration::from_secs(3600))),
                "limits.backlog_max_age must be at most 1m, not 1h",
            ),
        ];
        for (tweak, want) in cases {
            let mut l = ConfigLayer::default();
            tweak(&mut l);
            let e = l.resolve().unwrap_err().to_string();
            assert!(e.contains(want), "{want}: {e}");
        }
        // Far past any sensible value is refused too; the bounds themselves are accepted.
        let mut l = ConfigLayer::default();
        l.pairing.code_ttl = dur("100000days");
        assert!(l
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("pairing.code_ttl must be at most 7days"));
        let mut l = ConfigLayer::default();
        l.webrtc.max_offer_bytes = size("4KiB");
        l.meeting.recording_quota = size("1MiB");
        l.meeting.keyframe_interval = dur("0s");
        l.meeting.chat_history = Some(0);
        l.limits.udp_buffer = size("1GiB");
        l.pairing.code_ttl = dur("7days");
        l.webrtc.packet_queue = Some(COUNT_MAX as usize);
        assert!(l.resolve().is_ok());
    }
}
