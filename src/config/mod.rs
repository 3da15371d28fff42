//! The validated configuration: stage two of two. [`Config::load`] reads TOML
//! into the loose [`raw`] structs, then checks every value, collecting every
//! problem so that the operator fixes them all in one go ([`ConfigError`]
//! lists them). Defaults live here and in `config.example.toml`, which
//! documents every key. This module must never touch the data directory or
//! the network: loading a config has no side effects.

pub mod raw;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::ingest::decode::Delimiter;
use crate::ingest::schema::{FieldSettings, KeyField, Schema};
use crate::mail::template::{Template, Var};
use raw::{RawConfig, RawInvitation, RawSftp, RawSmtp, RawTenant};

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
    pub settle: Duration,
    pub sftp: SftpConfig,
    pub mail: MailConfig,
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
pub enum UnknownColumns {
    Ignore,
    Error,
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
    pub schema: Schema,
    pub outgoing: Outgoing,
    pub invitation: Option<Invitation>,
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
        let raw: RawConfig = toml::from_str(text).map_err(|e| fail(vec![toml_problem(&e)]))?;
        validate(raw, source_name).map_err(fail)
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

/// Collects problems while reading values with defaults.
struct Check {
    problems: Vec<String>,
}

impl Check {
    fn duration(&mut self, key: &str, value: Option<&str>, default: &str) -> Duration {
        let text = value.unwrap_or(default);
        match humantime::parse_duration(text) {
            Ok(d) => d,
            Err(e) => {
                self.problems.push(format!(
                    "{key} = {text:?} is not a duration ({e}); write it like \"90s\", \"10m\" or \"24h\""
                ));
                humantime::parse_duration(default).unwrap_or_default()
            }
        }
    }

    fn size(&mut self, key: &str, value: Option<&str>, default: &str) -> u64 {
        let text = value.unwrap_or(default);
        match text.trim().parse::<bytesize::ByteSize>() {
            Ok(b) if b.as_u64() > 0 => b.as_u64(),
            _ => {
                self.problems.push(format!(
                    "{key} = {text:?} is not a size; write it like \"512MiB\" or \"1GiB\""
                ));
                default
                    .parse::<bytesize::ByteSize>()
                    .map(|b| b.as_u64())
                    .unwrap_or(1)
            }
        }
    }

    fn count(&mut self, key: &str, value: Option<i64>, default: i64, min: i64, max: i64) -> i64 {
        let v = value.unwrap_or(default);
        if v < min || v > max {
            self.problems.push(format!(
                "{key} = {v} is out of range: use a whole number from {min} to {max}"
            ));
            default
        } else {
            v
        }
    }

    fn choice<T: Copy>(&mut self, key: &str, value: Option<&str>, options: &[(&str, T)]) -> T {
        let Some(text) = value else {
            return options[0].1;
        };
        match options.iter().find(|(name, _)| *name == text) {
            Some((_, v)) => *v,
            None => {
                let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
                self.problems.push(format!(
                    "{key} = {text:?} is not one of {}",
                    names.join(", ")
                ));
                options[0].1
            }
        }
    }

    fn address(&mut self, key: &str, addr: &str) {
        // Both the syntax check of imports and the mailer's must accept it.
        if email_address::EmailAddress::from_str(addr.trim()).is_err()
            || addr.trim().parse::<lettre::Address>().is_err()
        {
            self.problems
                .push(format!("{key}: {addr:?} is not an email address"));
        }
    }

    /// Deserialises one table on its own, so that its unknown keys are
    /// reported alongside every other table's problems.
    fn table<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        key: &str,
        value: Option<toml::Value>,
    ) -> Option<T> {
        match value {
            None => Some(T::default()),
            Some(v) => match v.try_into::<T>() {
                Ok(t) => Some(t),
                Err(e) => {
                    self.problems
                        .push(format!("[{key}]: {}", e.to_string().trim()));
                    None
                }
            },
        }
    }
}

