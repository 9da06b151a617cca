//! The checks a resolved configuration passes before the server uses it: ranges, the address browsers are
//! given, and environment variables that were renamed.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Config, ConfigError};

impl Config {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !(6..=18).contains(&self.pairing.code_digits) {
            return bad(format!(
                "pairing.code_digits must be 6..=18, not {}",
                self.pairing.code_digits
            ));
        }
        if self.limits.max_frame_bytes.0 == 0 || self.limits.max_frame_bytes.0 > u64::from(u32::MAX)
        {
            return bad("limits.max_frame_bytes must be between 1 byte and 4GiB".into());
        }
        if self.limits.max_message_bytes.0 < 1024 || self.limits.max_message_bytes.0 > 16 << 20 {
            return bad("limits.max_message_bytes must be between 1KiB and 16MiB".into());
        }
        if self.limits.control_queue == 0 || self.limits.max_connections == 0 {
            return bad(
                "limits.control_queue and limits.max_connections must be at least 1".into(),
            );
        }
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
            if v.is_nan() || v <= 0.0 {
                return bad(format!("{name} must be positive, not {v}"));
            }
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
        for (name, v) in [
            ("webrtc.max_peers", w.max_peers),
            ("webrtc.packet_queue", w.packet_queue),
            ("webrtc.nack_history", w.nack_history),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        if !(1..=64).contains(&w.max_recv_tracks) {
            return bad(format!(
                "webrtc.max_recv_tracks must be 1..=64, not {}",
                w.max_recv_tracks
            ));
        }
        if let Err(why) = check_advertise(&w.advertise, w.listen) {
            return bad(format!("webrtc.advertise {:?}: {why}", w.advertise));
        }
        let m = &self.meeting;
        if !(1..=crate::core::TRACKS_PER_PARTICIPANT).contains(&m.max_tracks_per_presenter) {
            return bad(format!(
                "meeting.max_tracks_per_presenter must be 1..=16, not {}",
                m.max_tracks_per_presenter
            ));
        }
        for (name, v) in [
            ("meeting.max_participants", m.max_participants),
            ("meeting.max_transfers", m.max_transfers),
            ("meeting.recording_queue", m.recording_queue),
        ] {
            if v == 0 {
                return bad(format!("{name} must be at least 1"));
            }
        }
        if m.default_duration.0 > m.max_duration.0 {
            return bad(format!(
                "meeting.default_duration ({}) must not exceed meeting.max_duration ({})",
                m.default_duration, m.max_duration
            ));
        }
        if crate::store::parse_utc_offset(&self.tickets.time_zone).is_none() {
            return bad(format!(
                "tickets.time_zone must be a UTC offset like +08:00, not {:?}",
                self.tickets.time_zone
            ));
        }
        if self.accounts.min_password_len < 8 {
            return bad(format!(
                "accounts.min_password_len must be at least 8, not {}",
                self.accounts.min_password_len
            ));
        }
        for (name, d) in [
            ("pairing.code_ttl", self.pairing.code_ttl),
            ("session.idle_timeout", self.session.idle_timeout),
            ("session.max_duration", self.session.max_duration),
            ("meeting.resume_grace", self.meeting.resume_grace),
            ("meeting.idle_timeout", self.meeting.idle_timeout),
            ("meeting.default_duration", self.meeting.default_duration),
            ("meeting.max_duration", self.meeting.max_duration),
            ("session.hello_timeout", self.session.hello_timeout),
            ("limits.quic_idle_timeout", self.limits.quic_idle_timeout),
            (
                "limits.http_header_timeout",
                self.limits.http_header_timeout,
            ),
            ("accounts.login_ttl", self.accounts.login_ttl),
            ("accounts.verification_ttl", self.accounts.verification_ttl),
        ] {
            if d.0 < Duration::from_secs(1) {
                return bad(format!("{name} must be at least 1s, not {d}"));
            }
        }
        if self.server.shutdown_grace.0 > Duration::from_secs(600) {
            return bad("server.shutdown_grace must be at most 10m".into());
        }
        Ok(())
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
}
