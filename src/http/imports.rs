//! `/v1/tenants/{tenant}/imports`: an upload becomes a job (or a dry run),
//! and a job's status, errors and approval. The upload is streamed into the
//! spool and committed as a job by [`crate::intake`] before the answer; the
//! daemon's worker runs it. This module must never judge a row or write a
//! user: the import and the worker do.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;

use super::auth::{caller, Caller};
use super::pool::Use;
use super::query::{cursor, page_limit};
use super::views::{
    view, BulkUser, CsvFile, DelimiterName, ErrorsPage, ImportType, JobList, JobView, QueuedBody,
    RowErrorView,
};
use super::{ApiError, AppState, Queued};
use crate::config::Mode;
use crate::import::{self, ImportOptions};
use crate::ingest::decode::{Delimiter, DELIMITER_NAMES};
use crate::intake::{JobOptions, Spooled, Spooling, Submission, SOURCE_HTTP};
use crate::report::summary::JobReport;
use crate::store::intake::{self as ledger, Intake, IntakeError};
use crate::store::jobs::{self, JobRow};
use crate::worker::ApproveError;

/// The answer to an upload accepted for processing.
pub const QUEUED_MESSAGE: &str = "File uploaded successfully, import is in progress.";

/// The longest `Idempotency-Key` kept.
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// The multipart parts that carry the file: `file` (curl -F file=@...)
/// and `uploadFile`, the name other import APIs use.
const FILE_PARTS: &[&str] = &["file", "uploadFile"];

/// Options of an upload, from the query or the headers other import APIs
/// send (`importType`, `DELIMITER`).
#[derive(Debug, Default)]
struct UploadQuery {
    options: JobOptions,
    dry_run: bool,
    wait: bool,
    filename: Option<String>,
}

fn flag(name: &str, v: &str) -> Result<bool, ApiError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err(ApiError::bad_request(format!(
            "{name}={v:?} is not true or false"
        ))),
    }
}

fn mode_of(v: &str) -> Result<Mode, ApiError> {
    Mode::from_name(v).ok_or_else(|| {
        ApiError::bad_request(format!(
            "importType {v:?} is not one of insert, upsert, sync, delsert (delsert = sync: users missing from the file are deactivated or deleted)"
        ))
    })
}

fn delimiter_of(v: &str) -> Result<Delimiter, ApiError> {
    Delimiter::from_name(v).ok_or_else(|| {
        let names: Vec<String> = DELIMITER_NAMES
            .iter()
            .map(|(n, _)| n.to_ascii_uppercase())
            .collect();
        ApiError::bad_request(format!(
            "DELIMITER {v:?} is not one of {} (SEMI_COLON is accepted too), nor one of the characters , ; | - or a tab",
            names.join(", ")
        ))
    })
}

impl UploadQuery {
    fn read(q: &HashMap<String, String>, headers: &HeaderMap) -> Result<UploadQuery, ApiError> {
        let mut u = UploadQuery::default();
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        for (k, v) in q {
            match k.as_str() {
                "mode" | "importType" | "import_type" => u.options.mode = Some(mode_of(v)?),
                "delimiter" | "DELIMITER" => u.options.delimiter = Some(delimiter_of(v)?),
                "dry_run" | "dryRun" => u.dry_run = flag(k, v)?,
                "wait" => u.wait = flag(k, v)?,
                "filename" => u.filename = Some(v.clone()).filter(|f| !f.trim().is_empty()),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter {other:?}: use mode (or importType), delimiter, dry_run, wait, filename"
                    )))
                }
            }
        }
        if u.options.mode.is_none() {
            if let Some(v) = header("importType").or_else(|| header("mode")) {
                u.options.mode = Some(mode_of(v)?);
            }
        }
        if u.options.delimiter.is_none() {
            if let Some(v) = header("DELIMITER") {
                u.options.delimiter = Some(delimiter_of(v)?);
            }
        }
        Ok(u)
    }

    /// An option sent as a multipart text part.
    fn form_field(&mut self, name: &str, v: &str) -> Result<bool, ApiError> {
        match name {
            "mode" | "importType" => self.options.mode = Some(mode_of(v)?),
            "delimiter" | "DELIMITER" => self.options.delimiter = Some(delimiter_of(v)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A name safe to keep as the job's file name: the last path part of what
/// the client sent, without control characters.
fn file_name(sent: Option<&str>) -> String {
    let base = sent
        .map(|s| s.rsplit(['/', '\\']).next().unwrap_or(""))
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect::<String>();
    let base = base.trim().trim_start_matches('.').to_string();
    if base.is_empty() {
        "upload.csv".into()
    } else {
        base
    }
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "the upload is larger than this server takes ({}, [http] max_upload); split the file or ask the operator to raise the limit",
            bytesize::ByteSize::b(max).display().iec()
        ),
    )
}

/// Streams a body into the spool, refusing it past `max`.
async fn spool_stream<S, E>(
    spooling: &mut Spooling,
    mut stream: S,
    max: u64,
) -> Result<(), ApiError>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            let text = e.to_string();
            if text.contains("length limit") || text.contains("too large") {
                too_large(max)
            } else {
                ApiError::bad_request(format!("the upload was cut off: {text}"))
            }
        })?;
        if spooling.len() + chunk.len() as u64 > max {
            return Err(too_large(max));
        }
        spooling
            .write(chunk)
            .await
            .map_err(|e| ApiError::internal("write the upload to the spool", e))?;
    }
    Ok(())
}

