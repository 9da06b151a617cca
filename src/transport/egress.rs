//! What the relay writes to a QUIC receiver besides control messages: media groups drained from its
//! [`MediaSlot`], and file streams piped from a sender. Both are driven by queues the room task fills; neither
//! decides anything.

use std::sync::Arc;
use std::time::Duration;

use quinn::{Connection, RecvStream, SendStream};
use tokio::sync::mpsc;

use super::{FILE_PRIORITY, MEDIA_PRIORITY};
use crate::core::{ConnId, Origin, Popped};
use crate::protocol::{stream_code, ErrorCode, FileStreamHeader, GroupHeader};
use crate::relay::room::FileRouteReply;
use crate::relay::{FilePipe, MediaSlot, Relay, RoomMsg};

/// How long a closing connection waits for its last group to be acknowledged.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
/// Largest chunk read from a sender's file stream at once.
const FILE_CHUNK: usize = 64 << 10;

/// Resolves when the room has declared a lag (reset pending) or aborted the queue.
async fn reset_declared(slot: &MediaSlot) {
    loop {
        slot.notify.notified().await;
        let q = slot.lock();
        if q.reset_pending() || q.is_aborted() {
            return;
        }
    }
}

/// The group stream being written for one track.
struct Open {
    track: u32,
    /// The sender's group number it carries.
    group: u64,
    stream: SendStream,
}

/// Drains a receiver's media backlog into one unidirectional stream per group, one open group per track.
/// The relay numbers the groups it sends 0, 1, 2, ... per receiving connection, whatever numbers the sender
/// used, so a receiver always sees increasing groups (also across a sender's resume). A lag declared while a
/// write or a stream open is blocked interrupts it; the open streams are then reset with `GROUP_SKIPPED`. A
/// group the receiver stops (STOP_SENDING) is dropped to its end; the track's next group starts on a new
/// stream with its keyframe.
pub(super) async fn media_writer(relay: Arc<Relay>, conn: Connection, slot: Arc<MediaSlot>) {
    let _done = slot.done.clone().drop_guard();
    let m = &relay.metrics;
    let mut open: Vec<Open> = Vec::new();
    // Sender groups not to forward any more (stopped by the receiver), per track.
    let mut dropped: Vec<(u32, u64)> = Vec::new();
    let mut next_group: u64 = 0;
    loop {
        let popped = loop {
            let (next, finished) = {
                let mut q = slot.lock();
                (q.pop(), q.is_finished())
            };
            match next {
                Some(p) => break p,
                None if finished => {
                    // Drained (or aborted): hand over the last groups and wait for them to be acknowledged.
                    let aborted = slot.lock().is_aborted();
                    for mut o in open.drain(..) {
                        let _ = o.stream.finish();
                        if !aborted {
                            let _ = tokio::time::timeout(CLOSE_LINGER, o.stream.stopped()).await;
                        }
                    }
                    return;
                }
                None => slot.notify.notified().await,
            }
        };
        let frame = match popped {
            Popped::ResetStream => {
                for mut o in open.drain(..) {
                    let _ = o.stream.reset(stream_code::GROUP_SKIPPED.into());
                }
                continue;
            }
            Popped::Frame(f) => f,
        };
        let (track, group) = (frame.track, frame.group);
        if frame.keyframe {
            // A keyframe starts a new group, even one that reuses a stopped group's number (a sender that
            // came back numbers afresh).
            dropped.retain(|(t, _)| *t != track);
        }
        if dropped.contains(&(track, group)) {
            m.frames_dropped
                .with_label_values(&["receiver_stopped"])
                .inc();
            continue;
        }
        // A keyframe always starts a new group stream: a sender that came back numbers its groups afresh,
        // so its group 0 must not continue the stream of its old group 0.
        let at = match open.iter().position(|o| o.track == track) {
            Some(i) if open[i].group == group && !frame.keyframe => i,
            current => {
                if let Some(i) = current {
                    let mut o = open.swap_remove(i);
                    let _ = o.stream.finish();
                }
                let opened = tokio::select! {
                    r = conn.open_uni() => r,
                    _ = reset_declared(&slot) => continue,
                };
                let Ok(mut s) = opened else { return };
                let _ = s.set_priority(MEDIA_PRIORITY);
                let header = GroupHeader {
                    track,
                    group: next_group,
                }
                .encode();
                next_group += 1;
                let wrote = tokio::select! {
                    r = s.write_all(&header) => r.is_ok(),
                    _ = reset_declared(&slot) => {
                        let _ = s.reset(stream_code::GROUP_SKIPPED.into());
                        continue;
                    }
                };
                if !wrote {
                    if conn.close_reason().is_some() {
                        return;
                    }
                    dropped.retain(|(t, _)| *t != track);
                    dropped.push((track, group));
                    m.frames_dropped
                        .with_label_values(&["receiver_stopped"])
                        .inc();
                    continue;
                }
                open.push(Open {
                    track,
                    group,
                    stream: s,
                });
                open.len() - 1
            }
        };
        let len = frame.wire.len() as u64;
        let origin = frame.origin;
        let written = tokio::select! {
            r = open[at].stream.write_chunk(frame.wire) => Some(r),
            _ = reset_declared(&slot) => None,
        };
        match written {
            Some(Ok(())) => {
                m.frames_forwarded.inc();
                m.bytes_forwarded.inc_by(len);
                m.forwarding_latency
                    .observe(frame.received_at.elapsed().as_secs_f64());
                if origin == Origin::WebRtc {
                    m.webrtc.bridged_frames.webrtc_to_quic.inc();
                }
            }
            Some(Err(_)) => {
                if conn.close_reason().is_some() {
                    return;
                }
                // The receiver stopped this group (STOP_SENDING): drop the rest of it.
                open.swap_remove(at);
                dropped.retain(|(t, _)| *t != track);
                dropped.push((track, group));
                m.frames_dropped
                    .with_label_values(&["receiver_stopped"])
                    .inc();
            }
            None => {} // a reset is pending; the next pop handles it
        }
    }
}

