//! `assist-relay meeting`: enters a meeting as a guest with its code (HELLO mode 5, always a participant) or
//! as staff with a join token (mode 4: host or presenter), and prints what happens in it as readable lines:
//! participants, tracks, chat, whiteboard operations, recording, notices and files. It saves every track it
//! receives, shares a recording on its local track 0, sends chat lines, offers one file and accepts offered
//! ones. It leaves (the host: ends the meeting for everyone) after `--duration`, once its share is sent, or
//! on Ctrl-C, and exits 0 then or when the meeting ends; non-zero with the reason in words otherwise, and
//! when the file it was to send was not delivered (refused by the relay, declined, failed or never offered).
//!
//! Its control stream and its media streams are read on their own tasks the whole time, whatever else it
//! does (docs/PROTOCOL.md, "Recommended client transport settings"). It does not resume a lost connection,
//! draw on the whiteboard or act as the host (mute, remove, roles), and it holds a transferred file in
//! memory, so it sends and accepts files of at most [`MAX_FILE_BYTES`].

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quinn::Connection;
use tokio::sync::watch;

use super::screen::{extension, send_paced, FrameSaver, PacingArgs, Sent};
use super::script::MAX_TEXT_BYTES;
use super::{
    connection_error, endpoint_for, join, resolve, ClientError, ControlSender, MediaSender,
    Session, TrustArgs,
};
use crate::core::TRACKS_PER_PARTICIPANT;
use crate::media::MediaFrame;
use crate::protocol::message::{FileState, MeetingRole};
use crate::protocol::{ClientMsg, ErrorCode, Hello, ServerMsg};
use crate::transport::quic::{ConnError, GroupEvent, GroupOrder, GroupStreams};

mod control;
mod transfer;

use control::{Control, Heard};
use transfer::{receive_file, Incoming, Outgoing};

/// Largest file this demo client sends or accepts: it holds a transferred file in memory.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// The `reference` of the one file this client offers.
const OFFER_REFERENCE: u32 = 1;

/// How long the relay may take to confirm that this client left (or ended the meeting).
const END_WAIT: Duration = Duration::from_secs(10);

/// Flags of `assist-relay meeting`.
#[derive(Debug, Clone, clap::Args)]
#[command(group = clap::ArgGroup::new("entry").required(true).args(["code", "token"]))]
pub struct MeetingArgs {
    /// Relay QUIC address, HOST:PORT (`relay.quic` in the API's answer).
    #[arg(long)]
    pub relay: String,
    /// Enter as a guest with the meeting code (`code_display` in the API's answer; spaces are fine). Guests
    /// are participants: they watch, chat and exchange files, but do not share.
    #[arg(long)]
    pub code: Option<String>,
    /// Enter as staff with a meeting join token: `host_token` from `POST /api/v1/meetings` (the host) or
    /// `token` from `POST /api/v1/meetings/{id}/join-token` (a presenter). Staff may share.
    #[arg(long)]
    pub token: Option<String>,
    /// Your display name, shown to the others.
    #[arg(long)]
    pub name: String,
    /// Save every track received to DIR/track-<id>.ivf (VP8, VP9, AV1) or DIR/track-<id>.h264, each from
    /// its first keyframe.
    #[arg(long, value_name = "DIR")]
    pub save_dir: Option<PathBuf>,
    /// Share a recording (IVF or H.264 Annex B) on your local track 0, paced by its timestamps, once
    /// someone else is in the meeting; leave when it is sent. Needs the host or presenter role.
    #[arg(long, value_name = "FILE")]
    pub share: Option<PathBuf>,
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// A chat line to send after entering; repeat for more lines.
    #[arg(long, value_name = "TEXT")]
    pub chat: Vec<String>,
    /// Offer this file to the participant --to once it is present, and send it when accepted. The command
    /// fails (non-zero) if the file is not delivered: refused, declined, failed or never offered.
    #[arg(long, value_name = "PATH", requires = "to")]
    pub send_file: Option<PathBuf>,
    /// The participant id to offer --send-file to (every client prints its own when it enters).
    #[arg(long, value_name = "PARTICIPANT_ID", requires = "send_file")]
    pub to: Option<u32>,
    /// Accept offered files into DIR, where each is written under its (safe) name once its SHA-256 is
    /// verified; without this flag, offers are declined.
    #[arg(long, value_name = "DIR")]
    pub accept_files: Option<PathBuf>,
    /// Leave after this many seconds (the host ends the meeting for everyone).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
}

