//! The IVF container: parsing and writing its headers, and per-codec keyframe detection.
//!
//! Layout (all little endian): a 32-byte file header — signature `DKIF`, version u16 (0), header
//! size u16 (32), fourcc, width u16, height u16, timebase denominator u32, timebase numerator u32,
//! frame count u32, unused u32 — followed by frames, each a 12-byte header (payload size u32,
//! timestamp u64 in timebase units) and the payload.
//!
//! This module only frames the data. It does not decode; keyframe detection reads the first few
//! bits of each payload (VP8: exact; VP9: best effort; AV1: a heuristic — see the functions). It
//! does not trust the header's frame count, does not require timestamps to be monotonic, and
//! never sizes an allocation from a length read from the file (frames are slices of the input).

use bytes::Bytes;

use super::{Codec, MediaError, MediaFrame, ReadOptions};

/// The 4-byte IVF file signature.
pub const SIGNATURE: [u8; 4] = *b"DKIF";
/// Size of the IVF file header written by this module (and the minimum accepted).
pub const FILE_HEADER_LEN: usize = 32;
/// Size of the per-frame header.
pub const FRAME_HEADER_LEN: usize = 12;
/// Timebase denominator used by [`super::MediaWriter`]: timestamps are microseconds.
pub const WRITER_TIMEBASE_DEN: u32 = 1_000_000;

/// A parsed IVF file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IvfHeader {
    /// Codec named by the fourcc.
    pub codec: Codec,
    /// Declared width in pixels (0 if unknown).
    pub width: u16,
    /// Declared height in pixels (0 if unknown).
    pub height: u16,
    /// Timebase denominator (the "rate"); timestamps count units of `num / den` seconds.
    pub timebase_den: u32,
    /// Timebase numerator (the "scale").
    pub timebase_num: u32,
    /// Declared frame count; untrusted, informational only.
    pub frame_count: u32,
    /// Declared header length; frames start at this offset (at least 32).
    pub header_len: u16,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Parses and validates the file header at the start of `data`.
///
/// Errors: [`MediaError::NotRecognized`] without the `DKIF` signature, [`MediaError::Truncated`]
/// if the header is cut short, [`MediaError::UnsupportedVersion`] for a version other than 0,
/// [`MediaError::UnsupportedCodec`] for an unknown fourcc, and [`MediaError::InvalidHeader`] for
/// a header size below 32 or a zero timebase numerator/denominator.
pub fn parse_file_header(data: &[u8]) -> Result<IvfHeader, MediaError> {
    if !data.starts_with(&SIGNATURE) {
        return Err(MediaError::NotRecognized);
    }
    if data.len() < FILE_HEADER_LEN {
        return Err(MediaError::Truncated {
            what: "IVF file header",
            offset: 0,
            needed: FILE_HEADER_LEN as u64,
            available: data.len() as u64,
        });
    }
    let version = u16_at(data, 4);
    if version != 0 {
        return Err(MediaError::UnsupportedVersion(version));
    }
    let header_len = u16_at(data, 6);
    if usize::from(header_len) < FILE_HEADER_LEN {
        return Err(MediaError::InvalidHeader("header size is below 32 bytes"));
    }
    if usize::from(header_len) > data.len() {
        return Err(MediaError::Truncated {
            what: "IVF file header",
            offset: 0,
            needed: u64::from(header_len),
            available: data.len() as u64,
        });
    }
    let fourcc = [data[8], data[9], data[10], data[11]];
    let codec = Codec::from_ivf_fourcc(fourcc).ok_or(MediaError::UnsupportedCodec(fourcc))?;
    let timebase_den = u32_at(data, 16);
    let timebase_num = u32_at(data, 20);
    if timebase_den == 0 {
        return Err(MediaError::InvalidHeader("timebase denominator is zero"));
    }
    if timebase_num == 0 {
        return Err(MediaError::InvalidHeader("timebase numerator is zero"));
    }
    Ok(IvfHeader {
        codec,
        width: u16_at(data, 12),
        height: u16_at(data, 14),
        timebase_den,
        timebase_num,
        frame_count: u32_at(data, 24),
        header_len,
    })
}

