//! `/v1/openapi.json`: the OpenAPI 3.1 document of the HTTP API, derived by
//! utoipa from the handlers' own annotations and response types, so it
//! cannot drift from them unnoticed (schemathesis checks every answer
//! against it in the tests). This module must never describe a route the
//! router does not serve.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{changes, error, imports, ops, users, views};

#[derive(OpenApi)]
#[openapi(
    info(title = "userdrop", description = "Hand over a user directory as CSV: uploads become import jobs; job status, errors, users, health and metrics."),
    paths(
        imports::create, imports::list, imports::show, imports::errors, imports::approve,
        users::list, users::template, changes::list, ops::healthz, ops::readyz, ops::metrics,
    ),
    components(schemas(
        error::ErrorBody, error::ErrorDetail, views::QueuedBody, views::JobView,
        views::JobList, views::RowErrorView, views::ErrorsPage, users::UsersPage, ops::Health,
        views::ImportType, views::DelimiterName, views::BulkUser, views::CsvFile,
        users::TemplateFormat, crate::feed::FeedPage, crate::feed::FeedChange,
    )),
    modifiers(&Security),
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let c = api.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// `GET /v1/openapi.json`
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}
