//! Media through a real relay on loopback: the shipped recordings arrive byte-exact and decodable; a stalled
//! receiver is isolated and recovers at a keyframe with one keyframe request; hostile input closes only the
//! offending connection.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use assist_relay::client::customer::{self, CustomerArgs};
use assist_relay::client::screen::PacingArgs;
use assist_relay::client::technician::{self, TechnicianArgs};
use assist_relay::client::{MediaSender, TrustArgs};
use assist_relay::media::{Codec, MediaReader, ReadOptions};
use assist_relay::protocol::{ClientMsg, ErrorCode, FrameHeader, GroupHeader, Hello, ServerMsg};
use assist_relay::transport::quic::{GroupEvent, GroupOrder, GroupStreams};
use assist_relay::transport::tls::{fingerprint_hex, ServerTrust};
use bytes::Bytes;
use common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn trust_args(relay: &TestRelay) -> TrustArgs {
    let ServerTrust::Pin(fp) = &relay.trust else {
        unreachable!()
    };
    TrustArgs {
        server_cert_sha256: Some(fingerprint_hex(fp)),
        ca: None,
        server_name: "localhost".into(),
    }
}

/// Runs the demo technician and customer on a recording and returns the saved file.
async fn share_through_relay(relay: &TestRelay, recording: &str, fps: u32, out: &Path) {
    let created = relay.create().await;
    let code = created.code_display.clone();
    let tech_args = TechnicianArgs {
        api: relay.api.clone(),
        operator_key: Some(relay.key.clone()),
        operator_key_file: PathBuf::new(),
        save: out.to_owned(),
        input_script: None,
        relay: None,
        session: None,
        trust: trust_args(relay),
        quiet: true,
    };
    let steps = assist_relay::client::script::parse(
        "wait-control\nmove 100 200\nchat hello from the technician\n",
    )
    .unwrap();
    let tech = tokio::spawn(technician::run_session(tech_args, steps, created));
    let cust_args = CustomerArgs {
        relay: relay.quic.to_string(),
        code,
        share: fixture(recording),
        view_only: false,
        pacing: PacingArgs {
            fps,
            speed: 4.0,
            no_pacing: false,
        },
        wait_secs: 30,
        console: false,
        trust: trust_args(relay),
        quiet: true,
    };
    let sent = customer::run(cust_args, std::future::pending())
        .await
        .expect("customer succeeds");
    let got = tech.await.unwrap().expect("technician succeeds");
    assert_eq!(got.frames, sent.frames_sent, "every frame delivered");
    assert_eq!(got.end, Some(ErrorCode::SessionEnded));
    assert_eq!(got.groups_skipped, 0);
    assert_eq!(
        sent.keyframe_requests, 0,
        "a receiver that keeps up needs no keyframe requests"
    );
    assert!(sent
        .chats
        .contains(&"hello from the technician".to_string()));
    assert!(
        !sent.inputs.is_empty(),
        "the scripted input reached the customer"
    );
}

