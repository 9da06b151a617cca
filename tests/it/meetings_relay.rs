//! Meetings end to end over QUIC on loopback: fan-out of a shipped recording, late joiners, the whiteboard,
//! file transfer with resume, rejoining, host actions, and the collaboration channels in a 1:1 session.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use assist_relay::client::files::{read_file, send_file, sha256};
use assist_relay::client::{MediaSender, Session};
use assist_relay::media::{Codec, MediaFrame, MediaReader, ReadOptions};
use assist_relay::protocol::message::{
    Annotation, AnnotationKind, FileOffer, FileState, MeetingRole, ParticipantState,
};
use assist_relay::protocol::{ClientMsg, ErrorCode, Hello, ServerMsg};
use assist_relay::transport::quic::{GroupEvent, GroupOrder, GroupStreams};
use bytes::Bytes;
use common::meeting::await_present;
use common::*;

pub(crate) fn fixture_frames(name: &str) -> Vec<MediaFrame> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    MediaReader::open(&path, ReadOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Reads frames until `n` have arrived: (track, keyframe, payload).
async fn receive_frames(s: &Session, n: usize) -> Vec<(u32, bool, Bytes)> {
    let mut groups = GroupStreams::new(&s.conn, 16 << 20, GroupOrder::Strict);
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match groups.next().await.expect("viewer connection ended early") {
            GroupEvent::Frame(f) => got.push((f.track, f.keyframe, f.wire.slice(24..))),
            GroupEvent::Ended { reset: true } => panic!("a viewer was skipped ahead"),
            _ => {}
        }
    }
    got
}

/// Reads and discards a participant's media, so its connection window never fills with unread frames and
/// blocks its control messages (docs/PROTOCOL.md, "Recommended client transport settings").
fn drain_media(s: &Session) {
    let conn = s.conn.clone();
    tokio::spawn(async move {
        let mut groups = GroupStreams::new(&conn, 16 << 20, GroupOrder::Live);
        while groups.next().await.is_ok() {}
    });
}

pub(crate) fn stroke(track: u32, x: u16) -> Annotation {
    Annotation {
        kind: AnnotationKind::Stroke,
        track,
        color: 0xff00_00ff,
        width: 300,
        points: vec![(x, 100), (x + 50, 200)],
        text: String::new(),
    }
}

