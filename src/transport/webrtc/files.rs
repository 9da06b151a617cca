//! File transfers over data channels (docs/PROTOCOL.md section 13.5): one channel per transfer and direction,
//! labelled `file:<transfer>:<offset>`. A peer's task owns this state; small tasks wait on the room's answers
//! and on the sender's pipe so the peer's loop never blocks.
//!
//! Flow control: relay → recipient, the pipe's chunks are taken only while the recipient's SCTP buffer is
//! below [`MAX_BUFFERED`], so the sender's stream waits (QUIC flow control) when the browser is slow. Sender →
//! relay, SCTP delivers what the browser sends; up to [`MAX_QUEUED`] per channel waits for the recipient,
//! past it the channel is closed (an interrupted transfer the sender resumes from the recipient's offset).

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use str0m::channel::{ChannelConfig, ChannelId, Reliability};
use str0m::Rtc;
use tokio::sync::{mpsc, oneshot};

use crate::core::ConnId;
use crate::relay::room::FileRouteReply;
use crate::relay::{FilePipe, RoomMsg};

/// SCTP bytes buffered towards a recipient before its pipe is read further.
const MAX_BUFFERED: usize = 1 << 20;
/// Bytes from a sender held for a recipient that is behind.
const MAX_QUEUED: usize = 8 << 20;
/// Largest data-channel message written.
const CHUNK: usize = 64 << 10;

/// Work for the peer's loop from its helper tasks.
#[derive(Debug)]
pub(super) enum FileWork {
    /// The room's answer for a sender's channel.
    Route(ChannelId, FileRouteReply),
    /// Bytes for a recipient's channel.
    Chunk(ChannelId, Bytes),
    /// The pipe to a recipient's channel ended; `complete` when every byte came.
    End(ChannelId, bool),
}

#[derive(Debug, Default)]
struct Inbound {
    route: Option<(mpsc::Sender<Bytes>, u64)>,
    queued: VecDeque<Bytes>,
    queued_bytes: usize,
    /// Nothing more will be taken (refused, over its size, or its recipient gone).
    closed: bool,
    /// The sender closed the channel: forget it once the queue is passed on.
    peer_closed: bool,
}

#[derive(Debug, Default)]
struct Outbound {
    pending: VecDeque<Bytes>,
    ended: bool,
}

/// A peer's file channels.
#[derive(Debug)]
pub(super) struct Files {
    conn: ConnId,
    work_tx: mpsc::Sender<FileWork>,
    inbound: HashMap<ChannelId, Inbound>,
    outbound: HashMap<ChannelId, Outbound>,
    /// Bytes delivered to recipients (for the metrics).
    pub delivered: u64,
}

/// `file:<transfer>:<offset>`.
pub(super) fn parse_label(label: &str) -> Option<(u32, u64)> {
    let rest = label.strip_prefix("file:")?;
    let (t, o) = rest.split_once(':')?;
    Some((t.parse().ok()?, o.parse().ok()?))
}

impl Files {
    /// The state, and the receiver of its helper tasks' work (for the peer's loop to select on).
    pub fn new(conn: ConnId) -> (Files, mpsc::Receiver<FileWork>) {
        let (work_tx, work) = mpsc::channel(8);
        let files = Files {
            conn,
            work_tx,
            inbound: HashMap::new(),
            outbound: HashMap::new(),
            delivered: 0,
        };
        (files, work)
    }

    pub fn owns(&self, id: ChannelId) -> bool {
        self.inbound.contains_key(&id) || self.outbound.contains_key(&id)
    }

    /// True while every recipient channel has room: the loop may take more chunks.
    pub fn can_take(&self, rtc: &mut Rtc) -> bool {
        self.outbound.keys().all(|id| {
            rtc.channel(*id)
                .is_none_or(|mut ch| ch.buffered_amount() < MAX_BUFFERED)
        })
    }

    /// The room routes a transfer to this peer: open its channel and feed it from the pipe.
    pub fn open_outbound(
        &mut self,
        rtc: &mut Rtc,
        tasks: &tokio_util::task::TaskTracker,
        pipe: FilePipe,
    ) {
        let FilePipe {
            transfer,
            offset,
            len,
            mut chunks,
        } = pipe;
        let id = rtc.direct_api().create_data_channel(ChannelConfig {
            label: format!("file:{transfer}:{offset}"),
            ordered: true,
            reliability: Reliability::Reliable,
            negotiated: None,
            protocol: String::new(),
        });
        self.outbound.insert(id, Outbound::default());
        let work = self.work_tx.clone();
        tasks.spawn(async move {
            let mut passed = 0u64;
            while let Some(chunk) = chunks.recv().await {
                passed += chunk.len() as u64;
                if work.send(FileWork::Chunk(id, chunk)).await.is_err() {
                    return;
                }
            }
            let _ = work.send(FileWork::End(id, passed == len)).await;
        });
    }

