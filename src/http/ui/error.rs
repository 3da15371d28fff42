//! What a page answers when it cannot show what was asked: a short HTML
//! page with a status and a sentence for the person at the browser (or a
//! redirect to the sign-in page). This module must never put a server
//! path, a password or a stack of causes in front of the customer: those go
//! to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::page;
use crate::http::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// No session, or it expired: to the sign-in page.
    #[error("sign in to see this page")]
    SignIn,
    #[error("this form has expired or did not come from this page: open the page again and send it from there")]
    Csrf,
    #[error("there is no such page for your tenant")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("this address is banned for {0} more seconds after repeated failed sign-ins")]
    Banned(u64),
    #[error("{message}")]
    Server { status: StatusCode, message: String },
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> UiError {
        match e.status {
            StatusCode::NOT_FOUND => UiError::NotFound,
            status => UiError::Server {
                status,
                message: e.message,
            },
        }
    }
}

impl From<crate::store::StoreError> for UiError {
    fn from(e: crate::store::StoreError) -> UiError {
        ApiError::from(e).into()
    }
}

impl UiError {
    pub fn status(&self) -> StatusCode {
        match self {
            UiError::SignIn => StatusCode::SEE_OTHER,
            UiError::Csrf => StatusCode::FORBIDDEN,
            UiError::NotFound => StatusCode::NOT_FOUND,
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UiError::Banned(_) => StatusCode::FORBIDDEN,
            UiError::Server { status, .. } => *status,
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        if let UiError::SignIn = self {
            return super::see_other("/ui/");
        }
        let title = match &self {
            UiError::NotFound => "Not found",
            UiError::Csrf => "Form expired",
            UiError::Banned(_) => "Banned",
            UiError::BadRequest(_) => "Cannot do that",
            _ => "Something went wrong",
        };
        (self.status(), page::message_page(title, &self.to_string())).into_response()
    }
}
