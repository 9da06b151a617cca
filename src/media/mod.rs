//! Reading and writing screen recordings frame by frame.
//!
//! A recording is split into encoded frames ([`MediaFrame`]) by [`MediaReader`], and received
//! frames are written back into a file ffmpeg can decode by [`MediaWriter`]. Two formats are
//! supported:
//!
//! * IVF (the libvpx test container) carrying VP8, VP9 or AV1 — see [`ivf`];
//! * raw H.264 Annex B byte streams — see [`annexb`].
//!
//! What this module deliberately does **not** do: it does not decode, re-encode, scale or
//! validate the video bitstream; it only parses as much of each frame as is needed to find frame
//! boundaries and keyframes (a best effort for VP9/AV1/H.264, documented per function). It does
//! not handle other containers (MP4, WebM/Matroska, MPEG-TS), other codecs (H.265) or audio, and
//! it does not stream: [`MediaReader::open`] reads the whole file into memory, which is fine for
//! the short recordings the relay deals with.
//!
//! Everything that comes from a file is treated as untrusted: truncated or garbage input yields a
//! [`MediaError`], never a panic, and no allocation is sized from a length read from the input.

pub mod annexb;
pub mod ivf;

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::iter::FusedIterator;
use std::path::Path;

use bytes::Bytes;

/// Video codec of an encoded frame. Wire values are fixed (documented in docs/PROTOCOL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// VP8 (IVF fourcc `VP80`).
    Vp8 = 1,
    /// VP9 (IVF fourcc `VP90`).
    Vp9 = 2,
    /// AV1 (IVF fourcc `AV01`).
    Av1 = 3,
    /// H.264 / AVC in Annex B byte-stream format.
    H264 = 4,
}

impl Codec {
    /// All codecs, in wire-value order.
    pub const ALL: [Codec; 4] = [Codec::Vp8, Codec::Vp9, Codec::Av1, Codec::H264];

    /// The fixed one-byte wire value of this codec.
    pub fn to_wire(self) -> u8 {
        self as u8
    }

    /// Parses a wire value; `None` for values that name no codec.
    pub fn from_wire(v: u8) -> Option<Codec> {
        match v {
            1 => Some(Codec::Vp8),
            2 => Some(Codec::Vp9),
            3 => Some(Codec::Av1),
            4 => Some(Codec::H264),
            _ => None,
        }
    }