/// Opens a stream to this connection for every file pipe the room routes here, below media in priority, so
/// a large transfer never delays frames or input. A pipe that ends short (the sender's stream broke) resets
/// the stream; the recipient answers again with the offset it has to resume.
pub(super) async fn file_writer(
    relay: Arc<Relay>,
    conn: Connection,
    mut rx: mpsc::Receiver<FilePipe>,
) {
    while let Some(pipe) = rx.recv().await {
        let conn = conn.clone();
        let relay = relay.clone();
        relay.tasks.clone().spawn(async move {
            let Ok(mut s) = conn.open_uni().await else {
                return;
            };
            let _ = s.set_priority(FILE_PRIORITY);
            let FilePipe {
                transfer,
                offset,
                len,
                mut chunks,
            } = pipe;
            let header = FileStreamHeader { transfer, offset }.encode();
            if s.write_all(&header).await.is_err() {
                return;
            }
            let mut passed = 0u64;
            while let Some(chunk) = chunks.recv().await {
                passed += chunk.len() as u64;
                if s.write_chunk(chunk).await.is_err() {
                    return; // the recipient stopped it, or is gone: the sender's reads stop too
                }
            }
            relay.metrics.file_bytes.inc_by(passed);
            if passed == len {
                let _ = s.finish();
            } else {
                let _ = s.reset(stream_code::TRANSFER_INTERRUPTED.into());
            }
        });
    }
}

/// A file stream a peer opened: asks the room where it goes, then passes at most the transfer's remaining
/// bytes on; a stream that is refused, or carries more than that, is stopped with `REFUSED`.
pub(super) async fn file_ingress(
    room: mpsc::Sender<RoomMsg>,
    conn: ConnId,
    header: FileStreamHeader,
    mut stream: RecvStream,
) {
    let (reply, answer) = tokio::sync::oneshot::channel::<FileRouteReply>();
    let asked = room
        .send(RoomMsg::FileStream {
            conn,
            transfer: header.transfer,
            offset: header.offset,
            reply,
        })
        .await;
    let route = match asked {
        Ok(()) => answer.await.unwrap_or(Err(ErrorCode::SessionEnded)),
        Err(_) => Err(ErrorCode::SessionEnded),
    };
    let Ok((tx, len)) = route else {
        let _ = stream.stop(stream_code::REFUSED.into());
        return;
    };
    let mut left = len;
    loop {
        let want = (left.min(FILE_CHUNK as u64) as usize).max(1);
        match stream.read_chunk(want, true).await {
            Ok(Some(chunk)) => {
                let mut bytes = chunk.bytes;
                let over = bytes.len() as u64 > left;
                // More than the transfer's size: pass what fits, refuse the rest.
                bytes.truncate(left as usize);
                left -= bytes.len() as u64;
                if (!bytes.is_empty() && tx.send(bytes).await.is_err()) || over {
                    let _ = stream.stop(stream_code::REFUSED.into());
                    return;
                }
            }
            Ok(None) | Err(_) => return, // finished (dropping `tx` ends the pipe), or broken (short)
        }
    }
}
