//! WebRTC peers (str0m, offering as a browser does) against a real relay on loopback, in the same sessions as
//! QUIC clients: frames both ways byte for byte, input and view-only over the data channel, keyframe requests
//! both ways, files both ways, and a browser customer resuming. The signaling endpoint's and UDP port's edges
//! are in [`super::webrtc_signaling`].

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use assist_relay::client::webrtc::{RtcClient, RtcEvent, RtcOptions};
use assist_relay::client::MediaSender;
use assist_relay::media::{Codec, MediaFrame, MediaReader, ReadOptions};
use assist_relay::protocol::message::InputEvent;
use assist_relay::protocol::{ClientMsg, ErrorCode, ServerMsg};
use assist_relay::transport::quic::{GroupEvent, GroupOrder, GroupStreams};
use common::*;

pub(crate) const WAIT: Duration = Duration::from_secs(20);

pub(crate) fn fixture_frames(name: &str) -> Vec<MediaFrame> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    MediaReader::open(&path, ReadOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The NAL units of an H.264 Annex B access unit, without their start codes. RTP carries NAL units, not
/// start codes, so a frame that crossed WebRTC has 4-byte start codes where the recording may have 3.
pub(crate) fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        let mut nal = &data[s..end];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        out.push(nal);
    }
    out
}

pub(crate) fn opts(send: usize, recv: usize) -> RtcOptions {
    RtcOptions {
        send_tracks: send,
        recv_tracks: recv,
        ..RtcOptions::default()
    }
}

/// A WebRTC customer for session `code`.
async fn rtc_customer(relay: &TestRelay, code: &str, allow_control: bool) -> RtcClient {
    let q = format!("as=customer&allow_control={allow_control}");
    RtcClient::connect(&relay.api, &q, code, &opts(1, 0))
        .await
        .unwrap()
}

/// A WebRTC technician for a session created through the API.
pub(crate) async fn rtc_technician(relay: &TestRelay, token: &str) -> RtcClient {
    RtcClient::connect(&relay.api, "as=technician", token, &opts(0, 1))
        .await
        .unwrap()
}

/// Waits for the control channel to open and returns the first control message (the welcome).
pub(crate) async fn welcome(c: &mut RtcClient) -> ServerMsg {
    c.wait_msg(WAIT, |m| Some(m.clone()))
        .await
        .expect("no welcome on the control channel")
}

/// Frames a WebRTC peer receives, until `n` have arrived: (keyframe, payload).
async fn rtc_frames(c: &mut RtcClient, n: usize) -> Vec<(bool, Vec<u8>)> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < n {
        match tokio::time::timeout_at(deadline, c.events.recv()).await {
            Ok(Some(RtcEvent::Frame { keyframe, data, .. })) => got.push((keyframe, data)),
            Ok(Some(RtcEvent::Closed)) | Ok(None) => {
                panic!("peer closed after {} frames", got.len())
            }
            Ok(Some(_)) => {}
            Err(_) => panic!("only {} of {n} frames arrived", got.len()),
        }
    }
    got
}

