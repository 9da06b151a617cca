//! Meeting recordings: every published track into a file ffmpeg plays, and a JSON-lines log of what
//! happened in the meeting, written by a thread of its own so the room task never waits for the disk.
//!
//! ```text
//! room task ── Recorder::frame / ::event (try_send, never waits) ──► bounded queue ──► writer thread
//!     ▲                                                                                  │ track-<id>.ivf|.h264
//!     └──────── Recorder::stopped_by_itself() / watch_stop() ◄── quota, disk full ───────┤ events.jsonl
//! ```
//!
//! The room task holds a [`Recorder`]: [`Recorder::start`] creates the recording's directory and its log
//! (the only blocking calls, once per recording, so a bad path is an error to the caller rather than an event)
//! and starts the writer thread. From then on the room only queues: [`Recorder::frame`] clones the frame's
//! `Bytes` and [`Recorder::event`] moves one JSON value, both with `try_send`. [`Recorder::stop`] lets the
//! writer drain the queue, finish every file and answer with a [`RecordingSummary`].
//!
//! # Files
//!
//! In [`RecorderConfig::dir`]:
//! - `track-<id>.ivf` (VP8, VP9, AV1; IVF timebase microseconds) or `track-<id>.h264` (raw Annex B, which
//!   stores no timestamps), one per track, `<id>` the room-wide track id. A file is created at its track's
//!   first keyframe: frames before it are skipped, so every file starts decodable. The pts of a frame is its
//!   capture timestamp minus that of the file's first frame, forced to increase; when a publisher's clock restarts
//!   (it came back on a new connection) the file goes on one frame interval after its last frame. A track whose codec changes
//!   closes its file and opens `track-<id>-2.<ext>` (then `-3`, ...) at its next keyframe in the new codec.
//!   A frame whose header is malformed, or that the output format refuses, is skipped and its track waits for
//!   its next keyframe, so a gap never reaches a decoder.
//! - `events.jsonl`: one JSON object per line, `t_ms` (Unix milliseconds) and `type` first:
//!   - `{"t_ms":..,"type":"recording_started","dir":"..","quota_bytes":..}` always the first line;
//!   - the room's events as given to [`Recorder::event`]: `{"t_ms":..,"type":kind, ..fields}` (for example
//!     `roster`, `participant`, `chat`, `annotation`, `transfer`; the vocabulary is the room's: a meeting
//!     logs a `roster` of who is there right after this first line);
//!   - `{"t_ms":..,"type":"track_file","track":..,"file":"track-1.ivf","codec":"vp8","capture_ts_us":..}` when
//!     a track file is opened (`t_ms` is when the relay received its first frame, so for a share that was
//!     running when the recording started, whose file starts from the group the relay held, it is earlier
//!     than `recording_started`'s), to align the files;
//!   - `{"t_ms":..,"type":"events_dropped","count":..}` before the first event queued after some were dropped;
//!   - `{"t_ms":..,"type":"meeting_ended","reason":..}` (`host`, `idle`, `max_duration`, `shutdown`, ...) when the
//!     recording stops because the meeting ended: participants still present are not logged as leaving;
//!   - `{"t_ms":..,"type":"recording_stopped","reason":"requested"|"meeting_ended"|"quota"|"disk_full"|"io_error",
//!     "error":..(if any),"bytes":..,"frames_written":..,"frames_skipped":..,"frames_dropped":..,
//!     "events_written":..,"events_dropped":..}` the last line whenever it can be written: always after a
//!     requested stop (`requested` by an administrator, `meeting_ended`) or the quota (room for it is kept aside),
//!     best effort after a write error; `events_written` counts the room's events, not the recorder's own
//!     lines (`recording_started`, `track_file`, `events_dropped`).
//!
//! # Queue and drop policy
//!
//! One bounded queue of [`RecorderConfig::queue`] items (frames and events) lies between the room and the
//! writer; nothing waits and nothing grows without bound. Frames may fill only three quarters of it: the last
//! quarter is kept for events, so a burst of video cannot crowd out joins and chat. A frame that finds no room
//! is dropped and its track skips every further frame until a keyframe finds room (so the file stays
//! decodable); an event that finds no room is dropped, and the next event that gets in is preceded by an
//! `events_dropped` line. Both are counted in the summary and in the last log line.
//!
//! # Stopping by itself
//!
//! The writer stops when the next write would take the recording past [`RecorderConfig::quota_bytes`]
//! ([`StopReason::Quota`]; the bytes of all files and the log count, and the frame that would not fit is not
//! written), when the disk is full ([`StopReason::DiskFull`]: `ENOSPC`, `StorageFull`, or a filesystem
//! quota), or on any other write error ([`StopReason::Io`], message in the log line). It finishes the files
//! it has (IVF headers get their frame counts), logs one `tracing::warn!` line, stops taking items and
//! reports the reason through [`Recorder::stopped`], [`Recorder::stopped_by_itself`] and
//! [`Recorder::watch_stop`]. The meeting goes on; the room should still call [`Recorder::stop`] for the
//! summary.
//!
//! Deliberately not here: choosing the directory, starting or stopping on an administrator's request and
//! telling participants (the room task's), mixing tracks into one file, audio, and re-encoding.

