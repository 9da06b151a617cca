//! Reading the media group streams a peer opens (docs/PROTOCOL.md, "Media"): one unidirectional stream per
//! group, a group header, then frames (header + payload). The relay reads its publishers with
//! [`GroupOrder::Live`]; clients may choose [`GroupOrder::Strict`]. Nothing here forwards or decides.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use quinn::{Connection, ReadExactError, RecvStream};

use super::quic::{read_err, ConnError};
use crate::core::{Frame, Origin};
use crate::protocol::{
    stream_code, FileStreamHeader, FrameHeader, GroupHeader, FRAME_HEADER_LEN, GROUP_HEADER_LEN,
    STREAM_TYPE_FILE,
};

/// The most a frame's buffer reserves before its payload arrives; it grows with the bytes received.
/// 64 KiB covers a typical delta frame in one allocation.
const FRAME_INITIAL_RESERVE: usize = 64 << 10;

/// One group stream being read.
struct GroupReader {
    stream: RecvStream,
    header: Option<GroupHeader>,
    frames: u64,
    reset: bool,
    /// Its group number is not newer than one already started on this connection: its frames are dropped.
    stale: bool,
}

/// What a stream's next read gave.
enum Read {
    Frame(Frame),
    /// The stream is a file stream, not a group: hand it over whole.
    File(FileStreamHeader),
}

type Step = Pin<Box<dyn Future<Output = (GroupReader, Result<Option<Read>, ConnError>)> + Send>>;

/// What a peer may send on its unidirectional streams.
#[derive(Debug, Clone, Copy)]
pub struct StreamRules {
    /// Largest frame payload.
    pub max_frame: usize,
    /// Local track ids accepted are `0..max_tracks`; 0 refuses group streams (STOP_SENDING `REFUSED`).
    pub max_tracks: u32,
}

/// Reads the next frame of a group (and the group header first).
fn step(mut r: GroupReader, rules: StreamRules) -> Step {
    Box::pin(async move {
        let res = read_frame(&mut r, rules).await;
        (r, res)
    })
}

async fn read_frame(r: &mut GroupReader, rules: StreamRules) -> Result<Option<Read>, ConnError> {
    let max_frame = rules.max_frame;
    let header = match r.header {
        Some(h) => h,
        None => {
            let mut b = [0u8; GROUP_HEADER_LEN];
            match r.stream.read_exact(&mut b).await {
                Ok(()) => {}
                Err(ReadExactError::FinishedEarly(0)) => return Ok(None),
                Err(ReadExactError::ReadError(quinn::ReadError::Reset(_))) => {
                    r.reset = true;
                    return Ok(None);
                }
                Err(e) => return Err(read_err(e, "group header truncated")),
            }
            if b[0] == STREAM_TYPE_FILE {
                return Ok(Some(Read::File(FileStreamHeader::decode(&b)?)));
            }
            let h = GroupHeader::decode(&b)?;
            if rules.max_tracks == 0 {
                let _ = r.stream.stop(stream_code::REFUSED.into());
                return Ok(None);
            }
            if h.track >= rules.max_tracks {
                return Err(ConnError::Violation("track id out of range"));
            }
            r.header = Some(h);
            h
        }
    };
    let mut hb = [0u8; FRAME_HEADER_LEN];
    match r.stream.read_exact(&mut hb).await {
        Ok(()) => {}
        Err(ReadExactError::FinishedEarly(0)) => return Ok(None),
        // The sender abandoned this group: not an error.
        Err(ReadExactError::ReadError(quinn::ReadError::Reset(_))) => {
            r.reset = true;
            return Ok(None);
        }
        Err(e) => return Err(read_err(e, "frame header truncated")),
    }
    let fh = FrameHeader::decode(&hb, max_frame)?;
    if fh.keyframe != (r.frames == 0) {
        return Err(ConnError::Violation(
            "a group must start with its only keyframe",
        ));
    }
    let total = FRAME_HEADER_LEN + fh.payload_len as usize;
    // Memory follows the bytes that arrived, not the length a header claims: a peer announcing 4 MiB
    // frames on every stream and sending nothing would otherwise pin 4 MiB per stream.
    let mut buf = BytesMut::with_capacity(total.min(FRAME_INITIAL_RESERVE));
    buf.put_slice(&hb);
    while buf.len() < total {
        match r.stream.read_chunk(total - buf.len(), true).await {
            Ok(Some(chunk)) => buf.put_slice(&chunk.bytes),
            Ok(None) => return Err(ConnError::Violation("frame payload truncated")),
            Err(quinn::ReadError::Reset(_)) => {
                r.reset = true;
                return Ok(None);
            }
            Err(_) => return Err(ConnError::Closed),
        }
    }
    r.frames += 1;
    Ok(Some(Read::Frame(Frame {
        track: header.track,
        group: header.group,
        seq: fh.seq,
        keyframe: fh.keyframe,
        wire: buf.freeze(),
        received_at: Instant::now(),
        origin: Origin::Quic,
    })))
}

