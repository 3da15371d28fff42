//! Jobs: the signed-in tenant's jobs from every door (sftp, watcher,
//! schedule, startup, cli, http, web), newest first, paged by id; one job's
//! outcome, its failed rows (paged) and the failed-rows CSV
//! ([`crate::report::ledger::failed_csv`], the bytes of `jobs show
//! --failed-csv`); a held sync's **Approve** ([`crate::worker::approve`],
//! the one way every door approves). This module must never decide a
//! job's outcome, and never show another tenant's job (it is a 404).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};

use super::page::{layout, thousands, when, Nav};
use super::session::{check_csrf, signed_in, Session};
use super::signin::Csrf;
use super::{see_other, UiError};
use crate::http::pool::Use;
use crate::http::AppState;
use crate::report::summary::{JobReport, Status};
use crate::store::intake as ledger;
use crate::store::jobs::{self, JobRow, JobState};
use crate::worker::ApproveError;

/// Jobs on one page.
const PAGE: i64 = 50;

/// Failed rows on one page of a job.
const ERRORS_PAGE: i64 = 100;

fn job_id(text: &str) -> Result<i64, UiError> {
    text.parse().map_err(|_| UiError::NotFound)
}

/// The job's state as a word: queued and running are told apart.
fn state_word(state: &AppState, j: &JobRow) -> &'static str {
    match j.state {
        JobState::Received if crate::worker::lock(&state.running).contains(&j.id) => "running",
        JobState::Received => "queued",
        JobState::Applied => "applied",
        JobState::Failed => "failed",
        JobState::Held => "held",
    }
}

fn report_of(j: &JobRow) -> Option<JobReport> {
    j.report
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
}

/// `GET /ui/jobs?before=ID`
pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let s = signed_in(&state, &headers)?;
    let before: Option<i64> = q.get("before").and_then(|b| b.parse().ok());
    let tenant = s.tenant.clone();
    let rows = state
        .pool
        .run(Use::Read, move |st| {
            Ok(jobs::page(st, &tenant, before, PAGE + 1)?)
        })
        .await?;
    let more = rows.len() as i64 > PAGE;
    let rows: Vec<JobRow> = rows.into_iter().take(PAGE as usize).collect();
    let body = html! {
        @if rows.is_empty() {
            p.notice { "No jobs yet." }
        } @else {
            div.scroll {
                table #jobs {
                    thead { tr {
                        th.num { "Job" } th { "File" } th { "Source" } th { "State" } th { "Result" }
                        th.num { "Rows" } th.num { "Failed" } th { "Received" }
                    } }
                    tbody {
                        @for j in &rows {
                            @let r = report_of(j);
                            tr {
                                td.num { a href=(format!("/ui/jobs/{}", j.id)) { (j.id) } }
                                td.wrap { (j.file) }
                                td { (j.source) }
                                td { (state_word(&state, j)) }
                                td { (j.status.map_or("", |st| st.as_str())) }
                                td.num { (r.as_ref().map(|r| thousands(r.counts.rows)).unwrap_or_default()) }
                                td.num { (r.as_ref().map(|r| thousands(r.counts.failed)).unwrap_or_default()) }
                                td { (when(&j.created_at)) }
                            }
                        }
                    }
                }
            }
        }
        nav.pager {
            @if before.is_some() { a href="/ui/jobs" { "Newest" } }
            @if more {
                @if let Some(last) = rows.last() {
                    a #next rel="next" href=(format!("/ui/jobs?before={}", last.id)) { "Older →" }
                }
            }
        }
    };
    Ok(layout("Jobs", Some(&s), Nav::Jobs, None, body).into_response())
}

async fn job_of(state: &AppState, s: &Session, id: i64) -> Result<JobRow, UiError> {
    let tenant = s.tenant.clone();
    state
        .pool
        .run(Use::Read, move |st| Ok(ledger::job_of(st, &tenant, id)?))
        .await?
        .ok_or(UiError::NotFound)
}

fn counts(r: &JobReport) -> Markup {
    let c = &r.counts;
    html! {
        dl.counts #counts {
            div { dt { "Rows" } dd { (thousands(c.rows)) } }
            div { dt { "Added" } dd { (thousands(c.added)) } }
            div { dt { "Updated" } dd { (thousands(c.updated)) } }
            div { dt { "Unchanged" } dd { (thousands(c.unchanged)) } }
            div { dt { "Deleted" } dd { (thousands(c.deleted)) } }
            div { dt { "Deactivated" } dd { (thousands(c.deactivated)) } }
            div { dt { "Roles added" } dd { (thousands(c.roles_added)) } }
            div { dt { "Failed rows" } dd #count-failed { (thousands(c.failed)) } }
        }
    }
}