mod writer;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::Clock;
use crate::core::{Frame, TrackId};

/// The recording's log file, in its directory.
pub const EVENTS_FILE: &str = "events.jsonl";

/// Where and how much to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderConfig {
    /// This recording's own directory. [`Recorder::start`] creates it (and its parents); it must not exist or
    /// be empty, so a recording never overwrites another.
    pub dir: PathBuf,
    /// Most bytes the recording may write: all its track files and its log together.
    pub quota_bytes: u64,
    /// Capacity of the queue between the room and the writer, in items (frames and events); at least 1.
    pub queue: usize,
    /// How the log's `recording_started` line names the directory (e.g. relative to the data directory,
    /// as the API reports it); `None`: [`RecorderConfig::dir`] as given.
    pub log_name: Option<String>,
}

/// Why a recording ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// [`Recorder::stop`] was called (or the [`Recorder`] dropped).
    Requested,
    /// [`Recorder::stop_because`] the meeting ended.
    MeetingEnded,
    /// The next write would have exceeded [`RecorderConfig::quota_bytes`].
    Quota,
    /// The disk (or the filesystem quota) is full.
    DiskFull,
    /// Another write error; its message is in the log line and in [`RecordingSummary::error`].
    Io,
}

impl StopReason {
    /// The word used in `events.jsonl` and as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Requested => "requested",
            StopReason::MeetingEnded => "meeting_ended",
            StopReason::Quota => "quota",
            StopReason::DiskFull => "disk_full",
            StopReason::Io => "io_error",
        }
    }

    /// A short phrase for people: "recording stopped: {describe}".
    pub fn describe(self) -> &'static str {
        match self {
            StopReason::Requested => "stopped on request",
            StopReason::MeetingEnded => "the meeting ended",
            StopReason::Quota => "recording quota reached",
            StopReason::DiskFull => "disk full",
            StopReason::Io => "write error",
        }
    }
}

