//! `assist-relay technician`: creates a session through the API, prints the code, joins over QUIC, saves the
//! customer's screen to a file (IVF for VP8/VP9/AV1, Annex B for H.264), runs an optional input script, and
//! prints chat. Exits 0 when the customer ends the session, non-zero with the reason otherwise.

use std::future::Future;
use std::path::{Path, PathBuf};

use tokio::sync::watch;

use super::screen::{extension, FrameSaver};
use super::script::{self, Step};
use super::{endpoint_for, join, resolve, ClientError, ControlReceiver, ControlSender, TrustArgs};
use crate::api::CreatedSession;
use crate::media::Codec;
use crate::protocol::{ClientMsg, ErrorCode, Hello, ServerMsg};
use crate::transport::quic::{GroupEvent, GroupOrder, GroupStreams};

/// Flags of `assist-relay technician`.
#[derive(Debug, Clone, clap::Args)]
pub struct TechnicianArgs {
    /// Base URL of the relay's HTTP API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// Operator key (service credential) for the API.
    #[arg(long, env = "ASSIST_RELAY_OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Option<String>,
    /// File holding the operator key, used when --operator-key is not given.
    #[arg(long, default_value = "data/operator.key")]
    pub operator_key_file: PathBuf,
    /// Where to save the received screen.
    #[arg(long)]
    pub save: PathBuf,
    /// Input events to send, one per line (see README, "Input scripts").
    #[arg(long)]
    pub input_script: Option<PathBuf>,
    /// Relay address to use instead of the one the API advertises.
    #[arg(long)]
    pub relay: Option<String>,
    /// Join a session created elsewhere instead of creating one: FILE holds the JSON answer of
    /// `POST /api/v1/tickets/{id}/assist` (or `/api/v1/assist-sessions`); no operator key is needed.
    #[arg(long, value_name = "FILE")]
    pub session: Option<PathBuf>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print nothing but errors and the code line.
    #[arg(long)]
    pub quiet: bool,
}

/// What the technician received.
#[derive(Debug, Default, Clone)]
pub struct TechnicianReport {
    pub session_id: String,
    pub frames: u64,
    pub bytes: u64,
    pub groups_skipped: u64,
    pub codec: Option<Codec>,
    pub chats: Vec<String>,
    pub notices: Vec<ErrorCode>,
    pub end: Option<ErrorCode>,
}

