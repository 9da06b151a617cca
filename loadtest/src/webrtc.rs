//! Scenario `webrtc`: one browser-style publisher sharing its screen with N browser-style viewers through a
//! meeting, every peer a str0m [`RtcClient`] speaking docs/PROTOCOL.md section 13 (SDP offer POSTed to
//! `/api/v1/rtc`, RTP on the relay's one WebRTC port, control messages on the `control` data channel).
//!
//! The relay is a child process (`assist-relay serve`, so its CPU and memory are its own); its first
//! administrator's first login is done by the tool ([`crate::api::bootstrap_admin`]) and schedules the
//! meeting (`POST /api/v1/meetings`). The publisher enters with the host's join token (`as=meeting`, one
//! `sendonly` m-line) and runs on the generator thread ([`Generator`]), so its str0m peer's CPU is read
//! apart; the viewers enter with the meeting code (`as=guest`, one `recvonly` m-line), at most
//! `--setup-concurrency` at a time, on the main runtime.
//!
//! Frames are synthetic and VP8-shaped ([`payload`]): byte 0 tells keyframe from delta frame as VP8's own
//! header does, and the next bytes carry a magic, the sequence number, the send time (ns since one
//! `Instant`: one process, one clock) and the length. Sizes are uniform in `[--frame-bytes,
//! --frame-bytes-max]` from `--seed` (the same sizes `loadtest meeting` sends with that seed), a keyframe
//! every `--keyframe-interval` frames and whenever the relay asks (PLI).
//!
//! Before the window, the publisher sends warm-up frames until every viewer has received one (its m-line is
//! mapped, RTP flows), bounded by `--setup-timeout`. The window runs from the first measured frame (a
//! keyframe) to the last viewer holding every measured frame; a viewer's latency is its receive time minus
//! the embedded send time. The run counts only if delivered == offered x N (distinct frames, and bytes).
//! Every wait is bounded: setup steps by `--setup-timeout`, the load by `--duration` + [`crate::load::DRAIN_GRACE`].

mod payload;
mod peers;
mod report;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use assist_relay::client::webrtc::{RtcClient, RtcOptions};
use assist_relay::protocol::{ClientMsg, ServerMsg};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use crate::api::api_call;
use crate::fanout::{FanoutPlan, Generator, PlanSpec};
use crate::load::{cap_errors, progress_bar, set_cpu, spawn_ticker, step, Window};
use crate::relay_proc::{self, RelayProc};
use crate::report::{new_histogram, Machine, Percentiles, PhaseReport};
use peers::{drain_publisher, publish, run_viewer, warm_up, Control, PublisherResult, Shared};
pub use report::WebrtcReport;
use report::{ViewerCounters, WarmupReport, WebrtcParams};

/// Viewers one run may have: each is a UDP socket and a str0m peer in this process, and the relay's
/// `webrtc.max_peers` (2000 by default) must admit them and the publisher.
const MAX_VIEWERS: usize = 1_500;
/// The relay's default `limits.max_frame_bytes` (4 MiB): larger frames it drops.
const MAX_FRAME_BYTES: usize = 4 << 20;
/// After the host ends the meeting, how long the relay gets to close the peers before they are dropped.
const TEARDOWN_LINGER: Duration = Duration::from_millis(500);
/// Errors kept per viewer kind in the report.
const MAX_ERRORS: usize = 10;

