//! H.264 Annex B byte streams: splitting them into access units (one [`MediaFrame`] per coded
//! picture) and checking frames before they are written.
//!
//! Frames are exact, contiguous slices of the input: start codes, leading/trailing zero bytes and
//! every NAL unit stay inside the frames, so concatenating all frames' `data` reproduces the
//! input byte for byte. Each frame begins at the first zero byte of a start code.
//!
//! Access-unit boundaries follow H.264 §7.4.1.2.3, simplified: a new access unit starts at
//! * an access unit delimiter (NAL type 9);
//! * an SPS, PPS, SEI or NAL type 14–18 (7, 8, 6, 14..=18) that follows a VCL NAL of the current
//!   access unit;
//! * a slice (types 1, 2, 5) that follows a slice of the current access unit and either has
//!   `first_mb_in_slice == 0` or differs from it in being IDR / non-IDR;
//! * any NAL after an end-of-sequence / end-of-stream NAL (10, 11).
//!
//! What it deliberately does not do: decode, parse SPS/PPS (so no resolution), or compare
//! frame_num / pic_parameter_set_id / POC as the full first-VCL-of-a-picture rule would. Streams
//! using arbitrary slice order (a Baseline-profile feature where a picture's first slice need not
//! have `first_mb_in_slice == 0`) can therefore be split wrongly, and the split still always
//! reproduces the input. Annex B has no timestamps; they are synthesised from
//! [`ReadOptions::h264_fps`]. H.264 in other containers (MP4/AVCC length prefixes) is out of scope.

use bytes::Bytes;

use super::{Codec, MediaError, MediaFrame, ReadOptions};

/// NAL unit types used for access-unit splitting (H.264 Table 7-1).
mod nal {
    pub const SLICE: u8 = 1;
    pub const SLICE_PARTITION_A: u8 = 2;
    pub const SLICE_PARTITION_B: u8 = 3;
    pub const SLICE_PARTITION_C: u8 = 4;
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
    pub const END_OF_SEQUENCE: u8 = 10;
    pub const END_OF_STREAM: u8 = 11;
}

/// Whether `data` starts with an Annex B start code: two or more zero bytes followed by 0x01
/// (i.e. `00 00 01`, `00 00 00 01`, or a longer run of leading zeros).
pub fn starts_with_start_code(data: &[u8]) -> bool {
    let zeros = data.iter().take_while(|&&b| b == 0).count();
    zeros >= 2 && data.get(zeros) == Some(&1)
}

/// Checks that a frame given to the writer is a plausible Annex B access unit: it must begin
/// with a start code (otherwise the written stream would be corrupt for every later frame).
pub fn validate_frame(data: &[u8]) -> Result<(), MediaError> {
    if starts_with_start_code(data) {
        Ok(())
    } else {
        Err(MediaError::InvalidFrame(
            "H.264 frame does not start with an Annex B start code",
        ))
    }
}

/// Position of one start code in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StartCode {
    /// First byte of the zero run that ends in `00 00 01`.
    zeros_start: usize,
    /// First byte of the NAL unit (its header byte), right after the `01`.
    nal_start: usize,
}

/// Finds the first start code whose `00 00 01` begins at or after `from`. The returned zero run
/// is extended backwards over zero bytes, but not before `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<StartCode> {
    let mut i = from;
    while i + 2 < data.len() {
        let b = data[i + 2];
        if b > 1 {
            // No `00 00 01` can start at i, i + 1 or i + 2.
            i += 3;
        } else if b == 1 && data[i] == 0 && data[i + 1] == 0 {
            let mut zeros_start = i;
            while zeros_start > from && data[zeros_start - 1] == 0 {
                zeros_start -= 1;
            }
            return Some(StartCode {
                zeros_start,
                nal_start: i + 3,
            });
        } else {
            i += 1;
        }
    }
    None
}

/// Reads RBSP bits MSB-first from a NAL unit payload, dropping emulation prevention bytes
/// (the `03` in `00 00 03`).
struct RbspBits<'a> {
    data: &'a [u8],
    pos: usize,
    zeros: u8,
    byte: u8,
    bits_left: u8,
}

impl<'a> RbspBits<'a> {
    fn new(data: &'a [u8]) -> Self {
        RbspBits {
            data,
            pos: 0,
            zeros: 0,
            byte: 0,
            bits_left: 0,
        }
    }

    fn next_byte(&mut self) -> Option<u8> {
        loop {
            let b = *self.data.get(self.pos)?;
            self.pos += 1;
            if self.zeros >= 2 && b == 3 {
                self.zeros = 0;
                continue;
            }
            self.zeros = if b == 0 {
                self.zeros.saturating_add(1)
            } else {
                0
            };
            return Some(b);
        }
    }

