//! The writer thread: takes items off the queue, writes track files and the log, counts bytes against the
//! quota, and stops itself on the quota or a write error. Only this thread touches the recording's files.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use super::{Counters, Item, RecorderConfig, RecordingSummary, StopReason, EVENTS_FILE};
use crate::clock::Clock;
use crate::core::{Frame, TrackId};
use crate::media::{MediaError, MediaFrame, MediaWriter};
use crate::protocol::{FrameHeader, FRAME_HEADER_LEN};

/// A capture time this far behind the file's last frame means the publisher's clock restarted.
const CLOCK_RESET_US: u64 = 100_000;
/// Where a file goes on after such a restart: one frame interval at 30 frames/s.
const REBASE_GAP_US: u64 = 33_333;

/// Quota bytes kept aside for the `recording_stopped` line, so a recording stopped by its quota still ends
/// with it. That line is under 400 bytes: its numbers are bounded and its error message is cut to
/// [`MAX_ERROR_CHARS`].
const STOP_LINE_RESERVE: u64 = 512;
/// Longest error message in the last log line, in characters.
const MAX_ERROR_CHARS: usize = 160;
/// IVF file header and per-frame header sizes (see `media::ivf`), for the quota.
const IVF_FILE_HEADER: u64 = 32;
const IVF_FRAME_HEADER: u64 = 12;
/// `ENOSPC` on Linux and the BSDs, for errors whose kind the standard library does not map.
const ENOSPC: i32 = 28;

/// Why and how the writer stopped.
struct Stop {
    reason: StopReason,
    error: Option<String>,
}

impl Stop {
    fn quota() -> Stop {
        Stop {
            reason: StopReason::Quota,
            error: None,
        }
    }

    /// A write error on `path`: a full disk or another error.
    fn io(e: &io::Error, path: &Path) -> Stop {
        Stop {
            reason: classify(e),
            error: Some(format!("{}: {e}", path.display())),
        }
    }

    fn media(e: &MediaError, path: &Path) -> Stop {
        match e {
            MediaError::Io(e) => Stop::io(e, path),
            other => Stop {
                reason: StopReason::Io,
                error: Some(format!("{}: {other}", path.display())),
            },
        }
    }
}

/// [`StopReason::DiskFull`] for a full disk or filesystem quota, [`StopReason::Io`] for anything else.
pub(super) fn classify(e: &io::Error) -> StopReason {
    let full = matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || e.raw_os_error() == Some(ENOSPC);
    if full {
        StopReason::DiskFull
    } else {
        StopReason::Io
    }
}

/// One track's files.
#[derive(Default)]
struct Track {
    /// Files opened so far for this track.
    parts: u32,
    /// The file being written; `None` until the track's next keyframe.
    file: Option<TrackFile>,
}

struct TrackFile {
    writer: MediaWriter,
    path: PathBuf,
    first_ts_us: u64,
    last_pts_us: u64,
    /// A frame could not be written: skip to the next keyframe.
    waiting: bool,
}

pub(super) struct Writer {
    dir: PathBuf,
    /// The directory as the log names it.
    log_name: String,
    clock: Arc<dyn Clock>,
    started_ms: u64,
    log: BufWriter<File>,
    log_path: PathBuf,
    quota: u64,
    bytes: u64,
    tracks: HashMap<TrackId, Track>,
    /// Track files in the order they were opened.
    files: Vec<PathBuf>,
    frames_written: u64,
    frames_skipped: u64,
    events_written: u64,
    counters: Arc<Counters>,
}

impl Writer {
    pub(super) fn new(
        cfg: &RecorderConfig,
        clock: Arc<dyn Clock>,
        log: File,
        log_path: PathBuf,
        counters: Arc<Counters>,
    ) -> Writer {
        Writer {
            dir: cfg.dir.clone(),
            log_name: (cfg.log_name.clone()).unwrap_or_else(|| cfg.dir.display().to_string()),
            started_ms: clock.unix_ms(),
            clock,
            log: BufWriter::new(log),
            log_path,
            quota: cfg.quota_bytes,
            bytes: 0,
            tracks: HashMap::new(),
            files: Vec::new(),
            frames_written: 0,
            frames_skipped: 0,
            events_written: 0,
            counters,
        }
    }