/// Flags of `loadtest webrtc`.
#[derive(Debug, Clone, clap::Args)]
pub struct WebrtcArgs {
    /// WebRTC viewers (guests who joined with the meeting code), each receiving every frame.
    #[arg(long, default_value_t = 10)]
    pub viewers: usize,
    /// Frames per second the publisher sends.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Smallest frame payload in bytes (at least 25: the tool's header).
    #[arg(long, default_value_t = 4_000)]
    pub frame_bytes: usize,
    /// Largest frame payload in bytes: sizes are uniform in [--frame-bytes, this].
    #[arg(long, default_value_t = 20_000)]
    pub frame_bytes_max: usize,
    /// Seed of the frame sizes (the same sizes as `loadtest meeting --seed`).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds of sending (fractions allowed).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// A keyframe every this many frames.
    #[arg(long, default_value_t = 30)]
    pub keyframe_interval: u32,
    /// Print one JSON object instead of the text report (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// One more `serve` flag for the relay child, e.g. --relay-arg=--webrtc-packet-queue=1024 (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    pub relay_arg: Vec<String>,
    /// Run the relay child on this CPU (taskset -c); needs --pin-load.
    #[arg(long, requires = "pin_load")]
    pub pin_relay: Option<String>,
    /// Run this load generator on this CPU (taskset -p, before any worker thread starts).
    #[arg(long)]
    pub pin_load: Option<String>,
    /// Viewers joining at once.
    #[arg(long, default_value_t = 16)]
    pub setup_concurrency: usize,
    /// Bound on each setup step (an API call, one join, the warm-up), in seconds.
    #[arg(long, default_value_t = 15.0)]
    pub setup_timeout: f64,
}

impl WebrtcArgs {
    fn check(&self) -> anyhow::Result<()> {
        if self.viewers == 0 || self.fps == 0 || self.keyframe_interval == 0 {
            bail!("--viewers, --fps and --keyframe-interval must be at least 1");
        }
        if self.viewers > MAX_VIEWERS {
            bail!("at most {MAX_VIEWERS} viewers");
        }
        if self.frame_bytes < payload::HEADER_LEN {
            bail!(
                "--frame-bytes must be at least {} (the tool's frame header)",
                payload::HEADER_LEN
            );
        }
        if self.frame_bytes_max < self.frame_bytes {
            bail!("--frame-bytes-max must be at least --frame-bytes");
        }
        if self.frame_bytes_max > MAX_FRAME_BYTES {
            bail!("--frame-bytes-max above the relay's max_frame_bytes ({MAX_FRAME_BYTES})");
        }
        crate::load::check_run_bounds(self.duration, self.fps, Some(self.setup_timeout))?;
        if self.pin_load.is_some() && self.pin_relay.is_none() {
            bail!("--pin-load needs --pin-relay: the relay child would inherit the load's CPU");
        }
        Ok(())
    }

    fn plan_spec(&self) -> PlanSpec {
        PlanSpec {
            publishers: 1,
            fps: self.fps,
            duration_s: self.duration,
            group_frames: self.keyframe_interval,
            min_bytes: self.frame_bytes,
            max_bytes: self.frame_bytes_max,
            seed: self.seed,
        }
    }

    /// Measured frames the publisher sends (as [`FanoutPlan`] counts them).
    fn planned_frames(&self) -> u64 {
        ((f64::from(self.fps) * self.duration).round() as u64).max(1)
    }

    fn setup_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.setup_timeout)
    }
}

/// `POST /api/v1/meetings`, the fields used here.
#[derive(serde::Deserialize)]
struct CreatedMeeting {
    meeting_id: String,
    code: String,
    host_token: String,
}

/// The relay child and its administrator's token.
struct Child {
    proc: RelayProc,
    token: String,
}

/// Where the relay under test is, and how to measure it.
struct Target {
    api: String,
    /// Process id for CPU and memory (a child relay; `None` in-process).
    pid: Option<String>,
    metrics: Option<String>,
    /// The relay's WebRTC UDP port, whose kernel drops are reported apart.
    webrtc_port: Option<u16>,
}

/// What the load needs to enter the meeting.
struct MeetingAccess {
    meeting_id: String,
    /// The meeting code, for the viewers.
    code: String,
    /// The host's join token, for the publisher.
    host_token: String,
}

async fn start_relay(args: &WebrtcArgs) -> anyhow::Result<Child> {
    let (proc, token) = relay_proc::spawn_meeting_relay(
        args.pin_relay.clone(),
        &args.relay_arg,
        args.setup_timeout(),
    )
    .await?;
    Ok(Child { proc, token })
}