    fn bit(&mut self) -> Option<u32> {
        if self.bits_left == 0 {
            self.byte = self.next_byte()?;
            self.bits_left = 8;
        }
        self.bits_left -= 1;
        Some(u32::from((self.byte >> self.bits_left) & 1))
    }

    /// Unsigned Exp-Golomb `ue(v)`; `None` if truncated or longer than 32 bits of value.
    fn ue(&mut self) -> Option<u32> {
        let mut leading_zeros = 0u32;
        while self.bit()? == 0 {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return None;
            }
        }
        let mut rest = 0u64;
        for _ in 0..leading_zeros {
            rest = (rest << 1) | u64::from(self.bit()?);
        }
        u32::try_from((1u64 << leading_zeros) - 1 + rest).ok()
    }
}

/// `first_mb_in_slice` of a slice NAL unit (`nal` starts with the 1-byte NAL header): the first
/// `ue(v)` of the slice header, read with emulation prevention bytes removed. `None` if the NAL
/// is too short or the value is malformed.
pub fn first_mb_in_slice(nal: &[u8]) -> Option<u32> {
    RbspBits::new(nal.get(1..)?).ue()
}

/// What has been seen so far in the access unit being assembled.
#[derive(Debug, Default)]
struct AuState {
    /// A VCL NAL (types 1–5) has been seen.
    has_vcl: bool,
    /// IDR-ness of the last slice with a header (types 1, 2, 5).
    last_slice_idr: Option<bool>,
    /// An IDR slice has been seen.
    keyframe: bool,
    /// An end-of-sequence/stream NAL closed the access unit.
    closed: bool,
}

impl AuState {
    /// Whether `nal` (header byte first, possibly empty) starts a new access unit.
    fn starts_new_au(&self, nal: &[u8]) -> bool {
        if self.closed {
            return true;
        }
        let Some(&header) = nal.first() else {
            return false;
        };
        match header & 0x1f {
            nal::AUD => true,
            nal::SEI | nal::SPS | nal::PPS | 14..=18 => self.has_vcl,
            t @ (nal::SLICE | nal::SLICE_PARTITION_A | nal::IDR) => {
                let idr = t == nal::IDR;
                self.has_vcl
                    && (first_mb_in_slice(nal) == Some(0)
                        || self.last_slice_idr.is_some_and(|prev| prev != idr))
            }
            _ => false,
        }
    }

    fn push(&mut self, nal: &[u8]) {
        let Some(&header) = nal.first() else {
            return;
        };
        match header & 0x1f {
            t @ (nal::SLICE | nal::SLICE_PARTITION_A | nal::IDR) => {
                self.has_vcl = true;
                self.last_slice_idr = Some(t == nal::IDR);
                self.keyframe |= t == nal::IDR;
            }
            nal::SLICE_PARTITION_B | nal::SLICE_PARTITION_C => self.has_vcl = true,
            nal::END_OF_SEQUENCE | nal::END_OF_STREAM => self.closed = true,
            _ => {}
        }
    }
}

/// Iterates over the access units of an in-memory Annex B stream.
pub struct AnnexBReader {
    data: Bytes,
    /// Start code of the first NAL of the next access unit; `None` at the end.
    next: Option<StartCode>,
    index: u64,
    fps: u32,
    max_frame_bytes: usize,
}

impl std::fmt::Debug for AnnexBReader {
    // Not derived: that would dump the whole recording.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnexBReader")
            .field("len", &self.data.len())
            .field("next", &self.next)
            .field("index", &self.index)
            .field("fps", &self.fps)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .finish()
    }
}

impl AnnexBReader {
    /// Creates a reader. Errors with [`MediaError::NotRecognized`] unless `data` starts with a
    /// start code (see [`starts_with_start_code`]), and with [`MediaError::InvalidOptions`] if
    /// `opts.h264_fps` is zero.
    pub fn new(data: Bytes, opts: ReadOptions) -> Result<AnnexBReader, MediaError> {
        if opts.h264_fps == 0 {
            return Err(MediaError::InvalidOptions("h264_fps must be non-zero"));
        }
        if !starts_with_start_code(&data) {
            return Err(MediaError::NotRecognized);
        }
        Ok(AnnexBReader {
            next: find_start_code(&data, 0),
            data,
            index: 0,
            fps: opts.h264_fps,
            max_frame_bytes: opts.max_frame_bytes,
        })
    }

