//! Scenario `meeting`: one meeting, P publishers (the host, then presenters) sharing their screens with N
//! subscribers (guests who joined with the meeting code) through the relay; then, with `--direct`, the
//! same publisher sending the same frames straight to N receivers over plain QUIC, so the relay's cost is a
//! ratio against the cost of sending the copies.
//!
//! The meeting is made through the relay's HTTP API by a staff login (`POST /api/v1/meetings`, and
//! `POST /api/v1/meetings/{id}/join-token` for every publisher after the first): with a relay child, its
//! first administrator, whose first login the tool completes ([`crate::api::bootstrap_admin`]). Publishers join with
//! tokens (`Hello::Meeting`) on the generator thread ([`crate::fanout::Generator`]); subscribers join with
//! the code (`Hello::MeetingCode`), at most `--setup-concurrency` at a time, each step bounded by
//! `--setup-timeout`. Everyone reads its control stream to the end, so no control queue fills; a
//! publisher answers a keyframe request with a keyframe on its next frame.
//!
//! Every participant but its publisher receives each frame: offered = frames produced × receivers
//! (subscribers, plus the other publishers). The run counts only if delivered == offered. Frame sizes are
//! fixed (`--frame-bytes`) or uniform in `[--frame-bytes, --frame-bytes-max]` from `--seed`.
//!
//! The measured window, its CPU readings and the wait bounds are [`crate::fanout`]'s; setup and teardown
//! are outside the window.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use assist_relay::client::{self, join, ControlReceiver, ControlSender, Session};
use assist_relay::config::Config;
use assist_relay::core::TRACKS_PER_PARTICIPANT;
use assist_relay::protocol::{ClientMsg, Hello, ServerMsg};
use assist_relay::transport::quic;
use assist_relay::transport::tls::{self, ServerTrust};
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::api::{api_call, login};
use crate::fanout::{run_fanout, FanoutPlan, Generator, PhaseSetup, PlanSpec, Publisher, Receiver};
use crate::load::{progress_bar, set_cpu, step};
use crate::relay_proc;
use crate::report::{Machine, MeetingParams, MeetingReport, PhaseReport};

/// Teardown waits at most this long for the relay to close the meeting.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Receiving connections (and so QUIC connections and UDP sockets) one run may open.
const MAX_RECEIVERS: usize = 5_000;
/// How the direct sender's CPU is measured (echoed in the report).
const SENDER_CPU_METHOD: &str = "CPU time (utime+stime) of the generator thread, from \
    /proc/self/task/<tid>/stat at both edges of the window: the sender's endpoint and connections are \
    created on that thread's own current-thread tokio runtime, so quinn packetises, encrypts and sends \
    every copy there; the receivers run on the other runtime";