/// Encodes the 32-byte file header used by [`super::MediaWriter`] (timebase 1/1 000 000).
/// `fourcc` comes from [`Codec::ivf_fourcc`].
pub fn encode_file_header(fourcc: [u8; 4], width: u16, height: u16, frame_count: u32) -> [u8; 32] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[0..4].copy_from_slice(&SIGNATURE);
    h[4..6].copy_from_slice(&0u16.to_le_bytes());
    h[6..8].copy_from_slice(&(FILE_HEADER_LEN as u16).to_le_bytes());
    h[8..12].copy_from_slice(&fourcc);
    h[12..14].copy_from_slice(&width.to_le_bytes());
    h[14..16].copy_from_slice(&height.to_le_bytes());
    h[16..20].copy_from_slice(&WRITER_TIMEBASE_DEN.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[24..28].copy_from_slice(&frame_count.to_le_bytes());
    h
}

/// Encodes a 12-byte frame header; `pts_us` is stored as-is (the writer's timebase is 1 µs).
///
/// Errors with [`MediaError::FrameTooLarge`] if `size` does not fit the 32-bit size field.
pub fn encode_frame_header(size: usize, pts_us: u64) -> Result<[u8; 12], MediaError> {
    let size32 = u32::try_from(size).map_err(|_| MediaError::FrameTooLarge {
        size: size as u64,
        max: u64::from(u32::MAX),
    })?;
    let mut h = [0u8; FRAME_HEADER_LEN];
    h[0..4].copy_from_slice(&size32.to_le_bytes());
    h[4..12].copy_from_slice(&pts_us.to_le_bytes());
    Ok(h)
}

/// Converts a timestamp in `num / den` second units to microseconds, rounding down and
/// saturating at `u64::MAX` (computed in 128 bits, so it cannot overflow).
pub fn timestamp_to_us(ts: u64, num: u32, den: u32) -> u64 {
    if den == 0 {
        return u64::MAX;
    }
    let us = u128::from(ts) * u128::from(num) * 1_000_000 / u128::from(den);
    u64::try_from(us).unwrap_or(u64::MAX)
}

/// Iterates over the frames of an in-memory IVF file.
pub struct IvfReader {
    data: Bytes,
    pos: usize,
    header: IvfHeader,
    max_frame_bytes: usize,
}

impl std::fmt::Debug for IvfReader {
    // Not derived: that would dump the whole recording.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IvfReader")
            .field("len", &self.data.len())
            .field("pos", &self.pos)
            .field("header", &self.header)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .finish()
    }
}

impl IvfReader {
    /// Parses the file header (see [`parse_file_header`]); frames are read lazily.
    pub fn new(data: Bytes, opts: ReadOptions) -> Result<IvfReader, MediaError> {
        let header = parse_file_header(&data)?;
        Ok(IvfReader {
            pos: usize::from(header.header_len),
            data,
            header,
            max_frame_bytes: opts.max_frame_bytes,
        })
    }

    /// The parsed file header.
    pub fn header(&self) -> &IvfHeader {
        &self.header
    }

    /// Reads the next frame; `None` at a clean end of file (exactly after a frame).
    pub fn next_frame(&mut self) -> Option<Result<MediaFrame, MediaError>> {
        let remaining = self.data.len().checked_sub(self.pos)?;
        if remaining == 0 {
            return None;
        }
        Some(self.read_frame(remaining))
    }

    fn read_frame(&mut self, remaining: usize) -> Result<MediaFrame, MediaError> {
        let at = self.pos;
        if remaining < FRAME_HEADER_LEN {
            return Err(MediaError::Truncated {
                what: "IVF frame header",
                offset: at as u64,
                needed: FRAME_HEADER_LEN as u64,
                available: remaining as u64,
            });
        }
        let size = u32_at(&self.data, at);
        let ts = u64_at(&self.data, at + 4);
        if u64::from(size) > self.max_frame_bytes as u64 {
            return Err(MediaError::FrameTooLarge {
                size: u64::from(size),
                max: self.max_frame_bytes as u64,
            });
        }
        let available = remaining - FRAME_HEADER_LEN;
        // `size <= max_frame_bytes`, so it fits in usize.
        let size = size as usize;
        if size > available {
            return Err(MediaError::Truncated {
                what: "IVF frame payload",
                offset: (at + FRAME_HEADER_LEN) as u64,
                needed: size as u64,
                available: available as u64,
            });
        }
        let start = at + FRAME_HEADER_LEN;
        let data = self.data.slice(start..start + size);
        self.pos = start + size;
        let codec = self.header.codec;
        Ok(MediaFrame {
            codec,
            keyframe: is_keyframe(codec, &data),
            pts_us: timestamp_to_us(ts, self.header.timebase_num, self.header.timebase_den),
            data,
        })
    }
}

