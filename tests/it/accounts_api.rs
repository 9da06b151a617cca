//! Accounts over real HTTP against a real server and SQLite file: bootstrap, login by employee id or e-mail,
//! first-login enforcement, logout, limits, and administration.

use crate::common;

use common::api::code_of;
use common::api::{self, ADMIN_PASSWORD, PASSWORD};
use common::*;
use serde_json::json;

#[tokio::test]
async fn first_login_forces_a_password_change_and_a_phone_binding() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let a = api::session(&relay.api, "admin", ADMIN_PASSWORD).await;
        assert_eq!(a.user["must_change_password"], true);
        // Every other endpoint answers setup_required until both steps are done.
        let (s, v) = a.get("/api/v1/users").await;
        assert_eq!((s, code_of(&v)), (403, Some("setup_required")));
        assert!(v["error"]["message"].as_str().unwrap().contains("password"));
        let change = |old: &str, new: &str| json!({ "old_password": old, "new_password": new });
        let (s, v) = a
            .post("/api/v1/auth/password", change("wrong-one-here", PASSWORD))
            .await;
        assert_eq!((s, code_of(&v)), (403, Some("wrong_password")));
        let (s, v) = a
            .post("/api/v1/auth/password", change(ADMIN_PASSWORD, "short"))
            .await;
        assert_eq!((s, code_of(&v)), (422, Some("weak_password")));
        let (s, _) = a
            .post("/api/v1/auth/password", change(ADMIN_PASSWORD, PASSWORD))
            .await;
        assert_eq!(s, 204);
        let (s, v) = a.get("/api/v1/users").await;
        assert_eq!(s, 403);
        assert!(
            v["error"]["message"].as_str().unwrap().contains("phone"),
            "{v}"
        );
        // A wrong code counts; the right one (read from the outbox) completes the setup.
        let (s, _) = a
            .post(
                "/api/v1/auth/phone",
                json!({ "phone": "+86 138 0000 0000" }),
            )
            .await;
        assert_eq!(s, 202);
        let (s, v) = a
            .post("/api/v1/auth/phone/verify", json!({ "code": "000000x" }))
            .await;
        assert_eq!((s, code_of(&v)), (422, Some("bad_verification_code")));
        let (_, msgs) = a.get(&format!("/api/v1/outbox?user_id={}", a.id())).await;
        let body = msgs[0]["body"].as_str().unwrap();
        let code = body.split_whitespace().find(|w| w.len() == 6).unwrap();
        let (s, _) = a
            .post("/api/v1/auth/phone/verify", json!({ "code": code }))
            .await;
        assert_eq!(s, 204);
        let (s, v) = a.get("/api/v1/users").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v[0]["phone_verified"], true);
        // Codes cost messages: a burst of 3 per user, then the sender is spared.
        for _ in 0..2 {
            let (s, _) = a
                .post(
                    "/api/v1/auth/phone",
                    json!({ "phone": "+86 139 0000 0000" }),
                )
                .await;
            assert_eq!(s, 202);
        }
        let (s, v) = a
            .post(
                "/api/v1/auth/phone",
                json!({ "phone": "+86 139 0000 0000" }),
            )
            .await;
        assert_eq!((s, code_of(&v)), (429, Some("rate_limited")));
        // The old password no longer works; the new one does, by employee id.
        assert_eq!(api::login(&relay.api, "admin", ADMIN_PASSWORD).await.0, 401);
        assert_eq!(api::login(&relay.api, "admin", PASSWORD).await.0, 200);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn login_by_employee_id_or_email_logout_and_disable() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let tech = api::user(&admin, "t100", "technician").await;
        // By e-mail, in any case.
        let (s, v) = api::login(&relay.api, "T100@Example.com", PASSWORD).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["setup_required"], serde_json::Value::Null);
        // Wrong password and unknown user look the same.
        let (s1, v1) = api::login(&relay.api, "t100", "wrong password!").await;
        let (s2, v2) = api::login(&relay.api, "nobody", "wrong password!").await;
        assert_eq!((s1, code_of(&v1)), (401, Some("bad_credentials")));
        assert_eq!((s2, code_of(&v2)), (401, Some("bad_credentials")));
        assert_eq!(v1["error"]["message"], v2["error"]["message"]);
        // Logout revokes the token.
        let (s, _) = tech.post("/api/v1/auth/logout", json!({})).await;
        assert_eq!(s, 204);
        let (s, v) = tech.get("/api/v1/auth/me").await;
        assert_eq!((s, code_of(&v)), (401, Some("unauthorized")));
        // A disabled user cannot log in, and its sessions end.
        let t2 = api::session(&relay.api, "t100", PASSWORD).await;
        let (s, _) = admin
            .patch(&format!("/api/v1/users/{}", t2.id()), json!({ "disabled": true }))
            .await;
        assert_eq!(s, 200);
        assert_eq!(t2.get("/api/v1/auth/me").await.0, 401);
        assert_eq!(api::login(&relay.api, "t100", PASSWORD).await.0, 401);
        // Reset password: a one-time password that must be changed.
        admin
            .patch(&format!("/api/v1/users/{}", t2.id()), json!({ "disabled": false }))
            .await;
        let (s, v) = admin
            .post(&format!("/api/v1/users/{}/reset-password", t2.id()), json!({}))
            .await;
        assert_eq!(s, 200);
        let otp = v["one_time_password"].as_str().unwrap();
        let (s, v) = api::login(&relay.api, "t100", otp).await;
        assert_eq!(s, 200);
        assert!(v["setup_required"].as_str().unwrap().contains("password"));
        // Duplicates and bad fields.
        let (s, v) = admin
            .post(
                "/api/v1/users",
                json!({ "employee_id": "t100", "name": "x", "role": "technician", "password": "long enough pw" }),
            )
            .await;
        assert_eq!((s, code_of(&v)), (409, Some("conflict")));
        let (s, v) = admin
            .post("/api/v1/users", json!({ "employee_id": "x", "name": "x", "role": "wizard", "password": "long enough pw" }))
            .await;
        assert_eq!((s, code_of(&v)), (422, Some("validation_failed")));
        let (s, v) = admin
            .post("/api/v1/users", json!({ "employee_id": "T100", "name": "x", "role": "technician", "password": "long enough pw" }))
            .await;
        assert_eq!((s, code_of(&v)), (409, Some("conflict")), "employee ids differ in more than case");
        for bad in [json!({ "name": "" }), json!({ "name": "a\u{0}b" }), json!({ "department": "d".repeat(201) })] {
            let (s, v) = admin.patch(&format!("/api/v1/users/{}", t2.id()), bad).await;
            assert_eq!((s, code_of(&v)), (422, Some("validation_failed")));
        }
        // Non-administrators cannot create users.
        let sup = api::user(&admin, "s1", "supervisor").await;
        let (s, v) = sup
            .post("/api/v1/users", json!({ "employee_id": "x2", "name": "x", "role": "administrator", "password": "long enough pw" }))
            .await;
        assert_eq!((s, code_of(&v)), (403, Some("forbidden")));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_account() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| {
            l.accounts.auth_failure_burst = Some(3);
            l.accounts.auth_failures_per_min = Some(1.0);
        })
        .await;
        for _ in 0..3 {
            assert_eq!(
                api::login(&relay.api, "admin", "wrong password!").await.0,
                401
            );
        }
        let (s, v) = api::login(&relay.api, "admin", ADMIN_PASSWORD).await;
        assert_eq!((s, code_of(&v)), (429, Some("rate_limited")));
        assert!(v["error"]["retry_after_secs"].as_u64().unwrap() >= 1);
        // Time heals (the relay's clock is injected).
        relay.clock.advance(std::time::Duration::from_secs(60));
        assert_eq!(api::login(&relay.api, "admin", ADMIN_PASSWORD).await.0, 200);
    })
    .await
    .unwrap();
}