/// Regression: a technician that joins after the customer learns the customer's consent from WELCOME (no
/// CONTROL message follows it), so a script's `wait-control` goes on and its input and chat are sent.
#[tokio::test]
async fn a_technician_joining_after_the_customer_sees_its_consent() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let created = relay.create().await;
        let cust_args = CustomerArgs {
            relay: relay.quic.to_string(),
            code: created.code_display.clone(),
            share: fixture("screen-vp8-720p.ivf"),
            view_only: false,
            pacing: PacingArgs {
                fps: 30,
                speed: 4.0,
                no_pacing: false,
            },
            wait_secs: 30,
            console: false,
            trust: trust_args(&relay),
            quiet: true,
        };
        let customer = tokio::spawn(customer::run(cust_args, std::future::pending()));
        // Bounded wait until the customer's code was redeemed, i.e. it joined first.
        for _ in 0..2_000 {
            if relay.metric("assist_relay_codes_redeemed_total").await >= 1.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(relay.metric("assist_relay_codes_redeemed_total").await, 1.0);
        let dir = tempfile::tempdir().unwrap();
        let tech_args = TechnicianArgs {
            api: relay.api.clone(),
            operator_key: Some(relay.key.clone()),
            operator_key_file: PathBuf::new(),
            save: dir.path().join("late.ivf"),
            input_script: None,
            relay: None,
            session: None,
            trust: trust_args(&relay),
            quiet: true,
        };
        let steps =
            assist_relay::client::script::parse("wait-control\nchat after consent\n").unwrap();
        let got = technician::run_session(tech_args, steps, created)
            .await
            .expect("technician succeeds");
        let sent = customer.await.unwrap().expect("customer succeeds");
        assert_eq!(got.frames, sent.frames_sent);
        assert!(sent.chats.contains(&"after consent".to_string()));
    })
    .await
    .unwrap();
}

fn frames(path: &Path) -> Vec<assist_relay::media::MediaFrame> {
    MediaReader::open(path, ReadOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn vp8_recording_arrives_byte_exact_and_decodes() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("screen.ivf");
        share_through_relay(&relay, "screen-vp8-720p.ivf", 30, &out).await;
        let (want, got) = (frames(&fixture("screen-vp8-720p.ivf")), frames(&out));
        assert_eq!(got.len(), want.len());
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(w.data, g.data, "frame {i} differs");
            assert_eq!((w.keyframe, w.codec), (g.keyframe, g.codec), "frame {i}");
        }
        ffmpeg_decodes(&out);
        assert_eq!(
            relay.metric("assist_relay_frames_forwarded_total").await,
            want.len() as f64
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn h264_recording_arrives_byte_exact_and_decodes() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("screen.h264");
        share_through_relay(&relay, "screen-h264-720p.h264", 15, &out).await;
        let original = std::fs::read(fixture("screen-h264-720p.h264")).unwrap();
        let saved = std::fs::read(&out).unwrap();
        assert_eq!(saved.len(), original.len());
        assert!(
            saved == original,
            "the Annex B stream is reproduced byte for byte"
        );
        ffmpeg_decodes(&out);
    })
    .await
    .unwrap();
}

/// Sends `groups` groups of `per_group` frames of `size` bytes as fast as possible.
async fn blast(
    sender: &mut MediaSender,
    groups: std::ops::Range<u64>,
    per_group: u64,
    size: usize,
) {
    let payload = Bytes::from(vec![7u8; size]);
    for g in groups {
        for i in 0..per_group {
            sender
                .send(Codec::Vp8, i == 0, g * per_group + i, payload.clone())
                .await
                .unwrap();
        }
    }
}

