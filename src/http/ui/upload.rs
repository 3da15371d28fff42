//! Upload: **Validate** then **Load**. Validate streams the file into the
//! tenant's spool ([`crate::intake::Spooling`]) and runs the dry run the
//! CLI's `import --dry-run` runs ([`crate::import::run`] with `dry_run`,
//! after the same name check, [`crate::pickup::admit::accepted`]) on the
//! blocking pool; the page shows its counts and every failed row, and says
//! "Validating…" (reloading itself, no script needed) while a large file
//! is checked. The validated bytes stay in the spool, and **Load** hands
//! exactly those to [`crate::intake::submit`] as a job of source `web`,
//! under an idempotency key made from the validation, so a double click, a
//! reload or a second tab makes one job; the daemon's worker runs it as it
//! runs an API upload. This module must never judge a row, write a user,
//! or load bytes other than the ones validated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Form;
use futures_util::StreamExt;
use maud::{html, Markup};
use tokio::sync::watch;

use super::page::{enc, layout, size, thousands, Nav};
use super::session::{check_csrf, random_token, signed_in, Session};
use super::signin::Csrf;
use super::{see_other, UiError};
use crate::config::Mode;
use crate::http::pool::Use;
use crate::http::{AppState, Queued};
use crate::import::{self, ImportOptions};
use crate::intake::{JobOptions, Spooled, Spooling, Submission, SOURCE_WEB};
use crate::report::summary::{JobReport, Status};
use crate::store::intake::{Intake, IntakeError};
use crate::store::jobs::{self, JobState};

/// How long a validated file waits for its Load.
const KEPT: Duration = Duration::from_secs(60 * 60);

/// How long a post waits for a quick answer before showing "Validating…"
/// or "Loading…" (a small file is done well within it).
const QUICK: Duration = Duration::from_secs(3);

/// Failed rows on one page of a validation.
const ERRORS_PAGE: usize = 500;

/// The seed's words for an empty file.
pub const EMPTY: &str = "Users file is empty";

/// Files validated and waiting, by token.
#[derive(Default)]
pub struct Validations {
    map: Mutex<HashMap<String, Arc<Validation>>>,
}

/// One validated (or being validated) file.
pub struct Validation {
    tenant: String,
    session: String,
    file: String,
    mode: Mode,
    len: u64,
    started: Instant,
    state: Mutex<Judged>,
    /// True once the dry run has answered.
    done: watch::Sender<bool>,
    /// Held by a Load while it makes the job: a second waits, then finds it.
    loading: tokio::sync::Mutex<()>,
}

enum Judged {
    Judging,
    Ready {
        report: Box<JobReport>,
        /// The validated bytes, until Load makes them a job's.
        file: Option<Spooled>,
    },
    Loaded {
        job: i64,
    },
    Failed(String),
}

impl Validations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Validation>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `v` under a new token. A session keeps its latest validation
    /// only (the spool holds one waiting file per session).
    fn insert(&self, v: Validation) -> (String, Arc<Validation>) {
        let token = random_token();
        let v = Arc::new(v);
        let mut map = self.lock();
        map.retain(|_, o| o.started.elapsed() < KEPT && o.session != v.session);
        map.insert(token.clone(), v.clone());
        (token, v)
    }

    fn get(&self, token: &str, session: &Session) -> Result<Arc<Validation>, UiError> {
        let map = self.lock();
        match map.get(token) {
            Some(v) if v.tenant == session.tenant && v.started.elapsed() < KEPT => Ok(v.clone()),
            _ => Err(UiError::NotFound),
        }
    }
}

impl Validation {
    fn lock(&self) -> std::sync::MutexGuard<'_, Judged> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a judged file can be loaded: it was read (not refused as a
/// whole) and has rows. An empty file is not loaded: nothing to load.
fn loadable(r: &JobReport) -> bool {
    r.status != Status::Rejected && r.counts.rows > 0
}

/// Whether a report is the one of an empty file.
fn is_empty(r: &JobReport) -> bool {
    r.file_error
        .as_ref()
        .is_some_and(|e| e.code == "empty_file")
        || (r.file_error.is_none() && r.counts.rows == 0)
}

fn modes(selected: Mode) -> Markup {
    html! {
        select #mode name="mode" {
            @for (name, m, what) in [
                ("upsert", Mode::Upsert, "add new users, update the others"),
                ("insert", Mode::Insert, "add new users only"),
                ("sync", Mode::Sync, "upsert, and remove users the file leaves out"),
            ] {
                option value=(name) selected[m == selected] { (name) " — " (what) }
            }
        }
    }
}