/// Flags of `loadtest meeting`.
#[derive(Debug, Clone, clap::Args)]
pub struct MeetingArgs {
    /// Publishers sharing a screen (the first is the meeting's host, the others presenters).
    #[arg(long, default_value_t = 1)]
    pub publishers: usize,
    /// Subscribers (guests who joined with the meeting code) receiving every publisher.
    #[arg(long, default_value_t = 10)]
    pub subscribers: usize,
    /// Frames per second each publisher sends.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Payload bytes per frame (the smallest, with --frame-bytes-max).
    #[arg(long, default_value_t = 20_000)]
    pub frame_bytes: usize,
    /// Frame sizes uniform in [--frame-bytes, this] instead of fixed.
    #[arg(long)]
    pub frame_bytes_max: Option<usize>,
    /// Seed of the frame sizes (the relay and direct phases send the same sizes).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds of sending (fractions allowed).
    #[arg(long, default_value_t = 2.0)]
    pub duration: f64,
    /// A keyframe (and a new group stream) every this many frames.
    #[arg(long, default_value_t = 30)]
    pub group_frames: u32,
    /// Print one JSON object instead of the text report (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Also send the same frames straight to as many receivers over plain QUIC (one publisher only), and
    /// report the relay's CPU per delivered GB over the direct sender's CPU per sent GB.
    #[arg(long)]
    pub direct: bool,
    /// Test a running relay at HOST:PORT instead of starting one (then --api, --login, --password and
    /// --cert-sha256 are required, and its limits must admit every connection from this address).
    #[arg(long, requires_all = ["api", "login", "password", "cert_sha256"])]
    pub relay_addr: Option<String>,
    /// Base URL of the running relay's HTTP API (with --relay-addr).
    #[arg(long)]
    pub api: Option<String>,
    /// Employee id or e-mail of a technician (or higher) of the running relay whose first-login setup is
    /// done; meetings are scheduled by staff (with --relay-addr).
    #[arg(long)]
    pub login: Option<String>,
    /// That account's password (with --relay-addr).
    #[arg(long, env = "LOADTEST_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Certificate SHA-256 of the running relay (with --relay-addr).
    #[arg(long)]
    pub cert_sha256: Option<String>,
    /// Process id of the running relay, to measure its CPU and memory (with --relay-addr).
    #[arg(long, requires = "relay_addr")]
    pub relay_pid: Option<u32>,
    /// Metrics URL of the running relay, to scrape its counters (with --relay-addr).
    #[arg(long, requires = "relay_addr")]
    pub relay_metrics: Option<String>,
    /// One more `serve` flag for the relay child, e.g. --relay-arg=--control-queue=4096 (repeatable).
    #[arg(long, allow_hyphen_values = true, conflicts_with = "relay_addr")]
    pub relay_arg: Vec<String>,
    /// Run the relay child on this CPU (taskset -c); needs --pin-load.
    #[arg(long, requires = "pin_load", conflicts_with = "relay_addr")]
    pub pin_relay: Option<String>,
    /// Run this load generator on this CPU (taskset -p, before any worker thread starts).
    #[arg(long)]
    pub pin_load: Option<String>,
    /// Participants joining at once.
    #[arg(long, default_value_t = 32)]
    pub setup_concurrency: usize,
    /// Bound on each setup step (an API call, one join, one direct handshake), in seconds.
    #[arg(long, default_value_t = 15.0)]
    pub setup_timeout: f64,
}

impl MeetingArgs {
    fn check(&self) -> anyhow::Result<()> {
        if self.publishers == 0
            || self.subscribers == 0
            || self.fps == 0
            || self.group_frames == 0
            || self.frame_bytes == 0
        {
            bail!("--publishers, --subscribers, --fps, --group-frames and --frame-bytes must be at least 1");
        }
        if self.frame_bytes_max.is_some_and(|m| m < self.frame_bytes) {
            bail!("--frame-bytes-max must be at least --frame-bytes");
        }
        let receivers = self.subscribers + self.publishers - 1;
        if receivers > MAX_RECEIVERS {
            bail!("at most {MAX_RECEIVERS} receiving connections (subscribers + publishers - 1)");
        }
        crate::load::check_run_bounds(self.duration, self.fps, Some(self.setup_timeout))?;
        if self.direct && self.publishers != 1 {
            bail!("--direct compares one publisher's fan-out: use it with --publishers 1");
        }
        if self.pin_load.is_some() && self.pin_relay.is_none() && self.relay_addr.is_none() {
            bail!("--pin-load needs --pin-relay: the relay child would inherit the load's CPU");
        }
        Ok(())
    }

    fn max_bytes(&self) -> usize {
        self.frame_bytes_max.unwrap_or(self.frame_bytes)
    }

    fn plan_spec(&self) -> PlanSpec {
        PlanSpec {
            publishers: self.publishers,
            fps: self.fps,
            duration_s: self.duration,
            group_frames: self.group_frames,
            min_bytes: self.frame_bytes,
            max_bytes: self.max_bytes(),
            seed: self.seed,
        }
    }

    fn setup_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.setup_timeout)
    }
}

/// Where the relay under test is.
struct RelayTarget {
    quic: SocketAddr,
    api: String,
    /// A staff login's bearer token (meetings are scheduled by staff, not the operator key).
    token: String,
    cert: [u8; 32],
    pid: Option<String>,
    metrics: Option<String>,
    label: String,
}

/// `POST /api/v1/meetings`, the fields used here.
#[derive(serde::Deserialize)]
struct CreatedMeeting {
    meeting_id: String,
    code: String,
    host_token: String,
}

/// `POST /api/v1/meetings/{id}/join-token`, the field used here.
#[derive(serde::Deserialize)]
struct JoinToken {
    token: String,
}

