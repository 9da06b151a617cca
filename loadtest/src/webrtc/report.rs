//! The result of `loadtest webrtc`: the shared [`PhaseReport`] (offered, delivered, latency, CPU, drops)
//! plus what only this scenario measures (relay CPU per forwarded megabit, the load generator's own share of
//! its CPUs, what the str0m viewers saw).

use std::fmt::Write as _;

use serde::Serialize;

use crate::report::{phase_text, Machine, PhaseReport};

/// Parameters of a `webrtc` run, echoed in the report.
#[derive(Debug, Clone, Serialize)]
pub struct WebrtcParams {
    pub viewers: usize,
    pub fps: u32,
    /// Frame payload sizes are uniform in `[frame_bytes_min, frame_bytes_max]`.
    pub frame_bytes_min: usize,
    pub frame_bytes_max: usize,
    /// Seed of the frame sizes (the same sizes as `loadtest meeting` with this seed).
    pub seed: u64,
    pub duration_s: f64,
    pub keyframe_interval: u32,
    pub relay: String,
    pub pin_relay_cpu: Option<String>,
    pub pin_load_cpu: Option<String>,
    /// The command the relay child ran under (`LOADTEST_RELAY_WRAPPER`), if any.
    pub relay_wrapper: Option<String>,
    /// How the publisher and the viewers entered the meeting.
    pub publisher_join: &'static str,
    pub viewer_join: &'static str,
}

/// What the viewers saw besides the counts in [`PhaseReport`] (all viewers together, measured frames).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ViewerCounters {
    /// Copies of a measured frame that had arrived already (not counted as delivered).
    pub duplicates: u64,
    /// Measured frames that arrived after a later one.
    pub reordered: u64,
    /// Frames whose keyframe flag from str0m disagreed with the payload's first byte.
    pub keyframe_mismatches: u64,
    /// Frames str0m marked not contiguous (RTP packets lost before them, not recovered by NACK).
    pub non_contiguous: u64,
    /// Payloads that were not the tool's (bad magic, length or kind) or beyond the plan.
    pub bad_payloads: u64,
    /// Measured frames delivered as keyframes (offered keyframes x viewers when nothing was lost).
    pub keyframes: u64,
    /// TRACK_MID messages (each viewer gets one when the share is mapped onto its m-line).
    pub track_mids: u64,
    /// Warm-up frames received (before the window).
    pub warmup_frames: u64,
}

/// The warm-up before the window: frames sent until every viewer had one (its track mapped, RTP flowing).
#[derive(Debug, Clone, Default, Serialize)]
pub struct WarmupReport {
    pub frames_sent: u64,
    pub seconds: f64,
    pub viewers_ready: usize,
}

/// The whole result of `loadtest webrtc`.
#[derive(Debug, Clone, Serialize)]
pub struct WebrtcReport {
    pub scenario: &'static str,
    pub params: WebrtcParams,
    pub machine: Machine,
    pub meeting_id: String,
    /// The publisher's frames to the viewers through the relay. `pairs` counts viewers; `cpu_s` is the
    /// relay process's; `generator_cpu_s` is the publisher's thread (its str0m peer: packetising, SRTP).
    pub relay: PhaseReport,
    /// Payload megabits delivered to all viewers together in the window (10^6 bits).
    pub forwarded_mbit: f64,
    /// The relay's CPU milliseconds per forwarded megabit.
    pub relay_cpu_ms_per_forwarded_mbit: Option<f64>,
    /// The relay's CPU seconds over the window's seconds (1.0 = one core busy all the time).
    pub relay_cpu_share_of_one_core: Option<f64>,
    /// This load generator's CPU seconds over (window seconds x CPUs it may use): near 1.0 the load
    /// generator, not the relay, limited the run.
    pub loadgen_cpu_share: Option<f64>,
    /// Keyframe requests (PLI) the publisher got over the whole run (the window's are in `relay`).
    pub publisher_keyframe_requests_total: u64,
    pub warmup: WarmupReport,
    pub viewers: ViewerCounters,
    /// delivered == offered x viewers, frame for frame and byte for byte. If false the numbers do not count.
    pub valid: bool,
    /// Reasons to doubt the numbers even when they count.
    pub notes: Vec<String>,
}

impl WebrtcReport {
    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let p = &self.params;
        let _ = writeln!(
            s,
            "webrtc meeting {}: 1 str0m publisher -> {} str0m viewers, {} fps x {}..={} B (uniform, seed {}) for {} s \
             (keyframe every {} frames), relay {}",
            self.meeting_id,
            p.viewers,
            p.fps,
            p.frame_bytes_min,
            p.frame_bytes_max,
            p.seed,
            p.duration_s,
            p.keyframe_interval,
            p.relay
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
        let _ = writeln!(
            s,
            "warm-up: {} frames in {:.2} s until {} of {} viewers had one",
            self.warmup.frames_sent, self.warmup.seconds, self.warmup.viewers_ready, p.viewers
        );
        phase_text(&mut s, &self.relay, "WebRTC viewers", "");
        let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("n/a".into(), f);
        let _ = writeln!(
            s,
            "  forwarded {:.1} Mbit: relay CPU {} per forwarded Mbit, {} of one core",
            self.forwarded_mbit,
            opt(self.relay_cpu_ms_per_forwarded_mbit, &|v| format!(
                "{v:.3} ms"
            )),
            opt(self.relay_cpu_share_of_one_core, &|v| format!(
                "{:.1}%",
                v * 100.0
            )),
        );
        let _ = writeln!(
            s,
            "  load generator used {} of its {} CPU(s) (publisher thread in it: {})",
            opt(self.loadgen_cpu_share, &|v| format!("{:.1}%", v * 100.0)),
            self.machine.cpus_for_load,
            opt(self.relay.generator_cpu_s, &|v| format!("{v:.3} s")),
        );
        let v = &self.viewers;
        let _ = writeln!(
            s,
            "  viewers   keyframes {}  duplicates {}  reordered {}  not contiguous {}  keyframe-flag mismatches {}  \
             bad payloads {}  TRACK_MID {}",
            v.keyframes,
            v.duplicates,
            v.reordered,
            v.non_contiguous,
            v.keyframe_mismatches,
            v.bad_payloads,
            v.track_mids
        );
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        if self.valid {
            let _ = writeln!(
                s,
                "result: VALID (delivered == offered x {} viewers, every frame and byte)",
                p.viewers
            );
        } else {
            let _ = writeln!(
                s,
                "result: DOES NOT COUNT: delivered != offered x {} viewers (see missing_frames and errors above)",
                p.viewers
            );
        }
        s
    }
}

impl crate::Report for WebrtcReport {
    fn to_text(&self) -> String {
        WebrtcReport::to_text(self)
    }
    fn valid(&self) -> bool {
        self.valid
    }
}
