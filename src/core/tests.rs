//! Deterministic scenarios for the core: a simulated clock, a room, and one media queue per connection whose
//! writer drains as fast as the test says. No tokio, no sockets, no sleeps.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::protocol::message::PeerState;
use crate::protocol::{ClientMsg, ErrorCode, InputEvent, ServerMsg};

/// A frame whose wire form is `len` opaque bytes.
pub(crate) fn frame(group: u64, seq: u64, keyframe: bool, len: usize) -> Frame {
    Frame {
        track: 0,
        group,
        seq,
        keyframe,
        wire: Bytes::from(vec![0u8; len]),
        received_at: Instant::now(),
        origin: Default::default(),
    }
}

pub(crate) fn room_config() -> RoomConfig {
    RoomConfig {
        idle_timeout: Duration::from_secs(300),
        max_duration: Duration::from_secs(4 * 3600),
        resume_grace: Duration::from_secs(30),
        keyframe_interval: Duration::from_secs(1),
        input_rate_per_sec: 10.0,
        input_burst: 5,
        collab: collab_limits(),
    }
}

pub(crate) fn collab_limits() -> CollabLimits {
    CollabLimits {
        whiteboard_bytes: 64 << 10,
        chat_history: 50,
        max_file_bytes: 100 << 20,
        max_transfers: 4,
    }
}

pub(crate) const TECH: ConnId = ConnId(1);
pub(crate) const CUST: ConnId = ConnId(2);

/// The room plus what each connection received.
struct Sim {
    now: Instant,
    room: AssistRoom,
    queues: HashMap<ConnId, MediaQueue>,
    delivered: HashMap<ConnId, Vec<u64>>,
    msgs: HashMap<ConnId, Vec<ServerMsg>>,
    closed: HashMap<ConnId, ErrorCode>,
    accepted: HashMap<ConnId, u32>,
    events: Vec<Event>,
}

impl Sim {
    fn new() -> Sim {
        let now = Instant::now();
        Sim {
            now,
            room: AssistRoom::new(now, room_config(), now + Duration::from_secs(600)),
            queues: HashMap::new(),
            delivered: HashMap::new(),
            msgs: HashMap::new(),
            closed: HashMap::new(),
            accepted: HashMap::new(),
            events: Vec::new(),
        }
    }

    fn paired(allow_control: bool) -> Sim {
        let mut s = Sim::new();
        s.input(Input::Join {
            conn: TECH,
            role: Role::Technician,
            resume: None,
            allow_control: false,
        });
        s.input(Input::Join {
            conn: CUST,
            role: Role::Customer,
            resume: None,
            allow_control,
        });
        assert!(s.room.is_paired());
        s
    }

    fn limits() -> BacklogLimits {
        BacklogLimits {
            max_bytes: 10_000,
            max_age: Duration::from_millis(500),
        }
    }

    fn input(&mut self, input: Input) {
        self.room.handle_input(self.now, input);
        self.drain();
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.room.handle_timeout(self.now);
        self.drain();
    }

    fn drain(&mut self) {
        loop {
            match self.room.poll_output() {
                Output::Timeout(t) => {
                    assert!(
                        t > self.now || self.room.is_ended().is_some(),
                        "timeout must be in the future"
                    );
                    return;
                }
                Output::Accepted {
                    conn, generation, ..
                } => {
                    self.accepted.insert(conn, generation);
                }
                Output::Media { conn, frame } => {
                    let now = self.now;
                    let q = self
                        .queues
                        .entry(conn)
                        .or_insert_with(|| MediaQueue::new(Sim::limits()));
                    if let PushOutcome::Lagged {
                        need_keyframe: true,
                        ..
                    } = q.push(now, frame)
                    {
                        self.room
                            .handle_input(now, Input::Lagged { conn, track: 0 });
                    }
                }
                Output::Send { conn, msg } => self.msgs.entry(conn).or_default().push(msg),
                Output::SendBatch { conn, msgs } => self.msgs.entry(conn).or_default().extend(msgs),
                Output::Close { conn, code, .. } => {
                    self.closed.insert(conn, code);
                }
                Output::Event(e) => self.events.push(e),
                other => panic!("a remote-assist session does not produce {other:?}"),
            }
        }
    }

