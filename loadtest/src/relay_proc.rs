//! The relay under test as a child process, and what `/proc` says about a process and the machine (CPU
//! time, peak memory, per-CPU busy time, UDP drops).
//!
//! The relay runs in its own process (`assist-relay serve` from the same target directory) so that its CPU
//! time and memory are its own: an in-process relay would share a CPU account with the load generator.
//! [`RelayProc::spawn`] picks free loopback ports, starts the child with a temporary data directory (optionally
//! under `taskset -c`), reads the certificate fingerprint from the `cert-sha256:` line it prints and the
//! operator key from `data/operator.key`, and waits for `/healthz`. Dropping a [`RelayProc`] kills the child,
//! so no error path leaves a relay running.
//!
//! For profiling, `LOADTEST_RELAY_WRAPPER` (e.g. `valgrind --tool=callgrind --callgrind-out-file=cg.out`)
//! puts a command in front of the relay (after `taskset`). The measured pid is then the wrapper's, so use
//! one that runs the relay in its own process (valgrind does; `perf record` does not: attach perf with
//! `-p` instead); start-up and stop get [`WRAPPED_TIMEOUT`].
//!
//! Deliberately not here: anything about sessions or frames (`pairs.rs`, `meeting.rs`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long the child gets to print its fingerprint and answer `/healthz`.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the child gets to exit after SIGTERM before it is killed (its own grace is 5 s by default,
/// but no session is open when we stop it).
const STOP_TIMEOUT: Duration = Duration::from_secs(8);
/// Start and stop timeout under `LOADTEST_RELAY_WRAPPER`: valgrind starts slowly and writes its profile at
/// exit.
const WRAPPED_TIMEOUT: Duration = Duration::from_secs(120);
/// The environment variable naming a command to run the relay under (see the module documentation).
pub const WRAPPER_ENV: &str = "LOADTEST_RELAY_WRAPPER";

/// The wrapper command from [`WRAPPER_ENV`], if set and not blank.
pub fn wrapper() -> Option<String> {
    std::env::var(WRAPPER_ENV)
        .ok()
        .filter(|w| !w.trim().is_empty())
}

fn start_timeout() -> Duration {
    if wrapper().is_some() {
        WRAPPED_TIMEOUT
    } else {
        START_TIMEOUT
    }
}

/// CPU time of a process so far (user + system), from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime is field 14 and stime field 15 (proc(5)).
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i - 3)
            .context("short /proc stat")?
            .parse()
            .context("bad /proc stat field")
    };
    Ok((ticks(14)? + ticks(15)?) as f64 / clock_ticks_per_sec() as f64)
}

/// The machine's UDP counters `(InErrors, RcvbufErrors)` from `/proc/net/snmp`: datagrams the kernel
/// dropped, system-wide (every process on the machine counts, not only the relay).
pub fn udp_errors() -> Option<(u64, u64)> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let field = |want: &str| {
        let i = names.split_whitespace().position(|n| n == want)?;
        values.split_whitespace().nth(i)?.parse().ok()
    };
    Some((field("InErrors")?, field("RcvbufErrors")?))
}

/// Drops counted per local UDP port (`drops` column of `/proc/net/udp` and `/proc/net/udp6`).
pub fn udp_drops_by_port() -> BTreeMap<u16, u64> {
    let mut out = BTreeMap::new();
    for file in ["/proc/net/udp", "/proc/net/udp6"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = f
                .get(1)
                .and_then(|a| a.rsplit_once(':'))
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            let drops = f.last().and_then(|d| d.parse::<u64>().ok());
            if let (Some(port), Some(drops)) = (port, drops) {
                *out.entry(port).or_insert(0) += drops;
            }
        }
    }
    out
}

/// Jiffies per CPU from `/proc/stat`: user, nice, system, idle, iowait, irq, softirq, steal.
pub fn cpu_jiffies() -> BTreeMap<String, [u64; 8]> {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next()?.to_string();
            let mut v = [0u64; 8];
            for slot in &mut v {
                *slot = f.next()?.parse().ok()?;
            }
            Some((name, v))
        })
        .collect()
}