/// `POST /v1/tenants/{tenant}/imports`
#[utoipa::path(post, path = "/v1/tenants/{tenant}/imports", tag = "imports",
    params(("tenant" = String, Path, description = "The tenant's name"),
        ("mode" = Option<ImportType>, Query, description = "insert | upsert | sync (delsert = sync), any case; also the importType header"),
        ("delimiter" = Option<DelimiterName>, Query, description = "COMMA | SEMI_COLON | PIPE | HYPHEN | TAB or the character, any case; also the DELIMITER header"),
        ("dry_run" = Option<bool>, Query, description = "validate only: nothing written, no job"),
        ("wait" = Option<bool>, Query, description = "answer when the job is decided"),
        ("filename" = Option<String>, Query, description = "the file's name for a raw body")),
    request_body(description = "the CSV file: raw, or as the multipart part `file` (or `uploadFile`); or a JSON array of user objects",
        content((CsvFile = "text/csv"), (Vec<BulkUser> = "application/json"))),
    responses(
        (status = 202, description = "queued", body = QueuedBody),
        (status = 200, description = "the job, decided (wait=true) or as an Idempotency-Key made it (a JobView); or a dry run's outcome (the `import --dry-run --json` object)", body = Object),
        (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody),
        (status = 413, body = super::error::ErrorBody), (status = 415, body = super::error::ErrorBody),
        (status = 503, body = super::error::ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    let who = caller(&state, req.headers(), req.extensions(), &tenant)?;
    if state.stopping.is_cancelled() {
        return Err(ApiError::unavailable(
            "the server is shutting down; send the file again in a moment",
        ));
    }
    let mut query = UploadQuery::read(&q, req.headers())?;
    let idempotency_key = match req.headers().get("idempotency-key") {
        Some(v) => {
            let k = v.to_str().unwrap_or("").trim().to_string();
            if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY {
                return Err(ApiError::bad_request(format!(
                    "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible characters"
                )));
            }
            Some(k)
        }
        None => None,
    };
    let config = state.config();
    let max = config.http.as_ref().map_or(u64::MAX, |h| h.max_upload);
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > max {
            return Err(too_large(max));
        }
    }
    let ctype = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let essence = ctype.split(';').next().unwrap_or("").trim().to_string();
    let spool = config.spool_dir(&tenant);
    let mut spooling = Spooling::create(&spool)
        .await
        .map_err(|e| ApiError::internal("open a file in the spool", e))?;
    tracing::debug!(tenant = %who.tenant, key = %who.key_name, "HTTP upload receiving");
    let name = match essence.as_str() {
        "multipart/form-data" => {
            let mut mp = axum::extract::Multipart::from_request(req, &state)
                .await
                .map_err(|e| ApiError::bad_request(format!("the multipart body cannot be read: {e}")))?;
            let mut name = None;
            while let Some(field) = mp
                .next_field()
                .await
                .map_err(|e| ApiError::bad_request(format!("the multipart body cannot be read: {e}")))?
            {
                let part = field.name().unwrap_or("").to_string();
                if FILE_PARTS.contains(&part.as_str()) && name.is_none() {
                    name = Some(file_name(field.file_name().or(query.filename.as_deref())));
                    spool_stream(&mut spooling, field, max).await?;
                } else {
                    let text = field.text().await.unwrap_or_default();
                    query.form_field(&part, text.trim())?;
                }
            }
            name.ok_or_else(|| {
                ApiError::bad_request(
                    "no file in the form: send it as the part named `file` (curl -F file=@users.csv) or `uploadFile`",
                )
            })?
        }
        "" | "text/csv" | "text/plain" | "application/octet-stream" | "application/csv"
        | "text/comma-separated-values" | "application/vnd.ms-excel" => {
            let name = file_name(query.filename.as_deref());
            spool_stream(&mut spooling, req.into_body().into_data_stream(), max).await?;
            if essence.is_empty() && spooling.is_empty() {
                // Nothing sent at all (an empty file comes with its type).
                return Err(ApiError::bad_request(
                    "no file in the request: send the CSV as the body (Content-Type: text/csv) or as the form part `file` (curl -F file=@users.csv)",
                ));
            }
            name
        }
        "application/json" => {
            let name = file_name(Some(query.filename.as_deref().unwrap_or("upload.json")));
            spool_stream(&mut spooling, req.into_body().into_data_stream(), max).await?;
            let json = spooling
                .finish()
                .await
                .map_err(|e| ApiError::internal("save the upload in the spool", e))?;
            let t = config.tenant(&tenant).ok_or_else(ApiError::not_found)?;
            let sep = t.role_separator.clone();
            let spool2 = spool.clone();
            let csv = tokio::task::spawn_blocking(move || {
                Spooled::make(&spool2, |w| {
                    crate::ingest::bulk::json_to_csv(|| std::fs::File::open(json.path()), w, &sep)
                        .map(|_| ())
                })
            })
            .await
            .map_err(|e| ApiError::internal("convert the JSON upload", e))?
            .map_err(|e| match e {
                crate::ingest::bulk::BulkError::Json(m) => ApiError::bad_request(format!(
                    "the JSON body is not an array of user objects: {m}"
                )),
                crate::ingest::bulk::BulkError::Io(e) => ApiError::internal("convert the JSON upload", e),
            })?;
            // The import reads it as what it now is, numbering rows by object.
            query.options.from_json = true;
            // The table is written comma-separated, whatever was asked.
            query.options.delimiter = Some(Delimiter::Fixed(b','));
            let stem = name.strip_suffix(".json").unwrap_or(&name).to_string();
            return finish_upload(&state, &who, &tenant, format!("{stem}.csv"), query, idempotency_key, csv).await;
        }
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "Content-Type {other:?} is not taken: send the CSV as text/csv (raw body) or multipart/form-data with the part `file`"
                ),
            ))
        }
    };
    let spooled = spooling
        .finish()
        .await
        .map_err(|e| ApiError::internal("save the upload in the spool", e))?;
    finish_upload(&state, &who, &tenant, name, query, idempotency_key, spooled).await
}