impl StopReason {
    /// The writer stopped by itself (quota, full disk, write error), not because it was told to.
    pub fn by_itself(self) -> bool {
        !matches!(self, StopReason::Requested | StopReason::MeetingEnded)
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why a recording could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// [`RecorderConfig::queue`] is 0.
    #[error("the recording queue must hold at least one item")]
    ZeroQueue,
    /// The directory could not be created or read.
    #[error("cannot create the recording directory {}: {source}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The directory exists and holds files.
    #[error("the recording directory {} is not empty", .0.display())]
    NotEmpty(PathBuf),
    /// The log file could not be created.
    #[error("cannot create {}: {source}", path.display())]
    CreateLog {
        /// The log file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the recording writer thread: {0}")]
    Spawn(io::Error),
}

/// What a finished recording holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    /// The recording's directory.
    pub dir: PathBuf,
    /// Every file written: the track files in the order they were opened, then the log.
    pub files: Vec<PathBuf>,
    /// Bytes written, all files together (never more than the quota).
    pub bytes: u64,
    /// Why it ended.
    pub reason: StopReason,
    /// The write error that ended it, for [`StopReason::DiskFull`] and [`StopReason::Io`].
    pub error: Option<String>,
    /// Frames in the track files.
    pub frames_written: u64,
    /// Frames the writer skipped: before a file's first keyframe, malformed, or refused by the format.
    pub frames_skipped: u64,
    /// Frames dropped because the queue was full (including those skipped until the next keyframe).
    pub frames_dropped: u64,
    /// Room events in the log (not counting the recorder's own lines).
    pub events_written: u64,
    /// Room events dropped because the queue was full.
    pub events_dropped: u64,
}

/// What the room queues for the writer.
enum Item {
    Frame(Frame),
    Event {
        t_ms: u64,
        kind: String,
        fields: Value,
    },
    /// `count` events were dropped before this point.
    EventsDropped {
        t_ms: u64,
        count: u64,
    },
    /// The last item: stop, and log this reason.
    Stop(StopReason),
}

/// Counted by the room side, reported by the writer.
#[derive(Debug, Default)]
struct Counters {
    frames_dropped: AtomicU64,
    events_dropped: AtomicU64,
}

/// The drop-to-keyframe rule for frames offered to a full queue, per track.
#[derive(Debug, Default)]
struct FrameGate {
    /// Tracks that lost a frame and wait for a keyframe.
    skipping: HashSet<TrackId>,
}

impl FrameGate {
    /// Offers one frame; `send` tries to queue it. Returns whether it was queued. A track that lost a frame
    /// skips its frames without trying until a keyframe, which is tried (and, queued, ends the skipping).
    fn offer(&mut self, track: TrackId, keyframe: bool, send: impl FnOnce() -> bool) -> bool {
        if !keyframe && self.skipping.contains(&track) {
            return false;
        }
        if send() {
            self.skipping.remove(&track);
            true
        } else {
            self.skipping.insert(track);
            false
        }
    }
}

/// One meeting's recording in progress, held by its room task.
///
/// Every method but [`Recorder::stop`] returns at once. Dropping it without `stop` lets the writer finish the
/// files in the background, but nobody learns the summary.
pub struct Recorder {
    dir: PathBuf,
    tx: mpsc::Sender<Item>,
    /// Frames are queued only while more slots than this are free (the events' share).
    event_reserve: usize,
    gate: Mutex<FrameGate>,
    /// Events dropped since the last `events_dropped` line was queued.
    events_pending: AtomicU64,
    counters: Arc<Counters>,
    stop_rx: watch::Receiver<Option<StopReason>>,
    done: oneshot::Receiver<RecordingSummary>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("dir", &self.dir)
            .field("queued", &self.queue_len())
            .field("stopped", &self.stopped())
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates `cfg.dir` and its `events.jsonl` and starts the writer thread; the log's first line carries
    /// `clock.unix_ms()`. The clock also dates track files (from each frame's `received_at`) and the last
    /// line. Callable from inside a tokio runtime (the writer is a plain thread) or outside one.
    pub fn start(cfg: RecorderConfig, clock: Arc<dyn Clock>) -> Result<Recorder, RecordingError> {
        if cfg.queue == 0 {
            return Err(RecordingError::ZeroQueue);
        }
        let dir = cfg.dir.clone();
        let dir_error = |source| RecordingError::CreateDir {
            dir: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(dir_error)?;
        if std::fs::read_dir(&dir).map_err(dir_error)?.next().is_some() {
            return Err(RecordingError::NotEmpty(dir));
        }
        let log_path = dir.join(EVENTS_FILE);
        let log = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&log_path)
            .map_err(|source| RecordingError::CreateLog {
                path: log_path.clone(),
                source,
            })?;
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(cfg.queue);
        let (stop_tx, stop_rx) = watch::channel(None);
        let (done_tx, done) = oneshot::channel();
        let writer = writer::Writer::new(&cfg, clock, log, log_path, counters.clone());
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || {
                let summary = writer.run(rx, &stop_tx);
                let _ = done_tx.send(summary);
            })
            .map_err(RecordingError::Spawn)?;
        Ok(Recorder {
            dir,
            tx,
            event_reserve: cfg.queue / 4,
            gate: Mutex::new(FrameGate::default()),
            events_pending: AtomicU64::new(0),
            counters,
            stop_rx,
            done,
        })
    }

