//! The meeting client's control stream: every message printed as a line, the participants' names and
//! presence kept, file offers answered, and the offered file sent once accepted.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use super::transfer::{Incoming, Outgoing};
use super::{Presence, Shared, MAX_FILE_BYTES, OFFER_REFERENCE};
use crate::client::files::send_file;
use crate::client::{ClientError, ControlReceiver};
use crate::protocol::message::{FileOffer, FileState, MeetingRole, ParticipantState, TrackState};
use crate::protocol::{ClientMsg, ServerMsg};

/// What the control task heard, for the report.
#[derive(Debug, Default)]
pub(super) struct Heard {
    pub(super) chats: Vec<String>,
    pub(super) keyframe_requests: u32,
    pub(super) file_sent: Option<FileState>,
    /// Why the offered file was not delivered (declined, or refused or failed: the NOTICE after it).
    pub(super) file_failure: Option<String>,
}

/// Reads the control stream: prints every message, keeps the participants' names and presence, answers
/// file offers and sends the offered file when it is accepted.
pub(super) struct Control {
    pub(super) shared: Arc<Shared>,
    /// Participants in the meeting: name, connected.
    pub(super) people: HashMap<u32, (String, bool)>,
    pub(super) presence: watch::Sender<Presence>,
    pub(super) offer: Option<Outgoing>,
    pub(super) heard: Heard,
    /// The offered file failed: the NOTICE that follows its FILE_STATE says why (docs/PROTOCOL.md 8.3).
    pub(super) reason_due: bool,
}

impl Control {
    pub(super) async fn run(mut self, mut rx: ControlReceiver) -> Heard {
        loop {
            match rx.recv().await {
                Ok(Some(msg)) => self.handle(msg).await,
                Ok(None) | Err(ClientError::Connect(_) | ClientError::Closed { .. }) => break,
                Err(e) => {
                    self.shared.fail_and_close(e);
                    break;
                }
            }
        }
        self.heard
    }

    /// How a participant is named in what this client prints.
    fn who(&self, id: u32) -> String {
        match self.people.get(&id) {
            _ if id == self.shared.me => "you".to_string(),
            Some((name, ..)) => format!("{name:?} ({id})"),
            None => format!("participant {id}"),
        }
    }

    async fn handle(&mut self, msg: ServerMsg) {
        let line = match msg {
            ServerMsg::Participant {
                participant,
                role,
                state,
                name,
            } => return self.participant(participant, role, state, name).await,
            ServerMsg::Track {
                track,
                publisher,
                state,
            } => {
                let state = match state {
                    TrackState::Live => "live",
                    TrackState::Ended => "ended",
                    TrackState::Muted => "muted by the host",
                };
                format!("track {track} of {}: {state}", self.who(publisher))
            }
            ServerMsg::MeetingChat { seq, from, text } => {
                let line = format!("chat #{seq} from {}: {}", self.who(from), printable(&text));
                self.heard.chats.push(text);
                line
            }
            ServerMsg::Annotation {
                seq,
                from,
                annotation: a,
            } => {
                let text = match a.text.is_empty() {
                    true => String::new(),
                    false => format!(" {:?}", a.text),
                };
                format!(
                    "annotation #{seq} from {}: {} on track {} ({} points){text}",
                    self.who(from),
                    a.kind.as_str(),
                    a.track,
                    a.points.len()
                )
            }
            ServerMsg::Recording { active, reason } => {
                let state = if active { "started" } else { "stopped" };
                format!("recording {state}: {reason}")
            }
            ServerMsg::Notice {
                code,
                count,
                message,
            } => {
                if std::mem::take(&mut self.reason_due) {
                    self.heard.file_failure = Some(format!("{message} ({})", code.as_str()));
                }
                match count {
                    1 => format!("notice: {message} ({})", code.as_str()),
                    n => format!("notice: {message} ({}, {n} times)", code.as_str()),
                }
            }
            ServerMsg::KeyframeRequest { track } => {
                // A recording cannot produce a keyframe on demand; a live encoder would force one here.
                self.heard.keyframe_requests += 1;
                format!("keyframe requested for local track {track}")
            }
            offer @ ServerMsg::FileOffer { .. } => return self.offered(offer).await,
            ServerMsg::FileState {
                transfer,
                reference,
                state,
                offset,
            } => return self.file_state(transfer, reference, state, offset),
            other => format!("{other:?}"),
        };
        self.shared.say(line);
    }