/// Peak resident set size in KiB (`VmHWM` in `/proc/<pid>/status`).
pub fn peak_rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `sysconf(_SC_CLK_TCK)` without `unsafe`: asked of `getconf` once; 100 (the value on every common Linux
/// configuration) if that fails.
pub fn clock_ticks_per_sec() -> u64 {
    static TCK: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// A free loopback port, found by binding port 0 and letting go (the child binds it a moment later).
fn free_udp() -> anyhow::Result<SocketAddr> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?)
}
fn free_tcp() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// How to start the relay.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Run the child under `taskset -c CPU`.
    pub pin_cpu: Option<String>,
    /// More `serve` flags (e.g. `--max-connections-per-address`).
    pub extra_args: Vec<String>,
    /// Environment variables for the child (e.g. the bootstrap administrator's password).
    pub env: Vec<(String, String)>,
}

/// Per-address and per-meeting limits of a meeting load's child relay: every load connection comes from
/// 127.0.0.1, and the defaults (32 connections per address, 100 participants) are meant for real clients.
const MEETING_CHILD_LIMIT: usize = 1_000_000;

/// A relay child for a meeting load (per-address and participant limits lifted, then `relay_args`), its
/// first administrator's first login done: the child and that administrator's token.
pub async fn spawn_meeting_relay(
    pin_cpu: Option<String>,
    relay_args: &[String],
    timeout: Duration,
) -> anyhow::Result<(RelayProc, String)> {
    let mut extra_args: Vec<String> = [
        "--max-connections-per-address",
        "--max-sessions-per-address",
        "--meeting-max-participants",
    ]
    .iter()
    .flat_map(|f| [f.to_string(), MEETING_CHILD_LIMIT.to_string()])
    .collect();
    extra_args.extend(relay_args.iter().cloned());
    // Unique per run and always past the relay's 10-character minimum (a short pid alone is not).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let initial = format!("loadtest-{}-{nanos:09}", std::process::id());
    let opts = SpawnOptions {
        pin_cpu,
        extra_args,
        env: vec![("ASSIST_RELAY_BOOTSTRAP_PASSWORD".into(), initial.clone())],
    };
    let proc = RelayProc::spawn(&opts).await?;
    match crate::api::bootstrap_admin(&proc.api, &initial, timeout).await {
        Ok(token) => Ok((proc, token)),
        Err(e) => Err(e.context(format!(
            "the child relay's first administrator login; relay log tail:\n{}",
            proc.log_tail(15)
        ))),
    }
}

/// A running relay child process. See the module documentation.
pub struct RelayProc {
    child: Child,
    pub pid: String,
    pub quic: SocketAddr,
    /// The WebRTC UDP port's address (`webrtc.listen`).
    pub webrtc: SocketAddr,
    pub api: String,
    pub metrics: String,
    pub operator_key: String,
    pub cert_sha256: String,
    pub log_path: PathBuf,
    _data: tempfile::TempDir,
}