    /// Reads the next access unit; `None` at the end of the stream.
    pub fn next_frame(&mut self) -> Option<Result<MediaFrame, MediaError>> {
        let first = self.next.take()?;
        let data = &self.data;
        let start = first.zeros_start;
        let mut state = AuState::default();
        let mut current = first;
        let mut first_nal = true;
        let end = loop {
            let following = find_start_code(data, current.nal_start);
            let nal_end = following.map_or(data.len(), |s| s.zeros_start);
            let nal = &data[current.nal_start..nal_end];
            if !first_nal && state.starts_new_au(nal) {
                self.next = Some(current);
                break current.zeros_start;
            }
            first_nal = false;
            state.push(nal);
            match following {
                Some(s) => current = s,
                None => break data.len(),
            }
        };
        let size = end - start;
        if size > self.max_frame_bytes {
            self.next = None;
            return Some(Err(MediaError::FrameTooLarge {
                size: size as u64,
                max: self.max_frame_bytes as u64,
            }));
        }
        let pts = u128::from(self.index) * 1_000_000 / u128::from(self.fps);
        self.index += 1;
        Some(Ok(MediaFrame {
            codec: Codec::H264,
            keyframe: state.keyframe,
            pts_us: u64::try_from(pts).unwrap_or(u64::MAX),
            data: self.data.slice(start..end),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::MediaReader;

    const H264: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/screen-h264-720p.h264"
    );

    fn split(data: &[u8], opts: ReadOptions) -> Vec<MediaFrame> {
        MediaReader::from_bytes(Bytes::copy_from_slice(data), opts)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    fn concat(frames: &[MediaFrame]) -> Vec<u8> {
        frames.iter().flat_map(|f| f.data.iter().copied()).collect()
    }

    /// NAL unit types in a frame, in order.
    fn nal_types(frame: &[u8]) -> Vec<u8> {
        let mut types = Vec::new();
        let mut from = 0;
        while let Some(s) = find_start_code(frame, from) {
            if let Some(h) = frame.get(s.nal_start) {
                types.push(h & 0x1f);
            }
            from = s.nal_start;
        }
        types
    }

    #[test]
    fn fixture_splits_into_access_units() {
        let input = std::fs::read(H264).unwrap();
        let frames = split(&input, ReadOptions::default());
        assert!(concat(&frames) == input, "frames must reproduce the input");
        assert_eq!(frames.len(), 150);
        assert!(frames[0].keyframe);
        let keyframes: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].keyframe).collect();
        assert_eq!(keyframes, [0, 30, 60, 90, 120]);
        assert_eq!(nal_types(&frames[0].data), [7, 8, 6, 5, 5]);
        assert_eq!(nal_types(&frames[1].data), [1, 1]);
        assert_eq!(nal_types(&frames[30].data), [7, 8, 5, 5]);
        for f in &frames {
            assert!(starts_with_start_code(&f.data));
            assert_eq!(f.codec, Codec::H264);
        }
        // Synthesised timestamps.
        assert_eq!(frames[1].pts_us, 33_333);
        assert_eq!(frames[149].pts_us, 149 * 1_000_000 / 30);
        let at15 = split(
            &input,
            ReadOptions {
                h264_fps: 15,
                ..ReadOptions::default()
            },
        );
        assert_eq!(at15[149].pts_us, 149 * 1_000_000 / 15);
    }

    #[test]
    fn truncated_fixture_still_concatenates_exactly() {
        let input = std::fs::read(H264).unwrap();
        for cut in [4, 5, 30, 1000, 12_345, input.len() / 2, input.len() - 1] {
            let frames = split(&input[..cut], ReadOptions::default());
            assert!(concat(&frames) == input[..cut], "cut at {cut}");
            assert!(frames[0].keyframe || cut < 100, "cut at {cut}");
        }
    }

    #[test]
    fn frame_limit_is_enforced() {
        let input = std::fs::read(H264).unwrap();
        let opts = ReadOptions {
            max_frame_bytes: 100,
            ..ReadOptions::default()
        };
        let mut r = MediaReader::from_bytes(input.into(), opts).unwrap();
        assert!(matches!(
            r.next(),
            Some(Err(MediaError::FrameTooLarge { max: 100, .. }))
        ));
        assert!(r.next().is_none());
    }

    #[test]
    fn aud_and_parameter_sets_start_access_units() {
        // AUD SPS PPS IDR | AUD P | SEI P P(first_mb != 0) | P | P(partition A, first_mb 0)
        let stream: &[u8] = &[
            0, 0, 0, 1, 0x09, 0xf0, // AUD
            0, 0, 0, 1, 0x67, 0x42, // SPS
            0, 0, 1, 0x68, 0xce, // PPS
            0, 0, 1, 0x65, 0x88, // IDR, first_mb 0
            0, 0, 0, 1, 0x09, 0xf0, // AUD
            0, 0, 1, 0x41, 0x9a, // P, first_mb 0
            0, 0, 1, 0x06, 0x05, // SEI after VCL
            0, 0, 1, 0x41, 0x9a, // P, first_mb 0
            0, 0, 1, 0x41, 0x40, // P, first_mb 1 (bits 010)
            0, 0, 1, 0x41, 0x80, // P, first_mb 0
            0, 0, 1, 0x42, 0x80, 0, 0, // partition A, first_mb 0, trailing zeros
        ];
        let frames = split(stream, ReadOptions::default());
        assert!(concat(&frames) == stream);
        let types: Vec<Vec<u8>> = frames.iter().map(|f| nal_types(&f.data)).collect();
        assert_eq!(
            types,
            [
                vec![9, 7, 8, 5],
                vec![9, 1],
                vec![6, 1, 1],
                vec![1],
                vec![2]
            ]
        );
        let keys: Vec<bool> = frames.iter().map(|f| f.keyframe).collect();
        assert_eq!(keys, [true, false, false, false, false]);
    }

    #[test]
    fn idr_after_non_idr_and_end_of_sequence_split() {
        let stream: &[u8] = &[
            0, 0, 1, 0x41, 0x40, // P, first_mb 1 (odd stream start)
            0, 0, 1, 0x65, 0x40, // IDR, first_mb 1: IDR-ness changed -> new AU
            0, 0, 1, 0x0a, // end of sequence
            0, 0, 1, 0x0c, 0xff, // filler after end of sequence -> new AU
        ];
        let frames = split(stream, ReadOptions::default());
        assert!(concat(&frames) == stream);
        let types: Vec<Vec<u8>> = frames.iter().map(|f| nal_types(&f.data)).collect();
        assert_eq!(types, [vec![1], vec![5, 10], vec![12]]);
        assert_eq!(
            frames.iter().map(|f| f.keyframe).collect::<Vec<_>>(),
            [false, true, false]
        );
    }

    /// Encodes `v` as ue(v), pads with a stop bit, and inserts emulation prevention bytes.
    fn slice_with_first_mb(v: u32) -> Vec<u8> {
        let code = u64::from(v) + 1;
        let len = 64 - code.leading_zeros();
        let mut bits: Vec<u8> = vec![0; (len - 1) as usize];
        bits.extend((0..len).rev().map(|i| ((code >> i) & 1) as u8));
        bits.push(1); // rbsp stop bit
        while bits.len() % 8 != 0 {
            bits.push(0);
        }
        let rbsp: Vec<u8> = bits
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |a, b| (a << 1) | b))
            .collect();
        let mut nal = vec![0x41];
        let mut zeros = 0;
        for b in rbsp {
            if zeros >= 2 && b <= 3 {
                nal.push(3);
                zeros = 0;
            }
            nal.push(b);
            zeros = if b == 0 { zeros + 1 } else { 0 };
        }
        nal
    }