fn validate(raw: RawConfig, source_name: &str) -> Result<Config, Vec<String>> {
    let mut c = Check {
        problems: Vec::new(),
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
    let settle = c.duration("settle", raw.settle.as_deref(), "5s");

    let sftp_raw: RawSftp = c.table("sftp", raw.sftp).unwrap_or_default();
    let sftp = validate_sftp(&mut c, sftp_raw);
    let smtp_raw: Option<RawSmtp> = c.table("smtp", raw.smtp.clone());
    let mail = validate_mail(
        &mut c,
        smtp_raw.unwrap_or_default(),
        raw.smtp.is_some(),
        &data_dir,
    );

    let mut tenants = BTreeMap::new();
    let mut account_names: HashSet<String> = HashSet::new();
    if raw.tenants.is_empty() {
        c.problems
            .push("no tenants: add at least one [tenants.NAME] table".into());
    }
    for (name, value) in raw.tenants {
        let key = format!("tenants.{name}");
        if !valid_tenant_name(&name) {
            c.problems.push(format!(
                "[{key}]: a tenant name is a directory name: use letters, digits, `-` and `_` (at most 64), starting with a letter or digit"
            ));
        }
        let Some(rt) = c.table::<RawTenant>(&key, Some(value)) else {
            continue;
        };
        if let Some(t) = validate_tenant(&mut c, &name, rt, &mut account_names, &mail) {
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
        settle,
        sftp,
        mail,
        tenants,
    })
}

fn valid_tenant_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn validate_sftp(c: &mut Check, r: RawSftp) -> SftpConfig {
    let listen_text = r.listen.as_deref().unwrap_or("0.0.0.0:2222");
    let listen = listen_text.parse().unwrap_or_else(|_| {
        c.problems.push(format!(
            "sftp.listen = {listen_text:?} is not an address and port like \"0.0.0.0:2222\""
        ));
        SocketAddr::from(([0, 0, 0, 0], 2222))
    });
    SftpConfig {
        listen,
        max_sessions: c.count("sftp.max_sessions", r.max_sessions, 100, 1, 100_000) as usize,
        max_sessions_per_account: c.count(
            "sftp.max_sessions_per_account",
            r.max_sessions_per_account,
            10,
            1,
            100_000,
        ) as usize,
        idle_timeout: c.duration("sftp.idle_timeout", r.idle_timeout.as_deref(), "10m"),
        incomplete_ttl: c.duration("sftp.incomplete_ttl", r.incomplete_ttl.as_deref(), "24h"),
        ban_after: c.count("sftp.ban_after", r.ban_after, 10, 1, 1_000_000) as u32,
        ban_window: c.duration("sftp.ban_window", r.ban_window.as_deref(), "10m"),
        ban_for: c.duration("sftp.ban_for", r.ban_for.as_deref(), "15m"),
    }
}

fn validate_mail(c: &mut Check, r: RawSmtp, present: bool, data_dir: &Path) -> MailConfig {
    let transport_kind = c.choice(
        "smtp.transport",
        r.transport.as_deref(),
        &[("smtp", "smtp"), ("file", "file")],
    );
    // Without an [smtp] table mail goes to .eml files in the data dir, so a
    // fresh install never loses a report for want of a mail server.
    let transport = if transport_kind == "file" || !present {
        let dir = r
            .dir
            .as_deref()
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("mail"));
        Transport::File { dir }
    } else {
        let host = r.host.clone().unwrap_or_else(|| {
            c.problems
                .push("smtp.host is required with transport = \"smtp\"".into());
            String::new()
        });
        let security = c.choice(
            "smtp.security",
            r.security.as_deref(),
            &[
                ("starttls", Security::StartTls),
                ("tls", Security::Tls),
                ("none", Security::None),
            ],
        );
        let default_port = match security {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::None => 25,
        };
        let port = c.count("smtp.port", r.port, default_port, 1, 65535) as u16;
        let password = match (&r.password_env, &r.password_file) {
            (Some(_), Some(_)) => {
                c.problems
                    .push("smtp: set password_env or password_file, not both".into());
                None
            }
            (Some(v), None) => Some(SecretSource::Env(v.clone())),
            (None, Some(f)) => Some(SecretSource::File(PathBuf::from(f))),
            (None, None) => None,
        };
        if password.is_some() && r.username.is_none() {
            c.problems
                .push("smtp: a password source is set but no username".into());
        }
        if r.ca_file.is_some() && security == Security::None {
            c.problems
                .push("smtp.ca_file only applies with security = \"starttls\" or \"tls\"".into());
        }
        Transport::Smtp {
            host,
            port,
            security,
            username: r.username.clone(),
            password,
            ca_file: r.ca_file.as_deref().map(PathBuf::from),
        }
    };
    let retry_initial = c.duration("smtp.retry_initial", r.retry_initial.as_deref(), "30s");
    let retry_max = c.duration("smtp.retry_max", r.retry_max.as_deref(), "30m");
    if retry_initial.is_zero() {
        c.problems
            .push("smtp.retry_initial must be longer than zero".into());
    }
    if retry_max < retry_initial {
        c.problems
            .push("smtp.retry_max must be at least smtp.retry_initial".into());
    }
    let from = r
        .from
        .clone()
        .unwrap_or_else(|| "userdrop <userdrop@localhost>".to_string());
    if from.parse::<MailboxCheck>().is_err() || from.parse::<lettre::message::Mailbox>().is_err() {
        c.problems.push(format!(
            "smtp.from = {from:?} is not an address like \"User Import <noreply@example.com>\""
        ));
    }
    if let Some(rt) = &r.reply_to {
        c.address("smtp.reply_to", rt);
    }
    if r.transport.as_deref() == Some("file") {
        for (key, set) in [
            ("host", r.host.is_some()),
            ("username", r.username.is_some()),
            ("password_env", r.password_env.is_some()),
            ("password_file", r.password_file.is_some()),
            ("ca_file", r.ca_file.is_some()),
        ] {
            if set {
                c.problems.push(format!(
                    "smtp.{key} does not apply with transport = \"file\" (only dir does)"
                ));
            }
        }
    }
    MailConfig {
        transport,
        from,
        reply_to: r.reply_to.clone(),
        max_attachment_bytes: c.size(
            "smtp.max_attachment_bytes",
            r.max_attachment_bytes.as_deref(),
            "10MiB",
        ),
        give_up_after: c.duration("smtp.give_up_after", r.give_up_after.as_deref(), "3d"),
        retry_initial,
        retry_max,
    }
}

