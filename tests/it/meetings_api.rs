//! Meetings through the HTTP API on a real server (SQLite, relay on loopback, manual clock): scheduling and
//! its rules, who sees, joins, records, writes minutes and ends a meeting, and that the tokens and codes the
//! API hands out enter the relay with the right roles.

use crate::common;

use std::time::{Duration, SystemTime};

use assist_relay::clock::Clock;
use assist_relay::protocol::message::MeetingRole;
use assist_relay::protocol::{ErrorCode, Hello};
use common::api::{self, code_of, Api};
use common::meeting::{id_of, meeting, rfc3339, welcomed_as};
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn technicians_schedule_meetings_within_the_rules() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let t2 = api::user(&admin, "t2", "technician").await;
        let c1 = api::user(&admin, "c1", "customer").await;

        let m = meeting(
            &t1,
            json!({ "topic": "  打印机 rollout  ", "invitees": [t2.id(), t2.id(), t1.id()] }),
        )
        .await;
        let code = m["code"].as_str().unwrap();
        assert_eq!(code.len(), 12, "{m}");
        assert!(code.bytes().all(|b| b.is_ascii_digit()), "{m}");
        assert_eq!(m["code_display"].as_str().unwrap().replace(' ', ""), code);
        assert_eq!(m["meeting_id"].as_str().unwrap().len(), 32);
        assert!(!m["host_token"].as_str().unwrap().is_empty());
        assert_eq!(m["topic"], "打印机 rollout");
        assert_eq!(m["host_id"], t1.id());
        assert_eq!(m["state"], "live");
        // Duplicates and the host themself are dropped.
        assert_eq!(m["invitees"], json!([t2.id()]));
        assert_eq!(m["ticket_id"], Value::Null);
        assert_eq!(m["recording"], Value::Null);
        assert_eq!(m["minutes_article_id"], Value::Null);
        assert_eq!(m["relay"]["alpn"], "assist-relay/1");
        // The default length is meeting.default_duration (an hour).
        let starts = humantime::parse_rfc3339(m["starts_at"].as_str().unwrap()).unwrap();
        let ends = humantime::parse_rfc3339(m["ends_at"].as_str().unwrap()).unwrap();
        assert_eq!(ends.duration_since(starts).unwrap(), Duration::from_secs(3600));
        assert_eq!(starts, {
            let w = relay.clock.wall();
            let ms = w.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64;
            SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
        });

        // Customers do not schedule meetings; nobody does without a login.
        let (s, v) = c1.post("/api/v1/meetings", json!({ "topic": "x" })).await;
        assert_eq!((s, code_of(&v)), (403, Some("forbidden")), "{v}");
        let anon = Api {
            token: String::new(),
            ..t1.clone()
        };
        let (s, v) = anon.post("/api/v1/meetings", json!({ "topic": "x" })).await;
        assert_eq!((s, code_of(&v)), (401, Some("unauthorized")), "{v}");

        let now = relay.clock.wall();
        let refused = [
            json!({ "topic": "" }),
            json!({ "topic": "   " }),
            json!({ "topic": "长".repeat(201) }),
            json!({}),
            json!({ "topic": "x", "duration_minutes": 0 }),
            json!({ "topic": "x", "duration_minutes": 721 }),
            json!({ "topic": "x", "duration_minutes": -5 }),
            json!({ "topic": "x", "duration_minutes": "ten" }),
            json!({ "topic": "x", "starts_at": "tomorrow at nine" }),
            json!({ "topic": "x", "starts_at": rfc3339(now - Duration::from_secs(3600)) }),
            json!({ "topic": "x", "starts_at": rfc3339(now + Duration::from_secs(91 * 86_400)) }),
            json!({ "topic": "x", "invitees": (0..201).collect::<Vec<i64>>() }),
            json!({ "topic": "x", "colour": "blue" }),
        ];
        for body in refused {
            let (s, v) = t1.post("/api/v1/meetings", body.clone()).await;
            assert_eq!((s, code_of(&v)), (422, Some("validation_failed")), "{body}: {v}");
        }
        // An unknown invitee and a disabled one are named.
        let (s, v) = t1
            .post("/api/v1/meetings", json!({ "topic": "x", "invitees": [t2.id(), 9999] }))
            .await;
        assert_eq!((s, code_of(&v)), (422, Some("validation_failed")), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("9999"), "{v}");
        let (s, v) = admin
            .patch(&format!("/api/v1/users/{}", c1.id()), json!({ "disabled": true }))
            .await;
        assert_eq!(s, 200, "{v}");
        let (s, v) = t1
            .post("/api/v1/meetings", json!({ "topic": "x", "invitees": [c1.id()] }))
            .await;
        assert_eq!(s, 422, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(&c1.id().to_string()), "{v}");
        // Malformed JSON is 400; no JSON content type 415.
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/meetings", relay.api))
            .bearer_auth(&t1.token)
            .header("content-type", "application/json")
            .body("{\"topic\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/meetings", relay.api))
            .bearer_auth(&t1.token)
            .body("{\"topic\": \"x\"}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 415);

        // A start a few minutes past counts as now; one ahead is kept, with any offset.
        let m = meeting(
            &t1,
            json!({ "topic": "late", "starts_at": rfc3339(now - Duration::from_secs(120)), "duration_minutes": 15 }),
        )
        .await;
        assert_eq!(m["state"], "live");
        let ahead = time::OffsetDateTime::from(now + Duration::from_secs(7200))
            .to_offset(time::macros::offset!(+8));
        let ahead = ahead
            .replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        assert!(ahead.ends_with("+08:00"), "{ahead}");
        let m = meeting(&t1, json!({ "topic": "later", "starts_at": ahead, "duration_minutes": 30 })).await;
        assert_eq!(m["state"], "scheduled");
        assert_eq!(
            humantime::parse_rfc3339(m["starts_at"].as_str().unwrap()).unwrap(),
            SystemTime::from(time::OffsetDateTime::parse(&ahead, &time::format_description::well_known::Rfc3339).unwrap())
        );

        // A meeting about a ticket nobody has is 404.
        let (s, v) = t1
            .post("/api/v1/meetings", json!({ "topic": "x", "ticket_id": 9999 }))
            .await;
        assert_eq!((s, code_of(&v)), (404, Some("not_found")), "{v}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn hosts_invitees_and_supervisors_see_a_meeting_and_staff_get_join_tokens() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let t2 = api::user(&admin, "t2", "technician").await;
        let t3 = api::user(&admin, "t3", "technician").await;
        let s1 = api::user(&admin, "s1", "supervisor").await;
        let c1 = api::user(&admin, "c1", "customer").await;
        let c2 = api::user(&admin, "c2", "customer").await;

        let m = meeting(
            &t1,
            json!({ "topic": "Quarterly review", "invitees": [t2.id(), c1.id()] }),
        )
        .await;
        let id = id_of(&m);
        let path = format!("/api/v1/meetings/{id}");
        for who in [&t1, &t2, &c1, &s1, &admin] {
            let (s, v) = who.get(&path).await;
            assert_eq!(s, 200, "{}: {v}", who.user["employee_id"]);
            assert_eq!(v["meeting_id"], id.as_str());
            assert_eq!(v["state"], "live");
            // An invited customer learns the code to join with.
            assert_eq!(v["code"], m["code"]);
            assert_eq!(v["code_display"], m["code_display"]);
        }
        for who in [&t3, &c2] {
            let (s, v) = who.get(&path).await;
            assert_eq!((s, code_of(&v)), (404, Some("not_found")), "{v}");
        }
        // Upper-case hex names the same meeting; anything else is a bad request.
        let (s, _) = t1
            .get(&format!("/api/v1/meetings/{}", id.to_uppercase()))
            .await;
        assert_eq!(s, 200);
        let (s, v) = t1.get("/api/v1/meetings/not-a-meeting").await;
        assert_eq!((s, code_of(&v)), (400, Some("bad_request")), "{v}");
        let (s, v) = t1
            .get(&format!("/api/v1/meetings/{}", "0".repeat(32)))
            .await;
        assert_eq!((s, code_of(&v)), (404, Some("not_found")), "{v}");

        // Lists: one's own (hosted or invited), or all for supervisors; newest first.
        relay.clock.advance(Duration::from_millis(1));
        let other = meeting(&t3, json!({ "topic": "Other" })).await;
        let ids = |v: &Value| -> Vec<String> {
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["meeting_id"].as_str().unwrap().to_string())
                .collect()
        };
        for (who, want) in [
            (&t1, vec![id.clone()]),
            (&c1, vec![id.clone()]),
            (&t3, vec![id_of(&other)]),
            (&c2, vec![]),
            (&s1, vec![id_of(&other), id.clone()]),
        ] {
            let (s, v) = who.get("/api/v1/meetings").await;
            assert_eq!(s, 200, "{v}");
            assert_eq!(ids(&v), want, "{}", who.user["employee_id"]);
            assert_eq!(v["total"], want.len());
        }
        let (s, v) = admin.get("/api/v1/meetings?page=2&per_page=1").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!((ids(&v), v["total"].as_i64()), (vec![id.clone()], Some(2)));
        for bad in [
            "page=0",
            "per_page=0",
            "page=-1",
            "per_page=x",
            "colour=blue",
        ] {
            let (s, v) = admin.get(&format!("/api/v1/meetings?{bad}")).await;
            assert_eq!(
                (s, code_of(&v)),
                (422, Some("validation_failed")),
                "{bad}: {v}"
            );
        }

        // Invitations reached the invitees (notifications, and the outbox).
        let (s, v) = t2.get("/api/v1/notifications").await;
        assert_eq!(s, 200);
        let n = &v[0];
        assert_eq!(n["kind"], "meeting_invitation", "{v}");
        let body = n["body"].as_str().unwrap();
        assert!(
            body.contains("Quarterly review") && body.contains(&id),
            "{body}"
        );
        assert!(body.contains(m["code_display"].as_str().unwrap()), "{body}");
        let (_, v) = admin
            .get(&format!("/api/v1/outbox?user_id={}", c1.id()))
            .await;
        assert!(
            v.as_array()
                .unwrap()
                .iter()
                .any(|o| o["body"].as_str().unwrap().contains(&id)),
            "{v}"
        );
        let (_, v) = t3.get("/api/v1/notifications").await;
        assert!(v.as_array().unwrap().is_empty(), "{v}");

        // Join tokens: the host as host, other staff who may see it as presenters; customers use the code.
        let token_path = format!("{path}/join-token");
        for (who, role) in [
            (&t1, "host"),
            (&t2, "presenter"),
            (&s1, "presenter"),
            (&admin, "presenter"),
        ] {
            let (s, v) = who.post(&token_path, json!({})).await;
            assert_eq!(s, 200, "{v}");
            assert_eq!(v["role"], role);
            assert!(!v["token"].as_str().unwrap().is_empty());
            assert_eq!(v["expires_at"], m["ends_at"]);
            assert_eq!(v["relay"]["cert_sha256"], m["relay"]["cert_sha256"]);
        }
        let (s, v) = c1.post(&token_path, json!({})).await;
        assert_eq!((s, code_of(&v)), (403, Some("forbidden")), "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains("code"),
            "{v}"
        );
        for who in [&t3, &c2] {
            let (s, v) = who.post(&token_path, json!({})).await;
            assert_eq!((s, code_of(&v)), (404, Some("not_found")), "{v}");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn tokens_and_codes_from_the_api_enter_the_relay() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let t2 = api::user(&admin, "t2", "technician").await;
        let m = meeting(&t1, json!({ "topic": "Live", "invitees": [t2.id()] })).await;

        let host = relay
            .with_token(m["host_token"].as_str().unwrap(), "Host")
            .await;
        assert_eq!(welcomed_as(&host), MeetingRole::Host);

        let (s, v) = t2
            .post(
                &format!("/api/v1/meetings/{}/join-token", id_of(&m)),
                json!({}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let presenter = relay
            .with_token(v["token"].as_str().unwrap(), "Presenter")
            .await;
        assert_eq!(welcomed_as(&presenter), MeetingRole::Presenter);

        let guest = relay
            .join_as(
                "127.0.0.1:0",
                Hello::MeetingCode {
                    code: m["code_display"].as_str().unwrap().to_string(),
                    name: "Guest".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(welcomed_as(&guest), MeetingRole::Participant);
        // The code is multi-use within the window.
        let guest2 = relay
            .join_as(
                "127.0.0.1:0",
                Hello::MeetingCode {
                    code: m["code"].as_str().unwrap().to_string(),
                    name: "Guest 2".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(welcomed_as(&guest2), MeetingRole::Participant);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_scheduled_meeting_opens_at_its_start() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let starts = relay.clock.wall() + Duration::from_secs(3600);
        let m = meeting(
            &t1,
            json!({ "topic": "Tomorrow-ish", "starts_at": rfc3339(starts), "duration_minutes": 30 }),
        )
        .await;
        let path = format!("/api/v1/meetings/{}", id_of(&m));
        assert_eq!(m["state"], "scheduled");
        let hello = || Hello::MeetingCode {
            code: m["code"].as_str().unwrap().to_string(),
            name: "Early".into(),
        };
        assert_eq!(
            refused(relay.join_as("127.0.0.1:0", hello()).await),
            ErrorCode::MeetingNotStarted
        );
        // Staff may still get their tokens before the start.
        let (s, v) = t1.post(&format!("{path}/join-token"), json!({})).await;
        assert_eq!((s, v["role"].as_str()), (200, Some("host")), "{v}");

        relay.clock.advance(Duration::from_secs(3600));
        let (s, v) = t1.get(&path).await;
        assert_eq!((s, v["state"].as_str()), (200, Some("live")), "{v}");
        let guest = relay.join_as("127.0.0.1:0", hello()).await.unwrap();
        assert_eq!(welcomed_as(&guest), MeetingRole::Participant);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_meeting_about_a_ticket_is_written_to_its_records() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let c1 = api::user(&admin, "c1", "customer").await;
        let (s, t) = c1
            .post(
                "/api/v1/tickets",
                json!({ "title": "VPN drops", "kind": "software", "priority": "medium" }),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        let tid = t["id"].as_i64().unwrap();
        let m = meeting(
            &t1,
            json!({ "topic": "VPN drops: walkthrough", "ticket_id": tid, "invitees": [c1.id()] }),
        )
        .await;
        assert_eq!(m["ticket_id"], tid);
        let (s, records) = c1.get(&format!("/api/v1/tickets/{tid}/records")).await;
        assert_eq!(s, 200, "{records}");
        let r = records
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"] == "meeting")
            .unwrap_or_else(|| panic!("no meeting record: {records}"));
        let detail = r["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("meeting {} scheduled", id_of(&m))),
            "{detail}"
        );
        assert!(detail.contains("t1"), "{detail}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn only_administrators_record_meetings() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let s1 = api::user(&admin, "s1", "supervisor").await;
        let c1 = api::user(&admin, "c1", "customer").await;
        let m = meeting(
            &t1,
            json!({ "topic": "Not on tape", "invitees": [c1.id()] }),
        )
        .await;
        let path = format!("/api/v1/meetings/{}/recording", id_of(&m));
        // Not the host, not a supervisor, not an invited customer: only an administrator.
        for who in [&t1, &s1, &c1] {
            for active in [true, false] {
                let (s, v) = who.put(&path, json!({ "active": active })).await;
                assert_eq!((s, code_of(&v)), (403, Some("forbidden")), "{v}");
            }
        }
        let (s, v) = admin.put(&path, json!({ "on": true })).await;
        assert_eq!((s, code_of(&v)), (422, Some("validation_failed")), "{v}");
        // Stopping a recording that never ran changes nothing.
        let (s, v) = admin.put(&path, json!({ "active": false })).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v, json!({ "active": false, "dir": null }));
        let (s, v) = admin
            .put(
                &format!("/api/v1/meetings/{}/recording", "0".repeat(32)),
                json!({ "active": true }),
            )
            .await;
        assert_eq!((s, code_of(&v)), (404, Some("not_found")), "{v}");
        let (s, _) = t1.delete(&format!("/api/v1/meetings/{}", id_of(&m))).await;
        assert_eq!(s, 204);
        let (s, v) = admin.put(&path, json!({ "active": true })).await;
        assert_eq!((s, code_of(&v)), (404, Some("not_found")), "{v}");
    })
    .await
    .unwrap();
}

/// Needs the relay's recorder: with the placeholder recorder the relay refuses (409 `recording_refused`).
#[tokio::test]
async fn an_administrator_records_a_meeting_and_the_minutes_link_it() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let m = meeting(&t1, json!({ "topic": "On tape" })).await;
        let id = id_of(&m);
        let path = format!("/api/v1/meetings/{id}/recording");

        let (s, v) = admin.put(&path, json!({ "active": true })).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["active"], true);
        let dir = v["dir"].as_str().unwrap().to_string();
        assert!(
            !dir.is_empty() && !std::path::Path::new(&dir).is_absolute(),
            "{v}"
        );
        assert!(relay.data_dir().join(&dir).is_dir(), "{dir}");
        let (_, g) = t1.get(&format!("/api/v1/meetings/{id}")).await;
        assert_eq!(g["recording"], json!({ "active": true, "dir": dir }), "{g}");
        // Starting again is harmless.
        let (s, v) = admin.put(&path, json!({ "active": true })).await;
        assert_eq!((s, v["active"].as_bool()), (200, Some(true)), "{v}");

        let (s, v) = admin.put(&path, json!({ "active": false })).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (v["active"].as_bool(), v["dir"].as_str()),
            (Some(false), Some(dir.as_str()))
        );
        assert!(v["files"].is_array() && v["bytes"].is_u64(), "{v}");
        let (_, g) = t1.get(&format!("/api/v1/meetings/{id}")).await;
        assert_eq!(
            g["recording"],
            json!({ "active": false, "dir": dir }),
            "{g}"
        );

        let (s, v) = t1
            .post(
                &format!("/api/v1/meetings/{id}/minutes"),
                json!({ "body": "Recorded." }),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let (_, a) = t1
            .get(&format!("/api/v1/kb/articles/{}", v["article_id"]))
            .await;
        assert!(a["body"].as_str().unwrap().contains(&dir), "{a}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_host_or_a_supervisor_ends_a_meeting() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let t2 = api::user(&admin, "t2", "technician").await;
        let t3 = api::user(&admin, "t3", "technician").await;
        let s1 = api::user(&admin, "s1", "supervisor").await;
        let m = meeting(&t1, json!({ "topic": "Short", "invitees": [t2.id()] })).await;
        let id = id_of(&m);
        let path = format!("/api/v1/meetings/{id}");
        let host = relay
            .with_token(m["host_token"].as_str().unwrap(), "Host")
            .await;

        let (s, v) = t2.delete(&path).await;
        assert_eq!((s, code_of(&v)), (403, Some("forbidden")), "{v}");
        let (s, v) = t3.delete(&path).await;
        assert_eq!((s, code_of(&v)), (404, Some("not_found")), "{v}");
        let (s, v) = t1.delete(&path).await;
        assert_eq!((s, v), (204, Value::Null));
        // The connected host is told it ended.
        assert_eq!(closed_with(&host).await, ErrorCode::SessionEnded);

        let (s, v) = t1.get(&path).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["state"], "ended");
        assert!(v["ended_at"].is_string(), "{v}");
        let (s, v) = t2.post(&format!("{path}/join-token"), json!({})).await;
        assert_eq!((s, code_of(&v)), (404, Some("not_found")), "{v}");
        let (s, v) = t1.delete(&path).await;
        assert_eq!((s, code_of(&v)), (404, Some("not_found")), "{v}");
        // The code no longer enters.
        let r = relay
            .join_as(
                "127.0.0.1:0",
                Hello::MeetingCode {
                    code: m["code"].as_str().unwrap().to_string(),
                    name: "Late".into(),
                },
            )
            .await;
        assert!(r.is_err(), "a guest entered an ended meeting");

        // A supervisor ends someone else's meeting.
        let m2 = meeting(&t3, json!({ "topic": "Runaway" })).await;
        let (s, _) = s1.delete(&format!("/api/v1/meetings/{}", id_of(&m2))).await;
        assert_eq!(s, 204);
        let (_, v) = t3.get(&format!("/api/v1/meetings/{}", id_of(&m2))).await;
        assert_eq!(v["state"], "ended");

        // A meeting whose window closed is ended too (and says when).
        let m3 = meeting(&t1, json!({ "topic": "Brief", "duration_minutes": 1 })).await;
        relay.clock.advance(Duration::from_secs(61));
        let p3 = format!("/api/v1/meetings/{}", id_of(&m3));
        let mut st = Value::Null;
        for _ in 0..100 {
            st = t1.get(&p3).await.1;
            if st["state"] == "ended" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(st["state"], "ended", "{st}");
        assert_eq!(st["ended_at"], m3["ends_at"], "{st}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn the_openapi_document_describes_meetings() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", relay.api))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let paths = &doc["paths"];
        for (path, method, statuses) in [
            (
                "/api/v1/meetings",
                "post",
                &["201", "401", "403", "404", "413", "415", "422", "503"][..],
            ),
            ("/api/v1/meetings", "get", &["200", "401", "422"][..]),
            ("/api/v1/meetings/{id}", "get", &["200", "400", "404"][..]),
            (
                "/api/v1/meetings/{id}",
                "delete",
                &["204", "403", "404"][..],
            ),
            (
                "/api/v1/meetings/{id}/join-token",
                "post",
                &["200", "403", "404"][..],
            ),
            (
                "/api/v1/meetings/{id}/recording",
                "put",
                &["200", "403", "404", "409", "422"][..],
            ),
            (
                "/api/v1/meetings/{id}/minutes",
                "post",
                &["201", "403", "404", "409", "422"][..],
            ),
        ] {
            let op = &paths[path][method];
            assert!(op.is_object(), "{method} {path} missing");
            for s in statuses {
                assert!(op["responses"][*s].is_object(), "{method} {path}: no {s}");
            }
        }
    })
    .await
    .unwrap();
}

/// Guards against a meeting's end being dated when its record is next read: ended by its host over the
/// relay, the record says so at once, with the time it ended.
#[tokio::test]
async fn a_meeting_ended_over_the_relay_is_dated_when_it_ended() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let m = meeting(&t1, json!({ "topic": "Done" })).await;
        let id = id_of(&m);
        let mut host = relay
            .with_token(m["host_token"].as_str().unwrap(), "Host")
            .await;
        let ended = relay.clock.wall();
        host.tx
            .send(&assist_relay::protocol::ClientMsg::EndSession)
            .await
            .unwrap();
        assert_eq!(closed_with(&host).await, ErrorCode::SessionEnded);
        // On the record without anyone reading it through the API.
        let db = relay.data_dir().join("assist-relay.db");
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
            .await
            .unwrap();
        let mut at = None;
        for _ in 0..250 {
            let row: (Option<String>,) =
                sqlx::query_as("SELECT ended_at FROM meetings WHERE id = $1")
                    .bind(&id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            at = row.0;
            if at.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let want = assist_relay::store::timestamp(ended);
        assert_eq!(at.as_deref(), Some(want.as_str()));
        // Read ten minutes later, it still says when it ended.
        relay.clock.advance(Duration::from_secs(600));
        let (s, v) = t1.get(&format!("/api/v1/meetings/{id}")).await;
        assert_eq!((s, &v["state"]), (200, &json!("ended")), "{v}");
        assert_eq!(v["ended_at"], want, "{v}");
    })
    .await
    .unwrap();
}
