//! The operator's endpoints: `/healthz` (the process answers), `/readyz`
//! (the store is writable, SFTP listens, not shutting down) and `/metrics`
//! (Prometheus text). This module must never need an API key: a monitoring
//! system calls it, `/metrics` alone can want `[http] metrics_token`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::pool::Use;
use super::{ApiError, AppState};

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or what is wrong.
    pub status: String,
}

/// `GET /healthz`
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// `GET /readyz`
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let problem = match state.ready() {
        Err(p) => Some(p),
        Ok(()) => {
            let dir = state.data_dir.clone();
            let store = state
                .pool
                .run(Use::Read, |s| {
                    crate::store::jobs::list(s, None, 1)?;
                    Ok(())
                })
                .await;
            let writable = tokio::task::spawn_blocking(move || writable(&dir))
                .await
                .unwrap_or(false);
            match (store, writable) {
                (Err(_), _) => Some("the store cannot be read".to_string()),
                (_, false) => Some("the data directory is not writable".to_string()),
                _ => None,
            }
        }
    };
    match problem {
        None => Json(Health {
            status: "ok".into(),
        })
        .into_response(),
        Some(p) => (StatusCode::SERVICE_UNAVAILABLE, Json(Health { status: p })).into_response(),
    }
}

/// Whether a file can be created in the data directory (a full or
/// read-only disk is not ready).
fn writable(dir: &std::path::Path) -> bool {
    let probe = dir.join(".ready-probe");
    let ok = std::fs::write(&probe, b"ok").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

/// `GET /metrics`
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, body = super::error::ErrorBody)))]
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    req: Request,
) -> Result<Response, ApiError> {
    let config = state.config();
    if let Some(want) = config
        .http
        .as_ref()
        .and_then(|h| h.metrics_token.as_deref())
    {
        let sent = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(sent.as_bytes().ct_eq(want.as_bytes())) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send [http] metrics_token as Authorization: Bearer TOKEN",
            ));
        }
    }
    let text = super::metrics::render(&state).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such path; the API is described at /v1/openapi.json",
    )
}
