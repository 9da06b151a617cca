//! The per-receiver media backlog and its drop policy.
//!
//! The room task pushes frames; the receiver's writer task pops them and writes them to QUIC. A receiver that
//! falls behind never slows the sender: `push` never waits. When the backlog exceeds its bound — in bytes, or in
//! the age of its oldest frame — the queue is flushed, the writer is told to **reset** the group stream it is
//! writing (dropping a quinn `SendStream` would finish it and still deliver the stale data), and frames are
//! skipped until the next keyframe. The caller then asks the sender for a keyframe, once, through
//! [`crate::core::IntervalThrottle`].
//!
//! This type does no I/O and reads no clock. The transport shares it between exactly two tasks behind a mutex
//! held for a few instructions per frame.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Frame;

/// Bounds of one receiver's backlog.
#[derive(Debug, Clone, Copy)]
pub struct BacklogLimits {
    /// Queued bytes past which the receiver counts as lagging. A single frame larger than this is still
    /// accepted into an empty queue, so the bound never blocks a large keyframe on its own.
    pub max_bytes: usize,
    /// Age of the oldest queued frame past which the receiver counts as lagging.
    pub max_age: Duration,
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum PushOutcome {
    /// Queued for the writer.
    Queued,
    /// Dropped: the receiver is waiting for a keyframe of this track after a lag.
    Skipped,
    /// The backlog was over its bound: `dropped` frames (`dropped_bytes`) were discarded, the writer resets its
    /// streams, and `need_keyframe` says whether some track now waits for a keyframe ([`MediaQueue::skipping`]
    /// names them; false when only the frame's own track lost frames and that frame was a keyframe, which was
    /// queued).
    Lagged {
        dropped: usize,
        dropped_bytes: usize,
        need_keyframe: bool,
    },
}

/// What the writer takes next.
#[derive(Debug, Clone)]
pub enum Popped {
    /// Reset the group stream being written, if any (code `GROUP_SKIPPED`).
    ResetStream,
    /// Write this frame.
    Frame(Frame),
}

/// One receiver's bounded media backlog. See the module documentation for the policy.
#[derive(Debug)]
pub struct MediaQueue {
    limits: BacklogLimits,
    items: VecDeque<(Instant, Frame)>,
    bytes: usize,
    /// Tracks whose frames are skipped until their next keyframe (few: a linear scan).
    skipping: Vec<u32>,
    /// Every track pushed so far: a lag resets all the writer's open streams, so each must restart at a
    /// keyframe, also one with nothing queued at that moment.
    seen: Vec<u32>,
    reset_pending: bool,
    /// No more pushes (the receiver is leaving); what is queued still drains.
    finished: bool,
    /// The receiver is gone: nothing more is written.
    aborted: bool,
}

impl MediaQueue {
    pub fn new(limits: BacklogLimits) -> MediaQueue {
        MediaQueue {
            limits,
            items: VecDeque::new(),
            bytes: 0,
            skipping: Vec::new(),
            seen: Vec::new(),
            reset_pending: false,
            finished: false,
            aborted: false,
        }
    }

    /// Offers a frame; never blocks.
    pub fn push(&mut self, now: Instant, frame: Frame) -> PushOutcome {
        if self.finished {
            return PushOutcome::Skipped;
        }
        if let Some(i) = self.skipping.iter().position(|t| *t == frame.track) {
            if !frame.keyframe {
                return PushOutcome::Skipped;
            }
            self.skipping.swap_remove(i);
        }
        if !self.seen.contains(&frame.track) {
            self.seen.push(frame.track);
        }
        let size = frame.wire.len();
        let too_many_bytes = !self.items.is_empty() && self.bytes + size > self.limits.max_bytes;
        let too_old = self
            .items
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > self.limits.max_age);
        if too_many_bytes || too_old {
            let dropped = self.items.len();
            let dropped_bytes = self.bytes;
            // Every track waits for its next keyframe: its open stream is reset, queued frames or not.
            self.items.clear();
            for t in &self.seen {
                if *t != frame.track && !self.skipping.contains(t) {
                    self.skipping.push(*t);
                }
            }
            self.bytes = 0;
            self.reset_pending = true;
            let kept = frame.keyframe;
            if kept {
                self.enqueue(now, frame);
            } else {
                self.skipping.push(frame.track);
            }
            let this_dropped = !kept;
            let need_keyframe = !self.skipping.is_empty();
            return PushOutcome::Lagged {
                dropped: dropped + usize::from(this_dropped),
                dropped_bytes: dropped_bytes + if this_dropped { size } else { 0 },
                need_keyframe,
            };
        }
        self.enqueue(now, frame);
        PushOutcome::Queued
    }

    fn enqueue(&mut self, now: Instant, frame: Frame) {
        self.bytes += frame.wire.len();
        self.items.push_back((now, frame));
    }

    /// Tracks waiting for a keyframe after a lag (the caller asks their publishers for one).
    pub fn skipping(&self) -> &[u32] {
        &self.skipping
    }

