//! The load engine both phases of `pairs` share: a schedule ([`Plan`]), one sender and one receiver task per
//! pair, and [`run_load`], which runs them, takes the CPU readings at the edges of the measured window, and
//! merges what every pair saw into a [`PhaseReport`].
//!
//! Senders pace frames by the schedule (pairs spread evenly over one frame interval) and record how late
//! they were; receivers stop once they hold every frame their sender reported sending, or at the deadline.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assist_relay::client::MediaSender;
use assist_relay::media::Codec;
use assist_relay::protocol::{FrameHeader, FRAME_HEADER_LEN};
use assist_relay::transport::quic::{GroupEvent, GroupOrder, GroupStreams};
use bytes::Bytes;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quinn::Connection;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::pairs::PairsArgs;
use crate::relay_proc;
use crate::report::{new_histogram, CpuShare, Percentiles, PhaseReport};

/// After the last scheduled frame, receivers get this long to receive everything (the hard deadline).
pub(crate) const DRAIN_GRACE: Duration = Duration::from_secs(10);
/// Gap between the end of setup and the first frame, so every sender starts on schedule.
pub(crate) const START_DELAY: Duration = Duration::from_millis(300);
/// Errors kept per phase in the report.
const MAX_ERRORS: usize = 10;

/// The load every pair carries, fixed before it starts.
pub(crate) struct Plan {
    /// Clock base for the timestamps in frame headers.
    base: Instant,
    /// First frame of pair 0.
    t0: Instant,
    /// Receivers give up at this time.
    deadline: Instant,
    pairs: usize,
    fps: u32,
    frames_per_pair: u64,
    group_frames: u32,
    payload: Bytes,
}

impl Plan {
    pub(crate) fn new(args: &PairsArgs, base: Instant, pairs: usize) -> Plan {
        let t0 = Instant::now() + START_DELAY;
        Plan {
            base,
            t0,
            deadline: t0 + Duration::from_secs_f64(args.duration) + DRAIN_GRACE,
            pairs,
            fps: args.fps,
            frames_per_pair: ((f64::from(args.fps) * args.duration).round() as u64).max(1),
            group_frames: args.group_frames,
            // One buffer shared by every frame: the tool should spend its CPU on QUIC, not on memcpy.
            payload: Bytes::from(vec![0xA5u8; args.frame_bytes]),
        }
    }

    /// When pair `pair` sends frame `k`; pairs are spread evenly over one frame interval.
    pub(crate) fn due(&self, pair: usize, k: u64) -> Instant {
        let stagger = pair as f64 / self.pairs as f64;
        self.t0 + Duration::from_secs_f64((k as f64 + stagger) / f64::from(self.fps))
    }
}

/// Live counters for the progress bar.
#[derive(Default)]
struct Progress {
    offered: AtomicU64,
    delivered: AtomicU64,
}

/// One sender→receiver pair ready to run.
pub(crate) struct Pair {
    pub sender: Connection,
    pub receiver: Connection,
    pub max_frame: usize,
    /// Set when the sender's control stream asked for a keyframe.
    pub keyframe_wanted: Arc<AtomicBool>,
}

