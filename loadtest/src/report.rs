//! What a run measured, as one serialisable value: printed for people, or as one JSON object with `--json`.
//!
//! Units are in the field names. Byte counts are frame payload bytes (the 24-byte frame headers and QUIC
//! overhead are not counted); "GB" is 10^9 bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latency histograms hold microseconds from 1 µs to this bound (60 s), 3 significant digits.
pub const HIST_MAX_US: u64 = 60_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// How one CPU of the machine spent the window, in percent (from `/proc/stat`; every process counts).
#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuShare {
    pub cpu: String,
    pub user_pct: f64,
    pub system_pct: f64,
    pub softirq_pct: f64,
    /// Time the hypervisor gave to someone else: the machine was smaller than it looked.
    pub steal_pct: f64,
    pub idle_pct: f64,
}

impl CpuShare {
    /// From two `/proc/stat` readings of one CPU (see [`crate::relay_proc::cpu_jiffies`]).
    pub fn between(cpu: &str, a: &[u64; 8], b: &[u64; 8]) -> CpuShare {
        let d: Vec<f64> = a
            .iter()
            .zip(b)
            .map(|(x, y)| y.saturating_sub(*x) as f64)
            .collect();
        let total = d.iter().sum::<f64>().max(1.0);
        let pct = |v: f64| (v * 1000.0 / total).round() / 10.0;
        CpuShare {
            cpu: cpu.to_string(),
            user_pct: pct(d[0] + d[1]),
            system_pct: pct(d[2] + d[5]),
            softirq_pct: pct(d[6]),
            steal_pct: pct(d[7]),
            idle_pct: pct(d[3] + d[4]),
        }
    }
}

/// One measured phase: the load through the relay, or the same load over plain QUIC (`--direct`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseReport {
    /// "relay" or "direct".
    pub phase: &'static str,
    /// Sender→receiver pairs that ran (`pairs`: sessions through the relay; `meeting`: receiving
    /// connections, each getting every frame of the publishers it listens to).
    pub pairs: usize,
    pub offered_frames: u64,
    pub offered_bytes: u64,
    pub delivered_frames: u64,
    pub delivered_bytes: u64,
    /// The one check that makes the numbers count: every frame offered arrived.
    pub delivered_equals_offered: bool,
    /// offered - delivered (negative would mean duplicates).
    pub missing_frames: i64,
    /// Group streams the receiver saw reset (the relay skipped to the next keyframe: `GROUP_SKIPPED`).
    pub keyframe_skips: u64,
    /// Keyframe requests the senders received (each answered with a keyframe on the next frame).
    pub keyframe_requests: u64,
    /// Frames the receiver dropped because their group was older than one already started.
    pub stale_frames: u64,
    /// Frames whose sequence number was not the previous one plus one, at the receiver.
    pub seq_gaps: u64,
    /// Of those, gaps before a delta frame: frames missing inside a group, which a decoder cannot bridge
    /// (a gap before a keyframe only cut the end of the previous group).
    pub mid_group_gaps: u64,
    /// Sender's clock reading at send → receiver finished reading the frame (same process, same clock).
    pub latency: Percentiles,
    /// How late senders were against their schedule; large values mean the load generator, not the relay,
    /// was saturated, and the offered rate was not the asked-for rate.
    pub send_lag: Percentiles,
    /// Wall time from the first scheduled frame to the last receiver finishing.
    pub window_s: f64,
    /// Frames delivered per second over the window.
    pub delivered_fps: f64,
    /// Payload megabits per second delivered over the window.
    pub delivered_mbit_s: f64,
    /// Relay phase: CPU seconds (user+system) of the relay process in the window. Direct phase: CPU seconds
    /// of this load generator process (both QUIC endpoints) in the window.
    pub cpu_s: Option<f64>,
    /// `cpu_s` per 10^9 delivered payload bytes.
    pub cpu_s_per_delivered_gb: Option<f64>,
    /// `meeting`: CPU seconds (user+system) of the generator thread that runs the publishers' QUIC
    /// endpoints (encoding, encryption and sending of every copy it sends) in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator_cpu_s: Option<f64>,
    /// `meeting`: `generator_cpu_s` per 10^9 payload bytes the generator sent (all copies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator_cpu_s_per_sent_gb: Option<f64>,
    /// Relay phase: the relay's peak resident set size (VmHWM), KiB.
    pub relay_peak_rss_kib: Option<u64>,
    /// CPU seconds of this load generator process in the window (in the relay phase: the clients' cost,
    /// comparable to the direct phase's `cpu_s`).
    pub loadgen_cpu_s: f64,
    /// UDP datagrams the kernel dropped on this machine during the window (`/proc/net/snmp` InErrors and
    /// RcvbufErrors, system-wide): non-zero means QUIC saw loss on loopback, usually a full socket buffer.
    pub udp_in_errors: Option<u64>,
    pub udp_rcvbuf_errors: Option<u64>,
    /// Of those, drops at the receiving server socket (relay phase: the relay's QUIC socket; direct phase:
    /// the receivers' shared socket) and at every other socket (the clients').
    pub udp_drops_server_socket: Option<u64>,
    pub udp_drops_other_sockets: Option<u64>,
    /// Every CPU of the machine over the window.
    pub machine_cpu: Vec<CpuShare>,
    /// Per-pair failures (setup, connection loss, deadline), at most a few.
    pub errors: Vec<String>,
    /// Relay counters from its /metrics after the window (relay phase only).
    pub relay_metrics: BTreeMap<String, f64>,
    /// WARN/ERROR lines of the relay's log (relay phase only, at most 20).
    pub relay_log_problems: Vec<String>,
}