    /// Records until the queue closes (a requested stop) or a write stops it, then finishes. Reports the
    /// reason on `stop_tx` as soon as the writer stops by itself, and again (final) when done.
    pub(super) fn run(
        mut self,
        mut rx: mpsc::Receiver<Item>,
        stop_tx: &watch::Sender<Option<StopReason>>,
    ) -> RecordingSummary {
        let stop = match self.record(&mut rx) {
            Ok(reason) => Stop {
                reason,
                error: None,
            },
            Err(stop) => {
                // Refuse further items at once and wake the room before finishing the files.
                rx.close();
                stop_tx.send_replace(Some(stop.reason));
                stop
            }
        };
        drop(rx);
        let summary = self.finish(stop);
        stop_tx.send_replace(Some(summary.reason));
        summary
    }

    /// Returns why it was told to stop (`Requested` when the queue closed without a [`Item::Stop`]).
    fn record(&mut self, rx: &mut mpsc::Receiver<Item>) -> Result<StopReason, Stop> {
        let fields = json!({ "dir": self.log_name, "quota_bytes": self.quota });
        self.log_line(&json_line(self.started_ms, "recording_started", &fields))?;
        self.flush_log()?;
        while let Some(item) = rx.blocking_recv() {
            if let Some(reason) = self.handle(item)? {
                return Ok(reason);
            }
            while let Ok(item) = rx.try_recv() {
                if let Some(reason) = self.handle(item)? {
                    return Ok(reason);
                }
            }
            // The queue is empty: make the log readable while the meeting goes on.
            self.flush_log()?;
        }
        Ok(StopReason::Requested)
    }

    /// Writes one item; `Some(reason)` when it is the last.
    fn handle(&mut self, item: Item) -> Result<Option<StopReason>, Stop> {
        match item {
            Item::Frame(frame) => self.frame(&frame)?,
            Item::Event { t_ms, kind, fields } => {
                self.log_line(&json_line(t_ms, &kind, &fields))?;
                self.events_written += 1;
            }
            Item::EventsDropped { t_ms, count } => self.log_line(&json_line(
                t_ms,
                "events_dropped",
                &json!({ "count": count }),
            ))?,
            Item::Stop(reason) => return Ok(Some(reason)),
        }
        Ok(None)
    }

    fn frame(&mut self, frame: &Frame) -> Result<(), Stop> {
        let Some(header) = parse(&frame.wire) else {
            self.skip(frame.track);
            return Ok(());
        };
        let track = self.tracks.entry(frame.track).or_default();
        if let Some(file) = track.file.take_if(|f| f.writer.codec() != header.codec) {
            // The codec changed: this file ends here, the next keyframe opens the track's next one.
            file.writer
                .finish()
                .map_err(|e| Stop::media(&e, &file.path))?;
        }
        let waiting = track.file.as_ref().is_none_or(|f| f.waiting);
        if waiting && !header.keyframe {
            self.frames_skipped += 1;
            return Ok(());
        }
        let payload = frame.wire.slice(FRAME_HEADER_LEN..);
        let ivf = header.codec.ivf_fourcc().is_some();
        let cost = payload.len() as u64 + if ivf { IVF_FRAME_HEADER } else { 0 };
        if track.file.is_none() {
            self.open(frame, &header, cost)?;
        } else {
            self.check(cost)?;
        }
        let track = self
            .tracks
            .get_mut(&frame.track)
            .expect("the track was opened");
        let file = track.file.as_mut().expect("the file was opened");
        let mut raw = header.capture_ts_us.saturating_sub(file.first_ts_us);
        let behind =
            header.capture_ts_us < file.first_ts_us || raw + CLOCK_RESET_US < file.last_pts_us;
        if file.writer.frames_written() > 0 && behind {
            // The publisher's clock restarted (it came back on a new connection): the file goes on one
            // frame interval after its last frame instead of running backwards.
            raw = file.last_pts_us + REBASE_GAP_US;
            file.first_ts_us = header.capture_ts_us.saturating_sub(raw);
        }
        let pts_us = if file.writer.frames_written() == 0 {
            0
        } else {
            raw.max(file.last_pts_us + 1)
        };
        let media = MediaFrame {
            codec: header.codec,
            keyframe: header.keyframe,
            pts_us,
            data: payload,
        };
        match file.writer.write(&media) {
            Ok(()) => {
                file.last_pts_us = pts_us;
                file.waiting = false;
                self.bytes += cost;
                self.frames_written += 1;
                Ok(())
            }
            Err(MediaError::Io(e)) => Err(Stop::io(&e, &file.path)),
            Err(_) => {
                // Not storable in this format (an H.264 frame without a start code): skip to a keyframe.
                file.waiting = true;
                self.frames_skipped += 1;
                Ok(())
            }
        }
    }

