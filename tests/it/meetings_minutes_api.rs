//! What outlives a meeting's room: the host's minutes in the knowledge base, and scheduled meetings across a
//! server restart.

use crate::common;

use std::time::Duration;

use assist_relay::clock::Clock;
use assist_relay::protocol::message::MeetingRole;
use assist_relay::protocol::{ErrorCode, Hello};
use common::api::{self, code_of, enc};
use common::meeting::{id_of, meeting, rfc3339, welcomed_as};
use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn the_host_writes_minutes_into_meeting_records() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let t2 = api::user(&admin, "t2", "technician").await;
        let t3 = api::user(&admin, "t3", "technician").await;
        let c1 = api::user(&admin, "c1", "customer").await;
        let m = meeting(
            &t1,
            json!({ "topic": "打印机更换计划", "invitees": [t2.id(), c1.id()] }),
        )
        .await;
        let id = id_of(&m);
        let path = format!("/api/v1/meetings/{id}/minutes");
        let minutes = "## 决定\n\n三楼打印机下周更换。\n\n- owner: t1";

        // Invitees may not write them; strangers do not see the meeting; the body is required.
        for (who, status) in [(&t2, 403), (&c1, 403), (&t3, 404)] {
            let (s, v) = who.post(&path, json!({ "body": minutes })).await;
            assert_eq!(s, status, "{v}");
        }
        for body in [
            json!({ "body": "  " }),
            json!({ "title": "x" }),
            json!({ "body": "x", "title": "" }),
        ] {
            let (s, v) = t1.post(&path, body.clone()).await;
            assert_eq!(
                (s, code_of(&v)),
                (422, Some("validation_failed")),
                "{body}: {v}"
            );
        }
        let (s, v) = t1.post(&path, json!({ "body": "x".repeat(100_001) })).await;
        assert_eq!(s, 422, "{v}");

        let (s, v) = t1.post(&path, json!({ "body": minutes })).await;
        assert_eq!(s, 201, "{v}");
        let article = v["article_id"].as_i64().unwrap();
        let (s, a) = t2.get(&format!("/api/v1/kb/articles/{article}")).await;
        assert_eq!(s, 200, "{a}");
        assert_eq!(a["category"], "meeting records");
        assert_eq!(a["title"], "Minutes: 打印机更换计划");
        assert_eq!(a["visibility"], "public");
        assert_eq!(a["author_id"], t1.id());
        assert_eq!(a["keywords"], json!(["meeting", id]));
        let body = a["body"].as_str().unwrap();
        assert!(body.starts_with(minutes), "{body}");
        assert!(
            body.trim_end().ends_with(&format!("Meeting {id}")),
            "{body}"
        );
        // Found by the knowledge base: its category, and a search for the meeting.
        let (_, v) = t2
            .get(&format!(
                "/api/v1/kb/articles?category={}",
                enc("meeting records")
            ))
            .await;
        assert_eq!(v["items"][0]["id"], article, "{v}");
        let (_, v) = t2
            .get(&format!("/api/v1/kb/articles?q={}", enc("三楼打印机")))
            .await;
        assert_eq!(v["items"][0]["id"], article, "{v}");
        let (_, v) = t2.get(&format!("/api/v1/kb/articles?q={id}")).await;
        assert_eq!(v["items"][0]["id"], article, "{v}");
        let (_, g) = t1.get(&format!("/api/v1/meetings/{id}")).await;
        assert_eq!(g["minutes_article_id"], article);

        // Once: the second attempt names the article to edit.
        let (s, v) = t1.post(&path, json!({ "body": "again" })).await;
        assert_eq!((s, code_of(&v)), (409, Some("conflict")), "{v}");
        assert_eq!(v["error"]["article_id"], article);
        // The article is edited like any other (it stays in its category) ...
        let (s, v) = t1
            .put(
                &format!("/api/v1/kb/articles/{article}"),
                json!({ "body": "edited" }),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        // ... but never moved out of meeting records or hidden from the staff who keep the meeting.
        for change in [
            json!({ "category": "hardware" }),
            json!({ "visibility": "private" }),
        ] {
            let (s, v) = t1
                .put(&format!("/api/v1/kb/articles/{article}"), change)
                .await;
            assert_eq!((s, code_of(&v)), (403, Some("reserved_category")), "{v}");
        }
        // ... and deleting it lets the minutes be written again.
        let (s, v) = admin
            .delete(&format!("/api/v1/kb/articles/{article}"))
            .await;
        assert_eq!(s, 204, "{v}");
        let (_, g) = t1.get(&format!("/api/v1/meetings/{id}")).await;
        assert_eq!(g["minutes_article_id"], Value::Null, "{g}");
        // A supervisor may write them too, after the meeting ended, with a title of their own.
        let s1 = api::user(&admin, "s1", "supervisor").await;
        let (s, _) = t1.delete(&format!("/api/v1/meetings/{id}")).await;
        assert_eq!(s, 204);
        let (s, v) = s1
            .post(
                &path,
                json!({ "body": "Summary.", "title": "打印机: minutes" }),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let (_, a) = s1
            .get(&format!("/api/v1/kb/articles/{}", v["article_id"]))
            .await;
        assert_eq!(a["title"], "打印机: minutes");
    })
    .await
    .unwrap();
}

/// Guards against a restart silently ending every meeting scheduled ahead: its room, code and tokens come back.
#[tokio::test]
async fn a_scheduled_meeting_survives_a_restart() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let starts = relay.clock.wall() + Duration::from_secs(3600);
        let m = meeting(
            &t1,
            json!({ "topic": "next week", "starts_at": rfc3339(starts), "duration_minutes": 30 }),
        )
        .await;
        let id = id_of(&m);
        let relay = relay.restart().await;
        let t1 = api::session(&relay.api, "t1", api::PASSWORD).await;
        let (s, v) = t1.get(&format!("/api/v1/meetings/{id}")).await;
        assert_eq!((s, v["state"].as_str()), (200, Some("scheduled")), "{v}");
        // The code is still the meeting's (not yet valid), and the host's token still enters.
        let early = relay
            .join_as(
                "127.0.0.1:0",
                Hello::MeetingCode {
                    code: m["code"].as_str().unwrap().to_string(),
                    name: "early".into(),
                },
            )
            .await;
        assert_eq!(refused(early), ErrorCode::MeetingNotStarted);
        let host = relay
            .with_token(m["host_token"].as_str().unwrap(), "Host")
            .await;
        assert_eq!(welcomed_as(&host), MeetingRole::Host);
    })
    .await
    .unwrap();
}
