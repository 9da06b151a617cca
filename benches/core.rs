//! Micro-benchmarks of the pure core's per-frame decision path: no sockets, no tasks, no clock (time is an
//! input, advanced by fixed steps). Payloads are `Bytes` made once per benchmark, and cloning one is a
//! reference-count increment, so what is measured is the decision, not the allocation of the frame.
//!
//! - `room_frame`: `AssistRoom::handle_input(Input::Frame)` on a paired room, then draining `poll_output()`
//!   to its `Timeout` (the room task's per-frame work, minus the queue push).
//! - `media_queue`: `MediaQueue::push` then `pop` on a receiver that keeps up.
//! - `meeting_fanout`: one 20 KiB frame from a meeting's presenter to N subscribers:
//!   `MeetingRoom::handle_input(Input::Frame)`, draining `poll_output()` to its `Timeout` while pushing each
//!   `Output::Media` onto that subscriber's `MediaQueue`, then every writer's `pop`. Throughput is in
//!   deliveries, so criterion's elements/s is the per-delivery cost of the room task plus the writers
//!   (without the room task's lookup of the receiver and the lock around its queue).
//! - `client_msg_decode`: `ClientMsg::decode` of an input event (the control reader's per-message work).
//!
//! Load through real sockets is `loadtest`'s job.

use std::hint::black_box;
use std::time::{Duration, Instant};

use assist_relay::core::{
    AssistRoom, BacklogLimits, CollabLimits, ConnId, Entry, Frame, Input, MediaQueue,
    MeetingConfig, MeetingRoom, Output, Popped, PushOutcome, Role, RoomConfig,
};
use assist_relay::protocol::message::split_message;
use assist_relay::protocol::message::MeetingRole;
use assist_relay::protocol::{ClientMsg, InputEvent};
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Frame sizes: a small delta frame and a typical screen-share frame.
const SIZES: [usize; 2] = [1 << 10, 20 << 10];
/// The clock advances this much per frame. Small enough that no session timer (idle, maximum duration)
/// fires within any number of iterations criterion runs, so every iteration takes the same path.
const STEP: Duration = Duration::from_micros(10);
const TECHNICIAN: ConnId = ConnId(1);
const CUSTOMER: ConnId = ConnId(2);

fn room_config() -> RoomConfig {
    RoomConfig {
        idle_timeout: Duration::from_secs(300),
        // 10 µs steps reach 30 days after 2.6e11 iterations: never within a bench.
        max_duration: Duration::from_secs(30 * 86_400),
        resume_grace: Duration::from_secs(30),
        keyframe_interval: Duration::from_millis(500),
        input_rate_per_sec: 250.0,
        input_burst: 500,
        collab: collab_limits(),
    }
}

fn collab_limits() -> CollabLimits {
    CollabLimits {
        whiteboard_bytes: 64 << 10,
        chat_history: 50,
        max_file_bytes: 100 << 20,
        max_transfers: 4,
    }
}

/// A delta frame of group 0 with a payload of `size` bytes.
fn frame(size: usize, now: Instant) -> Frame {
    Frame {
        track: 0,
        group: 0,
        seq: 1,
        keyframe: false,
        wire: Bytes::from(vec![0xA5u8; size]),
        received_at: now,
        origin: Default::default(),
    }
}

/// Drains outputs until `Timeout`; returns how many frames were forwarded.
fn drain(room: &mut AssistRoom) -> usize {
    let mut media = 0;
    loop {
        match room.poll_output() {
            Output::Timeout(t) => {
                black_box(t);
                return media;
            }
            Output::Media { conn, frame } => {
                black_box((conn, frame));
                media += 1;
            }
            other => {
                let _ = black_box(other);
            }
        }
    }
}

/// A room with the technician and the customer joined and group 0 started by a keyframe.
fn paired_room(start: Instant) -> AssistRoom {
    let mut room = AssistRoom::new(start, room_config(), start + Duration::from_secs(600));
    for (conn, role) in [(TECHNICIAN, Role::Technician), (CUSTOMER, Role::Customer)] {
        room.handle_input(
            start,
            Input::Join {
                conn,
                role,
                resume: None,
                allow_control: true,
            },
        );
    }
    let mut key = frame(16, start);
    key.keyframe = true;
    room.handle_input(
        start,
        Input::Frame {
            conn: CUSTOMER,
            frame: key,
        },
    );
    drain(&mut room);
    assert!(room.is_paired());
    room
}

fn room_frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("room_frame");
    for size in SIZES {
        let start = Instant::now();
        let mut room = paired_room(start);
        let f = frame(size, start);
        let mut now = start;
        // One frame per iteration: throughput in elements is frames per second.
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                now += STEP;
                room.handle_input(
                    now,
                    Input::Frame {
                        conn: CUSTOMER,
                        frame: f.clone(),
                    },
                );
                let forwarded = drain(&mut room);
                debug_assert_eq!(forwarded, 1);
                forwarded
            })
        });
        assert!(
            room.is_ended().is_none(),
            "no timer may fire during the bench"
        );
    }
    g.finish();
}

fn media_queue(c: &mut Criterion) {
    let mut g = c.benchmark_group("media_queue_push_pop");
    for size in SIZES {
        let start = Instant::now();
        let mut q = MediaQueue::new(BacklogLimits {
            max_bytes: 8 << 20,
            max_age: Duration::from_secs(1),
        });
        let f = frame(size, start);
        let mut now = start;
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                now += STEP;
                let pushed = q.push(now, f.clone());
                match q.pop() {
                    Some(Popped::Frame(out)) => black_box((pushed, out)),
                    other => panic!("a keeping-up receiver pops its frame, got {other:?}"),
                }
            })
        });
    }
    g.finish();
}