    /// The writer of `conn` takes everything queued.
    fn drain_writer(&mut self, conn: ConnId) {
        if let Some(q) = self.queues.get_mut(&conn) {
            while let Some(p) = q.pop() {
                if let Popped::Frame(f) = p {
                    self.delivered.entry(conn).or_default().push(f.seq);
                }
            }
        }
    }

    fn send_frame(&mut self, group: u64, seq: u64, keyframe: bool) {
        self.input(Input::Frame {
            conn: CUST,
            frame: frame(group, seq, keyframe, 1000),
        });
    }

    fn keyframe_requests(&self) -> usize {
        self.msgs.get(&CUST).map_or(0, |m| {
            m.iter()
                .filter(|m| matches!(m, ServerMsg::KeyframeRequest { .. }))
                .count()
        })
    }

    fn msgs(&self, conn: ConnId) -> &[ServerMsg] {
        self.msgs.get(&conn).map_or(&[], |v| v.as_slice())
    }
}

#[test]
fn pairing_tells_each_side_and_forwards_frames_in_order() {
    let mut s = Sim::paired(true);
    assert_eq!(s.accepted.get(&TECH), Some(&1));
    assert!(s.msgs(TECH).contains(&ServerMsg::Peer {
        role: Role::Customer,
        state: PeerState::Joined
    }));
    assert!(s.msgs(TECH).contains(&ServerMsg::Control { allowed: true }));
    assert!(s.events.contains(&Event::Paired));
    for seq in 0..60 {
        s.send_frame(seq / 30, seq, seq % 30 == 0);
        s.drain_writer(TECH);
    }
    assert_eq!(s.delivered[&TECH], (0..60).collect::<Vec<_>>());
    assert_eq!(s.keyframe_requests(), 0);
}

#[test]
fn view_only_drops_input_in_the_relay_and_tells_the_technician_with_counts() {
    let mut s = Sim::paired(false);
    for _ in 0..5 {
        s.input(Input::Message {
            conn: TECH,
            msg: ClientMsg::Input(InputEvent::MouseMove { x: 1, y: 1 }),
        });
    }
    assert!(
        !s.msgs(CUST)
            .iter()
            .any(|m| matches!(m, ServerMsg::Input(_))),
        "no input reaches the customer"
    );
    let notices: Vec<_> = s
        .msgs(TECH)
        .iter()
        .filter(|m| matches!(m, ServerMsg::Notice { .. }))
        .cloned()
        .collect();
    assert_eq!(
        notices.len(),
        1,
        "one notice per interval, not one per event"
    );
    assert!(matches!(
        notices[0],
        ServerMsg::Notice {
            code: ErrorCode::InputViewOnly,
            count: 1,
            ..
        }
    ));
    s.advance(Duration::from_secs(1));
    assert!(s.msgs(TECH).iter().any(|m| matches!(
        m,
        ServerMsg::Notice {
            code: ErrorCode::InputViewOnly,
            count: 4,
            ..
        }
    )));
    // The customer grants control: input flows.
    s.input(Input::Message {
        conn: CUST,
        msg: ClientMsg::SetControl(true),
    });
    assert!(s.msgs(TECH).contains(&ServerMsg::Control { allowed: true }));
    s.input(Input::Message {
        conn: TECH,
        msg: ClientMsg::Input(InputEvent::MouseMove { x: 2, y: 2 }),
    });
    assert!(s
        .msgs(CUST)
        .contains(&ServerMsg::Input(InputEvent::MouseMove { x: 2, y: 2 })));
    // ...and revokes it again.
    s.input(Input::Message {
        conn: CUST,
        msg: ClientMsg::SetControl(false),
    });
    s.input(Input::Message {
        conn: TECH,
        msg: ClientMsg::Input(InputEvent::MouseMove { x: 3, y: 3 }),
    });
    assert!(!s
        .msgs(CUST)
        .contains(&ServerMsg::Input(InputEvent::MouseMove { x: 3, y: 3 })));
}

