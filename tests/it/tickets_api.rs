//! Tickets over real HTTP against a real server and SQLite file: the workflow end to end (with a real
//! remote-assist session over QUIC), numbering under concurrency and across the business-day boundary,
//! illegal transitions, messages and internal notes, lists, notifications (stored and streamed).

use crate::common;

use std::time::{Duration, SystemTime};

use assist_relay::protocol::{ClientMsg, ErrorCode, Hello, ServerMsg};
use common::api::{self, Api};
use common::api::{code_of, enc};
use common::*;
use serde_json::{json, Value};

async fn file(who: &Api, title: &str, priority: &str) -> Value {
    let (s, v) = who
        .post(
            "/api/v1/tickets",
            json!({ "title": title, "kind": "hardware", "priority": priority,
                    "description": "The printer on floor 3 jams on every page.", "device_text": "HP M404" }),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    v
}

async fn status(who: &Api, id: i64, to: &str, reason: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "status": to });
    if let Some(r) = reason {
        body["reason"] = r.into();
    }
    who.post(&format!("/api/v1/tickets/{id}/status"), body)
        .await
}

/// The seed workflow: customer files an urgent ticket -> supervisor approves and assigns -> technician
/// starts remote assistance, the customer joins with the code and ends the session (written back to the
/// records) -> processing record -> resolved -> customer says not solved -> reopened -> resolved -> confirmed.
#[tokio::test]
async fn the_seed_workflow_end_to_end() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let cust = api::user(&admin, "c1", "customer").await;
        let sup = api::user(&admin, "s1", "supervisor").await;
        let tech = api::user(&admin, "t1", "technician").await;

        let t = file(&cust, "打印机卡纸 Printer jams", "urgent").await;
        let id = t["id"].as_i64().unwrap();
        assert!(t["number"].as_str().unwrap().starts_with("GD"));
        assert_eq!(t["status"], "awaiting_approval", "urgent tickets need approval by default");
        // The supervisor was told; assigning before approval is refused with what is allowed.
        let (_, notes) = sup.get("/api/v1/notifications").await;
        assert_eq!(notes[0]["kind"], "approval_needed");
        let assign = json!({ "assignee_id": tech.id() });
        let (s, v) = sup.post(&format!("/api/v1/tickets/{id}/assign"), assign.clone()).await;
        assert_eq!((s, code_of(&v)), (409, Some("invalid_transition")));
        let (s, v) = tech.post(&format!("/api/v1/tickets/{id}/approve"), json!({})).await;
        assert_eq!((s, code_of(&v)), (403, Some("forbidden")));
        let (s, v) = sup.post(&format!("/api/v1/tickets/{id}/approve"), json!({})).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("received")), "{v}");
        let (s, v) = sup.post(&format!("/api/v1/tickets/{id}/assign"), assign).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("assigned")), "{v}");
        let (_, notes) = tech.get("/api/v1/notifications?unread=true").await;
        assert_eq!(notes[0]["kind"], "assigned");
        // Notifications also go out through the sender (the outbox by default).
        let (_, out) = admin.get(&format!("/api/v1/outbox?user_id={}", tech.id())).await;
        assert_eq!(out[0]["channel"], "notification");
        assert_eq!(out[0]["recipient"], "t1@example.com");

        // Remote assistance from the ticket: a real session over QUIC.
        let (s, a) = tech.post(&format!("/api/v1/tickets/{id}/assist"), json!({})).await;
        assert_eq!(s, 201, "{a}");
        assert_eq!(a["code"].as_str().unwrap().len(), 12);
        // The demo technician joins it from the assist answer (`technician --session FILE`).
        let dir = tempfile::tempdir().unwrap();
        let session_file = dir.path().join("assist.json");
        std::fs::write(&session_file, a.to_string()).unwrap();
        let tech_args = assist_relay::client::technician::TechnicianArgs {
            api: relay.api.clone(),
            operator_key: None,
            operator_key_file: dir.path().join("no-key-needed"),
            save: dir.path().join("screen.ivf"),
            input_script: None,
            relay: None,
            session: Some(session_file),
            trust: assist_relay::client::TrustArgs {
                server_cert_sha256: None,
                ca: None,
                server_name: "localhost".into(),
            },
            quiet: true,
        };
        let technician = tokio::spawn(assist_relay::client::technician::run(
            tech_args,
            std::future::pending(),
        ));
        let mut cust_conn = relay.customer(a["code"].as_str().unwrap(), true).await.unwrap();
        // Once the technician is there (already, or when it joins), the customer ends the session.
        let present = matches!(cust_conn.welcome, ServerMsg::Welcome { peer_present: true, .. });
        if !present {
            expect_msg(&mut cust_conn, |m| matches!(m, ServerMsg::Peer { .. })).await;
        }
        cust_conn.tx.send(&ClientMsg::EndSession).await.unwrap();
        let report = technician.await.unwrap().expect("the technician ends cleanly");
        assert_eq!(report.end, Some(ErrorCode::SessionEnded));
        let records = async {
            loop {
                let (_, r) = tech.get(&format!("/api/v1/tickets/{id}/records")).await;
                if r.as_array().unwrap().len() >= 2 {
                    return r;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let r = tokio::time::timeout(Duration::from_secs(10), records).await.unwrap();
        assert!(r[0]["detail"].as_str().unwrap().contains("started"), "{r}");
        let end = r[1]["detail"].as_str().unwrap();
        assert!(end.contains("ended by the customer") && end.contains("bytes"), "{end}");
        let (_, t) = tech.get(&format!("/api/v1/tickets/{id}")).await;
        assert_eq!(t["status"], "in_progress", "starting assistance started the work");

        // Processing record, resolve, reject (reopen), resolve, confirm.
        let (s, _) = tech
            .post(&format!("/api/v1/tickets/{id}/records"),
                json!({ "steps": "清理搓纸轮 cleaned the pickup roller", "solution": "更换搓纸轮 replaced the roller" }))
            .await;
        assert_eq!(s, 201);
        assert_eq!(status(&tech, id, "awaiting_confirmation", None).await.0, 200);
        let (_, notes) = cust.get("/api/v1/notifications").await;
        assert_eq!(notes[0]["kind"], "awaiting_confirmation");
        let (s, v) = status(&cust, id, "in_progress", None).await;
        assert_eq!((s, code_of(&v)), (422, Some("validation_failed")), "a reason is required");
        let (s, v) = status(&cust, id, "in_progress", Some("still jams on duplex")).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!((v["reopen_count"].as_i64(), v["assignee_id"].as_i64()), (Some(1), Some(tech.id())));
        let (_, notes) = tech.get("/api/v1/notifications").await;
        assert_eq!(notes[0]["kind"], "reopened");
        assert_eq!(status(&tech, id, "awaiting_confirmation", None).await.0, 200);
        let (s, v) = status(&cust, id, "done", None).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("done")));
        // Nothing moves a done ticket; the refusal names what is allowed (nothing).
        let (s, v) = status(&tech, id, "in_progress", None).await;
        assert_eq!((s, code_of(&v)), (409, Some("invalid_transition")));
        assert_eq!(v["error"]["allowed"], json!([]));
        // The audit log has every change with who, old and new.
        let (s, log) = sup.get(&format!("/api/v1/tickets/{id}/audit")).await;
        assert_eq!(s, 200);
        let statuses: Vec<(&str, &str)> = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["field"] == "status")
            .map(|e| (e["old_value"].as_str().unwrap(), e["new_value"].as_str().unwrap()))
            .collect();
        assert_eq!(
            statuses,
            vec![
                ("", "awaiting_approval"),
                ("awaiting_approval", "received"),
                ("received", "assigned"),
                ("assigned", "in_progress"),
                ("in_progress", "awaiting_confirmation"),
                ("awaiting_confirmation", "in_progress"),
                ("in_progress", "awaiting_confirmation"),
                ("awaiting_confirmation", "done"),
            ]
        );
        assert!(log.as_array().unwrap().iter().any(|e| e["field"] == "reason" && e["new_value"] == "still jams on duplex"));
        assert_eq!(cust.get(&format!("/api/v1/tickets/{id}/audit")).await.0, 403);

        // The solution becomes a knowledge-base article, found by a Chinese keyword.
        let (s, a) = tech
            .post(&format!("/api/v1/tickets/{id}/article"), json!({ "keywords": ["卡纸", "搓纸轮"], "category": "hardware/printer" }))
            .await;
        assert_eq!(s, 201, "{a}");
        assert!(a["body"].as_str().unwrap().contains("更换搓纸轮"));
        for q in ["卡纸", "搓纸轮", "打印机卡纸"] {
            let (s, found) = sup.get(&format!("/api/v1/kb/articles?q={}", enc(q))).await;
            assert_eq!(s, 200);
            assert_eq!(found["items"][0]["id"], a["id"], "searching {q}: {found}");
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn numbers_are_unique_under_200_concurrent_creations_and_restart_each_business_day() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| {
            l.accounts.login_ttl = Some(assist_relay::config::Dur(Duration::from_secs(72 * 3600)));
        })
        .await;
        let admin = api::admin(&relay).await;
        let cust = api::user(&admin, "c1", "customer").await;
        let day = |t: SystemTime| {
            let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() + 8 * 3600;
            let d = time::OffsetDateTime::from_unix_timestamp(secs as i64).unwrap();
            format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
        };
        let wall = |relay: &TestRelay| {
            use assist_relay::clock::Clock;
            relay.clock.wall()
        };
        // Move to 10 minutes before midnight at +08:00, so the batch and the boundary are both exercised.
        let secs = wall(&relay)
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 8 * 3600;
        relay
            .clock
            .advance(Duration::from_secs(86_400 - secs % 86_400 - 600));
        let today = day(wall(&relay));
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let c = cust.clone();
                tokio::spawn(async move { file(&c, &format!("concurrent {i}"), "low").await })
            })
            .collect();
        let mut numbers = Vec::new();
        for t in tasks {
            numbers.push(t.await.unwrap()["number"].as_str().unwrap().to_string());
        }
        numbers.sort();
        let want: Vec<String> = (1..=200).map(|n| format!("GD{today}{n:04}")).collect();
        assert_eq!(
            numbers, want,
            "serials 0001..0200, none repeated or skipped"
        );
        // Past midnight in the configured zone (UTC+08:00), serials restart at 0001 under the new date.
        relay.clock.advance(Duration::from_secs(601));
        let tomorrow = day(wall(&relay));
        assert_ne!(tomorrow, today);
        assert_eq!(
            file(&cust, "after midnight", "low").await["number"],
            format!("GD{tomorrow}0001")
        );
        assert_eq!(
            file(&cust, "after midnight 2", "low").await["number"],
            format!("GD{tomorrow}0002")
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn messages_internal_notes_lists_and_odd_titles() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let c1 = api::user(&admin, "c1", "customer").await;
        let c2 = api::user(&admin, "c2", "customer").await;
        let tech = api::user(&admin, "t1", "technician").await;
        // Long and non-ASCII titles round-trip unchanged.
        let long: String = "工单标题🙂".chars().cycle().take(200).collect();
        let t1 = file(&c1, &long, "medium").await;
        assert_eq!(t1["title"].as_str().unwrap(), long);
        let (s, v) = c1
            .post(
                "/api/v1/tickets",
                json!({ "title": format!("{long}x"), "kind": "other", "priority": "low" }),
            )
            .await;
        assert_eq!((s, code_of(&v)), (422, Some("validation_failed")));
        let (s, v) = c1
            .post(
                "/api/v1/tickets",
                json!({ "title": "x", "kind": "toaster", "priority": "low" }),
            )
            .await;
        assert_eq!((s, code_of(&v)), (422, Some("validation_failed")));
        let id1 = t1["id"].as_i64().unwrap();
        let t2 = file(&c2, "VPN drops 100% of the_time", "high").await;
        let id2 = t2["id"].as_i64().unwrap();
        // Customers see only their own tickets; another's is 404.
        let (_, l) = c1.get("/api/v1/tickets").await;
        assert_eq!(l["total"], 1);
        assert_eq!(c1.get(&format!("/api/v1/tickets/{id2}")).await.0, 404);
        assert_eq!(
            c1.get(&format!("/api/v1/tickets?reporter_id={}", c2.id()))
                .await
                .1["total"],
            0
        );
        // Staff see all, filter, search (LIKE wildcards are literal), paginate in a stable order.
        assert_eq!(tech.get("/api/v1/tickets").await.1["total"], 2);
        assert_eq!(
            tech.get("/api/v1/tickets?priority=high").await.1["total"],
            1
        );
        assert_eq!(tech.get("/api/v1/tickets?q=100%25").await.1["total"], 1);
        assert_eq!(tech.get("/api/v1/tickets?q=the_time").await.1["total"], 1);
        assert_eq!(tech.get("/api/v1/tickets?q=th__ime").await.1["total"], 0);
        assert_eq!(tech.get("/api/v1/tickets?q=工单").await.1["total"], 1);
        let (_, big) = tech.get("/api/v1/tickets?per_page=100000").await;
        assert_eq!(big["per_page"], 100, "clamped to tickets.max_page_size");
        let (_, p1) = tech.get("/api/v1/tickets?per_page=1&page=1").await;
        let (_, p2) = tech.get("/api/v1/tickets?per_page=1&page=2").await;
        assert_eq!(p1["items"][0]["id"], id2, "newest first");
        assert_eq!(p2["items"][0]["id"], id1);
        let (s, v) = tech.get("/api/v1/tickets?status=nonsense").await;
        assert_eq!((s, code_of(&v)), (422, Some("validation_failed")));
        let (s, v) = tech.get("/api/v1/tickets?created_from=yesterday").await;
        assert_eq!((s, code_of(&v)), (422, Some("validation_failed")));
        assert_eq!(
            tech.get("/api/v1/tickets?created_from=2000-01-01T00:00:00Z")
                .await
                .1["total"],
            2
        );
        assert_eq!(
            tech.get("/api/v1/tickets?created_to=2000-01-01T00:00:00Z")
                .await
                .1["total"],
            0
        );
        // Messages both ways; internal notes never reach the customer.
        let m = |b: &str, internal: bool| json!({ "body": b, "internal": internal });
        assert_eq!(
            c1.post(
                &format!("/api/v1/tickets/{id1}/messages"),
                m("any news?", false)
            )
            .await
            .0,
            201
        );
        assert_eq!(
            tech.post(
                &format!("/api/v1/tickets/{id1}/messages"),
                m("working on it", false)
            )
            .await
            .0,
            201
        );
        assert_eq!(
            tech.post(
                &format!("/api/v1/tickets/{id1}/messages"),
                m("likely the fuser", true)
            )
            .await
            .0,
            201
        );
        let (s, v) = c1
            .post(
                &format!("/api/v1/tickets/{id1}/messages"),
                m("sneaky", true),
            )
            .await;
        assert_eq!((s, code_of(&v)), (403, Some("forbidden")));
        let (_, seen) = c1.get(&format!("/api/v1/tickets/{id1}/messages")).await;
        assert_eq!(seen.as_array().unwrap().len(), 2);
        assert!(seen
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["internal"] == false));
        assert_eq!(
            tech.get(&format!("/api/v1/tickets/{id1}/messages"))
                .await
                .1
                .as_array()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            c2.post(&format!("/api/v1/tickets/{id1}/messages"), m("hi", false))
                .await
                .0,
            404
        );
        // Only the assignee (or a supervisor) adds processing records.
        let (s, v) = tech
            .post(
                &format!("/api/v1/tickets/{id1}/records"),
                json!({ "steps": "looked" }),
            )
            .await;
        assert_eq!((s, code_of(&v)), (403, Some("forbidden")));
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn notifications_stream_live_over_server_sent_events() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let cust = api::user(&admin, "c1", "customer").await;
        let tech = api::user(&admin, "t1", "technician").await;
        let t = file(&cust, "monitor flickers", "low").await;
        let id = t["id"].as_i64().unwrap();
        let mut stream = tech
            .http
            .get(format!("{}/api/v1/notifications/stream", tech.base))
            .bearer_auth(&tech.token)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        assert!(stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let (s, _) = admin
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                json!({ "assignee_id": tech.id() }),
            )
            .await;
        assert_eq!(s, 200);
        let mut text = String::new();
        while !text.contains("\n\n") || !text.contains("event: notification") {
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("stream open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        let data = text.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        let n: Value = serde_json::from_str(data).unwrap();
        assert_eq!(
            (n["kind"].as_str(), n["ticket_id"].as_i64()),
            (Some("assigned"), Some(id))
        );
        // Marking read.
        let (s, _) = tech
            .post(
                &format!("/api/v1/notifications/{}/read", n["id"]),
                json!({}),
            )
            .await;
        assert_eq!(s, 204);
        assert_eq!(
            tech.get("/api/v1/notifications?unread=true").await.1,
            json!([])
        );
        assert_eq!(
            cust.post(
                &format!("/api/v1/notifications/{}/read", n["id"]),
                json!({})
            )
            .await
            .0,
            404
        );
    })
    .await
    .unwrap();
}

