//! The HTTP listener: accepts connections, cuts a client that does not send
//! its request head within `header_timeout` (a slowloris holds nothing),
//! serves the router over HTTP/1.1 with keep-alive, and at shutdown stops
//! accepting and lets requests in flight (an upload, a `wait=true`) finish.
//! This module must never look inside a request: the router does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::AppState;

/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A poisoned lock only means a request panicked; the data under it is
/// whole.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves until the state's stop token is cancelled.
pub async fn run(listener: TcpListener, state: Arc<AppState>) {
    let config = state.config();
    let header_timeout = config
        .http
        .as_ref()
        .map_or(Duration::from_secs(10), |h| h.header_timeout);
    let app = super::router(state.clone());
    super::metrics::watch_jobs(state.clone());
    let graceful = GracefulShutdown::new();
    let stop = state.stopping.clone();
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("HTTP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let svc =
            app.clone()
                .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo::<SocketAddr>(peer));
                    req.map(axum::body::Body::new)
                });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(address = %peer, "HTTP connection ended: {e}");
            }
        });
    }
    tracing::info!("HTTP: no new connections; letting requests in flight finish");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTP: requests still running after the shutdown grace were dropped");
    }
}