/// Parameters of the run, echoed in the report.
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    pub sessions: usize,
    pub fps: u32,
    pub frame_bytes: usize,
    pub duration_s: f64,
    pub group_frames: u32,
    pub relay: String,
    pub pin_relay_cpu: Option<String>,
    pub pin_load_cpu: Option<String>,
}

/// The machine the numbers came from.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs online (`getconf _NPROCESSORS_ONLN`), whatever this process is pinned to.
    pub cpus_online: usize,
    /// CPUs this load generator may run on (after `--pin-load`).
    pub cpus_for_load: usize,
    pub clk_tck: u64,
    /// `/proc/loadavg` when the run started: other work on the machine skews every number.
    pub loadavg_at_start: String,
}

/// The whole result of `loadtest pairs`.
#[derive(Debug, Clone, Serialize)]
pub struct PairsReport {
    pub scenario: &'static str,
    pub params: Params,
    pub machine: Machine,
    pub relay: PhaseReport,
    pub direct: Option<PhaseReport>,
    /// relay.cpu_s_per_delivered_gb / direct.cpu_s_per_delivered_gb: the relay process's CPU per GB
    /// forwarded, over the CPU per GB of one plain QUIC sender plus one receiver (what a direct
    /// connection costs both ends). The relay also decrypts once and encrypts once per byte, so 1.0 means
    /// it costs no more than a QUIC hop; the excess is the relay's own overhead.
    pub relay_cpu_per_gb_over_direct_sender_plus_receiver_cpu_per_gb: Option<f64>,
    /// Every phase delivered exactly what it offered. If false the numbers above do not count.
    pub valid: bool,
    /// Reasons to doubt the numbers even when they count (a saturated load generator, a busy machine).
    pub notes: Vec<String>,
}

