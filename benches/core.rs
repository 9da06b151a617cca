//! Micro-benchmarks of the pure core's per-frame decision path: no sockets, no tasks, no clock (time is an
//! input, advanced by fixed steps). Payloads are `Bytes` made once per benchmark, and cloning one is a
//! reference-count increment, so what is measured is the decision, not the allocation of the frame.
//!
//! - `room_frame`: `AssistRoom::handle_input(Input::Frame)` on a paired room, then draining `poll_output()`
//!   to its `Timeout` (the room task's per-frame work, minus the queue push).
//! - `media_queue`: `MediaQueue::push` then `pop` on a receiver that keeps up.
//! - `client_msg_decode`: `ClientMsg::decode` of an input event (the control reader's per-message work).
//!
//! Load through real sockets is `loadtest`'s job.

use std::hint::black_box;
use std::time::{Duration, Instant};

use assist_relay::core::{
    AssistRoom, BacklogLimits, ConnId, Frame, Input, MediaQueue, Output, Popped, Role, RoomConfig,
};
use assist_relay::protocol::message::split_message;
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
    targets = room_frame, media_queue, client_msg_decode
}
criterion_main!(benches);
