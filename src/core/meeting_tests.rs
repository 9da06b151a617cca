//! Deterministic meeting scenarios: a simulated clock, a [`MeetingRoom`], and one [`MediaQueue`] per
//! connection whose writer drains only when the test says. Each test reads as a script; its doc line names the
//! failure it guards. No tokio, no sockets, no sleeps.

use std::time::{Duration, Instant};

use super::*;
use crate::protocol::message::{AnnotationKind, FileOffer, FileState};
use crate::protocol::message::{MeetingRole, ParticipantState, TrackState};
use crate::protocol::{ClientMsg, ErrorCode, ServerMsg};
use AnnotationKind::{Clear, Stroke};
use MeetingRole::{Host, Participant, Presenter};

use super::meeting_sim::*;

/// Guards against one slow subscriber costing the others frames or time, and against a lagging subscriber
/// resuming mid-group (undecodable deltas) instead of at a later keyframe.
#[test]
fn a_stalled_subscriber_skips_to_a_later_keyframe_while_fifty_others_get_every_frame_at_once() {
    let mut s = MeetingSim::new();
    let track = s.join(PRESENTER, Presenter) * TRACKS_PER_PARTICIPANT;
    let viewers: Vec<ConnId> = (100..150).map(ConnId).collect();
    viewers.iter().for_each(|&v| _ = s.join(v, Participant));
    let stalled = viewers[7];
    // Its writer does not run from the middle of group 1 to the middle of group 3.
    let stall = 35..100;
    let mut sent = Vec::new();
    for seq in 0..150 {
        s.publish(PRESENTER, seq / 30, seq, seq % 30 == 0, 10_000);
        sent.push((seq, s.now));
        for &v in &viewers {
            if v != stalled || !stall.contains(&seq) {
                s.drain_writer(v);
            }
        }
        s.advance(FRAME_GAP);
    }
    for v in viewers.iter().filter(|v| **v != stalled) {
        let p = &s.peers[v];
        let got: Vec<(u64, Instant)> = p.got.iter().map(|(at, f)| (f.seq, *at)).collect();
        assert_eq!(got, sent, "{v:?}: each frame, in order, at once");
        assert!(p.got.iter().all(|(_, f)| f.track == track));
        assert_eq!((p.dropped, p.resets), (0, 0), "{v:?} never lags");
    }
    let p = &s.peers[&stalled];
    assert!(p.dropped > 0 && p.resets > 0, "the stalled queue lagged");
    let resumed_at = sent[stall.end as usize].1;
    let after = p.got.iter().position(|(at, _)| *at >= resumed_at).unwrap();
    let seqs = s.seqs(stalled);
    assert_eq!(seqs[..after], (0..stall.start).collect::<Vec<_>>());
    let first = &p.got[after].1;
    assert!(first.keyframe && first.group > 1, "{first:?}");
    assert_eq!(seqs[after..], (first.seq..150).collect::<Vec<_>>());
    assert_spaced(&s.peers[&PRESENTER].keyframe_requests, KEYFRAME_INTERVAL);
}

/// Guards against a join storm becoming a keyframe storm: with no group held every join asks for a keyframe,
/// yet the publisher gets at most one per `keyframe_interval`, and the merged ones are counted.
#[test]
fn a_hundred_joins_in_a_second_without_a_held_group_send_one_keyframe_request_per_interval() {
    let mut s = MeetingSim::with(|c| c.group_cache_bytes = 0);
    s.join(PRESENTER, Presenter);
    s.publish(PRESENTER, 0, 0, true, 10_000);
    let viewers: Vec<ConnId> = (100..200).map(ConnId).collect();
    for (seq, &v) in (1..).zip(&viewers) {
        s.advance(Duration::from_millis(10));
        s.join(v, Participant);
        // A delta none of them can decode: it reaches no one.
        s.publish(PRESENTER, 0, seq, false, 1000);
    }
    // 100 requests: 1 sent, 99 merged.
    assert_eq!(s.keyframe_request_events(), (1, 99));
    assert_eq!(s.peers[&PRESENTER].keyframe_requests.len(), 1);
    // The merged request goes out once the interval has passed, and only once.
    (0..30).for_each(|_| s.advance(Duration::from_millis(100)));
    let asked = &s.peers[&PRESENTER].keyframe_requests;
    assert_eq!(asked.len(), 2);
    assert_spaced(asked, KEYFRAME_INTERVAL);
    // The keyframe starts everyone.
    s.publish(PRESENTER, 1, 101, true, 10_000);
    s.publish(PRESENTER, 1, 102, false, 1000);
    for &v in &viewers {
        s.drain_writer(v);
        assert_eq!(s.seqs(v), [101, 102]);
    }
}