/// `GET /ui/jobs/{id}?after=SEQ`
pub async fn show(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let s = signed_in(&state, &headers)?;
    let j = job_of(&state, &s, job_id(&id)?).await?;
    let after: i64 = q.get("after").and_then(|a| a.parse().ok()).unwrap_or(-1);
    let jid = j.id;
    let errors = state
        .pool
        .run(Use::Read, move |st| {
            Ok(ledger::errors_page(st, jid, after, ERRORS_PAGE + 1)?)
        })
        .await?;
    let more = errors.len() as i64 > ERRORS_PAGE;
    let errors: Vec<_> = errors.into_iter().take(ERRORS_PAGE as usize).collect();
    let report = report_of(&j);
    let word = state_word(&state, &j);
    let decided = j.state != JobState::Received;
    let missing = state
        .config()
        .tenant(&s.tenant)
        .map(|t| crate::mail::compose::missing_verb(t.missing));
    let body = html! {
        dl.fields #job {
            dt { "File" } dd { (j.file) }
            dt { "Source" } dd #source { (j.source) }
            dt { "State" } dd #state { (word) }
            dt { "Result" } dd #result { (j.status.map_or("—", |st| st.as_str())) }
            dt { "Received" } dd { (when(&j.created_at)) }
            @if let Some(f) = &j.finished_at { dt { "Finished" } dd { (when(f)) } }
            @if let Some(a) = &j.approved_at { dt { "Approved" } dd { (when(a)) } }
        }
        @if !decided {
            p.notice.progress role="status" { progress {} " This job is " (word) "; this page reloads itself until it is done." }
        }
        @if let Some(r) = &report {
            @if r.status == Status::Ok || r.status == Status::RowsFailed {
                (super::upload::outcome(r, j.id))
            }
            @if let Some(fe) = &r.file_error {
                p.notice.bad #file-error {
                    @if fe.code == "empty_file" { (super::upload::EMPTY) ". " }
                    (fe.message)
                }
            }
            @if let (Status::Held, Some(h)) = (r.status, &r.held) {
                div.card.notice.warn #held {
                    p {
                        "This sync is held: it would " (missing.unwrap_or("deactivate")) " "
                        (thousands(h.would_touch)) " of the tenant's " (thousands(h.of_users)) " users ("
                        (format!("{:.1}", h.percent)) "%), more than the tenant allows (" (h.max_missing_percent) "%). "
                        "Nothing was applied. If this is intended, approve it; otherwise upload a corrected, complete file."
                    }
                    p { "The file would also add " (thousands(r.counts.added)) " and update " (thousands(r.counts.updated)) " users." }
                    form.once method="post" action=(format!("/ui/jobs/{}/approve", j.id)) {
                        input type="hidden" name="csrf" value=(s.csrf);
                        button #approve type="submit" { "Approve" }
                    }
                }
            }
            @if let Some(note) = r.managers_note() { p.notice { (note) } }
            @if let Some(note) = r.secrets_note() { p.notice { (note) } }
            (counts(r))
        }
        @if decided {
            p { a.button.secondary #failed-csv href=(format!("/ui/jobs/{}/failed.csv", j.id)) download { "Download failed rows (CSV)" } }
        }
        @if !errors.is_empty() {
            h2 { "Failed rows" }
            div.scroll {
                table #errors {
                    thead { tr { th.num { "Row" } th { "Key" } th { "Field" } th { "Reason" } th { "What to change" } } }
                    tbody {
                        @for (_, e) in &errors {
                            tr {
                                td.num { (e.error.row) }
                                td.wrap { (e.error.key) }
                                td { (e.error.field.as_deref().unwrap_or("")) }
                                td { code { (e.error.code) } }
                                td.wrap { (e.error.message) }
                            }
                        }
                    }
                }
            }
            nav.pager {
                @if after >= 0 { a href=(format!("/ui/jobs/{}", j.id)) { "First rows" } }
                @if more {
                    @if let Some((seq, _)) = errors.last() {
                        a #next rel="next" href=(format!("/ui/jobs/{}?after={seq}", j.id)) { "Next rows →" }
                    }
                }
            }
        }
        p { a href="/ui/jobs" { "← All jobs" } }
    };
    let title = format!("Job {}", j.id);
    let refresh = (!decided).then_some(2);
    Ok(layout(&title, Some(&s), Nav::Jobs, refresh, body).into_response())
}

/// `GET /ui/jobs/{id}/failed.csv`
pub async fn failed_csv(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, UiError> {
    let s = signed_in(&state, &headers)?;
    let j = job_of(&state, &s, job_id(&id)?).await?;
    let file = format!("{}.errors.csv", j.file);
    let bytes = state
        .pool
        .run(Use::Read, move |st| {
            Ok(crate::report::ledger::failed_csv(st, &j)?)
        })
        .await?
        .ok_or_else(|| {
            UiError::BadRequest(
                "the job is not decided yet: its failed rows are known once it is".into(),
            )
        })?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file.replace(['"', '\\', '\r', '\n'], "_")
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .collect::<String>()
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::from(bytes),
    )
        .into_response())
}

/// `POST /ui/jobs/{id}/approve`
pub async fn approve(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<Csrf>,
) -> Result<Response, UiError> {
    let s = signed_in(&state, &headers)?;
    check_csrf(&s, Some(&f.csrf))?;
    let id = job_of(&state, &s, job_id(&id)?).await?.id;
    let config = state.config();
    let r = state
        .pool
        .run(Use::Write, move |st| {
            Ok(crate::worker::approve(st, &config, id).map(|_| ()))
        })
        .await?;
    match r {
        Ok(()) => {
            tracing::info!(tenant = %s.tenant, account = %s.user, job = id, "web: held job approved");
            Ok(see_other(&format!("/ui/jobs/{id}")))
        }
        Err(e) => Err(UiError::BadRequest(match e {
            ApproveError::NoSuchJob(_) => return Err(UiError::NotFound),
            e @ (ApproveError::NotHeld { .. } | ApproveError::NewerApplied { .. }) => e.to_string(),
            // Their own messages name a server path: say it without.
            ApproveError::Changed { .. } => format!("the held file of job {id} changed after the job took it, so it is not applied; upload the file again if it is still wanted"),
            ApproveError::HeldFileGone { .. } => format!("the held file of job {id} is no longer on the server; upload the file again if it is still wanted"),
            other => {
                tracing::error!(job = id, "web: approving failed: {other}");
                "the server could not approve the job; the operator finds the reason in its log".into()
            }
        })),
    }
}
