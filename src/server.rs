//! Assembly. [`Server::load`] does start-up in this order, failing with a clear message at the first problem:
//! 1. data directory (created, mode 0700 on Unix);
//! 2. secrets: the token key (`relay.key`) and the operator key (`operator.key`, unless configured),
//!    created on first start;
//! 3. TLS identity (configured PEM, or a self-signed certificate made once in `data/tls/`);
//! 4. the ticket database (SQLite in the data directory unless configured; migrations applied), and on an
//!    empty database the first administrator, whose one-time password is logged once;
//! 5. metrics registry and the relay;
//! 6. sockets: QUIC, HTTP API, metrics (port 0 picks a free port; the bound addresses are logged).
//!
//! [`Server::run`] serves until the shutdown token is cancelled (SIGINT/SIGTERM in `main`), then: stop
//! accepting, end every session with `going_away`, wait up to `shutdown_grace` for peers to be told, close
//! the endpoint, return.

use std::future::IntoFuture;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::accounts::{Accounts, Bootstrap};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::metrics::RelayMetrics;
use crate::protocol::ErrorCode;
use crate::relay::Relay;
use crate::store::Store;
use crate::tickets::desk::Desk;
use crate::tickets::notify::Hub;
use crate::transport::webrtc::WebRtc;
use crate::transport::{quic, tls, varint};

/// After `server.shutdown_grace`, how long the last closes and HTTP requests get before they are cut.
pub const SHUTDOWN_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A file in the data directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A listener could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// QUIC setup failed.
    #[error("QUIC setup: {0}")]
    Quic(String),
    /// The database could not be opened or migrated.
    #[error("{path}: {source}")]
    Store {
        path: PathBuf,
        source: crate::store::StoreError,
    },
    /// The first administrator could not be created.
    #[error("creating the first administrator: {0}")]
    Bootstrap(crate::accounts::AccountError),
}

/// Writes a secret file readable only by its owner.
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(data)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ServerError + '_ {
    move |e| ServerError::Io {
        path: path.to_owned(),
        source: e,
    }
}

/// Reads a secret from `dir/name`, creating it with `make` on first start.
fn load_or_create_secret(
    dir: &Path,
    name: &str,
    make: impl FnOnce() -> String,
) -> Result<String, ServerError> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Ok(_) | Err(_)
            if !path.exists()
                || std::fs::metadata(&path)
                    .map(|m| m.len() == 0)
                    .unwrap_or(false) =>
        {
            let s = make();
            write_private(&path, s.as_bytes()).map_err(io_err(&path))?;
            tracing::info!(path = %path.display(), "created {name}");
            Ok(s)
        }
        Ok(_) => Ok(String::new()),
        Err(e) => Err(ServerError::Io { path, source: e }),
    }
}

/// Brings back the rooms of meetings scheduled before a restart (their codes and tokens keep working); one
/// that cannot come back is logged and left ended.
async fn restore_meetings(store: &crate::store::Store, relay: &Arc<Relay>) {
    let now = crate::store::timestamp(relay.clock.wall());
    let open = match crate::meetings::open(store, &now).await {
        Ok(open) => open,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the scheduled meetings; they are not restored");
            return;
        }
    };
    let mut restored = 0;
    for (id, code, starts_at, ends_at) in open {
        let Some(sid) = crate::core::SessionId::parse(&id) else {
            continue;
        };
        match relay.restore_meeting(sid, &code, starts_at, ends_at) {
            Ok(()) => restored += 1,
            Err(e) => tracing::warn!(meeting = %id, error = %e, "meeting not restored"),
        }
    }
    if restored > 0 {
        tracing::info!(meetings = restored, "scheduled meetings restored");
    }
}

/// A loaded, bound server. See the module documentation.
pub struct Server {
    pub cfg: Arc<Config>,
    pub accounts: Accounts,
    pub desk: Desk,
    pub relay: Arc<Relay>,
    pub registry: prometheus::Registry,
    endpoint: Option<quinn::Endpoint>,
    webrtc: Option<Arc<WebRtc>>,
    http: TcpListener,
    metrics: TcpListener,
    cert_sha256: [u8; 32],
    operator_key: String,
    shutdown: CancellationToken,
}

impl Server {
    /// Loads with the system clock.
    pub async fn load(cfg: Config) -> Result<Server, ServerError> {
        Server::load_with_clock(cfg, Arc::new(SystemClock)).await
    }

