//! `GET /v1/tenants/{tenant}/changes`: the change feed over HTTP, with a
//! long poll (`wait=30s`) that answers as soon as a job of this daemon
//! finishes. The page itself is [`crate::feed::page`], as `userdrop
//! changes` prints it. This module must never read the ledger by itself.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::Json;

use super::auth::caller;
use super::pool::Use;
use super::{ApiError, AppState};
use crate::feed::{self, FeedError, FeedPage};

/// The longest a long poll waits.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// `GET /v1/tenants/{tenant}/changes`
#[utoipa::path(get, path = "/v1/tenants/{tenant}/changes", tag = "changes",
    params(("tenant" = String, Path),
        ("after" = Option<i64>, Query, minimum = 0, description = "the `next` of the previous page (0: from the start)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("wait" = Option<String>, Query, pattern = r"^([0-9]{1,6}(ms|s|m)?)?$",
            description = "when nothing is new, wait up to this long for a change: 30s, 500ms, 1m or seconds (longer waits are cut to 60s)")),
    responses((status = 200, description = "changes after the cursor, oldest first", body = FeedPage),
        (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody),
        (status = 410, description = "the cursor is older than retention kept: read the users again", body = super::error::ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Json<FeedPage>, ApiError> {
    caller(&state, req.headers(), req.extensions(), &tenant)?;
    state
        .config()
        .tenant(&tenant)
        .ok_or_else(ApiError::not_found)?;
    for k in q.keys() {
        if !["after", "limit", "wait"].contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {k:?}: use after, limit or wait"
            )));
        }
    }
    let after = match q.get("after") {
        None => 0,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "after={v:?} is not a change number: pass 0, or the `next` of the previous page"
                )))
            }
        },
    };
    let limit = super::query::page_limit(&q, 100)?;
    let wait = match q.get("wait") {
        None => Duration::ZERO,
        Some(v) => wait_of(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "wait={v:?} is not a duration: write it like 30s (or 500ms, 1m); at most 60s is waited"
            ))
        })?,
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Subscribed before reading, so a job that ends in between still
        // wakes the wait below.
        let mut done = state.done.subscribe();
        let t = tenant.clone();
        let page = state
            .pool
            .run(Use::Read, move |s| {
                feed::page(s, &t, after, limit).map_err(|e| match e {
                    e @ FeedError::Behind { .. } => {
                        ApiError::new(StatusCode::GONE, "behind_retention", e.to_string())
                    }
                    FeedError::Store(e) => e.into(),
                })
            })
            .await?;
        if !page.changes.is_empty()
            || tokio::time::Instant::now() >= deadline
            || state.stopping.is_cancelled()
        {
            return Ok(Json(page));
        }
        tokio::select! {
            _ = done.recv() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = state.stopping.cancelled() => {}
        }
    }
}

/// `30s`, `500ms`, `1m`, plain seconds or nothing (no wait), cut to
/// [`MAX_WAIT`].
fn wait_of(text: &str) -> Option<Duration> {
    let text = text.trim();
    let digits = text.len() - text.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return text.is_empty().then_some(Duration::ZERO);
    }
    let n: u64 = number.parse().ok()?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    };
    Some(d.min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_read_and_cut_to_a_minute() {
        assert_eq!(wait_of(""), Some(Duration::ZERO));
        assert_eq!(wait_of("30s"), Some(Duration::from_secs(30)));
        assert_eq!(wait_of("5"), Some(Duration::from_secs(5)));
        assert_eq!(wait_of("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(wait_of("999999m"), Some(MAX_WAIT));
        assert_eq!(wait_of("s"), None);
        assert_eq!(wait_of("3h"), None);
        assert_eq!(wait_of("99999999999999999999"), None);
    }
}