    /// A sender opened `file:<transfer>:<offset>`: ask the room where its bytes go.
    pub fn open_inbound(
        &mut self,
        id: ChannelId,
        transfer: u32,
        offset: u64,
        room: &mpsc::Sender<RoomMsg>,
        tasks: &tokio_util::task::TaskTracker,
    ) {
        self.inbound.insert(id, Inbound::default());
        let (reply, answer) = oneshot::channel::<FileRouteReply>();
        let (room, work, conn) = (room.clone(), self.work_tx.clone(), self.conn);
        tasks.spawn(async move {
            let msg = RoomMsg::FileStream {
                conn,
                transfer,
                offset,
                reply,
            };
            let route = match room.send(msg).await {
                Ok(()) => answer
                    .await
                    .unwrap_or(Err(crate::protocol::ErrorCode::SessionEnded)),
                Err(_) => Err(crate::protocol::ErrorCode::SessionEnded),
            };
            let _ = work.send(FileWork::Route(id, route)).await;
        });
    }

    /// Bytes a sender wrote on its channel.
    pub fn data(&mut self, rtc: &mut Rtc, id: ChannelId, data: Vec<u8>) {
        let Some(inb) = self.inbound.get_mut(&id) else {
            return;
        };
        inb.queued_bytes += data.len();
        inb.queued.push_back(Bytes::from(data));
        if inb.queued_bytes > MAX_QUEUED {
            Self::close_inbound(rtc, id, inb);
        }
        self.pump(rtc);
    }

    fn close_inbound(rtc: &mut Rtc, id: ChannelId, inb: &mut Inbound) {
        if !inb.closed {
            inb.closed = true;
            inb.route = None;
            inb.queued.clear();
            rtc.direct_api().close_data_channel(id);
        }
    }

    /// Work from the helper tasks.
    pub fn work(&mut self, rtc: &mut Rtc, w: FileWork) {
        match w {
            FileWork::Route(id, route) => {
                if let Some(inb) = self.inbound.get_mut(&id) {
                    match route {
                        Ok(r) => inb.route = Some(r),
                        Err(_) => Self::close_inbound(rtc, id, inb),
                    }
                }
            }
            FileWork::Chunk(id, bytes) => {
                if let Some(out) = self.outbound.get_mut(&id) {
                    out.pending.push_back(bytes);
                }
            }
            FileWork::End(id, _complete) => {
                if let Some(out) = self.outbound.get_mut(&id) {
                    out.ended = true;
                }
            }
        }
        self.pump(rtc);
    }

    /// A channel closed (by the peer, or after the relay closed it).
    pub fn closed(&mut self, rtc: &mut Rtc, id: ChannelId) {
        // An inbound channel is forgotten once what it brought is passed on; dropping its route then ends
        // the recipient's pipe (short of `size`: interrupted). Dropping an outbound entry makes its feeder's
        // sends fail, which stops the sender's stream.
        if let Some(inb) = self.inbound.get_mut(&id) {
            inb.peer_closed = true;
        }
        self.outbound.remove(&id);
        self.pump(rtc);
    }

    /// Moves bytes: queued sender bytes to their recipients' pipes, pending recipient bytes into SCTP.
    pub fn pump(&mut self, rtc: &mut Rtc) {
        for (id, inb) in self.inbound.iter_mut() {
            let Some((tx, left)) = inb.route.as_mut() else {
                continue;
            };
            while let Some(front) = inb.queued.front() {
                let full = front.len();
                let mut bytes = front.clone();
                let over = bytes.len() as u64 > *left;
                bytes.truncate(*left as usize);
                let n = bytes.len() as u64;
                match tx.try_send(bytes) {
                    Ok(()) => {
                        inb.queued.pop_front();
                        inb.queued_bytes -= full;
                        *left -= n;
                        if over {
                            // More than the transfer's size: pass what fits, refuse the rest.
                            inb.closed = true;
                            inb.queued.clear();
                            rtc.direct_api().close_data_channel(*id);
                            break;
                        }
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => break,
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        inb.closed = true;
                        inb.queued.clear();
                        rtc.direct_api().close_data_channel(*id);
                        break;
                    }
                }
            }
            if *left == 0 && inb.queued.is_empty() {
                // Everything arrived: end the recipient's pipe now rather than at the channel's close.
                inb.route = None;
            }
        }
        self.inbound
            .retain(|_, inb| !(inb.peer_closed && (inb.queued.is_empty() || inb.closed)));
        let mut done = Vec::new();
        for (id, out) in self.outbound.iter_mut() {
            let Some(mut ch) = rtc.channel(*id) else {
                continue; // not open yet
            };
            while let Some(front) = out.pending.front_mut() {
                if ch.buffered_amount() >= MAX_BUFFERED {
                    break;
                }
                let n = front.len().min(CHUNK);
                match ch.write(true, &front[..n]) {
                    Ok(true) => {
                        self.delivered += n as u64;
                        let _ = front.split_to(n);
                        if front.is_empty() {
                            out.pending.pop_front();
                        }
                    }
                    Ok(false) => break,
                    Err(_) => {
                        out.pending.clear();
                        out.ended = true;
                        break;
                    }
                }
            }
            if out.ended && out.pending.is_empty() {
                done.push(*id);
            }
        }
        for id in done {
            self.outbound.remove(&id);
            rtc.direct_api().close_data_channel(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_channel_labels() {
        assert_eq!(parse_label("file:7:1048576"), Some((7, 1 << 20)));
        assert_eq!(parse_label("file:7"), None);
        assert_eq!(parse_label("file:x:0"), None);
        assert_eq!(parse_label("control"), None);
    }
}