/// The upload form. `validated`: the page shows a Load for another file.
fn upload_form(s: &Session, mode: Mode, load_enabled: bool) -> Markup {
    html! {
        form #upload-form.card method="post" action="/ui/upload/validate" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(s.csrf);
            div.row {
                div {
                    label for="file" { "Users file (CSV)" }
                    input #file type="file" name="file" accept=".csv,.txt,.tsv,text/csv,text/plain" required;
                }
                div {
                    label for="mode" { "Mode" }
                    (modes(mode))
                }
                button #validate type="submit" { "Validate" }
                @if !load_enabled {
                    button #load type="button" disabled title="Validate the file first" { "Load" }
                }
            }
            p #progress.progress hidden { progress {} " " span { "Validating…" } }
        }
    }
}

/// `GET /ui/upload`
pub async fn form(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let s = signed_in(&state, &headers)?;
    let mode = state
        .config()
        .tenant(&s.tenant)
        .map_or(Mode::Upsert, |t| t.mode);
    let body = html! {
        p.muted { "Choose the file, press Validate to see what it would do (nothing is written), then Load." }
        (upload_form(&s, mode, false))
    };
    Ok(layout("Upload", Some(&s), Nav::Upload, None, body).into_response())
}

/// A name safe to keep as the job's file name.
fn file_name(sent: &str) -> String {
    let base: String = sent
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    base.trim().trim_start_matches('.').to_string()
}

/// `POST /ui/upload/validate` (multipart: `csrf` first, `mode`, `file`).
pub async fn validate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    req: Request,
) -> Result<Response, UiError> {
    let s = signed_in(&state, &headers)?;
    let config = state.config();
    let tenant = config.tenant(&s.tenant).ok_or(UiError::NotFound)?.clone();
    let max = config.http.as_ref().map_or(u64::MAX, |h| h.max_upload);
    let mut mp = axum::extract::Multipart::from_request(req, &state)
        .await
        .map_err(|e| UiError::BadRequest(format!("the form cannot be read: {e}")))?;
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        UiError::BadRequest(format!("the upload was cut off: {e}"))
    };
    let mut csrf_ok = false;
    let mut mode = tenant.mode;
    let mut got: Option<(String, Spooled)> = None;
    while let Some(mut field) = mp.next_field().await.map_err(unreadable)? {
        let part = field.name().unwrap_or("").to_string();
        match part.as_str() {
            "csrf" => {
                let text = field.text().await.map_err(unreadable)?;
                check_csrf(&s, Some(text.trim()))?;
                csrf_ok = true;
            }
            // Nothing else is read before the form is known to be ours.
            _ if !csrf_ok => return Err(UiError::Csrf),
            "mode" => {
                let text = field.text().await.map_err(unreadable)?;
                mode = Mode::from_name(&text).ok_or_else(|| {
                    UiError::BadRequest(format!(
                        "{text:?} is not a mode: choose upsert, insert or sync"
                    ))
                })?;
            }
            "file" if got.is_none() => {
                let name = file_name(field.file_name().unwrap_or(""));
                let mut spooling = Spooling::create(&config.spool_dir(&s.tenant))
                    .await
                    .map_err(|e| {
                        UiError::from(crate::http::ApiError::internal(
                            "open a file in the spool",
                            e,
                        ))
                    })?;
                while let Some(chunk) = field.next().await {
                    let chunk = chunk.map_err(unreadable)?;
                    if spooling.len() + chunk.len() as u64 > max {
                        return Err(UiError::BadRequest(format!(
                            "the file is larger than this server takes ({}); split it, or ask the operator to raise [http] max_upload",
                            size(max)
                        )));
                    }
                    spooling.write(chunk).await.map_err(|e| {
                        UiError::from(crate::http::ApiError::internal(
                            "write the upload to the spool",
                            e,
                        ))
                    })?;
                }
                if name.is_empty() && spooling.is_empty() {
                    return Err(UiError::BadRequest(
                        "no file was chosen: choose the users file, then press Validate".into(),
                    ));
                }
                let spooled = spooling.finish().await.map_err(|e| {
                    UiError::from(crate::http::ApiError::internal(
                        "save the upload in the spool",
                        e,
                    ))
                })?;
                let name = if name.is_empty() {
                    "upload.csv".into()
                } else {
                    name
                };
                got = Some((name, spooled));
            }
            _ => {}
        }
    }
    if !csrf_ok {
        return Err(UiError::Csrf);
    }
    let (name, spooled) = got.ok_or_else(|| {
        UiError::BadRequest("no file was chosen: choose the users file, then press Validate".into())
    })?;
    let (done, mut seen) = watch::channel(false);
    let (token, v) = state.ui.validations.insert(Validation {
        tenant: s.tenant.clone(),
        session: s.id.clone(),
        file: name.clone(),
        mode,
        len: spooled.len,
        started: Instant::now(),
        state: Mutex::new(Judged::Judging),
        done,
        loading: tokio::sync::Mutex::new(()),
    });
    tracing::info!(tenant = %s.tenant, account = %s.user, file = %name, bytes = spooled.len,
        "web: validating a file");
    let pool = state.pool.clone();
    tokio::spawn(async move {
        let options = JobOptions {
            mode: Some(mode),
            ..JobOptions::default()
        };
        let file = name.clone();
        let r = pool
            .run(Use::Write, move |st| {
                let t = options.apply(&tenant);
                // What the daemon would do with this name: refuse it whole.
                if let Err(e) = crate::pickup::admit::accepted(&t, &file) {
                    return Ok((JobReport::refused(&t.name, &file, None, true, &e), spooled));
                }
                let opts = ImportOptions {
                    file_name: &file,
                    source: SOURCE_WEB,
                    dry_run: true,
                    job: None,
                    approved: false,
                    rows: options.rows(),
                };
                let out = import::run(st, &t, spooled.path(), &opts)
                    .map_err(|e| crate::http::ApiError::internal("judge the file", e))?;
                Ok((out.report, spooled))
            })
            .await;
        *v.lock() = match r {
            Ok((report, file)) => Judged::Ready {
                report: Box::new(report),
                file: Some(file),
            },
            Err(e) => Judged::Failed(e.message),
        };
        v.done.send_replace(true);
    });
    let _ = tokio::time::timeout(QUICK, seen.wait_for(|d| *d)).await;
    Ok(see_other(&format!("/ui/upload/{token}")))
}