/// `serve --no-relay`: the ticket API alone; remote assistance answers 503 `relay_disabled`.
#[tokio::test]
async fn the_api_runs_without_the_relay() {
    tokio::time::timeout(TEST_LIMIT, async {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = assist_relay::config::Config::for_tests(dir.path());
        cfg.server.relay_enabled = false;
        cfg.accounts.bootstrap_password = ADMIN_PASSWORD.into();
        let server = assist_relay::server::Server::load(cfg).await.unwrap();
        assert_eq!(server.quic_addr(), None);
        let base = format!("http://{}", server.http_addr());
        let key = server.operator_key().to_string();
        let shutdown = server.shutdown_token();
        let task = tokio::spawn(server.run());
        let admin = api::session(&base, "admin", ADMIN_PASSWORD).await;
        assert_eq!(admin.user["role"], "administrator");
        let r = reqwest::Client::new()
            .post(format!("{base}/api/v1/assist-sessions"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(code_of(&v), Some("relay_disabled"));
        shutdown.cancel();
        task.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

/// Three idle connections fill the limit under test; a fourth is closed at once without an answer; once
/// they go, requests are served again.
async fn a_fourth_connection_is_refused(relay: &TestRelay) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = relay.api.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), extra.read(&mut buf))
        .await
        .expect("closed promptly")
        .unwrap_or(0);
    assert_eq!(n, 0, "the connection over the limit gets no answer");
    drop(held);
    drop(extra);
    let mut ok = false;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("{}/healthz", relay.api)).await {
            ok = r.status() == 200;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(ok, "served again once the connections are gone");
}

/// A client that never finishes its request header is cut off after `limits.http_header_timeout`; one
/// address cannot hold more than `limits.max_http_connections_per_address` connections, nor all addresses
/// together more than `limits.max_http_connections`.
#[tokio::test]
async fn slow_or_greedy_http_clients_cannot_exhaust_the_api() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| {
            l.limits.http_header_timeout =
                Some(assist_relay::config::Dur(std::time::Duration::from_secs(1)));
            l.limits.max_http_connections_per_address = Some(3);
        })
        .await;
        let addr = relay.api.trim_start_matches("http://").to_string();
        // An unfinished header: the server closes the connection without an answer.
        let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
        slow.write_all(b"GET /api/v1/tickets HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), slow.read(&mut buf))
            .await
            .expect("cut off within the header timeout");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
        a_fourth_connection_is_refused(&relay).await;
        let relay = TestRelay::start_with(|l| l.limits.max_http_connections = Some(3)).await;
        a_fourth_connection_is_refused(&relay).await;
    })
    .await
    .unwrap();
}