/// POSTs `body` (JSON) with the staff token and decodes a 2xx answer; anything else is an error that
/// quotes the answer.
async fn api_post<T: DeserializeOwned>(
    t: &RelayTarget,
    path: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> anyhow::Result<T> {
    api_call(
        &t.api,
        Some(&t.token),
        reqwest::Method::POST,
        path,
        Some(body),
        timeout,
    )
    .await
}

/// One joined participant: its endpoint (kept open) and session.
struct Joined {
    endpoint: quinn::Endpoint,
    session: Session,
}

async fn join_meeting(t: Arc<RelayTarget>, hello: Hello) -> anyhow::Result<Joined> {
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let endpoint = client::endpoint(&ServerTrust::Pin(t.cert), bind)?;
    let session = join(&endpoint, t.quic, "localhost", hello).await?;
    if !matches!(session.welcome, ServerMsg::MeetingWelcome(_)) {
        bail!("expected MEETING_WELCOME, got {:?}", session.welcome);
    }
    Ok(Joined { endpoint, session })
}

/// Reads a control stream until it ends, so the relay's control queue never fills; flags keyframe
/// requests (publishers).
async fn drain_control(
    mut rx: ControlReceiver,
    keyframe_wanted: Option<Arc<AtomicBool>>,
    requests: Arc<AtomicU64>,
) {
    while let Ok(Some(msg)) = rx.recv().await {
        if let (ServerMsg::KeyframeRequest { .. }, Some(flag)) = (&msg, &keyframe_wanted) {
            requests.fetch_add(1, Ordering::Relaxed);
            flag.store(true, Ordering::Relaxed);
        }
    }
}

fn max_frame(s: &Session) -> usize {
    match &s.welcome {
        ServerMsg::MeetingWelcome(w) => w.max_frame_bytes as usize,
        _ => 0,
    }
}

/// What the load needs to enter a meeting.
struct MeetingAccess {
    meeting_id: String,
    /// The meeting code, for the subscribers.
    code: String,
    /// Join tokens, one per publisher: the host's first.
    tokens: Vec<String>,
}

/// Creates the meeting and the publishers' tokens through the HTTP API with the staff login.
async fn create_meeting(args: &MeetingArgs, t: &RelayTarget) -> anyhow::Result<MeetingAccess> {
    let limit = args.setup_timeout();
    let created: CreatedMeeting = step(
        limit,
        || "creating the meeting (POST /api/v1/meetings)".into(),
        api_post(
            t,
            "/api/v1/meetings",
            &serde_json::json!({"topic": "load"}),
            limit,
        ),
    )
    .await?;
    let mut tokens = vec![created.host_token];
    for p in 1..args.publishers {
        let path = format!("/api/v1/meetings/{}/join-token", created.meeting_id);
        let tok: JoinToken = step(
            limit,
            || format!("a join token for publisher {p} (POST {path})"),
            api_post(t, &path, &serde_json::json!({}), limit),
        )
        .await?;
        tokens.push(tok.token);
    }
    Ok(MeetingAccess {
        meeting_id: created.meeting_id,
        code: created.code,
        tokens,
    })
}

/// Joins everyone to the meeting, runs the load through the relay, and ends the meeting.
async fn relay_phase(
    args: &MeetingArgs,
    base: Instant,
    t: Arc<RelayTarget>,
    access: MeetingAccess,
    generator: &Generator,
) -> anyhow::Result<PhaseReport> {
    let limit = args.setup_timeout();
    // Publishers join on the generator, so their connections are driven there; one at a time, in order.
    let requests = Arc::new(AtomicU64::new(0));
    let mut publishers = Vec::new();
    for (p, token) in access.tokens.into_iter().enumerate() {
        let hello = Hello::Meeting {
            token,
            name: format!("publisher {p}"),
        };
        let j = generator.spawn(join_meeting(t.clone(), hello));
        let joined = step(limit, || format!("publisher {p}'s join"), async move {
            j.await?
        })
        .await?;
        publishers.push(joined);
    }
    let max_frame = max_frame(&publishers[0].session);
    if args.max_bytes() > max_frame {
        bail!(
            "frames of {} B exceed the relay's max_frame_bytes {max_frame}",
            args.max_bytes()
        );
    }
    let sems = Arc::new(Semaphore::new(args.setup_concurrency.max(1)));
    let mut setups = JoinSet::new();
    for i in 0..args.subscribers {
        let (t, sems, code) = (t.clone(), sems.clone(), access.code.clone());
        setups.spawn(async move {
            let _permit = sems.acquire_owned().await;
            let hello = Hello::MeetingCode {
                code,
                name: format!("subscriber {i}"),
            };
            let what = move || format!("subscriber {i}'s join");
            (i, step(limit, what, join_meeting(t, hello)).await)
        });
    }
    let mut subscribers: Vec<Option<Joined>> = (0..args.subscribers).map(|_| None).collect();
    let mut failed = Vec::new();
    while let Some(r) = setups.join_next().await {
        match r {
            Ok((i, Ok(j))) => subscribers[i] = Some(j),
            Ok((_, Err(e))) => failed.push(format!("{e:#}")),
            Err(e) => failed.push(format!("setup task: {e}")),
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} subscribers could not join; first: {}",
            failed.len(),
            args.subscribers,
            failed[0]
        );
    }

    // Room-wide track ids: participant × 16 + local track 0.
    let tracks: Vec<u32> = publishers
        .iter()
        .map(|j| j.session.participant() * TRACKS_PER_PARTICIPANT)
        .collect();
    let mut kept: Vec<(quinn::Endpoint, quinn::Connection, ControlSender)> = Vec::new();
    let mut pubs = Vec::new();
    let mut receivers = Vec::new();
    for (p, j) in publishers.into_iter().enumerate() {
        let Session { conn, tx, rx, .. } = j.session;
        let flag = Arc::new(AtomicBool::new(false));
        generator.spawn(drain_control(rx, Some(flag.clone()), requests.clone()));
        pubs.push(Publisher {
            conns: vec![conn.clone()],
            keyframe_wanted: flag,
        });
        // With several publishers, each receives the others.
        let listens: Vec<(u32, usize)> = (0..tracks.len())
            .filter(|q| *q != p)
            .map(|q| (tracks[q], q))
            .collect();
        if !listens.is_empty() {
            receivers.push(Receiver {
                conn: conn.clone(),
                max_frame,
                listens,
            });
        }
        kept.push((j.endpoint, conn, tx));
    }
    let all: Vec<(u32, usize)> = tracks.iter().copied().zip(0..).collect();
    for j in subscribers.into_iter().flatten() {
        let Session { conn, tx, rx, .. } = j.session;
        tokio::spawn(drain_control(rx, None, requests.clone()));
        receivers.push(Receiver {
            conn: conn.clone(),
            max_frame,
            listens: all.clone(),
        });
        kept.push((j.endpoint, conn, tx));
    }

    let plan = Arc::new(FanoutPlan::new(&args.plan_spec(), base));
    let pid = t.pid.clone();
    let cpu = move || pid.as_deref().and_then(|p| relay_proc::cpu_seconds(p).ok());
    let setup = PhaseSetup {
        phase: "relay",
        generator,
        bar: progress_bar(args.json, args.duration, "relay"),
        cpu: &cpu,
        server_port: Some(t.quic.port()),
    };
    let out = run_fanout(setup, pubs, receivers, plan).await;
    let mut rep = out.rep;
    set_cpu(&mut rep, out.measured_cpu_s);
    rep.keyframe_requests = requests.load(Ordering::Relaxed);
    rep.relay_peak_rss_kib = t.pid.as_deref().and_then(relay_proc::peak_rss_kib);
    if let Some(url) = &t.metrics {
        match relay_proc::scrape_metrics(
            url,
            &[
                "assist_relay_frames_forwarded_total",
                "assist_relay_frames_dropped_total",
                "assist_relay_groups_reset_total",
                "assist_relay_keyframe_requests_total",
                "assist_relay_connections_closed_total",
                "assist_relay_forwarding_latency_seconds",
            ],
        )
        .await
        {
            Ok(m) => rep.relay_metrics = m.into_iter().collect::<BTreeMap<_, _>>(),
            Err(e) => rep.errors.push(format!("scraping {url}: {e}")),
        }
    }

    // Teardown, outside the window: the host ends the meeting for everyone; the relay closes them all.
    let mut kept = kept.into_iter();
    if let Some((ep, host, mut tx)) = kept.next() {
        let _ = tokio::time::timeout(TEARDOWN_TIMEOUT, async {
            let _ = tx.send(&ClientMsg::EndSession).await;
            host.closed().await
        })
        .await;
        ep.close(0u32.into(), b"done");
    }
    let mut waits = JoinSet::new();
    for (ep, conn, tx) in kept {
        waits.spawn(async move {
            let _ = tokio::time::timeout(TEARDOWN_TIMEOUT, conn.closed()).await;
            drop(tx);
            ep.close(0u32.into(), b"done");
        });
    }
    while waits.join_next().await.is_some() {}
    Ok(rep)
}

