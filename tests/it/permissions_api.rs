//! The permission matrix: every role (and no login) against every endpoint of the ticket API. "allowed"
//! means the request passed authorization (any answer but 401/403); "refused" means 403 `forbidden` (or 404
//! where the existence of the thing must not leak, e.g. a customer asking for another's ticket).

use crate::common;

use common::api::{self, Api};
use common::*;
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    Allowed,
    Refused,
    Hidden,
}
use Want::*;

#[tokio::test]
async fn each_role_against_each_endpoint() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let cust = api::user(&admin, "c1", "customer").await;
        let other = api::user(&admin, "c2", "customer").await;
        let tech = api::user(&admin, "t1", "technician").await;
        let sup = api::user(&admin, "s1", "supervisor").await;
        let (_, t) = cust
            .post("/api/v1/tickets", json!({ "title": "mine", "kind": "software", "priority": "low" }))
            .await;
        let id = t["id"].as_i64().unwrap();
        let (_, t2) = other
            .post("/api/v1/tickets", json!({ "title": "theirs", "kind": "software", "priority": "low" }))
            .await;
        let id2 = t2["id"].as_i64().unwrap();
        let uid = tech.id();
        let (_, art) = tech
            .post("/api/v1/kb/articles", json!({ "category": "software/os", "title": "Reset a profile", "body": "steps", "visibility": "public" }))
            .await;
        let aid = art["id"].as_i64().unwrap();
        let (_, att) = cust.upload(&format!("/api/v1/tickets/{id}/attachments?name=log.txt"), b"log".to_vec(), "text/plain").await;
        let (_, att2) = other.upload(&format!("/api/v1/tickets/{id2}/attachments?name=log.txt"), b"log2".to_vec(), "text/plain").await;
        let (att, att2) = (att["id"].as_i64().unwrap(), att2["id"].as_i64().unwrap());
        // A meeting the technician hosts with the first customer invited, and one nobody is invited to.
        let (_, m) = tech
            .post("/api/v1/meetings", json!({ "topic": "review", "invitees": [cust.id()] }))
            .await;
        let mid = m["meeting_id"].as_str().unwrap().to_string();
        let (_, m2) = tech.post("/api/v1/meetings", json!({ "topic": "private" })).await;
        let mid2 = m2["meeting_id"].as_str().unwrap().to_string();

        // (method, path, body, [customer, technician, supervisor, administrator])
        let rows: Vec<(Method, String, Option<Value>, [Want; 4])> = vec![
            (Method::GET, "/api/v1/users".into(), None, [Refused, Refused, Allowed, Allowed]),
            (Method::POST, "/api/v1/users".into(),
                Some(json!({ "employee_id": "new", "name": "n", "role": "customer", "password": "long enough pw" })),
                [Refused, Refused, Refused, Allowed]),
            (Method::GET, format!("/api/v1/users/{uid}"), None, [Refused, Allowed, Allowed, Allowed]),
            (Method::PATCH, format!("/api/v1/users/{uid}"), Some(json!({ "department": "Ops" })),
                [Refused, Refused, Refused, Allowed]),
            (Method::POST, format!("/api/v1/users/{}/reset-password", other.id()), None,
                [Refused, Refused, Refused, Allowed]),
            (Method::GET, "/api/v1/approval-rules".into(), None, [Refused, Allowed, Allowed, Allowed]),
            (Method::PUT, "/api/v1/approval-rules".into(),
                Some(json!([{ "priority": "urgent", "needs_approval": true }])),
                [Refused, Refused, Refused, Allowed]),
            (Method::GET, "/api/v1/outbox".into(), None, [Refused, Refused, Refused, Allowed]),
            (Method::GET, "/api/v1/devices".into(), None, [Allowed, Allowed, Allowed, Allowed]),
            (Method::POST, "/api/v1/devices".into(), Some(json!({ "number": "PC-1", "model": "X1" })),
                [Refused, Allowed, Allowed, Allowed]),
            (Method::POST, "/api/v1/tickets".into(),
                Some(json!({ "title": "t", "kind": "other", "priority": "low" })),
                [Allowed, Allowed, Allowed, Allowed]),
            (Method::GET, "/api/v1/tickets".into(), None, [Allowed, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/tickets/{id}"), None, [Allowed, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/tickets/{id2}"), None, [Hidden, Allowed, Allowed, Allowed]),
            (Method::POST, format!("/api/v1/tickets/{id}/approve"), None, [Refused, Refused, Allowed, Allowed]),
            (Method::POST, format!("/api/v1/tickets/{id}/assign"), Some(json!({ "assignee_id": uid })),
                [Refused, Refused, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/tickets/{id}/messages"), None, [Allowed, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/tickets/{id2}/messages"), None, [Hidden, Allowed, Allowed, Allowed]),
            (Method::POST, format!("/api/v1/tickets/{id}/messages"), Some(json!({ "body": "hi" })),
                [Allowed, Allowed, Allowed, Allowed]),
            (Method::POST, format!("/api/v1/tickets/{id}/messages"), Some(json!({ "body": "note", "internal": true })),
                [Refused, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/tickets/{id}/records"), None, [Allowed, Allowed, Allowed, Allowed]),
            (Method::POST, format!("/api/v1/tickets/{id}/records"), Some(json!({ "steps": "s" })),
                [Refused, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/tickets/{id}/audit"), None, [Refused, Allowed, Allowed, Allowed]),
            (Method::POST, format!("/api/v1/tickets/{id2}/status"), Some(json!({ "status": "done" })),
                [Hidden, Allowed, Allowed, Allowed]),
            // Only the assignee (the technician, assigned above) starts remote assistance from a ticket.
            (Method::POST, format!("/api/v1/tickets/{id}/assist"), None, [Refused, Allowed, Refused, Refused]),
            (Method::GET, "/api/v1/notifications".into(), None, [Allowed, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/tickets/{id}/attachments"), None, [Allowed, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/tickets/{id2}/attachments"), None, [Hidden, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/attachments/{att}"), None, [Allowed, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/attachments/{att2}"), None, [Hidden, Allowed, Allowed, Allowed]),
            (Method::GET, "/api/v1/kb/articles".into(), None, [Refused, Allowed, Allowed, Allowed]),
            (Method::POST, "/api/v1/kb/articles".into(),
                Some(json!({ "category": "a/b", "title": "t", "body": "b", "visibility": "public" })),
                [Refused, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/kb/articles/{aid}"), None, [Refused, Allowed, Allowed, Allowed]),
            (Method::GET, "/api/v1/kb/categories".into(), None, [Refused, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/kb/articles/{aid}/attachments"), None, [Refused, Allowed, Allowed, Allowed]),
            (Method::POST, format!("/api/v1/tickets/{id}/article"), Some(json!({})), [Refused, Allowed, Allowed, Allowed]),
            (Method::GET, "/api/v1/auth/me".into(), None, [Allowed, Allowed, Allowed, Allowed]),
            (Method::POST, "/api/v1/meetings".into(), Some(json!({ "topic": "t" })), [Refused, Allowed, Allowed, Allowed]),
            (Method::GET, "/api/v1/meetings".into(), None, [Allowed, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/meetings/{mid}"), None, [Allowed, Allowed, Allowed, Allowed]),
            (Method::GET, format!("/api/v1/meetings/{mid2}"), None, [Hidden, Allowed, Allowed, Allowed]),
            (Method::POST, format!("/api/v1/meetings/{mid}/join-token"), None, [Refused, Allowed, Allowed, Allowed]),
            // Recording is for administrators only, the meeting's host included.
            (Method::PUT, format!("/api/v1/meetings/{mid}/recording"), Some(json!({ "active": false })),
                [Refused, Refused, Refused, Allowed]),
            (Method::POST, format!("/api/v1/meetings/{mid}/minutes"), Some(json!({ "body": "notes" })),
                [Refused, Allowed, Allowed, Allowed]),
            (Method::DELETE, format!("/api/v1/meetings/{mid}"), None, [Refused, Allowed, Allowed, Allowed]),
        ];
        let roles: [(&str, &Api); 4] = [("customer", &cust), ("technician", &tech), ("supervisor", &sup), ("administrator", &admin)];
        let anonymous = Api { token: String::new(), ..cust.clone() };
        let mut failures = Vec::new();
        for (method, path, body, wants) in &rows {
            let (s, v) = anonymous.call(method.clone(), path, body.clone()).await;
            if s != 401 || v["error"]["code"] != "unauthorized" {
                failures.push(format!("anonymous {method} {path}: {s} {v}"));
            }
            for ((role, who), want) in roles.iter().zip(wants) {
                let (s, v) = who.call(method.clone(), path, body.clone()).await;
                let ok = match want {
                    Allowed => s != 401 && s != 403,
                    Refused => s == 403 && v["error"]["code"] == "forbidden",
                    Hidden => s == 404 && v["error"]["code"] == "not_found",
                };
                if !ok {
                    failures.push(format!("{role} {method} {path}: want {want:?}, got {s} {v}"));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    })
    .await
    .unwrap();
}