/// `GET /ui/upload/{token}`: the validation (or the load) as it stands.
pub async fn show(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, UiError> {
    let s = signed_in(&state, &headers)?;
    let v = state.ui.validations.get(&token, &s)?;
    let from: usize = q.get("from").and_then(|f| f.parse().ok()).unwrap_or(0);
    enum View {
        Judging,
        Failed(String),
        Ready(Box<JobReport>, bool),
        Loaded(i64),
    }
    let view = match &*v.lock() {
        Judged::Judging => View::Judging,
        Judged::Failed(m) => View::Failed(m.clone()),
        Judged::Ready { report, file } => View::Ready(report.clone(), file.is_some()),
        Judged::Loaded { job, .. } => View::Loaded(*job),
    };
    let title = format!("Upload · {}", v.file);
    let page = match view {
        View::Judging => {
            let body = html! {
                p.notice.progress #validating role="status" {
                    progress {} " Validating… "
                    (v.file) " (" (size(v.len)) ", " (v.started.elapsed().as_secs()) " s so far)"
                }
                p.muted { "This page reloads itself until the file is checked." }
            };
            layout(&title, Some(&s), Nav::Upload, Some(1), body)
        }
        View::Failed(m) => layout(
            &title,
            Some(&s),
            Nav::Upload,
            None,
            html! {
                p.notice.bad { (m) }
                (upload_form(&s, v.mode, false))
            },
        ),
        View::Ready(report, kept) => {
            let body = judged(&s, &token, &v, &report, kept, from);
            layout(&title, Some(&s), Nav::Upload, None, body)
        }
        View::Loaded(job) => {
            let row = state
                .pool
                .run(Use::Read, move |st| Ok(jobs::get(st, job)?))
                .await?
                .ok_or(UiError::NotFound)?;
            let decided = row.state != JobState::Received;
            let report: Option<JobReport> = row
                .report
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok());
            let body = html! {
                @match (&report, decided) {
                    (Some(r), true) => { (outcome(r, job)) }
                    _ => {
                        p.notice.progress #loading role="status" { progress {} " Loading… " (v.file) }
                        p.muted { "This page reloads itself until the job is done. " a href=(format!("/ui/jobs/{job}")) { "Job " (job) } }
                    }
                }
                h2 { "Another file" }
                (upload_form(&s, v.mode, false))
            };
            let refresh = (!decided).then_some(1);
            layout(&title, Some(&s), Nav::Upload, refresh, body)
        }
    };
    Ok(page.into_response())
}