/// A stalled technician costs only its own session: session B, streamed while A's customer keeps sending
/// into A's stalled backlog, loses nothing and needs no keyframe request (`share_through_relay` asserts
/// both); A recovers at the next keyframe after exactly one request. (How fast B's frames are is measured
/// by `loadtest`, not asserted here.)
#[tokio::test]
async fn a_stalled_receiver_skips_to_a_keyframe_with_one_request_while_other_sessions_flow() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| {
            l.limits.backlog_max_bytes = Some(assist_relay::config::ByteSize(256 << 10));
            l.limits.send_window = Some(assist_relay::config::ByteSize(256 << 10));
        })
        .await;
        // Session A: the technician's connection takes at most 256 KiB unread, and it does not read media.
        let a = relay.create().await;
        let mut small = assist_relay::client::transport_config();
        small
            .receive_window((256u32 << 10).into())
            .stream_receive_window((128u32 << 10).into());
        let ep = assist_relay::client::endpoint_with(
            &relay.trust,
            "127.0.0.1:0".parse().unwrap(),
            small,
        )
        .unwrap();
        let hello = Hello::Technician {
            token: a.technician_token.clone(),
        };
        let mut tech_a = assist_relay::client::join(&ep, relay.quic, "localhost", hello)
            .await
            .unwrap();
        let mut cust_a = relay.customer(&a.code, true).await.unwrap();
        let mut sender_a = MediaSender::new(cust_a.conn.clone(), 0);
        // 5 groups of 30 frames of 20 KB = 3 MB, far past what the stalled reader and the bound hold. The
        // last three groups are sent while session B streams a whole recording through the same relay, so
        // B runs beside a receiver that is stalled and a sender that keeps pushing into it.
        blast(&mut sender_a, 0..2, 30, 20_000).await;
        let dir = tempfile::tempdir().unwrap();
        let b_out = dir.path().join("b.ivf");
        tokio::join!(
            blast(&mut sender_a, 2..5, 30, 20_000),
            share_through_relay(&relay, "screen-vp8-720p.ivf", 30, &b_out),
        );
        expect_msg(&mut cust_a, |m| {
            matches!(m, ServerMsg::KeyframeRequest { .. })
        })
        .await;

        // A's technician starts reading again; then A's customer sends a new group, led by a keyframe.
        let conn_a = tech_a.conn.clone();
        let (skipped_tx, skipped_rx) = tokio::sync::oneshot::channel();
        let mut skipped_tx = Some(skipped_tx);
        let reader = tokio::spawn(async move {
            let mut groups = GroupStreams::new(&conn_a, 4 << 20, GroupOrder::Strict);
            let (mut resets, mut last_group) = (0, Vec::new());
            while last_group.len() < 30 {
                let ev = groups.next().await.unwrap();
                match ev {
                    GroupEvent::Frame(f) if f.seq >= 150 => last_group.push(f.seq),
                    GroupEvent::Frame(_) => {}
                    GroupEvent::Ended { reset } => {
                        resets += usize::from(reset);
                        if reset {
                            skipped_tx.take().map(|tx| tx.send(()));
                        }
                    }
                    GroupEvent::Stale { .. } => {
                        panic!("the relay never sends an old group after a newer one")
                    }
                    GroupEvent::File { .. } => panic!("no file was offered"),
                }
            }
            (resets, last_group)
        });
        // Once the reader has reached the skipped group, the stale backlog is gone (the relay dropped
        // everything up to the next keyframe, which only the new group brings).
        tokio::time::timeout(Duration::from_secs(20), skipped_rx)
            .await
            .expect("the stale group was reset (GROUP_SKIPPED)")
            .unwrap();
        // Small frames: a reader that keeps up absorbs this group without reaching the 256 KiB bound.
        blast(&mut sender_a, 5..6, 30, 2_000).await;
        sender_a.flush().await;
        let (resets, last_group) = tokio::time::timeout(Duration::from_secs(20), reader)
            .await
            .unwrap()
            .unwrap();
        assert!(resets >= 1, "the stale group was reset (GROUP_SKIPPED)");
        assert_eq!(
            last_group,
            (150..180).collect::<Vec<_>>(),
            "recovered at the keyframe, in order"
        );
        // Exactly one keyframe request reached the customer (the clock did not move, so later lags merged).
        // A chat sent now is a marker: once it arrives, everything the relay sent before it has arrived.
        tech_a
            .tx
            .send(&ClientMsg::Chat("marker".into()))
            .await
            .unwrap();
        let mut requests = 1;
        loop {
            match tokio::time::timeout(Duration::from_secs(20), cust_a.rx.recv())
                .await
                .unwrap()
                .unwrap()
            {
                Some(ServerMsg::KeyframeRequest { .. }) => requests += 1,
                Some(ServerMsg::Chat { .. }) => break,
                Some(_) => {}
                None => panic!("control stream ended"),
            }
        }
        assert_eq!(requests, 1);
        assert_eq!(
            relay
                .metric("assist_relay_keyframe_requests_total{result=\"sent\"}")
                .await,
            1.0
        );
        assert!(
            relay
                .metric("assist_relay_frames_dropped_total{reason=\"receiver_lagging\"}")
                .await
                > 0.0
        );
        assert!(relay.metric("assist_relay_groups_reset_total").await >= 1.0);
    })
    .await
    .unwrap();
}

