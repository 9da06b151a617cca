//! Frames ⇄ RTP, the parts without sockets or str0m state: RTP timestamps, group numbering of a publisher's
//! frames, and which m-line carries which track to a receiver. Deterministic and unit-tested here.

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};

use crate::core::{Frame, Origin};
use crate::media::Codec;
use crate::protocol::{FrameHeader, FRAME_HEADER_LEN};

/// How long a track waiting for a keyframe waits before it asks its publisher again (a PLI can be lost).
pub const KEYFRAME_RETRY: Duration = Duration::from_secs(1);

/// The RTP clock of video (RFC 3551).
pub const VIDEO_CLOCK_HZ: u64 = 90_000;

/// A frame's capture timestamp (µs) as a 90 kHz RTP timestamp, modulo 2³².
pub fn rtp_timestamp(capture_us: u64) -> u32 {
    (u128::from(capture_us) * u128::from(VIDEO_CLOCK_HZ) / 1_000_000) as u32
}

/// Extends a track's 32-bit RTP timestamps into a monotonic 64-bit count (wrap-around and small reordering
/// tolerated), so capture times keep increasing across the 13-hour wrap.
#[derive(Debug, Default, Clone)]
pub struct TimestampUnwrap {
    last: Option<u64>,
}

impl TimestampUnwrap {
    pub fn extend(&mut self, ts: u32) -> u64 {
        let ext = match self.last {
            None => u64::from(ts),
            Some(last) => {
                let delta = ts.wrapping_sub(last as u32) as i32;
                (last as i64 + i64::from(delta)).max(0) as u64
            }
        };
        // Keep the furthest point reached, so an old reordered frame does not move the reference back.
        if self.last.is_none_or(|l| ext > l) {
            self.last = Some(ext);
        }
        ext
    }
}

/// What happened to a publisher's reassembled frame.
#[derive(Debug)]
pub enum Ingress {
    /// Forward it to the room.
    Frame(Frame),
    /// Not forwarded: the track waits for a keyframe (its start, or a gap in the RTP sequence). `ask` is true
    /// when the publisher should be asked for one now.
    WaitingForKeyframe { ask: bool },
    /// Not forwarded: larger than `limits.max_frame_bytes`.
    TooLarge,
}

/// One publisher track's numbering: a new group at every keyframe, frames numbered in order, and nothing
/// forwarded between a gap and the next keyframe.
#[derive(Debug, Default)]
pub struct TrackIngress {
    next_group: u64,
    next_seq: u64,
    /// A keyframe is needed before anything is forwarded (at the start, and after a gap).
    waiting: bool,
    started: bool,
    ts: TimestampUnwrap,
    asked_at: Option<Instant>,
}

impl TrackIngress {
    pub fn new() -> TrackIngress {
        TrackIngress {
            waiting: true,
            ..TrackIngress::default()
        }
    }

    /// A reassembled frame. `contiguous` is false when RTP packets were lost since the previous frame.
    #[allow(clippy::too_many_arguments)]
    pub fn frame(
        &mut self,
        track: u32,
        codec: Codec,
        keyframe: bool,
        contiguous: bool,
        rtp_ts: u32,
        payload: &[u8],
        max_frame: usize,
        now: Instant,
    ) -> Ingress {
        let ext = self.ts.extend(rtp_ts);
        if payload.len() > max_frame {
            self.waiting = true;
            return Ingress::TooLarge;
        }
        if self.started && !contiguous && !self.waiting {
            self.waiting = true;
            self.asked_at = None;
        }
        if self.waiting && !keyframe {
            let ask = self
                .asked_at
                .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_RETRY);
            if ask {
                self.asked_at = Some(now);
            }
            return Ingress::WaitingForKeyframe { ask };
        }
        if keyframe {
            if self.started {
                self.next_group += 1;
            }
            self.waiting = false;
            self.asked_at = None;
        }
        self.started = true;
        let seq = self.next_seq;
        self.next_seq += 1;
        let header = FrameHeader {
            payload_len: payload.len() as u32,
            codec,
            keyframe,
            seq,
            capture_ts_us: ext * 1_000_000 / VIDEO_CLOCK_HZ,
        };
        let mut wire = BytesMut::with_capacity(FRAME_HEADER_LEN + payload.len());
        wire.put_slice(&header.encode());
        wire.put_slice(payload);
        Ingress::Frame(Frame {
            track,
            group: self.next_group,
            seq,
            keyframe,
            wire: wire.freeze(),
            received_at: now,
            origin: Origin::WebRtc,
        })
    }
}

