//! The `assist-relay` command: `serve` runs the relay and its API; `technician`, `customer` and `meeting` are
//! the demo clients. Parsing and assembly live in the library; this file only wires them to the process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use assist_relay::client::{customer, meeting, technician};
use assist_relay::config::ConfigLayer;
use assist_relay::server::Server;

#[derive(Parser)]
#[command(
    name = "assist-relay",
    version,
    about = "Real-time remote-assistance relay over QUIC"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the relay, the HTTP API and the metrics endpoint (self-signed TLS and keys in the data dir).
    Serve {
        /// TOML config file (see config/assist-relay.example.toml); flags and environment override it.
        #[arg(long, env = "ASSIST_RELAY_CONFIG", hide_env_values = true)]
        config: Option<PathBuf>,
        /// Serve only the HTTP API (tickets, accounts, knowledge base), without the QUIC relay (the same as
        /// `--relay-enabled false`).
        #[arg(long)]
        no_relay: bool,
        #[command(flatten)]
        layer: Box<ConfigLayer>,
    },
    /// Demo technician: create a session, print the code, save the customer's screen.
    Technician(technician::TechnicianArgs),
    /// Demo customer: join with a code and share a recording.
    Customer(customer::CustomerArgs),
    /// Demo meeting client: enter with the meeting code or a join token; watch, save and share screens,
    /// chat, send and accept files.
    Meeting(meeting::MeetingArgs),
}

async fn serve(config: Option<PathBuf>, flags: ConfigLayer) -> anyhow::Result<()> {
    let file = match &config {
        Some(path) => ConfigLayer::from_file(path)?,
        None => ConfigLayer::default(),
    };
    let cfg = file.merge(flags).resolve()?;
    let server = Server::load(cfg).await?;
    let shutdown = server.shutdown_token();
    println!(
        "cert-sha256: {}",
        assist_relay::transport::tls::fingerprint_hex(&server.cert_sha256())
    );
    println!("{}", server.pages_line());
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received");
        shutdown.cancel();
    });
    server.run().await?;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// The command line, with every `serve` value named as the derived ones are (`<WEBRTC_LISTEN>`): config
/// keys whose flag carries its section get their id from the flag, which `--help` would print as is.
fn parse_cli() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let cmd = Cli::command().mut_subcommand("serve", |serve| {
        serve.mut_args(|a| {
            let name = a.get_id().as_str().replace('-', "_").to_uppercase();
            if a.get_action().takes_values() {
                a.value_name(name)
            } else {
                a
            }
        })
    });
    // Every ASSIST_RELAY_* variable must be one some command reads (a typo would be ignored otherwise).
    fn envs(c: &clap::Command, out: &mut Vec<String>) {
        out.extend(
            c.get_arguments()
                .filter_map(|a| a.get_env()?.to_str().map(str::to_string)),
        );
        c.get_subcommands().for_each(|s| envs(s, out));
    }
    let mut known = Vec::new();
    envs(&cmd, &mut known);
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    let set = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
    if let Err(e) = assist_relay::config::check_env(set, &known) {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    // A value refused from an environment variable is reported under the variable's name, not the flag's.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = cmd.clone().try_get_matches_from(&argv).unwrap_or_else(|e| {
        let from_env =
            assist_relay::config::env_value_error(&cmd, &e, &argv, |n| std::env::var_os(n));
        if let Some(message) = from_env {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
        e.exit()
    });
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = parse_cli();
    // str0m warns about every odd SDP or packet a peer sends, before the peer is even authenticated: the
    // relay logs its own line for those, so str0m's own lines wait for RUST_LOG.
    let default_level = if matches!(cli.cmd, Cmd::Serve { .. }) {
        "info,str0m=error,dimpl=error,sctp_proto=error"
    } else {
        "warn,str0m=error,dimpl=error,sctp_proto=error"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_level.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.cmd {
        Cmd::Serve {
            config,
            no_relay,
            mut layer,
        } => {
            if no_relay {
                layer.server.relay_enabled = Some(false);
            }
            serve(config, *layer).await
        }
        // Ctrl-C or SIGTERM ends a demo client's session cleanly instead of leaving the other side waiting.
        Cmd::Technician(args) => technician::run(args, wait_for_signal())
            .await
            .map(drop)
            .map_err(Into::into),
        Cmd::Customer(args) => customer::run(args, wait_for_signal())
            .await
            .map(drop)
            .map_err(Into::into),
        Cmd::Meeting(args) => meeting::run(args, wait_for_signal())
            .await
            .map(drop)
            .map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The errors' own messages already name their causes; `{:#}` would repeat them.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
