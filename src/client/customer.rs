//! `assist-relay customer`: joins a session with the authorization code, shares a recording paced by its
//! timestamps, prints every input event and chat it receives, and ends the session when the recording is
//! sent. Exits non-zero with the reason in words on any failure.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use super::screen::{send_paced, PacingArgs, Sent};
use super::{endpoint_for, join, resolve, ClientError, ControlReceiver, MediaSender, TrustArgs};
use crate::protocol::message::PeerState;
use crate::protocol::{ClientMsg, ErrorCode, Hello, InputEvent, ServerMsg};

/// Flags of `assist-relay customer`.
#[derive(Debug, Clone, clap::Args)]
pub struct CustomerArgs {
    /// Relay QUIC address, HOST:PORT (the technician prints it).
    #[arg(long)]
    pub relay: String,
    /// The authorization code the technician read out (spaces are fine).
    #[arg(long)]
    pub code: String,
    /// Recording to share: IVF (VP8, VP9, AV1) or H.264 Annex B.
    #[arg(long)]
    pub share: PathBuf,
    /// Allow view only: the relay drops the technician's input events.
    #[arg(long)]
    pub view_only: bool,
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Read commands from standard input while sharing, one per line: `view-only` revokes control, `allow`
    /// grants it, `end` ends the session now.
    #[arg(long)]
    pub console: bool,
    /// Give up if the technician has not joined within this many seconds.
    #[arg(long, default_value_t = 600)]
    pub wait_secs: u64,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

/// What the customer sent and received.
#[derive(Debug, Default, Clone)]
pub struct CustomerReport {
    pub frames_sent: u64,
    pub bytes_sent: u64,
    pub inputs: Vec<InputEvent>,
    pub chats: Vec<String>,
    pub keyframe_requests: u32,
    pub notices: Vec<ErrorCode>,
}

/// Prints and collects what arrives on the control stream; tells `peer` when the technician is present.
async fn receive(
    mut rx: ControlReceiver,
    peer: watch::Sender<bool>,
    quiet: bool,
) -> CustomerReport {
    let mut report = CustomerReport::default();
    let say = |s: String| {
        if !quiet {
            println!("{s}");
        }
    };
    while let Ok(Some(msg)) = rx.recv().await {
        match msg {
            ServerMsg::Input(ev) => {
                say(format!("input: {ev:?}"));
                report.inputs.push(ev);
            }
            ServerMsg::Chat { text, .. } => {
                say(format!("chat from technician: {text}"));
                report.chats.push(text);
            }
            ServerMsg::Clipboard { text, .. } => say(format!("clipboard from technician: {text}")),
            ServerMsg::KeyframeRequest { .. } => {
                // A recording cannot produce a keyframe on demand; a live encoder would force one here.
                report.keyframe_requests += 1;
                say("keyframe requested by the relay".into());
            }
            ServerMsg::Peer { state, .. } => {
                peer.send_replace(state != PeerState::Away);
                say(format!("technician: {state:?}"));
            }
            ServerMsg::Control { allowed } => say(format!("control allowed: {allowed}")),
            ServerMsg::Notice { code, message, .. } => {
                report.notices.push(code);
                say(format!("notice: {message}"));
            }
            ServerMsg::Annotation {
                from, annotation, ..
            } => say(format!("annotation from {from}: {:?}", annotation.kind)),
            other => say(format!("{other:?}")),
        }
    }
    report
}

/// Runs the customer until the recording is sent and the session has ended; when `stop` completes while
/// sharing (Ctrl-C), the customer ends the session at once.
pub async fn run(
    args: CustomerArgs,
    stop: impl Future<Output = ()>,
) -> Result<CustomerReport, ClientError> {
    if !super::is_code(&args.code) {
        return Err(ClientError::Other(format!(
            "{:?} is not an authorization code: the technician reads out digits, e.g. 1234 5678 9012",
            args.code
        )));
    }
    let frames = args.pacing.load(&args.share)?;
    let addr = resolve(&args.relay).await?;
    let ep = endpoint_for(&args.trust.trust(None)?, addr)?;
    let hello = Hello::Customer {
        code: args.code.clone(),
        allow_control: !args.view_only,
    };
    let session = join(&ep, addr, &args.trust.server_name, hello).await?;
    let super::Session {
        conn,
        mut tx,
        rx,
        welcome,
    } = session;
    let peer_present = matches!(
        welcome,
        ServerMsg::Welcome {
            peer_present: true,
            ..
        }
    );
    if !args.quiet {
        let mode = if args.view_only {
            "view only"
        } else {
            "control allowed"
        };
        println!(
            "joined the session ({mode}); sharing {} frames",
            frames.len()
        );
    }
    let mut console = args.console.then(spawn_console);
    let (peer_tx, mut peer_rx) = watch::channel(peer_present);
    let receiver = tokio::spawn(receive(rx, peer_tx, args.quiet));

    // Frames sent before the technician is there would reach nobody: wait for them.
    let wait = tokio::time::timeout(
        Duration::from_secs(args.wait_secs),
        peer_rx.wait_for(|p| *p),
    );
    let gave_up = tokio::select! {
        r = wait => r.is_err(),
        e = conn.closed() => return Err(super::connection_error(&e)),
    };
    if gave_up {
        // End the session rather than leave it waiting: the code is spent either way.
        let _ = tx.send(&ClientMsg::EndSession).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.closed()).await;
        return Err(ClientError::Other(
            "the technician did not join in time; the session is ended and the code used, so ask the technician for a new one".into(),
        ));
    }