fn validate_invitation(c: &mut Check, key: &str, r: RawInvitation) -> Option<Invitation> {
    let before = c.problems.len();
    let mut template = |name: &str, text: Option<&str>, required: bool| {
        let Some(text) = text else {
            if required {
                c.problems.push(format!(
                    "{key}.{name} is required in an invitation (placeholders: {{first_name}}, {{last_name}}, {{email}}, {{user_id}}, {{tenant}}, {{link}})"
                ));
            }
            return None;
        };
        match Template::parse(text) {
            Ok(t) => Some(t),
            Err(e) => {
                c.problems.push(format!("{key}.{name}: {e}"));
                None
            }
        }
    };
    let subject = template("subject", r.subject.as_deref(), true);
    let body = template("body", r.body.as_deref(), true);
    let link = template("link", r.link.as_deref(), false);
    if let Some(l) = &link {
        if l.uses(Var::Link) {
            c.problems
                .push(format!("{key}.link cannot contain {{link}} itself"));
        }
    }
    let uses_link = |t: &Option<Template>| t.as_ref().is_some_and(|t| t.uses(Var::Link));
    if link.is_none() && (uses_link(&subject) || uses_link(&body)) {
        c.problems.push(format!(
            "{key}: the subject or body uses {{link}} but no link template is set"
        ));
    }
    if let Some(s) = &r.subject {
        if s.contains(['\r', '\n']) {
            c.problems.push(format!("{key}.subject must be one line"));
        }
    }
    if c.problems.len() != before {
        return None;
    }
    Some(Invitation {
        subject: subject?,
        body: body?,
        link,
    })
}