/// Guards against a late joiner waiting for (and asking for) a keyframe when the room holds the current
/// group, and against the held frames being altered or copied.
#[test]
fn a_late_joiner_starts_at_once_from_the_held_group_without_a_keyframe_request() {
    let mut s = MeetingSim::new();
    s.join(PRESENTER, Presenter);
    s.join(VIEWER, Participant);
    for seq in 0..18 {
        s.publish(PRESENTER, seq / 12, seq, seq % 12 == 0, 10_000);
        s.drain_writer(VIEWER);
        s.advance(FRAME_GAP);
    }
    s.join(LATE, Participant);
    s.drain_writer(LATE);
    // The held group from its keyframe: the same bytes, shared rather than copied.
    let key = |f: &Frame| (f.track, f.seq, f.keyframe, f.wire.clone(), f.wire.as_ptr());
    let held: Vec<_> = s
        .published
        .iter()
        .filter(|f| f.group == 1)
        .map(key)
        .collect();
    let got: Vec<_> = s.peers[&LATE].got.iter().map(|(_, f)| key(f)).collect();
    assert_eq!((got.len(), got[0].2), (6, true));
    assert_eq!(got, held);
    assert_eq!(s.keyframe_request_events(), (0, 0));
    assert!(s.peers[&PRESENTER].keyframe_requests.is_empty());
    s.publish(PRESENTER, 1, 18, false, 10_000);
    s.drain_writer(LATE);
    assert_eq!(s.seqs(LATE), (12..19).collect::<Vec<_>>());
}

/// Guards against a second entry with the same identity creating a second participant (a ghost with a new
/// id) or leaving the old connection open, and against the old connection's late `Left` marking it away.
#[test]
fn entering_again_with_the_same_identity_replaces_the_connection_and_keeps_the_participant() {
    let mut s = MeetingSim::new();
    let host = s.enter(HOST, "user:1", Host);
    let viewer = s.join(VIEWER, Participant);
    let again = ConnId(11);
    assert_eq!(s.enter(again, "user:1", Participant), host);
    assert_eq!(s.peers[&again].admitted, Some((host, Host)));
    assert_eq!(s.closed(HOST), Some(ErrorCode::Replaced));
    use ParticipantState::{Back, Present};
    assert_eq!(s.participant_news(VIEWER, host), [Present, Back]);
    let ids = pick!(s.msgs(VIEWER), ServerMsg::Participant { participant, .. } => *participant);
    assert!(ids.iter().all(|id| *id == host || *id == viewer), "{ids:?}");
    s.input(Input::Left { conn: HOST });
    // The replaced connection's Left comes late and changes nothing.
    assert_eq!(s.participant_news(VIEWER, host), [Present, Back]);
    assert_eq!(s.room.connected(), 2);
}

/// Guards against the stale-group check dropping a returning publisher's frames: its new connection numbers
/// groups from 0 again on the same track id, and subscribers need do nothing.
#[test]
fn a_publisher_that_drops_and_comes_back_restarts_group_numbers_on_the_same_track() {
    let mut s = MeetingSim::new();
    let presenter = s.enter(PRESENTER, "user:presenter", Presenter);
    s.join(VIEWER, Participant);
    (0..10).for_each(|seq| s.publish(PRESENTER, 5 + seq / 5, seq, seq % 5 == 0, 1000));
    s.input(Input::Left { conn: PRESENTER });
    let back = ConnId(12);
    assert_eq!(s.enter(back, "user:presenter", Presenter), presenter);
    (10..20).for_each(|seq| s.publish(back, (seq - 10) / 5, seq, seq % 5 == 0, 1000));
    s.drain_writer(VIEWER);
    assert_eq!(s.seqs(VIEWER), (0..20).collect::<Vec<_>>());
    let track = presenter * TRACKS_PER_PARTICIPANT;
    assert!(s.peers[&VIEWER].got.iter().all(|(_, f)| f.track == track));
    assert_eq!(s.track_news(VIEWER, track), [TrackState::Live]);
    assert!(s.drop_reasons().is_empty(), "no stale group");
}

