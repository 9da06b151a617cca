//! The meeting recorder end to end on real files: the shipped VP8 and H.264 recordings go in as relay frames
//! and come out as files ffmpeg decodes frame for frame, with a JSON-lines log; a quota and a full disk stop
//! the recording by themselves and say so; a stalled writer makes tracks drop to their next keyframe while
//! events keep their share of the queue.

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use assist_relay::clock::SystemClock;
use assist_relay::core::Frame;
use assist_relay::media::{MediaReader, ReadOptions};
use assist_relay::protocol::FrameHeader;
use assist_relay::recording::{Recorder, RecorderConfig, RecordingSummary, StopReason};
use common::ffmpeg_decodes;
use serde_json::{json, Value};

/// Every test finishes far sooner; this only turns a hang into a failure.
const TEST_LIMIT: Duration = Duration::from_secs(10);
const VP8: &str = "screen-vp8-720p.ivf";
const H264: &str = "screen-h264-720p.h264";
/// Both fixtures have 150 frames with a keyframe every 30.
const GOP: usize = 30;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The fixture's frames as the relay carries them on `track`: 24-byte header and payload in one buffer.
fn relay_frames(name: &str, track: u32) -> Vec<Frame> {
    let mut group = 0;
    MediaReader::open(&fixture(name), ReadOptions::default())
        .unwrap()
        .enumerate()
        .map(|(seq, f)| {
            let f = f.unwrap();
            group += u64::from(f.keyframe);
            let header = FrameHeader {
                payload_len: f.data.len() as u32,
                codec: f.codec,
                keyframe: f.keyframe,
                seq: seq as u64,
                capture_ts_us: 5_000_000 + f.pts_us,
            };
            Frame {
                track,
                group,
                seq: seq as u64,
                keyframe: f.keyframe,
                wire: header.to_wire(&f.data),
                received_at: Instant::now(),
                origin: Default::default(),
            }
        })
        .collect()
}

fn start(dir: &Path, quota_bytes: u64, queue: usize) -> Recorder {
    let cfg = RecorderConfig {
        dir: dir.to_owned(),
        quota_bytes,
        queue,
        log_name: None,
    };
    Recorder::start(cfg, Arc::new(SystemClock)).unwrap()
}

/// Frames ffprobe decodes from the file; `None` without ffprobe (outside CI).
fn decoded_frames(path: &Path) -> Option<u64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0"])
        .arg(path)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(_) if std::env::var_os("CI").is_none() => return None,
        Err(e) => panic!("ffprobe is required in CI: {e}"),
    };
    assert!(out.status.success(), "ffprobe on {}", path.display());
    Some(String::from_utf8_lossy(&out.stdout).trim().parse().unwrap())
}

/// Decodes cleanly and holds exactly `frames` frames.
fn assert_plays(path: &Path, frames: u64) {
    ffmpeg_decodes(path);
    if let Some(n) = decoded_frames(path) {
        assert_eq!(n, frames, "decoded frames of {}", path.display());
    }
}