impl RelayProc {
    /// Starts `assist-relay serve` found next to this executable and waits until it serves.
    pub async fn spawn(opts: &SpawnOptions) -> anyhow::Result<RelayProc> {
        let exe = std::env::current_exe()?.with_file_name("assist-relay");
        if !exe.exists() {
            bail!(
                "{} not found: build it first with `cargo build --release -p assist-relay -p loadtest` \
                 (the load tool starts the relay binary from its own target directory), \
                 or pass --relay-addr to test a running relay",
                exe.display()
            );
        }
        let data = tempfile::Builder::new()
            .prefix("loadtest-relay")
            .tempdir()?;
        let (quic, webrtc, http, metrics) = (free_udp()?, free_udp()?, free_tcp()?, free_tcp()?);
        let log_path = data.path().join("relay.log");
        let log = std::fs::File::create(&log_path)?;
        // taskset -c CPU, then the wrapper's words, then the relay: each execs the next.
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some(cpu) = &opts.pin_cpu {
            argv.extend(["taskset".into(), "-c".into(), cpu.into()]);
        }
        if let Some(w) = wrapper() {
            argv.extend(w.split_whitespace().map(Into::into));
        }
        argv.push(exe.clone().into());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .arg("--quic-listen")
            .arg(quic.to_string())
            .arg("--http-listen")
            .arg(http.to_string())
            .arg("--metrics-listen")
            .arg(metrics.to_string())
            .arg("--webrtc-listen")
            .arg(webrtc.to_string())
            .args(&opts.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        // `taskset` execs the relay, so the pid is the relay's either way.
        let pid = child.id().to_string();
        let stdout = child.stdout.take().expect("piped");
        let (fp_tx, fp_rx) = tokio::sync::oneshot::channel();
        // The relay prints one line on stdout; keep draining it so the pipe never fills.
        std::thread::spawn(move || {
            let mut fp_tx = Some(fp_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(fp) = line.strip_prefix("cert-sha256:") {
                    if let Some(tx) = fp_tx.take() {
                        let _ = tx.send(fp.trim().to_string());
                    }
                }
            }
        });
        let mut proc = RelayProc {
            child,
            pid,
            quic,
            webrtc,
            api: format!("http://{http}"),
            metrics: format!("http://{metrics}/metrics"),
            operator_key: String::new(),
            cert_sha256: String::new(),
            log_path,
            _data: data,
        };
        let started = Instant::now();
        let start_timeout = start_timeout();
        proc.cert_sha256 = match tokio::time::timeout(start_timeout, fp_rx).await {
            Ok(Ok(fp)) => fp,
            // Its stdout closed first: it exited (the log says why).
            Ok(Err(_)) => bail!(
                "the relay exited before printing its cert-sha256 line; its log:\n{}",
                proc.log_tail(20)
            ),
            Err(_) => bail!(
                "the relay did not print its cert-sha256 line within {start_timeout:?}; its log:\n{}",
                proc.log_tail(20)
            ),
        };
        let key_path = proc._data.path().join("data/operator.key");
        proc.operator_key = std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?
            .trim()
            .to_string();
        let health = format!("{}/healthz", proc.api);
        let client = reqwest::Client::new();
        loop {
            if let Ok(r) = client.get(&health).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                bail!(
                    "the relay exited ({status}); its log:\n{}",
                    proc.log_tail(20)
                );
            }
            if started.elapsed() > start_timeout {
                bail!(
                    "the relay did not answer {health} within {start_timeout:?}; its log:\n{}",
                    proc.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(proc)
    }

    /// The last `n` lines of the relay's log (stderr).
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(&self.log_path, n)
    }

    /// Log lines at WARN or ERROR, for the report.
    pub fn log_problems(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .map(String::from)
            .collect()
    }

    /// SIGTERM (via `kill`, to stay free of `unsafe`), then SIGKILL if it has not exited in time.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(&self.pid)
            .stderr(Stdio::null())
            .status();
        let stop_timeout = if wrapper().is_some() {
            WRAPPED_TIMEOUT
        } else {
            STOP_TIMEOUT
        };
        let until = Instant::now() + stop_timeout;
        while Instant::now() < until {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        bail!("the relay did not exit within {stop_timeout:?} of SIGTERM; killed")
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Counters from the relay's `/metrics` whose names start with one of `prefixes` (label sets kept in the key).
pub async fn scrape_metrics(url: &str, prefixes: &[&str]) -> anyhow::Result<Vec<(String, f64)>> {
    let text = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && prefixes.iter().any(|p| l.starts_with(p)))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_cpu_rss_and_udp_counters() {
        assert!(udp_errors().is_some());
        assert!(!cpu_jiffies().is_empty());
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        assert_eq!(udp_drops_by_port().get(&port), Some(&0));
        let cpu = cpu_seconds("self").unwrap();
        assert!(cpu >= 0.0);
        assert!(peak_rss_kib("self").unwrap() > 0);
        assert!(clock_ticks_per_sec() > 0);
    }
}
