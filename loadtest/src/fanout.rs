//! The load engine of `meeting`: one generator thread that runs every publisher, receiver tasks that read
//! every copy, and [`run_fanout`], which runs them over one measured window and merges what they saw into a
//! [`PhaseReport`].
//!
//! The generator is a current-thread tokio runtime on its own OS thread ([`Generator`]). Publishers'
//! endpoints and connections are made inside it, so quinn drives them (packetising, encrypting, sending)
//! on that thread alone: its CPU time, read from `/proc/self/task/<tid>/stat`, is the sending side's whole
//! cost. This is how `--direct` measures a sender apart from the receivers living in the same process.
//!
//! A publisher paces frames by the schedule ([`FanoutPlan::due`]), draws each frame's size from a seeded
//! generator ([`FrameSizes`]) so the relay and direct phases send the same frames, and hands each frame
//! to one writer task per connection it sends on (one through the relay; one per receiver when direct).
//! Writers queue at most [`WRITER_QUEUE`] frames: a connection that cannot keep up holds the publisher
//! back (its send lag shows it), it never loses a frame. Receivers stop once they hold every frame their
//! publishers reported producing, or at the deadline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use assist_relay::client::MediaSender;
use assist_relay::media::Codec;
use assist_relay::protocol::{FrameHeader, FRAME_HEADER_LEN};
use assist_relay::transport::quic::{GroupEvent, GroupOrder, GroupStreams};
use bytes::Bytes;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use quinn::Connection;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::load::{cap_errors, micros, spawn_ticker, Window, DRAIN_GRACE, START_DELAY};
use crate::relay_proc;
use crate::report::{new_histogram, Percentiles, PhaseReport};

/// Frames queued per writer (per connection a publisher sends on) before the publisher waits.
const WRITER_QUEUE: usize = 16;

/// Frame payload sizes, uniform in `[min, max]`, from a seeded SplitMix64 sequence: the same seed gives the
/// same sizes in every phase and every run (no `rand` dependency for one distribution).
#[derive(Debug, Clone)]
pub(crate) struct FrameSizes {
    state: u64,
    min: usize,
    /// `max - min + 1`.
    span: u64,
}

