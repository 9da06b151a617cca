//! `loadtest`: load scenarios for assist-relay. Each scenario offers a known load, checks that what was
//! delivered equals what was offered (otherwise the numbers do not count), and reports HDR-histogram latency
//! percentiles and the relay's CPU per delivered GB, as text or as one JSON object (`--json`).
//!
//! Scenarios:
//! - `pairs` ([`pairs`]): N remote-assist sessions, each a customer streaming to its technician, optionally
//!   compared with the same load over plain QUIC (`--direct`).
//! - `meeting` ([`meeting`]): one meeting, P publishers fanned out to N subscribers, optionally compared
//!   with one sender writing the same frames straight to N receivers (`--direct`).
//! - `webrtc` ([`webrtc`]): one meeting, a str0m publisher fanned out to N str0m viewers over WebRTC.
//!
//! The relay under test runs as a child process (`assist-relay serve` from the same target directory) so its
//! CPU is measured alone; `--pin-relay`/`--pin-load` put it and the load generator on different CPUs.
#![forbid(unsafe_code)]

mod api;
mod fanout;
mod load;
mod meeting;
mod pairs;
mod relay_proc;
mod report;
mod webrtc;

use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "loadtest", about = "Load scenarios for assist-relay")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// N concurrent sessions at F frames/s of B bytes for D seconds: offered vs delivered, latency
    /// percentiles, relay CPU per delivered GB; `--direct` adds a plain-QUIC baseline.
    Pairs(pairs::PairsArgs),
    /// One meeting: P publishers at F frames/s (fixed or uniformly random sizes) fanned out to N
    /// subscribers for D seconds: offered vs delivered, latency percentiles, relay CPU per delivered GB;
    /// `--direct` adds one sender writing the same frames straight to N receivers.
    Meeting(meeting::MeetingArgs),
    /// One meeting over WebRTC: a str0m publisher at F frames/s (uniformly random VP8-shaped frames)
    /// fanned out to N str0m viewers for D seconds: offered vs delivered, latency percentiles, relay CPU
    /// per forwarded Mbit and per delivered GB.
    Webrtc(webrtc::WebrtcArgs),
}

/// What every scenario's report offers the printer.
trait Report: serde::Serialize {
    fn to_text(&self) -> String;
    fn valid(&self) -> bool;
}

impl Report for report::PairsReport {
    fn to_text(&self) -> String {
        report::PairsReport::to_text(self)
    }
    fn valid(&self) -> bool {
        self.valid
    }
}

impl Report for report::MeetingReport {
    fn to_text(&self) -> String {
        report::MeetingReport::to_text(self)
    }
    fn valid(&self) -> bool {
        self.valid
    }
}

/// Prints the report (text, or one JSON object) and picks the exit code: 2 when delivered != offered.
fn finish(result: anyhow::Result<impl Report>, json: bool) -> ExitCode {
    match result {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialisable")
                );
            } else {
                print!("{}", report.to_text());
            }
            if report.valid() {
                ExitCode::SUCCESS
            } else {
                if json {
                    eprintln!("delivered != offered: the result does not count");
                }
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Pins this process's main thread to `cpu` before the runtime starts, so every worker thread inherits it
/// (`taskset -p` rather than `sched_setaffinity`, to stay free of `unsafe`).
fn pin_self(cpu: &str) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args(["-p", "-c", cpu, &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("running taskset (util-linux): {e}"))?;
    anyhow::ensure!(status.success(), "taskset -p -c {cpu} failed ({status})");
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let pin_load = match &cli.cmd {
        Cmd::Pairs(a) => a.pin_load.clone(),
        Cmd::Meeting(a) => a.pin_load.clone(),
        Cmd::Webrtc(a) => a.pin_load.clone(),
    };
    if let Some(cpu) = &pin_load {
        if let Err(e) = pin_self(cpu) {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    // Built after pinning: tokio sizes its worker pool from the CPUs this thread may run on.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match cli.cmd {
        Cmd::Pairs(args) => {
            let json = args.json;
            finish(rt.block_on(pairs::run(args)), json)
        }
        Cmd::Meeting(args) => {
            let json = args.json;
            finish(rt.block_on(meeting::run(args)), json)
        }
        Cmd::Webrtc(args) => {
            let json = args.json;
            finish(rt.block_on(webrtc::run(args)), json)
        }
    }
}