/// A whole upload in the spool: a dry run's outcome, or a job and its
/// answer.
async fn finish_upload(
    state: &Arc<AppState>,
    who: &Caller,
    tenant: &str,
    name: String,
    query: UploadQuery,
    idempotency_key: Option<String>,
    spooled: Spooled,
) -> Result<Response, ApiError> {
    let state = state.clone();
    if query.dry_run {
        return dry_run(&state, tenant, &name, query.options, spooled).await;
    }
    let (id, created) = submit(&state, who, &name, query.options, idempotency_key, spooled).await?;
    if created {
        tracing::info!(tenant = %who.tenant, key = %who.key_name, job = id, file = %name,
            "HTTP upload queued");
    }
    if query.wait {
        let job = wait_archived(&state, id).await?;
        return Ok(Json(view(&state, job)).into_response());
    }
    if !created {
        let job = job_of(&state, tenant, id).await?;
        return Ok(Json(view(&state, job)).into_response());
    }
    let body = QueuedBody {
        id,
        status: "queued".into(),
        message: QUEUED_MESSAGE.into(),
        status_url: format!("/v1/tenants/{tenant}/imports/{id}"),
    };
    let mut r = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(v) = format!("/v1/tenants/{tenant}/imports/{id}").parse() {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// Commits the upload as a job and hands it to the daemon. `(id, false)`:
/// the idempotency key's earlier job.
async fn submit(
    state: &Arc<AppState>,
    who: &Caller,
    name: &str,
    options: JobOptions,
    key: Option<String>,
    spooled: Spooled,
) -> Result<(i64, bool), ApiError> {
    let config = state.config();
    let (tenant, name2) = (who.tenant.clone(), name.to_string());
    let spool = config.spool_dir(&who.tenant);
    let intake = state
        .pool
        .run(Use::Write, move |s| {
            let sub = Submission {
                tenant: &tenant,
                file: &name2,
                source: SOURCE_HTTP,
                options,
                idempotency_key: key.as_deref(),
            };
            crate::intake::submit(s, &spool, &sub, &spooled).map_err(|e| match e {
                IntakeError::Store(e) => e.into(),
                IntakeError::Place(e) => ApiError::internal("move the upload into the spool", e),
            })
        })
        .await?;
    match intake {
        Intake::Created { id, .. } => {
            let _ = state.queue.send(Queued {
                tenant: who.tenant.clone(),
                job: id,
            });
            state.metrics.uploads(&who.tenant);
            Ok((id, true))
        }
        Intake::Replayed { id } => Ok((id, false)),
        Intake::KeyReused { id } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_reused",
            format!("this Idempotency-Key was used for job {id} with a different file; use a new key for a new file"),
        )),
    }
}