/// Guards against whiteboard operations numbered out of room order, skipped for their sender, lost for late
/// joiners, or growing without bound.
#[test]
fn whiteboard_ops_are_numbered_in_room_order_replayed_after_the_last_clear_and_bounded() {
    let mut s = MeetingSim::with(|c| c.collab.whiteboard_bytes = 400);
    let a = s.join(HOST, Host);
    let b = s.join(VIEWER, Participant);
    s.send(HOST, draw(Stroke, 10));
    s.send(VIEWER, draw(Stroke, 10));
    s.send(HOST, draw(Clear, 0));
    s.send(VIEWER, draw(Stroke, 20)); // 95 bytes
    s.send(HOST, draw(Stroke, 30)); // 135 bytes
    let ops = s.annotations(HOST);
    assert_eq!(ops, s.annotations(VIEWER), "sender included");
    let order: Vec<(u64, u32)> = ops.iter().map(|(seq, from, _)| (*seq, *from)).collect();
    assert_eq!(order, [(1, a), (2, b), (3, a), (4, b), (5, a)]);
    s.join(LATE, Participant);
    assert_eq!(s.annotations(LATE), ops[3..], "what the clear left");
    // 230 bytes held: 175 more do not fit.
    s.send(VIEWER, draw(Stroke, 40));
    assert_eq!(s.notices(VIEWER), [ErrorCode::WhiteboardFull]);
    assert_eq!(s.annotations(HOST).len(), 5, "not broadcast");
    s.send(HOST, draw(Clear, 0));
    s.send(VIEWER, draw(Stroke, 40));
    let last = s.annotations(LATE).pop().map(|(seq, from, _)| (seq, from));
    assert_eq!(last, Some((7, b)));
}

/// Guards against a late joiner missing the conversation so far, or the history growing without bound.
#[test]
fn chat_history_is_replayed_to_a_late_joiner_up_to_its_bound() {
    let mut s = MeetingSim::with(|c| c.collab.chat_history = 3);
    s.join(HOST, Host);
    (1..=5).for_each(|i| s.send(HOST, ClientMsg::Chat(format!("line {i}"))));
    s.join(LATE, Participant);
    for (conn, first) in [(HOST, 1), (LATE, 3)] {
        let lines =
            pick!(s.msgs(conn), ServerMsg::MeetingChat { seq, text, .. } => (*seq, text.clone()));
        let want: Vec<(u64, String)> = (first..=5).map(|i| (i, format!("line {i}"))).collect();
        assert_eq!(lines, want);
    }
}

/// Guards against a muted share still reaching viewers, and against viewers resuming an unmuted share with
/// deltas they cannot decode.
#[test]
fn the_host_mutes_a_share_and_viewers_restart_it_at_a_keyframe_when_unmuted() {
    let (mut s, track) = MeetingSim::meeting();
    s.publish(PRESENTER, 0, 0, true, 1000);
    s.publish(PRESENTER, 0, 1, false, 1000);
    s.mute(HOST, track, true);
    use TrackState::{Live, Muted};
    for c in [HOST, PRESENTER, VIEWER] {
        assert_eq!(s.track_news(c, track), [Live, Muted]);
    }
    assert_eq!(s.notices(PRESENTER), [ErrorCode::TrackMuted]);
    s.publish(PRESENTER, 0, 2, false, 1000);
    s.publish(PRESENTER, 1, 3, true, 1000);
    assert_eq!(s.drop_reasons(), [DropReason::Muted; 2]);
    s.mute(HOST, track, false);
    for c in [HOST, PRESENTER, VIEWER] {
        assert_eq!(s.track_news(c, track), [Live, Muted, Live]);
    }
    // Unmuting asks for a keyframe.
    assert_eq!(s.peers[&PRESENTER].keyframe_requests.len(), 1);
    s.publish(PRESENTER, 1, 4, false, 1000);
    s.publish(PRESENTER, 2, 5, true, 1000);
    s.publish(PRESENTER, 2, 6, false, 1000);
    for c in [HOST, VIEWER] {
        s.drain_writer(c);
        assert_eq!(s.seqs(c), [0, 1, 5, 6]);
    }
}

