//! WebRTC peers in meetings beside QUIC participants: each kind sees the other's shares (VP8 from a QUIC
//! presenter, H.264 from a browser-style one), and a WebRTC viewer that stalls disturbs nobody and recovers
//! at a keyframe.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use assist_relay::client::webrtc::{RtcClient, RtcEvent, RtcOptions};
use assist_relay::client::Session;
use assist_relay::media::{Codec, MediaFrame};
use assist_relay::protocol::message::MeetingRole;
use assist_relay::protocol::ServerMsg;
use assist_relay::transport::quic::{GroupEvent, GroupOrder, GroupStreams};
use common::*;

use super::webrtc::{fixture_frames, nal_units, quic_present};

const WAIT: Duration = Duration::from_secs(30);

/// Receives one share; offers both codecs.
static VIEWER: std::sync::LazyLock<RtcOptions> = std::sync::LazyLock::new(|| viewer_opts(0, 1));

fn viewer_opts(send: usize, recv: usize) -> RtcOptions {
    RtcOptions {
        send_tracks: send,
        recv_tracks: recv,
        ..RtcOptions::default()
    }
}

/// Enters a meeting over WebRTC with a staff token; returns the peer and its participant id.
async fn rtc_staff(
    relay: &TestRelay,
    m: &assist_relay::relay::NewMeeting,
    user: u32,
    role: MeetingRole,
    send: usize,
    recv: usize,
) -> (RtcClient, u32) {
    let token = relay.relay.meeting_token(m.id, user, role, m.ends_at);
    let mut c = RtcClient::connect(
        &relay.api,
        &format!("as=meeting&name=user{user}"),
        &token,
        &viewer_opts(send, recv),
    )
    .await
    .unwrap();
    let pid = c
        .wait_msg(WAIT, |msg| match msg {
            ServerMsg::MeetingWelcome(w) => Some(w.participant),
            _ => None,
        })
        .await
        .expect("MEETING_WELCOME on the control channel");
    (c, pid)
}