/// A dry run: the import judges the spooled bytes and writes nothing.
async fn dry_run(
    state: &Arc<AppState>,
    tenant: &str,
    name: &str,
    options: JobOptions,
    spooled: Spooled,
) -> Result<Response, ApiError> {
    let config = state.config();
    let t = config
        .tenant(tenant)
        .ok_or_else(ApiError::not_found)?
        .clone();
    let name = name.to_string();
    let report = state
        .pool
        .run(Use::Write, move |s| {
            let t = options.apply(&t);
            // What the daemon would do with this name: refuse it whole.
            if let Err(e) = crate::pickup::admit::accepted(&t, &name) {
                return Ok(JobReport::refused(&t.name, &name, None, true, &e));
            }
            let opts = ImportOptions {
                file_name: &name,
                source: SOURCE_HTTP,
                dry_run: true,
                job: None,
                approved: false,
                rows: options.rows(),
            };
            let out = import::run(s, &t, spooled.path(), &opts)
                .map_err(|e| ApiError::internal("judge the file", e))?;
            Ok(out.report)
        })
        .await?;
    Ok(Json(report).into_response())
}

/// Waits until the worker has decided and archived job `id`.
async fn wait_archived(state: &Arc<AppState>, id: i64) -> Result<JobRow, ApiError> {
    let mut done = state.done.subscribe();
    loop {
        let job = state
            .pool
            .run(Use::Read, move |s| {
                jobs::get(s, id)?.ok_or_else(ApiError::not_found)
            })
            .await?;
        if job.archived_at.is_some() || state.stopping.is_cancelled() {
            return Ok(job);
        }
        tokio::select! {
            r = done.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                    return Ok(job);
                }
            }
            // Decided by another way than the worker's report (a retried
            // job, an approval): look again now and then.
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = state.stopping.cancelled() => {}
        }
    }
}

async fn job_of(state: &Arc<AppState>, tenant: &str, id: i64) -> Result<JobRow, ApiError> {
    let tenant = tenant.to_string();
    state
        .pool
        .run(Use::Read, move |s| {
            ledger::job_of(s, &tenant, id)?.ok_or_else(ApiError::not_found)
        })
        .await
}

/// `GET /v1/tenants/{tenant}/imports`
#[utoipa::path(get, path = "/v1/tenants/{tenant}/imports", tag = "imports",
    params(("tenant" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("before" = Option<i64>, Query, description = "the `next` of the previous page")),
    responses((status = 200, body = JobList), (status = 400, body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    req: Request,
) -> Result<Json<JobList>, ApiError> {
    caller(&state, &headers, req.extensions(), &tenant)?;
    let limit = page_limit(&q, 50)?;
    let before = cursor(&q, "before")?;
    let rows = state
        .pool
        .run(Use::Read, move |s| {
            Ok(jobs::page(s, &tenant, before, limit)?)
        })
        .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|j| j.id))
        .flatten();
    Ok(Json(JobList {
        imports: rows.into_iter().map(|j| view(&state, j)).collect(),
        next,
    }))
}

fn job_id(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::not_found())
}