    let mut sender = MediaSender::new(conn.clone(), 0);
    let mut sent = Sent::default();
    let send_all = send_paced(&mut sender, frames, &args.pacing, &mut sent);
    let commands = async {
        let Some(lines) = console.as_mut() else {
            return std::future::pending::<Result<(), ClientError>>().await;
        };
        while let Some(line) = lines.recv().await {
            let say = |s: &str| {
                if !args.quiet {
                    println!("{s}");
                }
            };
            match line.trim() {
                "end" => {
                    say("ending the session");
                    return Ok(());
                }
                "view-only" => {
                    tx.send(&ClientMsg::SetControl(false)).await?;
                    say("control revoked: view only");
                }
                "allow" => {
                    tx.send(&ClientMsg::SetControl(true)).await?;
                    say("control allowed");
                }
                "" => {}
                other => eprintln!("unknown command {other:?}: type allow, view-only or end"),
            }
        }
        // Standard input closed: go on sharing.
        std::future::pending().await
    };
    tokio::select! {
        r = send_all => r?,
        r = commands => r?,
        _ = stop => if !args.quiet { println!("ending the session") },
        e = conn.closed() => {
            let err = super::connection_error(&e);
            if err.code() == Some(ErrorCode::SessionEnded) {
                if !args.quiet {
                    println!("the session was ended before the recording finished: {err}");
                }
                return Ok(CustomerReport { frames_sent: sent.frames, bytes_sent: sent.bytes, ..receiver.await.unwrap_or_default() });
            }
            return Err(err);
        }
    }
    tx.send(&ClientMsg::EndSession).await?;
    let end = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await;
    let report = CustomerReport {
        frames_sent: sent.frames,
        bytes_sent: sent.bytes,
        ..receiver.await.unwrap_or_default()
    };
    match end.map(|e| super::connection_error(&e)) {
        Ok(e) if e.code() == Some(ErrorCode::SessionEnded) => {
            if !args.quiet {
                println!(
                    "sent {} frames ({} bytes); session ended",
                    sent.frames, sent.bytes
                );
            }
            ep.close(0u32.into(), b"done");
            Ok(report)
        }
        Ok(e) => Err(e),
        Err(_) => Err(ClientError::Other(
            "the relay did not confirm the end of the session".into(),
        )),
    }
}

/// Lines typed on standard input, read on a plain thread: a blocked read there never holds up the runtime's
/// shutdown, and the thread ends with the process.
fn spawn_console() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}
