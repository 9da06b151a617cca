//! Screen shares from a demo client's side: a recording sent paced by its timestamps (the customer, a
//! meeting presenter) and received frames saved to a file ffmpeg plays (the technician, a meeting
//! participant). It does not decode or re-encode: frames go out and come back byte for byte.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{ClientError, MediaSender};
use crate::media::{Codec, MediaFrame, MediaReader, MediaWriter, ReadOptions};
use crate::protocol::{FrameHeader, FRAME_HEADER_LEN};

/// How a shared recording is read and paced (flags of `customer` and `meeting`).
#[derive(Debug, Clone, clap::Args)]
pub struct PacingArgs {
    /// Frame rate of an H.264 Annex B recording (it carries no timestamps; IVF files carry their own).
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Play the recording this many times faster than real time (1 = its own pace).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Send frames as fast as possible instead of at the recording's pace.
    #[arg(long)]
    pub no_pacing: bool,
}

impl PacingArgs {
    /// Reads the whole recording at `path` (IVF or H.264 Annex B) into frames, after checking the flags, so
    /// a bad file or flag is refused before anything reaches the relay.
    pub fn load(&self, path: &Path) -> Result<Vec<MediaFrame>, ClientError> {
        if !(self.speed.is_finite() && self.speed > 0.0) {
            return Err(ClientError::Other(format!(
                "--speed must be a positive number, not {}",
                self.speed
            )));
        }
        let in_file =
            |e: crate::media::MediaError| ClientError::Other(format!("{}: {e}", path.display()));
        let options = ReadOptions {
            h264_fps: self.fps,
            ..ReadOptions::default()
        };
        MediaReader::open(path, options)
            .map_err(in_file)?
            .collect::<Result<_, _>>()
            .map_err(in_file)
    }
}

/// What a share has sent so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub frames: u64,
    pub bytes: u64,
}

/// Sends `frames` on `sender`, each at its timestamp (divided by the speed) after the start unless pacing
/// is off, then finishes the last group and waits until the relay has it. `sent` counts as frames go, so a
/// caller that stops the share early still knows what went out.
pub async fn send_paced(
    sender: &mut MediaSender,
    frames: Vec<MediaFrame>,
    pacing: &PacingArgs,
    sent: &mut Sent,
) -> Result<(), ClientError> {
    let start = Instant::now();
    for f in frames {
        if !pacing.no_pacing {
            let at = Duration::from_micros(f.pts_us).div_f64(pacing.speed.max(0.01));
            tokio::time::sleep_until((start + at).into()).await;
        }
        let len = f.data.len() as u64;
        if sender.send(f.codec, f.keyframe, f.pts_us, f.data).await? {
            sent.frames += 1;
            sent.bytes += len;
        }
    }
    sender.flush().await;
    Ok(())
}

/// The file name extension of a codec's container: `ivf` for VP8, VP9 and AV1, `h264` (Annex B) for H.264.
pub fn extension(codec: Codec) -> &'static str {
    if codec.ivf_fourcc().is_some() {
        "ivf"
    } else {
        "h264"
    }
}

/// Saves one received track to a file, created at the track's first keyframe (frames before it could not
/// be decoded) with the codec that keyframe names.
#[derive(Debug, Default)]
pub struct FrameSaver {
    file: Option<(MediaWriter, PathBuf)>,
    /// Frames written.
    pub frames: u64,
    /// Payload bytes written.
    pub bytes: u64,
}

impl FrameSaver {
    /// The codec of the file, once it is created.
    pub fn codec(&self) -> Option<Codec> {
        self.file.as_ref().map(|(w, _)| w.codec())
    }

    /// The file, once it is created.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|(_, p)| p.as_path())
    }

    /// Saves one received frame; `wire` is its header and payload as a group stream carried them. The file
    /// is created at the first keyframe, at the path `path_for` gives for its codec; a frame before it is
    /// skipped (false).
    pub fn save(
        &mut self,
        wire: &Bytes,
        max_frame: usize,
        path_for: impl FnOnce(Codec) -> PathBuf,
    ) -> Result<bool, ClientError> {
        let header: &[u8; FRAME_HEADER_LEN] = wire
            .get(..FRAME_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| ClientError::Protocol("frame shorter than its header".into()))?;
        let fh = FrameHeader::decode(header, max_frame)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        let writer = match &mut self.file {
            Some((w, _)) => w,
            None if !fh.keyframe => return Ok(false),
            None => {
                let path = path_for(fh.codec);
                let w = MediaWriter::create(&path, fh.codec).map_err(|e| {
                    ClientError::Other(format!("cannot write {}: {e}", path.display()))
                })?;
                &mut self.file.insert((w, path)).0
            }
        };
        writer.write(&MediaFrame {
            codec: fh.codec,
            keyframe: fh.keyframe,
            pts_us: fh.capture_ts_us,
            data: wire.slice(FRAME_HEADER_LEN..),
        })?;
        self.frames += 1;
        self.bytes += u64::from(fh.payload_len);
        Ok(true)
    }

    /// Completes the file (for IVF, its header's frame count and size); nothing to do if none was created.
    pub fn finish(self) -> Result<(), ClientError> {
        if let Some((w, _)) = self.file {
            w.finish()?;
        }
        Ok(())
    }
}