    /// The next thing for the writer to do, if any. A pending reset comes before any frame.
    pub fn pop(&mut self) -> Option<Popped> {
        if self.aborted {
            return None;
        }
        if std::mem::take(&mut self.reset_pending) {
            return Some(Popped::ResetStream);
        }
        let (_, frame) = self.items.pop_front()?;
        self.bytes -= frame.wire.len();
        Some(Popped::Frame(frame))
    }

    /// True when the writer should abandon the write it is blocked in (a lag was declared meanwhile).
    pub fn reset_pending(&self) -> bool {
        self.reset_pending
    }

    /// Stops accepting frames; what is queued still drains (the session ended and the receiver should get
    /// everything the sender sent before it ended).
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// Stops accepting frames and frees what is queued (the receiver is gone).
    pub fn close(&mut self) {
        self.finished = true;
        self.aborted = true;
        self.items.clear();
        self.bytes = 0;
    }

    /// No more frames will come: once `pop` returns `None` the writer is done.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The writer should stop at once.
    pub fn is_aborted(&self) -> bool {
        self.aborted
    }

    /// Frames and bytes queued now.
    pub fn backlog(&self) -> (usize, usize) {
        (self.items.len(), self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tests::frame;

    fn limits() -> BacklogLimits {
        BacklogLimits {
            max_bytes: 1000,
            max_age: Duration::from_millis(500),
        }
    }

    #[test]
    fn drains_in_order_when_the_writer_keeps_up() {
        let t0 = Instant::now();
        let mut q = MediaQueue::new(limits());
        assert_eq!(q.push(t0, frame(0, 0, true, 100)), PushOutcome::Queued);
        assert_eq!(q.push(t0, frame(0, 1, false, 100)), PushOutcome::Queued);
        assert!(matches!(q.pop(), Some(Popped::Frame(f)) if f.seq == 0));
        assert!(matches!(q.pop(), Some(Popped::Frame(f)) if f.seq == 1));
        assert!(q.pop().is_none());
    }

    #[test]
    fn too_many_bytes_flushes_resets_and_skips_to_the_next_keyframe() {
        let t0 = Instant::now();
        let mut q = MediaQueue::new(limits());
        for seq in 0..9 {
            assert_eq!(
                q.push(t0, frame(0, seq, seq == 0, 100)),
                PushOutcome::Queued
            );
        }
        // 900 queued + 200 > 1000: lag.
        let out = q.push(t0, frame(0, 9, false, 200));
        assert_eq!(
            out,
            PushOutcome::Lagged {
                dropped: 10,
                dropped_bytes: 1100,
                need_keyframe: true
            }
        );
        assert!(q.reset_pending());
        assert_eq!(q.push(t0, frame(0, 10, false, 10)), PushOutcome::Skipped);
        assert!(matches!(q.pop(), Some(Popped::ResetStream)));
        assert!(q.pop().is_none());
        assert_eq!(q.push(t0, frame(1, 11, true, 10)), PushOutcome::Queued);
        assert!(matches!(q.pop(), Some(Popped::Frame(f)) if f.seq == 11));
    }

    #[test]
    fn too_old_backlog_lags_and_a_keyframe_that_trips_it_is_kept() {
        let t0 = Instant::now();
        let mut q = MediaQueue::new(limits());
        assert_eq!(q.push(t0, frame(0, 0, true, 10)), PushOutcome::Queued);
        let later = t0 + Duration::from_millis(501);
        let out = q.push(later, frame(1, 1, true, 10));
        assert_eq!(
            out,
            PushOutcome::Lagged {
                dropped: 1,
                dropped_bytes: 10,
                need_keyframe: false
            }
        );
        assert!(matches!(q.pop(), Some(Popped::ResetStream)));
        assert!(matches!(q.pop(), Some(Popped::Frame(f)) if f.seq == 1));
    }

    #[test]
    fn a_single_frame_larger_than_the_bound_is_accepted_into_an_empty_queue() {
        let t0 = Instant::now();
        let mut q = MediaQueue::new(limits());
        assert_eq!(q.push(t0, frame(0, 0, true, 5000)), PushOutcome::Queued);
        assert_eq!(q.backlog(), (1, 5000));
    }

    #[test]
    fn finished_queue_drains_but_takes_nothing_new() {
        let t0 = Instant::now();
        let mut q = MediaQueue::new(limits());
        assert_eq!(q.push(t0, frame(0, 0, true, 10)), PushOutcome::Queued);
        q.finish();
        assert_eq!(q.push(t0, frame(0, 1, false, 10)), PushOutcome::Skipped);
        assert!(matches!(q.pop(), Some(Popped::Frame(f)) if f.seq == 0));
        assert!(q.pop().is_none() && q.is_finished() && !q.is_aborted());
    }

    #[test]
    fn closed_queue_takes_nothing() {
        let t0 = Instant::now();
        let mut q = MediaQueue::new(limits());
        assert_eq!(q.push(t0, frame(0, 0, true, 10)), PushOutcome::Queued);
        q.close();
        assert_eq!(q.push(t0, frame(0, 1, false, 10)), PushOutcome::Skipped);
        assert!(q.pop().is_none());
    }
}
