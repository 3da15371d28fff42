//! `/v1/tenants/{tenant}/users` and `/template`: the tenant's users as the
//! store has them (paged JSON by key, or the `users export` CSV streamed),
//! and the header row a new file starts from. This module must never write
//! to the store, and never hold a whole tenant in memory.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::caller;
use super::pool::Use;
use super::{ApiError, AppState};
use crate::store::users::{self, Select, User};

#[derive(Serialize, ToSchema)]
pub struct UsersPage {
    #[schema(value_type = Vec<Object>)]
    pub users: Vec<User>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next: Option<String>,
}

/// `GET /v1/tenants/{tenant}/users`
#[utoipa::path(get, path = "/v1/tenants/{tenant}/users", tag = "users",
    params(("tenant" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("cursor" = Option<String>, Query, description = "the `next` of the previous page"),
        ("key" = Option<String>, Query, description = "only the user with this key"),
        ("email" = Option<String>, Query, description = "only the user with this email")),
    responses((status = 200, description = "a page of users (JSON), or with Accept: text/csv every user as `users export` writes them",
            content((UsersPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    caller(&state, req.headers(), req.extensions(), &tenant)?;
    let config = state.config();
    let t = config
        .tenant(&tenant)
        .ok_or_else(ApiError::not_found)?
        .clone();
    let wants_csv = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        return Ok(export_stream(&state, t));
    }
    for k in q.keys() {
        if !["limit", "cursor", "key", "email"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {k:?}: use limit, cursor, key or email"
            )));
        }
    }
    let limit = super::query::page_limit(&q, 100)?;
    let (key, email, cursor) = (
        q.get("key").cloned(),
        q.get("email").cloned(),
        q.get("cursor").cloned(),
    );
    let page = state
        .pool
        .run(Use::Read, move |s| {
            let select = match (&key, &email, &cursor) {
                (Some(k), _, _) => Select::Key(k),
                (None, Some(e), _) => Select::Email(e),
                (None, None, Some(c)) => Select::After(c),
                _ => Select::All,
            };
            let mut out = Vec::new();
            users::users_matching(s, &t.name, &select, limit, |u| {
                out.push(u);
                Ok(())
            })?;
            Ok(out)
        })
        .await?;
    let next = (page.len() as i64 == limit)
        .then(|| page.last().map(|u| u.key.clone()))
        .flatten();
    Ok(Json(UsersPage { users: page, next }).into_response())
}

/// Every user as `users export` writes them, streamed as the store is read.
pub(super) fn export_stream(state: &Arc<AppState>, tenant: crate::config::Tenant) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    let pool = state.pool.clone();
    let file = format!("{}-users.csv", tenant.name);
    tokio::spawn(async move {
        let tx2 = tx.clone();
        let r = pool
            .run(Use::Stream, move |s| {
                let w = ChannelWriter {
                    tx: tx2,
                    buf: Vec::with_capacity(64 * 1024),
                };
                crate::report::export::write_users(s, &tenant, w)
                    .map_err(|e| ApiError::internal("export the users", e))
            })
            .await;
        if r.is_err() {
            let _ = tx
                .send(Err(std::io::Error::other("the export stopped")))
                .await;
        }
    });
    let body = Body::from_stream(tokio_stream_of(rx));
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response()
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Hands the CSV writer's bytes to the response in 64 KiB pieces; a client
/// gone away stops the export at its next write.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(64 * 1024));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}

/// What `/template` gives: documentation only.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub enum TemplateFormat {
    #[serde(rename = "csv")]
    Csv,
    #[serde(rename = "json")]
    Json,
}

/// `GET /v1/tenants/{tenant}/template`
#[utoipa::path(get, path = "/v1/tenants/{tenant}/template", tag = "users",
    params(("tenant" = String, Path), ("format" = Option<TemplateFormat>, Query, description = "csv (default) or json")),
    responses((status = 200, description = "the header row of a new file (CSV), or one JSON object with every field",
            content((String = "text/csv"), (Object = "application/json"))),
        (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn template(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    caller(&state, req.headers(), req.extensions(), &tenant)?;
    let config = state.config();
    let t = config.tenant(&tenant).ok_or_else(ApiError::not_found)?;
    let header_row = t.schema.template_header();
    match q.get("format").map(String::as_str) {
        None | Some("csv") => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(&header_row)
                .map_err(|e| ApiError::internal("write the template", e))?;
            let bytes = w
                .into_inner()
                .map_err(|e| ApiError::internal("write the template", e))?;
            Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], bytes).into_response())
        }
        Some("json") => {
            let obj: serde_json::Map<String, serde_json::Value> = header_row
                .iter()
                .map(|h| (h.to_string(), serde_json::Value::String(String::new())))
                .collect();
            Ok(Json(obj).into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "format={other:?} is not csv or json"
        ))),
    }
}
