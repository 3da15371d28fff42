//! `[tenants.NAME]`: how a tenant's files are read and applied, its SFTP
//! accounts and its extra fields. Checks only: it must never create the
//! tenant's directories.

use std::collections::HashSet;
use std::str::FromStr as _;

use russh::keys::ssh_key::authorized_keys::Entry as AuthorizedKey;

use super::check::Check;
use super::raw::RawTenant;
use super::*;
use crate::ingest::headers::HeaderRules;
use crate::ingest::layout::Layout;

pub(super) fn valid_tenant_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(super) fn check_tenant(
    c: &mut Check,
    name: &str,
    mut r: RawTenant,
    account_names: &mut HashSet<String>,
    key_hashes: &mut HashSet<[u8; 32]>,
    mail: &MailConfig,
    env: bool,
) -> Option<Tenant> {
    // Problems are listed in the order of this function: keep it stable,
    // operators read them top to bottom.
    let k = |key: &str| format!("tenants.{name}.{key}");
    let before = c.problems.len();
    let failed_import_email =
        check_recipients(c, &k("failed_import_email"), r.failed_import_email.take());
    let invitation = r
        .invitation
        .take()
        .and_then(|i| super::mail::check_invitation(c, &k("invitation"), i));
    let applying = check_applying(c, &k, &r);
    let reading = check_reading(c, &k, &r);
    let notify = c.choice(
        &k("notify"),
        r.notify.as_deref(),
        &[
            ("failures", Notify::Failures),
            ("always", Notify::Always),
            ("never", Notify::Never),
        ],
    );
    let (accept, accept_set) = check_accept(c, &k("accept"), r.accept.take());
    let max_file_size = c.size(&k("max_file_size"), r.max_file_size.as_deref(), "1GiB");
    let accounts = check_accounts(c, &k, r.accounts, account_names);
    let api_keys = super::http::check_api_keys(c, &k, std::mem::take(&mut r.api_keys), key_hashes);
    let layout = check_layout(c, &k("layout"), r.layout.as_deref());
    let schema = check_fields(c, name, applying.key, r.fields);
    let webhooks = super::webhook::check_webhooks(c, name, std::mem::take(&mut r.webhooks));
    let provision = r
        .provision
        .take()
        .and_then(|p| super::provision::check_provision(c, &k("provision"), p, env));

    if c.problems.len() != before {
        return None;
    }
    Some(Tenant {
        name: name.to_string(),
        failed_import_email,
        mode: applying.mode,
        missing: applying.missing,
        max_missing_percent: applying.max_missing_percent,
        on_error: applying.on_error,
        delimiter: reading.delimiter,
        encoding: reading.encoding,
        fallback_encoding: reading.fallback_encoding,
        date_format: reading.date_format,
        role_separator: reading.role_separator,
        unknown_columns: reading.unknown_columns,
        notify,
        accept,
        accept_set,
        max_file_size,
        accounts,
        api_keys,
        schema: schema?,
        layout,
        outgoing: Outgoing {
            from: mail.from.clone(),
            reply_to: mail.reply_to.clone(),
            max_attachment_bytes: mail.max_attachment_bytes,
            give_up_after: mail.give_up_after,
        },
        invitation,
        webhooks,
        provision,
    })
}

/// Where failed rows are mailed: at least one address, each one valid.
fn check_recipients(c: &mut Check, key: &str, value: Option<raw::OneOrMany>) -> Vec<String> {
    let list = value.map(|v| v.into_vec()).unwrap_or_default();
    if list.is_empty() {
        c.problems.push(format!(
            "{key}: at least one address is needed, so that failed rows reach someone"
        ));
    }
    for a in &list {
        c.address(key, a);
    }
    list
}

/// How a tenant's rows are applied and reported.
struct Applying {
    mode: Mode,
    missing: Missing,
    max_missing_percent: f64,
    on_error: OnError,
    key: KeyField,
}

fn check_applying(c: &mut Check, k: &dyn Fn(&str) -> String, r: &RawTenant) -> Applying {
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
    Applying {
        mode,
        missing,
        max_missing_percent,
        on_error,
        key,
    }
}

/// How a tenant's files are read: delimiter, encodings, dates, roles,
/// columns nobody asked for.
struct Reading {
    delimiter: Delimiter,
    encoding: Option<&'static encoding_rs::Encoding>,
    fallback_encoding: &'static encoding_rs::Encoding,
    date_format: String,
    role_separator: String,
    unknown_columns: UnknownColumns,
}