/// `events.jsonl`, one JSON object per line.
fn log(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

fn types(log: &[Value]) -> Vec<&str> {
    log.iter().map(|l| l["type"].as_str().unwrap()).collect()
}

/// The summary's byte count is what is on disk.
fn assert_bytes_on_disk(summary: &RecordingSummary) {
    let on_disk: u64 = summary
        .files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(summary.bytes, on_disk);
}

#[tokio::test]
async fn records_tracks_and_events_that_ffmpeg_decodes_frame_for_frame() {
    tokio::time::timeout(TEST_LIMIT, async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("meeting/rec-1");
        let rec = start(&dir, 1 << 30, 1024);
        let (vp8, h264) = (relay_frames(VP8, 1), relay_frames(H264, 2));

        rec.event(1_000, "join", json!({ "participant": 1, "name": "Ana" }));
        // Delta frames before track 1's first keyframe are skipped, so the file starts decodable.
        rec.frame(&vp8[1]);
        rec.frame(&vp8[2]);
        for (i, (a, b)) in vp8.iter().zip(&h264).enumerate() {
            rec.frame(a);
            rec.frame(b);
            if i == 40 {
                rec.event(
                    2_000,
                    "chat",
                    json!({ "from": 1, "text": "can you see my screen?" }),
                );
                rec.event(2_500, "annotation", json!({ "from": 2, "kind": "line" }));
            }
            if i % 16 == 0 {
                // Let the writer keep up: this test is about the files, not about dropping.
                while rec.queue_len() > 512 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        rec.event(3_000, "leave", json!({ "participant": 1 }));
        assert_eq!(rec.stopped(), None);
        let summary = rec.stop().await;

        assert_eq!(summary.reason, StopReason::Requested);
        assert_eq!(summary.error, None);
        assert_eq!(summary.frames_written, 300);
        assert_eq!(summary.frames_skipped, 2);
        assert_eq!((summary.frames_dropped, summary.events_dropped), (0, 0));
        assert_eq!(summary.events_written, 4);
        let names: Vec<_> = summary
            .files
            .iter()
            .map(|f| f.file_name().unwrap())
            .collect();
        assert_eq!(names, ["track-1.ivf", "track-2.h264", "events.jsonl"]);
        assert_bytes_on_disk(&summary);

        // The H.264 stream is reproduced byte for byte; the VP8 frames are the same frames.
        assert!(
            std::fs::read(dir.join("track-2.h264")).unwrap()
                == std::fs::read(fixture(H264)).unwrap()
        );
        let got: Vec<_> = MediaReader::open(&dir.join("track-1.ivf"), ReadOptions::default())
            .unwrap()
            .map(|f| f.unwrap())
            .collect();
        let want: Vec<_> = MediaReader::open(&fixture(VP8), ReadOptions::default())
            .unwrap()
            .map(|f| f.unwrap())
            .collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                (&g.data, g.keyframe, g.pts_us),
                (&w.data, w.keyframe, w.pts_us)
            );
        }
        assert_plays(&dir.join("track-1.ivf"), 150);
        assert_plays(&dir.join("track-2.h264"), 150);

        let log = log(&dir);
        assert_eq!(
            types(&log),
            [
                "recording_started",
                "join",
                "track_file",
                "track_file",
                "chat",
                "annotation",
                "leave",
                "recording_stopped"
            ]
        );
        assert_eq!(
            log[1],
            json!({ "t_ms": 1000, "type": "join", "participant": 1, "name": "Ana" })
        );
        assert_eq!(log[2]["file"], "track-1.ivf");
        assert_eq!(
            (&log[2]["codec"], &log[2]["track"]),
            (&json!("vp8"), &json!(1))
        );
        assert_eq!(
            (&log[3]["file"], &log[3]["codec"]),
            (&json!("track-2.h264"), &json!("h264"))
        );
        assert_eq!(log[4]["text"], "can you see my screen?");
        let last = &log[7];
        assert_eq!(last["reason"], "requested");
        assert_eq!(last["frames_written"], 300);
        assert_eq!(last["frames_skipped"], 2);
        assert_eq!(last["events_written"], 4);
        assert!(last.get("error").is_none());
        assert!(
            log[0]["t_ms"].as_u64().unwrap() > 1_600_000_000_000,
            "Unix milliseconds"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_quota_stops_the_recording_by_itself_and_the_files_still_decode() {
    tokio::time::timeout(TEST_LIMIT, async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        let quota = 300_000;
        let rec = start(&dir, quota, 1024);
        let mut watch = rec.watch_stop();
        for f in relay_frames(VP8, 3) {
            rec.frame(&f);
        }
        assert_eq!(rec.stopped_by_itself().await, StopReason::Quota);
        assert_eq!(rec.stopped(), Some(StopReason::Quota));
        watch.wait_for(Option::is_some).await.unwrap();
        // The meeting goes on: feeding a stopped recorder is harmless.
        rec.event(9, "chat", json!({ "text": "still here" }));
        rec.frame(&relay_frames(VP8, 3)[0]);
        let summary = rec.stop().await;

        assert_eq!(summary.reason, StopReason::Quota);
        assert!(summary.bytes <= quota, "{} > {quota}", summary.bytes);
        assert!(
            summary.bytes > quota / 2,
            "stopped early: {}",
            summary.bytes
        );
        assert_bytes_on_disk(&summary);
        assert!(summary.frames_written > 0 && summary.frames_written < 150);
        assert_plays(&dir.join("track-3.ivf"), summary.frames_written);
        let reader = MediaReader::open(&dir.join("track-3.ivf"), ReadOptions::default()).unwrap();
        assert_eq!(
            reader.header_frame_count(),
            Some(summary.frames_written as u32)
        );

        let log = log(&dir);
        assert_eq!(
            types(&log),
            ["recording_started", "track_file", "recording_stopped"]
        );
        assert_eq!(log[2]["reason"], "quota");
        // The last line counts the bytes before it.
        assert!(log[2]["bytes"].as_u64().unwrap() < summary.bytes);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_full_disk_stops_the_recording_by_itself() {
    if !Path::new("/dev/full").exists() {
        eprintln!("no /dev/full: skipping the full-disk test");
        return;
    }
    tokio::time::timeout(TEST_LIMIT, async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        let rec = start(&dir, 1 << 30, 1024);
        // Track 4's file will be created on /dev/full, where every write fails with ENOSPC.
        std::os::unix::fs::symlink("/dev/full", dir.join("track-4.ivf")).unwrap();
        rec.event(1, "join", json!({ "participant": 4 }));
        for f in relay_frames(VP8, 4).iter().take(40) {
            rec.frame(f);
        }
        assert_eq!(rec.stopped_by_itself().await, StopReason::DiskFull);
        rec.event(2, "leave", json!({ "participant": 4 }));
        let summary = rec.stop().await;

        assert_eq!(summary.reason, StopReason::DiskFull);
        let error = summary.error.unwrap();
        assert!(error.contains("track-4.ivf"), "{error}");
        assert_eq!(summary.frames_written, 0);
        // The log is on a disk with room: it still ends with the reason.
        let log = log(&dir);
        assert_eq!(
            types(&log),
            [
                "recording_started",
                "join",
                "track_file",
                "recording_stopped"
            ]
        );
        assert_eq!(log[3]["reason"], "disk_full");
        assert!(log[3]["error"].as_str().unwrap().contains("track-4.ivf"));
    })
    .await
    .unwrap();
}

/// Waits until the writer has taken everything off the queue.
async fn drained(rec: &Recorder) {
    while rec.queue_len() > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A writer stuck on its disk must not hold up the room: with the track file a FIFO nobody reads yet, the
/// writer blocks opening it, the queue fills, the track drops to its next keyframe, and events still get the
/// quarter of the queue kept for them.
#[tokio::test]
async fn a_stalled_writer_drops_frames_to_the_next_keyframe_and_keeps_room_for_events() {
    let Ok(fifo_ok) = Command::new("mkfifo").arg("--version").output() else {
        eprintln!("no mkfifo: skipping the stalled-writer test");
        return;
    };
    assert!(fifo_ok.status.success());
    tokio::time::timeout(TEST_LIMIT, async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        // 8 items: frames may take 6, the last 2 are the events'.
        let rec = start(&dir, 1 << 30, 8);
        let fifo = dir.join("track-5.h264");
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let h264 = relay_frames(H264, 5);

        rec.frame(&h264[0]);
        drained(&rec).await; // the writer holds frame 0 and blocks opening the FIFO
        for f in &h264[1..=10] {
            rec.frame(f); // 1..=6 are queued, 7..=10 dropped: the track now skips
        }
        for n in 0..3 {
            rec.event(100 + n, "chat", json!({ "n": n })); // two fit, the third is dropped
        }
        rec.frame(&h264[GOP]); // a keyframe, but the queue is still full: dropped
        rec.frame(&h264[GOP + 1]); // skipped without trying
        assert_eq!(rec.queue_len(), 8);

        let fifo_reader = std::thread::spawn(move || {
            let mut data = Vec::new();
            std::fs::File::open(&fifo)
                .unwrap()
                .read_to_end(&mut data)
                .unwrap();
            data
        });
        drained(&rec).await;
        for f in &h264[2 * GOP..2 * GOP + 3] {
            rec.frame(f); // the next keyframe finds room: the track records again
        }
        rec.event(200, "leave", json!({}));
        let summary = rec.stop().await;
        let captured = fifo_reader.join().unwrap();

        assert_eq!(summary.reason, StopReason::Requested);
        assert_eq!(summary.frames_written, 1 + 6 + 3);
        assert_eq!(summary.frames_dropped, 4 + 2);
        assert_eq!((summary.events_written, summary.events_dropped), (3, 1));
        let log = log(&dir);
        assert_eq!(
            types(&log),
            [
                "recording_started",
                "track_file",
                "chat",
                "chat",
                "events_dropped",
                "leave",
                "recording_stopped"
            ]
        );
        assert_eq!(
            log[4],
            json!({ "t_ms": 200, "type": "events_dropped", "count": 1 })
        );
        assert_eq!(
            (&log[6]["frames_dropped"], &log[6]["events_dropped"]),
            (&json!(6), &json!(1))
        );

        // What went through the FIFO is frames 0..=6 and 60..=62: a stream that decodes cleanly.
        let want: Vec<u8> = h264[..=6]
            .iter()
            .chain(&h264[2 * GOP..2 * GOP + 3])
            .flat_map(|f| f.wire[24..].to_vec())
            .collect();
        assert!(
            captured == want,
            "the recorded stream is the frames that got through"
        );
        let copy = tmp.path().join("captured.h264");
        std::fs::write(&copy, &captured).unwrap();
        assert_plays(&copy, 10);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn start_refuses_a_directory_that_holds_files() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("old.ivf"), b"x").unwrap();
    let cfg = RecorderConfig {
        dir: tmp.path().to_owned(),
        quota_bytes: 1 << 20,
        queue: 16,
        log_name: None,
    };
    let err = Recorder::start(cfg.clone(), Arc::new(SystemClock)).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    let err = Recorder::start(
        RecorderConfig {
            dir: tmp.path().join("old.ivf/rec"),
            ..cfg.clone()
        },
        Arc::new(SystemClock),
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot create"), "{err}");
    let zero = RecorderConfig {
        dir: tmp.path().join("new"),
        queue: 0,
        ..cfg
    };
    assert!(Recorder::start(zero, Arc::new(SystemClock)).is_err());
}

#[tokio::test]
async fn a_codec_change_opens_the_tracks_next_file_at_its_next_keyframe() {
    tokio::time::timeout(TEST_LIMIT, async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rec");
        let rec = start(&dir, 1 << 30, 1024);
        let (vp8, h264) = (relay_frames(VP8, 6), relay_frames(H264, 6));
        for f in &vp8[..10] {
            rec.frame(f);
        }
        rec.frame(&h264[1]); // the new codec's first frame is not a keyframe: skipped
        for f in &h264[..10] {
            rec.frame(f);
        }
        let summary = rec.stop().await;

        assert_eq!(summary.reason, StopReason::Requested);
        assert_eq!((summary.frames_written, summary.frames_skipped), (20, 1));
        let names: Vec<_> = summary
            .files
            .iter()
            .map(|f| f.file_name().unwrap())
            .collect();
        assert_eq!(names, ["track-6.ivf", "track-6-2.h264", "events.jsonl"]);
        assert_plays(&dir.join("track-6.ivf"), 10);
        assert_plays(&dir.join("track-6-2.h264"), 10);
        let log = log(&dir);
        let files: Vec<_> = log
            .iter()
            .filter(|l| l["type"] == "track_file")
            .map(|l| (&l["file"], &l["codec"]))
            .collect();
        assert_eq!(
            files,
            [
                (&json!("track-6.ivf"), &json!("vp8")),
                (&json!("track-6-2.h264"), &json!("h264"))
            ]
        );
    })
    .await
    .unwrap();
}
