//! The configuration exactly as written in TOML: stage one of two. Every
//! table denies unknown keys so a misspelt option is an error, never silently
//! ignored. Values stay loose here (strings for modes, durations and sizes);
//! `config::validate` turns them into a [`super::Config`] and reports every
//! problem at once. This module must never apply defaults or judge values.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub data_dir: Option<String>,
    pub log_format: Option<String>,
    pub workers: Option<i64>,
    pub schedule: Option<String>,
    pub retention_days: Option<i64>,
    pub changes_retention_days: Option<i64>,
    pub settle: Option<String>,
    pub sftp: Option<toml::Value>,
    pub smtp: Option<toml::Value>,
    pub http: Option<toml::Value>,
    /// Kept as raw values so that each tenant is deserialised on its own and
    /// the problems of every tenant are reported together.
    #[serde(default)]
    pub tenants: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSftp {
    pub listen: Option<String>,
    pub max_sessions: Option<i64>,
    pub max_sessions_per_account: Option<i64>,
    pub idle_timeout: Option<String>,
    pub incomplete_ttl: Option<String>,
    pub ban_after: Option<i64>,
    pub ban_window: Option<String>,
    pub ban_for: Option<String>,
    pub max_handles_per_account: Option<i64>,
    pub max_inbox_entries: Option<i64>,
    // Pre-login limits.
    pub login_grace_time: Option<String>,
    pub max_unauthenticated_per_address: Option<i64>,
    pub max_startups: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub listen: Option<String>,
    pub max_upload: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub metrics_token: Option<String>,
    pub header_timeout: Option<String>,
    pub request_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    pub name: String,
    pub hash: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    pub transport: Option<String>,
    pub dir: Option<String>,
    pub host: Option<String>,
    pub port: Option<i64>,
    pub security: Option<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<String>,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    pub max_attachment_bytes: Option<String>,
    pub give_up_after: Option<String>,
    pub ca_file: Option<String>,
    pub retry_initial: Option<String>,
    pub retry_max: Option<String>,
}

/// One address or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenant {
    pub failed_import_email: Option<OneOrMany>,
    pub mode: Option<String>,
    pub missing: Option<String>,
    pub max_missing_percent: Option<f64>,
    pub on_error: Option<String>,
    pub key: Option<String>,
    pub delimiter: Option<String>,
    pub encoding: Option<String>,
    pub fallback_encoding: Option<String>,
    pub date_format: Option<String>,
    pub role_separator: Option<String>,
    pub unknown_columns: Option<String>,
    /// Pins the export layout files are read as (`"oneroster"`, ...).
    pub layout: Option<String>,
    pub notify: Option<String>,
    pub accept: Option<Vec<String>>,
    pub max_file_size: Option<String>,
    #[serde(default)]
    pub accounts: Vec<RawAccount>,
    #[serde(default)]
    pub api_keys: Vec<RawApiKey>,
    #[serde(default)]
    pub fields: BTreeMap<String, RawField>,
    pub invitation: Option<RawInvitation>,
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
    pub provision: Option<RawProvision>,
}

/// `[[tenants.NAME.webhooks]]`: a receiver of the tenant's job events.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: Option<String>,
    pub secret_env: Option<String>,
    pub secret_file: Option<String>,
    pub events: Option<Vec<String>>,
}

/// `[tenants.NAME.provision]`: the SCIM 2.0 application the tenant's users
/// are pushed into.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvision {
    pub scim_url: Option<String>,
    pub token_env: Option<String>,
    pub token_file: Option<String>,
    pub ca_file: Option<String>,
}

/// `[tenants.NAME.invitation]`: the message a new user whose row says
/// `notifyIfNewUser = true` receives.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInvitation {
    pub subject: Option<String>,
    pub body: Option<String>,
    pub link: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccount {
    pub name: String,
    pub password_hash: Option<String>,
    #[serde(default)]
    pub authorized_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    #[serde(default)]
    pub possible_names: Vec<String>,
    pub required: Option<bool>,
    pub max_len: Option<i64>,
}
