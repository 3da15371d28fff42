//! The tenant admin's web page (docs/ui.md), served under `/ui/` on the
//! HTTP API's listener: sign in with a tenant's SFTP account, see and
//! download the users, validate and load a file, follow the jobs and
//! approve a held sync. Server-rendered HTML (maud), one stylesheet, an
//! optional script that only shows upload progress.
//!
//! Its role: turn form posts into calls of the library the CLI and the API
//! call ([`crate::import::run`] for a dry run, [`crate::intake::submit`] for
//! a load, [`crate::worker::approve`], [`crate::report`],
//! [`crate::store::browse`]) and render what they answer. What it must
//! never do: hold an import rule, show a customer's value unescaped, block
//! the runtime on SQLite or argon2, serve a tenant's page to another
//! tenant's session (another tenant's job or user is a 404), or accept a
//! form post without its session's CSRF token.

mod error;
mod jobs;
mod page;
mod session;
mod signin;
mod upload;
mod users;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use super::AppState;

pub use error::UiError;

/// What the page keeps between requests: sessions and validated files.
/// Both live in memory only: a restart signs everyone out and forgets
/// files validated but not loaded.
pub struct UiState {
    sessions: session::Sessions,
    validations: upload::Validations,
    /// An argon2id hash no password matches, checked for an unknown user so
    /// that a wrong user costs what a wrong password does.
    dummy_hash: std::sync::OnceLock<String>,
}

impl UiState {
    pub fn new() -> UiState {
        UiState {
            sessions: session::Sessions::default(),
            validations: upload::Validations::default(),
            dummy_hash: std::sync::OnceLock::new(),
        }
    }
}

impl Default for UiState {
    fn default() -> Self {
        UiState::new()
    }
}

/// The page's routes, under `/ui`.
pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(signin::show))
        .route("/ui/signin", post(signin::submit))
        .route("/ui/signout", post(signin::sign_out))
        .route("/ui/users", get(users::list))
        .route("/ui/users.csv", get(users::download))
        .route("/ui/users/{key}", get(users::show))
        .route("/ui/upload", get(upload::form))
        .route("/ui/upload/validate", post(upload::validate))
        .route("/ui/upload/{token}", get(upload::show))
        .route("/ui/upload/{token}/load", post(upload::load))
        .route("/ui/jobs", get(jobs::list))
        .route("/ui/jobs/{id}", get(jobs::show))
        .route("/ui/jobs/{id}/failed.csv", get(jobs::failed_csv))
        .route("/ui/jobs/{id}/approve", post(jobs::approve))
        .route("/ui/static/style.css", get(page::style))
        .route("/ui/static/ui.js", get(page::script))
        .layer(axum::middleware::from_fn_with_state(state, refuse_banned))
        .layer(axum::middleware::from_fn(headers))
}

/// A banned address gets this page for every request, as the API refuses
/// it every request: the same per-address ban as SFTP and API keys.
async fn refuse_banned(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let Some(addr) = super::peer(req.extensions()) {
        let left = crate::worker::lock(&state.bans).banned(addr.ip(), Instant::now());
        if let Some(left) = left {
            let secs = left.as_secs().max(1);
            let mut r = UiError::Banned(secs).into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return r;
        }
    }
    next.run(req).await
}

/// Headers every page answers with: no caching, no framing, scripts and
/// styles from this server only; and the time the server took
/// (`Server-Timing`, which the benchmark reads).
async fn headers(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: header::HeaderName, v: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(h, header::CACHE_CONTROL, "no-store");
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        h.insert("server-timing", v);
    }
    r
}

/// A redirect after a form post (303: the browser GETs the target, so a
/// reload never posts again).
fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}