async fn direct_phase(
    args: &MeetingArgs,
    base: Instant,
    generator: &Generator,
) -> anyhow::Result<PhaseReport> {
    let dir = tempfile::Builder::new()
        .prefix("loadtest-direct")
        .tempdir()?;
    // The receiving endpoint is built exactly as the relay builds its own (same transport settings and UDP
    // buffers); only the relay between the sender and the receivers is missing.
    let cfg = Config::for_tests(dir.path());
    let identity = tls::load_or_create_identity(&cfg.tls, dir.path())?;
    let server = quic::bind(&cfg, &identity).context("binding the direct receivers' endpoint")?;
    let addr = server.local_addr()?;
    let trust = ServerTrust::Pin(identity.sha256());
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    // The sender's endpoint lives on the generator, like the publisher's in the relay phase.
    let endpoint = generator
        .spawn(async move { client::endpoint(&trust, bind) })
        .await??;
    let limit = args.setup_timeout();
    let max_frame = cfg.limits.max_frame_bytes.usize();
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for i in 0..args.subscribers {
        let ep = endpoint.clone();
        let connect =
            generator.spawn(async move { anyhow::Ok(ep.connect(addr, "localhost")?.await?) });
        let accept = async {
            let incoming = server.accept().await.context("endpoint closed")?;
            anyhow::Ok(incoming.await?)
        };
        let (c, s) = step(
            limit,
            || format!("direct connection {i}'s handshake"),
            async {
                let (c, s) = tokio::join!(connect, accept);
                anyhow::Ok((c??, s?))
            },
        )
        .await?;
        senders.push(c);
        receivers.push(Receiver {
            conn: s,
            max_frame,
            listens: vec![(0, 0)],
        });
    }
    let publisher = Publisher {
        conns: senders.clone(),
        keyframe_wanted: Arc::new(AtomicBool::new(false)),
    };
    let plan = Arc::new(FanoutPlan::new(&args.plan_spec(), base));
    let setup = PhaseSetup {
        phase: "direct",
        generator,
        bar: progress_bar(args.json, args.duration, "direct"),
        cpu: &|| None,
        server_port: Some(addr.port()),
    };
    let out = run_fanout(setup, vec![publisher], receivers, plan).await;
    let mut rep = out.rep;
    // The sender alone: its CPU per GB it sent (all copies; equal to delivered when the run counts).
    rep.cpu_s = rep.generator_cpu_s;
    rep.cpu_s_per_delivered_gb = rep.generator_cpu_s_per_sent_gb;
    for c in senders {
        c.close(0u32.into(), b"done");
    }
    endpoint.close(0u32.into(), b"done");
    server.close(0u32.into(), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(1), server.wait_idle()).await;
    Ok(rep)
}

