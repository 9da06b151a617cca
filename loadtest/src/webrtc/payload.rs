//! The pure parts of `loadtest webrtc`: the synthetic VP8-shaped frame payload (crafted by the publisher,
//! parsed by every viewer), one viewer's tally of what it received, and the derived cost figures.
//!
//! Neither the relay nor str0m decodes VP8: they look at the payload's first byte only (bit 0 is VP8's
//! `P` bit: clear = keyframe). So a frame is
//!
//! ```text
//! byte 0      0x10 keyframe | 0x11 delta frame (bit 0 = P)
//! bytes 1..4  b"ALT" (magic: a frame that is not ours is counted, not measured)
//! byte 4      kind: 0 warm-up, 1 measured
//! bytes 5..13 frame sequence number (u64 LE; measured frames count from 0)
//! bytes 13..21 send time: nanoseconds since the run's base `Instant` (u64 LE; one process, one clock)
//! bytes 21..25 the frame's whole length (u32 LE; a truncated or padded frame does not parse)
//! bytes 25..  filler
//! ```

use hdrhistogram::Histogram;

use crate::report::new_histogram;

/// VP8 payload header byte 0 of a keyframe (`P` = 0; show_frame set).
pub(crate) const VP8_KEY: u8 = 0x10;
/// VP8 payload header byte 0 of a delta frame (`P` = 1).
pub(crate) const VP8_DELTA: u8 = 0x11;
pub(crate) const MAGIC: [u8; 3] = *b"ALT";
/// Bytes before the filler; the smallest frame the tool sends.
pub(crate) const HEADER_LEN: usize = 25;
/// Filler byte (any value works; the relay never looks past byte 0).
pub(crate) const FILLER: u8 = 0xA5;

/// Frames sent before the measured window (to bring every viewer's track up) or in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Warmup = 0,
    Measured = 1,
}

/// What a frame's payload says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameTag {
    pub keyframe: bool,
    pub kind: Kind,
    pub seq: u64,
    pub send_ns: u64,
    /// The whole payload's length in bytes (at least [`HEADER_LEN`]).
    pub len: u32,
}

/// Why a received payload is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadError {
    Short,
    NotVp8Shaped,
    Magic,
    Kind,
    /// The length field disagrees with the bytes that arrived.
    Length,
}

/// The frame's payload: header, then [`FILLER`] up to `tag.len` bytes.
pub(crate) fn craft(tag: &FrameTag) -> Vec<u8> {
    let len = (tag.len as usize).max(HEADER_LEN);
    let mut out = vec![FILLER; len];
    out[0] = if tag.keyframe { VP8_KEY } else { VP8_DELTA };
    out[1..4].copy_from_slice(&MAGIC);
    out[4] = tag.kind as u8;
    out[5..13].copy_from_slice(&tag.seq.to_le_bytes());
    out[13..21].copy_from_slice(&tag.send_ns.to_le_bytes());
    out[21..25].copy_from_slice(&(len as u32).to_le_bytes());
    out
}

/// Reads a payload [`craft`] made.
pub(crate) fn parse(data: &[u8]) -> Result<FrameTag, PayloadError> {
    if data.len() < HEADER_LEN {
        return Err(PayloadError::Short);
    }
    let keyframe = match data[0] {
        VP8_KEY => true,
        VP8_DELTA => false,
        _ => return Err(PayloadError::NotVp8Shaped),
    };
    if data[1..4] != MAGIC {
        return Err(PayloadError::Magic);
    }
    let kind = match data[4] {
        0 => Kind::Warmup,
        1 => Kind::Measured,
        _ => return Err(PayloadError::Kind),
    };
    let u64_at = |i: usize| u64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(data[21..25].try_into().expect("4 bytes"));
    if len as usize != data.len() {
        return Err(PayloadError::Length);
    }
    Ok(FrameTag {
        keyframe,
        kind,
        seq: u64_at(5),
        send_ns: u64_at(13),
        len,
    })
}

