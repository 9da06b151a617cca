//! Scenario `pairs`: N concurrent remote-assist sessions, each a customer sending F frames/s of B bytes for D
//! seconds to its technician through the relay; then, with `--direct`, the same load over plain QUIC (one
//! sender endpoint per pair to one receiving endpoint built like the relay's), so the relay's cost is a ratio.
//!
//! Both phases use the same sender and receiver code and the protocol's own framing ([`MediaSender`],
//! [`GroupStreams`]): a keyframe opens a group stream every `--group-frames` frames. The sender writes its
//! clock reading (µs since a base `Instant` shared by the whole process) into each frame header's capture
//! timestamp; the relay forwards headers unchanged, so the receiver's latency is `read done - sent`, on one
//! clock. Every wait is bounded: setup steps by [`SETUP_TIMEOUT`], the load by `D +` [`DRAIN_GRACE`].
//!
//! The measured window runs from the first scheduled frame to the last receiver having all its sender's
//! frames; session setup and teardown are outside it, so CPU per GB is the forwarding cost.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use assist_relay::client::technician::create_session;
use assist_relay::client::{self, join, ControlReceiver, Session};
use assist_relay::config::Config;
use assist_relay::protocol::{ClientMsg, Hello, ServerMsg};
use assist_relay::transport::quic;
use assist_relay::transport::tls::{self, ServerTrust};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::load::{progress_bar, run_load, set_cpu, Pair, Plan};
use crate::relay_proc::{self, RelayProc, SpawnOptions};
use crate::report::{Machine, PairsReport, Params, PhaseReport};

/// Bound on each setup step (API call, QUIC join, direct handshake).
const SETUP_TIMEOUT: Duration = Duration::from_secs(15);
/// Teardown waits at most this long for the relay to close a session.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections and sessions from one address the child relay accepts: every load connection comes from
/// 127.0.0.1, and the relay's defaults (32 connections, 16 sessions) are meant for real clients.
const CHILD_MAX_PER_ADDRESS: usize = 1_000_000;

/// Flags of `loadtest pairs`.
#[derive(Debug, Clone, clap::Args)]
pub struct PairsArgs {
    /// Concurrent sessions (sender→receiver pairs).
    #[arg(long, default_value_t = 2)]
    pub sessions: usize,
    /// Frames per second each customer sends.
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Payload bytes per frame.
    #[arg(long, default_value_t = 20_000)]
    pub frame_bytes: usize,
    /// Seconds of sending (fractions allowed).
    #[arg(long, default_value_t = 2.0)]
    pub duration: f64,
    /// A keyframe (and a new group stream) every this many frames.
    #[arg(long, default_value_t = 30)]
    pub group_frames: u32,
    /// Print one JSON object instead of the text report (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Also run the same load over plain QUIC without the relay, and report the CPU ratio.
    #[arg(long)]
    pub direct: bool,
    /// Test a running relay at HOST:PORT instead of starting one (then --api, --operator-key and
    /// --cert-sha256 are required, and its per-address limits must allow 2 connections and 1 session per session).
    #[arg(long, requires_all = ["api", "operator_key", "cert_sha256"])]
    pub relay_addr: Option<String>,
    /// Base URL of the running relay's HTTP API (with --relay-addr).
    #[arg(long)]
    pub api: Option<String>,
    /// Operator key of the running relay (with --relay-addr).
    #[arg(long)]
    pub operator_key: Option<String>,
    /// Certificate SHA-256 of the running relay (with --relay-addr).
    #[arg(long)]
    pub cert_sha256: Option<String>,
    /// Process id of the running relay, to measure its CPU and memory (with --relay-addr).
    #[arg(long, requires = "relay_addr")]
    pub relay_pid: Option<u32>,
    /// Run the relay child on this CPU (taskset -c); needs --pin-load.
    #[arg(long, requires = "pin_load", conflicts_with = "relay_addr")]
    pub pin_relay: Option<String>,
    /// Run this load generator on this CPU (taskset -p, before any worker thread starts).
    #[arg(long)]
    pub pin_load: Option<String>,
    /// Sessions set up at once.
    #[arg(long, default_value_t = 16)]
    pub setup_concurrency: usize,
}