    async fn participant(
        &mut self,
        id: u32,
        role: MeetingRole,
        state: ParticipantState,
        name: String,
    ) {
        use ParticipantState::*;
        let what = match state {
            Present => "present".to_string(),
            Away => "away (connection lost)".to_string(),
            Back => "back".to_string(),
            Left => "left".to_string(),
            Removed => "removed by the host".to_string(),
            RoleChanged => format!("now {}", role.as_str()),
        };
        match state {
            Present | Back | Away | RoleChanged => {
                let connected = state != Away;
                self.people.insert(id, (name.clone(), connected));
            }
            Left | Removed => drop(self.people.remove(&id)),
        }
        let me = self.shared.me;
        let suffix = if id == me { ", you" } else { "" };
        self.shared.say(format!(
            "participant {id} {name:?} ({}{suffix}): {what}",
            role.as_str()
        ));
        let others = self
            .people
            .iter()
            .filter(|(p, (_, connected))| **p != me && *connected)
            .count();
        self.presence.send_modify(|p| {
            p.others = others;
            if id == me {
                // PARTICIPANT about itself ends the state a newcomer is sent (docs/PROTOCOL.md 7.2).
                p.settled |= matches!(state, Present | Back);
                p.role = role;
            }
        });
        if !matches!(state, Present | Back) || id == me {
            return;
        }
        if let Some(o) = self.offer.as_mut().filter(|o| o.to == id && !o.offered) {
            o.offered = true;
            self.shared.say(format!(
                "file {:?}: offering {} bytes to {name:?} ({id})",
                o.name,
                o.data.len()
            ));
            let offer = FileOffer {
                reference: OFFER_REFERENCE,
                to: id,
                name: o.name.clone(),
                size: o.data.len() as u64,
                sha256: o.sha256,
            };
            self.shared.send(ClientMsg::FileOffer(offer)).await;
        }
        if state == Back {
            // FILE_STATE and FILE_OFFER are not queued for an absent sender: answer again (PROTOCOL.md 8.3).
            let again: Vec<ClientMsg> = (self.shared.incoming.lock().expect("not poisoned"))
                .iter()
                .filter(|(_, t)| t.sender == id)
                .map(|(transfer, t)| ClientMsg::FileAnswer {
                    transfer: *transfer,
                    accept: true,
                    offset: t.have.len() as u64,
                })
                .collect();
            for answer in again {
                self.shared.send(answer).await;
            }
        }
    }

    /// Accepts an offered file into `--accept-files`, or declines it.
    async fn offered(&mut self, offer: ServerMsg) {
        let ServerMsg::FileOffer {
            transfer,
            from,
            name,
            size,
            sha256: digest,
        } = offer
        else {
            return;
        };
        let who = self.who(from);
        let (accept, why) = match &self.shared.accept_dir {
            None => (
                false,
                "declined (accept files with --accept-files DIR)".to_string(),
            ),
            Some(_) if size > MAX_FILE_BYTES => (
                false,
                format!("declined: this demo client accepts at most {MAX_FILE_BYTES} bytes"),
            ),
            Some(dir) => (true, format!("accepting into {}", dir.display())),
        };
        self.shared.say(format!(
            "file {name:?} ({size} bytes) offered by {who}: {why}"
        ));
        if accept {
            let file = Incoming {
                sender: from,
                from: who,
                name,
                size,
                sha256: digest,
                have: Vec::new(),
            };
            self.shared
                .incoming
                .lock()
                .expect("not poisoned")
                .insert(transfer, file);
        }
        let answer = ClientMsg::FileAnswer {
            transfer,
            accept,
            offset: 0,
        };
        self.shared.send(answer).await;
    }

    fn file_state(&mut self, transfer: u32, reference: u32, state: FileState, offset: u64) {
        // The recipient of a transfer hears only that it failed because its sender left.
        let failed_in = (state == FileState::Failed)
            .then(|| {
                self.shared
                    .incoming
                    .lock()
                    .expect("not poisoned")
                    .remove(&transfer)
            })
            .flatten();
        if let Some(t) = failed_in {
            return self.shared.say(format!(
                "file {:?} from {}: failed: the sender left the meeting",
                t.name, t.from
            ));
        }
        let Some(o) = self.offer.as_ref().filter(|_| reference == OFFER_REFERENCE) else {
            return;
        };
        self.heard.file_sent = Some(state);
        let to = self.who(o.to);
        let what = match state {
            FileState::Offered => format!("offered to {to}; waiting for an answer"),
            FileState::Accepted => {
                let (shared, data, name) = (self.shared.clone(), o.data.clone(), o.name.clone());
                tokio::spawn(async move {
                    match send_file(&shared.conn, transfer, offset, &data).await {
                        Ok(()) => shared.say(format!(
                            "file {name:?}: sent; waiting for the recipient's check"
                        )),
                        Err(e) => shared.say(format!("file {name:?}: sending broke off: {e}")),
                    }
                });
                format!("accepted by {to}; sending from byte {offset}")
            }
            FileState::Declined => {
                self.heard.file_failure = Some(format!("declined by {to}"));
                format!("declined by {to}")
            }
            FileState::Completed => format!("completed: {to} verified its SHA-256"),
            FileState::Failed => {
                self.reason_due = true;
                "failed (the notice says why)".to_string()
            }
        };
        self.shared.say(format!("file {:?}: {what}", o.name));
    }
}

/// Chat text from others as a single printable line.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
