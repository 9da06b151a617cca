//! What the room task holds of one connection: where its control messages go, its media backlog, and how to
//! close it. Transport-neutral, so a WebRTC peer can sit in the same room as a QUIC one.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use crate::core::{BacklogLimits, ConnId, MediaQueue};
use crate::protocol::{ErrorCode, ServerMsg};

/// An item for a connection's control writer.
#[derive(Debug)]
pub enum ControlOut {
    Msg(ServerMsg),
    /// Several messages in order, one queue item (a client's entry state).
    Batch(Vec<ServerMsg>),
    /// Flush what came before, then close the connection with this code.
    Close(ErrorCode, String),
}

/// A media backlog shared by the room task (push) and the connection's media writer (pop).
#[derive(Debug)]
pub struct MediaSlot {
    queue: Mutex<MediaQueue>,
    /// Wakes the writer: a frame was queued, a reset was declared, or the queue was finished or closed.
    pub notify: Notify,
    /// Cancelled when the writer has stopped (drained, or aborted); a closing connection waits for it so
    /// the last frames are not cut off.
    pub done: CancellationToken,
}

impl MediaSlot {
    /// `with_writer: false` for a connection that never receives media (its `done` is already cancelled).
    pub fn new(limits: BacklogLimits, with_writer: bool) -> Arc<MediaSlot> {
        let done = CancellationToken::new();
        if !with_writer {
            done.cancel();
        }
        Arc::new(MediaSlot {
            queue: Mutex::new(MediaQueue::new(limits)),
            notify: Notify::new(),
            done,
        })
    }

    /// The queue; held only for a push or a pop.
    pub fn lock(&self) -> MutexGuard<'_, MediaQueue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drain what is queued, then stop.
    pub fn finish(&self) {
        self.lock().finish();
        self.notify.notify_one();
    }

    /// Stop at once, dropping what is queued.
    pub fn close(&self) {
        self.lock().close();
        self.notify.notify_one();
    }
}

/// File bytes passed from a sender's stream to a recipient, in chunks over a bounded channel (the sender's
/// reads wait when the recipient's writes do, so QUIC flow control reaches the sender).
#[derive(Debug)]
pub struct FilePipe {
    pub transfer: u32,
    pub offset: u64,
    /// Bytes that should arrive; fewer when the channel closes means the transfer was interrupted.
    pub len: u64,
    pub chunks: mpsc::Receiver<bytes::Bytes>,
}

/// Chunks buffered per file pipe.
pub const FILE_PIPE_CHUNKS: usize = 16;

/// Closes a connection at once (no flushing), used when its control queue is full.
pub type Closer = Arc<dyn Fn(ErrorCode, &str) + Send + Sync>;

/// The room task's handle on one connection.
pub struct PeerHandle {
    pub conn: ConnId,
    pub control: mpsc::Sender<ControlOut>,
    pub media: Arc<MediaSlot>,
    pub closer: Closer,
    /// Where file streams for this connection go (its transport opens a stream per pipe).
    pub files: mpsc::Sender<FilePipe>,
}

impl std::fmt::Debug for PeerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerHandle")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}