/// Opens a raw connection and control stream as a client would, without HELLO.
async fn raw(relay: &TestRelay) -> (quinn::Connection, quinn::SendStream) {
    let ep = relay.endpoint("127.0.0.1:0");
    let conn = ep.connect(relay.quic, "localhost").unwrap().await.unwrap();
    let (send, _recv) = conn.open_bi().await.unwrap();
    (conn, send)
}

async fn close_code(conn: &quinn::Connection) -> ErrorCode {
    let e = tokio::time::timeout(Duration::from_secs(20), conn.closed())
        .await
        .unwrap();
    assist_relay::client::connection_error(&e)
        .code()
        .expect("application close")
}

/// The HELLO deadline runs on the relay's clock: a connection that stays silent is closed with
/// `hello_timeout` once the clock passes it, and a connection that sent HELLO is not.
#[tokio::test]
async fn silence_past_the_hello_deadline_is_closed_with_hello_timeout() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let (_, mut tech, mut cust) = relay.pair(true).await;
        let (conn, _s) = raw(&relay).await;
        // The client's handshake completes before the relay's; wait until the relay holds the connection
        // (past the handshake, waiting for HELLO), then move its clock past the deadline.
        for _ in 0..200 {
            if relay.metric("assist_relay_connections_active").await >= 3.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        relay.clock.advance(Duration::from_secs(10));
        assert_eq!(close_code(&conn).await, ErrorCode::HelloTimeout);
        tech.tx
            .send(&ClientMsg::Chat("still here".into()))
            .await
            .unwrap();
        expect_msg(&mut cust, |m| matches!(m, ServerMsg::Chat { .. })).await;
        assert!(tech.conn.close_reason().is_none());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn malformed_and_oversized_input_close_only_the_offender() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("b.ivf");
        let healthy = share_through_relay(&relay, "screen-vp8-720p.ivf", 30, &out);
        let attacks = async {
            // An unknown message type.
            let (conn, mut s) = raw(&relay).await;
            s.write_all(&[0, 0, 0, 3, 0xEE, 1, 2]).await.unwrap();
            assert_eq!(close_code(&conn).await, ErrorCode::ProtocolViolation);
            // A length prefix past the message limit.
            let (conn, mut s) = raw(&relay).await;
            s.write_all(&[0, 0x10, 0, 0, 0x01]).await.unwrap();
            assert_eq!(close_code(&conn).await, ErrorCode::MessageTooLarge);
            // A HELLO of another protocol version.
            let (conn, mut s) = raw(&relay).await;
            s.write_all(&[0, 0, 0, 3, 0x01, 9, 1]).await.unwrap();
            assert_eq!(close_code(&conn).await, ErrorCode::UnsupportedVersion);
            // A paired customer announcing a frame over the 4 MiB limit.
            let (_, _tech, cust) = relay.pair(true).await;
            let mut g = cust.conn.open_uni().await.unwrap();
            g.write_all(&GroupHeader { track: 0, group: 0 }.encode())
                .await
                .unwrap();
            let big = FrameHeader {
                payload_len: 5 << 20,
                codec: Codec::Vp8,
                keyframe: true,
                seq: 0,
                capture_ts_us: 0,
            };
            g.write_all(&big.encode()).await.unwrap();
            assert_eq!(close_code(&cust.conn).await, ErrorCode::FrameTooLarge);
            // A group that does not start with a keyframe.
            let (_, _tech, cust) = relay.pair(true).await;
            let mut g = cust.conn.open_uni().await.unwrap();
            g.write_all(&GroupHeader { track: 0, group: 0 }.encode())
                .await
                .unwrap();
            let delta = FrameHeader {
                payload_len: 1,
                codec: Codec::Vp8,
                keyframe: false,
                seq: 0,
                capture_ts_us: 0,
            };
            g.write_all(&delta.encode()).await.unwrap();
            g.write_all(&[0]).await.unwrap();
            assert_eq!(close_code(&cust.conn).await, ErrorCode::ProtocolViolation);
            // A message the role may not send is refused with a notice, and the session goes on.
            let (_, mut tech, _cust) = relay.pair(true).await;
            tech.tx.send(&ClientMsg::SetControl(true)).await.unwrap();
            let n = expect_msg(&mut tech, |m| matches!(m, ServerMsg::Notice { .. })).await;
            assert!(matches!(
                n,
                ServerMsg::Notice {
                    code: ErrorCode::NotPermitted,
                    ..
                }
            ));
        };
        tokio::join!(healthy, attacks);
        let (want, got) = (frames(&fixture("screen-vp8-720p.ivf")), frames(&out));
        assert_eq!(
            got.len(),
            want.len(),
            "the healthy session was not disturbed"
        );
        assert!(want.iter().zip(&got).all(|(w, g)| w.data == g.data));
        assert!(
            relay
                .metric("assist_relay_connections_closed_total{reason=\"protocol_violation\"}")
                .await
                >= 2.0
        );
    })
    .await
    .unwrap();
}