impl FrameSizes {
    pub(crate) fn new(seed: u64, min: usize, max: usize) -> FrameSizes {
        assert!(min <= max, "min {min} > max {max}");
        FrameSizes {
            state: seed,
            min,
            span: (max - min) as u64 + 1,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Iterator for FrameSizes {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        // Multiply-shift maps 64 random bits onto the span without modulo bias worth measuring.
        let r = ((u128::from(self.next_u64()) * u128::from(self.span)) >> 64) as usize;
        Some(self.min + r)
    }
}

/// The load every publisher offers, fixed before it starts.
pub(crate) struct FanoutPlan {
    /// Clock base for the timestamps in frame headers.
    pub base: Instant,
    /// First frame of publisher 0.
    pub t0: Instant,
    /// Receivers give up at this time.
    pub deadline: Instant,
    publishers: usize,
    fps: u32,
    pub frames_per_publisher: u64,
    group_frames: u32,
    min_bytes: usize,
    max_bytes: usize,
    seed: u64,
    /// One buffer every frame is a prefix of: the tool should spend its CPU on QUIC, not on memcpy.
    payload: Bytes,
}

/// What a plan needs from the command line.
pub(crate) struct PlanSpec {
    pub publishers: usize,
    pub fps: u32,
    pub duration_s: f64,
    pub group_frames: u32,
    pub min_bytes: usize,
    pub max_bytes: usize,
    pub seed: u64,
}

impl FanoutPlan {
    pub(crate) fn new(spec: &PlanSpec, base: Instant) -> FanoutPlan {
        let t0 = Instant::now() + START_DELAY;
        FanoutPlan {
            base,
            t0,
            deadline: t0 + Duration::from_secs_f64(spec.duration_s) + DRAIN_GRACE,
            publishers: spec.publishers,
            fps: spec.fps,
            frames_per_publisher: ((f64::from(spec.fps) * spec.duration_s).round() as u64).max(1),
            group_frames: spec.group_frames,
            min_bytes: spec.min_bytes,
            max_bytes: spec.max_bytes,
            seed: spec.seed,
            payload: Bytes::from(vec![0xA5u8; spec.max_bytes]),
        }
    }

    /// When publisher `p` sends frame `k`; publishers are spread evenly over one frame interval.
    pub(crate) fn due(&self, p: usize, k: u64) -> Instant {
        let stagger = p as f64 / self.publishers as f64;
        self.t0 + Duration::from_secs_f64((k as f64 + stagger) / f64::from(self.fps))
    }

    /// Publisher `p`'s frame sizes (its own seed, derived from the run's).
    pub(crate) fn sizes(&self, p: usize) -> FrameSizes {
        let seed = self
            .seed
            .wrapping_add((p as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
        FrameSizes::new(seed, self.min_bytes, self.max_bytes)
    }
}

/// A current-thread tokio runtime on its own OS thread, whose CPU time is read apart. See the module
/// documentation. Dropping it stops the runtime (every task on it is cancelled).
pub(crate) struct Generator {
    handle: tokio::runtime::Handle,
    /// `/proc/self/task/<tid>` without the `/proc/` prefix.
    task: String,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Generator {
    pub(crate) fn start() -> anyhow::Result<Generator> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("generator".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow::anyhow!("generator runtime: {e}")));
                        return;
                    }
                };
                // "/proc/thread-self" links to "<pid>/task/<tid>": this thread's own stat file.
                let task = std::fs::read_link("/proc/thread-self")
                    .context("reading /proc/thread-self")
                    .and_then(|l| {
                        let l = l.to_string_lossy().into_owned();
                        let tid = l.rsplit_once("task/").context("odd /proc/thread-self")?.1;
                        Ok(format!("self/task/{tid}"))
                    });
                let _ = ready_tx.send(task.map(|t| (rt.handle().clone(), t)));
                rt.block_on(async {
                    let _ = stop_rx.await;
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .context("starting the generator thread")?;
        let (handle, task) = ready_rx
            .recv()
            .context("the generator thread died at start")??;
        Ok(Generator {
            handle,
            task,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Runs `fut` on the generator: every quinn endpoint or connection made inside it is driven there.
    pub(crate) fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(fut)
    }

    /// CPU seconds (user + system) the generator thread has used so far.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        relay_proc::cpu_seconds(&self.task).ok()
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One publisher ready to run: the connections it sends every frame on.
pub(crate) struct Publisher {
    pub conns: Vec<Connection>,
    /// Set when its control stream asked for a keyframe.
    pub keyframe_wanted: Arc<AtomicBool>,
}

/// One receiving connection ready to run.
pub(crate) struct Receiver {
    pub conn: Connection,
    pub max_frame: usize,
    /// The tracks it gets, each with the index of the publisher sending it.
    pub listens: Vec<(u32, usize)>,
}

/// Live counters for the progress bar.
#[derive(Default)]
pub(crate) struct Progress {
    pub offered: AtomicU64,
    pub delivered: AtomicU64,
}

#[derive(Default)]
struct WriterResult {
    frames: u64,
    bytes: u64,
    error: Option<String>,
}

#[derive(Default)]
struct PublisherResult {
    frames: u64,
    bytes: u64,
    /// Payload bytes written over all its connections.
    sent_bytes: u64,
    lag: Option<Histogram<u64>>,
    errors: Vec<String>,
}

#[derive(Default)]
struct ReceiverResult {
    frames: u64,
    bytes: u64,
    latency: Option<Histogram<u64>>,
    resets: u64,
    stale: u64,
    seq_gaps: u64,
    mid_group_gaps: u64,
    error: Option<String>,
}

struct OutFrame {
    keyframe: bool,
    ts_us: u64,
    payload: Bytes,
}

/// Writes one connection's copy of a publisher's frames (runs on the generator).
async fn run_writer(
    conn: Connection,
    mut rx: mpsc::Receiver<OutFrame>,
    deadline: Instant,
    who: String,
) -> WriterResult {
    let mut out = WriterResult::default();
    let mut sender = MediaSender::new(conn, 0);
    while let Some(f) = rx.recv().await {
        let len = f.payload.len() as u64;
        let send = sender.send(Codec::Vp8, f.keyframe, f.ts_us, f.payload);
        match tokio::time::timeout_at(deadline.into(), send).await {
            Ok(Ok(true)) => {
                out.frames += 1;
                out.bytes += len;
            }
            Ok(Ok(false)) => {
                out.error = Some(format!(
                    "{who}: MediaSender skipped a frame (no group open)"
                ));
                break;
            }
            Ok(Err(e)) => {
                out.error = Some(format!("{who}: send failed: {e}"));
                break;
            }
            Err(_) => {
                out.error = Some(format!("{who}: send blocked past the deadline"));
                break;
            }
        }
    }
    sender.flush().await;
    out
}

/// Paces publisher `p`'s frames and hands each to every writer (runs on the generator).
async fn run_publisher(
    p: usize,
    publisher: Publisher,
    plan: Arc<FanoutPlan>,
    expected: Arc<watch::Sender<Vec<Option<u64>>>>,
    progress: Arc<Progress>,
) -> PublisherResult {
    let mut out = PublisherResult::default();
    let mut writers = JoinSet::new();
    let mut txs = Vec::with_capacity(publisher.conns.len());
    for (i, conn) in publisher.conns.into_iter().enumerate() {
        let (tx, rx) = mpsc::channel(WRITER_QUEUE);
        let who = format!("publisher {p} connection {i}");
        writers.spawn(run_writer(conn, rx, plan.deadline, who));
        txs.push(Some(tx));
    }
    let mut lag = new_histogram();
    let mut sizes = plan.sizes(p);
    let mut in_group = 0u32;
    for k in 0..plan.frames_per_publisher {
        let due = plan.due(p, k);
        tokio::time::sleep_until(due.into()).await;
        let now = Instant::now();
        lag.saturating_record(micros(now.saturating_duration_since(due)).max(1));
        // A keyframe request is answered on the next frame, as a live encoder would.
        let asked = publisher.keyframe_wanted.swap(false, Ordering::Relaxed);
        let keyframe = asked || in_group == 0 || in_group >= plan.group_frames;
        if keyframe {
            in_group = 0;
        }
        in_group += 1;
        let size = sizes.next().expect("endless");
        let payload = plan.payload.slice(..size);
        let ts_us = micros(now.duration_since(plan.base));
        for slot in &mut txs {
            let Some(tx) = slot else { continue };
            let f = OutFrame {
                keyframe,
                ts_us,
                payload: payload.clone(),
            };
            // A writer that stopped (its error is in its result) gets nothing more.
            if tx.send(f).await.is_err() {
                *slot = None;
            }
        }
        out.frames += 1;
        out.bytes += size as u64;
        progress.offered.fetch_add(1, Ordering::Relaxed);
        if Instant::now() > plan.deadline {
            out.errors
                .push(format!("publisher {p}: behind schedule past the deadline"));
            break;
        }
    }
    expected.send_modify(|e| e[p] = Some(out.frames));
    drop(txs);
    while let Some(w) = writers.join_next().await {
        let w = w.unwrap_or_else(|e| WriterResult {
            error: Some(format!("writer task failed: {e}")),
            ..WriterResult::default()
        });
        out.sent_bytes += w.bytes;
        out.errors.extend(w.error);
    }
    out.lag = Some(lag);
    out
}

/// Reads every copy that reaches one connection (runs on the main runtime).
async fn run_receiver(
    r: Receiver,
    plan: Arc<FanoutPlan>,
    idx: usize,
    mut expected: watch::Receiver<Vec<Option<u64>>>,
    progress: Arc<Progress>,
) -> ReceiverResult {
    let mut out = ReceiverResult::default();
    let mut latency = new_histogram();
    let publisher_of: HashMap<u32, usize> = r.listens.iter().copied().collect();
    let mut counts: HashMap<usize, u64> = r.listens.iter().map(|(_, p)| (*p, 0)).collect();
    let mut last_seq: HashMap<usize, u64> = HashMap::new();
    // Live order, as a viewer reads: a lost packet stalls only its own group.
    let mut groups = GroupStreams::new(&r.conn, r.max_frame, GroupOrder::Live);
    let mut publishers_gone = false;
    loop {
        let done = {
            let e = expected.borrow();
            counts
                .iter()
                .all(|(p, n)| e.get(*p).copied().flatten().is_some_and(|want| *n >= want))
        };
        if done {
            break;
        }
        tokio::select! {
            ev = groups.next() => match ev {
                Ok(GroupEvent::Frame(f)) => {
                    let Some(&p) = publisher_of.get(&f.track) else {
                        out.error = Some(format!("receiver {idx}: frame on unexpected track {}", f.track));
                        break;
                    };
                    let Some(header) = f.wire.get(..FRAME_HEADER_LEN).and_then(|h| h.try_into().ok()) else {
                        out.error = Some(format!("receiver {idx}: short frame"));
                        break;
                    };
                    let fh = match FrameHeader::decode(header, r.max_frame) {
                        Ok(h) => h,
                        Err(e) => {
                            out.error = Some(format!("receiver {idx}: bad frame header: {e}"));
                            break;
                        }
                    };
                    let read_at = micros(f.received_at.saturating_duration_since(plan.base));
                    latency.saturating_record(read_at.saturating_sub(fh.capture_ts_us).max(1));
                    let last = last_seq.insert(p, fh.seq);
                    if last.is_some_and(|s| fh.seq != s + 1) {
                        out.seq_gaps += 1;
                        // A gap before a keyframe costs a freeze; one before a delta frame, a broken picture.
                        out.mid_group_gaps += u64::from(!fh.keyframe);
                    }
                    *counts.entry(p).or_default() += 1;
                    out.frames += 1;
                    out.bytes += u64::from(fh.payload_len);
                    progress.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Ok(GroupEvent::Ended { reset }) => out.resets += u64::from(reset),
                Ok(GroupEvent::Stale { .. }) => out.stale += 1,
                Ok(GroupEvent::File { .. }) => {}
                Err(e) => {
                    let why = r.conn.close_reason().map_or_else(|| e.to_string(), |c| c.to_string());
                    out.error = Some(format!("receiver {idx}: connection ended: {why}"));
                    break;
                }
            },
            changed = expected.changed(), if !publishers_gone => publishers_gone = changed.is_err(),
            _ = tokio::time::sleep_until(plan.deadline.into()) => {
                out.error = Some(format!("receiver {idx}: not everything arrived by the deadline"));
                break;
            }
        }
    }
    out.latency = Some(latency);
    out
}

/// What [`run_fanout`] measured.
pub(crate) struct FanoutOutcome {
    /// Without the measured process's CPU figures (the caller knows whose they are).
    pub rep: PhaseReport,
    /// CPU seconds of the measured process (`cpu`) in the window.
    pub measured_cpu_s: Option<f64>,
}

/// Where and how a phase runs.
pub(crate) struct PhaseSetup<'a> {
    /// "relay" or "direct".
    pub phase: &'static str,
    pub generator: &'a Generator,
    pub bar: ProgressBar,
    /// Reads the CPU seconds of the process whose cost is measured.
    pub cpu: &'a dyn Fn() -> Option<f64>,
    /// The receiving server's UDP port, whose kernel drops are reported apart.
    pub server_port: Option<u16>,
}

/// Runs the plan: publishers on the generator, receivers here. The measured process's CPU, the
/// generator's and this process's are read at both edges of the window.
pub(crate) async fn run_fanout(
    setup: PhaseSetup<'_>,
    publishers: Vec<Publisher>,
    receivers: Vec<Receiver>,
    plan: Arc<FanoutPlan>,
) -> FanoutOutcome {
    let PhaseSetup {
        phase,
        generator,
        bar,
        cpu,
        server_port,
    } = setup;
    let progress = Arc::new(Progress::default());
    let (expected_tx, expected_rx) = watch::channel(vec![None; publishers.len()]);
    let expected_tx = Arc::new(expected_tx);
    // Copies each publisher's frames go out as: one per receiving connection that listens to it.
    let mut copies = vec![0u64; publishers.len()];
    for r in &receivers {
        for (_, p) in &r.listens {
            copies[*p] += 1;
        }
    }
    let mut rx_tasks = JoinSet::new();
    for (i, r) in receivers.into_iter().enumerate() {
        let (plan, expected, progress) = (plan.clone(), expected_rx.clone(), progress.clone());
        rx_tasks.spawn(run_receiver(r, plan, i, expected, progress));
    }
    drop(expected_rx);
    let mut pub_tasks = Vec::new();
    for (p, publisher) in publishers.into_iter().enumerate() {
        let (plan, expected, progress) = (plan.clone(), expected_tx.clone(), progress.clone());
        pub_tasks.push(generator.spawn(run_publisher(p, publisher, plan, expected, progress)));
    }
    drop(expected_tx);
    let ticker = {
        let progress = progress.clone();
        spawn_ticker(
            bar.clone(),
            plan.t0,
            ["frames produced", "received"],
            move || {
                (
                    progress.offered.load(Ordering::Relaxed),
                    progress.delivered.load(Ordering::Relaxed),
                )
            },
        )
    };
    tokio::time::sleep_until(plan.t0.into()).await;
    let (cpu0, gen0) = (cpu(), generator.cpu_seconds());
    let window = Window::open(plan.t0);
    let mut rep = PhaseReport {
        phase,
        pairs: rx_tasks.len(),
        ..PhaseReport::default()
    };
    let mut latency = new_histogram();
    let mut errors = Vec::new();
    while let Some(r) = rx_tasks.join_next().await {
        let r = r.unwrap_or_else(|e| ReceiverResult {
            error: Some(format!("receiver task failed: {e}")),
            ..ReceiverResult::default()
        });
        rep.delivered_frames += r.frames;
        rep.delivered_bytes += r.bytes;
        rep.keyframe_skips += r.resets;
        rep.seq_gaps += r.seq_gaps;
        rep.mid_group_gaps += r.mid_group_gaps;
        rep.stale_frames += r.stale;
        if let Some(h) = &r.latency {
            let _ = latency.add(h);
        }
        errors.extend(r.error);
    }
    let (cpu1, gen1) = (cpu(), generator.cpu_seconds());
    window.close(&mut rep, server_port);
    ticker.abort();
    bar.finish_and_clear();
    let mut lag = new_histogram();
    let mut sent_bytes = 0;
    for (p, t) in pub_tasks.into_iter().enumerate() {
        // Bounded: writers give up at the deadline, and a flush waits 5 s at most.
        let r = match tokio::time::timeout_at((plan.deadline + Duration::from_secs(10)).into(), t)
            .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => PublisherResult {
                errors: vec![format!("publisher {p} task failed: {e}")],
                ..PublisherResult::default()
            },
            Err(_) => PublisherResult {
                errors: vec![format!("publisher {p} did not finish")],
                ..PublisherResult::default()
            },
        };
        rep.offered_frames += r.frames * copies[p];
        rep.offered_bytes += r.bytes * copies[p];
        sent_bytes += r.sent_bytes;
        if let Some(h) = &r.lag {
            let _ = lag.add(h);
        }
        errors.extend(r.errors);
    }
    let planned = plan.frames_per_publisher * copies.iter().sum::<u64>();
    if rep.offered_frames != planned {
        errors.insert(
            0,
            format!(
                "offered {} of the {planned} planned frame copies: the publishers fell short",
                rep.offered_frames
            ),
        );
    }
    rep.missing_frames = rep.offered_frames as i64 - rep.delivered_frames as i64;
    rep.delivered_equals_offered = rep.missing_frames == 0
        && rep.offered_frames == planned
        && rep.delivered_bytes == rep.offered_bytes;
    rep.latency = Percentiles::of(&latency);
    rep.send_lag = Percentiles::of(&lag);
    rep.errors = cap_errors(errors);
    rep.generator_cpu_s = gen0.zip(gen1).map(|(a, b)| b - a);
    rep.generator_cpu_s_per_sent_gb = rep
        .generator_cpu_s
        .filter(|_| sent_bytes > 0)
        .map(|c| c / (sent_bytes as f64 / 1e9));
    FanoutOutcome {
        rep,
        measured_cpu_s: cpu0.zip(cpu1).map(|(a, b)| b - a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(min: usize, max: usize) -> PlanSpec {
        PlanSpec {
            publishers: 2,
            fps: 10,
            duration_s: 1.0,
            group_frames: 30,
            min_bytes: min,
            max_bytes: max,
            seed: 7,
        }
    }

    #[test]
    fn frame_sizes_are_deterministic_and_within_bounds() {
        let a: Vec<usize> = FrameSizes::new(42, 4_000, 20_000).take(10_000).collect();
        let b: Vec<usize> = FrameSizes::new(42, 4_000, 20_000).take(10_000).collect();
        assert_eq!(a, b, "same seed, same sizes");
        assert!(a.iter().all(|s| (4_000..=20_000).contains(s)));
        let c: Vec<usize> = FrameSizes::new(43, 4_000, 20_000).take(100).collect();
        assert_ne!(a[..100], c[..], "another seed, other sizes");
        // Uniform enough: the mean is near the middle, both ends are reached.
        let mean = a.iter().sum::<usize>() as f64 / a.len() as f64;
        assert!((mean - 12_000.0).abs() < 200.0, "mean {mean}");
        assert!(a.iter().any(|s| *s < 4_100) && a.iter().any(|s| *s > 19_900));
        assert!(FrameSizes::new(1, 500, 500).take(50).all(|s| s == 500));
    }

    #[test]
    fn plan_seeds_each_publisher_apart_and_repeats_itself() {
        let base = Instant::now();
        let (p1, p2) = (
            FanoutPlan::new(&spec(100, 200), base),
            FanoutPlan::new(&spec(100, 200), base),
        );
        let first: Vec<usize> = p1.sizes(0).take(50).collect();
        assert_eq!(first, p2.sizes(0).take(50).collect::<Vec<_>>());
        assert_ne!(first, p1.sizes(1).take(50).collect::<Vec<_>>());
        assert_eq!(p1.frames_per_publisher, 10);
        assert_eq!(p1.due(1, 0) - p1.due(0, 0), Duration::from_millis(50));
        assert!(p1.deadline >= p1.due(1, 9) + DRAIN_GRACE);
    }

    #[test]
    fn the_generator_reports_its_own_cpu() {
        let g = Generator::start().unwrap();
        let before = g.cpu_seconds().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let spin = g.spawn(async {
            let until = Instant::now() + Duration::from_millis(300);
            let mut x = 0u64;
            while Instant::now() < until {
                x = x.wrapping_add(1);
            }
            x
        });
        rt.block_on(spin).unwrap();
        let used = g.cpu_seconds().unwrap() - before;
        assert!(used > 0.1, "generator CPU {used}");
    }
}
