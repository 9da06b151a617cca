//! Meeting recordings end to end over QUIC on loopback: files ffmpeg decodes, the log, everyone told, a
//! share already running when recording starts, and a recording that ends with its meeting.

use crate::common;
use crate::meetings_relay::{fixture_frames, stroke};

use std::path::PathBuf;
use std::time::Duration;

use assist_relay::client::{MediaSender, Session};
use assist_relay::media::{Codec, MediaFrame};
use assist_relay::protocol::message::MeetingRole;
use assist_relay::protocol::{ClientMsg, ServerMsg};
use assist_relay::relay::room::RecordingReply;
use assist_relay::relay::NewMeeting;
use assist_relay::transport::quic::{GroupEvent, GroupOrder, GroupStreams};
use common::meeting::await_present;
use common::*;
use tokio::sync::watch;

/// A meeting with its host ("Host", participant 1) and a guest ("viewer") in it.
async fn host_and_viewer(relay: &TestRelay) -> (NewMeeting, Session, Session) {
    let m = relay.meeting();
    let mut host = relay.staff(&m, 1, MeetingRole::Host, "Host").await;
    let viewer = relay.guest(&m, "viewer").await;
    await_present(&mut host, 1).await;
    (m, host, viewer)
}

/// An administrator starts recording the meeting: the recording's directory.
async fn start_recording(relay: &TestRelay, m: &NewMeeting) -> PathBuf {
    let started = relay.relay.set_recording(m.id, true).await.unwrap();
    let RecordingReply::Started { dir } = started else {
        panic!("{started:?}")
    };
    dir
}

/// Reads `viewer`'s media throughout (a viewer that stops reading is skipped ahead), counting frames.
fn count_frames(viewer: &Session) -> watch::Receiver<usize> {
    let (count_tx, count) = watch::channel(0usize);
    let conn = viewer.conn.clone();
    tokio::spawn(async move {
        let mut groups = GroupStreams::new(&conn, 16 << 20, GroupOrder::Strict);
        while let Ok(e) = groups.next().await {
            if let GroupEvent::Frame(_) = e {
                count_tx.send_modify(|n| *n += 1);
            }
        }
    });
    count
}

/// Sends `frames` as VP8 (the open group stays open for the frames that follow).
async fn send(sender: &mut MediaSender, frames: &[MediaFrame]) {
    for f in frames {
        sender
            .send(Codec::Vp8, f.keyframe, f.pts_us, f.data.clone())
            .await
            .unwrap();
    }
}

/// The recording's log once it holds `recording_stopped`, one JSON value per line.
async fn stopped_log(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let log = dir.join("events.jsonl");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("recording_stopped") {
            return text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recording_stopped: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_recording_writes_files_ffmpeg_decodes_and_a_log_and_everyone_is_told() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let (m, mut presenter, mut viewer) = host_and_viewer(&relay).await;
        let dir = start_recording(&relay, &m).await;
        for s in [&mut presenter, &mut viewer] {
            let got = expect_msg(s, |m| matches!(m, ServerMsg::Recording { .. })).await;
            assert!(matches!(got, ServerMsg::Recording { active: true, .. }));
        }
        let frames = fixture_frames("screen-vp8-720p.ivf");
        let track = presenter.participant() * 16;
        let mut count = count_frames(&viewer);
        let mut sender = MediaSender::new(presenter.conn.clone(), 0);
        send(&mut sender, &frames).await;
        sender.flush().await;
        count.wait_for(|n| *n >= frames.len()).await.unwrap();
        viewer
            .tx
            .send(&ClientMsg::Chat("can you zoom in?".into()))
            .await
            .unwrap();
        viewer
            .tx
            .send(&ClientMsg::Annotate(stroke(track, 5)))
            .await
            .unwrap();
        expect_msg(&mut presenter, |m| {
            matches!(m, ServerMsg::Annotation { .. })
        })
        .await;
        let stopped = relay.relay.set_recording(m.id, false).await.unwrap();
        let RecordingReply::Stopped { files, bytes, .. } = stopped else {
            panic!("{stopped:?}")
        };
        assert!(bytes > 0);
        let got = expect_msg(&mut viewer, |m| matches!(m, ServerMsg::Recording { .. })).await;
        assert!(matches!(got, ServerMsg::Recording { active: false, .. }));
        let video: Vec<_> = files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "ivf"))
            .collect();
        assert_eq!(video.len(), 1, "{files:?}");
        ffmpeg_decodes(video[0]);
        let log = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
        let kinds: Vec<String> = log
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        for want in [
            "recording_started",
            "chat",
            "annotation",
            "recording_stopped",
        ] {
            assert!(
                kinds.iter().any(|k| k == want),
                "{want} missing from {kinds:?}"
            );
        }
        assert!(log.contains("can you zoom in?"));
        // Only meetings are recorded.
        let (s, _tech, _cust) = relay.pair(true).await;
        let id = assist_relay::core::SessionId::parse(&s.session_id).unwrap();
        let refused = relay.relay.set_recording(id, true).await.unwrap();
        assert!(matches!(refused, RecordingReply::Refused(_)));
    })
    .await
    .unwrap();
}

