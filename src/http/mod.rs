//! The HTTP door (docs/http.md): the import API, job status, users, health,
//! metrics and the OpenAPI document, and the tenant admin's web page
//! (`ui`, docs/ui.md), served by `userdrop serve` on `[http] listen`. Handlers parse, authenticate and call the library the
//! CLI calls ([`crate::intake`], [`crate::worker::approve`],
//! [`crate::report`], [`crate::store`]); an upload becomes a job exactly as
//! an SFTP upload does and the daemon's worker runs it. This module must
//! never hold an import rule, block the runtime on SQLite (the store is
//! reached on the blocking pool), or log a key.

mod auth;
mod changes;
mod error;
mod imports;
mod metrics;
mod openapi;
mod ops;
mod pool;
mod query;
mod serve;
pub mod ui;
mod users;
mod views;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::sftp::bans::Bans;
use crate::sftp::ServerStats;
use crate::worker::Done;

pub use error::ApiError;
pub use metrics::Metrics;
pub use serve::{run, tls_acceptor};

/// A job the HTTP door committed, for the daemon to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub tenant: String,
    pub job: i64,
}

/// What the handlers share.
pub struct AppState {
    config: watch::Receiver<Arc<Config>>,
    pool: Arc<pool::Pool>,
    queue: mpsc::UnboundedSender<Queued>,
    done: broadcast::Sender<Done>,
    bans: Arc<Mutex<Bans>>,
    sftp: Option<ServerStats>,
    /// Whether the SFTP server is up (readiness), when it runs at all.
    sftp_up: Arc<AtomicBool>,
    stopping: CancellationToken,
    /// Jobs a worker runs right now (`running` rather than `queued`).
    running: Arc<Mutex<HashSet<i64>>>,
    metrics: Metrics,
    data_dir: PathBuf,
    /// The web page's sessions and validated files.
    ui: ui::UiState,
}

/// Everything the daemon hands the HTTP door.
pub struct Wiring {
    pub config: watch::Receiver<Arc<Config>>,
    pub queue: mpsc::UnboundedSender<Queued>,
    pub done: broadcast::Sender<Done>,
    pub bans: Arc<Mutex<Bans>>,
    pub sftp: Option<ServerStats>,
    pub sftp_up: Arc<AtomicBool>,
    pub stopping: CancellationToken,
    pub running: Arc<Mutex<HashSet<i64>>>,
}

impl AppState {
    pub fn new(w: Wiring) -> Arc<AppState> {
        let config = w.config.borrow().clone();
        Arc::new(AppState {
            pool: Arc::new(pool::Pool::new(config.db_path())),
            data_dir: config.data_dir.clone(),
            config: w.config,
            queue: w.queue,
            done: w.done,
            bans: w.bans,
            sftp: w.sftp,
            sftp_up: w.sftp_up,
            stopping: w.stopping,
            running: w.running,
            metrics: Metrics::new(),
            ui: ui::UiState::new(),
        })
    }

    pub(crate) fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    fn ready(&self) -> Result<(), String> {
        if self.stopping.is_cancelled() {
            return Err("shutting down".into());
        }
        if self.sftp.is_some() && !self.sftp_up.load(Ordering::Relaxed) {
            return Err("the SFTP server is not listening".into());
        }
        Ok(())
    }
}

/// The routes, with their limits and the request metrics.
pub fn router(state: Arc<AppState>) -> Router {
    let cfg = state.config();
    let http = cfg.http.as_ref().expect("the HTTP door runs with [http]");
    let t = "/v1/tenants/{tenant}";
    let api = Router::new()
        .route(
            &format!("{t}/imports"),
            post(imports::create).get(imports::list),
        )
        .route(&format!("{t}/imports/{{id}}"), get(imports::show))
        .route(&format!("{t}/imports/{{id}}/errors"), get(imports::errors))
        .route(
            &format!("{t}/imports/{{id}}/approve"),
            post(imports::approve),
        )
        .route(&format!("{t}/template"), get(users::template))
        .route(&format!("{t}/users"), get(users::list))
        .route(&format!("{t}/changes"), get(changes::list))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::refuse_banned,
        ));
    Router::new()
        .merge(api)
        .merge(ui::routes(state.clone()))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(openapi::document))
        .fallback(ops::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            usize::try_from(http.max_upload).unwrap_or(usize::MAX),
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            http.request_timeout,
        ))
        .with_state(state)
}

/// The client's address, as the connection gave it.
pub(crate) fn peer(parts: &axum::http::Extensions) -> Option<SocketAddr> {
    parts
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}