/// Guards against a viewer that was unsubscribed while the host unmuted a share being left waiting for a
/// keyframe after it resubscribed from the held group, so that it lost the rest of that group.
#[test]
fn a_viewer_unsubscribed_during_an_unmute_resubscribes_without_a_gap() {
    let (mut s, track) = MeetingSim::meeting();
    s.publish(PRESENTER, 0, 0, true, 1000);
    s.send(VIEWER, ClientMsg::Subscribe { track, on: false });
    s.mute(HOST, track, true);
    s.mute(HOST, track, false);
    s.publish(PRESENTER, 1, 1, true, 1000);
    s.publish(PRESENTER, 1, 2, false, 1000);
    s.send(VIEWER, ClientMsg::Subscribe { track, on: true });
    s.publish(PRESENTER, 1, 3, false, 1000);
    s.drain_writer(VIEWER);
    assert_eq!(s.seqs(VIEWER), [0, 1, 2, 3]);
}

/// Guards against a removed participant staying connected or walking back in under the same identity.
#[test]
fn the_host_removes_a_participant_who_then_cannot_enter_again() {
    let (mut s, _) = MeetingSim::meeting();
    let viewer = s.id(VIEWER);
    s.remove(HOST, viewer);
    assert_eq!(s.closed(VIEWER), Some(ErrorCode::Removed));
    let news = s.participant_news(HOST, viewer);
    assert_eq!(news.last(), Some(&ParticipantState::Removed));
    s.enter_with(ConnId(13), "user:3", Participant, None);
    assert_eq!(s.closed(ConnId(13)), Some(ErrorCode::Removed));
    s.enter_with(ConnId(14), "user:3", Participant, Some((viewer, 1)));
    assert_eq!(s.closed(ConnId(14)), Some(ErrorCode::ResumeRefused));
    assert_eq!(s.room.connected(), 2);
}

/// Guards against non-hosts using host actions, and plain participants publishing.
#[test]
fn only_the_host_mutes_or_removes_and_only_presenters_share() {
    let (mut s, track) = MeetingSim::meeting();
    let (presenter, viewer) = (s.id(PRESENTER), s.id(VIEWER));
    s.publish(PRESENTER, 0, 0, true, 1000);
    s.mute(PRESENTER, track, true);
    s.remove(VIEWER, presenter);
    assert_eq!(s.notices(PRESENTER), [ErrorCode::NotPermitted]);
    assert_eq!(s.notices(VIEWER), [ErrorCode::NotPermitted]);
    assert_eq!(s.track_news(VIEWER, track), [TrackState::Live]);
    assert_eq!((s.closed(PRESENTER), s.room.connected()), (None, 3));
    // A participant's frames go nowhere.
    s.publish(VIEWER, 0, 99, true, 1000);
    s.drain_writer(HOST);
    s.drain_writer(PRESENTER);
    assert_eq!(s.seqs(HOST), [0]);
    assert!(s.seqs(PRESENTER).is_empty());
    assert_eq!(s.notices(VIEWER), [ErrorCode::NotPermitted; 2]);
    assert_eq!(s.drop_reasons(), [DropReason::NotPresenter]);
    assert!(s
        .track_news(HOST, viewer * TRACKS_PER_PARTICIPANT)
        .is_empty());
    assert!(s.published.iter().all(|f| f.seq != 99));
}

/// Guards against an unsubscribed viewer still being sent a track, and a resubscribing one waiting for a
/// keyframe the room already holds.
#[test]
fn unsubscribing_stops_a_track_and_resubscribing_starts_from_the_held_group() {
    let mut s = MeetingSim::new();
    let track = s.join(PRESENTER, Presenter) * TRACKS_PER_PARTICIPANT;
    s.join(VIEWER, Participant);
    (0..4).for_each(|seq| s.publish(PRESENTER, 0, seq, seq == 0, 1000));
    s.send(VIEWER, ClientMsg::Subscribe { track, on: false });
    (4..8).for_each(|seq| s.publish(PRESENTER, seq / 5, seq, seq == 5, 1000));
    s.drain_writer(VIEWER);
    assert_eq!(s.seqs(VIEWER), [0, 1, 2, 3]);
    s.send(VIEWER, ClientMsg::Subscribe { track, on: true });
    s.publish(PRESENTER, 1, 8, false, 1000);
    s.drain_writer(VIEWER);
    assert_eq!(s.seqs(VIEWER), [0, 1, 2, 3, 5, 6, 7, 8]);
    assert_eq!(s.keyframe_request_events(), (0, 0));
}

