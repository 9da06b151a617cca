//! The offer and the answer (docs/PROTOCOL.md section 13.2): str0m answers as an ICE-lite peer with the
//! relay's one candidate, and the answer's video m-lines are sorted into those the peer publishes on and
//! those it receives on; the resume token the room's first message carries goes back with the answer.

use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::media::Mid;
use str0m::{Candidate, IceCreds, Rtc, RtcConfig};

use super::{media, RtcConnectError, WebRtc};
use crate::protocol::{ErrorCode, Hello, ServerMsg};
use crate::relay::ControlOut;

/// How often str0m reports RTP statistics (packets, bytes, NACKs), which feed the metrics.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// An accepted offer: the peer's `Rtc`, its answer, and its video m-lines by use.
pub(super) struct Negotiated {
    pub(super) rtc: Rtc,
    pub(super) answer: String,
    /// m-lines the peer sends on, in order: local track 0, 1, ...
    pub(super) publish: Vec<Mid>,
    /// m-lines the peer receives on.
    pub(super) receive: Vec<Mid>,
}

/// The resume token in the room's first message to a peer (WELCOME or MEETING_WELCOME, alone or first
/// in a batch).
pub(super) fn resume_token_of(first: &ControlOut) -> Option<String> {
    let msg = match first {
        ControlOut::Msg(m) => m,
        ControlOut::Batch(b) => b.first()?,
        ControlOut::Close(..) => return None,
    };
    match msg {
        ServerMsg::Welcome { resume_token, .. } => Some(resume_token.clone()),
        ServerMsg::MeetingWelcome(w) => Some(w.resume_token.clone()),
        _ => None,
    }
}

/// The body is an SDP offer at all (RFC 8866: its first line is `v=0`), checked before anything else
/// looks into it.
pub(super) fn check_is_sdp(offer: &str) -> Result<(), RtcConnectError> {
    if offer.trim().is_empty() {
        return Err(RtcConnectError::Offer(
            "not an SDP offer: the body is empty (an SDP offer starts with v=0, RFC 8866)".into(),
        ));
    }
    let first = offer.trim_start().lines().next().unwrap_or_default();
    if first.trim_end() != "v=0" {
        return Err(RtcConnectError::Offer(
            "not an SDP offer: it must start with v=0 (RFC 8866)".into(),
        ));
    }
    Ok(())
}

/// The offer's `a=fingerprint` lines (RFC 8122), which str0m skips when it cannot read them (and then
/// reports none): when there are some, one must be a fingerprint the DTLS handshake can verify, sha-256 (or
/// sha-1) with its digest's length in hex bytes. None at all is left to str0m.
pub(super) fn check_fingerprint(offer: &str) -> Result<(), RtcConnectError> {
    let mut first = None;
    for value in offer
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=fingerprint:"))
    {
        if verifiable_fingerprint(value) {
            return Ok(());
        }
        first.get_or_insert(value);
    }
    let Some(value) = first else { return Ok(()) };
    let mut shown: String = value.chars().take(100).collect();
    if shown.len() < value.len() {
        shown.push('…');
    }
    Err(RtcConnectError::Offer(format!(
        "a=fingerprint is malformed: expected sha-256 followed by 32 colon-separated hex bytes, not \
         `{shown}`"
    )))
}