/// The message a loaded job ends with, built from its counts.
pub fn outcome(r: &JobReport, job: i64) -> Markup {
    let c = &r.counts;
    let link = html! { a #job-link href=(format!("/ui/jobs/{job}")) { "Job " (job) } };
    html! {
        @match r.status {
            Status::Ok | Status::RowsFailed => {
                p.notice.good #message role="status" {
                    (format!(
                        "Users Loaded successfully. {} Added, {} Updated, {} Deleted, {} Roles Added",
                        c.added, c.updated, c.deleted, c.roles_added
                    ))
                }
                @if c.deactivated > 0 { p.notice { (thousands(c.deactivated)) " users deactivated (not in the file)." } }
                @if c.failed > 0 {
                    p.notice.warn #failed-note { (thousands(c.failed)) " rows failed and were not loaded: see " (link) " for each reason and the failed-rows CSV." }
                } @else {
                    p { "Details: " (link) }
                }
            }
            Status::Rejected if is_empty(r) => {
                p.notice.bad #message role="alert" { (EMPTY) }
                p { "Details: " (link) }
            }
            Status::Rejected => {
                p.notice.bad #message role="alert" {
                    "The file was not loaded: "
                    (r.file_error.as_ref().map(|e| e.message.clone()).unwrap_or_else(|| "no row could be applied".into()))
                }
                p { "Details: " (link) }
            }
            Status::Held => {
                p.notice.warn #message role="status" {
                    "The file is on hold: it would remove more users than the tenant allows. Nothing was applied. "
                    "Review it and approve it on " (link) "."
                }
            }
        }
    }
}

/// A validated file: the counts, the failed rows, and Load.
fn judged(
    s: &Session,
    token: &str,
    v: &Validation,
    r: &JobReport,
    kept: bool,
    from: usize,
) -> Markup {
    let c = &r.counts;
    let can_load = kept && loadable(r);
    let errors = &r.errors;
    let shown = errors.iter().skip(from).take(ERRORS_PAGE);
    html! {
        @if is_empty(r) {
            p.notice.bad #message role="alert" { (EMPTY) }
        } @else if let Some(fe) = &r.file_error {
            p.notice.bad #message role="alert" { "This file cannot be loaded: " (fe.message) }
        } @else {
            p.notice #message role="status" {
                "Validated " (v.file) " as " (v.mode.as_str()) ": nothing has been written yet. "
                @if c.failed == 0 { "Every row is good." }
                @else { (thousands(c.failed)) " of " (thousands(c.rows)) " rows have problems and would not be loaded." }
            }
        }
        @if let Some(h) = &r.held {
            p.notice.warn {
                "As a sync this file would touch " (thousands(h.would_touch)) " of " (thousands(h.of_users))
                " users (" (format!("{:.1}", h.percent)) "%), more than the tenant allows ("
                (h.max_missing_percent) "%): after Load it waits for an approval on its job page."
            }
        }
        @if r.file_error.is_none() {
            dl.counts #counts {
                div { dt { "Rows" } dd #count-rows { (thousands(c.rows)) } }
                div { dt { "To add" } dd #count-added { (thousands(c.added)) } }
                div { dt { "To update" } dd #count-updated { (thousands(c.updated)) } }
                div { dt { "Unchanged" } dd { (thousands(c.unchanged)) } }
                div { dt { "To delete" } dd { (thousands(c.deleted)) } }
                div { dt { "To deactivate" } dd { (thousands(c.deactivated)) } }
                div { dt { "Roles to add" } dd { (thousands(c.roles_added)) } }
                div { dt { "Failed rows" } dd #count-failed { (thousands(c.failed)) } }
            }
        }
        @if !errors.is_empty() {
            h2 { "Rows with problems (" (thousands(errors.len() as u64)) ")" }
            div.scroll {
                table #errors {
                    thead { tr { th.num { "Row" } th { "Key" } th { "Field" } th { "Reason" } th { "What to change" } } }
                    tbody {
                        @for e in shown {
                            tr {
                                td.num { (e.row) }
                                td.wrap { (e.key) }
                                td { (e.field.as_deref().unwrap_or("")) }
                                td { code { (e.code) } }
                                td.wrap { (e.message) }
                            }
                        }
                    }
                }
            }
            @if errors.len() > ERRORS_PAGE {
                nav.pager {
                    @if from > 0 { a href=(format!("/ui/upload/{}?from={}", enc(token), from.saturating_sub(ERRORS_PAGE))) { "← Previous rows" } }
                    @if from + ERRORS_PAGE < errors.len() { a href=(format!("/ui/upload/{}?from={}", enc(token), from + ERRORS_PAGE)) { "Next rows →" } }
                }
            }
        }
        form.card.once #load-form method="post" action=(format!("/ui/upload/{}/load", enc(token))) {
            input type="hidden" name="csrf" value=(s.csrf);
            div.row {
                button #load type="submit" disabled[!can_load] { "Load" }
                span.muted {
                    @if can_load { "Load imports exactly the file validated above, as " (v.mode.as_str()) "." }
                    @else { "There is nothing in this file to load." }
                }
            }
        }
        h2 { "Another file" }
        (upload_form(s, v.mode, true))
    }
}