/// Guards against file bytes flowing before the recipient accepts, from anyone but the sender, or under an
/// unsafe file name.
#[test]
fn a_file_goes_offer_accept_stream_result_and_only_its_sender_may_stream_it() {
    let (mut s, _) = MeetingSim::meeting();
    let (a, b) = (s.id(HOST), s.id(VIEWER));
    let offer = FileOffer {
        reference: 9,
        to: b,
        name: "../../etc/passwd".into(),
        size: 1000,
        sha256: [7; 32],
    };
    s.send(HOST, ClientMsg::FileOffer(offer));
    let offered = pick!(s.msgs(VIEWER), ServerMsg::FileOffer { transfer, from, name, size, .. }
        => (*transfer, *from, name.as_str(), *size));
    assert_eq!(offered, [(1, a, "passwd", 1000)], "named safely");
    let transfer = 1;
    let state = |state, offset| ServerMsg::FileState {
        transfer,
        reference: 9,
        state,
        offset,
    };
    assert_eq!(s.msgs(HOST).last(), Some(&state(FileState::Offered, 0)));
    let invalid = Err(ErrorCode::TransferInvalid);
    s.file_stream(HOST, transfer);
    assert_eq!(s.routes, [(HOST, invalid)], "not before acceptance");
    let accept = ClientMsg::FileAnswer {
        transfer,
        accept: true,
        offset: 0,
    };
    s.send(VIEWER, accept);
    assert_eq!(s.msgs(HOST).last(), Some(&state(FileState::Accepted, 0)));
    s.file_stream(HOST, transfer);
    s.file_stream(VIEWER, transfer);
    let want = [(HOST, Ok((VIEWER, 1000))), (VIEWER, invalid)];
    assert_eq!(s.routes[1..], want, "only from the sender");
    s.send(VIEWER, ClientMsg::FileResult { transfer, ok: true });
    let done = state(FileState::Completed, 1000);
    assert_eq!(s.msgs(HOST).last(), Some(&done));
    let notes = pick!(s.events, Event::Transfer(note) => note.state);
    assert_eq!(notes.last(), Some(&FileState::Completed));
}

/// Guards against a host's end leaving anyone connected, or anyone else's EndSession ending it for all.
#[test]
fn the_host_ends_the_meeting_for_everyone_and_anyone_else_only_leaves() {
    let (mut s, _) = MeetingSim::meeting();
    let presenter = s.id(PRESENTER);
    s.send(PRESENTER, ClientMsg::EndSession);
    assert_eq!(s.closed(PRESENTER), Some(ErrorCode::SessionEnded));
    let news = s.participant_news(HOST, presenter);
    assert_eq!(news.last(), Some(&ParticipantState::Left));
    assert_eq!(s.room.is_ended(), None);
    s.send(HOST, ClientMsg::EndSession);
    for c in [HOST, VIEWER] {
        assert_eq!(s.closed(c), Some(ErrorCode::SessionEnded));
    }
    assert_eq!(s.room.is_ended(), Some(EndReason::ByHost));
    let ended = pick!(s.events, Event::Ended { reason, .. } => *reason);
    assert_eq!(ended, [EndReason::ByHost]);
    s.enter_with(LATE, "user:late", Participant, None);
    assert_eq!(s.closed(LATE), Some(ErrorCode::SessionEnded));
}

