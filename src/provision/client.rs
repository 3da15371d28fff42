//! The HTTP side of provisioning: one SCIM 2.0 application, its `/Users`
//! endpoint called with a bearer token over kept-alive connections
//! (reqwest on rustls with aws-lc-rs, the system's CA store or the
//! configured `ca_file`). Each call says what the application now holds
//! ([`Answer`]) or why it could not be asked ([`ClientError`]: worth trying
//! again). This module must never decide what to send or when, and never
//! log or print the token.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::config::{Provision, SecretSource};

/// How long one request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the application said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It holds the user under this id.
    Holds(String),
    /// It holds no such user (404).
    Gone,
    /// 409: a user with this userName exists already.
    Conflict,
    /// Another 4xx: the request itself is refused; asking again would not
    /// help.
    Refused { status: u16, message: String },
}

/// Why the application could not be asked, or answered "not now": the same
/// request is tried again later.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the application at {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("the application answered {status} ({message})")]
    NotNow {
        status: u16,
        message: String,
        /// Its Retry-After, when it gave one in seconds.
        retry_after: Option<Duration>,
    },
    #[error("the application's answer to {url} is not the SCIM JSON expected: {message}")]
    Garbled { url: String, message: String },
    #[error("cannot read the SCIM bearer token: {0}")]
    Token(String),
    #[error("cannot set up TLS for the application: {0}")]
    Tls(String),
}

impl ClientError {
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::NotNow { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// One application's SCIM endpoint.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    users: String,
    token: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("users", &self.users)
            .finish_non_exhaustive()
    }
}

fn read_token(source: &SecretSource) -> Result<String, ClientError> {
    let token = match source {
        SecretSource::Env(name) => std::env::var(name).map_err(|_| {
            ClientError::Token(format!(
                "the environment variable {name} (token_env) is not set"
            ))
        })?,
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| ClientError::Token(format!("token_file {}: {e}", path.display())))?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(ClientError::Token("the token is empty".into()));
    }
    Ok(token)
}

fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, ClientError> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        // A private CA replaces the system's store: only it is trusted.
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| ClientError::Tls(format!("ca_file {}: {e}", path.display())))?;
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| ClientError::Tls(format!("ca_file {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(ClientError::Tls(format!(
                    "ca_file {} holds no PEM certificate",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl Client {
    /// Reads the token and the CA file now, so a rotated secret is picked
    /// up when the client is built again.
    pub fn build(p: &Provision) -> Result<Client, ClientError> {
        let token = read_token(&p.token)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(p.ca_file.as_deref())?)
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("userdrop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Client {
            http,
            users: format!("{}/Users", p.scim_url),
            token,
        })
    }

    fn unreachable(&self, url: &str, e: &reqwest::Error) -> ClientError {
        use std::error::Error as _;
        let mut message = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            message.push_str(": ");
            message.push_str(&s.to_string());
            src = s.source();
        }
        ClientError::Unreachable {
            url: url.to_string(),
            message,
        }
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<(StatusCode, Option<Duration>, String), ClientError> {
        let resp = req
            .bearer_auth(&self.token)
            .header("Accept", "application/scim+json, application/json")
            .send()
            .await
            .map_err(|e| self.unreachable(url, &e))?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.text().await.map_err(|e| self.unreachable(url, &e))?;
        // Statuses worth asking again: the application is busy or down, or
        // refuses everyone (a wrong token is fixed by an operator, not by
        // passing over every change).
        if status.is_server_error() || matches!(status.as_u16(), 401 | 403 | 408 | 425 | 429) {
            return Err(ClientError::NotNow {
                status: status.as_u16(),
                message: detail(&body),
                retry_after,
            });
        }
        Ok((status, retry_after, body))
    }

    fn json_body(&self, req: reqwest::RequestBuilder, body: &Value) -> reqwest::RequestBuilder {
        req.header("Content-Type", "application/scim+json")
            .body(body.to_string())
    }

    /// `POST /Users`.
    pub async fn create(&self, body: &Value) -> Result<Answer, ClientError> {
        let url = &self.users;
        let (status, _, text) = self
            .send(self.json_body(self.http.post(url), body), url)
            .await?;
        match status.as_u16() {
            200 | 201 => Ok(Answer::Holds(id_of(url, &text)?)),
            409 => Ok(Answer::Conflict),
            _ => Ok(refused(status, &text)),
        }
    }

    /// `PUT /Users/{id}`: the whole user.
    pub async fn replace(&self, id: &str, body: &Value) -> Result<Answer, ClientError> {
        let url = format!("{}/{}", self.users, encode(id));
        let (status, _, text) = self
            .send(self.json_body(self.http.put(&url), body), &url)
            .await?;
        match status.as_u16() {
            200 | 201 => Ok(Answer::Holds(
                id_of(&url, &text).unwrap_or_else(|_| id.to_string()),
            )),
            204 => Ok(Answer::Holds(id.to_string())),
            404 => Ok(Answer::Gone),
            409 => Ok(Answer::Conflict),
            _ => Ok(refused(status, &text)),
        }
    }

    /// `DELETE /Users/{id}`: gone whether it was there or not.
    pub async fn delete(&self, id: &str) -> Result<Answer, ClientError> {
        let url = format!("{}/{}", self.users, encode(id));
        let (status, _, text) = self.send(self.http.delete(&url), &url).await?;
        match status.as_u16() {
            200 | 202 | 204 | 404 => Ok(Answer::Gone),
            _ => Ok(refused(status, &text)),
        }
    }

    /// `GET /Users?filter=userName eq "NAME"`: the id and the userName of
    /// the user it finds (the application may compare without case). A
    /// search it refuses finds nothing.
    pub async fn find(&self, user_name: &str) -> Result<Option<(String, String)>, ClientError> {
        let quoted = serde_json::to_string(user_name).unwrap_or_default();
        let filter = format!("userName eq {quoted}");
        let req = self
            .http
            .get(&self.users)
            .query(&[("filter", filter.as_str())]);
        let (status, _, text) = self.send(req, &self.users).await?;
        if !status.is_success() {
            tracing::warn!(status = status.as_u16(), error = %detail(&text),
                "the application refused a search by userName");
            return Ok(None);
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| ClientError::Garbled {
            url: self.users.clone(),
            message: e.to_string(),
        })?;
        let found = v["Resources"].as_array().and_then(|list| {
            list.iter()
                .find(|r| r["userName"].as_str() == Some(user_name))
                .or_else(|| list.first())
        });
        Ok(found.and_then(|r| {
            Some((
                r["id"].as_str()?.to_string(),
                r["userName"].as_str().unwrap_or_default().to_string(),
            ))
        }))
    }
}

/// A path segment: the id as the application gave it, escaped.
fn encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn id_of(url: &str, text: &str) -> Result<String, ClientError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ClientError::Garbled {
        url: url.to_string(),
        message: e.to_string(),
    })?;
    v["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ClientError::Garbled {
            url: url.to_string(),
            message: "the user it returned has no id".into(),
        })
}

fn refused(status: StatusCode, text: &str) -> Answer {
    Answer::Refused {
        status: status.as_u16(),
        message: detail(text),
    }
}

/// The SCIM error's `detail` (and `scimType`), or the start of the body.
fn detail(text: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        if let Some(d) = v["detail"].as_str() {
            return match v["scimType"].as_str() {
                Some(t) => format!("{t}: {d}"),
                None => d.to_string(),
            };
        }
    }
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_escaped_and_errors_say_their_detail() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(
            detail(r#"{"status":"409","scimType":"uniqueness","detail":"in use"}"#),
            "uniqueness: in use"
        );
        assert_eq!(detail("plain"), "plain");
    }
}
