//! Signing in and out. The accounts are the tenant's SFTP accounts, checked
//! as an SFTP login checks them ([`crate::sftp::password_matches`]:
//! argon2id, on the blocking pool): a wrong password, an unknown user and
//! an unknown tenant cost the same argon2 run and the same pause
//! ([`crate::sftp::AUTH_REJECTION_TIME`]) and get the same answer, and each
//! is a failure towards the per-address ban the SFTP server and the API
//! keys share. This module must never say which of tenant, user or password
//! was wrong, log a password, or sign in a banned address.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::html;
use serde::Deserialize;

use super::page::{layout, Nav};
use super::session::{
    check_csrf, clear_cookie, cookie, credential_of, random_token, same_token, secure, set_cookie,
    signed_in, COOKIE, SIGNIN_COOKIE, SIGNIN_FORM_AGE,
};
use super::{see_other, UiError};
use crate::http::AppState;

/// What the sign-in form sends. The names are stable: scripts and password
/// managers fill them.
#[derive(Deserialize)]
pub struct SignIn {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// What the sign-out form sends.
#[derive(Deserialize)]
pub struct Csrf {
    #[serde(default)]
    pub csrf: String,
}

/// The one answer to every failed sign-in.
pub const WRONG: &str = "The tenant, user or password is not right.";

/// The sign-in page, with a fresh form token (and its cookie).
fn form_page(
    state: &AppState,
    status: StatusCode,
    tenant: &str,
    user: &str,
    error: Option<&str>,
) -> Response {
    let token = random_token();
    let body = html! {
        div.card.signin {
            @if let Some(e) = error {
                p.notice.bad role="alert" { (e) }
            }
            form method="post" action="/ui/signin" {
                input type="hidden" name="csrf" value=(token);
                label for="tenant" { "Tenant" }
                input #tenant type="text" name="tenant" value=(tenant) required autocomplete="organization" autocapitalize="none";
                label for="user" { "User" }
                input #user type="text" name="user" value=(user) required autocomplete="username" autocapitalize="none";
                label for="password" { "Password" }
                input #password type="password" name="password" required autocomplete="current-password";
                p { button type="submit" { "Sign in" } }
            }
            p.muted { "Sign in with your SFTP account: the same user and password." }
        }
    };
    let mut r = (
        status,
        layout("Manage Users · Sign in", None, Nav::None, None, body),
    )
        .into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGNIN_COOKIE, &token, secure(state), Some(SIGNIN_FORM_AGE)),
    );
    r
}

/// `GET /ui/`: the sign-in form, or the users for a signed-in browser.
pub async fn show(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if signed_in(&state, &headers).is_ok() {
        return see_other("/ui/users");
    }
    form_page(&state, StatusCode::OK, "", "", None)
}

/// `POST /ui/signin`
pub async fn submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Response {
    let ip = crate::http::peer(req.extensions()).map(|a| a.ip());
    let Form(f): Form<SignIn> = match Form::from_request(req, &state).await {
        Ok(f) => f,
        Err(e) => {
            return UiError::BadRequest(format!("the sign-in form cannot be read: {e}"))
                .into_response()
        }
    };
    let form_ok = cookie(&headers, SIGNIN_COOKIE).is_some_and(|c| same_token(c, &f.csrf));
    if !form_ok {
        return form_page(
            &state,
            StatusCode::FORBIDDEN,
            &f.tenant,
            &f.user,
            Some("The sign-in form expired. Please sign in again."),
        );
    }
    let started = Instant::now();
    let config = state.config();
    let found = credential_of(&config, f.tenant.trim(), f.user.trim());
    let (known, password, st) = (found.clone(), f.password.clone(), state.clone());
    let good = tokio::task::spawn_blocking(move || {
        // An unknown account costs the same argon2 run, against a hash no
        // password matches.
        let hash = match known {
            Some(h) => h,
            None => st
                .ui
                .dummy_hash
                .get_or_init(|| dummy_hash().unwrap_or_default())
                .clone(),
        };
        crate::sftp::password_matches(&hash, &password)
    })
    .await
    .unwrap_or(false);
    let (tenant, user) = (f.tenant.trim().to_string(), f.user.trim().to_string());
    match found {
        Some(credential) if good => {
            if let Some(ip) = ip {
                crate::worker::lock(&state.bans).record_success(ip);
            }
            let s = state.ui.sessions.create(&tenant, &user, credential);
            tracing::info!(address = ?ip, tenant = %tenant, account = %user, "web: signed in");
            let mut r = see_other("/ui/users");
            let secure = secure(&state);
            let h = r.headers_mut();
            h.append(header::SET_COOKIE, set_cookie(COOKIE, &s.id, secure, None));
            h.append(header::SET_COOKIE, clear_cookie(SIGNIN_COOKIE, secure));
            // Without Max-Age the cookie ends with the browser; the server
            // ends the session after IDLE whatever the browser keeps.
            r
        }
        _ => {
            let ban = ip
                .and_then(|ip| crate::worker::lock(&state.bans).record_failure(ip, Instant::now()));
            tracing::warn!(address = ?ip, tenant = %tenant, account = %user, "web: sign-in failed");
            if let Some(b) = ban {
                tracing::warn!(address = ?ip, seconds = b.as_secs(),
                    "banned an address after repeated failed logins (web sign-in)");
            }
            // Every failure takes as long, whatever was wrong.
            let pause = crate::sftp::AUTH_REJECTION_TIME.saturating_sub(started.elapsed());
            tokio::time::sleep(pause).await;
            match ban {
                Some(b) => UiError::Banned(b.as_secs().max(1)).into_response(),
                None => form_page(
                    &state,
                    StatusCode::UNAUTHORIZED,
                    &tenant,
                    &user,
                    Some(WRONG),
                ),
            }
        }
    }
}

/// `POST /ui/signout`
pub async fn sign_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(f): Form<Csrf>,
) -> Result<Response, UiError> {
    let s = signed_in(&state, &headers)?;
    check_csrf(&s, Some(&f.csrf))?;
    state.ui.sessions.remove(&s.id);
    tracing::info!(tenant = %s.tenant, account = %s.user, "web: signed out");
    let mut r = see_other("/ui/");
    r.headers_mut()
        .append(header::SET_COOKIE, clear_cookie(COOKIE, secure(&state)));
    Ok(r)
}

/// A hash of a random password, checked for unknown users.
fn dummy_hash() -> Option<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(random_token().as_bytes(), &salt)
        .ok()
        .map(|h| h.to_string())
}
