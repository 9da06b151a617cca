//! Headless Chromium against the real server (tests/browser/*.mjs, driven by playwright-core): the pages load
//! cleanly and their error paths show the API's answers; a browser customer's screen reaches a native QUIC
//! technician as decodable frames; a browser technician sees a native customer's screen and its clicks arrive
//! at the customer at the clicked coordinates. Needs Debian's chromium and playwright-core in
//! target/browser-node (`.ci/browser-setup` installs both); without them the tests skip, except in CI (`CI`
//! set), where they fail.

use crate::common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assist_relay::client::screen::FrameSaver;
use assist_relay::client::MediaSender;
use assist_relay::media::{Codec, MediaReader, ReadOptions};
use assist_relay::protocol::message::{Annotation, AnnotationKind};
use assist_relay::protocol::{
    ClientMsg, ErrorCode, FrameHeader, InputEvent, ServerMsg, FRAME_HEADER_LEN,
};
use assist_relay::transport::quic::{GroupEvent, GroupOrder, GroupStreams};
use common::api::{self, PASSWORD};
use common::*;
use serde_json::{json, Value};

pub(crate) const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Whether node, chromium and playwright-core are there; the reason why not otherwise. In CI a missing tool
/// fails the test instead of skipping it.
pub(crate) fn browser_ready() -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let playwright = playwright_core();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing = if !node {
        Some("node is not installed".to_string())
    } else if !Path::new(&chromium).exists() {
        Some(format!("{chromium} is not installed"))
    } else if !playwright.join("package.json").exists() {
        Some(format!(
            "playwright-core is not in {}",
            playwright.display()
        ))
    } else {
        None
    };
    match missing {
        None => true,
        Some(why) if std::env::var_os("CI").is_none() => {
            eprintln!("skipping the browser test: {why} (run .ci/browser-setup; CI requires it)");
            false
        }
        Some(why) => panic!("{why}: CI must run .ci/browser-setup before the tests"),
    }
}