/// A remote-assistance session cut by the server's shutdown still gets its end written to the ticket.
#[tokio::test]
async fn a_session_ended_by_shutdown_is_still_written_back() {
    tokio::time::timeout(TEST_LIMIT, async {
        let mut relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let cust = api::user(&admin, "c1", "customer").await;
        let tech = api::user(&admin, "t1", "technician").await;
        let id = file(&cust, "screen is black", "low").await["id"]
            .as_i64()
            .unwrap();
        admin
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                json!({ "assignee_id": tech.id() }),
            )
            .await;
        let (s, a) = tech
            .post(&format!("/api/v1/tickets/{id}/assist"), json!({}))
            .await;
        assert_eq!(s, 201, "{a}");
        let token = a["technician_token"].as_str().unwrap().to_string();
        let _t = relay
            .join_as("127.0.0.1:0", Hello::Technician { token })
            .await
            .unwrap();
        let _c = relay
            .customer(a["code"].as_str().unwrap(), true)
            .await
            .unwrap();
        relay.shutdown.cancel();
        (&mut relay.task).await.unwrap();
        let store = assist_relay::store::Store::open(&relay.data_dir().join("assist-relay.db"))
            .await
            .unwrap();
        let details: Vec<(String,)> =
            sqlx::query_as("SELECT detail FROM ticket_records WHERE ticket_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(details.len(), 2, "{details:?}");
        assert!(
            details[1].0.contains("ended by relay shutdown"),
            "{details:?}"
        );
    })
    .await
    .unwrap();
}
