//! The validated configuration: stage two of two. [`Config::load`] reads TOML
//! into the loose [`raw`] structs, then checks every value, collecting every
//! problem so that the operator fixes them all in one go ([`ConfigError`]
//! lists them). Defaults live here and in `config.example.toml`, which
//! documents every key. This module must never touch the data directory or
//! the network: loading a config has no side effects.

mod check;
mod http;
pub use http::{key_hash_text, new_api_token, parse_key_hash, ApiKey, HttpConfig};
mod keys;
mod mail;
mod provision;
pub mod raw;
mod sftp;
pub use sftp::MaxStartups;
mod tenant;
mod webhook;
pub use webhook::{Webhook, WebhookEvent, WebhookSecret};
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::ingest::decode::Delimiter;
pub use crate::ingest::headers::UnknownColumns;
use crate::ingest::schema::{FieldSettings, KeyField, Schema};
use crate::template::Template;
use check::Check;
use raw::{RawConfig, RawHttp, RawSftp, RawSmtp, RawTenant};

/// The commented example: every key with its default. Printed by
/// `userdrop default-config`.
pub const EXAMPLE: &str = include_str!("../../config.example.toml");

/// What `userdrop` runs on when neither `--config` nor `USERDROP_CONFIG` is
/// given (docs/behaviour.md#the-embedded-default).
pub const EMBEDDED_DEFAULT: &str = include_str!("embedded_default.toml");

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Where the configuration came from (a path, or "embedded default").
    pub source_name: String,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {n} problem{}:",
            self.source_name,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the config came from, for messages.
    pub source_name: String,
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    pub workers: usize,
    pub schedule: cron::Schedule,
    pub retention_days: u32,
    /// How long the change ledger keeps a change (the feed's and the
    /// provisioner's history).
    pub changes_retention_days: u32,
    pub settle: Duration,
    pub sftp: SftpConfig,
    pub mail: MailConfig,
    /// `None`: no `[http]` table, no HTTP port.
    pub http: Option<HttpConfig>,
    pub tenants: BTreeMap<String, Tenant>,
}

#[derive(Debug, Clone)]
pub struct SftpConfig {
    pub listen: SocketAddr,
    pub max_sessions: usize,
    pub max_sessions_per_account: usize,
    pub idle_timeout: Duration,
    pub incomplete_ttl: Duration,
    pub ban_after: u32,
    pub ban_window: Duration,
    pub ban_for: Duration,
    /// Open SFTP handles (files and directories) one account may hold,
    /// across all its sessions and channels.
    pub max_handles_per_account: usize,
    /// Entries a directory of a tenant may hold: an upload of a new name
    /// into a directory that holds this many is refused.
    pub max_inbox_entries: usize,
    // Pre-login limits: see config/sftp.rs.
    pub login_grace_time: Duration,
    pub max_unauthenticated_per_address: usize,
    pub max_startups: MaxStartups,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    StartTls,
    Tls,
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Smtp {
        host: String,
        port: u16,
        security: Security,
        username: Option<String>,
        /// Where the password comes from; never the password itself, so that
        /// a printed Config cannot leak it.
        password: Option<SecretSource>,
        /// PEM certificates to trust instead of the system's CA store (a
        /// private CA).
        ca_file: Option<PathBuf>,
    },
    /// Messages written as `.eml` files into a directory.
    File { dir: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub transport: Transport,
    pub from: String,
    pub reply_to: Option<String>,
    pub max_attachment_bytes: u64,
    pub give_up_after: Duration,
    /// The first retry waits this long; each next one twice as long, up to
    /// `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

/// What a tenant's messages are composed and queued with: the system
/// sender of `[smtp]`, copied into each tenant so that a job queues its
/// mail from its tenant alone.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub from: String,
    pub reply_to: Option<String>,
    pub max_attachment_bytes: u64,
    pub give_up_after: Duration,
}

/// `[tenants.NAME.invitation]`: sent to each user a job creates whose row
/// asked for one (`notifyIfNewUser`).
#[derive(Debug, Clone)]
pub struct Invitation {
    pub subject: Template,
    pub body: Template,
    /// Filled in first (values percent-encoded), then given to the others
    /// as `{link}`.
    pub link: Option<Template>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Upsert,
    Insert,
    Sync,
}

impl Mode {
    /// The names a mode is asked for by: the config's, and `delsert`, which
    /// other import APIs call a sync (delete what the file lacks).
    pub const NAMES: &'static [(&'static str, Mode)] = &[
        ("upsert", Mode::Upsert),
        ("insert", Mode::Insert),
        ("sync", Mode::Sync),
        ("delsert", Mode::Sync),
    ];

    /// By name, any case.
    pub fn from_name(name: &str) -> Option<Mode> {
        let l = name.trim().to_ascii_lowercase();
        Mode::NAMES.iter().find(|(n, _)| *n == l).map(|(_, m)| *m)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Upsert => "upsert",
            Mode::Insert => "insert",
            Mode::Sync => "sync",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Deactivate,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    SkipRows,
    RejectFile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    Failures,
    Always,
    Never,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub password_hash: Option<String>,
    pub authorized_keys: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub failed_import_email: Vec<String>,
    pub mode: Mode,
    pub missing: Missing,
    pub max_missing_percent: f64,
    pub on_error: OnError,
    pub delimiter: Delimiter,
    /// A forced encoding; `None` = auto (BOM, UTF-8, else `fallback_encoding`).
    pub encoding: Option<&'static encoding_rs::Encoding>,
    pub fallback_encoding: &'static encoding_rs::Encoding,
    pub date_format: String,
    pub role_separator: String,
    pub unknown_columns: UnknownColumns,
    pub notify: Notify,
    pub accept: Vec<String>,
    pub accept_set: globset::GlobSet,
    pub max_file_size: u64,
    pub accounts: Vec<Account>,
    /// Keys for the HTTP API, each one this tenant's only.
    pub api_keys: Vec<ApiKey>,
    pub schema: Schema,
    /// The export layout the tenant pins (`layout = "..."`); None: each
    /// file's header says which it is.
    pub layout: Option<crate::ingest::layout::Layout>,
    pub outgoing: Outgoing,
    pub invitation: Option<Invitation>,
    /// Where the tenant's job events are POSTed (`[[tenants.NAME.webhooks]]`).
    pub webhooks: Vec<Webhook>,
    /// `[tenants.NAME.provision]`: the SCIM application its users are
    /// pushed into (`crate::provision`).
    pub provision: Option<Provision>,
}