impl PairsReport {
    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let p = &self.params;
        let _ = writeln!(
            s,
            "pairs: {} sessions x {} fps x {} B for {} s (keyframe every {} frames), relay {}",
            p.sessions, p.fps, p.frame_bytes, p.duration_s, p.group_frames, p.relay
        );
        let _ = writeln!(
            s,
            "machine: {} CPUs online (load average at start: {}); relay pinned to {}, load to {}",
            self.machine.cpus_online,
            self.machine.loadavg_at_start,
            p.pin_relay_cpu.as_deref().unwrap_or("-"),
            p.pin_load_cpu.as_deref().unwrap_or("-")
        );
        for ph in std::iter::once(&self.relay).chain(self.direct.as_ref()) {
            phase_text(&mut s, ph, "pairs", "load process (sender+receiver)");
        }
        if let Some(r) = self.relay_cpu_per_gb_over_direct_sender_plus_receiver_cpu_per_gb {
            let _ = writeln!(
                s,
                "relay CPU per GB / direct (sender+receiver) CPU per GB: {r:.2}"
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        if self.valid {
            let _ = writeln!(s, "result: VALID (delivered == offered in every phase)");
        } else {
            let _ = writeln!(
                s,
                "result: DOES NOT COUNT: delivered != offered (see missing_frames and errors above)"
            );
        }
        s
    }
}

/// Parameters of a `meeting` run, echoed in the report.
#[derive(Debug, Clone, Serialize)]
pub struct MeetingParams {
    pub publishers: usize,
    pub subscribers: usize,
    pub fps: u32,
    /// Frame payload sizes are uniform in `[frame_bytes_min, frame_bytes_max]` (equal: fixed).
    pub frame_bytes_min: usize,
    pub frame_bytes_max: usize,
    /// Seed of the frame sizes (the same in both phases).
    pub seed: u64,
    pub duration_s: f64,
    pub group_frames: u32,
    pub relay: String,
    pub pin_relay_cpu: Option<String>,
    pub pin_load_cpu: Option<String>,
    /// The command the relay child ran under (`LOADTEST_RELAY_WRAPPER`), if any: then its CPU and memory
    /// are the wrapper's too, and the numbers are for profiling only.
    pub relay_wrapper: Option<String>,
}

/// The whole result of `loadtest meeting`.
#[derive(Debug, Clone, Serialize)]
pub struct MeetingReport {
    pub scenario: &'static str,
    pub params: MeetingParams,
    pub machine: Machine,
    pub meeting_id: String,
    /// Publishers to subscribers through the relay. `pairs` counts receiving connections (subscribers, and
    /// with several publishers the other publishers too); `cpu_s` is the relay process's.
    pub relay: PhaseReport,
    /// The same publishers' frames sent straight to as many receivers over plain QUIC; `cpu_s` is the
    /// generator thread's (the sender alone), so `cpu_s_per_delivered_gb` is the sender's per sent GB.
    pub direct: Option<PhaseReport>,
    /// relay.cpu_s_per_delivered_gb / direct.generator_cpu_s_per_sent_gb: what the relay spends per GB it
    /// delivers over what one QUIC sender spends per GB it sends to as many receivers. The relay also
    /// receives each frame once (1/N of the bytes), so at large N 1.0 means fan-out through the relay
    /// costs what sending the copies does.
    pub relay_cpu_per_delivered_gb_over_direct_sender_cpu_per_sent_gb: Option<f64>,
    /// How the direct sender's CPU was measured.
    pub direct_sender_cpu_method: &'static str,
    /// Every phase delivered exactly what it offered. If false the numbers above do not count.
    pub valid: bool,
    /// Reasons to doubt the numbers even when they count.
    pub notes: Vec<String>,
}

impl MeetingReport {
    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let p = &self.params;
        let sizes = if p.frame_bytes_min == p.frame_bytes_max {
            format!("{} B", p.frame_bytes_min)
        } else {
            format!(
                "{}..={} B (uniform, seed {})",
                p.frame_bytes_min, p.frame_bytes_max, p.seed
            )
        };
        let _ = writeln!(
            s,
            "meeting {}: {} publisher(s) -> {} subscribers, {} fps x {sizes} for {} s (keyframe every {} frames), relay {}",
            self.meeting_id, p.publishers, p.subscribers, p.fps, p.duration_s, p.group_frames, p.relay
        );
        let _ = writeln!(
            s,
            "machine: {} CPUs online (load average at start: {}); relay pinned to {}, load to {}",
            self.machine.cpus_online,
            self.machine.loadavg_at_start,
            p.pin_relay_cpu.as_deref().unwrap_or("-"),
            p.pin_load_cpu.as_deref().unwrap_or("-")
        );
        if let Some(w) = &p.relay_wrapper {
            let _ = writeln!(
                s,
                "relay wrapper: {w} (profiling run: CPU and RSS include the wrapper)"
            );
        }
        phase_text(&mut s, &self.relay, "receiving connections", "");
        if let Some(d) = &self.direct {
            phase_text(
                &mut s,
                d,
                "receiving connections",
                "sender (generator thread)",
            );
        }
        if let Some(r) = self.relay_cpu_per_delivered_gb_over_direct_sender_cpu_per_sent_gb {
            let _ = writeln!(
                s,
                "relay CPU per delivered GB / direct sender CPU per sent GB: {r:.2}"
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        if self.valid {
            let _ = writeln!(s, "result: VALID (delivered == offered in every phase)");
        } else {
            let _ = writeln!(
                s,
                "result: DOES NOT COUNT: delivered != offered (see missing_frames and errors above)"
            );
        }
        s
    }
}

impl Machine {
    /// This machine now: CPUs online and usable, clock ticks, `/proc/loadavg`.
    pub fn probe() -> Machine {
        let cpus_for_load = std::thread::available_parallelism().map_or(0, |n| n.get());
        let cpus_online = std::process::Command::new("getconf")
            .arg("_NPROCESSORS_ONLN")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(cpus_for_load);
        let loadavg_at_start = std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        Machine {
            cpus_online,
            cpus_for_load,
            clk_tck: crate::relay_proc::clock_ticks_per_sec(),
            loadavg_at_start,
        }
    }