#[test]
fn input_over_the_rate_is_dropped_and_refills_with_time() {
    let mut s = Sim::paired(true);
    let mv = |x| Input::Message {
        conn: TECH,
        msg: ClientMsg::Input(InputEvent::MouseMove { x, y: 0 }),
    };
    for x in 0..8 {
        s.input(mv(x));
    }
    let forwarded = s
        .msgs(CUST)
        .iter()
        .filter(|m| matches!(m, ServerMsg::Input(_)))
        .count();
    assert_eq!(forwarded, 5, "burst of 5");
    assert!(s
        .events
        .contains(&Event::InputDropped(DropReason::RateLimited)));
    s.advance(Duration::from_millis(100)); // one token at 10/s
    s.input(mv(100));
    assert!(s
        .msgs(CUST)
        .contains(&ServerMsg::Input(InputEvent::MouseMove { x: 100, y: 0 })));
}

#[test]
fn stalled_receiver_skips_to_the_next_keyframe_with_exactly_one_keyframe_request() {
    let mut s = Sim::paired(true);
    s.send_frame(0, 0, true);
    s.drain_writer(TECH);
    // The technician stops reading: 10 KB bound at 1000 B per frame.
    for seq in 1..40 {
        s.send_frame(0, seq, false);
        s.advance(Duration::from_millis(33));
    }
    assert_eq!(
        s.keyframe_requests(),
        1,
        "one overflow, one request; later frames are skipped quietly"
    );
    assert_eq!(
        s.queues[&TECH].backlog(),
        (0, 0),
        "the stale backlog was flushed, later deltas skipped"
    );
    // The customer answers with a keyframe; the receiver resumes there.
    s.send_frame(1, 40, true);
    s.send_frame(1, 41, false);
    s.drain_writer(TECH);
    let delivered = &s.delivered[&TECH];
    let resumed_at = delivered
        .iter()
        .position(|&q| q == 40)
        .expect("keyframe delivered");
    assert_eq!(&delivered[resumed_at..], &[40, 41]);
    assert!(delivered[..resumed_at].iter().all(|&q| q < 40));
    // The keyframe satisfied the pending request: none goes out later.
    s.advance(Duration::from_secs(5));
    assert_eq!(s.keyframe_requests(), 1);
}

#[test]
fn technician_keyframe_requests_are_throttled() {
    let mut s = Sim::paired(true);
    for _ in 0..10 {
        s.input(Input::Message {
            conn: TECH,
            msg: ClientMsg::KeyframeRequest { track: 0 },
        });
    }
    assert_eq!(s.keyframe_requests(), 1);
    s.advance(Duration::from_secs(1));
    assert_eq!(
        s.keyframe_requests(),
        2,
        "the merged request goes out when the interval ends"
    );
}