/// Guards against a meeting outliving its scheduled window.
#[test]
fn the_scheduled_end_closes_the_meeting_with_max_duration() {
    let (mut s, _) = MeetingSim::meeting();
    assert_eq!(s.wake_at, s.ends_at, "woken at the scheduled end");
    let ms = Duration::from_millis(1);
    s.advance(s.ends_at - s.now - ms);
    assert_eq!(s.room.is_ended(), None);
    s.advance(ms);
    assert_eq!(s.room.is_ended(), Some(EndReason::MaxDuration));
    for c in [HOST, PRESENTER, VIEWER] {
        assert_eq!(s.closed(c), Some(ErrorCode::MaxDuration));
    }
    let ended = pick!(s.events, Event::Ended { reason, .. } => *reason);
    assert_eq!(ended, [EndReason::MaxDuration]);
}

/// Guards against a participant who never comes back holding its place and its share for ever.
#[test]
fn a_participant_away_longer_than_the_resume_grace_is_removed_and_its_share_ends() {
    let (mut s, track) = MeetingSim::meeting();
    let presenter = s.id(PRESENTER);
    s.publish(PRESENTER, 0, 0, true, 1000);
    s.input(Input::Left { conn: PRESENTER });
    use ParticipantState::{Away, Left, Present};
    assert_eq!(s.participant_news(HOST, presenter), [Present, Away]);
    assert_eq!(s.wake_at, s.now + RESUME_GRACE);
    s.advance(RESUME_GRACE - Duration::from_millis(1));
    assert_eq!(s.participant_news(HOST, presenter), [Present, Away]);
    s.advance(Duration::from_millis(1));
    assert_eq!(s.participant_news(HOST, presenter), [Present, Away, Left]);
    let news = s.track_news(HOST, track);
    assert_eq!(news, [TrackState::Live, TrackState::Ended]);
    s.enter_with(ConnId(15), "user:2", Presenter, Some((presenter, 1)));
    assert_eq!(s.closed(ConnId(15)), Some(ErrorCode::ResumeRefused));
}

/// Guards against an old resume token taking over: each admission counts up, and only the newest token works.
#[test]
fn only_the_latest_resume_token_brings_a_participant_back() {
    let mut s = MeetingSim::new();
    let guest = s.enter(VIEWER, "guest:a", Participant);
    s.input(Input::Left { conn: VIEWER });
    s.enter_with(ConnId(21), "", Participant, Some((guest, 1)));
    assert_eq!(s.peers[&ConnId(21)].admitted, Some((guest, Participant)));
    s.input(Input::Left { conn: ConnId(21) });
    s.enter_with(ConnId(22), "", Participant, Some((guest, 1)));
    assert_eq!(s.closed(ConnId(22)), Some(ErrorCode::ResumeRefused));
    s.enter_with(ConnId(23), "", Participant, Some((guest, 2)));
    assert_eq!(s.peers[&ConnId(23)].admitted, Some((guest, Participant)));
}

/// Guards against a removed guest walking back in with the code: guests are new identities each time, so
/// the host's removal bars where they connect from.
#[test]
fn a_removed_guest_cannot_enter_again_from_the_same_address() {
    let mut s = MeetingSim::new();
    s.enter(HOST, "user:1", Host);
    let guest = s.enter(VIEWER, "guest@10.0.0.9", Participant);
    s.input(Input::Message {
        conn: HOST,
        msg: ClientMsg::RemoveParticipant { participant: guest },
    });
    assert_eq!(s.closed(VIEWER), Some(ErrorCode::Removed));
    s.enter_with(ConnId(31), "guest@10.0.0.9", Participant, None);
    assert_eq!(s.closed(ConnId(31)), Some(ErrorCode::Removed));
    s.enter(ConnId(32), "guest@10.0.0.10", Participant);
    assert!(s.closed(ConnId(32)).is_none());
}

/// Guards against a scheduled meeting ending before it starts: a host who tries the room early and leaves
/// starts no idle timer until the scheduled start.
#[test]
fn an_early_visit_does_not_end_a_meeting_before_its_start() {
    let now = Instant::now();
    let starts = now + Duration::from_secs(86_400);
    let mut room = MeetingRoom::new(config(), starts, starts + Duration::from_secs(3600));
    let entry = Entry {
        identity: "user:1".into(),
        name: "host".into(),
        role: Host,
        resume: None,
        origin: None,
    };
    room.handle_input(now, Input::Enter { conn: HOST, entry });
    room.handle_input(now, Input::Left { conn: HOST });
    room.handle_timeout(now + Duration::from_secs(3600));
    assert!(room.is_ended().is_none());
    room.handle_timeout(starts + config().idle_timeout);
    assert_eq!(room.is_ended(), Some(EndReason::IdleTimeout));
}