/// What the meeting client did and received.
#[derive(Debug, Default, Clone)]
pub struct MeetingReport {
    pub participant: u32,
    pub role: Option<MeetingRole>,
    /// Tracks saved: room-wide track id, file, frames.
    pub saved: Vec<(u32, PathBuf, u64)>,
    pub frames_sent: u64,
    pub bytes_sent: u64,
    /// Chat lines received (the client's own included: the relay echoes them).
    pub chats: Vec<String>,
    pub keyframe_requests: u32,
    /// Files accepted, verified and written.
    pub files_received: Vec<PathBuf>,
    /// The last state of the offered file.
    pub file_sent: Option<FileState>,
    /// How the relay closed the connection.
    pub end: Option<ErrorCode>,
}

/// What the share waits for: the state after entering has arrived, this client may present, and someone
/// else is there to see it.
#[derive(Debug, Clone, Copy)]
struct Presence {
    settled: bool,
    role: MeetingRole,
    others: usize,
}

/// What the control, media and file tasks share.
struct Shared {
    conn: Connection,
    tx: tokio::sync::Mutex<ControlSender>,
    me: u32,
    quiet: bool,
    accept_dir: Option<PathBuf>,
    incoming: Mutex<HashMap<u32, Incoming>>,
    received: Mutex<Vec<PathBuf>>,
    /// The first failure of a task; the command exits with it.
    failure: Mutex<Option<ClientError>>,
}

impl Shared {
    fn say(&self, line: impl Display) {
        if !self.quiet {
            println!("{line}");
        }
    }

    /// Sends a control message. A failed write means the connection is going away, and its close says why.
    async fn send(&self, msg: ClientMsg) {
        let _ = self.tx.lock().await.send(&msg).await;
    }

    /// Keeps the first failure: the command exits with it once the meeting is over for this client.
    fn fail(&self, e: ClientError) {
        self.failure.lock().expect("not poisoned").get_or_insert(e);
    }

    /// The relay broke the protocol: this client cannot go on reading, so it closes the connection.
    fn fail_and_close(&self, e: ClientError) {
        self.fail(e);
        self.conn.close(
            (ErrorCode::ProtocolViolation as u32).into(),
            b"protocol violation",
        );
    }
}

/// A track being received.
struct Track {
    saver: FrameSaver,
    /// The newest group seen: a frame of an older group arrived late, after a newer keyframe, and is dropped
    /// as a live viewer drops it (docs/PROTOCOL.md, "Receiver strategies").
    newest_group: u64,
    failed: bool,
}

/// Reads the media streams until the connection is gone: saves frames per track (with `save_dir`) and
/// hands file streams to [`receive_file`].
async fn receive_media(
    shared: Arc<Shared>,
    max_frame: usize,
    save_dir: Option<PathBuf>,
) -> Vec<(u32, FrameSaver)> {
    let conn = shared.conn.clone();
    let mut groups = GroupStreams::new(&conn, max_frame, GroupOrder::Live);
    let mut tracks: HashMap<u32, Track> = HashMap::new();
    loop {
        let frame = match groups.next().await {
            Ok(GroupEvent::Frame(f)) => f,
            Ok(GroupEvent::File { header, stream }) => {
                tokio::spawn(receive_file(shared.clone(), header, stream));
                continue;
            }
            Ok(GroupEvent::Ended { .. } | GroupEvent::Stale { .. }) => continue,
            Err(ConnError::Closed) => break,
            Err(e) => {
                shared.fail_and_close(ClientError::Protocol(e.to_string()));
                break;
            }
        };
        let Some(dir) = &save_dir else { continue };
        let id = frame.track;
        let track = tracks.entry(id).or_insert_with(|| Track {
            saver: FrameSaver::default(),
            newest_group: frame.group,
            failed: false,
        });
        if frame.group < track.newest_group || track.failed {
            continue;
        }
        track.newest_group = frame.group;
        let path_for = |codec| dir.join(format!("track-{id}.{}", extension(codec)));
        match track.saver.save(&frame.wire, max_frame, path_for) {
            Ok(true) if track.saver.frames == 1 => {
                let path = track.saver.path().expect("created").display();
                shared.say(format!("saving track {id} to {path}"));
            }
            Ok(_) => {}
            Err(e) => {
                // Saving stops for this track only; reading goes on.
                eprintln!("warning: track {id} is no longer saved: {e}");
                track.failed = true;
                shared.fail(ClientError::Other(format!("saving track {id}: {e}")));
            }
        }
    }
    tracks.into_iter().map(|(id, t)| (id, t.saver)).collect()
}