/// Where and how a tenant's users are provisioned over SCIM 2.0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    /// The SCIM base URL, without a trailing slash (`…/scim/v2`).
    pub scim_url: String,
    /// The bearer token's source (never its value).
    pub token: SecretSource,
    /// PEM certificates to trust instead of the system's CA store.
    pub ca_file: Option<PathBuf>,
}

impl Tenant {
    pub fn key(&self) -> KeyField {
        self.schema.key
    }

    /// Whether a dropped file's name is one this tenant imports.
    pub fn accepts(&self, file_name: &str) -> bool {
        self.accept_set.is_match(file_name.to_lowercase())
    }

    pub fn decode_options(&self) -> crate::ingest::decode::DecodeOptions {
        crate::ingest::decode::DecodeOptions {
            delimiter: self.delimiter,
            forced: self.encoding,
            fallback: self.fallback_encoding,
        }
    }
}

impl Config {
    /// Reads the config named by `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => {
                let name = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    source_name: name.clone(),
                    problems: vec![format!("cannot read the file: {e}")],
                })?;
                Config::parse(&text, &name)
            }
            None => Config::parse(EMBEDDED_DEFAULT, "embedded default config"),
        }
    }

    pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let fail = |problems: Vec<String>| ConfigError {
            source_name: source_name.to_string(),
            problems,
        };
        Config::parse_checking(text, source_name, false).map_err(fail)
    }

    /// What `check-config` reads: [`Config::load`], and also what only the
    /// environment of the process can tell (an unset `password_env`).
    pub fn load_for_check(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (text, name) = match path {
            Some(p) => {
                let name = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    source_name: name.clone(),
                    problems: vec![format!("cannot read the file: {e}")],
                })?;
                (text, name)
            }
            None => (
                EMBEDDED_DEFAULT.to_string(),
                "embedded default config".into(),
            ),
        };
        Config::parse_checking(&text, &name, true).map_err(|problems| ConfigError {
            source_name: name,
            problems,
        })
    }

    /// Every syntax error, then every unknown key, then every problem of
    /// the values, in one list.
    fn parse_checking(text: &str, source_name: &str, env: bool) -> Result<Config, Vec<String>> {
        let mut table = keys::parse(text)?;
        let mut problems = Vec::new();
        keys::strip_unknown(&mut table, &mut problems);
        let raw: RawConfig = match toml::Value::Table(table).try_into() {
            Ok(raw) => raw,
            Err(e) => {
                problems.push(toml_problem(&e));
                return Err(problems);
            }
        };
        match validate(raw, source_name, env) {
            Ok(c) if problems.is_empty() => Ok(c),
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
        }
    }

    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.get(name)
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("userdrop.db")
    }

    pub fn tenant_root(&self, tenant: &str) -> PathBuf {
        self.data_dir.join("tenants").join(tenant)
    }

    pub fn spool_dir(&self, tenant: &str) -> PathBuf {
        self.data_dir.join("spool").join(tenant)
    }
}