    /// The recording's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues a published frame (its `track` the room-wide id); never waits. A full queue drops it and makes
    /// its track skip to its next keyframe (see the module doc). Does nothing once the writer has stopped.
    pub fn frame(&self, frame: &Frame) {
        if self.tx.is_closed() {
            return;
        }
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        let queued = gate.offer(frame.track, frame.keyframe, || {
            self.tx.capacity() > self.event_reserve
                && self.tx.try_send(Item::Frame(frame.clone())).is_ok()
        });
        if !queued {
            self.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues one log line `{"t_ms":unix_ms,"type":kind, ..fields}`; never waits. `fields` is normally an
    /// object whose members follow `type` (members named `t_ms` or `type` are left out); `null` adds nothing
    /// and any other value goes under `data`. A full queue drops it (counted, and reported by the next line
    /// that gets in). Does nothing once the writer has stopped.
    pub fn event(&self, unix_ms: u64, kind: &str, fields: Value) {
        if self.tx.is_closed() {
            return;
        }
        let pending = self.events_pending.swap(0, Ordering::AcqRel);
        if pending > 0 {
            let note = Item::EventsDropped {
                t_ms: unix_ms,
                count: pending,
            };
            if self.tx.try_send(note).is_err() {
                self.events_pending.fetch_add(pending, Ordering::AcqRel);
                self.event_dropped();
                return;
            }
        }
        let item = Item::Event {
            t_ms: unix_ms,
            kind: kind.to_owned(),
            fields,
        };
        if self.tx.try_send(item).is_err() {
            self.event_dropped();
        }
    }

    fn event_dropped(&self) {
        self.events_pending.fetch_add(1, Ordering::AcqRel);
        self.counters.events_dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Items waiting for the writer (a gauge for metrics, and for tests).
    pub fn queue_len(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Why the writer stopped by itself, if it did; `None` while recording.
    pub fn stopped(&self) -> Option<StopReason> {
        *self.stop_rx.borrow()
    }

    /// Resolves when the writer stops by itself (quota, disk full, write error); never while recording goes
    /// well. Cancel-safe, so it can sit in the room task's `select!`.
    pub async fn stopped_by_itself(&self) -> StopReason {
        let mut rx = self.stop_rx.clone();
        let reason = match rx.wait_for(Option::is_some).await {
            Ok(reason) => *reason,
            // The writer thread ended without saying why (it panicked): nothing more will be written.
            Err(_) => Some(StopReason::Io),
        };
        reason.unwrap_or(StopReason::Io)
    }

    /// A receiver that changes to `Some(reason)` when the writer stops (by itself, or after [`Recorder::stop`]
    /// with `Requested`), for whoever wants to watch besides the room.
    pub fn watch_stop(&self) -> watch::Receiver<Option<StopReason>> {
        self.stop_rx.clone()
    }

    /// Ends the recording: the writer writes what is queued, finishes every file and the log, and answers.
    /// After the writer stopped by itself this returns its summary at once.
    pub async fn stop(self) -> RecordingSummary {
        self.stop_because(StopReason::Requested).await
    }

    /// [`Recorder::stop`], logging `reason` (`Requested` or `MeetingEnded`) as why it stopped.
    pub async fn stop_because(self, reason: StopReason) -> RecordingSummary {
        // Behind everything queued; refused (and moot) once the writer stopped by itself.
        let _ = self.tx.send(Item::Stop(reason)).await;
        let Recorder {
            dir,
            tx,
            done,
            counters,
            ..
        } = self;
        drop(tx);
        match done.await {
            Ok(summary) => summary,
            Err(_) => RecordingSummary {
                files: Vec::new(),
                bytes: 0,
                reason: StopReason::Io,
                error: Some(format!("the recording writer for {} failed", dir.display())),
                frames_written: 0,
                frames_skipped: 0,
                frames_dropped: counters.frames_dropped.load(Ordering::Relaxed),
                events_written: 0,
                events_dropped: counters.events_dropped.load(Ordering::Relaxed),
                dir,
            },
        }
    }
}

#[cfg(test)]
mod tests;
