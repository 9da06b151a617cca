//! The HTTP server loop: the API router on hyper, with the connection limits `axum::serve` does not set.
//!
//! - A request's header must arrive within `limits.http_header_timeout`, so a connection that never finishes one
//!   (slowloris) is closed instead of holding a file descriptor forever; an idle keep-alive connection
//!   waiting for its next request is closed after the same time.
//! - At most `limits.max_http_connections` connections at once, and `limits.max_http_connections_per_address`
//!   from one address (IPv4 /32, IPv6 /64); further connections are closed on accept (counted in the log),
//!   so one client cannot exhaust the process's file descriptors and everyone else keeps being served.
//! - On shutdown the listener stops, connections finish their current request and close
//!   ([`GracefulShutdown`]); the caller bounds the wait.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use dashmap::DashMap;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::pairing::limiter::address_key;

/// Connection limits of the HTTP listener.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// How long a client has to send a complete request header (`limits.http_header_timeout`). Bodies
    /// have their own limit (the router's request timeout, 30 s).
    pub header_timeout: Duration,
}

/// Removes its address's count when the connection ends.
struct AddrSlot {
    map: Arc<DashMap<IpAddr, usize>>,
    key: IpAddr,
}

impl Drop for AddrSlot {
    fn drop(&mut self) {
        if let dashmap::Entry::Occupied(mut e) = self.map.entry(self.key) {
            *e.get_mut() -= 1;
            if *e.get() == 0 {
                e.remove();
            }
        }
    }
}

fn take_slot(map: &Arc<DashMap<IpAddr, usize>>, ip: IpAddr, max: usize) -> Option<AddrSlot> {
    let key = address_key(ip);
    let mut n = map.entry(key).or_insert(0);
    if *n >= max {
        return None;
    }
    *n += 1;
    Some(AddrSlot {
        map: map.clone(),
        key,
    })
}

/// Serves `router` on `listener` until `stop` is cancelled, then lets open connections finish their
/// current request (the caller bounds how long it waits for this future).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    stop: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_addr: Arc<DashMap<IpAddr, usize>> = Arc::new(DashMap::new());
    let mut refused: u64 = 0;
    loop {
        let (stream, remote): (_, SocketAddr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: wait a moment, go on.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%remote, refused, "HTTP connection limit reached; closing new connections");
            }
            continue;
        };
        let Some(slot) = take_slot(&per_addr, remote.ip(), limits.max_connections_per_address)
        else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%remote, refused, "HTTP connections per address exceeded; closing new connections");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = router
            .clone()
            .map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo(remote));
                req
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%remote, error = %e, "HTTP connection ended with an error");
            }
            drop((permit, slot));
        });
    }
    graceful.shutdown().await;
}
