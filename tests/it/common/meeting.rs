//! Meetings on the test relay: created on the relay directly, joined as staff (token) or guest (code).

use std::time::Duration;

use assist_relay::client::Session;
use assist_relay::protocol::message::{MeetingRole, ParticipantState};
use assist_relay::protocol::{Hello, ServerMsg};
use assist_relay::relay::NewMeeting;

use super::{expect_msg, TestRelay};

impl TestRelay {
    /// A meeting that starts now and lasts an hour.
    pub fn meeting(&self) -> NewMeeting {
        let now = self.relay.clock.wall();
        self.relay
            .create_meeting(now, now + Duration::from_secs(3600))
            .unwrap()
    }

    /// Enters `m` as staff member `user` with `role`.
    pub async fn staff(&self, m: &NewMeeting, user: u32, role: MeetingRole, name: &str) -> Session {
        let token = self.relay.meeting_token(m.id, user, role, m.ends_at);
        self.with_token(&token, name).await
    }

    /// Enters a meeting with a staff join token (`host_token` of `POST /meetings`, or a join-token answer).
    pub async fn with_token(&self, token: &str, name: &str) -> Session {
        self.join_as(
            "127.0.0.1:0",
            Hello::Meeting {
                token: token.to_string(),
                name: name.into(),
            },
        )
        .await
        .unwrap()
    }

    /// Enters `m` as a guest with its code.
    pub async fn guest(&self, m: &NewMeeting, name: &str) -> Session {
        self.join_as(
            "127.0.0.1:0",
            Hello::MeetingCode {
                code: m.code_display.clone(),
                name: name.into(),
            },
        )
        .await
        .unwrap()
    }
}

/// Waits until `s` has seen `n` other participants present.
pub async fn await_present(s: &mut Session, n: usize) {
    let mut seen = std::collections::HashSet::new();
    while seen.len() < n {
        if let ServerMsg::Participant {
            participant,
            state: ParticipantState::Present,
            ..
        } = expect_msg(s, |m| matches!(m, ServerMsg::Participant { .. })).await
        {
            seen.insert(participant);
        }
    }
}

/// Creates a meeting as `by`; the answer (201 asserted).
pub async fn meeting(by: &super::api::Api, body: serde_json::Value) -> serde_json::Value {
    let (s, v) = by.post("/api/v1/meetings", body).await;
    assert_eq!(s, 201, "{v}");
    v
}

pub fn id_of(m: &serde_json::Value) -> String {
    m["meeting_id"].as_str().unwrap().to_string()
}

pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The meeting role a relay WELCOME gave.
pub fn welcomed_as(s: &assist_relay::client::Session) -> MeetingRole {
    match &s.welcome {
        ServerMsg::MeetingWelcome(w) => w.role,
        other => panic!("expected a meeting welcome, got {other:?}"),
    }
}