/// A verification code is void after `accounts.verification_attempts` wrong entries and after
/// `accounts.verification_ttl`; a new one can be requested.
#[tokio::test]
async fn verification_codes_expire_and_wear_out() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| l.accounts.verification_attempts = Some(2)).await;
        let a = api::session(&relay.api, "admin", ADMIN_PASSWORD).await;
        let code = |a: &api::Api| {
            let a = a.clone();
            async move {
                let (_, msgs) = a.get(&format!("/api/v1/outbox?user_id={}", a.id())).await;
                let body = msgs[0]["body"].as_str().unwrap().to_string();
                body.split_whitespace()
                    .find(|w| w.len() == 6)
                    .unwrap()
                    .to_string()
            }
        };
        let verify = |c: String| a.post("/api/v1/auth/phone/verify", json!({ "code": c }));
        a.post("/api/v1/auth/phone", json!({ "phone": "13800000000" }))
            .await;
        let right = code(&a).await;
        for _ in 0..2 {
            assert_eq!(verify("000000x".into()).await.0, 422);
        }
        let (s, v) = verify(right).await;
        assert_eq!((s, code_of(&v)), (422, Some("bad_verification_code")));
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("too many wrong codes"),
            "{v}"
        );
        // A new code, left past its lifetime (10 minutes), is refused as expired.
        a.post("/api/v1/auth/phone", json!({ "phone": "13800000000" }))
            .await;
        let right = code(&a).await;
        relay.clock.advance(std::time::Duration::from_secs(601));
        let (s, v) = verify(right).await;
        assert_eq!((s, code_of(&v)), (422, Some("bad_verification_code")));
        assert!(
            v["error"]["message"].as_str().unwrap().contains("expired"),
            "{v}"
        );
        // A fresh one works.
        a.post("/api/v1/auth/phone", json!({ "phone": "13800000000" }))
            .await;
        let right = code(&a).await;
        assert_eq!(verify(right).await.0, 204);
    })
    .await
    .unwrap();
}