impl PairsArgs {
    fn check(&self) -> anyhow::Result<()> {
        if self.sessions == 0 || self.fps == 0 || self.group_frames == 0 || self.frame_bytes == 0 {
            bail!("--sessions, --fps, --group-frames and --frame-bytes must be at least 1");
        }
        crate::load::check_run_bounds(self.duration, self.fps, None)?;
        if self.pin_load.is_some() && self.pin_relay.is_none() && self.relay_addr.is_none() {
            bail!("--pin-load needs --pin-relay: the relay child would inherit the load's CPU");
        }
        Ok(())
    }
}

/// Where the relay under test is.
struct RelayTarget {
    quic: SocketAddr,
    api: String,
    operator_key: String,
    cert: [u8; 32],
    pid: Option<String>,
    metrics: Option<String>,
    label: String,
}

/// One session through the relay, joined by both sides.
struct RelaySession {
    endpoint: quinn::Endpoint,
    technician: Session,
    customer: Session,
}

async fn setup_session(t: Arc<RelayTarget>) -> anyhow::Result<RelaySession> {
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let endpoint = client::endpoint(&ServerTrust::Pin(t.cert), bind)?;
    let step =
        |what: &'static str| move |_| anyhow::anyhow!("{what} took longer than {SETUP_TIMEOUT:?}");
    let created = tokio::time::timeout(SETUP_TIMEOUT, create_session(&t.api, &t.operator_key))
        .await
        .map_err(step("creating the session"))??;
    let technician = tokio::time::timeout(
        SETUP_TIMEOUT,
        join(
            &endpoint,
            t.quic,
            "localhost",
            Hello::Technician {
                token: created.technician_token,
            },
        ),
    )
    .await
    .map_err(step("the technician's join"))??;
    let customer = tokio::time::timeout(
        SETUP_TIMEOUT,
        join(
            &endpoint,
            t.quic,
            "localhost",
            Hello::Customer {
                code: created.code,
                allow_control: false,
            },
        ),
    )
    .await
    .map_err(step("the customer's join"))??;
    Ok(RelaySession {
        endpoint,
        technician,
        customer,
    })
}

/// Reads a control stream until it ends, so the relay's control queue never fills; flags keyframe requests.
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

async fn relay_phase(
    args: &PairsArgs,
    base: Instant,
    t: Arc<RelayTarget>,
) -> anyhow::Result<PhaseReport> {
    let limit = Arc::new(Semaphore::new(args.setup_concurrency.max(1)));
    let mut setups = JoinSet::new();
    for i in 0..args.sessions {
        let (t, limit) = (t.clone(), limit.clone());
        setups.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (i, setup_session(t).await)
        });
    }
    let mut sessions: Vec<Option<RelaySession>> = (0..args.sessions).map(|_| None).collect();
    let mut failed = Vec::new();
    while let Some(r) = setups.join_next().await {
        match r {
            Ok((i, Ok(s))) => sessions[i] = Some(s),
            Ok((i, Err(e))) => failed.push(format!("session {i}: {e:#}")),
            Err(e) => failed.push(format!("setup task: {e}")),
        }
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} sessions could not be set up; first: {}",
            failed.len(),
            args.sessions,
            failed[0]
        );
    }
    let requests = Arc::new(AtomicU64::new(0));
    let mut pairs = Vec::new();
    let mut kept = Vec::new();
    for s in sessions.into_iter().flatten() {
        let RelaySession {
            endpoint,
            technician,
            customer,
        } = s;
        let max_frame = match &technician.welcome {
            ServerMsg::Welcome {
                max_frame_bytes, ..
            } => *max_frame_bytes as usize,
            _ => unreachable!("join returns after WELCOME"),
        };
        if args.frame_bytes > max_frame {
            bail!(
                "--frame-bytes {} exceeds the relay's max_frame_bytes {max_frame}",
                args.frame_bytes
            );
        }
        let keyframe_wanted = Arc::new(AtomicBool::new(false));
        let Session {
            conn: cust_conn,
            tx: cust_tx,
            rx: cust_rx,
            ..
        } = customer;
        let Session {
            conn: tech_conn,
            tx: tech_tx,
            rx: tech_rx,
            ..
        } = technician;
        tokio::spawn(drain_control(
            cust_rx,
            Some(keyframe_wanted.clone()),
            requests.clone(),
        ));
        tokio::spawn(drain_control(tech_rx, None, requests.clone()));
        pairs.push(Pair {
            sender: cust_conn.clone(),
            receiver: tech_conn.clone(),
            max_frame,
            keyframe_wanted,
        });
        // Control senders stay open until teardown (dropping one would finish its stream).
        kept.push((endpoint, cust_conn, cust_tx, tech_tx));
    }

    let plan = Arc::new(Plan::new(args, base, pairs.len()));
    let pid = t.pid.clone();
    let cpu = move || pid.as_deref().and_then(|p| relay_proc::cpu_seconds(p).ok());
    let (mut rep, relay_cpu, _) = run_load(
        "relay",
        pairs,
        plan,
        progress_bar(args.json, args.duration, "relay"),
        &cpu,
        Some(t.quic.port()),
    )
    .await;
    set_cpu(&mut rep, relay_cpu);
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

    // Teardown, outside the window: each customer ends its session; the relay closes both sides.
    let mut ends = JoinSet::new();
    for (endpoint, conn, mut tx, tech_tx) in kept {
        ends.spawn(async move {
            let _ = tx.send(&ClientMsg::EndSession).await;
            let _ = tokio::time::timeout(TEARDOWN_TIMEOUT, conn.closed()).await;
            drop(tech_tx);
            endpoint.close(0u32.into(), b"done");
        });
    }
    while ends.join_next().await.is_some() {}
    Ok(rep)
}