    /// Lower-case short name: `"vp8"`, `"vp9"`, `"av1"` or `"h264"`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::Av1 => "av1",
            Codec::H264 => "h264",
        }
    }

    /// The IVF fourcc for this codec, or `None` for H.264 (stored as raw Annex B instead).
    pub fn ivf_fourcc(self) -> Option<[u8; 4]> {
        match self {
            Codec::Vp8 => Some(*b"VP80"),
            Codec::Vp9 => Some(*b"VP90"),
            Codec::Av1 => Some(*b"AV01"),
            Codec::H264 => None,
        }
    }

    /// The codec an IVF fourcc names, if supported (`VP80`, `VP90`, `AV01`).
    pub fn from_ivf_fourcc(fourcc: [u8; 4]) -> Option<Codec> {
        match &fourcc {
            b"VP80" => Some(Codec::Vp8),
            b"VP90" => Some(Codec::Vp9),
            b"AV01" => Some(Codec::Av1),
            _ => None,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One encoded frame (an H.264 access unit incl. its start codes, or one IVF frame payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFrame {
    /// Codec of `data`.
    pub codec: Codec,
    /// Whether the frame can be decoded without earlier frames (best effort, see the readers).
    pub keyframe: bool,
    /// Presentation timestamp in microseconds.
    pub pts_us: u64,
    /// The encoded frame.
    pub data: Bytes,
}

/// Errors from reading or writing recordings.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Reading or writing the underlying file failed.
    #[error("media I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The input is neither an IVF file nor an H.264 Annex B byte stream.
    #[error("unrecognized media format (expected an IVF file or an H.264 Annex B stream)")]
    NotRecognized,
    /// The input ends in the middle of a header or a frame.
    #[error("truncated {what} at byte {offset}: need {needed} bytes, only {available} available")]
    Truncated {
        /// What was being read (e.g. "IVF frame payload").
        what: &'static str,
        /// Byte offset in the input where it starts.
        offset: u64,
        /// Bytes needed.
        needed: u64,
        /// Bytes that were left.
        available: u64,
    },
    /// A frame is larger than the configured limit (or than the container can represent).
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Size of the frame in bytes (as declared by the input or as given to the writer).
        size: u64,
        /// The limit that was exceeded.
        max: u64,
    },
    /// The IVF fourcc names a codec this module does not handle.
    #[error("unsupported IVF codec fourcc {:?}", String::from_utf8_lossy(.0))]
    UnsupportedCodec([u8; 4]),
    /// The IVF header has a version other than 0.
    #[error("unsupported IVF version {0} (only version 0 is known)")]
    UnsupportedVersion(u16),
    /// The IVF header is structurally invalid (header size below 32, zero timebase, ...).
    #[error("invalid IVF header: {0}")]
    InvalidHeader(&'static str),
    /// A frame given to [`MediaWriter::write`] has a different codec than the writer.
    #[error("frame codec {got} does not match the writer's codec {expected}")]
    CodecMismatch {
        /// Codec the writer was created for.
        expected: Codec,
        /// Codec of the rejected frame.
        got: Codec,
    },
    /// A frame given to [`MediaWriter::write`] cannot be stored in the output format.
    #[error("invalid frame: {0}")]
    InvalidFrame(&'static str),
    /// A [`ReadOptions`] field has an unusable value.
    #[error("invalid read options: {0}")]
    InvalidOptions(&'static str),
}

/// Default for [`ReadOptions::max_frame_bytes`]: 4 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 4 << 20;
/// Default for [`ReadOptions::h264_fps`].
pub const DEFAULT_H264_FPS: u32 = 30;

/// Options for [`MediaReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Largest frame accepted; a bigger frame is a [`MediaError::FrameTooLarge`] error.
    /// Default 4 MiB.
    pub max_frame_bytes: usize,
    /// Frame rate assumed for H.264 Annex B input, which carries no timestamps:
    /// `pts_us = index * 1_000_000 / h264_fps`. Must be non-zero. Default 30.
    pub h264_fps: u32,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            h264_fps: DEFAULT_H264_FPS,
        }
    }
}

/// Opens a recording, sniffing the format: IVF ("DKIF" signature; fourcc VP80/VP90/AV01) or H.264
/// Annex B (starts with 00 00 01 or 00 00 00 01).
///
/// Iterating yields one [`MediaFrame`] per IVF frame or H.264 access unit. Frames share the
/// reader's buffer (no copies). After the first error the iterator is exhausted.
#[derive(Debug)]
pub struct MediaReader {
    inner: ReaderInner,
    done: bool,
}

#[derive(Debug)]
enum ReaderInner {
    Ivf(ivf::IvfReader),
    AnnexB(annexb::AnnexBReader),
}

impl MediaReader {
    /// Reads the whole file at `path` into memory and sniffs its format (see [`Self::from_bytes`]).
    ///
    /// Recordings are small, so no streaming is attempted; the file size is not limited here.
    pub fn open(path: &Path, opts: ReadOptions) -> Result<MediaReader, MediaError> {
        let data = std::fs::read(path)?;
        MediaReader::from_bytes(Bytes::from(data), opts)
    }

    /// Sniffs the format of an in-memory recording and parses its file header (IVF).
    ///
    /// Errors: [`MediaError::NotRecognized`] for anything that is neither IVF nor Annex B
    /// (including empty input), IVF header errors, and [`MediaError::InvalidOptions`] if
    /// `opts.h264_fps` is zero.
    pub fn from_bytes(data: Bytes, opts: ReadOptions) -> Result<MediaReader, MediaError> {
        if opts.h264_fps == 0 {
            return Err(MediaError::InvalidOptions("h264_fps must be non-zero"));
        }
        let inner = if data.starts_with(&ivf::SIGNATURE) {
            ReaderInner::Ivf(ivf::IvfReader::new(data, opts)?)
        } else if annexb::starts_with_start_code(&data) {
            ReaderInner::AnnexB(annexb::AnnexBReader::new(data, opts)?)
        } else {
            return Err(MediaError::NotRecognized);
        };
        Ok(MediaReader { inner, done: false })
    }

    /// Codec of the recording (from the IVF fourcc, or H.264 for Annex B).
    pub fn codec(&self) -> Codec {
        match &self.inner {
            ReaderInner::Ivf(r) => r.header().codec,
            ReaderInner::AnnexB(_) => Codec::H264,
        }
    }

    /// Width and height declared by the IVF header, if non-zero. Always `None` for H.264 (the SPS
    /// is not parsed).
    pub fn dimensions(&self) -> Option<(u16, u16)> {
        match &self.inner {
            ReaderInner::Ivf(r) => {
                let h = r.header();
                (h.width != 0 && h.height != 0).then_some((h.width, h.height))
            }
            ReaderInner::AnnexB(_) => None,
        }
    }

    /// Frame count declared by the IVF header (untrusted, may be 0 or wrong); `None` for H.264.
    pub fn header_frame_count(&self) -> Option<u32> {
        match &self.inner {
            ReaderInner::Ivf(r) => Some(r.header().frame_count),
            ReaderInner::AnnexB(_) => None,
        }
    }
}

impl Iterator for MediaReader {
    type Item = Result<MediaFrame, MediaError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = match &mut self.inner {
            ReaderInner::Ivf(r) => r.next_frame(),
            ReaderInner::AnnexB(r) => r.next_frame(),
        };
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

impl FusedIterator for MediaReader {}

/// Writes received frames to a file ffmpeg can decode: IVF for VP8/VP9/AV1, raw Annex B for H.264.
///
/// IVF output uses a timebase of 1/1 000 000, so each frame's timestamp is its `pts_us`. The IVF
/// header's frame count (and width/height, taken from the first keyframe whose size can be
/// parsed: VP8 and VP9) is written by [`Self::finish`]; if the writer is dropped without
/// `finish`, buffered data is flushed on a best-effort basis and the header keeps a frame count
/// and size of 0, which ffmpeg still accepts.
#[derive(Debug)]
pub struct MediaWriter {
    codec: Codec,
    /// `Some` for IVF output, `None` for raw Annex B.
    ivf_fourcc: Option<[u8; 4]>,
    out: BufWriter<File>,
    frames: u64,
    dimensions: Option<(u16, u16)>,
}

impl MediaWriter {
    /// Creates (truncating) the file at `path`; for IVF codecs writes a provisional header.
    pub fn create(path: &Path, codec: Codec) -> Result<MediaWriter, MediaError> {
        let mut out = BufWriter::new(File::create(path)?);
        let ivf_fourcc = codec.ivf_fourcc();
        if let Some(fourcc) = ivf_fourcc {
            out.write_all(&ivf::encode_file_header(fourcc, 0, 0, 0))?;
        }
        Ok(MediaWriter {
            codec,
            ivf_fourcc,
            out,
            frames: 0,
            dimensions: None,
        })
    }

    /// Codec this writer accepts.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Number of frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    /// Appends one frame.
    ///
    /// Errors: [`MediaError::CodecMismatch`] if `frame.codec` differs from the writer's codec,
    /// [`MediaError::FrameTooLarge`] for an IVF frame over 4 GiB, [`MediaError::InvalidFrame`] for
    /// an H.264 frame that does not start with an Annex B start code, and I/O errors.
    pub fn write(&mut self, frame: &MediaFrame) -> Result<(), MediaError> {
        if frame.codec != self.codec {
            return Err(MediaError::CodecMismatch {
                expected: self.codec,
                got: frame.codec,
            });
        }
        if self.ivf_fourcc.is_none() {
            annexb::validate_frame(&frame.data)?;
            self.out.write_all(&frame.data)?;
        } else {
            let header = ivf::encode_frame_header(frame.data.len(), frame.pts_us)?;
            if self.dimensions.is_none() {
                self.dimensions = ivf::frame_dimensions(self.codec, &frame.data);
            }
            self.out.write_all(&header)?;
            self.out.write_all(&frame.data)?;
        }
        self.frames += 1;
        Ok(())
    }

    /// Flushes, and for IVF rewrites the header's frame count (and width/height when known).
    ///
    /// Returns the number of frames written. The IVF frame count field is 32 bits; it saturates.
    pub fn finish(self) -> Result<u64, MediaError> {
        let MediaWriter {
            ivf_fourcc,
            out,
            frames,
            dimensions,
            ..
        } = self;
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        if let Some(fourcc) = ivf_fourcc {
            let (width, height) = dimensions.unwrap_or((0, 0));
            let count = u32::try_from(frames).unwrap_or(u32::MAX);
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&ivf::encode_file_header(fourcc, width, height, count))?;
        }
        file.flush()?;
        Ok(frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const VP8: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/screen-vp8-720p.ivf"
    );
    const H264: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/screen-h264-720p.h264"
    );

    fn read_all(path: &Path) -> Vec<MediaFrame> {
        MediaReader::open(path, ReadOptions::default())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    fn write_all(path: &Path, codec: Codec, frames: &[MediaFrame]) -> u64 {
        let mut w = MediaWriter::create(path, codec).unwrap();
        for f in frames {
            w.write(f).unwrap();
        }
        w.finish().unwrap()
    }

    fn have(tool: &str) -> bool {
        Command::new(tool)
            .arg("-version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    #[test]
    fn codec_wire_values_round_trip() {
        for c in Codec::ALL {
            assert_eq!(Codec::from_wire(c.to_wire()), Some(c));
            assert_eq!(c.to_string(), c.name());
            if let Some(fourcc) = c.ivf_fourcc() {
                assert_eq!(Codec::from_ivf_fourcc(fourcc), Some(c));
            }
        }
        assert_eq!(
            [Codec::Vp8, Codec::Vp9, Codec::Av1, Codec::H264].map(Codec::to_wire),
            [1, 2, 3, 4]
        );
        assert_eq!(Codec::from_wire(0), None);
        assert_eq!(Codec::from_wire(5), None);
        assert_eq!(Codec::H264.name(), "h264");
    }

    #[test]
    fn vp8_fixture_round_trips_through_writer() {
        let reader = MediaReader::open(Path::new(VP8), ReadOptions::default()).unwrap();
        assert_eq!(reader.codec(), Codec::Vp8);
        assert_eq!(reader.dimensions(), Some((1280, 720)));
        let header_count = reader.header_frame_count().unwrap();
        let frames = reader.collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(frames.len() as u64, u64::from(header_count));
        assert!(frames[0].keyframe);

        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("copy.ivf");
        assert_eq!(write_all(&out, Codec::Vp8, &frames), frames.len() as u64);
        let reread = MediaReader::open(&out, ReadOptions::default()).unwrap();
        assert_eq!(reread.codec(), Codec::Vp8);
        assert_eq!(reread.dimensions(), Some((1280, 720)));
        assert_eq!(reread.header_frame_count(), Some(header_count));
        let again = reread.collect::<Result<Vec<_>, _>>().unwrap();
        assert_eq!(again, frames);
    }

    #[test]
    fn h264_fixture_writes_back_identically() {
        let input = std::fs::read(H264).unwrap();
        let frames = read_all(Path::new(H264));
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("copy.h264");
        assert_eq!(write_all(&out, Codec::H264, &frames), frames.len() as u64);
        assert!(std::fs::read(&out).unwrap() == input);
    }

    #[test]
    fn reader_rejects_garbage_and_bad_options() {
        for input in [
            &b""[..],
            b"\x00",
            b"\x00\x00",
            b"hello world",
            b"\x00\x01\x02",
        ] {
            let r = MediaReader::from_bytes(Bytes::copy_from_slice(input), ReadOptions::default());
            assert!(matches!(r, Err(MediaError::NotRecognized)), "{input:?}");
        }
        let opts = ReadOptions {
            h264_fps: 0,
            ..ReadOptions::default()
        };
        let r = MediaReader::from_bytes(Bytes::from_static(b"\x00\x00\x01\x09\x10"), opts);
        assert!(matches!(r, Err(MediaError::InvalidOptions(_))));
        let err = MediaReader::open(Path::new("/nonexistent/x.ivf"), ReadOptions::default());
        assert!(matches!(err, Err(MediaError::Io(_))));
    }

    #[test]
    fn reader_is_fused_after_an_error() {
        let mut data = std::fs::read(VP8).unwrap();
        data.truncate(32 + 12 + 5); // first frame payload cut short
        let mut r = MediaReader::from_bytes(data.into(), ReadOptions::default()).unwrap();
        assert!(matches!(r.next(), Some(Err(MediaError::Truncated { .. }))));
        assert!(r.next().is_none());
        assert!(r.next().is_none());
        assert!(
            format!("{r:?}").len() < 1000,
            "Debug must not dump the data"
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let prefixes: [&[u8]; 4] = [b"", b"DKIF\x00\x00\x20\x00VP80", b"\x00\x00\x01", b"DKIF"];
        for round in 0..2000 {
            let len = (rand() % 300) as usize;
            let mut data = prefixes[round % prefixes.len()].to_vec();
            data.extend((0..len).map(|_| {
                let r = rand();
                // Plenty of zeros and small values so start codes and small sizes show up.
                if r % 3 == 0 {
                    0
                } else {
                    (r >> 8) as u8 % if r % 5 == 0 { 4 } else { 255 }
                }
            }));
            let opts = ReadOptions {
                max_frame_bytes: 64,
                h264_fps: 1 + (rand() % 60) as u32,
            };
            if let Ok(reader) = MediaReader::from_bytes(data.clone().into(), opts) {
                let mut total = 0usize;
                for frame in reader {
                    match frame {
                        Ok(f) => {
                            assert!(f.data.len() <= 64);
                            total += f.data.len();
                        }
                        Err(_) => break,
                    }
                }
                assert!(total <= data.len());
            }
        }
    }

    #[test]
    fn writer_rejects_mismatched_and_invalid_frames() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = MediaWriter::create(&dir.path().join("a.ivf"), Codec::Vp8).unwrap();
        let frame = MediaFrame {
            codec: Codec::H264,
            keyframe: true,
            pts_us: 0,
            data: Bytes::from_static(b"\x00\x00\x00\x01\x65\x88"),
        };
        assert!(matches!(
            w.write(&frame),
            Err(MediaError::CodecMismatch {
                expected: Codec::Vp8,
                got: Codec::H264
            })
        ));
        assert_eq!(w.finish().unwrap(), 0);

        let mut w = MediaWriter::create(&dir.path().join("a.h264"), Codec::H264).unwrap();
        w.write(&frame).unwrap();
        let bad = MediaFrame {
            data: Bytes::from_static(b"\x65\x88\x00"),
            ..frame.clone()
        };
        assert!(matches!(w.write(&bad), Err(MediaError::InvalidFrame(_))));
        assert_eq!(w.frames_written(), 1);
        assert_eq!(w.finish().unwrap(), 1);
        assert_eq!(
            std::fs::read(dir.path().join("a.h264")).unwrap(),
            &frame.data[..]
        );
    }

    /// Runs `ffmpeg -v error -i FILE -f null -` and asserts it decodes cleanly.
    fn assert_ffmpeg_decodes(path: &Path) {
        let out = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(path)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "ffmpeg failed on {path:?}: {stderr}");
        assert!(
            stderr.trim().is_empty(),
            "ffmpeg complained on {path:?}: {stderr}"
        );
    }

    #[test]
    fn ffmpeg_decodes_written_files() {
        if !have("ffmpeg") {
            assert!(
                std::env::var_os("CI").is_none(),
                "ffmpeg is required in CI (.ci/run installs it)"
            );
            println!("note: ffmpeg not on PATH, skipping ffmpeg_decodes_written_files");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let ivf = dir.path().join("out.ivf");
        write_all(&ivf, Codec::Vp8, &read_all(Path::new(VP8)));
        assert_ffmpeg_decodes(&ivf);
        let h264 = dir.path().join("out.h264");
        write_all(&h264, Codec::H264, &read_all(Path::new(H264)));
        assert_ffmpeg_decodes(&h264);
    }

    /// Encodes a short test pattern with ffmpeg; `None` if ffmpeg or the encoder is unavailable.
    fn encode_with_ffmpeg(dir: &Path, name: &str, encoder_args: &[&str]) -> Option<Vec<u8>> {
        let path = dir.join(name);
        let out = Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc=size=320x240:rate=15")
            .args(["-frames:v", "45", "-g", "15"])
            .args(encoder_args)
            .arg(&path)
            .output()
            .ok()?;
        if !out.status.success() {
            println!(
                "note: ffmpeg could not encode {name}, skipping: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        std::fs::read(&path).ok()
    }

    /// Keyframe flags of each packet according to ffprobe.
    fn ffprobe_key_flags(path: &Path) -> Option<Vec<bool>> {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "packet=flags",
                "-of",
                "csv=p=0",
            ])
            .arg(path)
            .output()
            .ok()?;
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.starts_with('K'))
                .collect()
        })
    }

    /// VP9 (with alt-ref superframes / show_existing_frame) and AV1 files produced by ffmpeg:
    /// keyframe flags agree with ffprobe's, and writing them back decodes cleanly.
    #[test]
    fn ffmpeg_vp9_and_av1_round_trip() {
        if !have("ffmpeg") || !have("ffprobe") {
            println!("note: ffmpeg/ffprobe not on PATH, skipping ffmpeg_vp9_and_av1_round_trip");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, Codec, &[&str]); 3] = [
            (
                "in-vp9-420.ivf",
                Codec::Vp9,
                &[
                    "-c:v",
                    "libvpx-vp9",
                    "-deadline",
                    "realtime",
                    "-cpu-used",
                    "8",
                    "-pix_fmt",
                    "yuv420p",
                ],
            ),
            (
                // testsrc is RGB, so this is 4:4:4, i.e. VP9 profile 1.
                "in-vp9-444.ivf",
                Codec::Vp9,
                &[
                    "-c:v",
                    "libvpx-vp9",
                    "-deadline",
                    "realtime",
                    "-cpu-used",
                    "8",
                ],
            ),
            (
                "in-av1.ivf",
                Codec::Av1,
                &["-c:v", "libaom-av1", "-cpu-used", "8", "-usage", "realtime"],
            ),
        ];
        for (name, codec, args) in cases {
            let Some(data) = encode_with_ffmpeg(dir.path(), name, args) else {
                continue;
            };
            let reader = MediaReader::from_bytes(data.into(), ReadOptions::default()).unwrap();
            assert_eq!(reader.codec(), codec);
            let frames = reader.collect::<Result<Vec<_>, _>>().unwrap();
            let flags: Vec<bool> = frames.iter().map(|f| f.keyframe).collect();
            assert!(flags[0], "{name}: first frame must be a keyframe");
            assert_eq!(flags.iter().filter(|k| **k).count(), 3, "{name}: {flags:?}");
            if let Some(expected) = ffprobe_key_flags(&dir.path().join(name)) {
                assert_eq!(flags, expected, "{name}");
            }
            let out = dir.path().join(format!("out-{name}"));
            write_all(&out, codec, &frames);
            let reread = MediaReader::open(&out, ReadOptions::default()).unwrap();
            if codec == Codec::Vp9 {
                assert_eq!(reread.dimensions(), Some((320, 240)));
            }
            assert_eq!(reread.collect::<Result<Vec<_>, _>>().unwrap(), frames);
            assert_ffmpeg_decodes(&out);
        }
    }
}