/// Creates a session with the operator key.
pub async fn create_session(api: &str, key: &str) -> Result<CreatedSession, ClientError> {
    let url = format!("{}/api/v1/assist-sessions", api.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .post(&url)
        .bearer_auth(key)
        .send()
        .await
        .map_err(|e| ClientError::Other(format!("cannot reach the API at {url}: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        return Err(ClientError::Api {
            status: status.as_u16(),
            code: body["error"]["code"]
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
            message: body["error"]["message"]
                .as_str()
                .unwrap_or("no details")
                .to_string(),
        });
    }
    resp.json()
        .await
        .map_err(|e| ClientError::Other(format!("unexpected API reply: {e}")))
}

/// Prints and collects control messages; publishes whether control is allowed.
async fn receive(
    mut rx: ControlReceiver,
    control: watch::Sender<bool>,
    present: watch::Sender<bool>,
    quiet: bool,
) -> (Vec<String>, Vec<ErrorCode>) {
    let (mut chats, mut notices) = (Vec::new(), Vec::new());
    while let Ok(Some(msg)) = rx.recv().await {
        let line = match msg {
            ServerMsg::Chat { text, .. } => {
                let l = format!("chat from customer: {text}");
                chats.push(text);
                l
            }
            ServerMsg::Clipboard { text, .. } => format!("clipboard from customer: {text}"),
            ServerMsg::Control { allowed } => {
                // The customer states its consent when it joins.
                present.send_replace(true);
                control.send_replace(allowed);
                format!("control allowed: {allowed}")
            }
            ServerMsg::Peer { state, .. } => {
                present.send_replace(state != crate::protocol::message::PeerState::Away);
                format!("customer: {state:?}")
            }
            ServerMsg::Notice {
                code,
                count,
                message,
            } => {
                notices.push(code);
                format!("notice: {message} ({count})")
            }
            other => format!("{other:?}"),
        };
        if !quiet {
            println!("{line}");
        }
    }
    (chats, notices)
}

/// Runs the script once the customer has joined (input sent to nobody would be refused), then keeps the
/// control stream open (dropping it would finish the stream) until `end` turns true: then it ends the
/// session.
async fn run_script(
    steps: Vec<Step>,
    mut tx: ControlSender,
    mut control: watch::Receiver<bool>,
    mut present: watch::Receiver<bool>,
    mut end: watch::Receiver<bool>,
) -> Result<(), ClientError> {
    {
        let script = async {
            if !steps.is_empty() {
                let _ = present.wait_for(|p| *p).await;
            }
            for step in steps {
                match step {
                    Step::Send(msg) => tx.send(&msg).await?,
                    Step::Sleep(d) => tokio::time::sleep(d).await,
                    Step::WaitControl => {
                        let _ = control.wait_for(|allowed| *allowed).await;
                    }
                }
            }
            std::future::pending::<Result<(), ClientError>>().await
        };
        tokio::select! {
            r = script => return r,
            _ = end.wait_for(|e| *e) => {}
        }
    }
    tx.send(&ClientMsg::EndSession).await
}

/// Checks before the session is created that `--save` can be written, so a typo costs no session.
fn check_save_path(path: &Path) -> Result<(), ClientError> {
    std::fs::File::create(path)
        .map(drop)
        .map_err(|e| ClientError::Other(format!("cannot write {}: {e}", path.display())))
}

/// Creates a session and runs the technician until it ends; when `stop` completes (Ctrl-C), the
/// technician ends the session itself and finishes its file.
pub async fn run(
    args: TechnicianArgs,
    stop: impl Future<Output = ()>,
) -> Result<TechnicianReport, ClientError> {
    let steps = match &args.input_script {
        Some(p) => script::parse(
            &std::fs::read_to_string(p)
                .map_err(|e| ClientError::Other(format!("{}: {e}", p.display())))?,
        )
        .map_err(|e| ClientError::Other(format!("{}: {e}", p.display())))?,
        None => Vec::new(),
    };
    check_save_path(&args.save)?;
    if let Some(path) = &args.session {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Other(format!("{}: {e}", path.display())))?;
        let created: CreatedSession = serde_json::from_str(&text).map_err(|e| {
            ClientError::Other(format!(
                "{}: not the JSON answer of a session's creation: {e}",
                path.display()
            ))
        })?;
        return run_session_until(args, steps, created, stop).await;
    }
    let key = match &args.operator_key {
        Some(k) => k.clone(),
        None => std::fs::read_to_string(&args.operator_key_file)
            .map(|s| s.trim().to_string())
            .map_err(|e| {
                ClientError::Other(format!(
                    "no --operator-key given and {} is unreadable: {e}",
                    args.operator_key_file.display()
                ))
            })?,
    };
    let created = create_session(&args.api, &key).await?;
    let (api, id) = (args.api.clone(), created.session_id.clone());
    let result = run_session_until(args, steps, created, stop).await;
    if result.is_err() {
        // Withdraw the session (and its code) rather than leave it live for its whole lifetime; it may
        // already have ended, which is fine.
        let url = format!("{}/api/v1/assist-sessions/{id}", api.trim_end_matches('/'));
        let _ = reqwest::Client::new()
            .delete(url)
            .bearer_auth(&key)
            .send()
            .await;
    }
    result
}

/// Runs the technician in a session already created, until the session ends.
pub async fn run_session(
    args: TechnicianArgs,
    steps: Vec<Step>,
    created: CreatedSession,
) -> Result<TechnicianReport, ClientError> {
    run_session_until(args, steps, created, std::future::pending()).await
}