async fn direct_phase(args: &PairsArgs, base: Instant) -> anyhow::Result<PhaseReport> {
    let dir = tempfile::Builder::new()
        .prefix("loadtest-direct")
        .tempdir()?;
    // The receiving endpoint is built exactly as the relay builds its own (same transport settings and UDP
    // buffers); only the relay logic between the two QUIC hops is missing.
    let cfg = Config::for_tests(dir.path());
    let identity = tls::load_or_create_identity(&cfg.tls, dir.path())?;
    let server = quic::bind(&cfg, &identity).context("binding the direct receiver")?;
    let addr = server.local_addr()?;
    let trust = ServerTrust::Pin(identity.sha256());
    let bind: SocketAddr = "127.0.0.1:0".parse().expect("literal");
    let mut pairs = Vec::new();
    let mut endpoints = Vec::new();
    // One handshake at a time, so the n-th accepted connection is the n-th sender's.
    for i in 0..args.sessions {
        let ep = client::endpoint(&trust, bind)?;
        let connecting = ep.connect(addr, "localhost")?;
        let accept = async {
            let incoming = server.accept().await.context("endpoint closed")?;
            anyhow::Ok(incoming.await?)
        };
        let (c, s) =
            tokio::time::timeout(SETUP_TIMEOUT, async { tokio::join!(connecting, accept) })
                .await
                .with_context(|| {
                    format!("direct pair {i}: handshake took longer than {SETUP_TIMEOUT:?}")
                })?;
        pairs.push(Pair {
            sender: c.with_context(|| format!("direct pair {i}: connect"))?,
            receiver: s.with_context(|| format!("direct pair {i}: accept"))?,
            max_frame: cfg.limits.max_frame_bytes.usize(),
            keyframe_wanted: Arc::new(AtomicBool::new(false)),
        });
        endpoints.push(ep);
    }
    let plan = Arc::new(Plan::new(args, base, pairs.len()));
    let conns: Vec<_> = pairs.iter().map(|p| p.sender.clone()).collect();
    let (mut rep, _, self_cpu) = run_load(
        "direct",
        pairs,
        plan,
        progress_bar(args.json, args.duration, "direct"),
        &|| None,
        Some(addr.port()),
    )
    .await;
    set_cpu(&mut rep, Some(self_cpu));
    for c in conns {
        c.close(0u32.into(), b"done");
    }
    for ep in endpoints {
        ep.close(0u32.into(), b"done");
    }
    server.close(0u32.into(), b"done");
    let _ = tokio::time::timeout(Duration::from_secs(1), server.wait_idle()).await;
    Ok(rep)
}