/// What [`GroupStreams::next`] yields.
#[derive(Debug)]
pub enum GroupEvent {
    /// A frame; the first of its group is its keyframe.
    Frame(Frame),
    /// A group stream ended: finished by the sender, or `reset` (e.g. `GROUP_SKIPPED` from the relay).
    Ended { reset: bool },
    /// A frame dropped because its group is not newer than one already started (a reused group number, or
    /// an old group overtaken after loss).
    Stale { bytes: usize },
    /// A file-transfer stream: its header was read; the rest of `stream` is the file's bytes.
    File {
        header: FileStreamHeader,
        stream: RecvStream,
    },
}

/// In which order [`GroupStreams`] hands out frames of concurrent groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupOrder {
    /// As they become readable, older groups first when several are: a lost packet stalls only its own
    /// group (the relay reads publishers this way).
    Live,
    /// A group only after every older one has ended: nothing is skipped that the relay delivered, at the
    /// price of head-of-line blocking (the demo technician records this way).
    Strict,
}

/// Reads the media group streams a peer opens on one connection (docs/PROTOCOL.md, "Media"). Groups are
/// read concurrently, so a lost packet stalls only its own group, but a ready frame of an older group is
/// always taken before one of a newer group, so frames come out in order whenever the network allows.
/// Checks that a group starts with its only keyframe. A group whose number is not newer than one already
/// started (an old group overtaken after loss, or a reused number) yields [`GroupEvent::Stale`] instead of
/// its frames, so replaying group numbers gains a sender nothing.
pub struct GroupStreams<'a> {
    conn: &'a Connection,
    accept: Pin<Box<quinn::AcceptUni<'a>>>,
    readers: Vec<Step>,
    order: GroupOrder,
    /// Newest group started per track.
    started: Vec<(u32, u64)>,
    /// False once the connection is closed: what is buffered in open groups is still read out.
    accepting: bool,
    rules: StreamRules,
}

impl<'a> GroupStreams<'a> {
    pub fn new(conn: &'a Connection, max_frame: usize, order: GroupOrder) -> GroupStreams<'a> {
        let rules = StreamRules {
            max_frame,
            max_tracks: u32::MAX,
        };
        GroupStreams::with_rules(conn, rules, order)
    }

    /// A reader that enforces `rules` (the relay's view of a publisher).
    pub fn with_rules(
        conn: &'a Connection,
        rules: StreamRules,
        order: GroupOrder,
    ) -> GroupStreams<'a> {
        GroupStreams {
            conn,
            accept: Box::pin(conn.accept_uni()),
            readers: Vec::new(),
            order,
            started: Vec::new(),
            accepting: true,
            rules,
        }
    }

    /// The next event; `Err(ConnError::Closed)` once the connection is gone.
    pub async fn next(&mut self) -> Result<GroupEvent, ConnError> {
        enum Ev {
            Accepted(Result<RecvStream, quinn::ConnectionError>),
            Step(usize, GroupReader, Result<Option<Read>, ConnError>),
        }
        loop {
            if !self.accepting && self.readers.is_empty() {
                return Err(ConnError::Closed);
            }
            let accepting = self.accepting;
            let polled = match self.order {
                GroupOrder::Live => self.readers.len(),
                GroupOrder::Strict => self.readers.len().min(1),
            };
            let (readers, accept) = (&mut self.readers, &mut self.accept);
            let ev = poll_fn(|cx| {
                for (i, fut) in readers[..polled].iter_mut().enumerate() {
                    if let Poll::Ready((r, res)) = fut.as_mut().poll(cx) {
                        return Poll::Ready(Ev::Step(i, r, res));
                    }
                }
                if accepting {
                    if let Poll::Ready(r) = accept.as_mut().poll(cx) {
                        return Poll::Ready(Ev::Accepted(r));
                    }
                }
                Poll::Pending
            })
            .await;
            match ev {
                Ev::Accepted(Ok(stream)) => {
                    self.accept = Box::pin(self.conn.accept_uni());
                    let reader = GroupReader {
                        stream,
                        header: None,
                        frames: 0,
                        reset: false,
                        stale: false,
                    };
                    self.readers.push(step(reader, self.rules));
                }
                Ev::Accepted(Err(_)) => self.accepting = false,
                Ev::Step(i, _, Err(ConnError::Closed)) => drop(self.readers.remove(i)),
                Ev::Step(i, mut reader, res) => {
                    let frame = match res? {
                        Some(Read::Frame(f)) => f,
                        Some(Read::File(header)) => {
                            drop(self.readers.remove(i));
                            return Ok(GroupEvent::File {
                                header,
                                stream: reader.stream,
                            });
                        }
                        None => {
                            drop(self.readers.remove(i));
                            return Ok(GroupEvent::Ended {
                                reset: reader.reset,
                            });
                        }
                    };
                    if reader.frames == 1 {
                        match self.started.iter_mut().find(|(t, _)| *t == frame.track) {
                            Some((_, g)) if frame.group <= *g => reader.stale = true,
                            Some((_, g)) => *g = frame.group,
                            None => self.started.push((frame.track, frame.group)),
                        }
                    }
                    let stale = reader.stale;
                    self.readers[i] = step(reader, self.rules);
                    return Ok(if stale {
                        GroupEvent::Stale {
                            bytes: frame.wire.len(),
                        }
                    } else {
                        GroupEvent::Frame(frame)
                    });
                }
            }
        }
    }
}
