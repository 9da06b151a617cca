//! Headless Chromium in meetings (see the harness in [`super::browser`]): the meeting page shows a native
//! host's share and a browser guest's once promoted, annotations drawn on the page reach native viewers, and
//! the host page's controls make a browser guest a presenter.

use crate::common;

use std::time::Duration;

use assist_relay::client::screen::FrameSaver;
use assist_relay::client::MediaSender;
use assist_relay::media::Codec;
use assist_relay::protocol::message::{Annotation, AnnotationKind, MeetingRole, ParticipantState};
use assist_relay::protocol::{ClientMsg, Hello, ServerMsg};
use assist_relay::transport::quic::{GroupEvent, GroupOrder, GroupStreams};
use common::api;
use common::meeting::{id_of, meeting, welcomed_as};
use common::*;
use serde_json::{json, Value};

use super::browser::*;

/// What the native viewer of the meeting test saw.
enum Seen {
    Frame {
        track: u32,
        keyframe: bool,
        wire: bytes::Bytes,
    },
    Annotation {
        from: u32,
        annotation: Annotation,
    },
    Failed(String),
}

/// A meeting created through the API, its host (native QUIC, "Dana") sharing the shipped VP8 recording, a
/// native QUIC guest watching, and a browser guest (synthetic screen, "I will share my screen"): the page shows
/// at least 20 frames in the tile labelled "Dana's screen"; once the host makes the browser guest a presenter,
/// its screen reaches the native viewer as track participant × 16 (at least 20 frames, the first a keyframe,
/// decodable); a stroke drawn with the pointer on the page's tile reaches the native viewer as an ANNOTATION on
/// the host's track at the drawn coordinates; the host ending the meeting ends the page's.
#[tokio::test]
async fn browser_meeting_shows_native_and_browser_shares() {
    if !browser_ready() {
        return;
    }
    const BROWSER: &str = "Ana (browser)";
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = start_relay().await;
        let admin = api::admin(&relay).await;
        let m = meeting(&admin, json!({ "topic": "browser meeting" })).await;
        let host = relay.with_token(m["host_token"].as_str().unwrap(), "Dana").await;
        assert_eq!(welcomed_as(&host), MeetingRole::Host);
        let host_track = host.participant() * 16;
        let code = m["code_display"].as_str().unwrap().to_string();
        let viewer = relay
            .join_as(
                "127.0.0.1:0",
                Hello::MeetingCode {
                    code: code.clone(),
                    name: "Native viewer".into(),
                },
            )
            .await
            .unwrap();
        let max_frame = match &viewer.welcome {
            ServerMsg::MeetingWelcome(w) => w.max_frame_bytes as usize,
            other => panic!("{other:?}"),
        };

        // The host: answers keyframe requests, and makes the browser guest a presenter when it enters.
        let assist_relay::client::Session {
            conn: host_conn,
            tx: mut host_tx,
            rx: mut host_rx,
            ..
        } = host;
        let (kf_tx, kf_rx) = tokio::sync::watch::channel(0u64);
        let (id_tx, id_rx) = tokio::sync::oneshot::channel();
        let host_task = tokio::spawn(async move {
            let mut id_tx = Some(id_tx);
            while let Ok(Some(msg)) = host_rx.recv().await {
                match msg {
                    ServerMsg::KeyframeRequest { .. } => kf_tx.send_modify(|n| *n += 1),
                    ServerMsg::Participant {
                        participant,
                        state: ParticipantState::Present,
                        name,
                        ..
                    } if name == BROWSER => {
                        let set = ClientMsg::SetRole {
                            participant,
                            role: MeetingRole::Presenter,
                        };
                        host_tx.send(&set).await.unwrap();
                        if let Some(t) = id_tx.take() {
                            let _ = t.send(participant);
                        }
                    }
                    _ => {}
                }
            }
        });
        let stop = tokio_util::sync::CancellationToken::new();
        let sharing = tokio::spawn(share_recording(
            MediaSender::new(host_conn.clone(), 0),
            kf_rx,
            stop.clone(),
        ));

        // The viewer: every frame (all tracks, read as they come) and every annotation.
        let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
        let assist_relay::client::Session {
            conn: viewer_conn,
            rx: mut viewer_rx,
            ..
        } = viewer;
        let frames_task = {
            let seen_tx = seen_tx.clone();
            let conn = viewer_conn.clone();
            tokio::spawn(async move {
                let mut groups = GroupStreams::new(&conn, max_frame, GroupOrder::Live);
                loop {
                    match groups.next().await {
                        Ok(GroupEvent::Frame(f)) => {
                            let _ = seen_tx.send(Seen::Frame {
                                track: f.track,
                                keyframe: f.keyframe,
                                wire: f.wire,
                            });
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let _ = seen_tx.send(Seen::Failed(format!("viewer media: {e}")));
                            return;
                        }
                    }
                }
            })
        };
        let control_task = tokio::spawn(async move {
            while let Ok(Some(msg)) = viewer_rx.recv().await {
                if let ServerMsg::Annotation {
                    from, annotation, ..
                } = msg
                {
                    let _ = seen_tx.send(Seen::Annotation { from, annotation });
                }
            }
        });

        let page = tokio::spawn(node_async(
            "meeting.mjs",
            vec![
                relay.api.clone(),
                code,
                BROWSER.into(),
                "Dana".into(),
                "20".into(),
                "75".into(),
            ],
            vec![],
            Duration::from_secs(80),
        ));
        let browser_id = tokio::time::timeout(Duration::from_secs(40), id_rx)
            .await
            .expect("the browser guest entered the meeting")
            .unwrap();
        let browser_track = browser_id * 16;

        let dir = tempfile::tempdir().unwrap();
        let mut saver = FrameSaver::default();
        let (mut first, mut annotation) = (None, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while saver.frames < 20 || annotation.is_none() {
            let Ok(ev) = tokio::time::timeout_at(deadline, seen.recv()).await else {
                let rtp_in = relay
                    .metric("assist_relay_webrtc_rtp_bytes_total{direction=\"in\"}")
                    .await;
                panic!(
                    "the viewer got {} frames of the browser's track {browser_track} ({rtp_in} RTP bytes \
                     reached the relay), annotation: {annotation:?}",
                    saver.frames
                );
            };
            match ev.expect("the viewer's tasks run") {
                Seen::Frame {
                    track,
                    keyframe,
                    wire,
                } if track == browser_track => {
                    first.get_or_insert(keyframe);
                    saver
                        .save(&wire, max_frame, |c| {
                            dir.path().join(format!(
                                "browser.{}",
                                assist_relay::client::screen::extension(c)
                            ))
                        })
                        .unwrap();
                }
                Seen::Frame { .. } => {}
                Seen::Annotation { from, annotation: a } if from == browser_id => {
                    annotation = Some(a);
                }
                Seen::Annotation { .. } => {}
                Seen::Failed(e) => panic!("{e}"),
            }
        }
        assert_eq!(first, Some(true), "the browser's share starts with a keyframe");
        assert!(
            matches!(saver.codec(), Some(Codec::Vp8 | Codec::H264)),
            "VP8 or H.264, not {:?}",
            saver.codec()
        );
        let path = saver.path().unwrap().to_owned();
        saver.finish().unwrap();
        browser_recording_decodes(&path);

        // The host ends the meeting (API, as the host): the page is told and its script ends.
        let (s, v) = admin
            .delete(&format!("/api/v1/meetings/{}", id_of(&m)))
            .await;
        assert_eq!(s, 204, "{v}");
        let run = page.await.unwrap();
        stop.cancel();
        sharing.await.unwrap();
        for t in [host_task, frames_task, control_task] {
            t.abort();
        }
        assert_script("meeting.mjs", &run);
        eprintln!("meeting.mjs: {}", run.result);
        let r = &run.result;
        assert_eq!(r["participant"].as_u64(), Some(u64::from(browser_id)), "{r}");
        assert!(r["frames"].as_u64().unwrap() >= 20, "{r}");
        assert_eq!(r["track"].as_u64(), Some(u64::from(host_track)), "{r}");
        assert!(r["drawn_pixels"].as_u64().unwrap() > 0, "the stroke is drawn: {r}");
        assert!(
            r["final_status"].as_str().unwrap().contains("ended by the host"),
            "{r}"
        );

        // The stroke: on the host's share, from where the pointer went down to where it came up.
        let a = annotation.unwrap();
        assert_eq!(a.kind, AnnotationKind::Stroke, "{a:?}");
        assert_eq!(a.track, host_track, "{a:?}");
        let near = |p: (u16, u16), want: &Value| {
            let (x, y) = (want[0].as_i64().unwrap(), want[1].as_i64().unwrap());
            (i64::from(p.0) - x).abs() <= 656 && (i64::from(p.1) - y).abs() <= 656
        };
        assert!(
            near(a.points[0], &r["stroke"]["from"]),
            "{:?} starts near {}",
            a.points,
            r["stroke"]
        );
        assert!(
            near(*a.points.last().unwrap(), &r["stroke"]["to"]),
            "{:?} ends near {}",
            a.points,
            r["stroke"]
        );
    })
    .await
    .unwrap();
}

/// Two meeting pages, the host's (join token) and a guest's (meeting code), both with "I will share my screen":
/// the guest's page sends nothing until the host's page makes it a presenter; then each page shows the other's
/// screen, the host's page mutes the guest's share and ends the meeting, and the guest's page shows both.
#[tokio::test]
async fn browser_host_page_makes_a_browser_guest_a_presenter() {
    if !browser_ready() {
        return;
    }
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = start_relay().await;
        let admin = api::admin(&relay).await;
        let m = meeting(&admin, json!({ "topic": "two browsers" })).await;
        let run = node_async(
            "meeting-host.mjs",
            vec![
                relay.api.clone(),
                m["host_token"].as_str().unwrap().to_string(),
                m["code_display"].as_str().unwrap().to_string(),
                "10".into(),
                "75".into(),
            ],
            vec![],
            Duration::from_secs(80),
        )
        .await;
        assert_script("meeting-host.mjs", &run);
        eprintln!("meeting-host.mjs: {}", run.result);
        let guest = &run.result["guest"];
        assert_eq!(guest["role"], "presenter", "{}", run.result);
        assert!(
            guest["chat"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l == "the host muted your share"),
            "{}",
            run.result
        );
    })
    .await
    .unwrap();
}
