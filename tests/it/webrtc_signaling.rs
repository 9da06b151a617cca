//! The WebRTC signaling endpoint and UDP port at their edges, against a real relay on loopback: offers
//! answered or refused with their statuses, series that exist from the start, garbage on the port, peers
//! that never connect (replaced, timed out, resumed with the answer's token), connectivity checks that fail
//! their integrity check, and code guessing rate-limited with the wait.

use crate::common;

use std::time::Duration;

use assist_relay::client::webrtc::{RtcClient, RtcOptions};
use assist_relay::media::Codec;
use assist_relay::protocol::{ClientMsg, ServerMsg};
use common::*;

use super::webrtc::{opts, rtc_technician, welcome, WAIT};

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
        .body("v=0\r\nm=application 9 x\r\n")
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
    offer_sdp(&[(MediaKind::Video, Direction::RecvOnly)])
}

/// An offer with a `control` channel after `media` (VP8 video, Opus audio), from a peer that never sends a
/// packet.
fn offer_sdp(media: &[(str0m::media::MediaKind, str0m::media::Direction)]) -> String {
    let mut rtc = str0m::RtcConfig::new()
        .set_crypto_provider(std::sync::Arc::new(str0m::crypto::from_feature_flags()))
        .clear_codecs()
        .enable_vp8(true)
        .enable_opus(true, false)
        .build(std::time::Instant::now());
    let local = "127.0.0.1:9".parse().unwrap();
    rtc.add_local_candidate(str0m::Candidate::host(local, "udp").unwrap());
    let mut change = rtc.sdp_api();
    for (kind, dir) in media {
        change.add_media(*kind, *dir, None, None, None);
    }
    change.add_channel("control".into());
    let (offer, _pending) = change.apply().unwrap();
    offer.to_sdp_string()
}

/// The status, error code and error message of a refused offer.
async fn refused(res: reqwest::Response) -> (u16, String, String) {
    let status = res.status().as_u16();
    let v: serde_json::Value = res.json().await.unwrap_or_default();
    let field = |k: &str| v["error"][k].as_str().unwrap_or("").to_string();
    (status, field("code"), field("message"))
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
    // A customer's offer: it sends its screen.
    let sdp = offer_sdp(&[(
        str0m::media::MediaKind::Video,
        str0m::media::Direction::SendOnly,
    )]);
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

/// A body that is not SDP at all (or is empty) is told so, before the data channel is looked for; a
/// present but unreadable `a=fingerprint` is named (str0m would report it missing). Nothing is spent.
#[tokio::test]
async fn offers_that_are_not_sdp_or_have_a_malformed_fingerprint_say_so() {
    let relay = TestRelay::start().await;
    let s = relay.create().await;
    for body in [
        "hello world",
        "",
        "\r\n",
        "m=application 9 UDP/DTLS/SCTP x\r\n",
    ] {
        let (status, code, message) =
            refused(post_offer(&relay, "as=technician", &s.technician_token, body.into()).await)
                .await;
        assert_eq!((status, code.as_str()), (400, "invalid_offer"), "{body:?}");
        assert!(
            message.contains("not an SDP offer") && !message.contains("data channel"),
            "{body:?}: {message}"
        );
        if body.trim().is_empty() {
            assert!(message.contains("the body is empty"), "{message}");
        } else {
            assert!(
                message.contains("must start with v=0 (RFC 8866)"),
                "{message}"
            );
        }
    }
    let broken: String = silent_sdp()
        .lines()
        .map(|l| match l.strip_prefix("a=fingerprint:") {
            Some(_) => "a=fingerprint:sha-256 ZZ\r\n".to_string(),
            None => format!("{l}\r\n"),
        })
        .collect();
    assert!(broken.contains("a=fingerprint:sha-256 ZZ"));
    let (status, code, message) =
        refused(post_offer(&relay, "as=technician", &s.technician_token, broken).await).await;
    assert_eq!((status, code.as_str()), (400, "invalid_offer"));
    assert!(
        message.contains(
            "a=fingerprint is malformed: expected sha-256 followed by 32 colon-separated hex bytes"
        ),
        "{message}"
    );
    // The token was not spent.
    let mut tech = rtc_technician(&relay, &s.technician_token).await;
    assert!(matches!(
        welcome(&mut tech).await,
        ServerMsg::Welcome { .. }
    ));
}

/// A customer is there to send its screen and a technician to see it: an offer without a usable video
/// m-line in that direction is refused 422 `unsupported_codec` before the code or token is spent. A meeting
/// participant without video (chat only) is fine.
#[tokio::test]
async fn an_offer_without_the_video_its_peer_needs_spends_nothing() {
    use str0m::media::{Direction, MediaKind};
    let relay = TestRelay::start().await;
    let s = relay.create().await;
    let audio = (MediaKind::Audio, Direction::SendRecv);
    let customer = "as=customer&allow_control=true";
    let cases = [
        (
            customer,
            &s.code,
            "a customer's offer needs a sendonly or sendrecv video m-line with VP8 or H.264",
            vec![
                vec![audio],
                vec![],
                vec![(MediaKind::Video, Direction::RecvOnly)],
                vec![(MediaKind::Video, Direction::Inactive), audio],
            ],
        ),
        (
            "as=technician",
            &s.technician_token,
            "a technician's offer needs a recvonly or sendrecv video m-line",
            vec![vec![audio], vec![(MediaKind::Video, Direction::SendOnly)]],
        ),
    ];
    for (query, secret, want, offers) in cases {
        for media in offers {
            let res = post_offer(&relay, query, secret, offer_sdp(&media)).await;
            let (status, code, message) = refused(res).await;
            assert_eq!(
                (status, code.as_str()),
                (422, "unsupported_codec"),
                "{query} {media:?}"
            );
            assert!(message.contains(want), "{query} {media:?}: {message}");
        }
    }
    // Neither the code nor the token was spent: a proper offer of each enters the session.
    let mut cust = RtcClient::connect(&relay.api, customer, &s.code, &opts(1, 0))
        .await
        .unwrap();
    assert!(matches!(
        welcome(&mut cust).await,
        ServerMsg::Welcome {
            control_allowed: true,
            ..
        }
    ));
    let mut tech = rtc_technician(&relay, &s.technician_token).await;
    assert!(matches!(
        welcome(&mut tech).await,
        ServerMsg::Welcome {
            peer_present: true,
            ..
        }
    ));
    // A meeting participant with nothing but the data channel (or audio, rejected in the answer) enters.
    let m = relay.meeting();
    let role = assist_relay::protocol::message::MeetingRole::Presenter;
    for (user, media) in [(1, vec![]), (2, vec![audio])] {
        let token = relay.relay.meeting_token(m.id, user, role, m.ends_at);
        let res = post_offer(&relay, "as=meeting&name=chat", &token, offer_sdp(&media)).await;
        assert_eq!(res.status().as_u16(), 201, "{media:?}");
    }
}
