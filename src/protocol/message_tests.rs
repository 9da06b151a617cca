//! Round trips of every message and hostile bodies for every type byte.

use super::*;
use crate::protocol::ErrorCode;

fn round_trip_client(m: ClientMsg) {
    let mut buf = BytesMut::new();
    m.encode(&mut buf);
    let (ty, body) = split_message(&mut buf, 1 << 16).unwrap().unwrap();
    assert_eq!(ClientMsg::decode(ty, &body).unwrap(), m);
    assert!(buf.is_empty());
}

fn round_trip_server(m: ServerMsg) {
    let mut buf = BytesMut::new();
    m.encode(&mut buf);
    let (ty, body) = split_message(&mut buf, 1 << 16).unwrap().unwrap();
    assert_eq!(ServerMsg::decode(ty, &body).unwrap(), m);
}

#[test]
fn every_message_round_trips() {
    for m in [
        ClientMsg::Hello(Hello::Technician {
            token: "t.k".into(),
        }),
        ClientMsg::Hello(Hello::Customer {
            code: "1234 5678".into(),
            allow_control: true,
        }),
        ClientMsg::Hello(Hello::Resume { token: "r".into() }),
        ClientMsg::Input(InputEvent::MouseMove { x: 1, y: 65535 }),
        ClientMsg::Input(InputEvent::MouseButton {
            button: 4,
            pressed: true,
            x: 0,
            y: 9,
        }),
        ClientMsg::Input(InputEvent::MouseWheel { dx: -120, dy: 240 }),
        ClientMsg::Input(InputEvent::Key {
            code: "KeyA".into(),
            pressed: false,
            modifiers: 3,
        }),
        ClientMsg::Input(InputEvent::Text {
            text: "你好 👋".into(),
        }),
        ClientMsg::Chat("hello".into()),
        ClientMsg::Clipboard("x".into()),
        ClientMsg::SetControl(false),
        ClientMsg::KeyframeRequest { track: 0 },
        ClientMsg::EndSession,
    ] {
        round_trip_client(m);
    }
    for m in [
        ServerMsg::Welcome {
            session: [7; 16],
            role: Role::Customer,
            resume_token: "abc".into(),
            control_allowed: true,
            peer_present: false,
            resume_grace_ms: 30_000,
            max_frame_bytes: 4 << 20,
            max_message_bytes: 65536,
        },
        ServerMsg::Peer {
            role: Role::Technician,
            state: PeerState::Away,
        },
        ServerMsg::Control { allowed: false },
        ServerMsg::Input(InputEvent::MouseMove { x: 5, y: 6 }),
        ServerMsg::Chat {
            from: Role::Technician,
            text: "hi".into(),
        },
        ServerMsg::Clipboard {
            from: Role::Customer,
            text: "c".into(),
        },
        ServerMsg::KeyframeRequest { track: 3 },
        ServerMsg::Notice {
            code: ErrorCode::InputViewOnly,
            count: 3,
            message: "view only".into(),
        },
    ] {
        round_trip_server(m);
    }
}

#[test]
fn hostile_bodies_are_errors_not_panics() {
    assert_eq!(
        ClientMsg::decode(0x7f, &[]),
        Err(DecodeError::UnknownType(0x7f))
    );
    assert_eq!(
        ClientMsg::decode(0x01, &[2, 1]),
        Err(DecodeError::Invalid("version"))
    );
    assert_eq!(
        ClientMsg::decode(0x11, &[0, 5, b'a']),
        Err(DecodeError::Truncated)
    );
    assert_eq!(
        ClientMsg::decode(0x11, &[0, 1, 0xff]),
        Err(DecodeError::Utf8)
    );
    assert_eq!(ClientMsg::decode(0x15, &[0]), Err(DecodeError::Trailing(1)));
    assert_eq!(
        ClientMsg::decode(0x13, &[2]),
        Err(DecodeError::Invalid("boolean"))
    );
    let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
    assert!(matches!(
        split_message(&mut buf, 10),
        Err(DecodeError::Length { len: 0, .. })
    ));
    let mut buf = BytesMut::from(&[0u8, 1, 0, 0][..]);
    assert!(matches!(
        split_message(&mut buf, 10),
        Err(DecodeError::Length { len: 65536, .. })
    ));
    // Deterministic pseudo-random bodies for every type byte: decoding must never panic.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 40) as usize;
        let body: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8).collect();
        let _ = ClientMsg::decode((x >> 56) as u8, &body);
        let _ = ServerMsg::decode((x >> 48) as u8, &body);
    }
}