/// [`run_session`], ending the session when `stop` completes.
pub async fn run_session_until(
    args: TechnicianArgs,
    steps: Vec<Step>,
    created: CreatedSession,
    stop: impl Future<Output = ()>,
) -> Result<TechnicianReport, ClientError> {
    let relay = args
        .relay
        .clone()
        .unwrap_or_else(|| created.relay.quic.clone());
    let trust = args.trust.trust(Some(&created.relay.cert_sha256))?;
    let addr = resolve(&relay).await?;
    let ep = endpoint_for(&trust, addr)?;
    let session = join(
        &ep,
        addr,
        &args.trust.server_name,
        Hello::Technician {
            token: created.technician_token,
        },
    )
    .await?;
    // The code is printed only now that the relay took the technician: a code nobody waits behind is
    // never handed out.
    println!("code: {}", created.code_display);
    if !args.quiet {
        println!("expires: {}", created.code_expires_at);
        println!("relay: {relay}  cert-sha256: {}", created.relay.cert_sha256);
        // The path of this very binary, so the printed line runs as it is (also under `cargo run`).
        let program = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "assist-relay".into());
        println!(
            "the customer runs: {program} customer --relay '{relay}' --server-cert-sha256 {} --code '{}' --share FILE",
            created.relay.cert_sha256, created.code_display
        );
    }
    // The customer may have joined first: then WELCOME already says whether control is allowed, and no
    // CONTROL message follows until the customer changes it.
    let (max_frame, control_allowed, present) = match &session.welcome {
        ServerMsg::Welcome {
            max_frame_bytes,
            control_allowed,
            peer_present,
            ..
        } => (*max_frame_bytes as usize, *control_allowed, *peer_present),
        _ => (4 << 20, false, false),
    };
    let super::Session { conn, tx, rx, .. } = session;
    if !args.quiet {
        println!("joined; waiting for the customer's screen");
    }
    let (control_tx, control_rx) = watch::channel(control_allowed);
    let (present_tx, present_rx) = watch::channel(present);
    let receiver = tokio::spawn(receive(rx, control_tx, present_tx, args.quiet));
    let (end_tx, end_rx) = watch::channel(false);
    let script = tokio::spawn(run_script(steps, tx, control_rx, present_rx, end_rx));

    let mut report = TechnicianReport {
        session_id: created.session_id,
        ..Default::default()
    };
    let mut saver = FrameSaver::default();
    let mut groups = GroupStreams::new(&conn, max_frame, GroupOrder::Strict);
    let mut stop = std::pin::pin!(stop);
    let mut stopping = false;
    loop {
        let ev = tokio::select! {
            ev = groups.next() => ev,
            _ = &mut stop, if !stopping => {
                // The relay ends the session, delivers what it holds and closes: the loop ends then.
                stopping = true;
                end_tx.send_replace(true);
                if !args.quiet {
                    println!("ending the session");
                }
                continue;
            }
        };
        let Ok(ev) = ev else { break };
        let frame = match ev {
            GroupEvent::Frame(f) => f,
            GroupEvent::Ended { reset: true } => {
                report.groups_skipped += 1;
                continue;
            }
            GroupEvent::Ended { .. } | GroupEvent::Stale { .. } | GroupEvent::File { .. } => {
                continue
            }
        };
        saver.save(&frame.wire, max_frame, |codec| {
            let want = extension(codec);
            if args.save.extension().and_then(|e| e.to_str()) != Some(want) {
                eprintln!(
                    "warning: the customer shares {codec:?}; {} is written as .{want} whatever its name",
                    args.save.display()
                );
            }
            args.save.clone()
        })?;
    }
    let end = super::connection_error(&conn.closed().await);
    script.abort();
    report.codec = saver.codec();
    report.frames = saver.frames;
    report.bytes = saver.bytes;
    saver.finish()?;
    let (chats, notices) = receiver.await.unwrap_or_default();
    report.chats = chats;
    report.notices = notices;
    report.end = end.code();
    ep.close(0u32.into(), b"done");
    match end.code() {
        Some(ErrorCode::SessionEnded) => {
            if !args.quiet {
                println!(
                    "session ended: {end}; saved {} frames to {}",
                    report.frames,
                    args.save.display()
                );
            }
            Ok(report)
        }
        _ => Err(end),
    }
}