fn toml_problem(e: &toml::de::Error) -> String {
    // toml's message carries the line and a caret; keep it on one line.
    e.to_string().trim().replace('\n', "\n    ")
}

fn validate(raw: RawConfig, source_name: &str, env: bool) -> Result<Config, Vec<String>> {
    let mut c = Check {
        env,
        ..Check::default()
    };

    let data_dir = match raw.data_dir.as_deref().map(str::trim) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            c.problems.push(
                "data_dir is required: the directory that holds the store, inboxes and archives"
                    .into(),
            );
            PathBuf::new()
        }
    };
    let log_format = c.choice(
        "log_format",
        raw.log_format.as_deref(),
        &[("human", LogFormat::Human), ("json", LogFormat::Json)],
    );
    let workers = c.count("workers", raw.workers, 2, 1, 64) as usize;
    let schedule_text = raw.schedule.as_deref().unwrap_or("0 */5 * * * *");
    let schedule = match cron::Schedule::from_str(schedule_text) {
        Ok(s) => s,
        Err(e) => {
            c.problems.push(format!(
                "schedule = {schedule_text:?} is not a cron expression with seconds ({e}); \
                 the default is \"0 */5 * * * *\" (every 5 minutes)"
            ));
            cron::Schedule::from_str("0 */5 * * * *").expect("default schedule parses")
        }
    };
    let retention_days = c.count("retention_days", raw.retention_days, 30, 1, 36500) as u32;
    let changes_retention_days = c.count(
        "changes_retention_days",
        raw.changes_retention_days,
        90,
        1,
        36500,
    ) as u32;
    let settle = c.duration("settle", raw.settle.as_deref(), "5s");

    let sftp_raw: RawSftp = c.table("sftp", raw.sftp).unwrap_or_default();
    let sftp = sftp::check_sftp(&mut c, sftp_raw);
    let smtp_raw: Option<RawSmtp> = c.table("smtp", raw.smtp.clone());
    let mail = mail::check_mail(
        &mut c,
        smtp_raw.unwrap_or_default(),
        raw.smtp.is_some(),
        &data_dir,
        env,
    );

    let http = raw
        .http
        .clone()
        .and_then(|v| c.table::<RawHttp>("http", Some(v)))
        .map(|r| http::check_http(&mut c, r));

    let mut tenants = BTreeMap::new();
    let mut account_names: HashSet<String> = HashSet::new();
    let mut key_hashes = HashSet::new();
    if raw.tenants.is_empty() {
        c.problems
            .push("no tenants: add at least one [tenants.NAME] table".into());
    }
    for (name, value) in raw.tenants {
        let key = format!("tenants.{name}");
        if !tenant::valid_tenant_name(&name) {
            c.problems.push(format!(
                "[{key}]: a tenant name is a directory name: use letters, digits, `-` and `_` (at most 64), starting with a letter or digit"
            ));
        }
        let Some(rt) = c.table::<RawTenant>(&key, Some(value)) else {
            continue;
        };
        if let Some(t) = tenant::check_tenant(
            &mut c,
            &name,
            rt,
            &mut account_names,
            &mut key_hashes,
            &mail,
            env,
        ) {
            tenants.insert(name, t);
        }
    }

    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    Ok(Config {
        source_name: source_name.to_string(),
        data_dir,
        log_format,
        workers,
        schedule,
        retention_days,
        changes_retention_days,
        settle,
        sftp,
        mail,
        http,
        tenants,
    })
}