/// Runs the scenario and returns the report; the caller prints it.
pub async fn run(args: PairsArgs) -> anyhow::Result<PairsReport> {
    args.check()?;
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    let base = Instant::now();
    let mut child = None;
    let target = match &args.relay_addr {
        Some(addr) => RelayTarget {
            quic: client::resolve(addr).await?,
            api: args.api.clone().expect("clap requires --api"),
            operator_key: args.operator_key.clone().expect("clap requires it"),
            cert: tls::parse_fingerprint(args.cert_sha256.as_deref().expect("clap requires it"))?,
            pid: args.relay_pid.map(|p| p.to_string()),
            metrics: None,
            label: addr.clone(),
        },
        None => {
            let opts = SpawnOptions {
                pin_cpu: args.pin_relay.clone(),
                extra_args: vec![
                    "--max-connections-per-address".into(),
                    CHILD_MAX_PER_ADDRESS.to_string(),
                    "--max-sessions-per-address".into(),
                    CHILD_MAX_PER_ADDRESS.to_string(),
                ],
                env: Vec::new(),
            };
            let p = RelayProc::spawn(&opts).await?;
            let t = RelayTarget {
                quic: p.quic,
                api: p.api.clone(),
                operator_key: p.operator_key.clone(),
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
    let relay = relay_phase(&args, base, Arc::new(target)).await;
    let mut relay = match (relay, &child) {
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
        Some(direct_phase(&args, base).await?)
    } else {
        None
    };
    let ratio = direct.as_ref().and_then(|d| {
        relay
            .cpu_s_per_delivered_gb
            .zip(d.cpu_s_per_delivered_gb)
            .filter(|(_, d)| *d > 0.0)
            .map(|(r, d)| r / d)
    });
    let valid = relay.delivered_equals_offered
        && direct.as_ref().is_none_or(|d| d.delivered_equals_offered);
    let cpus_for_load = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpus_online = std::process::Command::new("getconf")
        .arg("_NPROCESSORS_ONLN")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(cpus_for_load);
    let mut notes = Vec::new();
    let interval_ms = 1000.0 / f64::from(args.fps);
    for ph in std::iter::once(&relay).chain(direct.as_ref()) {
        if ph.send_lag.p99_ms > interval_ms {
            notes.push(format!(
                "[{}] send lag p99 {:.1} ms exceeds the frame interval ({interval_ms:.1} ms): the load \
                 generator fell behind, so latency includes its own queueing",
                ph.phase, ph.send_lag.p99_ms
            ));
        }
    }
    if let Some(load1) = loadavg
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
    {
        if load1 > 0.5 {
            notes.push(format!(
                "the 1-minute load average was {load1} on {cpus_online} CPUs before the run: other processes (or a run just before) \
                 competed for the CPUs"
            ));
        }
    }
    Ok(PairsReport {
        scenario: "pairs",
        params: Params {
            sessions: args.sessions,
            fps: args.fps,
            frame_bytes: args.frame_bytes,
            duration_s: args.duration,
            group_frames: args.group_frames,
            relay: label,
            pin_relay_cpu: args.pin_relay.clone(),
            pin_load_cpu: args.pin_load.clone(),
        },
        machine: Machine {
            cpus_online,
            cpus_for_load,
            clk_tck: relay_proc::clock_ticks_per_sec(),
            loadavg_at_start: loadavg,
        },
        relay,
        direct,
        relay_cpu_per_gb_over_direct_sender_plus_receiver_cpu_per_gb: ratio,
        valid,
        notes,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    pub(crate) struct Cli {
        #[command(flatten)]
        pub args: PairsArgs,
    }

    #[test]
    fn pinning_the_load_alone_is_refused() {
        let args = Cli::parse_from(["x", "--pin-load", "1"]).args;
        assert!(args.check().is_err());
        assert!(Cli::try_parse_from(["x", "--pin-relay", "0"]).is_err());
    }
}
