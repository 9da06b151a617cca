//! Collaboration state shared by meetings and remote-assist sessions: the whiteboard (annotation state with
//! a room sequence, bounded, replayed to late joiners), the chat history, and file transfers (offer →
//! accept/decline → bytes on their own stream → the recipient's hash check).
//!
//! Participants are named by a `u32` (a meeting's participant id; the role's wire value in a remote-assist
//! session). Every call returns the messages to deliver as `(participant, message)` pairs; the room maps
//! them to connections. No I/O, no clock.

use std::collections::VecDeque;

use crate::protocol::message::{Annotation, AnnotationKind, FileOffer, FileState};
use crate::protocol::{safe_file_name, ErrorCode, ServerMsg};

/// Messages to deliver, by participant.
pub type Deliveries = Vec<(u32, ServerMsg)>;

/// Bounds of the collaboration state (from the `[meeting]` config section).
#[derive(Debug, Clone, Copy)]
pub struct CollabLimits {
    /// Wire bytes of annotations kept for late joiners; past it, drawing is refused until a clear.
    pub whiteboard_bytes: usize,
    /// Chat lines kept for late joiners (the oldest go first).
    pub chat_history: usize,
    /// Largest file a transfer may carry.
    pub max_file_bytes: u64,
    /// Transfers open at once per room.
    pub max_transfers: usize,
}

/// The annotation state: every operation since the last clear of its track, in room order.
#[derive(Debug)]
pub struct Whiteboard {
    ops: VecDeque<(u64, u32, Annotation)>,
    bytes: usize,
    max_bytes: usize,
    next_seq: u64,
}

impl Whiteboard {
    pub fn new(max_bytes: usize) -> Whiteboard {
        Whiteboard {
            ops: VecDeque::new(),
            bytes: 0,
            max_bytes,
            next_seq: 1,
        }
    }

    /// Applies an operation from `from`; returns the message every participant gets, or `WhiteboardFull`.
    /// A clear removes the operations on its track and is itself not kept.
    pub fn apply(&mut self, from: u32, a: Annotation) -> Result<ServerMsg, ErrorCode> {
        if a.kind == AnnotationKind::Clear {
            self.ops.retain(|(_, _, op)| op.track != a.track);
            self.bytes = self.ops.iter().map(|(_, _, op)| op.wire_len()).sum();
        } else {
            let size = a.wire_len();
            if self.bytes + size > self.max_bytes {
                return Err(ErrorCode::WhiteboardFull);
            }
            self.bytes += size;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if a.kind != AnnotationKind::Clear {
            self.ops.push_back((seq, from, a.clone()));
        }
        Ok(ServerMsg::Annotation {
            seq,
            from,
            annotation: a,
        })
    }

    /// Removes every operation on `track` (its share ended), without a message.
    pub fn forget_track(&mut self, track: u32) {
        self.ops.retain(|(_, _, op)| op.track != track);
        self.bytes = self.ops.iter().map(|(_, _, op)| op.wire_len()).sum();
    }

    /// The state as messages, oldest first, for a late joiner.
    pub fn snapshot(&self) -> impl Iterator<Item = ServerMsg> + '_ {
        self.ops.iter().map(|(seq, from, a)| ServerMsg::Annotation {
            seq: *seq,
            from: *from,
            annotation: a.clone(),
        })
    }
}

/// The last chat lines of a meeting, numbered in room order.
#[derive(Debug)]
pub struct ChatHistory {
    lines: VecDeque<(u64, u32, String)>,
    max: usize,
    next_seq: u64,
}

impl ChatHistory {
    pub fn new(max: usize) -> ChatHistory {
        ChatHistory {
            lines: VecDeque::new(),
            max,
            next_seq: 1,
        }
    }

    /// Records a line; returns the message for everyone.
    pub fn post(&mut self, from: u32, text: String) -> ServerMsg {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.max > 0 {
            if self.lines.len() == self.max {
                self.lines.pop_front();
            }
            self.lines.push_back((seq, from, text.clone()));
        }
        ServerMsg::MeetingChat { seq, from, text }
    }

