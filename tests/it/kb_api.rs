//! The knowledge base and article attachments over real HTTP against a real server and SQLite file: CRUD,
//! search in Chinese and English, hostile queries, private articles that never leak, staff-only access, the
//! reserved category, upload limits that leave nothing behind, hostile file names and content sniffing.

use crate::common;

use std::path::Path;

use common::api::{self, Api};
use common::api::{code_of, enc};
use common::*;
use serde_json::{json, Value};

async fn create(a: &Api, body: Value) -> Value {
    let (s, v) = a.post("/api/v1/kb/articles", body).await;
    assert_eq!(s, 201, "{v}");
    v
}

/// Ids of a list or search answer, and its total.
async fn search(a: &Api, query: &str) -> (Vec<i64>, i64) {
    let (s, v) = a.get(&format!("/api/v1/kb/articles?{query}")).await;
    assert_eq!(s, 200, "{query}: {v}");
    let ids = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    (ids, v["total"].as_i64().unwrap())
}

/// Every file under `dir` (none if it does not exist).
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

async fn attachment_rows(relay: &TestRelay) -> i64 {
    let db = relay.data_dir().join("assist-relay.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM attachments")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

#[tokio::test]
async fn articles_are_created_read_updated_and_deleted() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let t2 = api::user(&admin, "t2", "technician").await;
        let sup = api::user(&admin, "s1", "supervisor").await;
        let a = create(
            &t1,
            json!({ "category": " hardware / printer ", "title": "Paper jam", "keywords": ["printer", " jam "],
                    "body": "Open the tray." }),
        )
        .await;
        let id = a["id"].as_i64().unwrap();
        assert_eq!(a["category"], "hardware/printer");
        assert_eq!(a["keywords"], json!(["printer", "jam"]));
        assert_eq!(a["visibility"], "public");
        assert_eq!(a["author_id"], t1.id());
        let path = format!("/api/v1/kb/articles/{id}");
        let (s, got) = t2.get(&path).await;
        assert_eq!((s, &got), (200, &a));

        // Another technician may not change it; a supervisor may; only the author changes visibility.
        let (s, v) = t2.put(&path, json!({ "title": "mine now" })).await;
        assert_eq!((s, code_of(&v)), (403, Some("forbidden")));
        let (s, v) = sup.put(&path, json!({ "body": "Open the tray, pull the paper." })).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["title"], "Paper jam");
        let (s, _) = sup.put(&path, json!({ "visibility": "private" })).await;
        assert_eq!(s, 403);
        let (s, v) = t1.put(&path, json!({ "title": "Paper jam (HP)", "keywords": [] })).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["body"], "Open the tray, pull the paper.");
        assert_eq!(v["keywords"], json!([]));

        // Validation.
        for bad in [
            json!({ "category": "a//b", "title": "x" }),
            json!({ "category": "", "title": "x" }),
            json!({ "category": "a", "title": "  " }),
            json!({ "category": "a", "title": "x", "visibility": "secret" }),
            json!({ "category": "a", "title": "x", "keywords": ["a,b"] }),
            json!({ "category": "a", "title": "x", "extra": 1 }),
        ] {
            let (s, v) = t1.post("/api/v1/kb/articles", bad.clone()).await;
            assert_eq!((s, code_of(&v)), (422, Some("validation_failed")), "{bad}");
        }
        let (s, v) = t1.get("/api/v1/kb/articles?page=0").await;
        assert_eq!((s, code_of(&v)), (422, Some("validation_failed")));
        let (s, v) = t1.get("/api/v1/kb/articles?per_page=abc").await;
        assert_eq!((s, code_of(&v)), (422, Some("validation_failed")));
        let (s, v) = t1.get("/api/v1/kb/articles/abc").await;
        assert_eq!((s, code_of(&v)), (400, Some("bad_request")));

        // Pagination, newest first; a category filter includes subcategories.
        for i in 0..4 {
            create(&t2, json!({ "category": "software", "title": format!("s{i}") })).await;
        }
        let (s, v) = t1.get("/api/v1/kb/articles?page=2&per_page=2").await;
        assert_eq!(s, 200);
        assert_eq!((v["total"].as_i64(), v["page"].as_i64(), v["per_page"].as_i64()), (Some(5), Some(2), Some(2)));
        assert_eq!(v["items"][0]["title"], "s1");
        assert_eq!(v["items"][1]["title"], "s0");
        let (ids, total) = search(&t1, "category=hardware").await;
        assert_eq!((ids, total), (vec![id], 1));
        let (_, total) = search(&t1, "category=hard").await;
        assert_eq!(total, 0, "a prefix of a segment is not a parent category");
        let (s, cats) = t1.get("/api/v1/kb/categories").await;
        assert_eq!(s, 200);
        assert_eq!(
            cats,
            json!([{ "category": "hardware/printer", "count": 1 }, { "category": "software", "count": 4 }])
        );

        // Deletion: not by another technician; by the author.
        let (s, _) = t2.delete(&path).await;
        assert_eq!(s, 403);
        let (s, _) = t1.delete(&path).await;
        assert_eq!(s, 204);
        let (s, v) = t1.get(&path).await;
        assert_eq!((s, code_of(&v)), (404, Some("not_found")));
        // An administrator may delete anyone's public article.
        let (ids, _) = search(&t1, "category=software").await;
        let (s, _) = admin.delete(&format!("/api/v1/kb/articles/{}", ids[0])).await;
        assert_eq!(s, 204);
        let (_, total) = search(&t1, "").await;
        assert_eq!(total, 3);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn search_finds_chinese_words_of_any_length_and_english_words() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let printer = create(
            &t1,
            json!({ "category": "硬件/打印机", "title": "打印机卡纸怎么办", "keywords": ["卡纸", "paper"],
                    "body": "Open the rear tray and remove the jammed sheet." }),
        )
        .await["id"]
            .as_i64()
            .unwrap();
        let vpn = create(
            &t1,
            json!({ "category": "network", "title": "VPN 无法连接", "keywords": ["vpn"],
                    "body": "Reinstall the client; 100% of cases fixed_by this." }),
        )
        .await["id"]
            .as_i64()
            .unwrap();
        let other = create(
            &t1,
            json!({ "category": "network", "title": "Wi-Fi drops", "body": "Move closer to the router." }),
        )
        .await["id"]
            .as_i64()
            .unwrap();

        for (q, want) in [
            ("打印", vec![printer]),              // 2 characters: LIKE fallback
            ("打印机卡纸", vec![printer]),        // FTS5 trigram
            ("卡纸", vec![printer]),              // in keywords
            ("jammed", vec![printer]),            // in the body
            ("JAMMED sheet", vec![printer]),      // two words, both required, any case
            ("paper", vec![printer]),             // keyword
            ("vpn", vec![vpn]),
            ("连接", vec![vpn]),
            ("router", vec![other]),
            ("100%", vec![vpn]),
            ("fixed_by", vec![vpn]),
            ("%", vec![vpn]),                     // a literal percent sign, not a wildcard
            ("_", vec![vpn]),
            ("打印 tray", vec![printer]),         // a short and a long word together
            ("打印 router", vec![]),
            ("nothing-like-this", vec![]),
        ] {
            let (ids, total) = search(&t1, &format!("q={}", enc(q))).await;
            assert_eq!(ids, want, "q={q:?}");
            assert_eq!(total, want.len() as i64, "q={q:?}");
        }
        // Search and category filter together.
        let (ids, _) = search(&t1, &format!("q=the&category={}", enc("硬件"))).await;
        assert_eq!(ids, vec![printer]);
        // Edits are searchable at once; deleted articles are gone from the index.
        let (s, _) = t1
            .put(&format!("/api/v1/kb/articles/{other}"), json!({ "body": "Update the driver." }))
            .await;
        assert_eq!(s, 200);
        assert_eq!(search(&t1, "q=router").await.1, 0);
        assert_eq!(search(&t1, "q=driver").await.0, vec![other]);
        let (s, _) = t1.delete(&format!("/api/v1/kb/articles/{other}")).await;
        assert_eq!(s, 204);
        assert_eq!(search(&t1, "q=driver").await.1, 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn fts_syntax_in_queries_is_text_not_an_error() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        create(
            &t1,
            json!({ "category": "a", "title": "say \"hello\" AND (goodbye) NEAR here*" }),
        )
        .await;
        for q in [
            "\"",
            "\"\"\"",
            "*",
            "AND (",
            "NEAR",
            "NEAR(a b)",
            "a OR b",
            "title:x",
            "^abc",
            "'",
            "\"unbalanced",
            "-abc",
            "a:b:c",
            "(((",
            "\\",
            "*abc*",
            "{title}: abc",
            "\u{1}\u{2}\u{3}",
            "😀😀😀",
        ] {
            let (s, v) = t1.get(&format!("/api/v1/kb/articles?q={}", enc(q))).await;
            assert_eq!(s, 200, "q={q:?}: {v}");
        }
        // The characters are matched literally.
        assert_eq!(search(&t1, &format!("q={}", enc("\"hello\""))).await.1, 1);
        assert_eq!(search(&t1, &format!("q={}", enc("(goodbye)"))).await.1, 1);
        assert_eq!(search(&t1, &format!("q={}", enc("here*"))).await.1, 1);
        assert_eq!(search(&t1, &format!("q={}", enc("hello*"))).await.1, 0);
        let (s, v) = t1
            .get(&format!("/api/v1/kb/articles?q={}", "x".repeat(201)))
            .await;
        assert_eq!((s, code_of(&v)), (422, Some("validation_failed")));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_private_article_never_shows_to_anyone_but_its_author() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let t2 = api::user(&admin, "t2", "technician").await;
        let sup = api::user(&admin, "s1", "supervisor").await;
        create(
            &t1,
            json!({ "category": "public", "title": "公开的打印机文章" }),
        )
        .await;
        let secret = create(
            &t1,
            json!({ "category": "secret/notes", "title": "机密打印机笔记", "keywords": ["机密"],
                    "body": "hidden body text", "visibility": "private" }),
        )
        .await;
        let id = secret["id"].as_i64().unwrap();
        let path = format!("/api/v1/kb/articles/{id}");
        let (s, v) = t1
            .upload(
                &format!("{path}/attachments?name=s.txt"),
                b"secret file".to_vec(),
                "text/plain",
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let att = format!("/api/v1/attachments/{}", v["id"]);

        // The author sees it everywhere.
        assert_eq!(search(&t1, "").await.1, 2);
        assert_eq!(search(&t1, &format!("q={}", enc("机密"))).await.0, vec![id]);
        assert_eq!(t1.get(&path).await.0, 200);
        assert_eq!(t1.download(&att).await.0, 200);

        for other in [&t2, &sup, &admin] {
            let (ids, total) = search(other, "").await;
            assert!(!ids.contains(&id));
            assert_eq!(total, 1);
            for q in [
                "机密",
                "机密打印机",
                "hidden",
                "打印",
                "打印机",
                "body text",
            ] {
                let (ids, total) = search(other, &format!("q={}", enc(q))).await;
                assert!(!ids.contains(&id), "q={q:?}");
                assert_eq!(total, if q.starts_with('打') { 1 } else { 0 }, "q={q:?}");
            }
            assert_eq!(search(other, "category=secret").await.1, 0);
            let (_, cats) = other.get("/api/v1/kb/categories").await;
            assert_eq!(cats, json!([{ "category": "public", "count": 1 }]));
            for (s, v) in [
                other.get(&path).await,
                other.put(&path, json!({ "title": "x" })).await,
                other.delete(&path).await,
                other.get(&format!("{path}/attachments")).await,
                other
                    .upload(
                        &format!("{path}/attachments?name=x"),
                        b"x".to_vec(),
                        "text/plain",
                    )
                    .await,
            ] {
                assert_eq!((s, code_of(&v)), (404, Some("not_found")), "{v}");
            }
            let (s, body, _) = other.download(&att).await;
            assert_eq!(s, 404);
            assert!(!String::from_utf8_lossy(&body).contains("secret file"));
        }
        // Made public by its author, it shows to everyone.
        let (s, _) = t1.put(&path, json!({ "visibility": "public" })).await;
        assert_eq!(s, 200);
        assert_eq!(search(&t2, &format!("q={}", enc("机密"))).await.0, vec![id]);
        assert_eq!(t2.download(&att).await.0, 200);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn customers_are_refused_every_knowledge_base_endpoint() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let c1 = api::user(&admin, "c1", "customer").await;
        let id = create(&t1, json!({ "category": "a", "title": "public one" })).await["id"]
            .as_i64()
            .unwrap();
        let path = format!("/api/v1/kb/articles/{id}");
        let (s, v) = t1
            .upload(
                &format!("{path}/attachments?name=a.txt"),
                b"abc".to_vec(),
                "text/plain",
            )
            .await;
        assert_eq!(s, 201);
        for (s, v) in [
            c1.get("/api/v1/kb/articles").await,
            c1.get("/api/v1/kb/articles?q=public").await,
            c1.post(
                "/api/v1/kb/articles",
                json!({ "category": "a", "title": "b" }),
            )
            .await,
            c1.get(&path).await,
            c1.put(&path, json!({ "title": "b" })).await,
            c1.delete(&path).await,
            c1.get("/api/v1/kb/categories").await,
            c1.get(&format!("{path}/attachments")).await,
            c1.upload(
                &format!("{path}/attachments?name=x"),
                b"x".to_vec(),
                "text/plain",
            )
            .await,
        ] {
            assert_eq!((s, code_of(&v)), (403, Some("forbidden")), "{v}");
        }
        let (s, _, _) = c1
            .download(&format!("/api/v1/attachments/{}", v["id"]))
            .await;
        assert_eq!(s, 404);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn the_meeting_records_category_is_reserved() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        for cat in [
            "meeting records",
            "Meeting Records/2024",
            " meeting records / weekly ",
        ] {
            let (s, v) = t1
                .post(
                    "/api/v1/kb/articles",
                    json!({ "category": cat, "title": "minutes" }),
                )
                .await;
            assert_eq!((s, code_of(&v)), (403, Some("reserved_category")), "{cat}");
        }
        let (s, v) = admin
            .post(
                "/api/v1/kb/articles",
                json!({ "category": "meeting records", "title": "m" }),
            )
            .await;
        assert_eq!((s, code_of(&v)), (403, Some("reserved_category")));
        let a = create(
            &t1,
            json!({ "category": "notes/meeting records", "title": "fine" }),
        )
        .await;
        let (s, v) = t1
            .put(
                &format!("/api/v1/kb/articles/{}", a["id"]),
                json!({ "category": "meeting records/2024" }),
            )
            .await;
        assert_eq!((s, code_of(&v)), (403, Some("reserved_category")));
        assert_eq!(search(&t1, "").await.1, 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn long_and_non_ascii_titles_round_trip_unchanged() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        for title in [
            "x".repeat(200),
            "打".repeat(200),
            "😀".repeat(200),
            "🖨️ 打印机卡纸 — paper jam ✓ «ß»".to_string(),
        ] {
            let a = create(
                &t1,
                json!({ "category": "标题/😀", "title": title, "keywords": ["🖨️"] }),
            )
            .await;
            let (s, v) = t1.get(&format!("/api/v1/kb/articles/{}", a["id"])).await;
            assert_eq!(s, 200);
            assert_eq!(v["title"].as_str(), Some(title.as_str()));
            assert_eq!(v["category"], "标题/😀");
            assert_eq!(v["keywords"], json!(["🖨️"]));
        }
        for title in ["x".repeat(201), "打".repeat(201), "a\u{0}b".to_string()] {
            let (s, v) = t1
                .post(
                    "/api/v1/kb/articles",
                    json!({ "category": "a", "title": title }),
                )
                .await;
            assert_eq!((s, code_of(&v)), (422, Some("validation_failed")));
        }
        assert_eq!(search(&t1, &format!("q={}", enc("😀😀😀"))).await.1, 1);
    })
    .await
    .expect("test timed out");
}

