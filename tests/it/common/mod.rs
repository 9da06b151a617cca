//! A real relay on loopback port 0 with a manual clock, and helpers to join it as either role.

pub mod api;
pub mod meeting;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use assist_relay::api::CreatedSession;
use assist_relay::client::{self, technician, ClientError, Session};
use assist_relay::clock::ManualClock;
use assist_relay::config::ConfigLayer;
use assist_relay::protocol::{ErrorCode, Hello, ServerMsg};
use assist_relay::server::Server;
use assist_relay::transport::tls::ServerTrust;
use tokio_util::sync::CancellationToken;

/// Every test body runs under this limit, so a hang fails instead of stalling CI.
pub const TEST_LIMIT: Duration = Duration::from_secs(90);

pub struct TestRelay {
    pub quic: SocketAddr,
    /// The WebRTC UDP address (`None` when disabled).
    pub webrtc: Option<SocketAddr>,
    pub api: String,
    pub metrics: String,
    pub key: String,
    pub trust: ServerTrust,
    pub clock: ManualClock,
    /// The relay inside the server (meetings are created on it directly in relay tests).
    pub relay: Arc<assist_relay::relay::Relay>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

impl TestRelay {
    pub async fn start() -> TestRelay {
        TestRelay::start_with(|_| {}).await
    }
    /// Starts a relay whose config layer `tweak` may change.
    pub async fn start_with(tweak: impl FnOnce(&mut ConfigLayer)) -> TestRelay {
        TestRelay::start_in(tempfile::tempdir().unwrap(), tweak).await
    }

    /// Shuts the server down gracefully and starts a new one on the same data directory (defaults), as an
    /// operator's restart does.
    pub async fn restart(self) -> TestRelay {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
        TestRelay::start_in(self._dir, |_| {}).await
    }

    async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut ConfigLayer)) -> TestRelay {
        init_tracing();
        let mut layer = ConfigLayer::default();
        layer.server.data_dir = Some(dir.path().join("data"));
        for a in [
            &mut layer.server.quic_listen,
            &mut layer.server.http_listen,
            &mut layer.server.metrics_listen,
            &mut layer.webrtc.listen,
        ] {
            *a = Some("127.0.0.1:0".parse().unwrap());
        }
        layer.accounts.bootstrap_password = Some(api::ADMIN_PASSWORD.to_string());
        tweak(&mut layer);
        let clock = ManualClock::new();
        let server = Server::load_with_clock(layer.resolve().unwrap(), Arc::new(clock.clone()))
            .await
            .unwrap();
        let relay = TestRelay {
            quic: server.quic_addr().expect("relay enabled"),
            webrtc: server.webrtc_addr(),
            api: format!("http://{}", server.http_addr()),
            metrics: format!("http://{}/metrics", server.metrics_addr()),
            key: server.operator_key().to_string(),
            trust: ServerTrust::Pin(server.cert_sha256()),
            clock,
            relay: server.relay.clone(),
            shutdown: server.shutdown_token(),
            task: tokio::spawn(async move { server.run().await.unwrap() }),
            _dir: dir,
        };
        // The HTTP server starts inside run(): wait until it answers.
        for _ in 0..200 {
            if reqwest::get(format!("{}/healthz", relay.api)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        relay
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    pub async fn create(&self) -> CreatedSession {
        technician::create_session(&self.api, &self.key)
            .await
            .unwrap()
    }

    pub fn endpoint(&self, bind: &str) -> quinn::Endpoint {
        client::endpoint(&self.trust, bind.parse().unwrap()).unwrap()
    }

    pub async fn join_as(&self, bind: &str, hello: Hello) -> Result<Session, ClientError> {
        client::join(&self.endpoint(bind), self.quic, "localhost", hello).await
    }

    pub async fn technician(&self, s: &CreatedSession) -> Session {
        self.join_as(
            "127.0.0.1:0",
            Hello::Technician {
                token: s.technician_token.clone(),
            },
        )
        .await
        .unwrap()
    }

    pub async fn customer(&self, code: &str, allow_control: bool) -> Result<Session, ClientError> {
        self.join_as(
            "127.0.0.1:0",
            Hello::Customer {
                code: code.to_string(),
                allow_control,
            },
        )
        .await
    }

    /// A paired technician and customer.
    pub async fn pair(&self, allow_control: bool) -> (CreatedSession, Session, Session) {
        let s = self.create().await;
        let mut tech = self.technician(&s).await;
        let cust = self.customer(&s.code_display, allow_control).await.unwrap();
        // The technician hears the customer join (and its consent) before anything else of interest.
        expect_msg(&mut tech, |m| matches!(m, ServerMsg::Control { .. })).await;
        (s, tech, cust)
    }

    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(&self.metrics)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// Reads control messages until one matches (bounded by time).
pub async fn expect_msg(s: &mut Session, want: impl Fn(&ServerMsg) -> bool) -> ServerMsg {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match s.rx.recv().await {
                Ok(Some(m)) if want(&m) => return m,
                Ok(Some(_)) => continue,
                other => panic!("control stream ended while waiting: {other:?}"),
            }
        }
    })
    .await
    .expect("expected message did not arrive")
}

/// Waits for the relay to close the connection and returns the code.
pub async fn closed_with(s: &Session) -> ErrorCode {
    tokio::time::timeout(Duration::from_secs(20), s.closed())
        .await
        .expect("connection was not closed")
        .code()
        .expect("closed with an application code")
}

/// The error code of a refused join.
pub fn refused(r: Result<Session, ClientError>) -> ErrorCode {
    match r {
        Ok(_) => panic!("join unexpectedly accepted"),
        Err(e) => e.code().unwrap_or_else(|| panic!("no close code: {e}")),
    }
}

/// ffmpeg must decode the file without a single error. CI installs ffmpeg; elsewhere a missing ffmpeg skips.
pub fn ffmpeg_decodes(path: &std::path::Path) {
    let out = match std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
    {
        Ok(o) => o,
        Err(_) if std::env::var_os("CI").is_none() => {
            eprintln!("ffmpeg not found: skipping the decode check (CI requires it)");
            return;
        }
        Err(e) => panic!("ffmpeg is required in CI: {e}"),
    };
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