/// Which of a receiver's m-lines carries which track. Tracks take free m-lines in the order they start; a
/// track with no free m-line is not shown until one frees up.
#[derive(Debug, Default)]
pub struct Slots<M> {
    slots: Vec<(M, Option<u32>)>,
}

impl<M: Copy + PartialEq> Slots<M> {
    pub fn new(mids: impl IntoIterator<Item = M>) -> Slots<M> {
        Slots {
            slots: mids.into_iter().map(|m| (m, None)).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The m-line for `track`, taking a free one if it has none; `None` when all are taken.
    pub fn assign(&mut self, track: u32) -> Option<(M, bool)> {
        if let Some(m) = self.mid_of(track) {
            return Some((m, false));
        }
        let slot = self.slots.iter_mut().find(|(_, t)| t.is_none())?;
        slot.1 = Some(track);
        Some((slot.0, true))
    }

    /// Frees `track`'s m-line; returns it.
    pub fn release(&mut self, track: u32) -> Option<M> {
        let slot = self.slots.iter_mut().find(|(_, t)| *t == Some(track))?;
        slot.1 = None;
        Some(slot.0)
    }

    pub fn mid_of(&self, track: u32) -> Option<M> {
        self.slots
            .iter()
            .find(|(_, t)| *t == Some(track))
            .map(|(m, _)| *m)
    }

    pub fn track_of(&self, mid: M) -> Option<u32> {
        self.slots.iter().find(|(m, _)| *m == mid).and_then(|s| s.1)
    }
}

/// Splits a frame as the relay carries it into its header and payload.
pub fn split_wire(frame: &Frame, max_frame: usize) -> Option<(FrameHeader, bytes::Bytes)> {
    let head: &[u8; FRAME_HEADER_LEN] = frame.wire.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
    let header = FrameHeader::decode(head, max_frame).ok()?;
    Some((header, frame.wire.slice(FRAME_HEADER_LEN..)))
}

/// A video m-line of the relay's SDP answer, as the relay sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct VideoLine {
    pub mid: String,
    /// The relay receives on it (the peer publishes).
    pub relay_receives: bool,
    /// The relay sends on it (the peer views).
    pub relay_sends: bool,
    /// VP8, or H.264 with packetization-mode 1, was agreed on it.
    pub usable: bool,
    /// Its port is 0 (rejected in an answer, disabled in an offer).
    pub port_zero: bool,
}

/// The video m-lines of an SDP answer the relay made; rejected ones (port 0) are not usable.
pub fn video_mlines(answer: &str) -> Vec<VideoLine> {
    let mut out = Vec::new();
    for section in answer.split("\nm=").skip(1) {
        let mut lines = section.lines().map(str::trim_end);
        let head = lines.next().unwrap_or_default();
        let mut words = head.split_whitespace();
        if words.next() != Some("video") {
            continue;
        }
        // Port 0: rejected, which for the relay's answer means no codec in common.
        let rejected = words.next() == Some("0");
        let (mut mid, mut dir) = (None, "sendrecv");
        let (mut vp8, mut h264_pts, mut h264_ok) = (false, Vec::new(), false);
        for l in lines {
            let Some(attr) = l.strip_prefix("a=") else {
                continue;
            };
            match attr {
                "sendrecv" | "sendonly" | "recvonly" | "inactive" => dir = attr,
                _ => {}
            }
            if let Some(m) = attr.strip_prefix("mid:") {
                mid = Some(m.to_string());
            } else if let Some(map) = attr.strip_prefix("rtpmap:") {
                let (pt, name) = map.split_once(' ').unwrap_or((map, ""));
                let name = name.to_ascii_uppercase();
                if name.starts_with("VP8/") {
                    vp8 = true;
                } else if name.starts_with("H264/") {
                    h264_pts.push(pt.to_string());
                }
            } else if let Some(fmtp) = attr.strip_prefix("fmtp:") {
                let (pt, params) = fmtp.split_once(' ').unwrap_or((fmtp, ""));
                if h264_pts.iter().any(|p| p == pt) && params.contains("packetization-mode=1") {
                    h264_ok = true;
                }
            }
        }
        let Some(mid) = mid else { continue };
        out.push(VideoLine {
            mid,
            relay_receives: matches!(dir, "sendrecv" | "recvonly"),
            relay_sends: matches!(dir, "sendrecv" | "sendonly"),
            usable: !rejected && (vp8 || h264_ok),
            port_zero: rejected,
        });
    }
    out
}

/// The video m-lines a peer uses, by its HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uses {
    /// A customer: it sends its screen.
    Sending,
    /// A technician: it receives the customer's screen.
    Receiving,
    /// A meeting participant (or a peer resuming): either.
    Either,
}