    pub fn replay(&self) -> impl Iterator<Item = ServerMsg> + '_ {
        self.lines
            .iter()
            .map(|(seq, from, text)| ServerMsg::MeetingChat {
                seq: *seq,
                from: *from,
                text: text.clone(),
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Offered,
    /// The recipient takes bytes from this offset on.
    Accepted(u64),
}

/// One transfer.
#[derive(Debug, Clone)]
pub struct Transfer {
    pub id: u32,
    pub from: u32,
    pub to: u32,
    pub reference: u32,
    /// Already reduced to a safe base name.
    pub name: String,
    pub size: u64,
    pub sha256: [u8; 32],
    phase: Phase,
}

/// What the room should do with a file stream its sender opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub to: u32,
    /// Bytes the relay passes on at most (the rest of the file from the stream's offset).
    pub len: u64,
}

/// Something for the room to log or record about a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferNote {
    pub transfer: u32,
    pub from: u32,
    pub to: u32,
    pub name: String,
    pub size: u64,
    pub state: FileState,
}

/// The transfers of one room.
#[derive(Debug)]
pub struct Transfers {
    items: Vec<Transfer>,
    next_id: u32,
    limits: CollabLimits,
}

fn state(t: &Transfer, state: FileState, offset: u64) -> ServerMsg {
    ServerMsg::FileState {
        transfer: t.id,
        reference: t.reference,
        state,
        offset,
    }
}

fn notice(code: ErrorCode, message: String) -> ServerMsg {
    ServerMsg::Notice {
        code,
        count: 1,
        message,
    }
}

fn note(t: &Transfer, state: FileState) -> TransferNote {
    TransferNote {
        transfer: t.id,
        from: t.from,
        to: t.to,
        name: t.name.clone(),
        size: t.size,
        state,
    }
}

impl Transfers {
    pub fn new(limits: CollabLimits) -> Transfers {
        Transfers {
            items: Vec::new(),
            next_id: 1,
            limits,
        }
    }

    fn find(&mut self, id: u32) -> Option<&mut Transfer> {
        self.items.iter_mut().find(|t| t.id == id)
    }

    fn take(&mut self, id: u32) -> Option<Transfer> {
        let i = self.items.iter().position(|t| t.id == id)?;
        Some(self.items.swap_remove(i))
    }