/// Subscriber counts of the meeting fan-out.
const FANOUT: [usize; 4] = [1, 10, 100, 1000];
const FANOUT_FRAME: usize = 20 << 10;
const PRESENTER: ConnId = ConnId(0);

/// A meeting with a presenter whose track 0 has started (group 0's keyframe) and `subscribers` participants
/// on `ConnId(1..=subscribers)`, each with a backlog that never lags here. `hold` is `group_cache_bytes`.
fn meeting(start: Instant, subscribers: usize, hold: usize) -> (MeetingRoom, Vec<MediaQueue>) {
    let cfg = MeetingConfig {
        resume_grace: Duration::from_secs(30),
        keyframe_interval: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(300),
        max_participants: subscribers + 1,
        max_tracks: 1,
        group_cache_bytes: hold,
        collab: collab_limits(),
    };
    // 10 µs steps never reach the scheduled end within a bench.
    let mut room = MeetingRoom::new(cfg, start, start + Duration::from_secs(30 * 86_400));
    let enter = |room: &mut MeetingRoom, conn: u64, role| {
        let entry = Entry {
            identity: format!("user:{conn}"),
            name: format!("user {conn}"),
            role,
            resume: None,
            origin: None,
        };
        let conn = ConnId(conn);
        room.handle_input(start, Input::Enter { conn, entry });
        // Each entry tells everyone: drain as we go rather than hold N² messages.
        drain_meeting(room);
    };
    enter(&mut room, PRESENTER.0, MeetingRole::Presenter);
    for conn in 1..=subscribers as u64 {
        enter(&mut room, conn, MeetingRole::Participant);
    }
    let mut key = frame(FANOUT_FRAME, start);
    key.keyframe = true;
    room.handle_input(
        start,
        Input::Frame {
            conn: PRESENTER,
            frame: key,
        },
    );
    drain_meeting(&mut room);
    assert_eq!(room.connected(), subscribers + 1);
    let limits = BacklogLimits {
        max_bytes: 8 << 20,
        max_age: Duration::from_secs(1),
    };
    (
        room,
        (0..subscribers).map(|_| MediaQueue::new(limits)).collect(),
    )
}

fn drain_meeting(room: &mut MeetingRoom) {
    while !matches!(room.poll_output(), Output::Timeout(_)) {}
}

fn meeting_fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("meeting_fanout");
    g.measurement_time(Duration::from_secs(3));
    // (variant, keyframe, group_cache_bytes). A delta mid-group with nothing held is the steady state of
    // every delta (holding one adds a Vec push per frame, not per subscriber, and a held group would grow
    // with each iteration); a keyframe restarts the held group each time, so it is steady with holding on.
    let variants = [("delta", false, 0), ("keyframe", true, 4 << 20)];
    for n in FANOUT {
        g.sample_size(if n >= 100 { 30 } else { 60 });
        g.throughput(Throughput::Elements(n as u64));
        for (name, keyframe, hold) in variants {
            let start = Instant::now();
            let (mut room, mut queues) = meeting(start, n, hold);
            let mut f = frame(FANOUT_FRAME, start);
            f.keyframe = keyframe;
            let mut now = start;
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    now += STEP;
                    let frame = f.clone();
                    room.handle_input(
                        now,
                        Input::Frame {
                            conn: PRESENTER,
                            frame,
                        },
                    );
                    // The room task: every decision, each frame onto its receiver's backlog.
                    loop {
                        match room.poll_output() {
                            Output::Timeout(t) => {
                                black_box(t);
                                break;
                            }
                            Output::Media { conn, frame } => {
                                let pushed = queues[conn.0 as usize - 1].push(now, frame);
                                debug_assert_eq!(pushed, PushOutcome::Queued);
                                let _ = black_box(pushed);
                            }
                            other => {
                                let _ = black_box(other);
                            }
                        }
                    }
                    // The writers: each takes its frame.
                    for q in &mut queues {
                        match q.pop() {
                            Some(Popped::Frame(out)) => {
                                black_box(out);
                            }
                            other => panic!("every subscriber gets the frame, got {other:?}"),
                        }
                    }
                })
            });
            assert!(
                room.is_ended().is_none(),
                "no timer may fire during the bench"
            );
        }
    }
    g.finish();
}

fn client_msg_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("client_msg_decode");
    let events = [
        ("mouse_move", InputEvent::MouseMove { x: 31000, y: 17000 }),
        (
            "key",
            InputEvent::Key {
                code: "KeyA".into(),
                pressed: true,
                modifiers: 2,
            },
        ),
    ];
    for (name, ev) in events {
        let mut buf = BytesMut::new();
        ClientMsg::Input(ev.clone()).encode(&mut buf);
        let (ty, body) = split_message(&mut buf, 64 << 10)
            .expect("valid message")
            .expect("complete message");
        assert_eq!(
            ClientMsg::decode(ty, &body).expect("decodes"),
            ClientMsg::Input(ev)
        );
        g.throughput(Throughput::Elements(1));
        g.bench_function(name, |b| {
            b.iter(|| ClientMsg::decode(black_box(ty), black_box(&body)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // Short by default: the machine is small and shared; pass --measurement-time for steadier numbers.
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = room_frame, media_queue, meeting_fanout, client_msg_decode
}
criterion_main!(benches);
