//! WebRTC peers (str0m, offering as a browser does) against a real relay on loopback, in the same sessions as
//! QUIC clients: signaling and its refusals, frames both ways byte for byte, input and view-only over the data
//! channel, keyframe requests both ways, and garbage on the UDP port.

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

const WAIT: Duration = Duration::from_secs(20);

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

fn opts(send: usize, recv: usize) -> RtcOptions {
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
async fn rtc_technician(relay: &TestRelay, token: &str) -> RtcClient {
    RtcClient::connect(&relay.api, "as=technician", token, &opts(0, 1))
        .await
        .unwrap()
}

/// Waits for the control channel to open and returns the first control message (the welcome).
async fn welcome(c: &mut RtcClient) -> ServerMsg {
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
async fn offers_are_answered_or_refused_with_their_status() {
    let relay = TestRelay::start().await;
    // Every documented WebRTC series is there from the start, at 0 (docs/PROTOCOL.md section 13.7).
    let text = reqwest::get(&relay.metrics)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "assist_relay_webrtc_peers{state=\"connected\"} 0",
        "assist_relay_webrtc_failures_total{kind=\"ice\"} 0",
        "assist_relay_webrtc_rtp_packets_total{direction=\"out\"} 0",
        "assist_relay_webrtc_nacks_total{direction=\"sent\"} 0",
        "assist_relay_webrtc_plis_total{direction=\"received\"} 0",
        "assist_relay_webrtc_channel_messages_total{direction=\"in\"} 0",
        "assist_relay_webrtc_bridged_frames_total{direction=\"webrtc_to_quic\"} 0",
        "assist_relay_webrtc_dropped_datagrams_total{reason=\"malformed\"} 0",
        "assist_relay_keyframe_requests_total{result=\"suppressed\"} 0",
    ] {
        assert!(text.lines().any(|l| l == series), "{series} missing");
    }
    let s = relay.create().await;
    let post = |query: &str, auth: &str, ctype: &str, body: String| {
        let req = reqwest::Client::new()
            .post(format!("{}/api/v1/rtc?{query}", relay.api))
            .header("content-type", ctype.to_string())
            .body(body);
        let req = if auth.is_empty() {
            req
        } else {
            req.bearer_auth(auth)
        };
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let v: serde_json::Value = res.json().await.unwrap_or_default();
            (
                status,
                v["error"]["code"].as_str().unwrap_or("").to_string(),
            )
        }
    };
    let sdp = "application/sdp";
    assert_eq!(
        post(
            "as=customer",
            &s.code,
            sdp,
            "v=0\r\nm=application garbage".into()
        )
        .await,
        (400, "invalid_offer".into())
    );
    assert_eq!(
        post("as=customer", &s.code, sdp, "v=0\r\n".into()).await,
        (400, "invalid_offer".into())
    );
    // The parser's internals (memory offsets, grammar) stay in the server's log.
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/rtc?as=customer", relay.api))
        .bearer_auth(&s.code)
        .header("content-type", sdp)
        .body("m=application 9 x\r\n")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = res.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("not parseable SDP") && !message.contains("Pointer"),
        "{message}"
    );
    assert_eq!(
        post("as=customer", &s.code, "text/plain", "v=0".into()).await,
        (415, "unsupported_media_type".into())
    );
    assert_eq!(
        post("as=customer", "", sdp, "v=0".into()).await,
        (401, "unauthorized".into())
    );
    assert_eq!(
        post("as=nobody", &s.code, sdp, "v=0".into()).await,
        (400, "bad_request".into())
    );
    let big = format!("v=0\r\nm=application {}", "x".repeat(70 << 10));
    assert_eq!(
        post("as=customer", &s.code, sdp, big).await,
        (413, "payload_too_large".into())
    );

    // A well-formed offer with a wrong code, then with a codec the relay does not forward.
    let wrong = RtcClient::connect(&relay.api, "as=customer", "000000000000", &opts(1, 0)).await;
    assert!(
        matches!(&wrong, Err(assist_relay::client::ClientError::Api { status: 403, code, .. }) if code == "code_unknown"),
        "{:?}",
        wrong.err()
    );
    let vp9 = RtcOptions {
        codecs: vec![Codec::Vp9],
        ..opts(0, 1)
    };
    let r = RtcClient::connect(&relay.api, "as=technician", &s.technician_token, &vp9).await;
    assert!(
        matches!(&r, Err(assist_relay::client::ClientError::Api { status: 422, code, .. }) if code == "unsupported_codec"),
        "{:?}",
        r.err()
    );

    // The technician token still works (the refusals spent nothing), and a second technician is refused.
    let mut tech = rtc_technician(&relay, &s.technician_token).await;
    assert!(matches!(
        welcome(&mut tech).await,
        ServerMsg::Welcome {
            peer_present: false,
            ..
        }
    ));
    let again = RtcClient::connect(
        &relay.api,
        "as=technician",
        &s.technician_token,
        &opts(0, 1),
    )
    .await;
    assert!(
        matches!(&again, Err(assist_relay::client::ClientError::Api { status: 409, code, .. }) if code == "role_taken"),
        "{:?}",
        again.err()
    );
    // DELETE ends the peer; a second DELETE finds nothing.
    let url = format!("{}{}", relay.api, tech.location);
    let del = reqwest::Client::new().delete(&url).send().await.unwrap();
    assert_eq!(del.status().as_u16(), 204);
    let del = reqwest::Client::new().delete(&url).send().await.unwrap();
    assert_eq!(del.status().as_u16(), 404);
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
async fn garbage_on_the_udp_port_is_dropped_and_counted() {
    let relay = TestRelay::start().await;
    let s = relay.create().await;
    let mut tech = rtc_technician(&relay, &s.technician_token).await;
    welcome(&mut tech).await;
    let addr = relay.webrtc.expect("WebRTC is on");
    let junk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut stun_like = vec![0u8, 1, 0, 8, 0x21, 0x12, 0xA4, 0x42];
    stun_like.extend_from_slice(&[7u8; 20]);
    let dtls_like = [22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let rtp_like = [
        0x80u8, 96, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3,
    ];
    for _ in 0..50 {
        for d in [
            &stun_like[..],
            &dtls_like[..],
            &rtp_like[..],
            b"\x00",
            &[0xffu8; 1500][..],
        ] {
            junk.send_to(d, addr).await.unwrap();
        }
    }
    let oversized = vec![0u8; 4000];
    junk.send_to(&oversized, addr).await.unwrap();
    // The established peer is undisturbed: a customer joins and its chat reaches the browser technician.
    let mut cust = relay.customer(&s.code, true).await.unwrap();
    cust.tx
        .send(&ClientMsg::Chat("still here".into()))
        .await
        .unwrap();
    let chat = tech
        .wait_msg(WAIT, |m| match m {
            ServerMsg::Chat { text, .. } => Some(text.clone()),
            _ => None,
        })
        .await;
    assert_eq!(chat.as_deref(), Some("still here"));
    let dropped = relay
        .metric("assist_relay_webrtc_dropped_datagrams_total")
        .await;
    assert!(dropped >= 250.0, "dropped {dropped}");
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

/// POSTs a well-formed offer (a `control` channel, one `recvonly` VP8 m-line) from a peer that never sends a
/// packet: the status, the answer's `Assist-Resume-Token`, and the answer.
async fn silent_offer(
    relay: &TestRelay,
    query: &str,
    bearer: &str,
) -> (u16, Option<String>, String) {
    let res = post_offer(relay, query, bearer, silent_sdp()).await;
    let status = res.status().as_u16();
    let token = res
        .headers()
        .get("assist-resume-token")
        .map(|v| v.to_str().unwrap().to_string());
    (status, token, res.text().await.unwrap())
}

/// The offer of a peer that never sends a packet.
fn silent_sdp() -> String {
    use str0m::media::{Direction, MediaKind};
    let mut rtc = str0m::RtcConfig::new()
        .set_crypto_provider(std::sync::Arc::new(str0m::crypto::from_feature_flags()))
        .clear_codecs()
        .enable_vp8(true)
        .build(std::time::Instant::now());
    let local = "127.0.0.1:9".parse().unwrap();
    rtc.add_local_candidate(str0m::Candidate::host(local, "udp").unwrap());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    change.add_channel("control".into());
    let (offer, _pending) = change.apply().unwrap();
    offer.to_sdp_string()
}

async fn post_offer(
    relay: &TestRelay,
    query: &str,
    bearer: &str,
    sdp: String,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1/rtc?{query}", relay.api))
        .bearer_auth(bearer)
        .header("content-type", "application/sdp")
        .body(sdp)
        .send()
        .await
        .unwrap()
}

/// A peer replaced before its connection came up (resumed from another tab) is gone at once: its slot is
/// free and it is not counted as a failure.
#[tokio::test]
async fn a_replaced_peer_that_never_connected_is_gone_at_once() {
    let relay = TestRelay::start().await;
    let s = relay.create().await;
    let (status, token, _) = silent_offer(&relay, "as=technician", &s.technician_token).await;
    assert_eq!(status, 201);
    let (status, token2, _) = silent_offer(&relay, "as=resume", &token.unwrap()).await;
    assert_eq!(status, 201);
    assert!(token2.is_some());
    let connecting = "assist_relay_webrtc_peers{state=\"connecting\"}";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while relay.metric(connecting).await > 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replaced peer still holds its slot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let failures = relay
        .metric("assist_relay_webrtc_failures_total{kind=\"no_control_channel\"}")
        .await;
    assert_eq!(failures, 0.0);
}

/// A STUN request naming a live peer but failing its integrity check does not bind its source address to
/// the peer: what comes from there next is still an unknown source.
#[tokio::test]
async fn a_stun_request_that_fails_integrity_binds_no_address() {
    let relay = TestRelay::start().await;
    let s = relay.create().await;
    let (status, _, answer) = silent_offer(&relay, "as=technician", &s.technician_token).await;
    assert_eq!(status, 201);
    let ufrag = answer
        .lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .expect("the answer has an ICE ufrag")
        .to_string();
    // Binding request: USERNAME "<relay ufrag>:peer", MESSAGE-INTEGRITY of the wrong password.
    let mut user = format!("{ufrag}:peer").into_bytes();
    let user_len = user.len();
    user.resize(user_len.div_ceil(4) * 4, 0);
    let mut attrs = Vec::new();
    attrs.extend_from_slice(&0x0006u16.to_be_bytes());
    attrs.extend_from_slice(&(user_len as u16).to_be_bytes());
    attrs.extend_from_slice(&user);
    attrs.extend_from_slice(&0x0008u16.to_be_bytes());
    attrs.extend_from_slice(&20u16.to_be_bytes());
    attrs.extend_from_slice(&[0x5a; 20]);
    let mut stun = vec![0x00, 0x01];
    stun.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    stun.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    stun.extend_from_slice(&[7u8; 12]);
    stun.extend_from_slice(&attrs);
    let addr = relay.webrtc.expect("WebRTC is on");
    let junk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    junk.send_to(&stun, addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut buf = [0u8; 1500];
    let answered = tokio::time::timeout(Duration::from_millis(100), junk.recv_from(&mut buf)).await;
    assert!(
        answered.is_err(),
        "a request that fails integrity gets no answer"
    );
    let unknown = "assist_relay_webrtc_dropped_datagrams_total{reason=\"unknown_source\"}";
    let malformed = "assist_relay_webrtc_dropped_datagrams_total{reason=\"malformed\"}";
    let (u0, m0) = (relay.metric(unknown).await, relay.metric(malformed).await);
    for _ in 0..10 {
        junk.send_to(b"\x00garbage", addr).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while relay.metric(unknown).await < u0 + 10.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "garbage not counted as unknown_source"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(relay.metric(malformed).await, m0);
}

/// A peer whose connectivity checks never arrive (UDP blocked) ends after `session.hello_timeout` and is
/// counted as an ICE failure, not as a missing control channel.
#[tokio::test]
async fn a_peer_that_never_sends_a_packet_is_an_ice_failure() {
    let relay = TestRelay::start_with(|l| {
        l.session.hello_timeout = Some(assist_relay::config::Dur(Duration::from_secs(1)));
    })
    .await;
    let s = relay.create().await;
    let (status, _, _) = silent_offer(&relay, "as=technician", &s.technician_token).await;
    assert_eq!(status, 201);
    let ice = "assist_relay_webrtc_failures_total{kind=\"ice\"}";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while relay.metric(ice).await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ICE failure counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let no_channel = "assist_relay_webrtc_failures_total{kind=\"no_control_channel\"}";
    assert_eq!(relay.metric(no_channel).await, 0.0);
    assert_eq!(
        relay
            .metric("assist_relay_webrtc_peers{state=\"connecting\"}")
            .await,
        0.0
    );
}

/// Wrong codes from one address are answered 429 `rate_limited` once the guessing limit backs off, with
/// the wait in the body and in `Retry-After`.
#[tokio::test]
async fn guessing_codes_over_webrtc_is_rate_limited_with_the_wait() {
    let relay = TestRelay::start().await;
    relay.create().await;
    let sdp = silent_sdp();
    for attempt in 0..40 {
        let res = post_offer(&relay, "as=customer", "000000000000", sdp.clone()).await;
        if res.status().as_u16() != 429 {
            assert_eq!(res.status().as_u16(), 403, "attempt {attempt}");
            continue;
        }
        let header: u64 = res.headers()[reqwest::header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let v: serde_json::Value = res.json().await.unwrap();
        assert_eq!(v["error"]["code"], "rate_limited");
        assert_eq!(v["error"]["retry_after_secs"].as_u64(), Some(header));
        assert!(header >= 1);
        return;
    }
    panic!("40 wrong codes were never rate limited");
}