/// Waits until this client may share and someone else is there, then shares `frames` on local track 0.
/// Without a recording it never completes.
async fn share(
    frames: Option<Vec<MediaFrame>>,
    shared: &Shared,
    mut presence: watch::Receiver<Presence>,
    pacing: &PacingArgs,
    sent: &mut Sent,
) -> Result<(), ClientError> {
    let Some(frames) = frames else {
        return std::future::pending().await;
    };
    if presence.wait_for(|p| p.settled).await.is_err() {
        return std::future::pending().await;
    }
    let now = *presence.borrow();
    if !now.role.presents() {
        shared
            .say("participants may not share: the share starts if the host makes you a presenter");
    } else if now.others == 0 {
        shared.say("waiting for someone to share with");
    }
    let ready = presence.wait_for(|p| p.role.presents() && p.others > 0);
    if ready.await.is_err() {
        return std::future::pending().await;
    }
    let track = shared.me * TRACKS_PER_PARTICIPANT;
    shared.say(format!("sharing {} frames on track {track}", frames.len()));
    let mut sender = MediaSender::new(shared.conn.clone(), 0);
    send_paced(&mut sender, frames, pacing, sent).await?;
    shared.say(format!(
        "shared {} frames ({} bytes)",
        sent.frames, sent.bytes
    ));
    Ok(())
}

/// What the flags ask for, checked before the relay is contacted, so a typo costs nothing.
struct Prepared {
    hello: Hello,
    /// The recording to share.
    frames: Option<Vec<MediaFrame>>,
    offer: Option<Outgoing>,
}

fn prepare(args: &MeetingArgs) -> Result<Prepared, ClientError> {
    let hello = match (&args.code, &args.token) {
        (Some(code), _) if !super::is_code(code) => {
            return Err(ClientError::Other(format!(
                "{code:?} is not a meeting code: it is digits, e.g. 1234 5678 9012 (`code_display` of the meeting)"
            )))
        }
        (Some(code), _) => Hello::MeetingCode {
            code: code.clone(),
            name: args.name.clone(),
        },
        (None, Some(token)) => Hello::Meeting {
            token: token.trim().to_string(),
            name: args.name.clone(),
        },
        (None, None) => return Err(ClientError::Other("give --code or --token".into())),
    };
    if let Some(long) = args.chat.iter().find(|l| l.len() > MAX_TEXT_BYTES) {
        return Err(ClientError::Other(format!(
            "a --chat line of {} bytes; at most {MAX_TEXT_BYTES}",
            long.len()
        )));
    }
    for dir in [&args.save_dir, &args.accept_files].into_iter().flatten() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ClientError::Other(format!("cannot create {}: {e}", dir.display())))?;
    }
    let frames = args
        .share
        .as_deref()
        .map(|p| args.pacing.load(p))
        .transpose()?;
    let offer = match (&args.send_file, args.to) {
        (Some(path), Some(to)) => Some(Outgoing::read(path, to)?),
        _ => None,
    };
    Ok(Prepared {
        hello,
        frames,
        offer,
    })
}