    /// Skips a malformed frame; its track waits for a keyframe.
    fn skip(&mut self, track: TrackId) {
        self.frames_skipped += 1;
        if let Some(file) = self.tracks.get_mut(&track).and_then(|t| t.file.as_mut()) {
            file.waiting = true;
        }
    }

    /// Opens the track's next file for `header`'s keyframe, with its `track_file` log line, if they and the
    /// frame (`cost` bytes) fit in the quota.
    fn open(&mut self, frame: &Frame, header: &FrameHeader, cost: u64) -> Result<(), Stop> {
        let track = self.tracks.entry(frame.track).or_default();
        let part = track.parts + 1;
        let ext = if header.codec.ivf_fourcc().is_some() {
            "ivf"
        } else {
            "h264"
        };
        let name = match part {
            1 => format!("track-{}.{ext}", frame.track),
            n => format!("track-{}-{n}.{ext}", frame.track),
        };
        let t_ms = unix_ms(self.clock.as_ref(), frame);
        let fields = json!({
            "track": frame.track,
            "file": name,
            "codec": header.codec.name(),
            "capture_ts_us": header.capture_ts_us,
        });
        let line = json_line(t_ms, "track_file", &fields);
        let file_header = if ext == "ivf" { IVF_FILE_HEADER } else { 0 };
        self.check(line.len() as u64 + file_header + cost)?;
        self.log_line(&line)?;
        let path = self.dir.join(&name);
        let writer =
            MediaWriter::create(&path, header.codec).map_err(|e| Stop::media(&e, &path))?;
        self.bytes += file_header;
        self.files.push(path.clone());
        let track = self.tracks.entry(frame.track).or_default();
        track.parts = part;
        track.file = Some(TrackFile {
            writer,
            path,
            first_ts_us: header.capture_ts_us,
            last_pts_us: 0,
            waiting: false,
        });
        Ok(())
    }

    /// Fails with [`StopReason::Quota`] if `n` more bytes would leave no room for the last log line.
    fn check(&self, n: u64) -> Result<(), Stop> {
        let usable = self.quota.saturating_sub(STOP_LINE_RESERVE);
        if self.bytes.saturating_add(n) > usable {
            return Err(Stop::quota());
        }
        Ok(())
    }

    fn log_line(&mut self, line: &[u8]) -> Result<(), Stop> {
        self.check(line.len() as u64)?;
        self.log
            .write_all(line)
            .map_err(|e| Stop::io(&e, &self.log_path))?;
        self.bytes += line.len() as u64;
        Ok(())
    }

    fn flush_log(&mut self) -> Result<(), Stop> {
        self.log.flush().map_err(|e| Stop::io(&e, &self.log_path))
    }

