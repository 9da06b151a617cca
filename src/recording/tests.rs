//! Unit tests of the recorder's pure parts: the drop-to-keyframe gate, the log line format, error
//! classification. The files, the quota and a full disk are tested end to end in `tests/it/recording.rs`.

use std::io;

use serde_json::{json, Value};

use super::writer::{classify, json_line};
use super::{FrameGate, StopReason};

/// Offers `(track, keyframe, queue has room)` in order and returns which were queued.
fn run_gate(gate: &mut FrameGate, offers: &[(u32, bool, bool)]) -> Vec<bool> {
    offers
        .iter()
        .map(|&(track, key, room)| gate.offer(track, key, || room))
        .collect()
}

#[test]
fn a_full_queue_makes_only_that_track_skip_to_a_keyframe_that_finds_room() {
    let mut gate = FrameGate::default();
    let queued = run_gate(
        &mut gate,
        &[
            (1, true, true),   // queued
            (1, false, false), // queue full: dropped, track 1 now skips
            (1, false, true),  // room again, but not a keyframe: skipped without trying
            (2, false, true),  // track 2 is not affected
            (1, true, false),  // a keyframe, but still no room: dropped, still skipping
            (1, false, true),  // skipped
            (1, true, true),   // a keyframe with room: queued, skipping ends
            (1, false, true),  // queued
        ],
    );
    assert_eq!(
        queued,
        [true, false, false, true, false, false, true, true],
        "drop-to-keyframe per track"
    );
    assert!(gate.skipping.is_empty());
}

#[test]
fn a_skipping_track_does_not_touch_the_queue() {
    let mut gate = FrameGate::default();
    assert!(!gate.offer(7, false, || false));
    let mut tried = false;
    assert!(!gate.offer(7, false, || {
        tried = true;
        true
    }));
    assert!(!tried, "a delta frame of a skipping track must not be sent");
}

fn parse_line(line: &[u8]) -> Value {
    assert_eq!(line.last(), Some(&b'\n'), "one line, newline-terminated");
    assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
    serde_json::from_slice(line).unwrap()
}

#[test]
fn log_lines_start_with_time_and_type_and_keep_the_fields() {
    let line = json_line(
        1_700_000_000_123,
        "chat",
        &json!({ "from": 3, "text": "hi \"there\"\nsecond line", "type": "spoofed", "t_ms": 1 }),
    );
    let text = String::from_utf8(line.clone()).unwrap();
    assert!(
        text.starts_with(r#"{"t_ms":1700000000123,"type":"chat","#),
        "{text}"
    );
    assert_eq!(
        parse_line(&line),
        json!({ "t_ms": 1_700_000_000_123u64, "type": "chat", "from": 3, "text": "hi \"there\"\nsecond line" })
    );
    assert_eq!(
        parse_line(&json_line(5, "leave", &Value::Null)),
        json!({ "t_ms": 5, "type": "leave" })
    );
    assert_eq!(
        parse_line(&json_line(5, "odd", &json!([1, 2]))),
        json!({ "t_ms": 5, "type": "odd", "data": [1, 2] })
    );
    assert_eq!(
        parse_line(&json_line(5, "q\"uote", &json!({}))),
        json!({ "t_ms": 5, "type": "q\"uote" })
    );
}

#[test]
fn a_full_disk_is_told_apart_from_other_write_errors() {
    assert_eq!(
        classify(&io::Error::from_raw_os_error(28)),
        StopReason::DiskFull
    );
    assert_eq!(
        classify(&io::Error::from(io::ErrorKind::StorageFull)),
        StopReason::DiskFull
    );
    assert_eq!(
        classify(&io::Error::from(io::ErrorKind::QuotaExceeded)),
        StopReason::DiskFull
    );
    assert_eq!(
        classify(&io::Error::from(io::ErrorKind::PermissionDenied)),
        StopReason::Io
    );
    assert_eq!(classify(&io::Error::from_raw_os_error(5)), StopReason::Io);
}

#[test]
fn stop_reasons_have_stable_words() {
    let all = [
        StopReason::Requested,
        StopReason::MeetingEnded,
        StopReason::Quota,
        StopReason::DiskFull,
        StopReason::Io,
    ];
    assert_eq!(
        all.map(StopReason::as_str),
        [
            "requested",
            "meeting_ended",
            "quota",
            "disk_full",
            "io_error"
        ]
    );
    assert_eq!(
        all.map(StopReason::by_itself),
        [false, false, true, true, true]
    );
    assert_eq!(StopReason::DiskFull.to_string(), "disk full");
}

/// The room task keeps a `Recorder` across awaits and waits on `stopped_by_itself` in its `select!`.
#[test]
fn the_recorder_can_live_in_a_spawned_task() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    fn check(rec: &super::Recorder) {
        send_sync(rec);
        send(&rec.stopped_by_itself());
    }
    let _ = check;
}