/// Frames a QUIC viewer receives, until `n` have arrived: (keyframe, payload).
async fn quic_frames(s: &assist_relay::client::Session, n: usize) -> Vec<(bool, Vec<u8>)> {
    let mut groups = GroupStreams::new(&s.conn, 16 << 20, GroupOrder::Strict);
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, async {
        while got.len() < n {
            if let GroupEvent::Frame(f) = groups.next().await.expect("viewer connection ended") {
                got.push((f.keyframe, f.wire.slice(24..).to_vec()));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} frames arrived", got.len()));
    got
}

/// Sends `frames` from a QUIC publisher (customer or presenter) as local track 0, at about 60 fps.
pub(crate) async fn quic_present(p: &assist_relay::client::Session, frames: &[MediaFrame]) {
    let mut sender = MediaSender::new(p.conn.clone(), 0);
    for f in frames {
        sender
            .send(f.codec, f.keyframe, f.pts_us, f.data.clone())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(16)).await;
    }
    sender.flush().await;
}

/// Sends `frames` from a WebRTC publisher at about 60 fps.
async fn rtc_publish(c: &RtcClient, frames: &[MediaFrame]) {
    for f in frames {
        c.send_frame(0, f.clone()).await;
        tokio::time::sleep(Duration::from_millis(16)).await;
    }
}

#[tokio::test]
async fn browser_customer_frames_reach_a_quic_technician_byte_for_byte() {
    for (fixture, codec) in [
        ("screen-vp8-720p.ivf", Codec::Vp8),
        ("screen-h264-720p.h264", Codec::H264),
    ] {
        let relay = TestRelay::start().await;
        let s = relay.create().await;
        let tech = relay.technician(&s).await;
        let mut cust = rtc_customer(&relay, &s.code, false).await;
        assert!(matches!(
            welcome(&mut cust).await,
            ServerMsg::Welcome { .. }
        ));
        let frames: Vec<MediaFrame> = fixture_frames(fixture).into_iter().take(60).collect();
        assert!(frames[0].keyframe && frames.iter().all(|f| f.codec == codec));
        let (got, ()) = tokio::join!(quic_frames(&tech, 60), rtc_publish(&cust, &frames));
        for (i, ((keyframe, data), sent)) in got.iter().zip(&frames).enumerate() {
            assert_eq!(
                *keyframe, sent.keyframe,
                "{fixture}: frame {i} keyframe flag"
            );
            match codec {
                Codec::H264 => assert!(
                    nal_units(data) == nal_units(&sent.data),
                    "{fixture}: frame {i}'s NAL units differ"
                ),
                _ => assert!(data[..] == sent.data[..], "{fixture}: frame {i} differs"),
            }
        }
        assert!(
            relay
                .metric("assist_relay_webrtc_bridged_frames_total")
                .await
                >= 60.0
        );
    }
}

#[tokio::test]
async fn quic_customer_frames_reach_a_browser_technician_as_rtp() {
    let relay = TestRelay::start().await;
    let s = relay.create().await;
    let mut tech = rtc_technician(&relay, &s.technician_token).await;
    welcome(&mut tech).await;
    let cust = relay.customer(&s.code, true).await.unwrap();
    let frames: Vec<MediaFrame> = fixture_frames("screen-vp8-720p.ivf")
        .into_iter()
        .take(60)
        .collect();
    let (got, ()) = tokio::join!(rtc_frames(&mut tech, 60), quic_present(&cust, &frames));
    for (i, ((keyframe, data), sent)) in got.iter().zip(&frames).enumerate() {
        assert_eq!(*keyframe, sent.keyframe, "frame {i} keyframe flag");
        assert!(data[..] == sent.data[..], "frame {i} differs");
    }
}

#[tokio::test]
async fn data_channel_input_reaches_a_quic_customer_and_view_only_holds() {
    let relay = TestRelay::start().await;
    for allow in [true, false] {
        let s = relay.create().await;
        let mut tech = rtc_technician(&relay, &s.technician_token).await;
        welcome(&mut tech).await;
        let mut cust = relay.customer(&s.code, allow).await.unwrap();
        tech.wait_msg(WAIT, |m| {
            matches!(m, ServerMsg::Control { .. }).then_some(())
        })
        .await
        .expect("the technician hears the customer's consent");
        let click = InputEvent::MouseButton {
            button: 0,
            pressed: true,
            x: 32768,
            y: 1000,
        };
        tech.send(&ClientMsg::Input(click.clone())).await;
        tech.send(&ClientMsg::Chat("hello from a browser".into()))
            .await;
        if allow {
            let got = expect_msg(&mut cust, |m| matches!(m, ServerMsg::Input(_))).await;
            assert_eq!(got, ServerMsg::Input(click));
        } else {
            let notice = tech
                .wait_msg(WAIT, |m| match m {
                    ServerMsg::Notice { code, .. } => Some(*code),
                    _ => None,
                })
                .await;
            assert_eq!(notice, Some(ErrorCode::InputViewOnly));
        }
        // Chat flows either way, and in order after the input.
        let chat = expect_msg(&mut cust, |m| matches!(m, ServerMsg::Chat { .. })).await;
        assert!(matches!(chat, ServerMsg::Chat { text, .. } if text == "hello from a browser"));
        if !allow {
            // Nothing but chat arrived at the view-only customer.
            assert!(tokio::time::timeout(Duration::from_millis(300), async {
                expect_msg(&mut cust, |m| matches!(m, ServerMsg::Input(_))).await
            })
            .await
            .is_err());
        }
    }
}

#[tokio::test]
async fn keyframe_requests_map_both_ways() {
    let relay = TestRelay::start().await;
    // A browser technician's PLI reaches a QUIC customer as KEYFRAME_REQUEST.
    let s = relay.create().await;
    let mut tech = rtc_technician(&relay, &s.technician_token).await;
    welcome(&mut tech).await;
    let mut cust = relay.customer(&s.code, true).await.unwrap();
    let frames = fixture_frames("screen-vp8-720p.ivf");
    let mut sender = MediaSender::new(cust.conn.clone(), 0);
    for f in frames.iter().take(3) {
        sender
            .send(f.codec, f.keyframe, f.pts_us, f.data.clone())
            .await
            .unwrap();
    }
    rtc_frames(&mut tech, 1).await;
    tech.request_keyframe(0).await;
    expect_msg(&mut cust, |m| {
        matches!(m, ServerMsg::KeyframeRequest { track: 0 })
    })
    .await;

    // A QUIC technician's KEYFRAME_REQUEST reaches a browser customer as a PLI.
    let s = relay.create().await;
    let mut qtech = relay.technician(&s).await;
    let mut bcust = rtc_customer(&relay, &s.code, false).await;
    welcome(&mut bcust).await;
    expect_msg(&mut qtech, |m| matches!(m, ServerMsg::Control { .. })).await;
    qtech
        .tx
        .send(&ClientMsg::KeyframeRequest { track: 0 })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, bcust.events.recv()).await {
            Ok(Some(RtcEvent::KeyframeRequested { index: 0 })) => break,
            Ok(Some(_)) => {}
            other => panic!("no PLI reached the browser customer: {other:?}"),
        }
    }
    assert!(relay.metric("assist_relay_webrtc_plis_total").await >= 2.0);
}