/// Guards against anyone with the code locking the host out: a full meeting refuses guests, not staff.
#[test]
fn a_full_meeting_refuses_guests_but_lets_staff_in() {
    let mut s = MeetingSim::with(|c| c.max_participants = 2);
    s.enter(VIEWER, "guest@10.0.0.1", Participant);
    s.enter(LATE, "guest@10.0.0.2", Participant);
    s.enter_with(ConnId(41), "guest@10.0.0.3", Participant, None);
    assert_eq!(s.closed(ConnId(41)), Some(ErrorCode::MeetingFull));
    let host = s.enter(HOST, "user:1", Host);
    assert_eq!(s.peers[&HOST].admitted, Some((host, Host)));
}

/// Guards against a share that starts mid-group (a participant promoted while its client was already
/// sending): receivers must not get a group that opens with a delta frame, and the publisher is asked for a
/// keyframe at once.
#[test]
fn a_share_that_starts_with_a_delta_frame_waits_for_its_keyframe() {
    let mut s = MeetingSim::new();
    s.join(HOST, Host);
    let guest = s.enter(PRESENTER, "guest:1", Participant);
    s.join(VIEWER, Participant);
    s.publish(PRESENTER, 0, 0, true, 1000);
    s.publish(PRESENTER, 0, 1, false, 1000);
    s.send(
        HOST,
        ClientMsg::SetRole {
            participant: guest,
            role: Presenter,
        },
    );
    (2..5).for_each(|seq| s.publish(PRESENTER, 0, seq, false, 1000));
    let asked = s
        .msgs(PRESENTER)
        .iter()
        .filter(|m| matches!(m, ServerMsg::KeyframeRequest { track: 0 }))
        .count();
    assert_eq!(
        asked, 1,
        "one keyframe request reaches the promoted publisher"
    );
    (5..8).for_each(|seq| s.publish(PRESENTER, 1, seq, seq == 5, 1000));
    s.drain_writer(VIEWER);
    assert_eq!(
        s.seqs(VIEWER),
        vec![5, 6, 7],
        "the viewer starts at the keyframe"
    );
}

/// Guards against a recording missing a share that is already running: it starts from each held group (the
/// same frames again, as `Published`), asks for a keyframe where nothing is held, and its log gets the
/// roster first.
#[test]
fn a_recording_starts_from_the_held_groups_and_asks_for_the_rest() {
    let (mut s, track) = MeetingSim::meeting();
    s.join(LATE, Presenter);
    for seq in 0..18 {
        s.publish(PRESENTER, seq / 12, seq, seq % 12 == 0, 1000);
    }
    // The second share began mid-group (no keyframe yet): nothing is held for it.
    s.publish(LATE, 0, 0, false, 1000);
    s.advance(Duration::from_secs(1));
    s.published.clear();
    s.events.clear();
    let before = s.peers[&LATE].keyframe_requests.len();
    s.input(Input::Recording {
        active: true,
        reason: "started by an administrator".into(),
    });
    let again: Vec<_> = s.published.iter().map(|f| (f.track, f.seq)).collect();
    assert_eq!(again, (12..18).map(|seq| (track, seq)).collect::<Vec<_>>());
    assert!(s.published[0].keyframe);
    assert_eq!(s.peers[&LATE].keyframe_requests.len(), before + 1);
    assert!(s.peers[&PRESENTER].keyframe_requests.is_empty());
    let roster = s.events.iter().find_map(|e| match e {
        Event::Roster(r) => Some(r.iter().map(|p| (p.role, p.present)).collect::<Vec<_>>()),
        _ => None,
    });
    assert_eq!(
        roster,
        Some(vec![
            (Host, true),
            (Presenter, true),
            (Participant, true),
            (Presenter, true)
        ])
    );
    assert!(matches!(s.events[0], Event::Recording(true)));
    // Stopping sends nothing again.
    s.published.clear();
    s.input(Input::Recording {
        active: false,
        reason: "stopped".into(),
    });
    assert!(s.published.is_empty());
}