/// Frames of `track` a QUIC participant receives, until `n` have arrived (others are read and dropped).
async fn quic_track_frames(s: &Session, track: u32, n: usize) -> Vec<(bool, Vec<u8>)> {
    let mut groups = GroupStreams::new(&s.conn, 16 << 20, GroupOrder::Live);
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, async {
        while got.len() < n {
            if let GroupEvent::Frame(f) = groups.next().await.expect("connection ended") {
                if f.track == track {
                    got.push((f.keyframe, f.wire.slice(24..).to_vec()));
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} frames of track {track}", got.len()));
    got
}

/// Frames a WebRTC participant receives, by codec, until it has `n` of each codec in `want`.
async fn rtc_frames_by_codec(
    c: &mut RtcClient,
    want: &[Codec],
    n: usize,
) -> HashMap<Codec, Vec<(bool, Vec<u8>)>> {
    let mut got: HashMap<Codec, Vec<(bool, Vec<u8>)>> = HashMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while want.iter().any(|c| got.get(c).map_or(0, Vec::len) < n) {
        match tokio::time::timeout_at(deadline, c.events.recv()).await {
            Ok(Some(RtcEvent::Frame {
                codec,
                keyframe,
                data,
                ..
            })) => got.entry(codec).or_default().push((keyframe, data)),
            Ok(Some(RtcEvent::Closed)) | Ok(None) => panic!("peer closed"),
            Ok(Some(_)) => {}
            Err(_) => panic!(
                "frames by codec: {:?}",
                got.iter().map(|(c, v)| (*c, v.len())).collect::<Vec<_>>()
            ),
        }
    }
    got
}

#[tokio::test]
async fn webrtc_and_quic_participants_see_each_others_shares() {
    let relay = TestRelay::start().await;
    let m = relay.meeting();
    let presenter = relay.staff(&m, 1, MeetingRole::Presenter, "Pat").await;
    let (browser, bid) = rtc_staff(&relay, &m, 2, MeetingRole::Presenter, 1, 2).await;
    let browser_track = bid * 16;
    let quic_viewer = relay.guest(&m, "Quinn").await;
    let mut rtc_viewer = RtcClient::connect(
        &relay.api,
        "as=guest&name=Wen",
        &m.code_display,
        &viewer_opts(0, 2),
    )
    .await
    .unwrap();

    let vp8: Vec<MediaFrame> = fixture_frames("screen-vp8-720p.ivf")
        .into_iter()
        .take(60)
        .collect();
    let h264: Vec<MediaFrame> = fixture_frames("screen-h264-720p.h264")
        .into_iter()
        .take(60)
        .collect();
    let browser_sends = async {
        for f in &h264 {
            browser.send_frame(0, f.clone()).await;
            tokio::time::sleep(Duration::from_millis(16)).await;
        }
    };
    let (by_codec, from_browser, (), ()) = tokio::join!(
        rtc_frames_by_codec(&mut rtc_viewer, &[Codec::Vp8, Codec::H264], 60),
        quic_track_frames(&quic_viewer, browser_track, 60),
        quic_present(&presenter, &vp8),
        browser_sends,
    );
    // The WebRTC viewer: the QUIC presenter's VP8 byte for byte, the browser presenter's H.264 by NAL unit.
    for (i, ((keyframe, data), sent)) in by_codec[&Codec::Vp8].iter().zip(&vp8).enumerate() {
        assert_eq!(*keyframe, sent.keyframe, "VP8 frame {i}");
        assert!(data[..] == sent.data[..], "VP8 frame {i} differs");
    }
    for (i, ((keyframe, data), sent)) in by_codec[&Codec::H264].iter().zip(&h264).enumerate() {
        assert_eq!(*keyframe, sent.keyframe, "H.264 frame {i}");
        assert!(
            nal_units(data) == nal_units(&sent.data),
            "H.264 frame {i} differs"
        );
    }
    // The QUIC viewer: the browser presenter's H.264 with its keyframe flags.
    for (i, ((keyframe, data), sent)) in from_browser.iter().zip(&h264).enumerate() {
        assert_eq!(*keyframe, sent.keyframe, "bridged frame {i}");
        assert!(
            nal_units(data) == nal_units(&sent.data),
            "bridged frame {i} differs"
        );
    }
    // The QUIC presenter's frames to the two WebRTC participants, the browser's to the QUIC viewer.
    let mapped = relay
        .metric("assist_relay_webrtc_bridged_frames_total")
        .await;
    assert!(mapped >= 120.0, "bridged {mapped}");
}

#[tokio::test]
async fn a_stalled_webrtc_viewer_disturbs_nobody_and_recovers_at_a_keyframe() {
    let relay = TestRelay::start().await;
    let m = relay.meeting();
    let presenter = relay.staff(&m, 1, MeetingRole::Presenter, "Pat").await;
    let join =
        |query: &'static str| RtcClient::connect(&relay.api, query, &m.code_display, &VIEWER);
    let mut steady = join("as=guest&name=steady").await.unwrap();
    let mut stalled = join("as=guest&name=stalled").await.unwrap();
    for c in [&mut steady, &mut stalled] {
        c.wait_msg(WAIT, |msg| {
            matches!(msg, ServerMsg::MeetingWelcome(_)).then_some(())
        })
        .await
        .unwrap();
    }
    // Five groups of 30 frames; the fixture's frames repeat to make 150.
    let frames: Vec<MediaFrame> = fixture_frames("screen-vp8-720p.ivf")
        .into_iter()
        .cycle()
        .take(150)
        .collect();
    let stall_then_recover = async {
        let first = rtc_frames_by_codec(&mut stalled, &[Codec::Vp8], 10).await;
        assert!(
            first[&Codec::Vp8][0].0,
            "the first frame a viewer gets is a keyframe"
        );
        stalled.stall(Duration::from_millis(1500)).await;
        // Back: whatever arrives, a keyframe comes (the next group, or the one a PLI asks for) and frames
        // flow after it.
        stalled.request_keyframe(0).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        let (mut keyframe_seen, mut after) = (false, 0);
        while after < 20 {
            match tokio::time::timeout_at(deadline, stalled.events.recv()).await {
                Ok(Some(RtcEvent::Frame { keyframe, .. })) => {
                    keyframe_seen |= keyframe;
                    after += usize::from(keyframe_seen);
                }
                Ok(Some(_)) => {}
                other => panic!("the stalled viewer did not recover: {other:?}"),
            }
        }
    };
    let (steady_frames, (), ()) = tokio::join!(
        rtc_frames_by_codec(&mut steady, &[Codec::Vp8], 150),
        stall_then_recover,
        quic_present(&presenter, &frames),
    );
    let got = &steady_frames[&Codec::Vp8];
    assert_eq!(got.len(), 150);
    for (i, ((keyframe, data), sent)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(*keyframe, sent.keyframe, "steady viewer frame {i}");
        assert!(data[..] == sent.data[..], "steady viewer frame {i} differs");
    }
}