pub(crate) fn playwright_core() -> PathBuf {
    std::env::var_os("PLAYWRIGHT_CORE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(ROOT).join("target/browser-node/node_modules/playwright-core"))
}

/// What a script printed: its JSON result line, and its stderr for the failure message.
pub(crate) struct ScriptRun {
    pub(crate) ok: bool,
    pub(crate) result: Value,
    pub(crate) stderr: String,
}

/// Runs `node tests/browser/<script> args...` with `env`, killed after `limit`. Blocking: call it from
/// `spawn_blocking`.
pub(crate) fn node(
    script: &str,
    args: &[String],
    env: &[(&str, String)],
    limit: Duration,
) -> ScriptRun {
    let path = Path::new(ROOT).join("tests/browser").join(script);
    let mut child = Command::new("node")
        .arg(&path)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("PLAYWRIGHT_CORE", playwright_core())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node {}: {e}", path.display()));
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = pipe(Box::new(child.stdout.take().unwrap()));
    let err = pipe(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    let result = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .unwrap_or_else(|| json!({ "ok": false, "error": "no JSON result", "stdout": stdout }));
    let ok = status.is_some_and(|s| s.success()) && result["ok"] == true;
    let stderr = match status {
        None => format!("killed after {limit:?}\n{stderr}"),
        Some(_) => stderr,
    };
    ScriptRun { ok, result, stderr }
}

pub(crate) async fn node_async(
    script: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    limit: Duration,
) -> ScriptRun {
    tokio::task::spawn_blocking(move || node(script, &args, &env, limit))
        .await
        .unwrap()
}

/// A relay whose WebRTC port is an ephemeral loopback port (tests run in parallel).
pub(crate) async fn start_relay() -> TestRelay {
    TestRelay::start_with(|l| l.webrtc.listen = Some("127.0.0.1:0".parse().unwrap())).await
}

/// ffmpeg decodes a recording of a browser's share without an error. As `common::ffmpeg_decodes`, but in the
/// recording's own time base (`-enc_time_base -1`): a browser captures on its own clock, and two frames closer
/// than ffmpeg's guessed frame period would otherwise be reported as non-monotonic timestamps of its null
/// output, although every timestamp in the file increases.
pub(crate) fn browser_recording_decodes(path: &Path) {
    let out = match Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-enc_time_base", "-1", "-f", "null", "-"])
        .output()
    {
        Ok(o) => o,
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("ffmpeg not found: skipping the decode check (CI requires it)");
            return;
        }
        Err(e) => panic!("ffmpeg is required in CI: {e}"),
    };
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub(crate) fn assert_script(name: &str, run: &ScriptRun) {
    assert!(
        run.ok,
        "{name} failed: {}\nstderr:\n{}",
        serde_json::to_string_pretty(&run.result).unwrap(),
        run.stderr
    );
}

/// Every page loads at a desktop's and a phone's width without console errors or CSP violations, with named
/// controls; the codec matches the protocol's byte examples; a wrong code and a wrong password show the API's
/// error; an account whose first-login setup is pending is told so; a technician signs in, sees the ticket
/// assigned to them and starts remote assistance from it; the operator key creates a session.
#[tokio::test]
async fn pages_load_cleanly() {
    if !browser_ready() {
        return;
    }
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = start_relay().await;
        let admin = api::admin(&relay).await;
        let tech = api::user(&admin, "tech-b1", "technician").await;
        let (s, ticket) = admin
            .post(
                "/api/v1/tickets",
                json!({ "title": "printer offline", "kind": "hardware", "priority": "low" }),
            )
            .await;
        assert_eq!(s, 201, "{ticket}");
        let id = ticket["id"].as_i64().unwrap();
        let (s, v) = admin
            .post(
                &format!("/api/v1/tickets/{id}/assign"),
                json!({ "assignee_id": tech.id() }),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        // An account whose first-login setup is not done.
        let (s, v) = admin
            .post(
                "/api/v1/users",
                json!({
                    "employee_id": "newcomer", "email": "newcomer@example.com", "name": "New Comer",
                    "department": "IT", "contact": "ext. 101", "role": "technician",
                    "password": "newcomer-initial-pw",
                }),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let env = vec![
            ("TECH_LOGIN", "tech-b1".to_string()),
            ("TECH_PASSWORD", PASSWORD.to_string()),
            ("TICKET", ticket["number"].as_str().unwrap().to_string()),
            ("SETUP_LOGIN", "newcomer".to_string()),
            ("SETUP_PASSWORD", "newcomer-initial-pw".to_string()),
            ("OPERATOR_KEY", relay.key.clone()),
            ("TIMEOUT", "80".to_string()),
        ];
        let run = node_async(
            "pages.mjs",
            vec![relay.api.clone()],
            env,
            Duration::from_secs(85),
        )
        .await;
        assert_script("pages.mjs", &run);
        eprintln!("pages.mjs: {}", run.result);
        // The ticket's remote assistance was started from the page.
        let (s, v) = admin.get(&format!("/api/v1/tickets/{id}")).await;
        assert_eq!((s, v["status"].as_str()), (200, Some("in_progress")), "{v}");
    })
    .await
    .unwrap();
}

/// A browser customer (synthetic screen, control allowed) shares with a native QUIC technician: at least 30
/// frames arrive, the first a keyframe, and ffmpeg decodes them; the customer's consent reaches the
/// technician, and the technician's input events reach the page, which shows their chat and draws their
/// annotation over its preview.
#[tokio::test]
async fn browser_customer_to_native_technician() {
    if !browser_ready() {
        return;
    }
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = start_relay().await;
        let s = relay.create().await;
        let mut tech = relay.technician(&s).await;
        let max_frame = match &tech.welcome {
            ServerMsg::Welcome {
                max_frame_bytes, ..
            } => *max_frame_bytes as usize,
            _ => unreachable!(),
        };
        let customer = tokio::spawn(node_async(
            "customer.mjs",
            vec![
                relay.api.clone(),
                s.code_display.clone(),
                "12".into(),
                "70".into(),
            ],
            vec![],
            Duration::from_secs(75),
        ));
        // The page joins allowing control; then the technician moves the pointer a few times.
        let control = expect_msg(&mut tech, |m| matches!(m, ServerMsg::Control { .. })).await;
        assert!(
            matches!(control, ServerMsg::Control { allowed: true }),
            "{control:?}"
        );
        for i in 0..5u16 {
            let ev = InputEvent::MouseMove {
                x: 1000 * i,
                y: 2000,
            };
            tech.tx.send(&ClientMsg::Input(ev)).await.unwrap();
        }
        tech.tx
            .send(&ClientMsg::Chat("hello from the native technician".into()))
            .await
            .unwrap();
        // A circle around the middle of the customer's screen (track 0).
        let circle = Annotation {
            kind: AnnotationKind::Ellipse,
            track: 0,
            color: 0xff00_00ff,
            width: 600,
            points: vec![(20_000, 20_000), (45_000, 45_000)],
            text: String::new(),
        };
        tech.tx.send(&ClientMsg::Annotate(circle)).await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let mut saver = FrameSaver::default();
        let mut groups = GroupStreams::new(&tech.conn, max_frame, GroupOrder::Strict);
        let (mut first, mut codec) = (None, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(50);
        while saver.frames < 30 {
            let Ok(ev) = tokio::time::timeout_at(deadline, groups.next()).await else {
                let rtp_in = relay
                    .metric("assist_relay_webrtc_rtp_bytes_total{direction=\"in\"}")
                    .await;
                panic!(
                    "only {} frames arrived ({rtp_in} RTP bytes reached the relay)",
                    saver.frames
                );
            };
            let ev = ev.expect("the connection stays open");
            let GroupEvent::Frame(f) = ev else { continue };
            let header: &[u8; FRAME_HEADER_LEN] = f.wire[..FRAME_HEADER_LEN].try_into().unwrap();
            let fh = FrameHeader::decode(header, max_frame).unwrap();
            first.get_or_insert(fh.keyframe);
            codec.get_or_insert(fh.codec);
            saver
                .save(&f.wire, max_frame, |c| {
                    dir.path().join(format!(
                        "browser.{}",
                        assist_relay::client::screen::extension(c)
                    ))
                })
                .unwrap();
        }
        assert_eq!(first, Some(true), "the first frame is a keyframe");
        assert!(
            matches!(codec, Some(Codec::Vp8 | Codec::H264)),
            "VP8 or H.264, not {codec:?}"
        );
        let path = saver.path().unwrap().to_owned();
        saver.finish().unwrap();
        browser_recording_decodes(&path);

        let run = customer.await.unwrap();
        assert_script("customer.mjs", &run);
        let r = &run.result;
        assert!(
            r["inputs"].as_u64().unwrap_or(0) >= 5,
            "the page received the technician's input: {r}"
        );
        // The page shows the technician's chat and draws their annotation over its preview.
        assert!(
            r["chat"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l == "Technician: hello from the native technician"),
            "{r}"
        );
        assert_eq!(r["annotations"].as_u64(), Some(1), "{r}");
        assert!(r["drawn_pixels"].as_u64().unwrap_or(0) > 0, "{r}");
    })
    .await
    .unwrap();
}

/// Sends the shipped VP8 recording in a loop, paced at 30 fps, restarting at its first
/// keyframe whenever a keyframe is requested (a recording cannot make one on demand), until `stop`.
pub(crate) async fn share_recording(
    mut sender: MediaSender,
    mut keyframe_wanted: tokio::sync::watch::Receiver<u64>,
    stop: tokio_util::sync::CancellationToken,
) -> u64 {
    let path = Path::new(ROOT).join("tests/fixtures/screen-vp8-720p.ivf");
    let frames: Vec<_> = MediaReader::open(&path, ReadOptions::default())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let period = Duration::from_micros(1_000_000 / 30);
    let (mut i, mut sent, mut ts) = (0usize, 0u64, 0u64);
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        if keyframe_wanted.has_changed().unwrap_or(false) {
            keyframe_wanted.borrow_and_update();
            i = 0;
        }
        let f = &frames[i % frames.len()];
        if sender
            .send(f.codec, f.keyframe, ts, f.data.clone())
            .await
            .is_err()
        {
            break;
        }
        (i, sent, ts) = (
            (i + 1) % frames.len(),
            sent + 1,
            ts + period.as_micros() as u64,
        );
    }
    sent
}