    /// The 1-minute load average at start, if it could be read.
    pub fn load1(&self) -> Option<f64> {
        self.loadavg_at_start
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

/// One phase for people: `receivers` names what [`PhaseReport::pairs`] counts, `direct_cpu` whose CPU
/// `cpu_s` is in the direct phase.
pub(crate) fn phase_text(s: &mut String, ph: &PhaseReport, receivers: &str, direct_cpu: &str) {
    let opt = |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.3}{unit}"));
    let _ = writeln!(s, "\n[{}] {} {receivers}", ph.phase, ph.pairs);
    let _ = writeln!(
        s,
        "  offered   {:>10} frames {:>14} B",
        ph.offered_frames, ph.offered_bytes
    );
    let _ = writeln!(
        s,
        "  delivered {:>10} frames {:>14} B  {}",
        ph.delivered_frames,
        ph.delivered_bytes,
        if ph.delivered_equals_offered {
            "(== offered)".to_string()
        } else {
            format!("(!= offered: {} missing)", ph.missing_frames)
        }
    );
    let _ = writeln!(
        s,
        "  rate      {:.0} frames/s, {:.1} Mbit/s over {:.2} s",
        ph.delivered_fps, ph.delivered_mbit_s, ph.window_s
    );
    let l = &ph.latency;
    let _ = writeln!(
        s,
        "  latency   p50 {:.3} ms  p95 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
        l.p50_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms
    );
    let _ = writeln!(
        s,
        "  send lag  p99 {:.3} ms  max {:.3} ms",
        ph.send_lag.p99_ms, ph.send_lag.max_ms
    );
    let _ = writeln!(
        s,
        "  drops     keyframe skips {}  keyframe requests {}  stale frames {}  seq gaps {} ({} mid-group)",
        ph.keyframe_skips, ph.keyframe_requests, ph.stale_frames, ph.seq_gaps, ph.mid_group_gaps
    );
    let who = if ph.phase == "relay" {
        "relay process"
    } else {
        direct_cpu
    };
    let _ = writeln!(
        s,
        "  CPU       {}: {}  per delivered GB: {}   (load generator: {:.3} s)",
        who,
        opt(ph.cpu_s, " s"),
        opt(ph.cpu_s_per_delivered_gb, " s"),
        ph.loadgen_cpu_s
    );
    if let Some(g) = ph.generator_cpu_s {
        let _ = writeln!(
            s,
            "  generator thread (publishers' sending): {g:.3} s  per sent GB: {}",
            opt(ph.generator_cpu_s_per_sent_gb, " s")
        );
    }
    if let (Some(e), Some(b)) = (ph.udp_in_errors, ph.udp_rcvbuf_errors) {
        let _ = writeln!(
            s,
            "  UDP       datagrams dropped by the kernel in the window: {e} (receive buffer full: {b})"
        );
    }
    if let (Some(srv), Some(other)) = (ph.udp_drops_server_socket, ph.udp_drops_other_sockets) {
        let _ = writeln!(
            s,
            "            of which at the server socket: {srv}, at client sockets: {other}"
        );
    }
    for c in &ph.machine_cpu {
        let _ = writeln!(
            s,
            "  {:<9} user {:.1}%  system {:.1}%  softirq {:.1}%  steal {:.1}%  idle {:.1}%",
            c.cpu, c.user_pct, c.system_pct, c.softirq_pct, c.steal_pct, c.idle_pct
        );
    }
    if let Some(rss) = ph.relay_peak_rss_kib {
        let _ = writeln!(s, "  relay peak RSS {:.1} MiB", rss as f64 / 1024.0);
    }
    const BUCKET: &str = "assist_relay_forwarding_latency_seconds_bucket";
    for (k, v) in ph
        .relay_metrics
        .iter()
        .filter(|(k, _)| !k.starts_with(BUCKET))
    {
        let _ = writeln!(s, "  relay metric {k} = {v}");
    }
    let bucket = |le: &str| ph.relay_metrics.get(&format!("{BUCKET}{{le=\"{le}\"}}"));
    if let (Some(all), Some(ms1), Some(ms10)) = (bucket("+Inf"), bucket("0.001"), bucket("0.01")) {
        if *all > 0.0 {
            let _ = writeln!(
                s,
                "  relay-internal forwarding latency (its own histogram): {:.2}% within 1 ms, {:.2}% within 10 ms",
                ms1 * 100.0 / all,
                ms10 * 100.0 / all
            );
        }
    }
    for e in &ph.errors {
        let _ = writeln!(s, "  error: {e}");
    }
    for l in &ph.relay_log_problems {
        let _ = writeln!(s, "  relay log: {l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut h = new_histogram();
        for us in 1..=1000 {
            h.record(us).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((p.p50_ms - 0.5).abs() < 0.01, "{p:?}");
        assert!((p.max_ms - 1.0).abs() < 0.01, "{p:?}");
        assert_eq!(Percentiles::of(&new_histogram()).count, 0);
    }
}
