//! The `assist-relay` binary as a user runs it (README): `serve` on port 0, the demo technician and customer
//! as separate processes, a refused code, SIGTERM, and the meeting demo.

use crate::common;

// The meeting client's file transfers (`cli::files::`), in their own file to keep this one short.
#[path = "cli/files.rs"]
mod files;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::api::{finish_setup, session, ADMIN_PASSWORD};

const BIN: &str = env!("CARGO_BIN_EXE_assist-relay");

/// Kills the child if the test fails before it is reaped.
struct Reap(Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(key))
}

/// Starts the demo technician and reads up to the `code:` line it prints once it has joined.
fn start_technician(
    http: &str,
    data: &Path,
    save: impl AsRef<std::ffi::OsStr>,
    extra: &[&str],
) -> (Reap, BufReader<std::process::ChildStdout>, String) {
    let mut tech = Reap(
        Command::new(BIN)
            .args(["technician", "--api", &format!("http://{http}")])
            .arg("--operator-key-file")
            .arg(data.join("operator.key"))
            .arg("--save")
            .arg(save)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(tech.0.stdout.take().unwrap());
    let mut code = String::new();
    while !code.starts_with("code: ") {
        code.clear();
        assert!(
            out.read_line(&mut code).unwrap() > 0,
            "technician printed no code"
        );
    }
    let code = code.trim().strip_prefix("code: ").unwrap().to_string();
    (tech, out, code)
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A running `serve` process and what it printed: its bound addresses and its certificate's pin.
struct Served {
    server: Reap,
    quic: String,
    http: String,
    fp: String,
}

/// Finishes the administrator's first login on the HTTP API at `http` and schedules a meeting about
/// `topic`: (the host's join token, the meeting code).
fn staff_meeting(http: &str, topic: &str) -> (String, String) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut admin = session(&format!("http://{http}"), "admin", ADMIN_PASSWORD).await;
        finish_setup(&mut admin, ADMIN_PASSWORD, None, "+86 138 0000 0000").await;
        let (status, m) = admin
            .post("/api/v1/meetings", serde_json::json!({ "topic": topic }))
            .await;
        assert_eq!(status, 201, "{m}");
        let text = |k: &str| m[k].as_str().unwrap().to_string();
        (text("host_token"), text("code_display"))
    })
}

/// `assist-relay meeting` against the relay at `quic`, as `name`.
fn meeting_cmd(quic: &str, fp: &str, name: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["meeting", "--relay", quic, "--server-cert-sha256", fp])
        .args(["--name", name]);
    c
}

/// Reads a meeting client's output until it has entered: (its participant id, the line that says so).
fn entered(out: &mut impl BufRead) -> (String, String) {
    let mut line = String::new();
    while !line.starts_with("entered the meeting as participant ") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "it never entered");
    }
    (line.split_whitespace().nth(5).unwrap().to_string(), line)
}