/// Schedules the meeting through the HTTP API with the administrator's token.
async fn create_meeting(args: &WebrtcArgs, child: &Child) -> anyhow::Result<MeetingAccess> {
    let limit = args.setup_timeout();
    let created: CreatedMeeting = step(
        limit,
        || "creating the meeting (POST /api/v1/meetings)".into(),
        api_call(
            &child.proc.api,
            Some(&child.token),
            reqwest::Method::POST,
            "/api/v1/meetings",
            Some(&serde_json::json!({"topic": "load webrtc"})),
            limit,
        ),
    )
    .await?;
    Ok(MeetingAccess {
        meeting_id: created.meeting_id,
        code: created.code,
        host_token: created.host_token,
    })
}

/// What the measured part of a run produced.
struct Measured {
    meeting_id: String,
    rep: PhaseReport,
    warmup: WarmupReport,
    viewers: ViewerCounters,
    keyframe_requests_total: u64,
}

/// Enters everyone into the meeting, warms up, runs the window, and ends the meeting.
async fn session(
    args: &WebrtcArgs,
    base: Instant,
    target: &Target,
    created: MeetingAccess,
    generator: &Generator,
) -> anyhow::Result<Measured> {
    let limit = args.setup_timeout();
    let api = target.api.clone();

    // The publisher, on the generator: its str0m task is spawned (and driven) there.
    let shared = Arc::new(Shared {
        base,
        ready: AtomicUsize::new(0),
        produced: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        keyframe_requests: AtomicU64::new(0),
    });
    let (api2, token) = (api.clone(), created.host_token.clone());
    let joining = generator.spawn(async move {
        let opts = RtcOptions {
            send_tracks: 1,
            ..RtcOptions::default()
        };
        let mut c = RtcClient::connect(&api2, "as=meeting&name=publisher", &token, &opts)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let max_frame = c
            .wait_msg(limit, |m| match m {
                ServerMsg::MeetingWelcome(w) => Some(w.max_frame_bytes),
                _ => None,
            })
            .await
            .context("no MEETING_WELCOME on the control channel")?;
        anyhow::Ok((c, max_frame))
    });
    let (mut publisher, max_frame) = step(limit, || "the publisher's join".into(), async {
        joining.await?
    })
    .await?;
    if args.frame_bytes_max > max_frame as usize {
        bail!(
            "frames of {} B exceed the relay's max_frame_bytes {max_frame}",
            args.frame_bytes_max
        );
    }
    let wanted = Arc::new(AtomicBool::new(false));
    let pub_events = std::mem::replace(&mut publisher.events, mpsc::channel(1).1);
    let drain = generator.spawn(drain_publisher(pub_events, wanted.clone(), shared.clone()));

    // The viewers: each joins (reporting it), then reads until done. They wait for the window's deadline
    // from `ctl`; until then the join and warm-up bounds apply.
    let waves = args.viewers.div_ceil(args.setup_concurrency.max(1)) as u32;
    let setup_bound = limit * (waves + 2);
    let (ctl_tx, ctl_rx) = watch::channel(Control {
        deadline: Instant::now() + setup_bound + limit,
        expected: None,
    });
    let permits = Arc::new(Semaphore::new(args.setup_concurrency.max(1)));
    let (joined_tx, mut joined_rx) = mpsc::channel(args.viewers);
    let planned = args.planned_frames();
    let mut viewers = JoinSet::new();
    for i in 0..args.viewers {
        viewers.spawn(run_viewer(
            i,
            api.clone(),
            created.code.clone(),
            limit,
            permits.clone(),
            joined_tx.clone(),
            shared.clone(),
            ctl_rx.clone(),
            planned,
        ));
    }
    drop((joined_tx, ctl_rx));
    let mut failed = Vec::new();
    let join_deadline = tokio::time::Instant::now() + setup_bound;
    for _ in 0..args.viewers {
        match tokio::time::timeout_at(join_deadline, joined_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => failed.push(e),
            Ok(None) => break,
            Err(_) => {
                failed.push(format!("not every viewer joined within {setup_bound:?}"));
                break;
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} viewers could not join; first: {}",
            failed.len(),
            args.viewers,
            failed[0]
        );
    }

    // Warm-up until every viewer has a frame.
    let (publisher, warmup) = generator
        .spawn(warm_up(
            publisher,
            shared.clone(),
            args.clone(),
            wanted.clone(),
        ))
        .await?;
    if warmup.viewers_ready < args.viewers {
        bail!(
            "only {} of {} viewers received a warm-up frame within {limit:?} ({} frames sent)",
            warmup.viewers_ready,
            args.viewers,
            warmup.frames_sent
        );
    }

    // The window.
    let plan = Arc::new(FanoutPlan::new(&args.plan_spec(), base));
    debug_assert_eq!(plan.frames_per_publisher, planned);
    ctl_tx.send_modify(|c| c.deadline = plan.deadline);
    let sending = generator.spawn(publish(
        publisher,
        plan.clone(),
        args.keyframe_interval,
        wanted,
        ctl_tx,
        shared.clone(),
    ));
    let bar = progress_bar(args.json, args.duration, "webrtc");
    let ticker = {
        let shared = shared.clone();
        spawn_ticker(
            bar.clone(),
            plan.t0,
            ["frames produced", "received"],
            move || {
                (
                    shared.produced.load(Ordering::Relaxed),
                    shared.delivered.load(Ordering::Relaxed),
                )
            },
        )
    };
    tokio::time::sleep_until(plan.t0.into()).await;
    let pid = target.pid.clone();
    let relay_cpu = || pid.as_deref().and_then(|p| relay_proc::cpu_seconds(p).ok());
    let (cpu0, gen0) = (relay_cpu(), generator.cpu_seconds());
    let requests0 = shared.keyframe_requests.load(Ordering::Relaxed);
    let window = Window::open(plan.t0);
    let mut outcomes = Vec::with_capacity(args.viewers);
    let mut errors = Vec::new();
    while let Some(r) = viewers.join_next().await {
        match r {
            Ok(o) => outcomes.push(o),
            Err(e) => errors.push(format!("viewer task failed: {e}")),
        }
    }
    let (cpu1, gen1) = (relay_cpu(), generator.cpu_seconds());
    let requests1 = shared.keyframe_requests.load(Ordering::Relaxed);
    let mut rep = PhaseReport {
        phase: "relay",
        pairs: args.viewers,
        ..PhaseReport::default()
    };
    let mut latency = new_histogram();
    let mut counters = ViewerCounters::default();
    let mut bad = Vec::new();
    for o in &outcomes {
        let t = &o.tally;
        rep.delivered_frames += t.frames;
        rep.delivered_bytes += t.bytes;
        rep.seq_gaps += t.seq_gaps;
        rep.mid_group_gaps += t.mid_group_gaps;
        let _ = latency.add(&t.latency);
        counters.duplicates += t.duplicates;
        counters.reordered += t.reordered;
        counters.keyframe_mismatches += t.keyframe_mismatches;
        counters.non_contiguous += t.non_contiguous;
        counters.keyframes += t.keyframes;
        counters.bad_payloads += o.bad_payloads;
        counters.track_mids += o.track_mids;
        counters.warmup_frames += o.warmup_frames;
        errors.extend(o.error.clone());
        bad.extend(o.first_bad.clone());
    }
    window.close(&mut rep, target.webrtc_port);
    ticker.abort();
    bar.finish_and_clear();
    // Bounded: the publisher gives up at the plan's deadline.
    let limit_pub = plan.deadline + Duration::from_secs(5);
    let (publisher, sent) = match tokio::time::timeout_at(limit_pub.into(), sending).await {
        Ok(Ok((c, r))) => (Some(c), r),
        Ok(Err(e)) => (
            None,
            PublisherResult {
                errors: vec![format!("publisher task failed: {e}")],
                ..PublisherResult::default()
            },
        ),
        Err(_) => (
            None,
            PublisherResult {
                errors: vec!["the publisher did not finish".into()],
                ..PublisherResult::default()
            },
        ),
    };
    let n = args.viewers as u64;
    rep.offered_frames = sent.frames * n;
    rep.offered_bytes = sent.bytes * n;
    rep.missing_frames = rep.offered_frames as i64 - rep.delivered_frames as i64;
    rep.delivered_equals_offered = rep.missing_frames == 0
        && sent.frames == planned
        && rep.delivered_bytes == rep.offered_bytes
        && counters.bad_payloads == 0;
    if sent.frames != planned {
        errors.insert(
            0,
            format!(
                "the publisher sent {} of {planned} planned frames",
                sent.frames
            ),
        );
    }
    errors.extend(sent.errors);
    bad.truncate(MAX_ERRORS);
    errors.extend(bad);
    rep.errors = cap_errors(errors);
    rep.latency = Percentiles::of(&latency);
    rep.send_lag = sent.lag.as_ref().map(Percentiles::of).unwrap_or_default();
    rep.keyframe_requests = requests1 - requests0;
    set_cpu(&mut rep, cpu0.zip(cpu1).map(|(a, b)| b - a));
    rep.generator_cpu_s = gen0.zip(gen1).map(|(a, b)| b - a);
    rep.generator_cpu_s_per_sent_gb = rep
        .generator_cpu_s
        .filter(|_| sent.bytes > 0)
        .map(|c| c / (sent.bytes as f64 / 1e9));
    rep.relay_peak_rss_kib = target.pid.as_deref().and_then(relay_proc::peak_rss_kib);
    let scraped = match &target.metrics {
        None => Ok(Vec::new()),
        Some(url) => {
            relay_proc::scrape_metrics(
                url,
                &[
                    "assist_relay_frames_forwarded_total",
                    "assist_relay_frames_dropped_total",
                    "assist_relay_keyframe_requests_total",
                    "assist_relay_forwarding_latency_seconds",
                    "assist_relay_webrtc_rtp_packets_total",
                    "assist_relay_webrtc_rtp_bytes_total",
                    "assist_relay_webrtc_nacks_total",
                    "assist_relay_webrtc_plis_total",
                    "assist_relay_webrtc_dropped_datagrams_total",
                    "assist_relay_webrtc_failures_total",
                ],
            )
            .await
        }
    };
    match scraped {
        Ok(m) => rep.relay_metrics = m.into_iter().collect::<BTreeMap<_, _>>(),
        Err(e) => rep
            .errors
            .push(format!("scraping the relay's metrics: {e}")),
    }

    // Teardown, outside the window: the host ends the meeting for everyone, then every peer is dropped.
    if let Some(host) = &publisher {
        host.send(&ClientMsg::EndSession).await;
        tokio::time::sleep(TEARDOWN_LINGER).await;
    }
    drop(publisher);
    drop(outcomes);
    drain.abort();
    Ok(Measured {
        meeting_id: created.meeting_id,
        rep,
        warmup,
        viewers: counters,
        keyframe_requests_total: shared.keyframe_requests.load(Ordering::Relaxed),
    })
}