/// `GET /v1/tenants/{tenant}/imports/{id}`
#[utoipa::path(get, path = "/v1/tenants/{tenant}/imports/{id}", tag = "imports",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 401, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn show(
    State(state): State<Arc<AppState>>,
    Path((tenant, id)): Path<(String, String)>,
    req: Request,
) -> Result<Json<JobView>, ApiError> {
    caller(&state, req.headers(), req.extensions(), &tenant)?;
    let job = job_of(&state, &tenant, job_id(&id)?).await?;
    Ok(Json(view(&state, job)))
}

/// `GET /v1/tenants/{tenant}/imports/{id}/errors`
#[utoipa::path(get, path = "/v1/tenants/{tenant}/imports/{id}/errors", tag = "imports",
    params(("tenant" = String, Path), ("id" = String, Path),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000),
        ("after" = Option<i64>, Query, description = "the `next` of the previous page")),
    responses((status = 200, description = "the row errors (JSON), or with Accept: text/csv the failed-rows CSV",
            content((ErrorsPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = super::error::ErrorBody),
        (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody),
        (status = 409, body = super::error::ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn errors(
    State(state): State<Arc<AppState>>,
    Path((tenant, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Result<Response, ApiError> {
    caller(&state, req.headers(), req.extensions(), &tenant)?;
    let job = job_of(&state, &tenant, job_id(&id)?).await?;
    let wants_csv = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    if wants_csv {
        let file = format!("{}.errors.csv", job.file);
        let bytes = state
            .pool
            .run(Use::Read, move |s| Ok(crate::report::ledger::failed_csv(s, &job)?))
            .await?
            .ok_or_else(|| {
                ApiError::new(StatusCode::CONFLICT, "not_decided", "the job is not decided yet: ask again when its status is applied, failed or held")
            })?;
        let disposition = format!(
            "attachment; filename=\"{}\"",
            file.replace(['"', '\\', '\r', '\n'], "_")
        );
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            Body::from(bytes),
        )
            .into_response());
    }
    let limit = page_limit(&q, 100)?;
    let after = cursor(&q, "after")?.unwrap_or(-1);
    let id = job.id;
    let page = state
        .pool
        .run(Use::Read, move |s| {
            Ok(ledger::errors_page(s, id, after, limit)?)
        })
        .await?;
    let next = (page.len() as i64 == limit)
        .then(|| page.last().map(|(seq, _)| *seq))
        .flatten();
    let errors = page
        .into_iter()
        .map(|(seq, e)| RowErrorView {
            seq,
            row: e.error.row,
            key: e.error.key,
            field: e.error.field,
            code: e.error.code,
            message: e.error.message,
            cells: e.cells,
        })
        .collect();
    Ok(Json(ErrorsPage { errors, next }).into_response())
}

/// `POST /v1/tenants/{tenant}/imports/{id}/approve`
#[utoipa::path(post, path = "/v1/tenants/{tenant}/imports/{id}/approve", tag = "imports",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = JobView), (status = 401, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn approve(
    State(state): State<Arc<AppState>>,
    Path((tenant, id)): Path<(String, String)>,
    req: Request,
) -> Result<Json<JobView>, ApiError> {
    let who = caller(&state, req.headers(), req.extensions(), &tenant)?;
    let id = job_of(&state, &tenant, job_id(&id)?).await?.id;
    let config = state.config();
    let job = state
        .pool
        .run(Use::Write, move |s| {
            crate::worker::approve(s, &config, id).map_err(|e| match e {
                ApproveError::NoSuchJob(_) => ApiError::not_found(),
                e @ (ApproveError::NotHeld { .. } | ApproveError::NewerApplied { .. }) => {
                    ApiError::new(StatusCode::CONFLICT, "not_approvable", e.to_string())
                }
                // Their own messages name a server path: say it without.
                ApproveError::Changed { .. } => ApiError::new(
                    StatusCode::CONFLICT,
                    "not_approvable",
                    format!("the held file of job {id} changed after the job took it, so it is not applied; upload the file again if it is still wanted"),
                ),
                ApproveError::HeldFileGone { .. } => ApiError::new(
                    StatusCode::CONFLICT,
                    "not_approvable",
                    format!("the held file of job {id} is no longer on the server; upload the file again if it is still wanted"),
                ),
                other => ApiError::internal("approve the job", other),
            })?;
            jobs::get(s, id)?.ok_or_else(ApiError::not_found)
        })
        .await?;
    tracing::info!(tenant = %who.tenant, key = %who.key_name, job = id, "HTTP: held job approved");
    Ok(Json(view(&state, job)))
}