#[tokio::test]
async fn files_cross_between_a_browser_and_a_quic_peer_on_data_channels() {
    use assist_relay::client::files::{read_file, send_file, sha256};
    use assist_relay::protocol::message::{FileOffer, FileState};
    let relay = TestRelay::start().await;
    let s = relay.create().await;
    let mut tech = relay.technician(&s).await;
    let mut cust = rtc_customer(&relay, &s.code, false).await;
    welcome(&mut cust).await;
    expect_msg(&mut tech, |m| matches!(m, ServerMsg::Control { .. })).await;
    let accepted = |m: &ServerMsg| {
        matches!(
            m,
            ServerMsg::FileState {
                state: FileState::Accepted,
                ..
            }
        )
        .then_some(())
    };

    // Browser → QUIC: 3 MiB on a `file:` data channel, out as a QUIC file stream, verified by hash.
    let data: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
    cust.send(&ClientMsg::FileOffer(FileOffer {
        reference: 1,
        to: 0,
        name: "../../etc/report.pdf".into(),
        size: data.len() as u64,
        sha256: sha256(&data),
    }))
    .await;
    let offer = expect_msg(&mut tech, |m| matches!(m, ServerMsg::FileOffer { .. })).await;
    let ServerMsg::FileOffer { transfer, name, .. } = offer else {
        unreachable!()
    };
    assert_eq!(name, "report.pdf");
    tech.tx
        .send(&ClientMsg::FileAnswer {
            transfer,
            accept: true,
            offset: 0,
        })
        .await
        .unwrap();
    cust.wait_msg(WAIT, accepted)
        .await
        .expect("FILE_STATE accepted");
    cust.send_file(transfer, 0, data.clone()).await;
    let mut groups = GroupStreams::new(&tech.conn, 1 << 20, GroupOrder::Live);
    let (header, stream) = tokio::time::timeout(WAIT, async {
        loop {
            if let GroupEvent::File { header, stream } = groups.next().await.unwrap() {
                break (header, stream);
            }
        }
    })
    .await
    .expect("a file stream for the technician");
    assert_eq!(header.transfer, transfer);
    let (bytes, complete) = read_file(stream, data.len()).await.unwrap();
    assert!(complete && sha256(&bytes) == sha256(&data));
    drop(groups);

    // QUIC → browser: the relay opens `file:<transfer>:0` towards the browser and closes it when done.
    let back = b"screenshot bytes\n".repeat(20_000);
    tech.tx
        .send(&ClientMsg::FileOffer(FileOffer {
            reference: 2,
            to: 0,
            name: "shot.png".into(),
            size: back.len() as u64,
            sha256: sha256(&back),
        }))
        .await
        .unwrap();
    let transfer = cust
        .wait_msg(WAIT, |m| match m {
            ServerMsg::FileOffer { transfer, .. } => Some(*transfer),
            _ => None,
        })
        .await
        .expect("the browser is offered the file");
    cust.send(&ClientMsg::FileAnswer {
        transfer,
        accept: true,
        offset: 0,
    })
    .await;
    expect_msg(&mut tech, |m| accepted(m).is_some()).await;
    let (sent, got) = tokio::join!(send_file(&tech.conn, transfer, 0, &back), async {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, cust.events.recv()).await {
                Ok(Some(RtcEvent::File { label, data })) => break (label, data),
                Ok(Some(_)) => {}
                other => panic!("no file reached the browser: {other:?}"),
            }
        }
    });
    sent.unwrap();
    assert_eq!(got.0, format!("file:{transfer}:0"));
    assert!(
        sha256(&got.1) == sha256(&back),
        "{} of {} bytes",
        got.1.len(),
        back.len()
    );
}