/// Sets each answered m-line's directions from the offer (an m-line the relay rejected is `inactive` in its
/// answer, whatever the peer offered): the relay receives what the peer offered to send, and sends what it
/// offered to receive; an m-line offered with port 0 or `inactive` is in no direction.
pub fn directions_from_offer(lines: &mut [VideoLine], offered: &[VideoLine]) {
    for l in lines.iter_mut() {
        let Some(o) = offered.iter().find(|o| o.mid == l.mid) else {
            continue;
        };
        // `video_mlines` reads directions as an answer's: in an offer they are the peer's.
        l.relay_receives = o.relay_sends && !o.port_zero;
        l.relay_sends = o.relay_receives && !o.port_zero;
    }
}

/// Whether the offer has the video its peer needs (docs/PROTOCOL.md section 13.2); unusable m-lines (neither
/// VP8 nor H.264 with packetization-mode 1) are left unused. A customer is there to send its screen: it needs
/// a usable m-line it sends on, whatever else the offer has. A technician is there to see that screen: it
/// needs a usable m-line it receives on. A meeting participant (or a peer resuming, whose role is not known
/// before it is authenticated) may have no video at all (chat only), but an offer with m-lines it sends or
/// receives on needs one of them usable. Checked before the code or token is spent.
pub fn check_codecs(lines: &[VideoLine], uses: Uses) -> Result<(), String> {
    let counts = |l: &&VideoLine| match uses {
        Uses::Sending => l.relay_receives,
        Uses::Receiving => l.relay_sends,
        Uses::Either => l.relay_receives || l.relay_sends,
    };
    let needed: Vec<&VideoLine> = lines.iter().filter(counts).collect();
    // A meeting participant may have no video at all (chat only).
    let chat_only = matches!(uses, Uses::Either) && needed.is_empty();
    if chat_only || needed.iter().any(|l| l.usable) {
        return Ok(());
    }
    let found = match needed.as_slice() {
        [] => "it has none".to_string(),
        [one] => format!("m-line {} offers neither", one.mid),
        more => {
            let mids: Vec<&str> = more.iter().map(|l| l.mid.as_str()).collect();
            format!("m-lines {} offer neither", mids.join(", "))
        }
    };
    let codecs = "VP8 or H.264 (packetization-mode=1)";
    Err(match uses {
        Uses::Sending => format!(
            "a customer's offer needs a sendonly or sendrecv video m-line with {codecs} to send its \
             screen on: {found}"
        ),
        Uses::Receiving => format!(
            "a technician's offer needs a recvonly or sendrecv video m-line with {codecs} to receive \
             the customer's screen on: {found}"
        ),
        Uses::Either => format!("the offer's video m-lines need {codecs}: {found}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(t: &mut TrackIngress, keyframe: bool, contiguous: bool, ts: u32) -> Ingress {
        t.frame(
            0,
            Codec::Vp8,
            keyframe,
            contiguous,
            ts,
            b"abc",
            100,
            Instant::now(),
        )
    }

    #[test]
    fn rtp_timestamps_round_trip_and_wrap() {
        assert_eq!(rtp_timestamp(1_000_000), 90_000);
        assert_eq!(rtp_timestamp(33_333), 2_999);
        let mut u = TimestampUnwrap::default();
        assert_eq!(u.extend(u32::MAX - 10), u64::from(u32::MAX - 10));
        assert_eq!(u.extend(5), u64::from(u32::MAX) + 6);
        // A reordered older frame stays older, without moving the reference back.
        assert_eq!(u.extend(u32::MAX - 20), u64::from(u32::MAX - 20));
        assert_eq!(u.extend(10), u64::from(u32::MAX) + 11);
    }

    #[test]
    fn nothing_before_the_first_keyframe_then_a_group_per_keyframe() {
        let mut t = TrackIngress::new();
        assert!(matches!(
            feed(&mut t, false, true, 0),
            Ingress::WaitingForKeyframe { ask: true }
        ));
        assert!(matches!(
            feed(&mut t, false, true, 3000),
            Ingress::WaitingForKeyframe { ask: false }
        ));
        let Ingress::Frame(k) = feed(&mut t, true, true, 6000) else {
            panic!()
        };
        assert_eq!((k.group, k.seq, k.keyframe), (0, 0, true));
        let (h, payload) = split_wire(&k, 100).unwrap();
        assert_eq!(
            (h.codec, h.keyframe, &payload[..]),
            (Codec::Vp8, true, &b"abc"[..])
        );
        assert_eq!(h.capture_ts_us, 66_666);
        let Ingress::Frame(d) = feed(&mut t, false, true, 9000) else {
            panic!()
        };
        assert_eq!((d.group, d.seq, d.origin), (0, 1, Origin::WebRtc));
        let Ingress::Frame(k2) = feed(&mut t, true, true, 12000) else {
            panic!()
        };
        assert_eq!((k2.group, k2.seq), (1, 2));
    }

    #[test]
    fn a_gap_waits_for_the_next_keyframe_and_asks_once() {
        let mut t = TrackIngress::new();
        assert!(matches!(feed(&mut t, true, true, 0), Ingress::Frame(_)));
        assert!(matches!(
            feed(&mut t, false, false, 3000),
            Ingress::WaitingForKeyframe { ask: true }
        ));
        assert!(matches!(
            feed(&mut t, false, true, 6000),
            Ingress::WaitingForKeyframe { ask: false }
        ));
        let Ingress::Frame(k) = feed(&mut t, true, false, 9000) else {
            panic!()
        };
        assert_eq!((k.group, k.keyframe), (1, true));
        assert!(matches!(
            t.frame(0, Codec::Vp8, true, true, 1, &[0; 101], 100, Instant::now()),
            Ingress::TooLarge
        ));
    }

    #[test]
    fn video_lines_of_an_answer() {
        let answer = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:1\r\na=sendonly\r\na=rtpmap:102 H264/90000\r\n\
            a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 103\r\na=mid:2\r\na=sendonly\r\na=rtpmap:103 H264/90000\r\n\
            a=fmtp:103 packetization-mode=0\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 98\r\na=mid:3\r\na=inactive\r\n\
            m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:4\r\n";
        let lines = video_mlines(answer);
        assert_eq!(lines.len(), 4);
        assert!(!lines[3].usable);
        assert_eq!(
            lines[0],
            VideoLine {
                mid: "0".into(),
                relay_receives: true,
                relay_sends: false,
                usable: true,
                port_zero: false,
            }
        );
        assert!(lines[1].relay_sends && !lines[1].relay_receives && lines[1].usable);
        assert!(!lines[2].usable);
    }

    #[test]
    fn only_the_direction_a_peer_uses_needs_a_codec() {
        let line = |mid: &str, recv: bool, send: bool, usable: bool| VideoLine {
            mid: mid.into(),
            relay_receives: recv,
            relay_sends: send,
            usable,
            port_zero: false,
        };
        // A technician with a VP8 m-line and a VP9-only one is fine; with only the VP9 one it is not; an
        // inactive VP9 m-line is in no direction.
        let tech = [line("0", false, true, true), line("1", false, true, false)];
        assert_eq!(check_codecs(&tech, Uses::Receiving), Ok(()));
        assert!(check_codecs(&tech[1..], Uses::Receiving).is_err());
        let inactive = [line("0", false, false, false)];
        assert_eq!(check_codecs(&inactive, Uses::Either), Ok(()));
        // A customer's unusable send line is refused even beside a usable receive line it does not use.
        let cust = [line("0", true, false, false), line("1", false, true, true)];
        let e = check_codecs(&cust, Uses::Sending).unwrap_err();
        assert!(
            e.contains("customer's offer needs a sendonly or sendrecv video m-line")
                && e.ends_with("m-line 0 offers neither"),
            "{e}"
        );
        assert_eq!(check_codecs(&cust, Uses::Either), Ok(()));
        // A customer or technician without video in its direction cannot do what it came for; a meeting
        // participant without video (chat only) is fine.
        for lines in [&[][..], &inactive[..], &cust[1..]] {
            let e = check_codecs(lines, Uses::Sending).unwrap_err();
            assert!(e.ends_with("to send its screen on: it has none"), "{e}");
            assert_eq!(check_codecs(lines, Uses::Either), Ok(()));
        }
        for lines in [&[][..], &inactive[..], &cust[..1]] {
            let e = check_codecs(lines, Uses::Receiving).unwrap_err();
            assert!(
                e.ends_with("to receive the customer's screen on: it has none"),
                "{e}"
            );
        }
        let vp9 = [line("a", true, true, false), line("b", false, true, false)];
        assert_eq!(
            check_codecs(&vp9, Uses::Either).unwrap_err(),
            "the offer's video m-lines need VP8 or H.264 (packetization-mode=1): m-lines a, b offer neither"
        );
    }

    #[test]
    fn directions_come_from_the_offer() {
        // The relay rejected m-line 1 (port 0, inactive); the peer had offered to receive on it.
        let answer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 98\r\na=mid:1\r\na=inactive\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=inactive\r\na=rtpmap:96 VP8/90000\r\n";
        let offer = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 98\r\na=mid:1\r\na=recvonly\r\na=rtpmap:98 VP9/90000\r\n\
            m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n";
        let mut lines = video_mlines(answer);
        directions_from_offer(&mut lines, &video_mlines(offer));
        let dirs: Vec<(bool, bool)> = lines
            .iter()
            .map(|l| (l.relay_receives, l.relay_sends))
            .collect();
        assert_eq!(dirs, [(false, true), (false, true), (false, false)]);
        assert_eq!(check_codecs(&lines, Uses::Receiving), Ok(()));
        assert!(check_codecs(&lines[1..], Uses::Receiving).is_err());
        // Only the inactive m-line left: in no direction, so the technician has nothing to receive on.
        assert!(check_codecs(&lines[2..], Uses::Receiving).is_err());
        assert_eq!(check_codecs(&lines[2..], Uses::Either), Ok(()));
    }

    #[test]
    fn tracks_take_free_mlines_in_order() {
        let mut s = Slots::new([1u8, 2]);
        assert_eq!(s.assign(16), Some((1, true)));
        assert_eq!(s.assign(16), Some((1, false)));
        assert_eq!(s.assign(32), Some((2, true)));
        assert_eq!(s.assign(48), None);
        assert_eq!(s.track_of(2), Some(32));
        assert_eq!(s.release(16), Some(1));
        assert_eq!(s.assign(48), Some((1, true)));
        assert_eq!(s.mid_of(48), Some(1));
        assert_eq!(s.release(99), None);
    }
}