#[derive(Default)]
struct SenderResult {
    frames: u64,
    bytes: u64,
    lag: Option<Histogram<u64>>,
    error: Option<String>,
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

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

async fn run_sender(
    conn: Connection,
    plan: Arc<Plan>,
    pair: usize,
    keyframe_wanted: Arc<AtomicBool>,
    expected: watch::Sender<Option<u64>>,
    progress: Arc<Progress>,
) -> SenderResult {
    let mut out = SenderResult::default();
    let mut lag = new_histogram();
    let mut sender = MediaSender::new(conn, 0);
    let mut in_group = 0u32;
    for k in 0..plan.frames_per_pair {
        let due = plan.due(pair, k);
        tokio::time::sleep_until(due.into()).await;
        let now = Instant::now();
        lag.saturating_record(micros(now.saturating_duration_since(due)).max(1));
        // A keyframe request is answered on the next frame, as a live encoder would.
        let asked = keyframe_wanted.swap(false, Ordering::Relaxed);
        let keyframe = asked || in_group == 0 || in_group >= plan.group_frames;
        if keyframe {
            in_group = 0;
        }
        in_group += 1;
        let ts = micros(now.duration_since(plan.base));
        let send = sender.send(Codec::Vp8, keyframe, ts, plan.payload.clone());
        match tokio::time::timeout_at(plan.deadline.into(), send).await {
            Ok(Ok(true)) => {
                out.frames += 1;
                out.bytes += plan.payload.len() as u64;
                progress.offered.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Ok(false)) => {
                out.error = Some("MediaSender skipped a frame (no group open)".into());
                break;
            }
            Ok(Err(e)) => {
                out.error = Some(format!("pair {pair}: send failed: {e}"));
                break;
            }
            Err(_) => {
                out.error = Some(format!("pair {pair}: send blocked past the deadline"));
                break;
            }
        }
    }
    expected.send_replace(Some(out.frames));
    sender.flush().await;
    out.lag = Some(lag);
    out
}

async fn run_receiver(
    conn: Connection,
    max_frame: usize,
    plan: Arc<Plan>,
    pair: usize,
    mut expected: watch::Receiver<Option<u64>>,
    progress: Arc<Progress>,
) -> ReceiverResult {
    let mut out = ReceiverResult::default();
    let mut latency = new_histogram();
    // Live order, as a viewer reads: a lost packet stalls only its own group.
    let mut groups = GroupStreams::new(&conn, max_frame, GroupOrder::Live);
    let mut last_seq: Option<u64> = None;
    let mut sender_gone = false;
    loop {
        if let Some(n) = *expected.borrow() {
            if out.frames >= n {
                break;
            }
        }
        tokio::select! {
            ev = groups.next() => match ev {
                Ok(GroupEvent::Frame(f)) => {
                    let Some(header) = f.wire.get(..FRAME_HEADER_LEN).and_then(|h| h.try_into().ok()) else {
                        out.error = Some(format!("pair {pair}: short frame"));
                        break;
                    };
                    let fh = match FrameHeader::decode(header, max_frame) {
                        Ok(h) => h,
                        Err(e) => {
                            out.error = Some(format!("pair {pair}: bad frame header: {e}"));
                            break;
                        }
                    };
                    let read_at = micros(f.received_at.saturating_duration_since(plan.base));
                    latency.saturating_record(read_at.saturating_sub(fh.capture_ts_us).max(1));
                    if last_seq.is_some_and(|s| fh.seq != s + 1) {
                        out.seq_gaps += 1;
                        // A gap before a keyframe costs a freeze; one before a delta frame, a broken picture.
                        out.mid_group_gaps += u64::from(!fh.keyframe);
                    }
                    last_seq = Some(fh.seq);
                    out.frames += 1;
                    out.bytes += u64::from(fh.payload_len);
                    progress.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Ok(GroupEvent::Ended { reset }) => out.resets += u64::from(reset),
                Ok(GroupEvent::Stale { .. }) => out.stale += 1,
                Ok(GroupEvent::File { .. }) => {}
                Err(e) => {
                    let why = conn.close_reason().map_or_else(|| e.to_string(), |r| r.to_string());
                    out.error = Some(format!("pair {pair}: receiver connection ended: {why}"));
                    break;
                }
            },
            changed = expected.changed(), if !sender_gone => sender_gone = changed.is_err(),
            _ = tokio::time::sleep_until(plan.deadline.into()) => {
                out.error = Some(format!("pair {pair}: not everything arrived by the deadline"));
                break;
            }
        }
    }
    out.latency = Some(latency);
    out
}

/// Runs the plan on every pair and merges the results. `cpu` reads the CPU seconds of the process whose
/// cost is measured; it is called at the start and the end of the window, and so is the load generator's.
/// Returns the report (without CPU figures), the measured process's CPU seconds in the window, and the load
/// generator's. `server_port` is the receiving server's UDP port, whose kernel drops are reported apart.
pub(crate) async fn run_load(
    phase: &'static str,
    pairs: Vec<Pair>,
    plan: Arc<Plan>,
    bar: ProgressBar,
    cpu: &dyn Fn() -> Option<f64>,
    server_port: Option<u16>,
) -> (PhaseReport, Option<f64>, f64) {
    let progress = Arc::new(Progress::default());
    let mut senders = JoinSet::new();
    let mut receivers = JoinSet::new();
    let n = pairs.len();
    for (i, p) in pairs.into_iter().enumerate() {
        let (tx, rx) = watch::channel(None);
        senders.spawn(run_sender(
            p.sender,
            plan.clone(),
            i,
            p.keyframe_wanted,
            tx,
            progress.clone(),
        ));
        receivers.spawn(run_receiver(
            p.receiver,
            p.max_frame,
            plan.clone(),
            i,
            rx,
            progress.clone(),
        ));
    }
    let ticker = {
        let progress = progress.clone();
        spawn_ticker(bar.clone(), plan.t0, ["offered", "delivered"], move || {
            (
                progress.offered.load(Ordering::Relaxed),
                progress.delivered.load(Ordering::Relaxed),
            )
        })
    };
    tokio::time::sleep_until(plan.t0.into()).await;
    let cpu0 = cpu();
    let window = Window::open(plan.t0);
    let mut rep = PhaseReport {
        phase,
        pairs: n,
        ..PhaseReport::default()
    };
    let mut latency = new_histogram();
    let mut errors = Vec::new();
    while let Some(r) = receivers.join_next().await {
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
    let cpu1 = cpu();
    let self_cpu = window.close(&mut rep, server_port);
    ticker.abort();
    bar.finish_and_clear();
    let mut lag = new_histogram();
    while let Some(r) = senders.join_next().await {
        let r = r.unwrap_or_else(|e| SenderResult {
            error: Some(format!("sender task failed: {e}")),
            ..SenderResult::default()
        });
        rep.offered_frames += r.frames;
        rep.offered_bytes += r.bytes;
        if let Some(h) = &r.lag {
            let _ = lag.add(h);
        }
        errors.extend(r.error);
    }
    let planned = plan.frames_per_pair * n as u64;
    if rep.offered_frames != planned {
        errors.insert(
            0,
            format!(
                "offered {} of the {planned} planned frames: the senders fell short",
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
    let measured = cpu0.zip(cpu1).map(|(a, b)| b - a);
    (rep, measured, self_cpu)
}

/// Keeps the first [`MAX_ERRORS`] errors and says how many more there were.
pub(crate) fn cap_errors(mut errors: Vec<String>) -> Vec<String> {
    if errors.len() > MAX_ERRORS {
        let more = errors.len() - MAX_ERRORS;
        errors.truncate(MAX_ERRORS);
        errors.push(format!("... and {more} more"));
    }
    errors
}

/// The machine-side readings at the edges of a measured window (this process's CPU, UDP drops, per-CPU
/// busy time), shared by every scenario; the measured process's own CPU is read by the caller, next to it.
pub(crate) struct Window {
    t0: Instant,
    self_cpu: f64,
    udp: Option<(u64, u64)>,
    drops: BTreeMap<u16, u64>,
    jiffies: BTreeMap<String, [u64; 8]>,
}

impl Window {
    /// Takes the opening readings; the window's wall time counts from `t0` (the first scheduled frame).
    pub(crate) fn open(t0: Instant) -> Window {
        Window {
            t0,
            self_cpu: relay_proc::cpu_seconds("self").unwrap_or(0.0),
            udp: relay_proc::udp_errors(),
            drops: relay_proc::udp_drops_by_port(),
            jiffies: relay_proc::cpu_jiffies(),
        }
    }

    /// Takes the closing readings into `rep` (window length, rates from the delivered counts already in
    /// it, UDP drops with `server_port`'s apart, per-CPU shares, this process's CPU) and returns this
    /// process's CPU seconds in the window.
    pub(crate) fn close(self, rep: &mut PhaseReport, server_port: Option<u16>) -> f64 {
        let window = Instant::now().saturating_duration_since(self.t0);
        let self_cpu = relay_proc::cpu_seconds("self").unwrap_or(0.0) - self.self_cpu;
        if let Some(((e0, b0), (e1, b1))) = self.udp.zip(relay_proc::udp_errors()) {
            rep.udp_in_errors = Some(e1.saturating_sub(e0));
            rep.udp_rcvbuf_errors = Some(b1.saturating_sub(b0));
        }
        let (drops1, jiffies1) = (relay_proc::udp_drops_by_port(), relay_proc::cpu_jiffies());
        let delta =
            |port: &u16, d: &u64| d.saturating_sub(self.drops.get(port).copied().unwrap_or(0));
        if let Some(port) = server_port {
            let server = drops1.get(&port).map_or(0, |d| delta(&port, d));
            let all: u64 = drops1.iter().map(|(p, d)| delta(p, d)).sum();
            rep.udp_drops_server_socket = Some(server);
            rep.udp_drops_other_sockets = Some(all - server);
        }
        rep.machine_cpu = jiffies1
            .iter()
            .filter_map(|(cpu, b)| Some(CpuShare::between(cpu, self.jiffies.get(cpu)?, b)))
            .collect();
        rep.window_s = window.as_secs_f64();
        rep.delivered_fps = rep.delivered_frames as f64 / rep.window_s.max(1e-9);
        rep.delivered_mbit_s = rep.delivered_bytes as f64 * 8.0 / 1e6 / rep.window_s.max(1e-9);
        rep.loadgen_cpu_s = self_cpu;
        self_cpu
    }
}

pub(crate) fn set_cpu(rep: &mut PhaseReport, cpu_s: Option<f64>) {
    rep.cpu_s = cpu_s;
    rep.cpu_s_per_delivered_gb = cpu_s
        .filter(|_| rep.delivered_bytes > 0)
        .map(|c| c / (rep.delivered_bytes as f64 / 1e9));
}

/// The bounds every scenario puts on its run: `--duration` in (0, 3600] s, `--fps` at most 1000 and, where
/// the scenario has one, `--setup-timeout` in (0, 600] s.
pub(crate) fn check_run_bounds(
    duration: f64,
    fps: u32,
    setup_timeout: Option<f64>,
) -> anyhow::Result<()> {
    if !(duration > 0.0 && duration <= 3600.0) {
        anyhow::bail!("--duration must be in (0, 3600] seconds");
    }
    if setup_timeout.is_some_and(|t| !(t > 0.0 && t <= 600.0)) {
        anyhow::bail!("--setup-timeout must be in (0, 600] seconds");
    }
    if fps > 1000 {
        anyhow::bail!("--fps above 1000 is beyond the timer resolution this tool paces with");
    }
    Ok(())
}

/// Runs `fut` under the setup bound `limit`, naming the step (`what`) in its error.
pub(crate) async fn step<T>(
    limit: Duration,
    what: impl FnOnce() -> String,
    fut: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    use anyhow::Context;
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.with_context(what),
        Err(_) => Err(anyhow::anyhow!("{} took longer than {limit:?}", what())),
    }
}

/// Moves `bar` every 200 ms from `t0` on, its message naming two counters (`names`, read by `counts`),
/// until the returned task is aborted.
pub(crate) fn spawn_ticker(
    bar: ProgressBar,
    t0: Instant,
    names: [&'static str; 2],
    counts: impl Fn() -> (u64, u64) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tick.tick().await;
            let elapsed = Instant::now().saturating_duration_since(t0);
            bar.set_position(elapsed.as_millis() as u64);
            let (a, b) = counts();
            bar.set_message(format!("{} {a} {} {b}", names[0], names[1]));
        }
    })
}

/// A progress bar over `duration_s` of sending on stderr (hidden with `--json`).
pub(crate) fn progress_bar(json: bool, duration_s: f64, phase: &str) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let total_ms = (duration_s * 1000.0) as u64;
    // The stderr target hides itself when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(Some(total_ms), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix:>6} [{bar:30}] {elapsed:>4} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(phase.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairs::tests::Cli;
    use clap::Parser;

    #[test]
    fn schedule_spreads_pairs_over_one_interval() {
        let args = Cli::parse_from(["x", "--sessions", "4", "--fps", "10", "--duration", "1"]).args;
        let plan = Plan::new(&args, Instant::now(), 4);
        assert_eq!(plan.frames_per_pair, 10);
        assert_eq!(plan.due(0, 1) - plan.due(0, 0), Duration::from_millis(100));
        assert_eq!(plan.due(2, 0) - plan.due(0, 0), Duration::from_millis(50));
        assert!(plan.deadline >= plan.due(3, 9) + DRAIN_GRACE);
    }
}