#[tokio::test]
async fn a_browser_customer_leaves_and_resumes_with_its_token() {
    use assist_relay::protocol::message::PeerState;
    let relay = TestRelay::start().await;
    let s = relay.create().await;
    let mut tech = relay.technician(&s).await;
    let mut cust = rtc_customer(&relay, &s.code, true).await;
    let ServerMsg::Welcome { resume_token, .. } = welcome(&mut cust).await else {
        panic!("a customer is welcomed with WELCOME")
    };
    assert_eq!(
        cust.resume_token.as_ref(),
        Some(&resume_token),
        "the answer's header"
    );
    let peer_state = |want: PeerState| move |m: &ServerMsg| matches!(m, ServerMsg::Peer { state, .. } if *state == want);
    expect_msg(&mut tech, peer_state(PeerState::Joined)).await;
    cust.close().await;
    expect_msg(&mut tech, peer_state(PeerState::Away)).await;
    // The code is spent; the resume token brings the customer back into the same session.
    let again = RtcClient::connect(&relay.api, "as=customer", &s.code, &opts(1, 0)).await;
    assert!(
        matches!(&again, Err(assist_relay::client::ClientError::Api { status: 403, code, .. }) if code == "code_used"),
        "{:?}",
        again.err()
    );
    let mut back = RtcClient::connect(&relay.api, "as=resume", &resume_token, &opts(1, 0))
        .await
        .unwrap();
    assert!(matches!(
        welcome(&mut back).await,
        ServerMsg::Welcome { .. }
    ));
    expect_msg(&mut tech, peer_state(PeerState::Resumed)).await;
}

/// A browser whose connection never comes up (its code spent by the 201) enters again with the answer's
/// `Assist-Resume-Token`, without ever having read its WELCOME.
#[tokio::test]
async fn a_browser_whose_connection_never_came_up_enters_again_with_the_answers_token() {
    use assist_relay::protocol::message::PeerState;
    let relay = TestRelay::start().await;
    let s = relay.create().await;
    let mut tech = relay.technician(&s).await;
    let lost = RtcClient::connect(&relay.api, "as=customer", &s.code, &opts(1, 0))
        .await
        .unwrap();
    lost.drop_connection().await;
    let token = lost
        .resume_token
        .clone()
        .expect("the 201 carries the resume token");
    let again = RtcClient::connect(&relay.api, "as=customer", &s.code, &opts(1, 0)).await;
    assert!(
        matches!(&again, Err(assist_relay::client::ClientError::Api { status: 403, code, .. }) if code == "code_used"),
        "{:?}",
        again.err()
    );
    let mut back = RtcClient::connect(&relay.api, "as=resume", &token, &opts(1, 0))
        .await
        .unwrap();
    assert!(matches!(
        welcome(&mut back).await,
        ServerMsg::Welcome { .. }
    ));
    expect_msg(&mut tech, |m| {
        matches!(m, ServerMsg::Peer { state, .. } if matches!(state, PeerState::Joined | PeerState::Resumed))
    })
    .await;
}
