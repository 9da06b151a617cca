//! An HTTP client for the ticket API, and users of each role with their first-login setup done.

use reqwest::Method;
use serde_json::{json, Value};

use super::TestRelay;

/// The bootstrap administrator's initial password in tests (`accounts.bootstrap_password`).
pub const ADMIN_PASSWORD: &str = "initial-admin-pass";
/// The password every test user ends up with.
pub const PASSWORD: &str = "correct horse battery";

/// The `error.code` of an error answer.
pub fn code_of(v: &Value) -> Option<&str> {
    v["error"]["code"].as_str()
}

/// Percent-encodes everything but ASCII letters and digits (query strings).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A logged-in client.
#[derive(Clone, Debug)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
    pub user: Value,
}

impl Api {
    pub fn id(&self) -> i64 {
        self.user["id"].as_i64().unwrap()
    }

    /// Any request with a JSON body (or none); the status and the JSON answer (`Null` for an empty one).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        answer(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// A raw upload.
    pub async fn upload(&self, path: &str, bytes: Vec<u8>, content_type: &str) -> (u16, Value) {
        let req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(bytes);
        answer(req.send().await.unwrap()).await
    }

    /// A raw download: status and bytes.
    pub async fn download(&self, path: &str) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, r.bytes().await.unwrap().to_vec(), headers)
    }
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        match serde_json::from_str(&text) {
            Ok(v) => v,
            // A download; errors are always JSON.
            Err(_) if status < 300 => Value::String(text),
            Err(_) => panic!("an error that is not JSON ({status}): {text}"),
        }
    };
    (status, v)
}

/// Logs in; the status and the answer.
pub async fn login(base: &str, login: &str, password: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "login": login, "password": password }))
        .send()
        .await
        .unwrap();
    answer(r).await
}

/// Logs in as `login` and returns the client, setup not necessarily done.
pub async fn session(base: &str, login_name: &str, password: &str) -> Api {
    let (status, v) = login(base, login_name, password).await;
    assert_eq!(status, 200, "login {login_name}: {v}");
    Api {
        base: base.to_string(),
        http: reqwest::Client::new(),
        token: v["token"].as_str().unwrap().to_string(),
        user: v["user"].clone(),
    }
}

/// Changes the initial password and binds a phone, reading the code from the outbox as `admin`
/// (`admin` may be the same client).
pub async fn finish_setup(me: &mut Api, initial: &str, admin: Option<&Api>, phone: &str) {
    let (s, v) = me
        .post(
            "/api/v1/auth/password",
            json!({ "old_password": initial, "new_password": PASSWORD }),
        )
        .await;
    assert_eq!(s, 204, "{v}");
    let (s, v) = me
        .post("/api/v1/auth/phone", json!({ "phone": phone }))
        .await;
    assert_eq!(s, 202, "{v}");
    let reader = admin.unwrap_or(me);
    let (s, msgs) = reader
        .get(&format!("/api/v1/outbox?user_id={}", me.id()))
        .await;
    assert_eq!(s, 200, "{msgs}");
    let body = msgs[0]["body"].as_str().unwrap();
    let code: String = body
        .split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .expect("a 6-digit code in the message")
        .to_string();
    let (s, v) = me
        .post("/api/v1/auth/phone/verify", json!({ "code": code }))
        .await;
    assert_eq!(s, 204, "{v}");
    let (_, v) = me.get("/api/v1/auth/me").await;
    me.user = v["user"].clone();
}

/// The bootstrap administrator, setup done.
pub async fn admin(relay: &TestRelay) -> Api {
    let mut a = session(&relay.api, "admin", ADMIN_PASSWORD).await;
    finish_setup(&mut a, ADMIN_PASSWORD, None, "+86 138 0000 0000").await;
    a
}

/// A new user of `role` created by `admin`, logged in with setup done.
pub async fn user(admin: &Api, employee_id: &str, role: &str) -> Api {
    let initial = format!("{employee_id}-initial-pw");
    let (s, v) = admin
        .post(
            "/api/v1/users",
            json!({
                "employee_id": employee_id,
                "email": format!("{employee_id}@example.com"),
                "name": format!("{role} {employee_id}"),
                "department": "IT",
                "contact": "ext. 100",
                "role": role,
                "password": initial,
            }),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let mut u = session(&admin.base, employee_id, &initial).await;
    finish_setup(&mut u, &initial, Some(admin), "13800000001").await;
    u
}
