//! `loadtest`: load scenarios for assist-relay. Each scenario offers a known load, checks that what was
//! delivered equals what was offered (otherwise the numbers do not count), and reports HDR-histogram latency
//! percentiles and the relay's CPU per delivered GB, as text or as one JSON object (`--json`).
//!
//! Scenarios:
//! - `pairs` ([`pairs`]): N remote-assist sessions, each a customer streaming to its technician, optionally
//!   compared with the same load over plain QUIC (`--direct`).
//!
//! The relay under test runs as a child process (`assist-relay serve` from the same target directory) so its
//! CPU is measured alone; `--pin-relay`/`--pin-load` put it and the load generator on different CPUs.
#![forbid(unsafe_code)]

mod load;
mod pairs;
mod relay_proc;
mod report;

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
    let Cmd::Pairs(args) = cli.cmd;
    if let Some(cpu) = &args.pin_load {
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
    let json = args.json;
    match rt.block_on(pairs::run(args)) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialisable")
                );
            } else {
                print!("{}", report.to_text());
            }
            if report.valid {
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