/// Sends `n` synthetic frames in groups of `group` (the first of each a keyframe), seq from `first`.
async fn send_synthetic(m: &mut MediaSender, first: u64, n: u64, group: u64) {
    for seq in first..first + n {
        let payload = Bytes::from(format!("frame {seq}").into_bytes());
        m.send(Codec::Vp8, seq % group == 0, seq * 33_000, payload)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn one_presenter_reaches_five_viewers_byte_exact() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| {
            // All frames are sent at once: the backlog bounds must not count that as a lag.
            l.limits.backlog_max_age = Some(assist_relay::config::Dur(Duration::from_secs(30)));
            l.limits.backlog_max_bytes = Some(assist_relay::config::ByteSize(256 << 20));
        })
        .await;
        let m = relay.meeting();
        let mut presenter = relay
            .staff(&m, 7, MeetingRole::Presenter, "Presenter")
            .await;
        let mut viewers = Vec::new();
        for i in 0..5 {
            viewers.push(relay.guest(&m, &format!("viewer {i}")).await);
        }
        await_present(&mut presenter, 5).await;
        let frames = fixture_frames("screen-vp8-720p.ivf");
        let n = frames.len();
        let readers: Vec<_> = viewers
            .into_iter()
            .map(|v| tokio::spawn(async move { receive_frames(&v, n).await }))
            .collect();
        let mut sender = MediaSender::new(presenter.conn.clone(), 0);
        for f in &frames {
            sender
                .send(Codec::Vp8, f.keyframe, f.pts_us, f.data.clone())
                .await
                .unwrap();
        }
        sender.flush().await;
        let track = presenter.participant() * 16;
        for r in readers {
            let got = r.await.unwrap();
            assert_eq!(got.len(), n);
            for ((t, key, payload), want) in got.iter().zip(&frames) {
                assert_eq!(*t, track, "room-wide track id");
                assert_eq!(*key, want.keyframe);
                assert_eq!(payload, &want.data, "byte-exact payload");
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_late_joiner_starts_from_the_held_group_and_sees_the_whiteboard_and_chat() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let m = relay.meeting();
        let mut presenter = relay.staff(&m, 1, MeetingRole::Presenter, "P").await;
        let mut early = relay.guest(&m, "early").await;
        await_present(&mut presenter, 1).await;
        early
            .tx
            .send(&ClientMsg::Annotate(stroke(0, 10)))
            .await
            .unwrap();
        early
            .tx
            .send(&ClientMsg::Annotate(stroke(0, 20)))
            .await
            .unwrap();
        early
            .tx
            .send(&ClientMsg::Chat("hello all".into()))
            .await
            .unwrap();
        // Everyone, the sender too, gets each operation in room order.
        for want in [1u64, 2] {
            let got = expect_msg(&mut early, |m| matches!(m, ServerMsg::Annotation { .. })).await;
            assert!(matches!(got, ServerMsg::Annotation { seq, .. } if seq == want));
        }
        expect_msg(&mut early, |m| matches!(m, ServerMsg::MeetingChat { .. })).await;
        // One and a half groups of 10: the relay holds frames 10..15.
        let mut sender = MediaSender::new(presenter.conn.clone(), 0);
        send_synthetic(&mut sender, 0, 15, 10).await;
        let early_frames = receive_frames(&early, 15).await;
        assert_eq!(early_frames.len(), 15);

        let mut late = relay.guest(&m, "late").await;
        let mut snapshot = Vec::new();
        while snapshot.len() < 3 {
            match expect_msg(&mut late, |m| {
                matches!(
                    m,
                    ServerMsg::Annotation { .. } | ServerMsg::MeetingChat { .. }
                )
            })
            .await
            {
                ServerMsg::Annotation {
                    seq, annotation, ..
                } => snapshot.push((seq, annotation.points[0].0)),
                ServerMsg::MeetingChat { text, .. } => {
                    assert_eq!(text, "hello all");
                    snapshot.push((0, 0));
                }
                _ => unreachable!(),
            }
        }
        assert_eq!(&snapshot[..2], &[(1, 10), (2, 20)]);
        let held = receive_frames(&late, 5).await;
        let seqs: Vec<String> = held
            .iter()
            .map(|(_, _, p)| String::from_utf8(p.to_vec()).unwrap())
            .collect();
        assert_eq!(
            seqs,
            ["frame 10", "frame 11", "frame 12", "frame 13", "frame 14"]
        );
        assert!(held[0].1, "the held group starts with its keyframe");
        assert_eq!(
            relay.metric("assist_relay_keyframe_requests_total").await,
            0.0,
            "a late joiner with a held group needs no keyframe request"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_20_mib_file_arrives_verified_while_frames_flow_and_resumes_from_its_offset() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let m = relay.meeting();
        let mut presenter = relay.staff(&m, 1, MeetingRole::Presenter, "P").await;
        let mut a = relay.guest(&m, "sender").await;
        let mut b = relay.guest(&m, "recipient").await;
        drain_media(&a);
        await_present(&mut presenter, 2).await;
        let data: Vec<u8> = (0..20u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let digest = sha256(&data);

        // Frames flow the whole time, paced like a screen share.
        let frames_conn = presenter.conn.clone();
        let stop = tokio_util::sync::CancellationToken::new();
        let stop2 = stop.clone();
        let pacer = tokio::spawn(async move {
            let mut sender = MediaSender::new(frames_conn, 0);
            let mut seq = 0;
            while !stop2.is_cancelled() {
                send_synthetic(&mut sender, seq, 1, 30).await;
                seq += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seq
        });

        a.tx.send(&ClientMsg::FileOffer(FileOffer {
            reference: 42,
            to: b.participant(),
            name: "../../secret/report.bin".into(),
            size: data.len() as u64,
            sha256: digest,
        }))
        .await
        .unwrap();
        let offer = expect_msg(&mut b, |m| matches!(m, ServerMsg::FileOffer { .. })).await;
        let ServerMsg::FileOffer {
            transfer,
            from,
            name,
            size,
            sha256: offered,
            ..
        } = offer
        else {
            unreachable!()
        };
        assert_eq!(
            (from, name.as_str(), size, offered),
            (a.participant(), "report.bin", data.len() as u64, digest)
        );
        let offered_state = expect_msg(&mut a, |m| matches!(m, ServerMsg::FileState { .. })).await;
        assert!(matches!(
            offered_state,
            ServerMsg::FileState {
                state: FileState::Offered,
                reference: 42,
                ..
            }
        ));

        // B reads frames and file streams from the same connection.
        let (file_tx, mut file_rx) = tokio::sync::mpsc::channel(4);
        let b_conn = b.conn.clone();
        let b_reader = tokio::spawn(async move {
            let mut groups = GroupStreams::new(&b_conn, 16 << 20, GroupOrder::Live);
            let mut frames = Vec::new();
            loop {
                match groups.next().await {
                    Ok(GroupEvent::Frame(f)) => frames.push(f.seq),
                    Ok(GroupEvent::File { header, stream }) => {
                        let _ = file_tx.send((header, stream)).await;
                    }
                    Ok(_) => {}
                    Err(_) => return frames,
                }
            }
        });

        // Accept from 0; the sender starts; B takes the first 5 MiB, then breaks the stream off.
        b.tx.send(&ClientMsg::FileAnswer {
            transfer,
            accept: true,
            offset: 0,
        })
        .await
        .unwrap();
        let accepted = expect_msg(&mut a, |m| {
            matches!(
                m,
                ServerMsg::FileState {
                    state: FileState::Accepted,
                    ..
                }
            )
        })
        .await;
        assert!(matches!(accepted, ServerMsg::FileState { offset: 0, .. }));
        let a_conn = a.conn.clone();
        let first = data.clone();
        let first_send = tokio::spawn(async move { send_file(&a_conn, transfer, 0, &first).await });
        let (header, mut stream) = file_rx.recv().await.unwrap();
        assert_eq!((header.transfer, header.offset), (transfer, 0));
        let mut received = Vec::new();
        while received.len() < 5 << 20 {
            let chunk = stream.read_chunk(64 << 10, true).await.unwrap().unwrap();
            received.extend_from_slice(&chunk.bytes);
        }
        let _ = stream.stop(0u32.into());
        let _ = first_send.await.unwrap(); // the relay stops the sender's stream too

        // Resume from what arrived.
        let offset = received.len() as u64;
        b.tx.send(&ClientMsg::FileAnswer {
            transfer,
            accept: true,
            offset,
        })
        .await
        .unwrap();
        let again = expect_msg(&mut a, |m| {
            matches!(
                m,
                ServerMsg::FileState {
                    state: FileState::Accepted,
                    ..
                }
            )
        })
        .await;
        assert!(matches!(again, ServerMsg::FileState { offset: o, .. } if o == offset));
        let a_conn = a.conn.clone();
        let rest_of = data.clone();
        let second_send =
            tokio::spawn(async move { send_file(&a_conn, transfer, offset, &rest_of).await });
        let (header, stream) = file_rx.recv().await.unwrap();
        assert_eq!(header.offset, offset);
        let (rest, complete) = read_file(stream, data.len()).await.unwrap();
        assert!(complete);
        received.extend_from_slice(&rest);
        second_send.await.unwrap().unwrap();
        assert_eq!(sha256(&received), digest, "the recipient verifies the hash");
        b.tx.send(&ClientMsg::FileResult { transfer, ok: true })
            .await
            .unwrap();
        let done = expect_msg(&mut a, |m| {
            matches!(
                m,
                ServerMsg::FileState {
                    state: FileState::Completed | FileState::Failed,
                    ..
                }
            )
        })
        .await;
        assert!(matches!(
            done,
            ServerMsg::FileState {
                state: FileState::Completed,
                reference: 42,
                ..
            }
        ));

        stop.cancel();
        let sent = pacer.await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.conn.close(0u32.into(), b"done");
        let frames = b_reader.await.unwrap();
        assert!(sent > 10, "frames were sent during the transfer");
        // Every frame sent during the transfer arrived, in order: the transfer never made a viewer skip.
        let want: Vec<u64> = (0..frames.len() as u64).collect();
        assert_eq!(frames, want);
        assert!(frames.len() as u64 >= sent - 2);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_oversized_offer_is_refused_with_a_notice() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| {
            l.meeting.max_file_bytes = Some(assist_relay::config::ByteSize(1000))
        })
        .await;
        let m = relay.meeting();
        let mut a = relay.guest(&m, "a").await;
        let b = relay.guest(&m, "b").await;
        a.tx.send(&ClientMsg::FileOffer(FileOffer {
            reference: 1,
            to: b.participant(),
            name: "big.iso".into(),
            size: 1001,
            sha256: [0; 32],
        }))
        .await
        .unwrap();
        let n = expect_msg(&mut a, |m| matches!(m, ServerMsg::Notice { .. })).await;
        assert!(matches!(
            n,
            ServerMsg::Notice {
                code: ErrorCode::FileTooLarge,
                ..
            }
        ));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn rejoining_replaces_and_a_returning_presenter_is_seen_again_without_anyone_rejoining() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let m = relay.meeting();
        let mut presenter = relay.staff(&m, 3, MeetingRole::Presenter, "P").await;
        let mut viewer = relay.guest(&m, "v").await;
        await_present(&mut presenter, 1).await;
        let pid = presenter.participant();
        let mut sender = MediaSender::new(presenter.conn.clone(), 0);
        send_synthetic(&mut sender, 0, 5, 5).await;
        let before = receive_frames(&viewer, 5).await;

        // The same identity enters again: the old connection is replaced, the participant id stays.
        let mut again = relay.staff(&m, 3, MeetingRole::Presenter, "P").await;
        assert_eq!(again.participant(), pid);
        assert_eq!(closed_with(&presenter).await, ErrorCode::Replaced);
        let back = expect_msg(&mut viewer, |m| {
            matches!(
                m,
                ServerMsg::Participant {
                    state: ParticipantState::Back,
                    ..
                }
            )
        })
        .await;
        assert!(matches!(back, ServerMsg::Participant { participant, .. } if participant == pid));
        // Its new connection numbers groups from 0 again; the viewer keeps receiving on the same track.
        let mut sender = MediaSender::new(again.conn.clone(), 0);
        send_synthetic(&mut sender, 100, 5, 5).await;
        let after = receive_frames(&viewer, 5).await;
        assert_eq!(after[0].0, before[0].0, "same room-wide track id");
        assert_eq!(after[0].2, Bytes::from_static(b"frame 100"));
        let _ = expect_msg(&mut again, |m| matches!(m, ServerMsg::Participant { .. })).await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_host_removes_a_guest_who_cannot_come_back() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let m = relay.meeting();
        let mut host = relay.staff(&m, 1, MeetingRole::Host, "Host").await;
        let guest = relay.guest(&m, "noisy").await;
        let mut other = relay.guest(&m, "quiet").await;
        await_present(&mut host, 2).await;
        // Only the host may remove.
        other
            .tx
            .send(&ClientMsg::RemoveParticipant {
                participant: guest.participant(),
            })
            .await
            .unwrap();
        let n = expect_msg(&mut other, |m| matches!(m, ServerMsg::Notice { .. })).await;
        assert!(matches!(
            n,
            ServerMsg::Notice {
                code: ErrorCode::NotPermitted,
                ..
            }
        ));
        host.tx
            .send(&ClientMsg::RemoveParticipant {
                participant: guest.participant(),
            })
            .await
            .unwrap();
        assert_eq!(closed_with(&guest).await, ErrorCode::Removed);
        let resumed = relay
            .join_as(
                "127.0.0.1:0",
                Hello::Resume {
                    token: guest.resume_token().to_string(),
                },
            )
            .await;
        assert_eq!(refused(resumed), ErrorCode::ResumeRefused);
        // A guest is a new identity each time: the removal bars its address from entering with the code.
        let again = relay
            .join_as(
                "127.0.0.1:0",
                Hello::MeetingCode {
                    code: m.code.clone(),
                    name: "noisy again".into(),
                },
            )
            .await;
        assert_eq!(refused(again), ErrorCode::Removed);
        // The host ends the meeting for everyone.
        host.tx.send(&ClientMsg::EndSession).await.unwrap();
        assert_eq!(closed_with(&other).await, ErrorCode::SessionEnded);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_remote_assist_session_carries_annotations_and_files_too() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let (_s, mut tech, mut cust) = relay.pair(false).await;
        tech.tx
            .send(&ClientMsg::Annotate(stroke(0, 30)))
            .await
            .unwrap();
        let got = expect_msg(&mut cust, |m| matches!(m, ServerMsg::Annotation { .. })).await;
        assert!(matches!(
            got,
            ServerMsg::Annotation {
                seq: 1,
                from: 1,
                ..
            }
        ));

        let data = b"log file contents\n".repeat(1000);
        cust.tx
            .send(&ClientMsg::FileOffer(FileOffer {
                reference: 5,
                to: 0,
                name: "C:\\Users\\me\\app.log".into(),
                size: data.len() as u64,
                sha256: sha256(&data),
            }))
            .await
            .unwrap();
        let offer = expect_msg(&mut tech, |m| matches!(m, ServerMsg::FileOffer { .. })).await;
        let ServerMsg::FileOffer { transfer, name, .. } = offer else {
            unreachable!()
        };
        assert_eq!(name, "app.log");
        tech.tx
            .send(&ClientMsg::FileAnswer {
                transfer,
                accept: true,
                offset: 0,
            })
            .await
            .unwrap();
        expect_msg(&mut cust, |m| {
            matches!(
                m,
                ServerMsg::FileState {
                    state: FileState::Accepted,
                    ..
                }
            )
        })
        .await;
        send_file(&cust.conn, transfer, 0, &data).await.unwrap();
        let mut groups = GroupStreams::new(&tech.conn, 1 << 20, GroupOrder::Live);
        let (header, stream) = loop {
            if let GroupEvent::File { header, stream } = groups.next().await.unwrap() {
                break (header, stream);
            }
        };
        assert_eq!(header.transfer, transfer);
        let (bytes, complete) = read_file(stream, data.len()).await.unwrap();
        assert!(complete && bytes == data);
        tech.tx
            .send(&ClientMsg::FileResult { transfer, ok: true })
            .await
            .unwrap();
        expect_msg(&mut cust, |m| {
            matches!(
                m,
                ServerMsg::FileState {
                    state: FileState::Completed,
                    ..
                }
            )
        })
        .await;
    })
    .await
    .unwrap();
}

/// Guards against a newcomer to a large meeting being closed as a slow consumer by its own entry state: the
/// participants, tracks, whiteboard and chat it is sent on entry count as one item of its control queue.
#[tokio::test]
async fn entering_a_meeting_larger_than_the_control_queue_works() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| l.limits.control_queue = Some(4)).await;
        let m = relay.meeting();
        let mut readers = Vec::new();
        for i in 0..12 {
            let mut g = relay.guest(&m, &format!("guest {i}")).await;
            // Earlier guests read their control streams, as clients must.
            readers.push(tokio::spawn(async move {
                while let Ok(Some(_)) = g.rx.recv().await {}
            }));
        }
        let mut last = relay.guest(&m, "last").await;
        await_present(&mut last, 12).await;
        for r in readers {
            r.abort();
        }
    })
    .await
    .unwrap();
}