/// Whether an IVF frame payload is a keyframe, dispatching on `codec`; `false` for H.264 (use
/// the Annex B reader) and for empty payloads.
pub fn is_keyframe(codec: Codec, frame: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => vp8_is_keyframe(frame),
        Codec::Vp9 => vp9_is_keyframe(frame),
        Codec::Av1 => av1_is_keyframe(frame),
        Codec::H264 => false,
    }
}

/// VP8 (RFC 6386 §9.1): a frame is a keyframe when bit 0 of the first byte (`frame_type`) is 0.
pub fn vp8_is_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|b| b & 1 == 0)
}

/// Width and height of a VP8 keyframe: after the 3-byte frame tag comes the start code
/// `9d 01 2a`, then 14-bit width and 14-bit height (little endian, top 2 bits are scaling).
/// `None` for interframes and anything too short.
pub fn vp8_dimensions(frame: &[u8]) -> Option<(u16, u16)> {
    if !vp8_is_keyframe(frame) || frame.len() < 10 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16_at(frame, 6) & 0x3fff;
    let h = u16_at(frame, 8) & 0x3fff;
    (w != 0 && h != 0).then_some((w, h))
}

/// Reads bits MSB-first from a byte slice (VP9 uncompressed header; no emulation prevention).
struct Bits<'a> {
    data: &'a [u8],
    bit: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.bit / 8)?;
            let b = (byte >> (7 - self.bit % 8)) & 1;
            v = (v << 1) | u32::from(b);
            self.bit += 1;
        }
        Some(v)
    }
}

/// Parsed start of a VP9 uncompressed header (VP9 bitstream spec §6.2).
struct Vp9Start {
    profile: u32,
    keyframe: bool,
}

fn vp9_start(bits: &mut Bits<'_>) -> Option<Vp9Start> {
    if bits.read(2)? != 2 {
        return None; // frame_marker
    }
    let low = bits.read(1)?;
    let high = bits.read(1)?;
    let profile = (high << 1) | low;
    if profile == 3 {
        bits.read(1)?; // reserved_zero
    }
    if bits.read(1)? == 1 {
        // show_existing_frame: re-displays an already decoded frame, decodes nothing new.
        return Some(Vp9Start {
            profile,
            keyframe: false,
        });
    }
    let frame_type = bits.read(1)?; // 0 = KEY_FRAME
    Some(Vp9Start {
        profile,
        keyframe: frame_type == 0,
    })
}

/// VP9, best effort: parses the start of the uncompressed header of the first frame in the
/// payload — frame_marker, profile bits (plus the reserved bit of profile 3),
/// show_existing_frame and frame_type — and reports a keyframe when frame_type is KEY_FRAME.
///
/// A superframe (several frames plus an index at the end) starts with its first frame, which is
/// where a keyframe would be, so the index is not parsed. Intra-only frames (non-key frames that
/// do not reference others) count as non-keyframes, and a shown-existing frame is never a
/// keyframe. Anything that does not parse is not a keyframe.
pub fn vp9_is_keyframe(frame: &[u8]) -> bool {
    let mut bits = Bits {
        data: frame,
        bit: 0,
    };
    vp9_start(&mut bits).is_some_and(|s| s.keyframe)
}

