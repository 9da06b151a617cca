//! Pairing, codes, guessing limits, control, resume and shutdown against a real relay on loopback. Time
//! that matters (code expiry, grace periods) runs on a manual clock.

use crate::common;

use std::time::Duration;

use assist_relay::protocol::message::PeerState;
use assist_relay::protocol::{ClientMsg, ErrorCode, Hello, InputEvent, ServerMsg};
use common::*;

#[tokio::test]
async fn codes_are_single_use_expire_and_unknown_ones_are_refused() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let s = relay.create().await;
        assert_eq!(s.code.len(), 12);
        assert!(s.code_display.contains(' '));

        // Two customers race for one code: exactly one wins, the other hears "code_used".
        let (a, b) = tokio::join!(relay.customer(&s.code, true), relay.customer(&s.code, true));
        let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "exactly one concurrent redemption succeeds");
        let loser = if a.is_ok() { b } else { a };
        assert_eq!(refused(loser), ErrorCode::CodeUsed);
        assert_eq!(
            refused(relay.customer(&s.code, true).await),
            ErrorCode::CodeUsed
        );

        assert_eq!(
            refused(relay.customer("0000 0000 0001", true).await),
            ErrorCode::CodeUnknown
        );
        assert_eq!(
            refused(relay.customer("not a code", true).await),
            ErrorCode::CodeUnknown
        );

        // A code not redeemed within 10 minutes expires, and the waiting technician is told why.
        let s2 = relay.create().await;
        let tech = relay.technician(&s2).await;
        relay.clock.advance(Duration::from_secs(600));
        assert_eq!(closed_with(&tech).await, ErrorCode::SessionExpired);
        assert_eq!(
            refused(relay.customer(&s2.code, true).await),
            ErrorCode::CodeExpired
        );

        assert_eq!(relay.metric("assist_relay_codes_redeemed_total").await, 1.0);
        assert!(relay.metric("assist_relay_code_failures_total").await >= 5.0);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn technician_tokens_are_checked() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let s = relay.create().await;
        let mut forged = s.technician_token.clone();
        forged.pop();
        forged.push(if s.technician_token.ends_with('A') {
            'B'
        } else {
            'A'
        });
        let hello = Hello::Technician { token: forged };
        assert_eq!(
            refused(relay.join_as("127.0.0.1:0", hello).await),
            ErrorCode::TokenInvalid
        );
        let _tech = relay.technician(&s).await;
        // The join token is single-use: a second technician is refused while the first is connected.
        let again = Hello::Technician {
            token: s.technician_token.clone(),
        };
        assert_eq!(
            refused(relay.join_as("127.0.0.1:0", again).await),
            ErrorCode::RoleTaken
        );
        // After its lifetime the token is refused even for a fresh session.
        let s2 = relay.create().await;
        relay.clock.advance(Duration::from_secs(601));
        let late = Hello::Technician {
            token: s2.technician_token.clone(),
        };
        // The token's own expiry is checked before the session is looked up.
        assert_eq!(
            refused(relay.join_as("127.0.0.1:0", late).await),
            ErrorCode::TokenExpired
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn guessing_is_limited_per_address_and_globally_without_locking_out_others() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| {
            l.pairing.address_failure_burst = Some(3);
            l.pairing.address_failures_per_min = Some(1.0);
            l.pairing.backoff_after = Some(100);
            l.pairing.global_failure_burst = Some(6);
            l.pairing.global_failures_per_sec = Some(0.001);
        })
        .await;
        let s = relay.create().await;
        let guess = |ip: &'static str| {
            let relay = &relay;
            async move {
                let hello = Hello::Customer {
                    code: "1111 2222 3333".into(),
                    allow_control: true,
                };
                refused(relay.join_as(ip, hello).await)
            }
        };
        for _ in 0..3 {
            assert_eq!(guess("127.0.0.1:0").await, ErrorCode::CodeUnknown);
        }
        assert_eq!(
            guess("127.0.0.1:0").await,
            ErrorCode::RateLimited,
            "4th failure from one address"
        );
        // Even the right code waits while its address is limited...
        let hello = Hello::Customer {
            code: s.code.clone(),
            allow_control: true,
        };
        assert_eq!(
            refused(relay.join_as("127.0.0.1:0", hello).await),
            ErrorCode::RateLimited
        );
        // ...but a customer at another address is not affected.
        let hello = Hello::Customer {
            code: s.code.clone(),
            allow_control: true,
        };
        let ok = relay
            .join_as("127.0.0.2:0", hello)
            .await
            .expect("other address pairs");
        assert!(matches!(ok.welcome, ServerMsg::Welcome { .. }));
        // The global budget (6 failures) bounds guesses from any number of addresses.
        for ip in ["127.0.0.3:0", "127.0.0.4:0", "127.0.0.5:0"] {
            assert_eq!(guess(ip).await, ErrorCode::CodeUnknown);
        }
        assert_eq!(
            guess("127.0.0.6:0").await,
            ErrorCode::RateLimited,
            "global budget spent"
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn repeated_failures_back_off_and_time_heals() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| l.pairing.backoff_after = Some(2)).await;
        let wrong = || Hello::Customer {
            code: "9999 9999 9999".into(),
            allow_control: true,
        };
        assert_eq!(
            refused(relay.join_as("127.0.0.1:0", wrong()).await),
            ErrorCode::CodeUnknown
        );
        assert_eq!(
            refused(relay.join_as("127.0.0.1:0", wrong()).await),
            ErrorCode::CodeUnknown
        );
        assert_eq!(
            refused(relay.join_as("127.0.0.1:0", wrong()).await),
            ErrorCode::RateLimited
        );
        relay.clock.advance(Duration::from_secs(1));
        let s = relay.create().await;
        relay
            .customer(&s.code, true)
            .await
            .expect("after the backoff the right code works");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn input_and_chat_arrive_in_order_both_ways() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let (_, mut tech, mut cust) = relay.pair(true).await;
        for i in 0..200u16 {
            tech.tx
                .send(&ClientMsg::Input(InputEvent::MouseMove { x: i, y: i }))
                .await
                .unwrap();
            if i % 50 == 0 {
                tech.tx
                    .send(&ClientMsg::Chat(format!("chat {i} 你好")))
                    .await
                    .unwrap();
            }
        }
        tech.tx
            .send(&ClientMsg::Input(InputEvent::Key {
                code: "Enter".into(),
                pressed: true,
                modifiers: 0,
            }))
            .await
            .unwrap();
        let mut seen = Vec::new();
        while seen.len() < 205 {
            match cust.rx.recv().await.unwrap().unwrap() {
                ServerMsg::Input(InputEvent::MouseMove { x, .. }) => seen.push(format!("move {x}")),
                ServerMsg::Input(InputEvent::Key { code, .. }) => seen.push(format!("key {code}")),
                ServerMsg::Chat { text, .. } => seen.push(text),
                _ => {}
            }
        }
        let mut want = Vec::new();
        for i in 0..200u16 {
            want.push(format!("move {i}"));
            if i % 50 == 0 {
                want.push(format!("chat {i} 你好"));
            }
        }
        want.push("key Enter".into());
        assert_eq!(seen, want);
        cust.tx
            .send(&ClientMsg::Chat("thanks 👍".into()))
            .await
            .unwrap();
        cust.tx
            .send(&ClientMsg::Clipboard("copied".into()))
            .await
            .unwrap();
        expect_msg(
            &mut tech,
            |m| matches!(m, ServerMsg::Chat { text, .. } if text == "thanks 👍"),
        )
        .await;
        expect_msg(
            &mut tech,
            |m| matches!(m, ServerMsg::Clipboard { text, .. } if text == "copied"),
        )
        .await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn view_only_is_enforced_by_the_relay_and_the_customer_can_grant_and_revoke() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let (_, mut tech, mut cust) = relay.pair(false).await;
        let mv = |x| ClientMsg::Input(InputEvent::MouseMove { x, y: 0 });
        for x in 0..10 {
            tech.tx.send(&mv(x)).await.unwrap();
        }
        tech.tx
            .send(&ClientMsg::Chat("marker".into()))
            .await
            .unwrap();
        let notice = expect_msg(&mut tech, |m| matches!(m, ServerMsg::Notice { .. })).await;
        assert!(
            matches!(
                notice,
                ServerMsg::Notice {
                    code: ErrorCode::InputViewOnly,
                    ..
                }
            ),
            "{notice:?}"
        );
        // Nothing but the marker reaches the customer.
        match cust.rx.recv().await.unwrap().unwrap() {
            ServerMsg::Chat { text, .. } => assert_eq!(text, "marker"),
            other => panic!("input leaked through view-only: {other:?}"),
        }
        cust.tx.send(&ClientMsg::SetControl(true)).await.unwrap();
        expect_msg(&mut tech, |m| *m == ServerMsg::Control { allowed: true }).await;
        tech.tx.send(&mv(42)).await.unwrap();
        expect_msg(&mut cust, |m| {
            *m == ServerMsg::Input(InputEvent::MouseMove { x: 42, y: 0 })
        })
        .await;
        cust.tx.send(&ClientMsg::SetControl(false)).await.unwrap();
        expect_msg(&mut tech, |m| *m == ServerMsg::Control { allowed: false }).await;
        tech.tx.send(&mv(43)).await.unwrap();
        tech.tx
            .send(&ClientMsg::Chat("marker 2".into()))
            .await
            .unwrap();
        let next = expect_msg(&mut cust, |m| !matches!(m, ServerMsg::Control { .. })).await;
        assert!(
            matches!(next, ServerMsg::Chat { ref text, .. } if text == "marker 2"),
            "{next:?}"
        );
        assert!(
            relay
                .metric("assist_relay_input_events_total{result=\"view_only\"}")
                .await
                >= 11.0
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_dropped_side_resumes_within_grace_and_is_refused_after_it() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let (_, tech, mut cust) = relay.pair(true).await;
        let token = tech.resume_token().to_string();
        tech.conn.close(0u32.into(), b"network gone");
        expect_msg(&mut cust, |m| {
            *m == ServerMsg::Peer {
                role: assist_relay::core::Role::Technician,
                state: PeerState::Away,
            }
        })
        .await;
        relay.clock.advance(Duration::from_secs(29));
        let mut tech2 = relay
            .join_as(
                "127.0.0.1:0",
                Hello::Resume {
                    token: token.clone(),
                },
            )
            .await
            .unwrap();
        expect_msg(&mut cust, |m| {
            matches!(
                m,
                ServerMsg::Peer {
                    state: PeerState::Resumed,
                    ..
                }
            )
        })
        .await;
        // The resumed side works as before.
        tech2
            .tx
            .send(&ClientMsg::Chat("back".into()))
            .await
            .unwrap();
        expect_msg(
            &mut cust,
            |m| matches!(m, ServerMsg::Chat { text, .. } if text == "back"),
        )
        .await;
        // The old resume token is spent; the code cannot be reused to come back either.
        assert_eq!(
            refused(relay.join_as("127.0.0.1:0", Hello::Resume { token }).await),
            ErrorCode::ResumeRefused
        );

        // The customer drops and does not come back within the grace period: the technician is told why.
        let cust_token = cust.resume_token().to_string();
        cust.conn.close(0u32.into(), b"gone");
        expect_msg(&mut tech2, |m| {
            matches!(
                m,
                ServerMsg::Peer {
                    state: PeerState::Away,
                    ..
                }
            )
        })
        .await;
        relay.clock.advance(Duration::from_secs(30));
        assert_eq!(closed_with(&tech2).await, ErrorCode::PeerGone);
        let late = relay
            .join_as("127.0.0.1:0", Hello::Resume { token: cust_token })
            .await;
        assert_eq!(refused(late), ErrorCode::SessionNotFound);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn either_side_or_the_operator_ends_the_session() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let (_, tech, cust) = relay.pair(true).await;
        let mut cust = cust;
        cust.tx.send(&ClientMsg::EndSession).await.unwrap();
        assert_eq!(closed_with(&tech).await, ErrorCode::SessionEnded);
        assert_eq!(closed_with(&cust).await, ErrorCode::SessionEnded);

        let (s, tech, cust) = relay.pair(true).await;
        let http = reqwest::Client::new();
        let url = format!("{}/api/v1/assist-sessions/{}", relay.api, s.session_id);
        let got: serde_json::Value = http
            .get(&url)
            .bearer_auth(&relay.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(got["state"], "paired");
        let del = http
            .delete(&url)
            .bearer_auth(&relay.key)
            .send()
            .await
            .unwrap();
        assert_eq!(del.status(), 204);
        assert_eq!(closed_with(&tech).await, ErrorCode::SessionEnded);
        assert_eq!(closed_with(&cust).await, ErrorCode::SessionEnded);
        let gone = http.get(&url).bearer_auth(&relay.key).send().await.unwrap();
        assert_eq!(gone.status(), 404);
        assert_eq!(relay.metric("assist_relay_sessions_active").await, 0.0);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn http_errors_are_json_with_codes() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let http = reqwest::Client::new();
        let post = format!("{}/api/v1/assist-sessions", relay.api);
        for req in [http.post(&post), http.post(&post).bearer_auth("wrong")] {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401);
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized");
        }
        let r = http
            .get(format!("{post}/nothex"))
            .bearer_auth(&relay.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = http
            .get(format!("{post}/{}", "ab".repeat(16)))
            .bearer_auth(&relay.key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
            "session_not_found"
        );
        let r = http
            .get(format!("{}/nope", relay.api))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        assert!(r.json::<serde_json::Value>().await.unwrap()["error"]["message"].is_string());
        assert_eq!(
            http.get(format!("{}/readyz", relay.api))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let metrics = http
            .get(&relay.metrics)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for name in [
            "assist_relay_sessions_active",
            "assist_relay_forwarding_latency_seconds_bucket",
            "assist_relay_codes_issued_total",
            "assist_relay_frames_forwarded_total",
            "assist_relay_connections_active",
        ] {
            assert!(metrics.contains(name), "{name} missing from /metrics");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn shutdown_tells_connected_peers_going_away_and_returns_within_grace() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| {
            l.server.shutdown_grace = Some(assist_relay::config::Dur(Duration::from_secs(3)))
        })
        .await;
        let (_, tech, cust) = relay.pair(true).await;
        let started = std::time::Instant::now();
        relay.shutdown.cancel();
        // While sessions drain, the API still answers, and /readyz says the relay is going away.
        if let Ok(r) = reqwest::get(format!("{}/readyz", relay.api)).await {
            assert_eq!(r.status(), 503);
            let v: serde_json::Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "going_away");
        }
        assert_eq!(closed_with(&tech).await, ErrorCode::GoingAway);
        assert_eq!(closed_with(&cust).await, ErrorCode::GoingAway);
        // Nothing new is accepted: a HELLO is refused (going_away, or the handshake itself once the
        // endpoint refuses new connections), and so is a new session.
        let s = Hello::Technician {
            token: "x.y".into(),
        };
        match relay.join_as("127.0.0.1:0", s).await {
            Ok(_) => panic!("joined during shutdown"),
            Err(e) => assert!(
                e.code() == Some(ErrorCode::GoingAway) || e.to_string().contains("refused"),
                "{e}"
            ),
        }
        let created = reqwest::Client::new()
            .post(format!("{}/api/v1/assist-sessions", relay.api))
            .bearer_auth(&relay.key)
            .send()
            .await;
        if let Ok(r) = created {
            assert_eq!(r.status(), 503);
        }
        relay.task.await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "shutdown took {:?}",
            started.elapsed()
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn sessions_per_address_are_limited_before_a_code_is_spent() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| l.limits.max_sessions_per_address = Some(2)).await;
        // Both sides of a session behind one address count once: two full sessions fit.
        let (_, _t1, _c1) = relay.pair(true).await;
        let (_, _t2, _c2) = relay.pair(true).await;
        let s3 = relay.create().await;
        let tech3 = Hello::Technician {
            token: s3.technician_token.clone(),
        };
        assert_eq!(
            refused(relay.join_as("127.0.0.1:0", tech3.clone()).await),
            ErrorCode::TooManySessions
        );
        // The customer is refused before its code is looked at, so the code is not spent ...
        assert_eq!(
            refused(relay.customer(&s3.code, true).await),
            ErrorCode::TooManySessions
        );
        // ... and another address is not affected: it joins with the same token and code.
        let _t3 = relay
            .join_as("127.0.0.3:0", tech3)
            .await
            .expect("other address");
        let cust3 = Hello::Customer {
            code: s3.code.clone(),
            allow_control: false,
        };
        let _c3 = relay
            .join_as("127.0.0.4:0", cust3)
            .await
            .expect("the refused code is still valid");
        assert!(
            relay
                .metric("assist_relay_connections_closed_total{reason=\"too_many_sessions\"}")
                .await
                >= 2.0
        );
    })
    .await
    .unwrap();
}