    #[test]
    fn first_mb_in_slice_handles_emulation_prevention() {
        for v in [
            0,
            1,
            2,
            7,
            1800,
            3599,
            (1 << 22) + 4,
            (1 << 23) - 1,
            u32::MAX - 1,
        ] {
            let nal = slice_with_first_mb(v);
            assert_eq!(first_mb_in_slice(&nal), Some(v), "{v}: {nal:02x?}");
        }
        assert!(slice_with_first_mb((1 << 22) + 4)
            .windows(3)
            .any(|w| w == [0, 0, 3]));
        assert_eq!(first_mb_in_slice(&[0x41]), None);
        assert_eq!(first_mb_in_slice(&[]), None);
        assert_eq!(first_mb_in_slice(&[0x41, 0, 0, 3, 0, 0, 3, 0, 0]), None);
        assert_eq!(first_mb_in_slice(&[0x41, 0, 0, 0, 0, 0x80]), None);
    }

    #[test]
    fn start_code_detection() {
        assert!(starts_with_start_code(&[0, 0, 1]));
        assert!(starts_with_start_code(&[0, 0, 0, 1, 0x67]));
        assert!(starts_with_start_code(&[0, 0, 0, 0, 0, 1]));
        assert!(!starts_with_start_code(&[0, 1]));
        assert!(!starts_with_start_code(&[0, 0, 0]));
        assert!(!starts_with_start_code(&[0, 0, 2, 1]));
        assert!(!starts_with_start_code(&[]));
        assert!(validate_frame(&[0x65]).is_err());
    }

    #[test]
    fn degenerate_streams_do_not_panic() {
        let cases: [&[u8]; 7] = [
            &[0, 0, 1],
            &[0, 0, 1, 0, 0, 1, 0, 0, 1],
            &[0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
            &[0, 0, 1, 0x65],
            &[0, 0, 1, 0x65, 0, 0, 1, 0x65, 0x00, 0, 0, 1, 0x41],
            &[0, 0, 1, 0xff, 0xff, 0, 0, 1, 0x09],
            &[0, 0, 1, 0x09, 0, 0, 1, 0x09, 0, 0, 1, 0x09],
        ];
        for stream in cases {
            let frames = split(stream, ReadOptions::default());
            assert!(concat(&frames) == stream, "{stream:?}");
            assert!(!frames.is_empty());
        }
    }
}
