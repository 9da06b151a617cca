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

/// Answers the offer; m-lines with no usable codec are left unused ([`media::check_codecs`]).
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
