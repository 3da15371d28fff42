//! `[smtp]` and a tenant's `invitation`: the transport, its security and
//! credentials, the sender, the retry schedule, and the invitation
//! templates. Checks only: it must never read a secret's value or connect
//! (for `check-config` it asks whether `password_env` is set, never what).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::check::Check;
use super::raw::{RawInvitation, RawSmtp};
use super::{Invitation, MailConfig, SecretSource, Security, Transport};
use crate::template::{Template, Var};

/// `env`: also check what the process environment must provide (an unset
/// `password_env` would fail every delivery); `check-config` asks for it.
pub(super) fn check_mail(
    c: &mut Check,
    r: RawSmtp,
    present: bool,
    data_dir: &Path,
    env: bool,
) -> MailConfig {
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
            (Some(v), None) => {
                if env && std::env::var_os(v).is_none_or(|x| x.is_empty()) {
                    c.problems.push(format!(
                        "smtp.password_env = {v:?}: the environment variable {v} is not set (or empty) here, so serve could not log in to {}; export it in the service's environment",
                        r.host.as_deref().unwrap_or("the SMTP server")
                    ));
                }
                Some(SecretSource::Env(v.clone()))
            }
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

pub(super) fn check_invitation(c: &mut Check, key: &str, r: RawInvitation) -> Option<Invitation> {
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