/// Writes one group (keyframe + `deltas` delta frames of `size` bytes) on a new raw stream.
async fn raw_group(conn: &quinn::Connection, group: u64, first_seq: u64, deltas: u64, size: usize) {
    let mut g = conn.open_uni().await.unwrap();
    g.write_all(&GroupHeader { track: 0, group }.encode())
        .await
        .unwrap();
    for i in 0..=deltas {
        let h = FrameHeader {
            payload_len: size as u32,
            codec: Codec::Vp8,
            keyframe: i == 0,
            seq: first_seq + i,
            capture_ts_us: 0,
        };
        g.write_all(&h.encode()).await.unwrap();
        g.write_all(&vec![1u8; size]).await.unwrap();
    }
    g.finish().unwrap();
    let _ = g.stopped().await;
}

/// Writes a group header and one small keyframe on a new stream, leaving the stream open.
async fn open_group(conn: &quinn::Connection, group: u64) -> quinn::SendStream {
    let mut g = conn.open_uni().await.unwrap();
    g.write_all(&GroupHeader { track: 0, group }.encode())
        .await
        .unwrap();
    let h = FrameHeader {
        payload_len: 100,
        codec: Codec::Vp8,
        keyframe: true,
        seq: group,
        capture_ts_us: 0,
    };
    g.write_all(&h.encode()).await.unwrap();
    g.write_all(&[1u8; 100]).await.unwrap();
    g
}