    /// Finishes every track file and the log. A requested stop whose last writes fail reports that failure
    /// instead; after a failure the rest is best effort.
    fn finish(mut self, mut stop: Stop) -> RecordingSummary {
        let mut tracks: Vec<_> = self.tracks.drain().collect();
        tracks.sort_by_key(|(id, _)| *id);
        for (_, track) in tracks {
            if let Some(file) = track.file {
                if let Err(e) = file.writer.finish() {
                    if !stop.reason.by_itself() {
                        stop = Stop::media(&e, &file.path);
                    }
                }
            }
        }
        let frames_dropped = self.counters.frames_dropped.load(Ordering::Relaxed);
        let events_dropped = self.counters.events_dropped.load(Ordering::Relaxed);
        let error: Option<String> = stop
            .error
            .as_deref()
            .map(|e| e.chars().take(MAX_ERROR_CHARS).collect());
        let mut fields = json!({
            "reason": stop.reason.as_str(),
            "bytes": self.bytes,
            "frames_written": self.frames_written,
            "frames_skipped": self.frames_skipped,
            "frames_dropped": frames_dropped,
            "events_written": self.events_written,
            "events_dropped": events_dropped,
        });
        if let Some(error) = error {
            fields["error"] = Value::String(error);
        }
        let line = json_line(self.clock.unix_ms(), "recording_stopped", &fields);
        // The reserve is for this line: it only has to fit in the whole quota.
        if self.bytes + line.len() as u64 <= self.quota {
            let written = self
                .log
                .write_all(&line)
                .and_then(|()| self.log.flush())
                .map_err(|e| Stop::io(&e, &self.log_path));
            match written {
                Ok(()) => self.bytes += line.len() as u64,
                Err(e) if !stop.reason.by_itself() => stop = e,
                Err(_) => {}
            }
        }
        if stop.reason.by_itself() {
            tracing::warn!(
                dir = %self.dir.display(),
                reason = stop.reason.as_str(),
                error = stop.error.as_deref().unwrap_or(""),
                bytes = self.bytes,
                frames = self.frames_written,
                "recording stopped: {}",
                stop.reason
            );
        }
        let mut files = self.files;
        files.push(self.dir.join(EVENTS_FILE));
        RecordingSummary {
            dir: self.dir,
            files,
            bytes: self.bytes,
            reason: stop.reason,
            error: stop.error,
            frames_written: self.frames_written,
            frames_skipped: self.frames_skipped,
            frames_dropped,
            events_written: self.events_written,
            events_dropped,
        }
    }
}

/// The frame header of `wire`, if well-formed and its length matches the payload.
fn parse(wire: &[u8]) -> Option<FrameHeader> {
    let header: &[u8; FRAME_HEADER_LEN] = wire.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
    let payload_len = wire.len() - FRAME_HEADER_LEN;
    let header = FrameHeader::decode(header, payload_len).ok()?;
    (header.payload_len as usize == payload_len).then_some(header)
}

/// When the relay received `frame`, in Unix milliseconds.
fn unix_ms(clock: &dyn Clock, frame: &Frame) -> u64 {
    clock
        .wall_at(frame.received_at)
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One log line: `{"t_ms":..,"type":..` then the members of `fields` (an object; `null` adds nothing, another
/// value goes under `data`), members named `t_ms` or `type` left out, and a newline.
pub(super) fn json_line(t_ms: u64, kind: &str, fields: &Value) -> Vec<u8> {
    const INFALLIBLE: &str = "a string or serde_json::Value always serializes into a Vec";
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(format!("{{\"t_ms\":{t_ms},\"type\":").as_bytes());
    serde_json::to_writer(&mut out, kind).expect(INFALLIBLE);
    let member = |out: &mut Vec<u8>, key: &str, value: &Value| {
        out.push(b',');
        serde_json::to_writer(&mut *out, key).expect(INFALLIBLE);
        out.push(b':');
        serde_json::to_writer(&mut *out, value).expect(INFALLIBLE);
    };
    match fields {
        Value::Object(map) => {
            for (key, value) in map {
                if key != "t_ms" && key != "type" {
                    member(&mut out, key, value);
                }
            }
        }
        Value::Null => {}
        other => member(&mut out, "data", other),
    }
    out.extend_from_slice(b"}\n");
    out
}