/// Runs the scenario and returns the report; the caller prints it.
pub async fn run(args: WebrtcArgs) -> anyhow::Result<WebrtcReport> {
    args.check()?;
    let machine = Machine::probe();
    let base = Instant::now();
    let generator = Generator::start()?;
    let child = start_relay(&args).await?;
    let label = format!("child pid {} at {}", child.proc.pid, child.proc.api);
    let target = Target {
        api: child.proc.api.clone(),
        pid: Some(child.proc.pid.clone()),
        metrics: Some(child.proc.metrics.clone()),
        webrtc_port: Some(child.proc.webrtc.port()),
    };
    let measured = async {
        let access = create_meeting(&args, &child).await?;
        session(&args, base, &target, access, &generator).await
    };
    let mut m = match measured.await {
        Ok(m) => m,
        Err(e) => {
            return Err(e.context(format!("relay log tail:\n{}", child.proc.log_tail(15))));
        }
    };
    drop(generator);
    let mut problems = child.proc.log_problems();
    problems.truncate(20);
    m.rep.relay_log_problems = problems;
    if let Err(e) = child.proc.stop().await {
        m.rep.errors.push(e.to_string());
    }
    let rep = m.rep;
    let forwarded_mbit = rep.delivered_bytes as f64 * 8.0 / 1e6;
    let loadgen_cpu_share =
        payload::cpu_share(rep.loadgen_cpu_s, rep.window_s, machine.cpus_for_load);
    let relay_share = rep
        .cpu_s
        .and_then(|c| payload::cpu_share(c, rep.window_s, 1));
    let valid = rep.delivered_equals_offered;
    let notes = notes(&args, &machine, &rep, loadgen_cpu_share);
    Ok(WebrtcReport {
        scenario: "webrtc",
        params: WebrtcParams {
            viewers: args.viewers,
            fps: args.fps,
            frame_bytes_min: args.frame_bytes,
            frame_bytes_max: args.frame_bytes_max,
            seed: args.seed,
            duration_s: args.duration,
            keyframe_interval: args.keyframe_interval,
            relay: label,
            pin_relay_cpu: args.pin_relay.clone(),
            pin_load_cpu: args.pin_load.clone(),
            relay_wrapper: relay_proc::wrapper(),
            publisher_join: "as=meeting with the host's join token; 1 sendonly video m-line (VP8, H.264 offered)",
            viewer_join: "as=guest with the meeting code; 1 recvonly video m-line (VP8, H.264 offered)",
        },
        machine,
        meeting_id: m.meeting_id,
        relay_cpu_ms_per_forwarded_mbit: rep
            .cpu_s
            .and_then(|c| payload::cpu_ms_per_mbit(c, rep.delivered_bytes)),
        forwarded_mbit,
        relay_cpu_share_of_one_core: relay_share,
        loadgen_cpu_share,
        publisher_keyframe_requests_total: m.keyframe_requests_total,
        warmup: m.warmup,
        viewers: m.viewers,
        relay: rep,
        valid,
        notes,
    })
}

