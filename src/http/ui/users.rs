//! The Users page: the signed-in tenant's users, a page at a time
//! ([`crate::store::browse`]: keyset over an index, never an offset), found
//! by the prefix of a name, an email or a key; one user's page; and the
//! **Download users CSV** button, which streams exactly the bytes of
//! `userdrop users export` ([`crate::report::export`], through the API's own
//! streaming). This module must never write to the store, hold a whole
//! tenant in memory, or show another tenant's user.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::page::{enc, layout, when, Nav};
use super::session::signed_in;
use super::UiError;
use crate::http::pool::Use;
use crate::http::AppState;
use crate::store::browse::{self, Cursor, Find, Listed};
use crate::store::users::{self, Select};

/// Users on one page.
pub const PAGE: i64 = 50;

/// The longest search text taken.
const MAX_SEARCH: usize = 200;

/// What the search box searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum By {
    Name,
    Email,
    Key,
}

impl By {
    fn of(v: Option<&str>) -> By {
        match v {
            Some("email") => By::Email,
            Some("key") => By::Key,
            _ => By::Name,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            By::Name => "name",
            By::Email => "email",
            By::Key => "key",
        }
    }
}

/// `GET /ui/users?q=&by=name|email|key&after=KEY|before=KEY`
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let s = signed_in(&state, &headers)?;
    let text: String = q
        .get("q")
        .map(|t| t.trim().chars().take(MAX_SEARCH).collect())
        .unwrap_or_default();
    let by = By::of(q.get("by").map(String::as_str));
    let after = q.get("after").cloned();
    let before = q.get("before").cloned();
    let (tenant, text2) = (s.tenant.clone(), text.clone());
    let (after2, before2) = (after.clone(), before.clone());
    let page = state
        .pool
        .run(Use::Read, move |st| {
            let find = match (text2.as_str(), by) {
                ("", _) => Find::All,
                (t, By::Name) => Find::Name(t),
                (t, By::Email) => Find::Email(t),
                (t, By::Key) => Find::Key(t),
            };
            let from = match (&after2, &before2) {
                (Some(a), _) => Cursor::After(a),
                (None, Some(b)) => Cursor::Before(b),
                _ => Cursor::Start,
            };
            Ok(browse::page(st, &tenant, find, from, PAGE)?)
        })
        .await?;
    let backwards = after.is_none() && before.is_some();
    let has_next = if backwards { true } else { page.more };
    let has_prev = if backwards {
        page.more
    } else {
        after.is_some()
    };
    let base = if text.is_empty() {
        "/ui/users?".to_string()
    } else {
        format!("/ui/users?q={}&by={}&", enc(&text), by.as_str())
    };
    let empty = page.users.is_empty();
    let body = html! {
        div.card {
            form.row method="get" action="/ui/users" role="search" {
                div {
                    label for="q" { "Search" }
                    input #q type="search" name="q" value=(text) placeholder="the start of a name, an email or a key";
                }
                div {
                    label for="by" { "in" }
                    select #by name="by" {
                        option value="name" selected[by == By::Name] { "Name" }
                        option value="email" selected[by == By::Email] { "Email" }
                        option value="key" selected[by == By::Key] { "Key" }
                    }
                }
                button type="submit" { "Search" }
                @if !text.is_empty() { a.button.secondary href="/ui/users" { "Clear" } }
                a.button.secondary #download href="/ui/users.csv" download { "Download users CSV" }
            }
        }
        @if empty {
            p.notice {
                @if text.is_empty() { "No users yet: upload a file to add them." }
                @else { "No user's " (by.as_str()) " starts with “" (text) "”." }
            }
        } @else {
            div.scroll {
                table.users #users {
                    thead { tr {
                        th { "Key" } th { "Name" } th { "Email" } th { "Enabled" }
                        th.opt { "Roles" } th.opt { "Reports to" } th.opt { "Updated" }
                    } }
                    tbody {
                        @for u in &page.users { (row(u)) }
                    }
                }
            }
        }
        nav.pager aria-label="pages" {
            @if has_prev || has_next { a href=(format!("{base}")) { "First page" } }
            @if has_prev {
                @if let Some(first) = page.users.first() {
                    a #prev rel="prev" href=(format!("{base}before={}", enc(&first.key))) { "← Previous" }
                }
            }
            @if has_next {
                @if let Some(last) = page.users.last() {
                    a #next rel="next" href=(format!("{base}after={}", enc(&last.key))) { "Next →" }
                }
            }
        }
    };
    Ok(layout("Users", Some(&s), Nav::Users, None, body).into_response())
}