/// One viewer's account of the measured frames. Only the first copy of each sequence number counts as
/// delivered; duplicates, reordering and gaps are counted apart.
#[derive(Debug)]
pub(crate) struct Tally {
    /// Which measured sequence numbers arrived (index = seq).
    seen: Vec<bool>,
    /// Distinct measured frames delivered, and their payload bytes.
    pub frames: u64,
    pub bytes: u64,
    /// A sequence number that had arrived already.
    pub duplicates: u64,
    /// A sequence number below the highest seen that had not arrived before (late, out of order).
    pub reordered: u64,
    /// A sequence number beyond the plan (should not happen).
    pub out_of_range: u64,
    /// Jumps forward over missing frames, and of those the ones landing on a delta frame.
    pub seq_gaps: u64,
    pub mid_group_gaps: u64,
    /// Frames whose keyframe flag (from str0m's VP8 header check) disagrees with the payload's byte 0.
    pub keyframe_mismatches: u64,
    /// Frames str0m delivered as not contiguous (RTP packets lost before them).
    pub non_contiguous: u64,
    /// Measured frames that arrived as keyframes.
    pub keyframes: u64,
    highest: Option<u64>,
    /// receive time - send time, microseconds.
    pub latency: Histogram<u64>,
}

impl Tally {
    /// A tally for a plan of `planned` measured frames.
    pub(crate) fn new(planned: u64) -> Tally {
        Tally {
            seen: vec![false; usize::try_from(planned).unwrap_or(usize::MAX)],
            frames: 0,
            bytes: 0,
            duplicates: 0,
            reordered: 0,
            out_of_range: 0,
            seq_gaps: 0,
            mid_group_gaps: 0,
            keyframe_mismatches: 0,
            non_contiguous: 0,
            keyframes: 0,
            highest: None,
            latency: new_histogram(),
        }
    }

    /// One measured frame, received at `recv_ns` (same clock as its send time); `rtc_keyframe` and
    /// `contiguous` are what str0m said of it.
    pub(crate) fn record(
        &mut self,
        tag: &FrameTag,
        rtc_keyframe: bool,
        contiguous: bool,
        recv_ns: u64,
    ) {
        self.non_contiguous += u64::from(!contiguous);
        self.keyframe_mismatches += u64::from(rtc_keyframe != tag.keyframe);
        let Some(slot) = usize::try_from(tag.seq)
            .ok()
            .and_then(|i| self.seen.get_mut(i))
        else {
            self.out_of_range += 1;
            return;
        };
        if *slot {
            self.duplicates += 1;
            return;
        }
        *slot = true;
        match self.highest {
            Some(h) if tag.seq < h => self.reordered += 1,
            Some(h) if tag.seq > h + 1 => {
                self.seq_gaps += 1;
                self.mid_group_gaps += u64::from(!tag.keyframe);
            }
            // The first frame of the window is frame 0; anything later is a gap at the start.
            None if tag.seq > 0 => {
                self.seq_gaps += 1;
                self.mid_group_gaps += u64::from(!tag.keyframe);
            }
            _ => {}
        }
        self.highest = Some(self.highest.map_or(tag.seq, |h| h.max(tag.seq)));
        self.frames += 1;
        self.bytes += u64::from(tag.len);
        self.keyframes += u64::from(tag.keyframe);
        let us = recv_ns.saturating_sub(tag.send_ns) / 1_000;
        self.latency.saturating_record(us.max(1));
    }
}

/// Relay CPU milliseconds per forwarded megabit (10^6 payload bits delivered to all viewers together).
pub(crate) fn cpu_ms_per_mbit(cpu_s: f64, forwarded_bytes: u64) -> Option<f64> {
    let mbit = forwarded_bytes as f64 * 8.0 / 1e6;
    (mbit > 0.0).then(|| cpu_s * 1000.0 / mbit)
}

/// Share of the CPUs it may run on that a process used over a window (1.0 = all of them, all the time).
pub(crate) fn cpu_share(cpu_s: f64, window_s: f64, cpus: usize) -> Option<f64> {
    (window_s > 0.0 && cpus > 0).then(|| cpu_s / (window_s * cpus as f64))
}
