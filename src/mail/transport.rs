//! Hands one rendered message to where it goes: an SMTP server
//! (`security = "starttls"`: STARTTLS required; `"tls"`: TLS from the first
//! byte; `"none"`: plain text), authenticated with a password read from an
//! env var or a file at connect time, the server's certificate checked
//! against the system's CA store or the configured `ca_file`; or a
//! directory, one `<outbox id>.eml` per message, written to a temp name and
//! renamed (so a resend replaces, never duplicates, and a reader never sees
//! half a file). This module must never touch the store, and must never
//! put a password in an error, a log line or a Debug string.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{MailConfig, SecretSource, Security, Transport as TransportConfig};

/// How long one SMTP command may take before the attempt is abandoned.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the SMTP password variable {0} is not set")]
    PasswordEnv(String),
    #[error("cannot read the SMTP password file {path}: {source}")]
    PasswordFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read smtp.ca_file {path}: {source}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("smtp.ca_file {path} holds no usable PEM certificate: {source}")]
    CaParse {
        path: PathBuf,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("TLS setup: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0} is not a mail address")]
    Address(String),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("writing {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A ready transport, built from the config of the moment.
#[derive(Clone)]
pub enum Transport {
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    File(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::File(d) => write!(f, "Transport::File({})", d.display()),
        }
    }
}

/// Where mail goes, in words for the log: the transport's kind and its
/// destination (`host:port` with its security, user and where the password
/// comes from, or the `.eml` directory). Never the password itself.
pub fn describe(mail: &MailConfig) -> (&'static str, String) {
    match &mail.transport {
        TransportConfig::File { dir } => (
            "file",
            format!(
                "{} (one .eml file per message; nothing is sent)",
                dir.display()
            ),
        ),
        TransportConfig::Smtp {
            host,
            port,
            security,
            username,
            password,
            ..
        } => {
            let security = match security {
                Security::StartTls => "starttls",
                Security::Tls => "tls",
                Security::None => "none, plain text",
            };
            let login = match (username, password) {
                (None, _) => "no login".to_string(),
                (Some(u), None) => format!("user {u}, no password"),
                (Some(u), Some(SecretSource::Env(v))) => {
                    let set = if std::env::var_os(v).is_some_and(|x| !x.is_empty()) {
                        "set"
                    } else {
                        "NOT SET"
                    };
                    format!("user {u}, password from ${v} ({set})")
                }
                (Some(u), Some(SecretSource::File(f))) => {
                    format!("user {u}, password from {}", f.display())
                }
            };
            ("smtp", format!("{host}:{port} ({security}; {login})"))
        }
    }
}

fn password(source: &SecretSource) -> Result<String, TransportError> {
    match source {
        SecretSource::Env(name) => {
            std::env::var(name).map_err(|_| TransportError::PasswordEnv(name.clone()))
        }
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
            .map_err(|source| TransportError::PasswordFile {
                path: path.clone(),
                source,
            }),
    }
}

fn tls_parameters(host: &str, ca_file: Option<&Path>) -> Result<TlsParameters, TransportError> {
    let mut b = TlsParameters::builder(host.to_string());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| TransportError::CaFile {
            path: path.to_path_buf(),
            source,
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|source| TransportError::CaParse {
            path: path.to_path_buf(),
            source,
        })?;
        // A private CA replaces the system's store: only it is trusted.
        b = b
            .certificate_store(CertificateStore::None)
            .add_root_certificate(cert);
    }
    b.build_rustls().map_err(TransportError::Tls)
}

impl Transport {
    /// Builds the transport `mail` describes. Reads the password and the CA
    /// file now, so that a rotated secret is picked up by the next pass.
    pub fn build(mail: &MailConfig) -> Result<Transport, TransportError> {
        match &mail.transport {
            TransportConfig::File { dir } => Ok(Transport::File(dir.clone())),
            TransportConfig::Smtp {
                host,
                port,
                security,
                username,
                password: secret,
                ca_file,
            } => {
                let tls = match security {
                    Security::None => Tls::None,
                    Security::StartTls => Tls::Required(tls_parameters(host, ca_file.as_deref())?),
                    Security::Tls => Tls::Wrapper(tls_parameters(host, ca_file.as_deref())?),
                };
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
                    .port(*port)
                    .tls(tls)
                    .timeout(Some(SMTP_TIMEOUT));
                if let Some(user) = username {
                    let pass = match secret {
                        Some(s) => password(s)?,
                        None => String::new(),
                    };
                    b = b.credentials(Credentials::new(user.clone(), pass));
                }
                Ok(Transport::Smtp(Box::new(b.build())))
            }
        }
    }

    /// Delivers one message. `Ok` means the server accepted it (or the file
    /// is in place): it must not be sent again.
    pub async fn send(
        &self,
        outbox_id: i64,
        envelope_from: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<(), SendError> {
        match self {
            Transport::Smtp(t) => {
                let parse = |a: &str| {
                    a.parse::<Address>()
                        .map_err(|_| SendError::Address(a.to_string()))
                };
                let from = if envelope_from.is_empty() {
                    None
                } else {
                    Some(parse(envelope_from)?)
                };
                let to = recipients
                    .iter()
                    .map(|r| parse(r))
                    .collect::<Result<Vec<_>, _>>()?;
                let envelope = Envelope::new(from, to)
                    .map_err(|_| SendError::Address("(no recipient)".to_string()))?;
                t.send_raw(&envelope, wire_body(message)).await?;
                Ok(())
            }
            Transport::File(dir) => {
                let dir = dir.clone();
                let bytes = message.to_vec();
                tokio::task::spawn_blocking(move || write_eml(&dir, outbox_id, &bytes))
                    .await
                    .unwrap_or_else(|e| {
                        Err(SendError::File {
                            path: PathBuf::new(),
                            source: std::io::Error::other(e.to_string()),
                        })
                    })
            }
        }
    }
}

/// What to hand to the SMTP client so that the server receives `message`
/// byte for byte: the client ends DATA with `CRLF . CRLF`, whose first CRLF
/// ends the message's last line, so a message that already ends with one
/// would arrive with an extra empty line.
fn wire_body(message: &[u8]) -> &[u8] {
    message.strip_suffix(b"\r\n").unwrap_or(message)
}

/// `<dir>/<id>.eml`, atomically: temp file, fsync, rename, fsync the dir.
pub fn write_eml(dir: &Path, id: i64, bytes: &[u8]) -> Result<(), SendError> {
    use std::io::Write;
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SendError::File { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let path = dir.join(format!("{id}.eml"));
    let tmp = dir.join(format!(".{id}.eml.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(err(&tmp))?;
    f.write_all(bytes).map_err(err(&tmp))?;
    f.sync_all().map_err(err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(err(&path))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::wire_body;

    #[test]
    fn the_data_terminator_supplies_the_last_line_end_and_nothing_more() {
        // lettre appends CRLF . CRLF: the server then stores exactly the input.
        assert_eq!(
            wire_body(b"Subject: x\r\n\r\nbody\r\n"),
            b"Subject: x\r\n\r\nbody"
        );
        // Only one line end is the terminator's; an empty last line stays.
        assert_eq!(wire_body(b"body\r\n\r\n"), b"body\r\n");
        assert_eq!(wire_body(b"body"), b"body");
        assert_eq!(wire_body(b""), b"");
    }
}
