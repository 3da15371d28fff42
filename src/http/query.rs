//! Query parameters every paged list reads alike (`limit`, a numeric
//! cursor), with the same messages, so the lists of jobs, errors, users and
//! changes cannot drift apart. This module must never know what a page
//! holds.

use std::collections::HashMap;

use super::ApiError;

/// The most items one page holds, for every list.
pub const MAX_PAGE: i64 = 1000;

/// `limit`, 1 to [`MAX_PAGE`], or `default` when absent.
pub fn page_limit(q: &HashMap<String, String>, default: i64) -> Result<i64, ApiError> {
    match q.get("limit") {
        None => Ok(default),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "limit={v:?} is not a whole number from 1 to {MAX_PAGE}"
            ))),
        },
    }
}

/// A numeric cursor named `name` (the `next` of the previous page).
pub fn cursor(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    q.get(name)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "{name}={v:?} is not a number: pass the `next` value of the previous page"
                ))
            })
        })
        .transpose()
}