    /// Loads with the given clock (tests pass a [`crate::clock::ManualClock`]).
    pub async fn load_with_clock(
        cfg: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, ServerError> {
        let dir = cfg.server.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        }
        let token_secret = load_or_create_secret(&dir, "relay.key", || {
            data_encoding::HEXLOWER.encode(&crate::pairing::TokenKey::generate_secret())
        })?;
        let operator_key = if cfg.server.operator_key.is_empty() {
            load_or_create_secret(&dir, "operator.key", || {
                data_encoding::BASE64URL_NOPAD.encode(&crate::pairing::TokenKey::generate_secret())
            })?
        } else {
            cfg.server.operator_key.clone()
        };
        let identity = tls::load_or_create_identity(&cfg.tls, &dir)?;
        let cert_sha256 = identity.sha256();

        let db_path = if cfg.tickets.database.is_empty() {
            dir.join("assist-relay.db")
        } else {
            PathBuf::from(&cfg.tickets.database)
        };
        let store = Store::open(&db_path)
            .await
            .map_err(|source| ServerError::Store {
                path: db_path.clone(),
                source,
            })?;
        let accounts = Accounts::new(store, clock.clone(), cfg.accounts.clone());

        let registry = prometheus::Registry::new();
        let cfg = Arc::new(cfg);
        let relay = Relay::new(
            cfg.clone(),
            clock.clone(),
            token_secret.as_bytes(),
            RelayMetrics::register(&registry),
        );

        let endpoint = if cfg.server.relay_enabled {
            Some(quic::bind(&cfg, &identity)?)
        } else {
            None
        };
        let webrtc = if cfg.server.relay_enabled && cfg.webrtc.enabled {
            let addr = cfg.webrtc.listen;
            Some(
                WebRtc::bind(&cfg, relay.clone()).map_err(|e| ServerError::Bind {
                    what: "WebRTC",
                    addr,
                    source: e,
                })?,
            )
        } else {
            None
        };
        if cfg.server.relay_enabled {
            restore_meetings(&accounts.store, &relay).await;
        }
        let bind_tcp = |addr: SocketAddr, what: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|e| ServerError::Bind {
                    what,
                    addr,
                    source: e,
                })
        };
        let http = bind_tcp(cfg.server.http_listen, "HTTP API").await?;
        let metrics = bind_tcp(cfg.server.metrics_listen, "metrics").await?;
        // The first administrator only once every listener is bound: a start that fails on a busy port
        // must not spend the one-time password it would print.
        match accounts.bootstrap().await.map_err(ServerError::Bootstrap)? {
            Bootstrap::Generated(password) => tracing::warn!(
                login = "admin",
                one_time_password = %password,
                "created the first administrator; this password is shown once and must be changed at first login"
            ),
            Bootstrap::Configured => tracing::info!(
                login = "admin",
                "created the first administrator with the configured password"
            ),
            Bootstrap::Existing => {}
        }
        let desk = Desk {
            store: accounts.store.clone(),
            clock: clock.clone(),
            zone: crate::store::parse_utc_offset(&cfg.tickets.time_zone)
                .expect("validated with the config"),
            hub: Hub::default(),
            sender: accounts.sender.clone(),
        };
        let server = Server {
            desk,
            accounts,
            shutdown: relay.shutdown.clone(),
            cfg,
            relay,
            registry,
            endpoint,
            webrtc,
            http,
            metrics,
            cert_sha256,
            operator_key,
        };
        tracing::info!(
            quic = %server.quic_addr().map_or("disabled".to_string(), |a| a.to_string()),
            webrtc = %server.webrtc_addr().map_or("disabled".to_string(), |a| a.to_string()),
            webrtc_candidate = %server.webrtc.as_ref().map_or("-".to_string(), |w| w.candidate_addr().to_string()),
            http = %server.http_addr(),
            metrics = %server.metrics_addr(),
            cert_sha256 = %tls::fingerprint_hex(&cert_sha256),
            cert = %identity.source.display(),
            "listening"
        );
        Ok(server)
    }

    /// The bound QUIC address (`None` when the relay is disabled).
    pub fn quic_addr(&self) -> Option<SocketAddr> {
        self.endpoint
            .as_ref()
            .map(|e| e.local_addr().expect("bound socket"))
    }
    /// The bound WebRTC UDP address (`None` when the relay or WebRTC is disabled).
    pub fn webrtc_addr(&self) -> Option<SocketAddr> {
        self.webrtc.as_ref().map(|w| w.local_addr())
    }
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("bound socket")
    }
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics.local_addr().expect("bound socket")
    }
    /// Where a browser on this machine finds the pages, as one line for the startup output.
    pub fn pages_line(&self) -> String {
        pages_line(self.http_addr())
    }
    pub fn cert_sha256(&self) -> [u8; 32] {
        self.cert_sha256
    }
    pub fn operator_key(&self) -> &str {
        &self.operator_key
    }

    /// Cancel it to shut the server down gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The relay address handed to clients.
    pub fn advertised_quic(&self) -> String {
        if self.cfg.server.quic_advertise.is_empty() {
            format!("127.0.0.1:{}", self.quic_addr().map_or(0, |a| a.port()))
        } else {
            self.cfg.server.quic_advertise.clone()
        }
    }

    /// Serves until the shutdown token is cancelled, then shuts down as described in the module docs.
    pub async fn run(self) -> Result<(), ServerError> {
        let cancel = self.shutdown.clone();
        let api = crate::api::router(crate::api::ApiState {
            relay: self.relay.clone(),
            accounts: self.accounts.clone(),
            desk: self.desk.clone(),
            operator_key: self.operator_key.clone(),
            quic_advertise: self.advertised_quic(),
            cert_sha256: tls::fingerprint_hex(&self.cert_sha256),
            webrtc: self.webrtc.clone(),
        });
        if let Some(w) = &self.webrtc {
            w.spawn(cancel.clone());
        }
        let metrics = crate::api::metrics_router(self.registry.clone());
        self.relay.spawn_sweeper();
        let write_back_stop = CancellationToken::new();
        let write_back = tokio::spawn(crate::api::tickets::write_back_sessions(
            self.desk.clone(),
            self.relay.subscribe_ended(),
            write_back_stop.clone(),
        ));
        // The API keeps answering through the grace period, so load balancers see /readyz turn 503
        // (`going_away`) while sessions drain; it stops with the relay.
        let http_stop = CancellationToken::new();
        let limits = crate::api::serve::HttpLimits {
            max_connections: self.cfg.limits.max_http_connections,
            max_connections_per_address: self.cfg.limits.max_http_connections_per_address,
            header_timeout: self.cfg.limits.http_header_timeout.0,
        };
        let http = tokio::spawn({
            let stop = http_stop.clone();
            async move {
                crate::api::serve::serve(self.http, api, limits, stop).await;
                Ok::<(), std::io::Error>(())
            }
        });
        let metrics_task = tokio::spawn(
            axum::serve(self.metrics, metrics)
                .with_graceful_shutdown(cancel.clone().cancelled_owned())
                .into_future(),
        );
        let Some(endpoint) = self.endpoint.clone() else {
            // API only: serve until shutdown, then let requests in flight finish within the linger.
            cancel.cancelled().await;
            tracing::info!("shutting down");
            http_stop.cancel();
            let linger = tokio::time::Instant::now() + SHUTDOWN_LINGER;
            for task in [http, metrics_task] {
                let abort = task.abort_handle();
                if tokio::time::timeout_at(linger, task).await.is_err() {
                    abort.abort();
                }
            }
            tracing::info!("stopped");
            return Ok(());
        };
        quic::serve(endpoint.clone(), self.relay.clone(), cancel.clone()).await;
        // Stop accepting: from now on every new handshake is refused at once (CONNECTION_REFUSED).
        tokio::spawn(quic::refuse_all(endpoint.clone()));

        // Shutdown: sessions end with going_away (each room closes its peers after flushing).
        let grace = self.cfg.server.shutdown_grace.0;
        tracing::info!(sessions = self.relay.session_count(), grace = ?grace, "shutting down");
        self.relay.tasks.close();
        let drained = tokio::time::timeout(grace, self.relay.tasks.wait())
            .await
            .is_ok();
        if !drained {
            tracing::warn!(
                sessions = self.relay.session_count(),
                "grace period over; cutting remaining connections"
            );
        }
        endpoint.close(varint(ErrorCode::GoingAway), b"relay shutting down");
        http_stop.cancel();
        // Every session has ended: their ends are queued for the tickets' processing records.
        write_back_stop.cancel();
        // After the grace period, one bounded linger for the closes to be acknowledged and for HTTP requests
        // in flight to finish; then whatever is left is cut, so the process exits within grace + linger.
        let linger = tokio::time::Instant::now() + SHUTDOWN_LINGER;
        let _ = tokio::time::timeout_at(linger, endpoint.wait_idle()).await;
        if tokio::time::timeout_at(linger, write_back).await.is_err() {
            tracing::warn!("session ends still unrecorded after the linger");
        }
        for (name, task) in [("http", http), ("metrics", metrics_task)] {
            let abort = task.abort_handle();
            if tokio::time::timeout_at(linger, task).await.is_err() {
                abort.abort();
                tracing::warn!(listener = name, "requests still open after the linger; cut");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// `pages: http://127.0.0.1:8080/customer  /technician  /meeting` for the bound HTTP address; a wildcard
/// bind (0.0.0.0, [::]) is shown as loopback, the address a browser on this machine uses.
fn pages_line(http: SocketAddr) -> String {
    let mut at = http;
    let wildcard = at.ip().is_unspecified();
    if wildcard {
        at.set_ip(match at {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let note = match wildcard {
        true => " (listening on every address: other machines use this host's address, over https)",
        false => "",
    };
    format!("pages: http://{at}/customer  /technician  /meeting{note}")
}

#[cfg(test)]
mod pages_tests {
    use super::pages_line;

    #[test]
    fn the_pages_line_gives_a_url_a_local_browser_opens() {
        let line = |a: &str| pages_line(a.parse().unwrap());
        assert_eq!(
            line("127.0.0.1:8080"),
            "pages: http://127.0.0.1:8080/customer  /technician  /meeting"
        );
        assert!(line("0.0.0.0:8080").starts_with(
            "pages: http://127.0.0.1:8080/customer  /technician  /meeting (listening on every"
        ));
        assert!(line("[::]:80").starts_with("pages: http://[::1]:80/customer"));
        assert_eq!(
            line("[2001:db8::1]:8080"),
            "pages: http://[2001:db8::1]:8080/customer  /technician  /meeting"
        );
    }
}