#[test]
fn resume_within_grace_replaces_and_restarts_at_a_keyframe() {
    let mut s = Sim::paired(true);
    s.send_frame(0, 0, true);
    s.input(Input::Left { conn: TECH });
    assert!(s.msgs(CUST).contains(&ServerMsg::Peer {
        role: Role::Technician,
        state: PeerState::Away
    }));
    s.send_frame(0, 1, false); // nobody to receive it
    assert!(s.events.contains(&Event::FrameDropped {
        reason: DropReason::NoReceiver,
        bytes: 1000
    }));
    s.advance(Duration::from_secs(29));
    let tech2 = ConnId(3);
    s.input(Input::Join {
        conn: tech2,
        role: Role::Technician,
        resume: Some(1),
        allow_control: false,
    });
    assert_eq!(s.accepted.get(&tech2), Some(&2));
    assert!(s.msgs(CUST).contains(&ServerMsg::Peer {
        role: Role::Technician,
        state: PeerState::Resumed
    }));
    assert_eq!(
        s.keyframe_requests(),
        1,
        "mid-stream resume asks for a keyframe"
    );
    s.send_frame(0, 2, false);
    s.send_frame(1, 3, true);
    s.drain_writer(tech2);
    assert_eq!(s.delivered[&tech2], vec![3], "starts at the keyframe");
    // The superseded token no longer works, and a live connection is replaced by a valid resume.
    let tech3 = ConnId(4);
    s.input(Input::Join {
        conn: tech3,
        role: Role::Technician,
        resume: Some(1),
        allow_control: false,
    });
    assert_eq!(s.closed.get(&tech3), Some(&ErrorCode::ResumeRefused));
    s.input(Input::Join {
        conn: tech3,
        role: Role::Technician,
        resume: Some(2),
        allow_control: false,
    });
    assert_eq!(s.closed.get(&tech2), Some(&ErrorCode::Replaced));
    assert_eq!(s.accepted.get(&tech3), Some(&3));
}

#[test]
fn no_resume_after_grace_and_the_other_side_is_told_why() {
    let mut s = Sim::paired(true);
    s.input(Input::Left { conn: CUST });
    s.advance(Duration::from_secs(30));
    assert_eq!(s.room.is_ended(), Some(EndReason::PeerGone(Role::Customer)));
    assert_eq!(s.closed.get(&TECH), Some(&ErrorCode::PeerGone));
    let c2 = ConnId(9);
    s.input(Input::Join {
        conn: c2,
        role: Role::Customer,
        resume: Some(1),
        allow_control: true,
    });
    assert_eq!(s.closed.get(&c2), Some(&ErrorCode::PeerGone));
}

#[test]
fn customer_ends_the_session_and_nothing_flows_after() {
    let mut s = Sim::paired(true);
    s.input(Input::Message {
        conn: CUST,
        msg: ClientMsg::EndSession,
    });
    assert_eq!(s.room.is_ended(), Some(EndReason::ByCustomer));
    assert_eq!(s.closed.get(&TECH), Some(&ErrorCode::SessionEnded));
    assert_eq!(s.closed.get(&CUST), Some(&ErrorCode::SessionEnded));
    let before = s.msgs(CUST).len();
    s.input(Input::Message {
        conn: TECH,
        msg: ClientMsg::Input(InputEvent::MouseMove { x: 0, y: 0 }),
    });
    s.input(Input::End {
        reason: EndReason::ByTechnician,
    });
    assert_eq!(s.msgs(CUST).len(), before);
    assert_eq!(
        s.room.is_ended(),
        Some(EndReason::ByCustomer),
        "the first end stands"
    );
}

#[test]
fn sessions_end_on_expiry_idle_and_maximum_duration() {
    let mut s = Sim::new();
    s.input(Input::Join {
        conn: TECH,
        role: Role::Technician,
        resume: None,
        allow_control: false,
    });
    s.advance(Duration::from_secs(600));
    assert_eq!(s.room.is_ended(), Some(EndReason::Expired));
    assert_eq!(s.closed.get(&TECH), Some(&ErrorCode::SessionExpired));

    let mut s = Sim::paired(true);
    s.advance(Duration::from_secs(299));
    assert_eq!(s.room.is_ended(), None);
    s.input(Input::Message {
        conn: CUST,
        msg: ClientMsg::Chat("still here".into()),
    });
    s.advance(Duration::from_secs(299));
    assert_eq!(s.room.is_ended(), None, "activity resets the idle timer");
    s.advance(Duration::from_secs(1));
    assert_eq!(s.room.is_ended(), Some(EndReason::IdleTimeout));

    let mut s = Sim::paired(true);
    for _ in 0..(4 * 3600 / 60) {
        s.send_frame(0, 0, true);
        s.advance(Duration::from_secs(60));
    }
    assert_eq!(s.room.is_ended(), Some(EndReason::MaxDuration));
}

