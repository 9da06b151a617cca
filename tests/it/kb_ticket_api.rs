//! The knowledge base and attachments where they meet tickets: a ticket's solution turned into an article,
//! and ticket attachments with the ticket's permissions and the upload limits. Tickets and their processing
//! records are made through the tickets endpoints (`POST /api/v1/tickets`, `POST /api/v1/tickets/{id}/records`).

use crate::common;

use std::path::Path;

use common::api::{self, Api};
use common::api::{code_of, enc};
use common::*;
use serde_json::json;

fn files_under(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                files_under(&p)
            } else {
                1
            }
        })
        .sum()
}

async fn ticket(by: &Api, title: &str, description: &str) -> i64 {
    let (s, v) = by
        .post(
            "/api/v1/tickets",
            json!({ "title": title, "kind": "hardware", "priority": "medium", "description": description }),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert!(v["number"].as_str().unwrap().starts_with("GD"), "{v}");
    v["id"].as_i64().unwrap()
}

async fn record(by: &Api, id: i64, steps: &str, solution: &str) {
    let (s, v) = by
        .post(
            &format!("/api/v1/tickets/{id}/records"),
            json!({ "steps": steps, "solution": solution }),
        )
        .await;
    assert!((200..300).contains(&s), "{s}: {v}");
}

#[tokio::test]
async fn a_tickets_solution_becomes_an_article() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let c1 = api::user(&admin, "c1", "customer").await;
        let id = ticket(&c1, "打印机卡纸", "三楼打印机每次打印都卡纸").await;
        // Processing records come from the assignee.
        let (s, v) = admin
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                json!({ "assignee_id": t1.id() }),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        record(&t1, id, "Opened the rear tray", "").await;
        record(
            &t1,
            id,
            "Checked the rollers",
            "Replaced the worn pickup roller",
        )
        .await;

        let (s, a) = t1
            .post(
                &format!("/api/v1/tickets/{id}/article"),
                json!({ "keywords": ["卡纸", "roller"] }),
            )
            .await;
        assert_eq!(s, 201, "{a}");
        assert_eq!(a["title"], "打印机卡纸");
        assert_eq!(a["category"], "tickets");
        assert_eq!(a["visibility"], "public");
        assert_eq!(a["source_ticket_id"], id);
        assert_eq!(a["author_id"], t1.id());
        assert_eq!(a["keywords"], json!(["卡纸", "roller"]));
        let body = a["body"].as_str().unwrap();
        for part in [
            "三楼打印机每次打印都卡纸",
            "Opened the rear tray",
            "Checked the rollers",
            "Replaced the worn pickup roller",
        ] {
            assert!(body.contains(part), "{part:?} missing from {body}");
        }
        assert!(body.find("Opened").unwrap() < body.find("Checked").unwrap());
        // It is searchable like any other article.
        let (s, v) = t1
            .get(&format!("/api/v1/kb/articles?q={}", enc("pickup roller")))
            .await;
        assert_eq!(s, 200);
        assert_eq!(v["items"][0]["id"], a["id"]);

        // Category and visibility from the request; the reserved category is refused.
        let (s, a2) = t1
            .post(
                &format!("/api/v1/tickets/{id}/article"),
                json!({ "category": "hardware/printer", "visibility": "private" }),
            )
            .await;
        assert_eq!(s, 201, "{a2}");
        assert_eq!(
            (a2["category"].as_str(), a2["visibility"].as_str()),
            (Some("hardware/printer"), Some("private"))
        );
        let (s, v) = t1
            .post(
                &format!("/api/v1/tickets/{id}/article"),
                json!({ "category": "meeting records" }),
            )
            .await;
        assert_eq!((s, code_of(&v)), (403, Some("reserved_category")));
        // Customers may not; an unknown ticket is not found.
        let (s, v) = c1
            .post(&format!("/api/v1/tickets/{id}/article"), json!({}))
            .await;
        assert_eq!((s, code_of(&v)), (403, Some("forbidden")));
        let (s, v) = t1.post("/api/v1/tickets/999999/article", json!({})).await;
        assert_eq!((s, code_of(&v)), (404, Some("not_found")));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn ticket_attachments_follow_the_tickets_permissions_and_limits() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| {
            l.tickets.max_attachment_bytes = Some(assist_relay::config::ByteSize(1024));
            l.tickets.max_owner_attachment_bytes = Some(assist_relay::config::ByteSize(1500));
        })
        .await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let c1 = api::user(&admin, "c1", "customer").await;
        let c2 = api::user(&admin, "c2", "customer").await;
        let id = ticket(&c1, "Screen flickers", "since Monday").await;
        let up = |name: &str| format!("/api/v1/tickets/{id}/attachments?name={}", enc(name));

        // The reporter uploads; staff read it; another customer sees nothing.
        let (s, a) = c1
            .upload(&up("../../photo.txt"), b"flicker log".to_vec(), "image/png")
            .await;
        assert_eq!(s, 201, "{a}");
        assert_eq!(
            (a["file_name"].as_str(), a["content_type"].as_str()),
            (Some("photo.txt"), Some("text/plain; charset=utf-8"))
        );
        assert_eq!(
            (a["owner_kind"].as_str(), a["owner_id"].as_i64()),
            (Some("ticket"), Some(id))
        );
        let (s, list) = t1.get(&format!("/api/v1/tickets/{id}/attachments")).await;
        assert_eq!(s, 200);
        assert_eq!(list.as_array().unwrap().len(), 1);
        let dl = format!("/api/v1/attachments/{}", a["id"]);
        let (s, body, h) = t1.download(&dl).await;
        assert_eq!((s, body.as_slice()), (200, &b"flicker log"[..]));
        assert_eq!(h["x-content-type-options"], "nosniff");
        let (s, _) = t1
            .upload(&up("by-tech.txt"), b"tech note".to_vec(), "text/plain")
            .await;
        assert_eq!(s, 201);
        for (s, v) in [
            c2.get(&format!("/api/v1/tickets/{id}/attachments")).await,
            c2.upload(&up("x.txt"), b"x".to_vec(), "text/plain").await,
        ] {
            assert_eq!((s, code_of(&v)), (404, Some("not_found")), "{v}");
        }
        assert_eq!(c2.download(&dl).await.0, 404);
        assert_eq!(c1.download(&dl).await.0, 200);

        // Over the per-file or per-ticket limit: 413 and nothing kept.
        let dir = relay.data_dir().join("attachments");
        let before = files_under(&dir);
        let (s, v) = c1
            .upload(&up("big.bin"), vec![1u8; 1025], "application/octet-stream")
            .await;
        assert_eq!((s, code_of(&v)), (413, Some("payload_too_large")));
        let (s, _) = c1
            .upload(&up("ok.bin"), vec![2u8; 1000], "application/octet-stream")
            .await;
        assert_eq!(s, 201);
        let (s, v) = c1
            .upload(&up("more.bin"), vec![3u8; 1000], "application/octet-stream")
            .await;
        assert_eq!((s, code_of(&v)), (413, Some("payload_too_large")));
        assert_eq!(files_under(&dir), before + 1);
        let (_, list) = c1.get(&format!("/api/v1/tickets/{id}/attachments")).await;
        assert_eq!(list.as_array().unwrap().len(), 3);
    })
    .await
    .expect("test timed out");
}