/// Starts `serve` on port 0 with its data in `data` and the flags `extra`; the administrator's first
/// password is [`ADMIN_PASSWORD`].
fn serve(data: &Path, extra: &[&str]) -> Served {
    let mut server = Reap(
        Command::new(BIN)
            .args([
                "serve",
                "--quic-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
            ])
            .args(["--metrics-listen", "127.0.0.1:0", "--shutdown-grace", "2s"])
            .args(["--webrtc-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data)
            .args(extra)
            .env("RUST_LOG", "info")
            .env("ASSIST_RELAY_BOOTSTRAP_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The bound addresses are logged; port 0 picked free ones.
    let mut log = BufReader::new(server.0.stderr.take().unwrap());
    let (mut quic, mut http) = (String::new(), String::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut line = String::new();
        if log.read_line(&mut line).unwrap() == 0 {
            panic!("server exited early");
        }
        if line.contains("listening") {
            quic = field(&line, "quic=").unwrap().to_string();
            http = field(&line, "http=").unwrap().to_string();
            break;
        }
    }
    assert!(
        quic.starts_with("127.0.0.1:") && !quic.ends_with(":0"),
        "bound QUIC address logged: {quic}"
    );
    std::thread::spawn(move || std::io::copy(&mut log, &mut std::io::sink()));
    let mut out = BufReader::new(server.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let fp = line
        .trim()
        .strip_prefix("cert-sha256: ")
        .expect("fingerprint printed")
        .to_string();
    assert_eq!(fp.len(), 64);
    // Then where a browser finds the pages, on the bound HTTP address.
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        format!("pages: http://{http}/customer  /technician  /meeting")
    );
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Served {
        server,
        quic,
        http,
        fp,
    }
}

#[test]
fn serve_then_technician_and_customer_processes_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Served {
        mut server,
        quic,
        http,
        fp,
    } = serve(&data, &[]);
    assert!(data.join("operator.key").exists() && data.join("tls/cert.pem").exists());

    // A wrong code: non-zero exit and the reason in words.
    let bad = Command::new(BIN)
        .args([
            "customer",
            "--relay",
            &quic,
            "--server-cert-sha256",
            &fp,
            "--code",
            "0000 0000 0000",
        ])
        .args(["--share", &fixture("screen-vp8-720p.ivf")])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("no such authorization code") || err.contains("code_unknown"),
        "{err}"
    );

    // Something that is not a code is refused before it reaches the relay (no failed guess is charged).
    let typo = Command::new(BIN)
        .args(["customer", "--relay", &quic, "--server-cert-sha256", &fp])
        .args(["--code", "12ab", "--share", &fixture("screen-vp8-720p.ivf")])
        .output()
        .unwrap();
    assert!(!typo.status.success());
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("is not an authorization code"),
        "{}",
        String::from_utf8_lossy(&typo.stderr)
    );

    // A wrong pin: refused, with the reason.
    let pin = Command::new(BIN)
        .args([
            "customer",
            "--relay",
            &quic,
            "--server-cert-sha256",
            &"00".repeat(32),
            "--code",
            "1111 2222 3333",
        ])
        .args(["--share", &fixture("screen-vp8-720p.ivf")])
        .output()
        .unwrap();
    assert!(!pin.status.success());
    assert!(
        String::from_utf8_lossy(&pin.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&pin.stderr)
    );

    // A technician that cannot reach the relay (wrong pin) prints no code and withdraws its session.
    let tpin = Command::new(BIN)
        .args(["technician", "--api", &format!("http://{http}")])
        .arg("--operator-key-file")
        .arg(data.join("operator.key"))
        .arg("--save")
        .arg(dir.path().join("never.ivf"))
        .args(["--server-cert-sha256", &"00".repeat(32)])
        .output()
        .unwrap();
    assert!(!tpin.status.success());
    assert!(!String::from_utf8_lossy(&tpin.stdout).contains("code:"));
    // The withdrawn session's room ends just after the DELETE is answered: poll (bounded) until it is gone.
    let readyz = || {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&http).unwrap();
        c.write_all(b"GET /readyz HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        c.read_to_string(&mut text).unwrap();
        text
    };
    let mut ready = readyz();
    for _ in 0..100 {
        if ready.contains("\"sessions\":0") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        ready = readyz();
    }
    assert!(ready.contains("\"sessions\":0"), "{ready}");

    // The demo: the technician prints the code, the customer shares the recording, both exit 0.
    let saved = dir.path().join("received.ivf");
    let (mut tech, mut tech_out, code) = start_technician(
        &http,
        &data,
        &saved,
        &["--input-script", &fixture("demo-input.txt")],
    );
    let cust = Command::new(BIN)
        .args([
            "customer",
            "--relay",
            &quic,
            "--server-cert-sha256",
            &fp,
            "--code",
            &code,
            "--speed",
            "8",
        ])
        .args(["--share", &fixture("screen-vp8-720p.ivf")])
        .output()
        .unwrap();
    let cust_out = String::from_utf8_lossy(&cust.stdout);
    assert!(
        cust.status.success(),
        "customer: {}",
        String::from_utf8_lossy(&cust.stderr)
    );
    assert!(
        cust_out.contains("input: MouseMove"),
        "the scripted input reached the customer: {cust_out}"
    );
    assert!(
        cust_out.contains("chat from technician: Hello"),
        "{cust_out}"
    );
    let status = tech.0.wait().unwrap();
    let mut rest = String::new();
    tech_out.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "technician failed: {rest}");
    assert!(rest.contains("saved 150 frames"), "{rest}");
    assert_eq!(
        std::fs::metadata(&saved).unwrap().len(),
        std::fs::metadata(fixture("screen-vp8-720p.ivf"))
            .unwrap()
            .len()
    );

    // The customer revokes control from its console while sharing; the technician is told.
    let (mut tech, mut tech_out, code) =
        start_technician(&http, &data, dir.path().join("second.ivf"), &[]);
    let mut cust = Reap(
        Command::new(BIN)
            .args(["customer", "--relay", &quic, "--server-cert-sha256", &fp])
            .args(["--code", &code, "--speed", "8", "--console"])
            .args(["--share", &fixture("screen-vp8-720p.ivf")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    {
        use std::io::Write;
        let mut stdin = cust.0.stdin.take().unwrap();
        stdin.write_all(b"view-only\n").unwrap();
    } // stdin closes here: the customer goes on sharing
    let mut cust_out = String::new();
    cust.0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut cust_out)
        .unwrap();
    assert!(cust.0.wait().unwrap().success(), "{cust_out}");
    assert!(
        cust_out.contains("control revoked: view only"),
        "{cust_out}"
    );
    let mut rest = String::new();
    tech_out.read_to_string(&mut rest).unwrap();
    assert!(tech.0.wait().unwrap().success(), "{rest}");
    assert!(rest.contains("control allowed: false"), "{rest}");

    // Ctrl-C on the technician while frames flow: it ends the session itself, finishes its file and exits
    // 0; the customer is told at once (not after an idle timeout) and exits 0 too.
    let partial = dir.path().join("partial.ivf");
    let (mut tech, mut tech_out, code) = start_technician(&http, &data, &partial, &[]);
    let mut cust = Reap(
        Command::new(BIN)
            .args(["customer", "--relay", &quic, "--server-cert-sha256", &fp])
            .args(["--code", &code, "--share", &fixture("screen-vp8-720p.ivf")])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut cust_out = BufReader::new(cust.0.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("joined the session") {
        line.clear();
        assert!(
            cust_out.read_line(&mut line).unwrap() > 0,
            "customer never joined"
        );
    }
    // The recording lasts 10 s at its own pace: a second in, frames are flowing.
    std::thread::sleep(Duration::from_secs(1));
    let interrupted = Instant::now();
    Command::new("kill")
        .args(["-INT", &tech.0.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    tech_out.read_to_string(&mut rest).unwrap();
    assert!(tech.0.wait().unwrap().success(), "{rest}");
    assert!(rest.contains("ending the session"), "{rest}");
    let mut cust_rest = String::new();
    cust_out.read_to_string(&mut cust_rest).unwrap();
    assert!(cust.0.wait().unwrap().success(), "{cust_rest}");
    assert!(
        cust_rest.contains("ended before the recording finished"),
        "{cust_rest}"
    );
    assert!(
        interrupted.elapsed() < Duration::from_secs(8),
        "the customer stopped well before the end of the recording"
    );
    let saved: Vec<_> = assist_relay::media::MediaReader::open(
        &partial,
        assist_relay::media::ReadOptions::default(),
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    assert!(
        !saved.is_empty() && saved.len() < 150,
        "{} frames",
        saved.len()
    );

    // SIGTERM: the server exits 0 within its grace period.
    let started = Instant::now();
    Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "server did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "server exit status {status}");
}

/// The meeting demo as the README shows it: the administrator creates a meeting over HTTP; a guest enters
/// with its code, saves every track and accepts files; the host enters with its token, chats, offers a
/// file, shares the shipped recording and, once it is sent, ends the meeting. Both exit 0, and the guest's
/// file holds the recording's frames byte for byte.
#[test]
fn a_host_shares_a_recording_with_a_guest_who_saves_it() {
    let dir = tempfile::tempdir().unwrap();
    let Served {
        server: _server,
        quic,
        http,
        fp,
    } = serve(&dir.path().join("data"), &[]);
    let (host_token, code) = staff_meeting(&http, "demo");
    let meeting = |name: &str| meeting_cmd(&quic, &fp, name);

    let (saved, inbox) = (dir.path().join("saved"), dir.path().join("inbox"));
    let mut guest = Reap(
        meeting("Guest")
            .args(["--code", &code, "--duration", "60"])
            .arg("--save-dir")
            .arg(&saved)
            .arg("--accept-files")
            .arg(&inbox)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut guest_out = BufReader::new(guest.0.stdout.take().unwrap());
    let (guest_id, line) = entered(&mut guest_out);
    assert!(line.contains("(participant)"), "{line}");

    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "what we found\n".repeat(500)).unwrap();
    let host = meeting("Host")
        .args(["--token", &host_token, "--speed", "8"])
        .args(["--share", &fixture("screen-vp8-720p.ivf")])
        .args(["--chat", "hello from the host"])
        .arg("--send-file")
        .arg(&notes)
        .args(["--to", &guest_id])
        .output()
        .unwrap();
    let host_out = String::from_utf8_lossy(&host.stdout);
    assert!(
        host.status.success(),
        "host: {host_out}{}",
        String::from_utf8_lossy(&host.stderr)
    );
    assert!(host_out.contains("(host)"), "{host_out}");
    assert!(host_out.contains("shared 150 frames"), "{host_out}");
    assert!(
        host_out.contains("ending the meeting for everyone"),
        "{host_out}"
    );
    assert!(host_out.contains("verified its SHA-256"), "{host_out}");

    let mut rest = String::new();
    guest_out.read_to_string(&mut rest).unwrap();
    assert!(guest.0.wait().unwrap().success(), "guest: {rest}");
    assert!(rest.contains("hello from the host"), "{rest}");
    assert!(rest.contains("ended by the host"), "{rest}");
    assert!(rest.contains("saved 150 frames of track"), "{rest}");
    assert_eq!(
        std::fs::read(inbox.join("notes.txt")).unwrap(),
        std::fs::read(&notes).unwrap()
    );
    let files: Vec<_> = std::fs::read_dir(&saved)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "ivf");
    let frames = |path: &Path| -> Vec<_> {
        assist_relay::media::MediaReader::open(path, Default::default())
            .unwrap()
            .map(|f| {
                let f = f.unwrap();
                (f.keyframe, f.data)
            })
            .collect()
    };
    assert_eq!(
        frames(&files[0]),
        frames(Path::new(&fixture("screen-vp8-720p.ivf"))),
        "every frame, byte for byte"
    );
    common::ffmpeg_decodes(&files[0]);
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// The full server (QUIC, WebRTC with str0m's DTLS on aws-lc-rs, rustls on ring, the HTTP API) starts as a
/// user runs it, answers browser-style peers, and gives back what each connect/close cycle took: after a
/// warm-up, 200 more cycles leave its resident memory within 5%.
#[test]
fn full_server_answers_webrtc_peers_with_memory_flat_over_200_cycles() {
    use assist_relay::client::webrtc::{RtcClient, RtcOptions};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Served { server, http, .. } = serve(&data, &[]);
    let pid = server.0.id();
    let api = format!("http://{http}");
    let key = std::fs::read_to_string(data.join("operator.key")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cycle = || async {
        let s = assist_relay::client::technician::create_session(&api, key.trim())
            .await
            .unwrap();
        let opts = RtcOptions {
            recv_tracks: 1,
            ..RtcOptions::default()
        };
        let mut peer = RtcClient::connect(&api, "as=technician", &s.technician_token, &opts)
            .await
            .unwrap();
        peer.wait_msg(Duration::from_secs(20), |m| {
            matches!(m, assist_relay::protocol::ServerMsg::Welcome { .. }).then_some(())
        })
        .await
        .expect("welcome on the control channel");
        peer.close().await;
        let del = reqwest::Client::new()
            .delete(format!("{api}/api/v1/assist-sessions/{}", s.session_id))
            .bearer_auth(key.trim())
            .send()
            .await
            .unwrap();
        assert_eq!(del.status().as_u16(), 204);
    };
    let cycles = |n: usize| async move {
        for _ in 0..n {
            cycle().await;
        }
    };
    rt.block_on(async {
        cycles(50).await;
        // Let the last peers' tasks finish before measuring.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let before = rss_kib(pid);
        let started = Instant::now();
        cycles(200).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let after = rss_kib(pid);
        eprintln!(
            "relay RSS {before} KiB -> {after} KiB over 200 WebRTC connect/close cycles ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
        assert!(
            after as f64 <= before as f64 * 1.05,
            "relay RSS grew from {before} KiB to {after} KiB over 200 cycles"
        );
    });
}

/// `serve` on loopback with a fresh `data` directory and the HTTP API on `http`.
fn serve_cmd(data: &Path, http: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--quic-listen",
        "127.0.0.1:0",
        "--http-listen",
        http,
    ])
    .args([
        "--metrics-listen",
        "127.0.0.1:0",
        "--webrtc-listen",
        "127.0.0.1:0",
    ])
    .arg("--data-dir")
    .arg(data)
    .env("RUST_LOG", "info");
    cmd
}

/// Starts `cmd` and returns it (killed on drop) with the log lines before `listening` (bounded in time).
fn start_logged(mut cmd: Command) -> (Reap, Vec<String>) {
    let mut server = Reap(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(server.0.stderr.take().unwrap());
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut line = String::new();
        if log.read_line(&mut line).unwrap() == 0 || line.contains("listening") {
            break;
        }
        lines.push(line);
    }
    (server, lines)
}

/// Settings that cannot work stop `serve` before it binds anything, with one line naming the key.
#[test]
fn serve_refuses_settings_that_cannot_work() {
    let data = tempfile::tempdir().unwrap();
    // (flags, environment variable, what the one error line says)
    type Case<'a> = (&'a [&'a str], Option<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 11] = [
        (&["--webrtc-advertise", "0.0.0.0"], None, "webrtc.advertise"),
        (
            &["--webrtc-advertise", "::ffff:224.0.0.1"],
            None,
            "webrtc.advertise",
        ),
        (
            &["--webrtc-nack-history", "0"],
            None,
            "webrtc.nack_history must be at least 1",
        ),
        (
            &[],
            Some(("ASSIST_RELAY_CHAT_HISTORY", "5")),
            "ASSIST_RELAY_CHAT_HISTORY is now ASSIST_RELAY_MEETING_CHAT_HISTORY",
        ),
        (
            &[],
            Some(("ASSIST_RELAY_CODE_TTLL", "5m")),
            "unknown environment variable ASSIST_RELAY_CODE_TTLL",
        ),
        (
            &["--quic-advertise", "relay.example.com"],
            None,
            "server.quic_advertise",
        ),
        (
            &["--cert-file", "cert.pem"],
            None,
            "tls.cert_file and tls.key_file go together",
        ),
        (
            &["--global-failures-per-sec", "0"],
            None,
            "pairing.global_failures_per_sec must be positive",
        ),
        (
            &["--webrtc-max-offer-bytes", "0"],
            None,
            "webrtc.max_offer_bytes must be at least 4KiB, not 0B",
        ),
        (
            &[],
            Some(("ASSIST_RELAY_MEETING_RECORDING_QUOTA", "0")),
            "meeting.recording_quota must be at least 1MiB, not 0B",
        ),
        // A value clap refuses is reported under the variable that was set, not the flag.
        (
            &[],
            Some(("ASSIST_RELAY_MEETING_WHITEBOARD_BYTES", "lots")),
            "invalid value 'lots' for ASSIST_RELAY_MEETING_WHITEBOARD_BYTES (--meeting-whiteboard-bytes): invalid size",
        ),
    ];
    for (args, env, want) in cases {
        let mut cmd = serve_cmd(data.path(), "127.0.0.1:0");
        cmd.args(args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// A UDP buffer the kernel caps is named for each socket that asked for it (QUIC and WebRTC).
#[test]
fn capped_udp_buffers_are_warned_about_per_socket() {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = serve_cmd(data.path(), "127.0.0.1:0");
    // Far above any net.core.rmem_max a test machine has.
    cmd.args(["--udp-buffer", "1GiB"])
        .env("ASSIST_RELAY_BOOTSTRAP_PASSWORD", ADMIN_PASSWORD);
    let (_server, lines) = start_logged(cmd);
    let warned: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains("UDP buffers capped by the kernel"))
        .map(|l| field(l, "socket=").unwrap_or_default())
        .collect();
    assert_eq!(warned, ["\"QUIC\"", "\"WebRTC\""], "one warning per socket");
}

/// A first start that fails on a busy port does not spend the first administrator's one-time password: the
/// start that succeeds prints it.
#[test]
fn a_failed_first_start_keeps_the_one_time_password_for_the_next() {
    let data = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cmd = serve_cmd(data.path(), &busy.local_addr().unwrap().to_string());
    let out = cmd
        .env_remove("ASSIST_RELAY_BOOTSTRAP_PASSWORD")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot bind HTTP API"),
        "{err}"
    );
    assert!(
        !err.contains("one_time_password"),
        "spent on a failed start: {err}"
    );
    drop(busy);
    let mut cmd = serve_cmd(data.path(), "127.0.0.1:0");
    cmd.env_remove("ASSIST_RELAY_BOOTSTRAP_PASSWORD");
    let (_server, lines) = start_logged(cmd);
    assert!(
        lines.iter().any(|l| l.contains("one_time_password=")),
        "the successful first start prints the password: {lines:?}"
    );
}