/// `sha-256` and 32 hex bytes, or `sha-1` and 20 (the hash functions str0m verifies), colon-separated.
fn verifiable_fingerprint(value: &str) -> bool {
    let Some((hash, hex)) = value.split_once(' ') else {
        return false;
    };
    let len = if hash.eq_ignore_ascii_case("sha-256") {
        32
    } else if hash.eq_ignore_ascii_case("sha-1") {
        20
    } else {
        return false;
    };
    let bytes: Vec<&str> = hex.split(':').collect();
    bytes.len() == len
        && bytes
            .iter()
            .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// Answers the offer; m-lines with no usable codec are left unused, and an offer without the video its
/// peer needs is refused ([`media::check_codecs`]), all before the code or token is spent.
pub(super) fn negotiate(
    ep: &WebRtc,
    creds: IceCreds,
    offer: SdpOffer,
    offered: &[media::VideoLine],
    hello: &Hello,
) -> Result<Negotiated, RtcConnectError> {
    let now = Instant::now();
    let mut rtc = RtcConfig::new()
        .set_local_ice_credentials(creds)
        .set_ice_lite(true)
        .set_crypto_provider(ep.crypto.clone())
        .clear_codecs()
        .enable_vp8(true)
        .enable_h264(true)
        .set_stats_interval(Some(STATS_INTERVAL))
        .set_send_buffer_video(ep.relay.cfg.webrtc.nack_history)
        .build(now);
    let candidate = Candidate::host(ep.candidate, "udp")
        .map_err(|e| RtcConnectError::Refused(ErrorCode::Internal, e.to_string()))?;
    rtc.add_local_candidate(candidate);
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| RtcConnectError::Offer(e.to_string()))?;
    let answer = answer.to_sdp_string();
    let mut lines = media::video_mlines(&answer);
    media::directions_from_offer(&mut lines, offered);
    tracing::debug!(?lines, "negotiated video m-lines");
    let (mut sends, mut receives) = (Vec::new(), Vec::new());
    let uses = match hello {
        Hello::Customer { .. } => media::Uses::Sending,
        Hello::Technician { .. } => media::Uses::Receiving,
        _ => media::Uses::Either,
    };
    media::check_codecs(&lines, uses).map_err(RtcConnectError::Codec)?;
    for line in lines.into_iter().filter(|l| l.usable) {
        // The answer's direction is the relay's: it receives what the peer sends.
        let mid = Mid::from(line.mid.as_str());
        if line.relay_receives {
            sends.push(mid);
        }
        if line.relay_sends {
            receives.push(mid);
        }
    }
    Ok(Negotiated {
        rtc,
        answer,
        publish: sends,
        receive: receives,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<(), RtcConnectError>) -> String {
        r.map_err(|e| e.to_string()).err().unwrap_or_default()
    }

    #[test]
    fn a_body_that_is_not_sdp_says_so() {
        for body in ["", " \r\n", "hello world", "m=application 9 x\r\nv=0\r\n"] {
            assert!(
                message(check_is_sdp(body)).contains("not an SDP offer"),
                "{body:?}"
            );
        }
        assert!(message(check_is_sdp("")).contains("the body is empty"));
        assert_eq!(
            message(check_is_sdp("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n")),
            ""
        );
        assert_eq!(message(check_is_sdp("\r\nv=0\n")), "");
    }

    #[test]
    fn a_malformed_fingerprint_is_named() {
        let hex32 = ["AB"; 32].join(":");
        let hex20 = ["0f"; 20].join(":");
        let sdp = |lines: &[String]| {
            let mut s = "v=0\r\ns=-\r\n".to_string();
            for l in lines {
                s.push_str(&format!("a=fingerprint:{l}\r\n"));
            }
            s
        };
        for ok in [
            vec![],
            vec![format!("sha-256 {hex32}")],
            vec![format!("SHA-1 {hex20}")],
            vec!["sha-256 ZZ".into(), format!("sha-256 {hex32}")],
        ] {
            assert_eq!(message(check_fingerprint(&sdp(&ok))), "", "{ok:?}");
        }
        for bad in [
            "sha-256 ZZ".to_string(),
            "sha-256".into(),
            "sha-256 AB:CD".into(),
            format!("sha-256 {hex32}:"),
            format!("sha-512 {hex32}"),
            format!("sha-256 {}", hex32.replace(':', "")),
        ] {
            let m = message(check_fingerprint(&sdp(std::slice::from_ref(&bad))));
            assert!(
                m.contains("a=fingerprint is malformed: expected sha-256 followed by 32"),
                "{bad}: {m}"
            );
        }
        let long = format!("sha-256 {}", "Z".repeat(500));
        assert!(message(check_fingerprint(&sdp(&[long]))).chars().count() < 250);
    }
}