    /// `from` offers a file to `to` (the room checked that `to` is present). Refusals go back to the sender
    /// as FILE_STATE failed plus a NOTICE with the reason.
    pub fn offer(
        &mut self,
        from: u32,
        to: u32,
        o: FileOffer,
    ) -> (Deliveries, Option<TransferNote>) {
        let refuse = |code: ErrorCode, message: String| {
            let failed = ServerMsg::FileState {
                transfer: 0,
                reference: o.reference,
                state: FileState::Failed,
                offset: 0,
            };
            (vec![(from, failed), (from, notice(code, message))], None)
        };
        if o.size > self.limits.max_file_bytes {
            return refuse(
                ErrorCode::FileTooLarge,
                format!("files may be at most {} bytes", self.limits.max_file_bytes),
            );
        }
        if self.items.len() >= self.limits.max_transfers {
            return refuse(
                ErrorCode::TooManyTransfers,
                format!("at most {} transfers at once", self.limits.max_transfers),
            );
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let t = Transfer {
            id,
            from,
            to,
            reference: o.reference,
            name: safe_file_name(&o.name),
            size: o.size,
            sha256: o.sha256,
            phase: Phase::Offered,
        };
        let out = vec![
            (
                to,
                ServerMsg::FileOffer {
                    transfer: id,
                    from,
                    name: t.name.clone(),
                    size: t.size,
                    sha256: t.sha256,
                },
            ),
            (from, state(&t, FileState::Offered, 0)),
        ];
        let n = note(&t, FileState::Offered);
        self.items.push(t);
        (out, Some(n))
    }

    /// The recipient answers (again, to resume from `offset` after an interruption).
    pub fn answer(
        &mut self,
        by: u32,
        id: u32,
        accept: bool,
        offset: u64,
    ) -> (Deliveries, Option<TransferNote>) {
        let invalid = || {
            (
                vec![(
                    by,
                    notice(
                        ErrorCode::TransferInvalid,
                        format!("no transfer {id} to answer"),
                    ),
                )],
                None,
            )
        };
        let Some(t) = self.find(id) else {
            return invalid();
        };
        if t.to != by || offset > t.size {
            return invalid();
        }
        if !accept {
            let t = self.take(id).expect("found above");
            return (
                vec![(t.from, state(&t, FileState::Declined, 0))],
                Some(note(&t, FileState::Declined)),
            );
        }
        t.phase = Phase::Accepted(offset);
        let t = t.clone();
        (
            vec![(t.from, state(&t, FileState::Accepted, offset))],
            Some(note(&t, FileState::Accepted)),
        )
    }

    /// The sender opened a stream for `id` at `offset`: where it goes, or why it is refused.
    pub fn stream(&mut self, by: u32, id: u32, offset: u64) -> Result<Route, ErrorCode> {
        let t = self.find(id).ok_or(ErrorCode::TransferInvalid)?;
        match t.phase {
            Phase::Accepted(at) if t.from == by && offset == at => Ok(Route {
                to: t.to,
                len: t.size - offset,
            }),
            _ => Err(ErrorCode::TransferInvalid),
        }
    }

    /// The recipient checked the hash.
    pub fn result(&mut self, by: u32, id: u32, ok: bool) -> (Deliveries, Option<TransferNote>) {
        let accepted = |t: &Transfer| matches!(t.phase, Phase::Accepted(_));
        match self
            .items
            .iter()
            .position(|t| t.id == id && t.to == by && accepted(t))
        {
            Some(i) => {
                let t = self.items.swap_remove(i);
                let st = if ok {
                    FileState::Completed
                } else {
                    FileState::Failed
                };
                let mut out = vec![(t.from, state(&t, st, t.size))];
                if !ok {
                    out.push((
                        t.from,
                        notice(
                            ErrorCode::TransferInvalid,
                            format!("{}: the recipient's SHA-256 did not match", t.name),
                        ),
                    ));
                }
                (out, Some(note(&t, st)))
            }
            None => (
                vec![(
                    by,
                    notice(
                        ErrorCode::TransferInvalid,
                        format!("no transfer {id} to finish"),
                    ),
                )],
                None,
            ),
        }
    }

    /// `who` left for good: its transfers fail, and the other side hears so.
    pub fn drop_participant(&mut self, who: u32) -> (Deliveries, Vec<TransferNote>) {
        let mut out = Vec::new();
        let mut notes = Vec::new();
        self.items.retain(|t| {
            if t.from != who && t.to != who {
                return true;
            }
            let (other, reference) = if t.from == who {
                (t.to, 0) // the reference is the sender's own number
            } else {
                (t.from, t.reference)
            };
            out.push((
                other,
                ServerMsg::FileState {
                    transfer: t.id,
                    reference,
                    state: FileState::Failed,
                    offset: 0,
                },
            ));
            let message = format!("{}: the other side left the room", t.name);
            out.push((other, notice(ErrorCode::PeerAway, message)));
            notes.push(note(t, FileState::Failed));
            false
        });
        (out, notes)
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> CollabLimits {
        CollabLimits {
            whiteboard_bytes: 200,
            chat_history: 2,
            max_file_bytes: 1000,
            max_transfers: 2,
        }
    }

    fn stroke(track: u32, n: usize) -> Annotation {
        Annotation {
            kind: AnnotationKind::Stroke,
            track,
            color: 0xff0000ff,
            width: 100,
            points: vec![(1, 2); n],
            text: String::new(),
        }
    }

    #[test]
    fn whiteboard_numbers_bounds_and_clears_per_track() {
        let mut w = Whiteboard::new(200);
        assert!(matches!(
            w.apply(1, stroke(0, 10)),
            Ok(ServerMsg::Annotation { seq: 1, .. })
        ));
        assert!(matches!(
            w.apply(2, stroke(5, 10)),
            Ok(ServerMsg::Annotation { seq: 2, .. })
        ));
        // 2 × 55 bytes held; another 55 fits, a fourth does not.
        assert!(w.apply(1, stroke(0, 10)).is_ok());
        assert_eq!(w.apply(1, stroke(0, 10)), Err(ErrorCode::WhiteboardFull));
        let clear = Annotation {
            kind: AnnotationKind::Clear,
            points: vec![],
            ..stroke(0, 0)
        };
        assert!(matches!(
            w.apply(3, clear),
            Ok(ServerMsg::Annotation { seq: 4, .. })
        ));
        let left: Vec<u64> = w
            .snapshot()
            .map(|m| match m {
                ServerMsg::Annotation { seq, .. } => seq,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(left, vec![2]);
        assert!(w.apply(1, stroke(0, 10)).is_ok());
    }

    #[test]
    fn chat_history_keeps_the_last_lines() {
        let mut c = ChatHistory::new(2);
        for t in ["a", "b", "c"] {
            let _ = c.post(1, t.into());
        }
        let kept: Vec<String> = c
            .replay()
            .map(|m| match m {
                ServerMsg::MeetingChat { text, .. } => text,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(kept, vec!["b", "c"]);
    }

    fn offer(size: u64) -> FileOffer {
        FileOffer {
            reference: 7,
            to: 2,
            name: "../secret.txt".into(),
            size,
            sha256: [1; 32],
        }
    }

    #[test]
    fn a_transfer_goes_offer_accept_stream_resume_result() {
        let mut t = Transfers::new(limits());
        let (out, _) = t.offer(1, 2, offer(600));
        let id = match &out[0] {
            (2, ServerMsg::FileOffer { transfer, name, .. }) => {
                assert_eq!(name, "secret.txt");
                *transfer
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            t.stream(1, id, 0),
            Err(ErrorCode::TransferInvalid),
            "not accepted yet"
        );
        let (out, _) = t.answer(2, id, true, 0);
        assert!(matches!(
            out[0],
            (
                1,
                ServerMsg::FileState {
                    state: FileState::Accepted,
                    offset: 0,
                    ..
                }
            )
        ));
        assert_eq!(
            t.stream(2, id, 0),
            Err(ErrorCode::TransferInvalid),
            "only the sender streams"
        );
        assert_eq!(t.stream(1, id, 0), Ok(Route { to: 2, len: 600 }));
        // Interrupted at 250: the recipient resumes from there.
        let _ = t.answer(2, id, true, 250);
        assert_eq!(t.stream(1, id, 0), Err(ErrorCode::TransferInvalid));
        assert_eq!(t.stream(1, id, 250), Ok(Route { to: 2, len: 350 }));
        let (out, note) = t.result(2, id, true);
        assert!(matches!(
            out[0],
            (
                1,
                ServerMsg::FileState {
                    state: FileState::Completed,
                    ..
                }
            )
        ));
        assert_eq!(note.unwrap().state, FileState::Completed);
        assert!(t.is_empty());
    }

    #[test]
    fn oversized_too_many_declined_and_departed_transfers_are_refused_or_failed() {
        let mut t = Transfers::new(limits());
        let (out, note) = t.offer(1, 2, offer(1001));
        assert!(note.is_none());
        assert!(matches!(
            out[1],
            (
                1,
                ServerMsg::Notice {
                    code: ErrorCode::FileTooLarge,
                    ..
                }
            )
        ));
        let _ = t.offer(1, 2, offer(10));
        let _ = t.offer(1, 2, offer(10));
        let (out, _) = t.offer(1, 2, offer(10));
        assert!(matches!(
            out[1],
            (
                1,
                ServerMsg::Notice {
                    code: ErrorCode::TooManyTransfers,
                    ..
                }
            )
        ));
        let (out, _) = t.answer(2, 1, false, 0);
        assert!(matches!(
            out[0],
            (
                1,
                ServerMsg::FileState {
                    state: FileState::Declined,
                    ..
                }
            )
        ));
        let (out, notes) = t.drop_participant(2);
        assert_eq!(notes.len(), 1);
        assert!(matches!(
            out[0],
            (
                1,
                ServerMsg::FileState {
                    state: FileState::Failed,
                    ..
                }
            )
        ));
        assert!(t.is_empty());
    }
}