fn name_of(first: Option<&str>, last: Option<&str>) -> String {
    [first.unwrap_or(""), last.unwrap_or("")]
        .iter()
        .filter(|p| !p.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

fn row(u: &Listed) -> Markup {
    html! {
        tr {
            td.wrap { a href=(format!("/ui/users/{}", enc(&u.key))) { (u.key) } }
            td.wrap { (name_of(u.first_name.as_deref(), u.last_name.as_deref())) }
            td.wrap { (u.email) }
            td { @if u.enabled { "yes" } @else { "no" } }
            td.opt.wrap { (u.roles.join(", ")) }
            td.opt.wrap { (u.reports_to.as_deref().unwrap_or("")) }
            td.opt { (when(&u.updated_at)) }
        }
    }
}

/// `GET /ui/users/{key}`: every field of one user.
pub async fn show(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(key): Path<String>,
) -> Result<Response, UiError> {
    let s = signed_in(&state, &headers)?;
    let tenant = s.tenant.clone();
    let found = state
        .pool
        .run(Use::Read, move |st| {
            let mut user = None;
            users::users_matching(st, &tenant, &Select::Key(&key), 1, |u| {
                user = Some(u);
                Ok(())
            })?;
            let stamps = browse::stamps(st, &tenant, &key)?;
            Ok(user.zip(stamps))
        })
        .await?;
    let Some((u, (created, updated))) = found else {
        return Err(UiError::NotFound);
    };
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut fields: Vec<(String, String)> = vec![
        ("Key".into(), u.key.clone()),
        ("User id".into(), opt(&u.user_id)),
        ("Email".into(), u.email.clone()),
        ("First name".into(), opt(&u.first_name)),
        ("Last name".into(), opt(&u.last_name)),
        ("Enabled".into(), yes(u.enabled).into()),
        ("Roles".into(), u.roles.join(", ")),
        ("Reports to".into(), opt(&u.reports_to)),
        ("Task notification".into(), u.task_notification.clone()),
        (
            "Notify if new user".into(),
            yes(u.notify_if_new_user).into(),
        ),
        ("Mobile number".into(), opt(&u.mobile_number)),
        ("Country".into(), opt(&u.country)),
        ("State".into(), opt(&u.state)),
        ("Last active".into(), opt(&u.last_active_date)),
    ];
    for (k, v) in &u.attributes {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        fields.push((k.clone(), v));
    }
    fields.push(("Created".into(), when(&created)));
    fields.push(("Updated".into(), when(&updated)));
    let body = html! {
        div.card {
            dl.fields #user {
                @for (k, v) in &fields { dt { (k) } dd { (v) } }
            }
        }
        p { a href="/ui/users" { "← All users" } }
    };
    let title = format!("User {}", u.key);
    Ok(layout(&title, Some(&s), Nav::Users, None, body).into_response())
}

/// `GET /ui/users.csv`: the `users export` bytes, streamed.
pub async fn download(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let s = signed_in(&state, &headers)?;
    let t = state
        .config()
        .tenant(&s.tenant)
        .cloned()
        .ok_or(UiError::NotFound)?;
    Ok(crate::http::users::export_stream(&state, t))
}