/// Sends `body` chunked (no Content-Length), so the server can only count as it reads; the status.
async fn chunked_upload(relay: &TestRelay, token: &str, path: &str, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = relay.api.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for c in body.chunks(300) {
        req.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        req.extend_from_slice(c);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let _ = s.write_all(&req).await; // the server may answer and close before reading it all
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn uploads_over_a_limit_are_refused_and_leave_nothing_behind() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start_with(|l| {
            l.tickets.max_attachment_bytes = Some(assist_relay::config::ByteSize(1024));
            l.tickets.max_owner_attachment_bytes = Some(assist_relay::config::ByteSize(2048));
        })
        .await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let id = create(&t1, json!({ "category": "a", "title": "with files" })).await["id"]
            .as_i64()
            .unwrap();
        let up = format!("/api/v1/kb/articles/{id}/attachments?name=f.bin");
        let dir = relay.data_dir().join("attachments");

        let (s, v) = t1
            .upload(&up, vec![7u8; 1025], "application/octet-stream")
            .await;
        assert_eq!((s, code_of(&v)), (413, Some("payload_too_large")), "{v}");
        assert_eq!(v["error"]["limit_bytes"], 1024);
        assert_eq!(
            chunked_upload(&relay, &t1.token, &up, &[8u8; 3000]).await,
            413
        );
        assert_eq!(files_under(&dir), Vec::<std::path::PathBuf>::new());
        assert_eq!(attachment_rows(&relay).await, 0);

        // Exactly the limit is fine, twice; the third file would take the article past its total.
        for b in [1u8, 2] {
            let (s, v) = t1
                .upload(&up, vec![b; 1024], "application/octet-stream")
                .await;
            assert_eq!(s, 201, "{v}");
            assert_eq!(v["size"], 1024);
        }
        let (s, v) = t1
            .upload(&up, vec![3u8; 1], "application/octet-stream")
            .await;
        assert_eq!((s, code_of(&v)), (413, Some("payload_too_large")), "{v}");
        assert_eq!(files_under(&dir).len(), 2);
        assert_eq!(attachment_rows(&relay).await, 2);
        let (_, list) = t1
            .get(&format!("/api/v1/kb/articles/{id}/attachments"))
            .await;
        assert_eq!(list.as_array().unwrap().len(), 2);

        // Deleting the article deletes its attachments and their files.
        let (s, _) = t1.delete(&format!("/api/v1/kb/articles/{id}")).await;
        assert_eq!(s, 204);
        assert_eq!(files_under(&dir), Vec::<std::path::PathBuf>::new());
        assert_eq!(attachment_rows(&relay).await, 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn hostile_file_names_are_sanitised_and_downloads_still_work() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let id = create(&t1, json!({ "category": "a", "title": "names" })).await["id"]
            .as_i64()
            .unwrap();
        for (i, (raw, stored, disposition)) in [
            ("../../etc/passwd", "passwd", "passwd"),
            ("..\\..\\x.exe", "x.exe", "x.exe"),
            ("bad\u{0}na\r\nme\u{7}.txt", "badname.txt", "badname.txt"),
            ("", "attachment", "attachment"),
            ("..", "attachment", "attachment"),
            ("报告 v1.txt", "报告 v1.txt", "%E6%8A%A5%E5%91%8A%20v1.txt"),
        ]
        .into_iter()
        .enumerate()
        {
            let content = format!("file number {i}").into_bytes();
            let (s, v) = t1
                .upload(
                    &format!("/api/v1/kb/articles/{id}/attachments?name={}", enc(raw)),
                    content.clone(),
                    "application/x-evil",
                )
                .await;
            assert_eq!(s, 201, "{raw:?}: {v}");
            assert_eq!(v["file_name"], stored, "{raw:?}");
            assert_eq!(v["content_type"], "text/plain; charset=utf-8");
            let (s, body, h) = t1
                .download(&format!("/api/v1/attachments/{}", v["id"]))
                .await;
            assert_eq!(s, 200);
            assert_eq!(body, content);
            assert_eq!(
                h["content-disposition"].to_str().unwrap(),
                format!("attachment; filename*=UTF-8''{disposition}")
            );
            assert_eq!(h["x-content-type-options"], "nosniff");
        }
        // Nothing was written outside the content-addressed store.
        let data = relay.data_dir();
        assert!(!data.join("etc").exists() && !data.join("x.exe").exists());
        for f in files_under(&data.join("attachments")) {
            let name = f.file_name().unwrap().to_str().unwrap().to_owned();
            assert!(
                name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()),
                "{f:?}"
            );
        }
        let (s, v, _) = t1.download("/api/v1/attachments/999999").await;
        assert_eq!(s, 404, "{}", String::from_utf8_lossy(&v));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn the_content_type_comes_from_the_bytes_and_content_is_stored_once() {
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = TestRelay::start().await;
        let admin = api::admin(&relay).await;
        let t1 = api::user(&admin, "t1", "technician").await;
        let id = create(&t1, json!({ "category": "a", "title": "types" })).await["id"]
            .as_i64()
            .unwrap();
        let up = |name: &str| format!("/api/v1/kb/articles/{id}/attachments?name={}", enc(name));
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&[0u8; 64]);
        let (s, v) = t1.upload(&up("notes.txt"), png.clone(), "text/plain").await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["content_type"], "image/png");
        assert_eq!(v["file_name"], "notes.txt");
        let (s, body, h) = t1
            .download(&format!("/api/v1/attachments/{}", v["id"]))
            .await;
        assert_eq!((s, body), (200, png.clone()));
        assert_eq!(h["content-type"], "image/png");

        for (bytes, name, want) in [
            (b"%PDF-1.7\n...".to_vec(), "a.txt", "application/pdf"),
            (
                b"PK\x03\x04rest".to_vec(),
                "report.docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
            (
                b"PK\x03\x04other".to_vec(),
                "sheet.XLSX",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (
                vec![0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 1],
                "old.xls",
                "application/vnd.ms-excel",
            ),
            (b"GIF89a....".to_vec(), "x", "image/gif"),
            (vec![0xff, 0xd8, 0xff, 0xe0, 1], "x.png", "image/jpeg"),
            (
                b"plain \xe6\x89\x93 text".to_vec(),
                "x.png",
                "text/plain; charset=utf-8",
            ),
            (b"nul\0inside".to_vec(), "x.txt", "application/octet-stream"),
            (vec![0xc3, 0x28], "x.txt", "application/octet-stream"),
        ] {
            let (s, v) = t1.upload(&up(name), bytes, "image/png").await;
            assert_eq!(s, 201, "{v}");
            assert_eq!(v["content_type"], want, "{name}");
        }
        // The same content twice: two rows, one file.
        let dir = relay.data_dir().join("attachments");
        let before = files_under(&dir).len();
        let (s, again) = t1.upload(&up("copy.png"), png.clone(), "image/png").await;
        assert_eq!(s, 201);
        assert_eq!(files_under(&dir).len(), before);
        assert_eq!(again["sha256"], v_sha(&png));
        let (s, body, _) = t1
            .download(&format!("/api/v1/attachments/{}", again["id"]))
            .await;
        assert_eq!((s, body), (200, png));
    })
    .await
    .expect("test timed out");
}

fn v_sha(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}