/// Reasons to doubt the numbers even when they count.
fn notes(
    args: &WebrtcArgs,
    machine: &Machine,
    rep: &PhaseReport,
    loadgen_share: Option<f64>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let interval_ms = 1000.0 / f64::from(args.fps);
    if rep.send_lag.p99_ms > interval_ms {
        notes.push(format!(
            "send lag p99 {:.1} ms exceeds the frame interval ({interval_ms:.1} ms): the publisher fell behind, \
             so latency includes the load generator's own queueing",
            rep.send_lag.p99_ms
        ));
    }
    if let Some(s) = loadgen_share.filter(|s| *s > 0.8) {
        notes.push(format!(
            "the load generator used {:.0}% of its {} CPU(s): its {} str0m viewers (one task each, SRTP and \
             depacketising per viewer) were near saturation, so latency (and at worst delivery) reflects the \
             load generator, not only the relay",
            s * 100.0,
            machine.cpus_for_load,
            args.viewers
        ));
    }
    if rep.udp_in_errors.unwrap_or(0) > 0 {
        notes.push(format!(
            "the kernel dropped {} UDP datagrams in the window ({} at the relay's WebRTC socket): str0m \
             recovers RTP losses by NACK, at a latency cost",
            rep.udp_in_errors.unwrap_or(0),
            rep.udp_drops_server_socket
                .map_or("?".to_string(), |d| d.to_string())
        ));
    }
    if let Some(load1) = machine.load1().filter(|l| *l > 0.5) {
        notes.push(format!(
            "the 1-minute load average was {load1} on {} CPUs before the run: other processes (or a run \
             just before) competed for the CPUs",
            machine.cpus_online
        ));
    }
    if relay_proc::wrapper().is_some() {
        notes.push(format!(
            "the relay ran under {}={:?}: its CPU, memory and latency are the wrapper's, for profiling only",
            relay_proc::WRAPPER_ENV,
            relay_proc::wrapper().unwrap_or_default()
        ));
    }
    notes.push(
        "relay metrics count the warm-up frames too; the offered/delivered counts are the window's only"
            .into(),
    );
    notes
}
