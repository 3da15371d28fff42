//! The shapes the HTTP API answers with and documents: the job as it is
//! shown, pages of jobs and of row errors, and the documentation-only types
//! of what an upload may send (import types, delimiter names, a JSON bulk
//! user). utoipa derives the OpenAPI document from these. This module must
//! never parse a request: the handlers do, with the library's parsers.

use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::store::jobs::{JobRow, JobState};

#[derive(Serialize, ToSchema)]
pub struct QueuedBody {
    pub id: i64,
    /// Always `queued`.
    pub status: String,
    pub message: String,
    pub status_url: String,
}

/// A job as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct JobView {
    pub id: i64,
    pub tenant: String,
    pub file: String,
    /// How the file arrived: sftp, watcher, schedule, startup, cli, http.
    pub source: String,
    /// `queued`, `running`, `applied`, `failed` or `held`.
    pub status: String,
    /// The outcome word of a decided job: `ok`, `rows_failed`, `rejected`,
    /// `held`.
    pub result: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub approved_at: Option<String>,
    pub archived_at: Option<String>,
    /// The job's outcome object (`jobs show --json`) without its row
    /// errors, which are paged at `errors_url`. Passed on as stored (it
    /// was written as JSON), not parsed and written again.
    #[schema(value_type = Option<Object>)]
    pub report: Option<Box<serde_json::value::RawValue>>,
    pub status_url: String,
    pub errors_url: String,
}

#[derive(Serialize, ToSchema)]
pub struct JobList {
    pub imports: Vec<JobView>,
    /// Pass as `before` for the next (older) page; null on the last page.
    pub next: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct RowErrorView {
    /// The cursor of this error: pass the last one as `after`.
    pub seq: i64,
    pub row: u64,
    pub key: String,
    pub field: Option<String>,
    pub code: String,
    pub message: String,
    /// The row's cells as received.
    pub cells: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorsPage {
    pub errors: Vec<RowErrorView>,
    pub next: Option<i64>,
}

/// What `/imports/{id}` answers for job `j`.
pub(super) fn view(state: &AppState, j: JobRow) -> JobView {
    let status = match j.state {
        JobState::Received if crate::worker::lock(&state.running).contains(&j.id) => "running",
        JobState::Received => "queued",
        JobState::Applied => "applied",
        JobState::Failed => "failed",
        JobState::Held => "held",
    };
    let base = format!("/v1/tenants/{}/imports/{}", j.tenant, j.id);
    JobView {
        id: j.id,
        status: status.to_string(),
        result: j.status.map(|s| s.as_str().to_string()),
        report: j
            .report
            .and_then(|r| serde_json::value::RawValue::from_string(r).ok()),
        errors_url: format!("{base}/errors"),
        status_url: base,
        tenant: j.tenant,
        file: j.file,
        source: j.source,
        created_at: j.created_at,
        finished_at: j.finished_at,
        approved_at: j.approved_at,
        archived_at: j.archived_at,
    }
}

/// The import types a request may ask for (any case): documentation only,
/// the parser is [`crate::config::Mode::from_name`].
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub enum ImportType {
    #[serde(rename = "insert")]
    Insert,
    #[serde(rename = "upsert")]
    Upsert,
    #[serde(rename = "sync")]
    Sync,
    #[serde(rename = "delsert")]
    Delsert,
    #[serde(rename = "INSERT")]
    InsertUpper,
    #[serde(rename = "UPSERT")]
    UpsertUpper,
    #[serde(rename = "SYNC")]
    SyncUpper,
    #[serde(rename = "DELSERT")]
    DelsertUpper,
}

/// The delimiters a request may name (any case, or the character itself):
/// documentation only, the parser is [`crate::ingest::decode::Delimiter::from_name`].
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub enum DelimiterName {
    #[serde(rename = "AUTO")]
    Auto,
    #[serde(rename = "COMMA")]
    Comma,
    #[serde(rename = "SEMI_COLON")]
    SemiColon,
    #[serde(rename = "SEMICOLON")]
    Semicolon,
    #[serde(rename = "PIPE")]
    Pipe,
    #[serde(rename = "HYPHEN")]
    Hyphen,
    #[serde(rename = "TAB")]
    Tab,
    #[serde(rename = ",")]
    CommaChar,
    #[serde(rename = ";")]
    SemicolonChar,
    #[serde(rename = "|")]
    PipeChar,
    #[serde(rename = "-")]
    HyphenChar,
}

/// A CSV file as bytes: any bytes are a file the import judges.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct CsvFile(Vec<u8>);

/// One user of a JSON bulk upload: documentation only, the converter is
/// [`crate::ingest::bulk`]. Each field is a string, a number, true/false,
/// null (empty) or a list of strings (roles).
pub struct BulkUser;

impl utoipa::PartialSchema for BulkUser {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
        let value = OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)))
            .build();
        ObjectBuilder::new()
            .description(Some("one user: field names as in the CSV header"))
            .additional_properties(Some(Schema::OneOf(value)))
            .into()
    }
}

impl ToSchema for BulkUser {}
