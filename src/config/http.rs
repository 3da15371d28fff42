//! `[http]` and `[[tenants.NAME.api_keys]]`: the HTTP door's listener,
//! limits and the keys that open it. Checks only: it must never open a
//! socket or read a certificate's contents (a missing file is reported, its
//! parsing is the server's).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::check::Check;
use super::raw::{RawApiKey, RawHttp};

/// The HTTP API's settings; absent when the config has no `[http]` table
/// (then `serve` opens no HTTP port).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The largest request body (an upload) taken; larger ones get 413
    /// before their body is read.
    pub max_upload: u64,
    /// Serve HTTPS directly: (certificate chain PEM, private key PEM).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// When set, `/metrics` wants `Authorization: Bearer <token>`.
    pub metrics_token: Option<String>,
    /// A client must send its request head within this time.
    pub header_timeout: Duration,
    /// A whole request (head and body) must arrive within this time: a
    /// slow client cannot hold a connection open forever.
    pub request_timeout: Duration,
}

/// An API key as the config keeps it: only the SHA-256 of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub sha256: [u8; 32],
}

pub(super) fn check_http(c: &mut Check, r: RawHttp) -> HttpConfig {
    let listen_text = r.listen.as_deref().unwrap_or("127.0.0.1:8080");
    let listen = listen_text.parse().unwrap_or_else(|_| {
        c.problems.push(format!(
            "http.listen = {listen_text:?} is not an address and port like \"127.0.0.1:8080\""
        ));
        SocketAddr::from(([127, 0, 0, 1], 8080))
    });
    let tls = match (r.tls_cert, r.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            for (k, p) in [("http.tls_cert", &cert), ("http.tls_key", &key)] {
                if !std::path::Path::new(p).is_file() {
                    c.problems
                        .push(format!("{k} = {p:?}: there is no such file"));
                }
            }
            Some((PathBuf::from(cert), PathBuf::from(key)))
        }
        _ => {
            c.problems.push(
                "http.tls_cert and http.tls_key go together: set both to serve HTTPS, or neither"
                    .into(),
            );
            None
        }
    };
    let metrics_token = match r.metrics_token {
        Some(t) if t.trim().len() < 16 => {
            c.problems.push(
                "http.metrics_token is too short to protect anything: use at least 16 characters"
                    .into(),
            );
            None
        }
        t => t,
    };
    HttpConfig {
        listen,
        max_upload: c.size("http.max_upload", r.max_upload.as_deref(), "512MiB"),
        tls,
        metrics_token,
        header_timeout: c.duration("http.header_timeout", r.header_timeout.as_deref(), "10s"),
        request_timeout: c.duration("http.request_timeout", r.request_timeout.as_deref(), "1h"),
    }
}

/// The prefix of every token userdrop makes: a scanner that finds one in a
/// repository or a log knows what it is.
pub const TOKEN_PREFIX: &str = "udk_";

/// A new API token (256 random bits) and the hash line the config keeps.
pub fn new_api_token() -> std::io::Result<(String, String)> {
    let mut bytes = [0u8; 32];
    argon2::password_hash::rand_core::RngCore::fill_bytes(
        &mut argon2::password_hash::rand_core::OsRng,
        &mut bytes,
    );
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let hash = key_hash_text(&token);
    Ok((token, hash))
}

/// A token's SHA-256 as the config keeps it, `sha256:<hex>`.
pub fn key_hash_text(token: &str) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(token.as_bytes()))
    )
}

/// The `sha256:<64 hex digits>` form `userdrop api-key new` prints.
pub fn parse_key_hash(text: &str) -> Option<[u8; 32]> {
    let hex = text.trim().strip_prefix("sha256:")?;
    let bytes = hex::decode(hex).ok()?;
    bytes.try_into().ok()
}

pub(super) fn check_api_keys(
    c: &mut Check,
    k: &dyn Fn(&str) -> String,
    raw: Vec<RawApiKey>,
    seen_hashes: &mut std::collections::HashSet<[u8; 32]>,
) -> Vec<ApiKey> {
    let mut names = std::collections::HashSet::new();
    let mut keys = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let key = k(&format!("api_keys[{i}]"));
        if r.name.trim().is_empty() {
            c.problems.push(format!(
                "{key}.name is empty: name the key after who uses it, like \"hr-nightly\""
            ));
        } else if !names.insert(r.name.clone()) {
            c.problems.push(format!(
                "{key}.name = {:?} is used twice in this tenant; key names tell keys apart in the logs",
                r.name
            ));
        }
        let Some(sha256) = parse_key_hash(&r.hash) else {
            c.problems.push(format!(
                "{key}.hash is not \"sha256:\" and 64 hex digits; make a key with `userdrop api-key new --tenant TENANT --name NAME`"
            ));
            continue;
        };
        if !seen_hashes.insert(sha256) {
            c.problems.push(format!(
                "{key}.hash is the hash of a key already given (to this or another tenant); a key belongs to one tenant: make a new one"
            ));
        }
        keys.push(ApiKey {
            name: r.name,
            sha256,
        });
    }
    keys
}
