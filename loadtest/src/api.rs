//! The few HTTP API calls the load needs: a staff login to schedule meetings with, and for a relay child the
//! first administrator's first login (new password, phone bound with the code from the outbox).

use std::time::Duration;

use anyhow::{bail, Context};
use serde::de::DeserializeOwned;

/// One API call; a 2xx answer decoded (`null` for an empty body), anything else an error quoting it.
pub async fn api_call<T: DeserializeOwned>(
    api: &str,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> anyhow::Result<T> {
    let url = format!("{}{path}", api.trim_end_matches('/'));
    let mut req = reqwest::Client::new().request(method.clone(), &url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body)?);
    }
    let resp = req
        .timeout(timeout)
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .with_context(|| format!("{method} {url}"))?;
    if !status.is_success() {
        bail!(
            "{method} {url} answered {status}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
        );
    }
    let bytes = if bytes.is_empty() {
        &b"null"[..]
    } else {
        &bytes[..]
    };
    serde_json::from_slice(bytes).with_context(|| format!("{method} {url}: unexpected answer"))
}

/// Logs in; the bearer token.
pub async fn login(
    api: &str,
    login: &str,
    password: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    let body = serde_json::json!({ "login": login, "password": password });
    let v: serde_json::Value = api_call(
        api,
        None,
        reqwest::Method::POST,
        "/api/v1/auth/login",
        Some(&body),
        timeout,
    )
    .await?;
    v["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the login answer has no token"))
}

/// The child relay's administrator, its first login done (new password, phone bound with the code the
/// outbox holds): the staff account the load schedules its meeting with.
pub async fn bootstrap_admin(
    api: &str,
    initial: &str,
    timeout: Duration,
) -> anyhow::Result<String> {
    use reqwest::Method;
    let token = login(api, "admin", initial, timeout).await?;
    let t = Some(token.as_str());
    let new =
        serde_json::json!({ "old_password": initial, "new_password": format!("{initial}-load") });
    let _: serde_json::Value = api_call(
        api,
        t,
        Method::POST,
        "/api/v1/auth/password",
        Some(&new),
        timeout,
    )
    .await?;
    let phone = serde_json::json!({ "phone": "+86 138 0000 0000" });
    let _: serde_json::Value = api_call(
        api,
        t,
        Method::POST,
        "/api/v1/auth/phone",
        Some(&phone),
        timeout,
    )
    .await?;
    let outbox: serde_json::Value =
        api_call(api, t, Method::GET, "/api/v1/outbox", None, timeout).await?;
    let code = outbox
        .as_array()
        .and_then(|m| m.first())
        .and_then(|m| m["body"].as_str())
        .and_then(|b| {
            b.split_whitespace()
                .find(|w| w.len() == 6 && w.bytes().all(|c| c.is_ascii_digit()))
        })
        .ok_or_else(|| anyhow::anyhow!("no verification code in the outbox"))?
        .to_string();
    let verify = serde_json::json!({ "code": code });
    let _: serde_json::Value = api_call(
        api,
        t,
        Method::POST,
        "/api/v1/auth/phone/verify",
        Some(&verify),
        timeout,
    )
    .await?;
    Ok(token)
}
