//! Who is calling: an API key (`x-api-key: TOKEN`, or `Authorization:
//! Bearer TOKEN`) names one tenant; any other tenant's resources answer 404.
//! Keys are compared as SHA-256 hashes in constant time, and a wrong key is
//! a failed login for the per-address ban the SFTP server keeps: a banned
//! address is refused before its request is looked at. This module must
//! never log or echo a key.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};
use crate::config::Config;

/// The tenant a request's key belongs to.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: String,
    pub key_name: String,
}

fn token(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key") {
        return v.to_str().ok().map(str::trim);
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The tenant whose key this is. Every key of every tenant is compared, so
/// the time taken says nothing about which keys exist.
fn find(config: &Config, token: &str) -> Option<Caller> {
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    let mut found = None;
    for t in config.tenants.values() {
        for k in &t.api_keys {
            if bool::from(k.sha256.ct_eq(&digest)) {
                found = Some(Caller {
                    tenant: t.name.clone(),
                    key_name: k.name.clone(),
                });
            }
        }
    }
    found
}

/// Authenticates a request for `tenant`'s resources.
pub fn caller(
    state: &AppState,
    headers: &HeaderMap,
    ext: &axum::http::Extensions,
    tenant: &str,
) -> Result<Caller, ApiError> {
    let ip = super::peer(ext).map(|a| a.ip());
    let Some(token) = token(headers).filter(|t| !t.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the tenant's API key in the x-api-key header (or as Authorization: Bearer KEY); the operator makes one with `userdrop api-key new`",
        ));
    };
    let config = state.config();
    match find(&config, token) {
        Some(c) => {
            if let Some(ip) = ip {
                crate::worker::lock(&state.bans).record_success(ip);
            }
            if c.tenant != tenant {
                return Err(ApiError::not_found());
            }
            Ok(c)
        }
        None => {
            if let Some(ip) = ip {
                if let Some(ban) =
                    crate::worker::lock(&state.bans).record_failure(ip, Instant::now())
                {
                    tracing::warn!(address = %ip, seconds = ban.as_secs(),
                        "banned an address after repeated failed logins (HTTP API keys)");
                }
            }
            tracing::info!(address = ?ip, "HTTP: a request with an unknown API key");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this API key is not known: check it was copied whole; the operator makes a new one with `userdrop api-key new`",
            ))
        }
    }
}

/// Refuses every request of a banned address before any other work.
pub async fn refuse_banned(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if let Some(addr) = super::peer(req.extensions()) {
        let left = crate::worker::lock(&state.bans).banned(addr.ip(), Instant::now());
        if let Some(left) = left {
            let mut e = ApiError::new(
                StatusCode::FORBIDDEN,
                "banned",
                format!(
                    "this address is banned for {} more seconds after repeated failed logins",
                    left.as_secs().max(1)
                ),
            );
            e.retry_after = Some(left.as_secs().max(1));
            return e.into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_one_the_config_reads() {
        let text = crate::config::key_hash_text("secret");
        let parsed = crate::config::parse_key_hash(&text).unwrap();
        let digest: [u8; 32] = Sha256::digest(b"secret").into();
        assert_eq!(parsed, digest);
    }

    #[test]
    fn bearer_and_x_api_key_are_both_read() {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(token(&h), Some("abc"));
        h.insert("x-api-key", "def".parse().unwrap());
        assert_eq!(token(&h), Some("def"));
    }
}