#[test]
fn roles_are_enforced_and_joins_are_single_use() {
    let mut s = Sim::paired(true);
    s.input(Input::Message {
        conn: CUST,
        msg: ClientMsg::Input(InputEvent::MouseMove { x: 0, y: 0 }),
    });
    assert!(s.msgs(CUST).iter().any(|m| matches!(
        m,
        ServerMsg::Notice {
            code: ErrorCode::NotPermitted,
            ..
        }
    )));
    s.input(Input::Message {
        conn: TECH,
        msg: ClientMsg::SetControl(false),
    });
    assert!(s.msgs(TECH).iter().any(|m| matches!(
        m,
        ServerMsg::Notice {
            code: ErrorCode::NotPermitted,
            ..
        }
    )));
    let other = ConnId(7);
    s.input(Input::Join {
        conn: other,
        role: Role::Technician,
        resume: None,
        allow_control: false,
    });
    assert_eq!(s.closed.get(&other), Some(&ErrorCode::RoleTaken));
    // Chat goes both ways in order.
    s.input(Input::Message {
        conn: TECH,
        msg: ClientMsg::Chat("one".into()),
    });
    s.input(Input::Message {
        conn: TECH,
        msg: ClientMsg::Chat("two".into()),
    });
    let chats: Vec<_> = s
        .msgs(CUST)
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Chat { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(chats, ["one", "two"]);
}

#[test]
fn frames_of_an_older_group_are_dropped() {
    let mut s = Sim::paired(true);
    s.send_frame(1, 30, true);
    s.send_frame(0, 29, false);
    s.drain_writer(TECH);
    assert_eq!(s.delivered[&TECH], vec![30]);
    assert!(s.events.contains(&Event::FrameDropped {
        reason: DropReason::StaleGroup,
        bytes: 1000
    }));
}

#[test]
fn a_resumed_customer_numbers_its_groups_afresh() {
    let mut s = Sim::paired(true);
    s.send_frame(40, 0, true);
    s.input(Input::Left { conn: CUST });
    let cust2 = ConnId(5);
    s.input(Input::Join {
        conn: cust2,
        role: Role::Customer,
        resume: Some(1),
        allow_control: true,
    });
    s.input(Input::Frame {
        conn: cust2,
        frame: frame(0, 1, true, 1000),
    });
    s.drain_writer(TECH);
    assert_eq!(
        s.delivered[&TECH],
        vec![0, 1],
        "group 0 of the new connection is not stale"
    );
}

/// Guards against chat lost while the other side is away: it is held (bounded) and delivered on its return.
#[test]
fn chat_to_an_absent_side_is_held_and_delivered_when_it_comes_back() {
    let mut s = Sim::new();
    s.input(Input::Join {
        conn: CUST,
        role: Role::Customer,
        resume: None,
        allow_control: true,
    });
    for text in ["hello?", "anyone there?"] {
        s.input(Input::Message {
            conn: CUST,
            msg: ClientMsg::Chat(text.into()),
        });
    }
    let notices = s.msgs[&CUST]
        .iter()
        .filter(|m| {
            matches!(
                m,
                ServerMsg::Notice {
                    code: ErrorCode::PeerAway,
                    ..
                }
            )
        })
        .count();
    assert_eq!(notices, 2, "the sender learns each line is held");
    s.input(Input::Join {
        conn: TECH,
        role: Role::Technician,
        resume: None,
        allow_control: false,
    });
    let got: Vec<&str> = s.msgs[&TECH]
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Chat {
                from: Role::Customer,
                text,
            } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(got, ["hello?", "anyone there?"]);
}