/// A meeting that ends while recording says so in its log: `meeting_ended` (why) is the last room event
/// before `recording_stopped`.
#[tokio::test]
async fn a_recording_ended_with_its_meeting_logs_why() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let (m, mut host, _viewer) = host_and_viewer(&relay).await;
        let dir = start_recording(&relay, &m).await;
        host.tx.send(&ClientMsg::EndSession).await.unwrap();
        let lines = stopped_log(&dir).await;
        let n = lines.len();
        assert_eq!(lines[n - 2]["type"], "meeting_ended", "{lines:?}");
        assert_eq!(lines[n - 2]["reason"], "host");
        assert_eq!(lines[n - 1]["type"], "recording_stopped");
        assert_eq!(lines[n - 1]["reason"], "meeting_ended");
    })
    .await
    .unwrap();
}

/// Guards against a share that is already running when recording starts being left out (or recorded only
/// from a keyframe that may never come, as browsers send few): the recording starts from the group the
/// relay holds, like a late joiner, and its log starts with who is there.
#[tokio::test]
async fn a_share_running_when_recording_starts_is_recorded_from_the_held_group() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let (m, mut host, viewer) = host_and_viewer(&relay).await;
        // 150 frames, a keyframe every 30: 45 go out before recording starts, so the relay holds frames
        // 30..45 (a keyframe and 14 deltas) when it does.
        let frames = fixture_frames("screen-vp8-720p.ivf");
        assert_eq!((frames.len(), frames[30].keyframe), (150, true));
        let mut sender = MediaSender::new(host.conn.clone(), 0);
        let mut count = count_frames(&viewer);
        let mut receive_until = async |n: usize| {
            count.wait_for(|got| *got >= n).await.unwrap();
        };
        send(&mut sender, &frames[0..45]).await;
        // The viewer has them, so the room has them.
        receive_until(45).await;
        let dir = start_recording(&relay, &m).await;
        send(&mut sender, &frames[45..150]).await;
        sender.flush().await;
        receive_until(150).await;
        host.tx.send(&ClientMsg::EndSession).await.unwrap();
        let log = stopped_log(&dir).await;
        assert_eq!(log[0]["type"], "recording_started");
        let name = log[0]["dir"].as_str().unwrap();
        assert!(
            name.starts_with("recordings/") && dir.ends_with(name),
            "{name} against {}",
            dir.display()
        );
        assert_eq!(log[1]["type"], "roster", "{log:?}");
        let roster: Vec<_> = log[1]["participants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap(),
                    p["role"].as_str().unwrap(),
                    p["state"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            roster,
            [
                ("Host", "host", "present"),
                ("viewer", "participant", "present")
            ]
        );
        let last = log.last().unwrap();
        assert_eq!(last["type"], "recording_stopped");
        assert_eq!(last["reason"], "meeting_ended");
        assert_eq!(
            (
                last["frames_written"].as_u64(),
                last["frames_skipped"].as_u64()
            ),
            (Some(120), Some(0)),
            "{last}"
        );
        let track = host.participant() * 16;
        let file = dir.join(format!("track-{track}.ivf"));
        ffmpeg_decodes(&file);
        // The file starts with the held group's keyframe: frame 30's bytes.
        let ivf = std::fs::read(&file).unwrap();
        let first_len = u32::from_le_bytes(ivf[32..36].try_into().unwrap()) as usize;
        assert_eq!(&ivf[44..44 + first_len], &frames[30].data[..]);
    })
    .await
    .unwrap();
}