/// Runs the scenario and returns the report; the caller prints it.
pub async fn run(args: MeetingArgs) -> anyhow::Result<MeetingReport> {
    args.check()?;
    let machine = Machine::probe();
    let base = Instant::now();
    let generator = Generator::start()?;
    let mut child = None;
    let target = match &args.relay_addr {
        Some(addr) => RelayTarget {
            quic: client::resolve(addr).await?,
            api: args.api.clone().expect("clap requires --api"),
            token: login(
                args.api.as_deref().expect("clap requires --api"),
                args.login.as_deref().expect("clap requires --login"),
                args.password.as_deref().expect("clap requires --password"),
                args.setup_timeout(),
            )
            .await
            .context("logging in (--login, --password)")?,
            cert: tls::parse_fingerprint(args.cert_sha256.as_deref().expect("clap requires it"))?,
            pid: args.relay_pid.map(|p| p.to_string()),
            metrics: args.relay_metrics.clone(),
            label: addr.clone(),
        },
        None => {
            let (p, token) = relay_proc::spawn_meeting_relay(
                args.pin_relay.clone(),
                &args.relay_arg,
                args.setup_timeout(),
            )
            .await?;
            let t = RelayTarget {
                quic: p.quic,
                api: p.api.clone(),
                token,
                cert: tls::parse_fingerprint(&p.cert_sha256)?,
                pid: Some(p.pid.clone()),
                metrics: Some(p.metrics.clone()),
                label: format!("child pid {} at {}", p.pid, p.quic),
            };
            child = Some(p);
            t
        }
    };
    let label = target.label.clone();
    let relay = async {
        let access = create_meeting(&args, &target).await?;
        let id = access.meeting_id.clone();
        let rep = relay_phase(&args, base, Arc::new(target), access, &generator).await?;
        anyhow::Ok((id, rep))
    }
    .await;
    let (meeting_id, mut relay) = match (relay, &child) {
        (Ok(r), _) => r,
        (Err(e), Some(p)) => {
            return Err(e.context(format!("relay log tail:\n{}", p.log_tail(15))));
        }
        (Err(e), None) => return Err(e),
    };
    if let Some(p) = child.take() {
        let mut problems = p.log_problems();
        problems.truncate(20);
        relay.relay_log_problems = problems;
        if let Err(e) = p.stop().await {
            relay.errors.push(e.to_string());
        }
    }
    let direct = if args.direct {
        Some(direct_phase(&args, base, &generator).await?)
    } else {
        None
    };
    drop(generator);
    let ratio = direct.as_ref().and_then(|d| {
        relay
            .cpu_s_per_delivered_gb
            .zip(d.generator_cpu_s_per_sent_gb)
            .filter(|(_, d)| *d > 0.0)
            .map(|(r, d)| r / d)
    });
    let valid = relay.delivered_equals_offered
        && direct.as_ref().is_none_or(|d| d.delivered_equals_offered);
    let notes = notes(&args, &machine, &relay, direct.as_ref());
    Ok(MeetingReport {
        scenario: "meeting",
        params: MeetingParams {
            publishers: args.publishers,
            subscribers: args.subscribers,
            fps: args.fps,
            frame_bytes_min: args.frame_bytes,
            frame_bytes_max: args.max_bytes(),
            seed: args.seed,
            duration_s: args.duration,
            group_frames: args.group_frames,
            relay: label,
            pin_relay_cpu: args.pin_relay.clone(),
            pin_load_cpu: args.pin_load.clone(),
            relay_wrapper: relay_proc::wrapper().filter(|_| args.relay_addr.is_none()),
        },
        machine,
        meeting_id,
        relay,
        direct,
        relay_cpu_per_delivered_gb_over_direct_sender_cpu_per_sent_gb: ratio,
        direct_sender_cpu_method: SENDER_CPU_METHOD,
        valid,
        notes,
    })
}