fn check_reading(c: &mut Check, k: &dyn Fn(&str) -> String, r: &RawTenant) -> Reading {
    // Any case, and the upper-case names other drop-folder products use
    // (`COMMA`, `SEMI_COLON`, `PIPE`, `HYPHEN`, `TAB`).
    let delimiter_name = r.delimiter.as_deref().map(Delimiter::canonical_name);
    let delimiter = c.choice(
        &k("delimiter"),
        delimiter_name.as_deref(),
        crate::ingest::decode::DELIMITER_NAMES,
    );
    let encoding = check_encoding(c, &k("encoding"), r.encoding.as_deref());
    let fallback_encoding =
        check_encoding(c, &k("fallback_encoding"), r.fallback_encoding.as_deref())
            .unwrap_or(encoding_rs::WINDOWS_1252);
    let date_format = r
        .date_format
        .clone()
        .unwrap_or_else(|| "%Y-%m-%d".to_string());
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
    let role_separator = r.role_separator.clone().unwrap_or_else(|| "|".to_string());
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
    Reading {
        delimiter,
        encoding,
        fallback_encoding,
        date_format,
        role_separator,
        unknown_columns,
    }
}

/// An encoding label, or `None` for "auto" (and for a bad label, which is
/// recorded).
fn check_encoding(
    c: &mut Check,
    key: &str,
    value: Option<&str>,
) -> Option<&'static encoding_rs::Encoding> {
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
}

/// Which file names may become a job: globs, matched lower-cased.
fn check_accept(
    c: &mut Check,
    key: &str,
    value: Option<Vec<String>>,
) -> (Vec<String>, globset::GlobSet) {
    let accept = value.unwrap_or_else(|| vec!["*.csv".to_string(), "*.txt".to_string()]);
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in &accept {
        match globset::Glob::new(&pattern.to_lowercase()) {
            Ok(g) => {
                builder.add(g);
            }
            Err(e) => c
                .problems
                .push(format!("{key}: {pattern:?} is not a file pattern ({e})")),
        }
    }
    let set = builder
        .build()
        .unwrap_or_else(|_| globset::GlobSet::empty());
    (accept, set)
}

/// The tenant's SFTP accounts: names unique across all tenants, argon2id
/// hashes, public key lines, and a way to log in.
fn check_accounts(
    c: &mut Check,
    k: &dyn Fn(&str) -> String,
    raw: Vec<raw::RawAccount>,
    account_names: &mut HashSet<String>,
) -> Vec<Account> {
    let mut accounts = Vec::new();
    for a in raw {
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
        for (i, line) in a.authorized_keys.iter().enumerate() {
            // The parser the SFTP server reads them with: a line it would
            // skip is an error here, not a login that fails later.
            if let Err(e) = AuthorizedKey::from_str(line.trim()) {
                c.problems.push(format!(
                    "{ak}.authorized_keys[{i}]: {:?} does not parse as a public key line like \"ssh-ed25519 AAAA… comment\" ({e}); serve would ignore it and this key could never log in",
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
    accounts
}

/// `layout = "..."`: one of the layouts' names, or absent (recognised from
/// each file's header).
fn check_layout(c: &mut Check, key: &str, value: Option<&str>) -> Option<Layout> {
    let text = value?;
    let layout = Layout::parse(text);
    if layout.is_none() {
        let names: Vec<String> = Layout::names().iter().map(|n| format!("{n:?}")).collect();
        c.problems.push(format!(
            "{key} = {text:?} is not one of {}",
            names.join(", ")
        ));
    }
    layout
}

impl Tenant {
    /// How the header of this tenant's files is found and read.
    pub fn header_rules(&self) -> HeaderRules<'_> {
        HeaderRules {
            schema: &self.schema,
            unknown: self.unknown_columns,
            layout: self.layout,
        }
    }
}

/// The tenant's own fields and extra header names, built into its schema.
fn check_fields(
    c: &mut Check,
    name: &str,
    key: KeyField,
    fields: BTreeMap<String, raw::RawField>,
) -> Option<Schema> {
    let extra: Vec<(String, FieldSettings)> = fields
        .into_iter()
        .map(|(fname, f)| {
            let max_len = f.max_len.and_then(|m| {
                if m < 1 {
                    c.problems.push(format!(
                        "tenants.{name}.fields.{fname}.max_len must be at least 1"
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
    match Schema::build(key, &extra) {
        Ok(s) => Some(s),
        Err(ps) => {
            c.problems
                .extend(ps.into_iter().map(|p| format!("tenants.{name}.{p}")));
            None
        }
    }
}