/// `Name <addr>` or a bare address.
struct MailboxCheck;

impl FromStr for MailboxCheck {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let addr = match (s.rfind('<'), s.rfind('>')) {
            (Some(a), Some(b)) if a < b && s[b + 1..].trim().is_empty() => &s[a + 1..b],
            (None, None) => s,
            _ => return Err(()),
        };
        email_address::EmailAddress::from_str(addr.trim())
            .map(|_| MailboxCheck)
            .map_err(|_| ())
    }
}

fn validate_tenant(
    c: &mut Check,
    name: &str,
    r: RawTenant,
    account_names: &mut HashSet<String>,
    mail: &MailConfig,
) -> Option<Tenant> {
    let k = |key: &str| format!("tenants.{name}.{key}");
    let before = c.problems.len();

    let failed_import_email = r
        .failed_import_email
        .map(|v| v.into_vec())
        .unwrap_or_default();
    if failed_import_email.is_empty() {
        c.problems.push(format!(
            "{}: at least one address is needed, so that failed rows reach someone",
            k("failed_import_email")
        ));
    }
    for a in &failed_import_email {
        c.address(&k("failed_import_email"), a);
    }
    let invitation = r
        .invitation
        .and_then(|i| validate_invitation(c, &k("invitation"), i));
    let mode = c.choice(
        &k("mode"),
        r.mode.as_deref(),
        &[
            ("upsert", Mode::Upsert),
            ("insert", Mode::Insert),
            ("sync", Mode::Sync),
        ],
    );
    let missing = c.choice(
        &k("missing"),
        r.missing.as_deref(),
        &[
            ("deactivate", Missing::Deactivate),
            ("delete", Missing::Delete),
        ],
    );
    if r.missing.is_some() && mode != Mode::Sync {
        c.problems.push(format!(
            "{}: `missing` only applies with mode = \"sync\"",
            k("missing")
        ));
    }
    let max_missing_percent = r.max_missing_percent.unwrap_or(10.0);
    if !(0.0..=100.0).contains(&max_missing_percent) {
        c.problems.push(format!(
            "{} = {max_missing_percent} must be between 0 and 100",
            k("max_missing_percent")
        ));
    }
    let on_error = c.choice(
        &k("on_error"),
        r.on_error.as_deref(),
        &[
            ("skip_rows", OnError::SkipRows),
            ("reject_file", OnError::RejectFile),
        ],
    );
    let key = c.choice(
        &k("key"),
        r.key.as_deref(),
        &[
            ("user_id", KeyField::UserId),
            ("email", KeyField::Email),
            ("mobile_number", KeyField::MobileNumber),
        ],
    );
    let delimiter = c.choice(
        &k("delimiter"),
        r.delimiter.as_deref(),
        &[
            ("auto", Delimiter::Auto),
            ("comma", Delimiter::Fixed(b',')),
            ("semicolon", Delimiter::Fixed(b';')),
            ("pipe", Delimiter::Fixed(b'|')),
            ("tab", Delimiter::Fixed(b'\t')),
            ("hyphen", Delimiter::Fixed(b'-')),
        ],
    );
    let mut encoding_label = |key: &str,
                              value: Option<&str>|
     -> Option<&'static encoding_rs::Encoding> {
        let v = value?;
        if v == "auto" {
            return None;
        }
        let enc = encoding_rs::Encoding::for_label(v.as_bytes());
        if enc.is_none() {
            c.problems.push(format!(
                "{key} = {v:?} is not an encoding label (examples: \"windows-1252\", \"iso-8859-15\", \"utf-8\")"
            ));
        }
        enc
    };
    let encoding = encoding_label(&k("encoding"), r.encoding.as_deref());
    let fallback_encoding = encoding_label(&k("fallback_encoding"), r.fallback_encoding.as_deref())
        .unwrap_or(encoding_rs::WINDOWS_1252);
    let date_format = r.date_format.unwrap_or_else(|| "%Y-%m-%d".to_string());
    if chrono::format::StrftimeItems::new(&date_format)
        .parse()
        .is_err()
        || !date_format.contains('%')
    {
        c.problems.push(format!(
            "{} = {date_format:?} is not a date format like \"%Y-%m-%d\" or \"%d/%m/%Y\"",
            k("date_format")
        ));
    }
    let role_separator = r.role_separator.unwrap_or_else(|| "|".to_string());
    if role_separator.is_empty() || role_separator.trim().is_empty() {
        c.problems.push(format!(
            "{}: the separator cannot be empty or blank",
            k("role_separator")
        ));
    }
    let unknown_columns = c.choice(
        &k("unknown_columns"),
        r.unknown_columns.as_deref(),
        &[
            ("ignore", UnknownColumns::Ignore),
            ("error", UnknownColumns::Error),
        ],
    );
    let notify = c.choice(
        &k("notify"),
        r.notify.as_deref(),
        &[
            ("failures", Notify::Failures),
            ("always", Notify::Always),
            ("never", Notify::Never),
        ],
    );
    let accept = r
        .accept
        .unwrap_or_else(|| vec!["*.csv".to_string(), "*.txt".to_string()]);
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in &accept {
        match globset::Glob::new(&pattern.to_lowercase()) {
            Ok(g) => {
                builder.add(g);
            }
            Err(e) => c.problems.push(format!(
                "{}: {pattern:?} is not a file pattern ({e})",
                k("accept")
            )),
        }
    }
    let accept_set = builder
        .build()
        .unwrap_or_else(|_| globset::GlobSet::empty());
    let max_file_size = c.size(&k("max_file_size"), r.max_file_size.as_deref(), "1GiB");

    let mut accounts = Vec::new();
    for a in r.accounts {
        let ak = k(&format!("accounts.{}", a.name));
        if a.name.is_empty()
            || a.name.len() > 64
            || !a
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        {
            c.problems.push(format!(
                "{ak}: an account name uses letters, digits, `-`, `_`, `.` and `@` (at most 64)"
            ));
        }
        if !account_names.insert(a.name.clone()) {
            c.problems.push(format!(
                "{ak}: the account name is used twice; SFTP logins must be unique across all tenants"
            ));
        }
        if let Some(h) = &a.password_hash {
            match argon2::PasswordHash::new(h) {
                Ok(p) if p.algorithm.as_str() == "argon2id" => {}
                _ => c.problems.push(format!(
                    "{ak}.password_hash is not an argon2id hash; make one with `userdrop passwd`"
                )),
            }
        }
        for line in &a.authorized_keys {
            let mut parts = line.split_whitespace();
            let ok = matches!(
                (parts.next(), parts.next()),
                (Some(kind), Some(_)) if kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-")
            );
            if !ok {
                c.problems.push(format!(
                    "{ak}.authorized_keys: {:?} is not a public key line like \"ssh-ed25519 AAAA… comment\"",
                    line.chars().take(40).collect::<String>()
                ));
            }
        }
        if a.password_hash.is_none() && a.authorized_keys.is_empty() {
            c.problems.push(format!(
                "{ak}: give the account a password_hash or authorized_keys, or it can never log in"
            ));
        }
        accounts.push(Account {
            name: a.name,
            password_hash: a.password_hash,
            authorized_keys: a.authorized_keys,
        });
    }

    let extra: Vec<(String, FieldSettings)> = r
        .fields
        .into_iter()
        .map(|(fname, f)| {
            let max_len = f.max_len.and_then(|m| {
                if m < 1 {
                    c.problems.push(format!(
                        "{}.max_len must be at least 1",
                        k(&format!("fields.{fname}"))
                    ));
                    None
                } else {
                    Some(m as usize)
                }
            });
            (
                fname,
                FieldSettings {
                    possible_names: f.possible_names,
                    required: f.required,
                    max_len,
                },
            )
        })
        .collect();
    let schema = match Schema::build(key, &extra) {
        Ok(s) => Some(s),
        Err(ps) => {
            c.problems
                .extend(ps.into_iter().map(|p| format!("tenants.{name}.{p}")));
            None
        }
    };

    if c.problems.len() != before {
        return None;
    }
    Some(Tenant {
        name: name.to_string(),
        failed_import_email,
        mode,
        missing,
        max_missing_percent,
        on_error,
        delimiter,
        encoding,
        fallback_encoding,
        date_format,
        role_separator,
        unknown_columns,
        notify,
        accept,
        accept_set,
        max_file_size,
        accounts,
        schema: schema?,
        outgoing: Outgoing {
            from: mail.from.clone(),
            reply_to: mail.reply_to.clone(),
            max_attachment_bytes: mail.max_attachment_bytes,
            give_up_after: mail.give_up_after,
        },
        invitation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_and_embedded_default_are_valid() {
        Config::parse(EXAMPLE, "example").unwrap();
        let c = Config::parse(EMBEDDED_DEFAULT, "embedded").unwrap();
        assert!(c.tenants.contains_key("demo"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            workers = 0
            schedule = "every five minutes"
            [sftp]
            idle_timeout = "soon"
            [tenants.acme]
            failed_import_email = ["not-an-address"]
            mode = "merge"
            delimiter = "colon"
            [tenants.beta]
            failed_import_email = "it@beta.example"
            colour = "blue"
        "#;
        let err = Config::parse(text, "t.toml").unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "data_dir is required",
            "workers = 0",
            "schedule",
            "sftp.idle_timeout",
            "not-an-address",
            "tenants.acme.mode = \"merge\"",
            "tenants.acme.delimiter = \"colon\"",
            "colour",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
        assert!(err.problems.len() >= 8, "{all}");
    }

    #[test]
    fn mail_settings_and_invitations() {
        let c = Config::parse(EXAMPLE, "example").unwrap();
        let t = c.tenant("acme").unwrap();
        let inv = t
            .invitation
            .as_ref()
            .expect("the example has an invitation");
        assert!(inv.link.is_some());
        assert_eq!(t.outgoing.from, "User Import <noreply@example.com>");
        assert_eq!(c.mail.retry_initial, Duration::from_secs(30));
        assert_eq!(c.mail.retry_max, Duration::from_secs(1800));
        let text = r#"
            data_dir = "/tmp/x"
            [smtp]
            host = "mail.example.com"
            security = "tls"
            ca_file = "/etc/ca.pem"
            retry_initial = "10m"
            retry_max = "1m"
            [tenants.acme]
            failed_import_email = "it@acme.example"
            [tenants.acme.invitation]
            subject = "Hi {first_name}"
        "#;
        let err = Config::parse(text, "t").unwrap_err().problems.join("\n");
        assert!(err.contains("retry_max must be at least"), "{err}");
        assert!(err.contains("invitation.body is required"), "{err}");
        let ok = text.replace("retry_max = \"1m\"", "").replace(
            "subject = \"Hi {first_name}\"",
            "subject = \"Hi\"\nbody = \"b\"",
        );
        let c = Config::parse(&ok, "t").unwrap();
        assert!(matches!(
            c.mail.transport,
            Transport::Smtp {
                port: 465,
                ca_file: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn tenant_defaults_follow_the_spec() {
        let c = Config::parse(
            "data_dir = \"/tmp/x\"\n[tenants.acme]\nfailed_import_email = \"it@acme.example\"\n",
            "t",
        )
        .unwrap();
        let t = c.tenant("acme").unwrap();
        assert_eq!(t.mode, Mode::Upsert);
        assert_eq!(t.on_error, OnError::SkipRows);
        assert_eq!(t.max_missing_percent, 10.0);
        assert_eq!(t.key(), KeyField::UserId);
        assert!(t.accepts("Users.CSV") && t.accepts("export.txt") && !t.accepts("users.xlsx"));
        assert_eq!(t.max_file_size, 1 << 30);
        assert_eq!(c.sftp.ban_after, 10);
        assert_eq!(c.sftp.ban_for, Duration::from_secs(900));
        assert!(matches!(c.mail.transport, Transport::File { .. }));
    }
}