/// Width and height of a VP9 keyframe, from the uncompressed header's frame_size after the sync
/// code and color config. `None` for non-keyframes, sizes above 65535 and unparsable input.
pub fn vp9_dimensions(frame: &[u8]) -> Option<(u16, u16)> {
    let mut bits = Bits {
        data: frame,
        bit: 0,
    };
    let start = vp9_start(&mut bits)?;
    if !start.keyframe {
        return None;
    }
    bits.read(2)?; // show_frame, error_resilient_mode
    if bits.read(24)? != 0x49_83_42 {
        return None; // frame_sync_code
    }
    let odd_profile = start.profile == 1 || start.profile == 3;
    if start.profile >= 2 {
        bits.read(1)?; // ten_or_twelve_bit
    }
    let color_space = bits.read(3)?;
    if color_space != 7 {
        bits.read(1)?; // color_range
        if odd_profile {
            bits.read(3)?; // subsampling_x, subsampling_y, reserved_zero
        }
    } else if odd_profile {
        bits.read(1)?; // reserved_zero
    }
    let w = bits.read(16)? + 1;
    let h = bits.read(16)? + 1;
    Some((u16::try_from(w).ok()?, u16::try_from(h).ok()?))
}

/// Reads an AV1 leb128 value (at most 8 bytes); returns (value, bytes used).
fn leb128(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in data.iter().take(8).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// AV1, heuristic: a temporal unit counts as a keyframe if it contains an OBU_SEQUENCE_HEADER
/// (OBU type 1).
///
/// Encoders (libaom, SVT-AV1, rav1e) emit a sequence header in front of every key frame, and a
/// decoder needs one to start, so this matches "a decoder can start here" in practice without
/// parsing the frame header (which would need the sequence header's fields). It can be wrong for
/// streams that repeat the sequence header on non-key frames, or that put key frames without
/// one. The OBUs are walked using their size fields (low-overhead format, as in IVF); the walk
/// stops at malformed data or at an OBU without a size field (which extends to the end).
pub fn av1_is_keyframe(frame: &[u8]) -> bool {
    const OBU_SEQUENCE_HEADER: u8 = 1;
    let mut pos = 0usize;
    while let Some(&header) = frame.get(pos) {
        if header & 0x80 != 0 {
            return false; // forbidden bit
        }
        if (header >> 3) & 0x0f == OBU_SEQUENCE_HEADER {
            return true;
        }
        let has_extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        if !has_size {
            return false;
        }
        pos += 1 + usize::from(has_extension);
        let Some((size, used)) = frame.get(pos..).and_then(leb128) else {
            return false;
        };
        let Some(next) = usize::try_from(size)
            .ok()
            .and_then(|s| pos.checked_add(used)?.checked_add(s))
        else {
            return false;
        };
        pos = next;
    }
    false
}

/// Width and height of a keyframe when the codec's frame header carries them in an easily
/// parsed place (VP8, VP9); `None` otherwise (AV1, H.264, non-keyframes).
pub fn frame_dimensions(codec: Codec, frame: &[u8]) -> Option<(u16, u16)> {
    match codec {
        Codec::Vp8 => vp8_dimensions(frame),
        Codec::Vp9 => vp9_dimensions(frame),
        Codec::Av1 | Codec::H264 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::MediaReader;

    const VP8: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/screen-vp8-720p.ivf"
    );

    fn fixture() -> Vec<u8> {
        std::fs::read(VP8).unwrap()
    }

    fn reader(data: Vec<u8>) -> Result<MediaReader, MediaError> {
        MediaReader::from_bytes(data.into(), ReadOptions::default())
    }

    fn first_error(data: Vec<u8>) -> MediaError {
        match reader(data) {
            Err(e) => e,
            Ok(r) => r
                .into_iter()
                .find_map(Result::err)
                .expect("expected an error"),
        }
    }

    #[test]
    fn vp8_fixture_header_and_frames() {
        let data = fixture();
        let header = parse_file_header(&data).unwrap();
        assert_eq!(header.codec, Codec::Vp8);
        assert_eq!((header.width, header.height), (1280, 720));
        assert_eq!((header.timebase_num, header.timebase_den), (1, 15));
        let frames = reader(data)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(frames.len(), header.frame_count as usize);
        assert!(frames[0].keyframe);
        assert_eq!(vp8_dimensions(&frames[0].data), Some((1280, 720)));
        let keyframes: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].keyframe).collect();
        assert_eq!(keyframes, [0, 30, 60, 90, 120]);
        assert_eq!(frames[1].pts_us, 66_666);
        assert_eq!(frames.last().unwrap().pts_us, 149 * 1_000_000 / 15);
        assert!(frames.windows(2).all(|w| w[0].pts_us < w[1].pts_us));
    }

    #[test]
    fn timestamps_use_the_timebase_without_overflow() {
        assert_eq!(timestamp_to_us(1, 1, 15), 66_666);
        assert_eq!(timestamp_to_us(90_000, 1, 90_000), 1_000_000);
        assert_eq!(timestamp_to_us(3, 1001, 30_000), 100_100);
        assert_eq!(timestamp_to_us(u64::MAX, u32::MAX, 1), u64::MAX);
        assert_eq!(timestamp_to_us(u64::MAX, 1, 1_000_000), u64::MAX);
        assert_eq!(
            timestamp_to_us(u64::MAX, 1, u32::MAX),
            4_294_967_297_000_000
        );
    }

    #[test]
    fn truncated_header_is_an_error() {
        let data = fixture();
        for len in [4, 5, 16, 31] {
            assert!(
                matches!(
                    first_error(data[..len].to_vec()),
                    MediaError::Truncated { offset: 0, .. }
                ),
                "len {len}"
            );
        }
        // A header-only file is a valid, empty recording.
        assert_eq!(reader(data[..32].to_vec()).unwrap().count(), 0);
    }

    #[test]
    fn bad_header_fields_are_errors() {
        let data = fixture();
        let patched = |at: usize, bytes: &[u8]| {
            let mut d = data.clone();
            d[at..at + bytes.len()].copy_from_slice(bytes);
            first_error(d)
        };
        assert!(matches!(
            patched(4, &[1, 0]),
            MediaError::UnsupportedVersion(1)
        ));
        assert!(matches!(patched(6, &[16, 0]), MediaError::InvalidHeader(_)));
        let mut short = data[..100].to_vec();
        short[6..8].copy_from_slice(&[0xff, 0xff]);
        assert!(matches!(
            first_error(short),
            MediaError::Truncated {
                needed: 0xffff,
                available: 100,
                ..
            }
        ));
        assert!(matches!(
            patched(8, b"H264"),
            MediaError::UnsupportedCodec(f) if &f == b"H264"
        ));
        assert!(matches!(
            patched(16, &[0, 0, 0, 0]),
            MediaError::InvalidHeader(_)
        ));
        assert!(matches!(
            patched(20, &[0, 0, 0, 0]),
            MediaError::InvalidHeader(_)
        ));
        let msg = patched(8, b"XY\x00Z").to_string();
        assert!(msg.contains("XY"), "{msg}");
    }

    #[test]
    fn huge_frame_length_is_rejected_without_allocating() {
        let mut data = fixture();
        data[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            first_error(data.clone()),
            MediaError::FrameTooLarge {
                size: 0xFFFF_FFFF,
                max
            } if max == crate::media::DEFAULT_MAX_FRAME_BYTES as u64
        ));
        // Even with no limit, the declared length only leads to a bounds check.
        let opts = ReadOptions {
            max_frame_bytes: usize::MAX,
            ..ReadOptions::default()
        };
        let mut r = MediaReader::from_bytes(data.into(), opts).unwrap();
        assert!(matches!(
            r.next(),
            Some(Err(MediaError::Truncated {
                what: "IVF frame payload",
                needed: 0xFFFF_FFFF,
                ..
            }))
        ));
    }

    #[test]
    fn truncated_frames_are_errors() {
        let data = fixture();
        let frames = reader(data.clone()).unwrap().count();
        // Cut inside the first frame header, inside the first payload, and at the very end.
        for cut in [32 + 1, 32 + 11, 32 + 12 + 100, data.len() - 1] {
            let r = reader(data[..cut].to_vec()).unwrap();
            let results: Vec<_> = r.collect();
            assert!(matches!(
                results.last(),
                Some(Err(MediaError::Truncated { .. }))
            ));
            assert!(results.len() <= frames);
        }
    }

    #[test]
    fn small_frame_limit_is_enforced() {
        let opts = ReadOptions {
            max_frame_bytes: 1000,
            ..ReadOptions::default()
        };
        let r = MediaReader::from_bytes(fixture().into(), opts).unwrap();
        assert!(r
            .into_iter()
            .any(|f| matches!(f, Err(MediaError::FrameTooLarge { max: 1000, .. }))));
    }

    #[test]
    fn mutated_fixture_never_panics() {
        let data = fixture();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..300 {
            let mut d = data[..4096].to_vec();
            for _ in 0..8 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = 4 + (seed as usize % (d.len() - 4));
                d[at] = (seed >> 32) as u8;
            }
            if let Ok(r) = reader(d) {
                for f in r {
                    if f.is_err() {
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn header_encoding_round_trips() {
        let h = encode_file_header(*b"AV01", 640, 480, 7);
        let parsed = parse_file_header(&h).unwrap();
        assert_eq!(
            parsed,
            IvfHeader {
                codec: Codec::Av1,
                width: 640,
                height: 480,
                timebase_den: 1_000_000,
                timebase_num: 1,
                frame_count: 7,
                header_len: 32,
            }
        );
        let fh = encode_frame_header(5, 123).unwrap();
        assert_eq!(u32_at(&fh, 0), 5);
        assert_eq!(u64_at(&fh, 4), 123);
    }

    #[test]
    fn vp9_header_parsing() {
        // frame_marker=2, profile 0, show_existing=0, frame_type=0 (key), show_frame=1,
        // error_res=0, sync code, color_space=1 (BT.601), color_range=0, 320x240.
        let mut bits: Vec<u8> = Vec::new();
        let mut push = |v: u32, n: u32| {
            for i in (0..n).rev() {
                bits.push(((v >> i) & 1) as u8);
            }
        };
        push(2, 2);
        push(0, 2);
        push(0, 1);
        push(0, 1);
        push(1, 1);
        push(0, 1);
        push(0x49_83_42, 24);
        push(1, 3);
        push(0, 1);
        push(319, 16);
        push(239, 16);
        let bytes: Vec<u8> = bits
            .chunks(8)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0u8, |a, (i, b)| a | (b << (7 - i)))
            })
            .collect();
        assert!(vp9_is_keyframe(&bytes));
        assert_eq!(vp9_dimensions(&bytes), Some((320, 240)));
        // Same header with frame_type = 1 (inter).
        let mut inter = bytes.clone();
        inter[0] |= 0b0000_0100;
        assert!(!vp9_is_keyframe(&inter));
        assert_eq!(vp9_dimensions(&inter), None);
        // show_existing_frame = 1.
        assert!(!vp9_is_keyframe(&[0b1000_1000]));
        // Profile 3 has a reserved bit before show_existing_frame: 10 1 1 0 0 0 -> key frame.
        assert!(vp9_is_keyframe(&[0b1011_0000]));
        // Wrong frame marker, empty.
        assert!(!vp9_is_keyframe(&[0b0000_0000]));
        assert!(!vp9_is_keyframe(&[]));
        assert_eq!(vp9_dimensions(&bytes[..5]), None);
    }

    #[test]
    fn av1_sequence_header_heuristic() {
        // temporal delimiter (type 2, size 0), then sequence header (type 1).
        assert!(av1_is_keyframe(&[0x12, 0x00, 0x0a, 0x01, 0xAA]));
        // temporal delimiter, then frame OBU (type 6) only.
        assert!(!av1_is_keyframe(&[0x12, 0x00, 0x32, 0x02, 0xAA, 0xBB]));
        // OBU with extension byte and a two-byte leb128 size, then a sequence header.
        let mut tu = vec![0x36, 0x00, 0x80, 0x01];
        tu.extend([0u8; 128]);
        tu.extend([0x0a, 0x00]);
        assert!(av1_is_keyframe(&tu));
        // Size runs past the end / unterminated leb128 / forbidden bit / empty.
        assert!(!av1_is_keyframe(&[
            0x32, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f
        ]));
        assert!(!av1_is_keyframe(&[0x32, 0x80]));
        assert!(!av1_is_keyframe(&[0x8a, 0x00]));
        assert!(!av1_is_keyframe(&[]));
    }

    #[test]
    fn vp8_keyframe_bit() {
        assert!(vp8_is_keyframe(&[0x10]));
        assert!(!vp8_is_keyframe(&[0x11]));
        assert!(!vp8_is_keyframe(&[]));
        assert_eq!(vp8_dimensions(&[0x10, 0, 0, 0x9d, 0x01, 0x2a, 0x80]), None);
        assert_eq!(
            vp8_dimensions(&[0x10, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x41, 0x10, 0x00]),
            Some((0x0140, 0x0010))
        );
    }
}