/// A browser technician sees a native customer's screen (the shipped VP8 recording): the page shows at least
/// 20 frames, then clicks the picture at its centre and near two corners; the customer receives each click
/// as a left button press and release at the clicked normalised coordinates. Then the page's "Request
/// keyframe" reaches the customer as a KEYFRAME_REQUEST, and its "End session" ends the session.
#[tokio::test]
async fn browser_technician_sees_native_customer_and_clicks_arrive() {
    if !browser_ready() {
        return;
    }
    tokio::time::timeout(TEST_LIMIT, async {
        let relay = start_relay().await;
        let s = relay.create().await;
        let customer = relay.customer(&s.code, true).await.unwrap();
        let assist_relay::client::Session { conn, mut rx, .. } = customer;
        // Input events in order, with the keyframe requests among them (None).
        let inputs = Arc::new(Mutex::new(Vec::new()));
        let (kf_tx, kf_rx) = tokio::sync::watch::channel(0u64);
        let reader = {
            let (inputs, clock) = (inputs.clone(), relay.clock.clone());
            tokio::spawn(async move {
                while let Ok(Some(m)) = rx.recv().await {
                    match m {
                        ServerMsg::Input(ev) => inputs.lock().unwrap().push(Some(ev)),
                        ServerMsg::KeyframeRequest { .. } => {
                            inputs.lock().unwrap().push(None);
                            kf_tx.send_modify(|n| *n += 1);
                            // The relay's clock is manual: let the keyframe interval pass, so that the
                            // next request (the page's button) is not held back by the throttle.
                            clock.advance(Duration::from_secs(1));
                        }
                        _ => {}
                    }
                }
            })
        };
        let stop = tokio_util::sync::CancellationToken::new();
        let sharing = tokio::spawn(share_recording(
            MediaSender::new(conn.clone(), 0),
            kf_rx,
            stop.clone(),
        ));
        let run = node_async(
            "technician.mjs",
            vec![
                relay.api.clone(),
                s.technician_token.clone(),
                "20".into(),
                "0.5,0.5;0.1,0.1;0.9,0.8".into(),
                "70".into(),
            ],
            vec![],
            Duration::from_secs(75),
        )
        .await;
        stop.cancel();
        let sent = sharing.await.unwrap();
        assert_script("technician.mjs", &run);
        assert!(run.result["frames"].as_u64().unwrap() >= 20, "{}", run.result);
        assert_eq!(run.result["state"], "ended", "{}", run.result);
        // The page's "End session" ended it for the customer too.
        let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed())
            .await
            .expect("the customer's connection is closed");
        assert!(
            matches!(
                &closed,
                quinn::ConnectionError::ApplicationClosed(c)
                    if c.error_code == quinn::VarInt::from(ErrorCode::SessionEnded as u32)
            ),
            "{closed:?}"
        );
        reader.abort();
        let log = inputs.lock().unwrap().clone();
        // The page's "Request keyframe" came after its clicks.
        let last_click = log.iter().rposition(|e| e.is_some()).unwrap_or(0);
        assert!(
            log[last_click..].iter().any(Option::is_none),
            "no keyframe request after the clicks: {log:?}"
        );
        let got: Vec<InputEvent> = log.into_iter().flatten().collect();
        let presses: Vec<_> = got
            .iter()
            .filter_map(|e| match e {
                InputEvent::MouseButton {
                    button: 0,
                    pressed,
                    x,
                    y,
                } => Some((*pressed, *x, *y)),
                _ => None,
            })
            .collect();
        let clicks = run.result["clicks"].as_array().unwrap();
        // 1 % of the range: a click lands on a CSS pixel, the script rounds a fraction.
        let near = |a: u16, b: u64| (i64::from(a) - b as i64).abs() <= 656;
        for c in clicks {
            let (x, y) = (c["x"].as_u64().unwrap(), c["y"].as_u64().unwrap());
            for pressed in [true, false] {
                assert!(
                    presses
                        .iter()
                        .any(|&(p, px, py)| p == pressed && near(px, x) && near(py, y)),
                    "no {} of the left button near ({x}, {y}) among {presses:?} ({sent} frames sent)",
                    if pressed { "press" } else { "release" },
                );
            }
        }
        assert_eq!(
            presses.len(),
            2 * clicks.len(),
            "one press and one release per click: {presses:?}"
        );
    })
    .await
    .unwrap();
}