/// `POST /ui/upload/{token}/load`: the validated bytes become a job.
pub async fn load(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(f): Form<Csrf>,
) -> Result<Response, UiError> {
    let s = signed_in(&state, &headers)?;
    check_csrf(&s, Some(&f.csrf))?;
    let v = state.ui.validations.get(&token, &s)?;
    let _turn = v.loading.lock().await;
    let taken = {
        let mut st = v.lock();
        match &mut *st {
            Judged::Loaded { job, .. } => {
                // A double click, a reload, a second tab: the same job.
                return Ok(see_other(&format!("/ui/upload/{}?job={job}", enc(&token))));
            }
            Judged::Judging => {
                return Err(UiError::BadRequest(
                    "the file is still being validated: wait for its result, then Load".into(),
                ))
            }
            Judged::Failed(m) => return Err(UiError::BadRequest(m.clone())),
            Judged::Ready { report, file } => {
                if !loadable(report) {
                    return Err(UiError::BadRequest(if is_empty(report) {
                        EMPTY.to_string()
                    } else {
                        "there is nothing in this file to load".to_string()
                    }));
                }
                match file.take() {
                    Some(f) => f,
                    None => {
                        return Err(UiError::BadRequest(
                            "this file is no longer kept: upload it again".into(),
                        ))
                    }
                }
            }
        }
    };
    let spooled = taken;
    let config = state.config();
    let spool = config.spool_dir(&s.tenant);
    let (tenant, file, mode) = (s.tenant.clone(), v.file.clone(), v.mode);
    let key = format!("web-{token}");
    let mut done = state.done.subscribe();
    let r = state
        .pool
        .run(Use::Write, move |st| {
            let sub = Submission {
                tenant: &tenant,
                file: &file,
                source: SOURCE_WEB,
                options: JobOptions {
                    mode: Some(mode),
                    ..JobOptions::default()
                },
                idempotency_key: Some(&key),
            };
            crate::intake::submit(st, &spool, &sub, &spooled).map_err(|e| match e {
                IntakeError::Store(e) => e.into(),
                IntakeError::Place(e) => {
                    crate::http::ApiError::internal("move the upload into the spool", e)
                }
            })
        })
        .await;
    let id = match r {
        Ok(Intake::Created { id, .. }) => {
            let _ = state.queue.send(Queued {
                tenant: s.tenant.clone(),
                job: id,
            });
            tracing::info!(tenant = %s.tenant, account = %s.user, job = id, file = %v.file,
                "web: file loaded as a job");
            id
        }
        Ok(Intake::Replayed { id } | Intake::KeyReused { id }) => id,
        Err(e) => {
            *v.lock() = Judged::Failed(e.message.clone());
            return Err(e.into());
        }
    };
    *v.lock() = Judged::Loaded { job: id };
    // A small file is decided at once: answer with its outcome.
    let _ = tokio::time::timeout(QUICK, async {
        loop {
            match done.recv().await {
                Ok(d) if d.job == id => break,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                _ => {}
            }
        }
    })
    .await;
    Ok(see_other(&format!("/ui/upload/{}?job={id}", enc(&token))))
}