/// Enters the meeting and runs until it ends for this client; when `stop` completes (Ctrl-C), the client
/// leaves (the host: ends the meeting).
pub async fn run(
    args: MeetingArgs,
    stop: impl Future<Output = ()>,
) -> Result<MeetingReport, ClientError> {
    let Prepared {
        hello,
        frames,
        mut offer,
    } = prepare(&args)?;
    let addr = resolve(&args.relay).await?;
    let ep = endpoint_for(&args.trust.trust(None)?, addr)?;
    let Session {
        conn,
        tx,
        rx,
        welcome,
    } = join(&ep, addr, &args.trust.server_name, hello).await?;
    let ServerMsg::MeetingWelcome(w) = welcome else {
        return Err(ClientError::Protocol(
            "the relay answered a meeting HELLO with a session's WELCOME".into(),
        ));
    };
    let say = |line: String| {
        if !args.quiet {
            println!("{line}");
        }
    };
    say(format!(
        "entered the meeting as participant {} ({})",
        w.participant,
        w.role.as_str()
    ));
    if w.recording {
        say("the meeting is being recorded".into());
    }
    if let Some(o) = offer.take_if(|o| o.to == w.participant) {
        eprintln!("warning: --to {} is you: {:?} is not offered", o.to, o.name);
    }
    if let Some(o) = &offer {
        say(format!(
            "file {:?} will be offered to participant {} once it is present",
            o.name, o.to
        ));
    }
    let offered = offer.as_ref().map(|o| (o.name.clone(), o.to));

    let shared = Arc::new(Shared {
        conn: conn.clone(),
        tx: tokio::sync::Mutex::new(tx),
        me: w.participant,
        quiet: args.quiet,
        accept_dir: args.accept_files.clone(),
        incoming: Mutex::default(),
        received: Mutex::default(),
        failure: Mutex::default(),
    });
    let (presence_tx, presence_rx) = watch::channel(Presence {
        settled: false,
        role: w.role,
        others: 0,
    });
    let role = presence_rx.clone();
    let control = Control {
        shared: shared.clone(),
        people: HashMap::new(),
        presence: presence_tx,
        offer,
        heard: Heard::default(),
        reason_due: false,
    };
    let control = tokio::spawn(control.run(rx));
    let media = tokio::spawn(receive_media(
        shared.clone(),
        w.max_frame_bytes as usize,
        args.save_dir.clone(),
    ));
    for line in &args.chat {
        shared.send(ClientMsg::Chat(line.clone())).await;
    }

    let mut sent = Sent::default();
    let leave = {
        let sharing = share(frames, &shared, presence_rx, &args.pacing, &mut sent);
        let duration = async {
            match args.duration {
                Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop => Some("interrupted"),
            _ = duration => Some("--duration is over"),
            r = sharing => match r {
                Ok(()) => Some("the share is sent"),
                Err(_) if conn.close_reason().is_some() => None,
                Err(e) => {
                    shared.fail(e);
                    Some("the share failed")
                }
            },
            _ = conn.closed() => None,
        }
    };
    if let Some(why) = leave {
        let ending = if w.role == MeetingRole::Host {
            "ending the meeting for everyone (you are the host)"
        } else {
            "leaving the meeting"
        };
        say(format!("{why}: {ending}"));
        shared.send(ClientMsg::EndSession).await;
        if tokio::time::timeout(END_WAIT, conn.closed()).await.is_err() {
            conn.close(0u32.into(), b"no answer to END_SESSION");
            shared.fail(ClientError::Other(
                "the relay did not confirm the end; the connection is closed".into(),
            ));
        }
    }
    let end = connection_error(&conn.closed().await);

    // The tasks end once the connection is gone and what it delivered is read.
    let tracks = media.await.unwrap_or_default();
    let heard = control.await.unwrap_or_default();
    let undelivered = offered.and_then(|(name, to)| undelivered(&name, to, &heard));
    let mut report = MeetingReport {
        participant: w.participant,
        role: Some(role.borrow().role),
        frames_sent: sent.frames,
        bytes_sent: sent.bytes,
        chats: heard.chats,
        keyframe_requests: heard.keyframe_requests,
        file_sent: heard.file_sent,
        end: end.code(),
        ..MeetingReport::default()
    };
    let mut tracks = tracks;
    tracks.sort_by_key(|(id, _)| *id);
    for (id, saver) in tracks {
        let (frames, path) = (saver.frames, saver.path().map(Path::to_path_buf));
        if let Err(e) = saver.finish() {
            shared.fail(ClientError::Other(format!("finishing track {id}: {e}")));
        }
        if let Some(path) = path {
            say(format!(
                "saved {frames} frames of track {id} to {}",
                path.display()
            ));
            report.saved.push((id, path, frames));
        }
    }
    report.files_received = std::mem::take(&mut *shared.received.lock().expect("not poisoned"));
    ep.close(0u32.into(), b"done");
    if let Some(e) = shared.failure.lock().expect("not poisoned").take() {
        return Err(e);
    }
    match end.code() {
        // Leaving, the host's end, or the meeting's scheduled end: a normal end.
        Some(ErrorCode::SessionEnded | ErrorCode::MaxDuration) => {
            if let ClientError::Closed { code, reason } = &end {
                say(format!(
                    "the meeting is over for you: {reason} ({})",
                    code.as_str()
                ));
            }
            // The file asked for did not arrive: that is a failure of the command, said last.
            match undelivered {
                Some(e) => Err(e),
                None => Ok(report),
            }
        }
        _ => Err(end),
    }
}

/// Why the file offered with `--send-file` (its name, to `to`) did not reach its recipient; `None` once it
/// was completed (the recipient verified its SHA-256).
fn undelivered(name: &str, to: u32, heard: &Heard) -> Option<ClientError> {
    let why = match (heard.file_sent, &heard.file_failure) {
        (Some(FileState::Completed), _) => return None,
        (_, Some(why)) => why.clone(),
        (None, None) => "they were never present to be offered it".into(),
        (Some(FileState::Offered), None) => "they did not answer the offer".into(),
        (Some(FileState::Accepted), None) => "the transfer did not finish".into(),
        (Some(FileState::Declined | FileState::Failed), None) => "the transfer failed".into(),
    };
    Some(ClientError::Other(format!(
        "file {name:?} was not delivered to participant {to}: {why}"
    )))
}