/// Reasons to doubt the numbers even when they count.
fn notes(
    args: &MeetingArgs,
    machine: &Machine,
    relay: &PhaseReport,
    direct: Option<&PhaseReport>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let interval_ms = 1000.0 / f64::from(args.fps);
    for ph in std::iter::once(relay).chain(direct) {
        if ph.send_lag.p99_ms > interval_ms {
            notes.push(format!(
                "[{}] send lag p99 {:.1} ms exceeds the frame interval ({interval_ms:.1} ms): the generator \
                 fell behind (or a connection held it back), so latency includes its own queueing",
                ph.phase, ph.send_lag.p99_ms
            ));
        }
    }
    if let Some(load1) = machine.load1().filter(|l| *l > 0.5) {
        notes.push(format!(
            "the 1-minute load average was {load1} on {} CPUs before the run: other processes (or a run \
             just before) competed for the CPUs",
            machine.cpus_online
        ));
    }
    if args.publishers > 1 {
        notes.push(format!(
            "{} publishers: each also receives the others, so offered = frames x (subscribers + publishers - 1)",
            args.publishers
        ));
    }
    if args.relay_addr.is_none() && relay_proc::wrapper().is_some() {
        notes.push(format!(
            "the relay ran under {}={:?}: its CPU, memory and latency are the wrapper's, for profiling only",
            relay_proc::WRAPPER_ENV,
            relay_proc::wrapper().unwrap_or_default()
        ));
    }
    notes
}

#[cfg(test)]
mod tests;