/// `limits.max_streams_per_connection` is QUIC stream credit: a client holding that many group streams
/// open waits for the next one (nothing is refused or dropped) until one of its streams ends.
#[tokio::test]
async fn open_streams_per_connection_are_capped_by_stream_credit() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| l.limits.max_streams_per_connection = Some(2)).await;
        let (_, _tech, cust) = relay.pair(true).await;
        let mut first = open_group(&cust.conn, 0).await;
        let _second = open_group(&cust.conn, 1).await;
        assert!(
            tokio::time::timeout(Duration::from_millis(300), cust.conn.open_uni())
                .await
                .is_err(),
            "a third open stream waits for credit"
        );
        first.finish().unwrap();
        let mut third = tokio::time::timeout(Duration::from_secs(20), open_group(&cust.conn, 2))
            .await
            .expect("credit comes back once a stream ends");
        third.finish().unwrap();
        assert!(cust.conn.close_reason().is_none(), "nobody was closed");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn reused_group_numbers_and_stopped_groups_are_skipped_without_breaking_the_receiver() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let (_, tech, cust) = relay.pair(true).await;
        let conn = tech.conn.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut groups = GroupStreams::new(&conn, 4 << 20, GroupOrder::Live);
            while let Ok(ev) = groups.next().await {
                if let GroupEvent::Frame(f) = ev {
                    let _ = tx.send((f.group, f.seq, f.keyframe));
                }
            }
        });
        raw_group(&cust.conn, 7, 0, 2, 100).await;
        raw_group(&cust.conn, 7, 100, 2, 100).await; // the same group number again: dropped as stale
        raw_group(&cust.conn, 8, 200, 1, 100).await;
        let mut got = Vec::new();
        while got.len() < 5 {
            got.push(
                tokio::time::timeout(Duration::from_secs(20), rx.recv())
                    .await
                    .unwrap()
                    .unwrap(),
            );
        }
        // The relay numbers the groups it sends per receiving connection: 0, 1, ...
        assert_eq!(
            got,
            vec![
                (0, 0, true),
                (0, 1, false),
                (0, 2, false),
                (1, 200, true),
                (1, 201, false)
            ]
        );
        assert_eq!(
            relay
                .metric("assist_relay_frames_dropped_total{reason=\"stale_group\"}")
                .await,
            3.0
        );
        assert!(
            tech.conn.close_reason().is_none(),
            "the technician stays connected"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_technician_stopping_a_group_gets_the_next_group_from_its_keyframe() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let (_, tech, cust) = relay.pair(true).await;
        let mut sender = MediaSender::new(cust.conn.clone(), 0);
        let payload = Bytes::from(vec![3u8; 1000]);
        for i in 0..3 {
            sender
                .send(Codec::Vp8, i == 0, i, payload.clone())
                .await
                .unwrap();
        }
        // The technician reads the first frame's header, then stops the group.
        let mut g = tech.conn.accept_uni().await.unwrap();
        let mut head = [0u8; 13];
        g.read_exact(&mut head).await.unwrap();
        g.stop(9u32.into()).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        for i in 3..6 {
            sender
                .send(Codec::Vp8, false, i, payload.clone())
                .await
                .unwrap(); // rest of the stopped group
        }
        for i in 6..8 {
            sender
                .send(Codec::Vp8, i == 6, i, payload.clone())
                .await
                .unwrap(); // next group
        }
        sender.flush().await;
        let mut groups = GroupStreams::new(&tech.conn, 4 << 20, GroupOrder::Strict);
        let mut seqs = Vec::new();
        while seqs.len() < 2 {
            let ev = tokio::time::timeout(Duration::from_secs(20), groups.next())
                .await
                .unwrap()
                .unwrap();
            if let GroupEvent::Frame(f) = ev {
                seqs.push((f.seq, f.keyframe));
            }
        }
        assert_eq!(
            seqs,
            vec![(6, true), (7, false)],
            "no delta frame of the stopped group is sent on a new stream"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn connection_limits_and_stream_resets_get_their_codes() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| l.limits.max_connections_per_address = Some(2)).await;
        let (_, _tech, cust) = relay.pair(true).await;
        // A third connection from 127.0.0.1 is refused with its code; another address is not affected.
        let ep = relay.endpoint("127.0.0.1:0");
        let third = ep.connect(relay.quic, "localhost").unwrap().await.unwrap();
        assert_eq!(close_code(&third).await, ErrorCode::TooManyConnections);
        let s = relay.create().await;
        relay
            .join_as(
                "127.0.0.2:0",
                Hello::Technician {
                    token: s.technician_token,
                },
            )
            .await
            .expect("other address");
        // Resetting the control stream is a protocol violation, reported as such.
        let mut cust = cust;
        cust.tx.reset();
        assert_eq!(close_code(&cust.conn).await, ErrorCode::ProtocolViolation);
    })
    .await
    .unwrap();
}
