//! `[[tenants.NAME.webhooks]]`: where a tenant's job events are POSTed,
//! which events, and the secret they are signed with. The secret is read
//! here, when the config is loaded (from `secret_env` or `secret_file`);
//! reloading the config (SIGHUP) reads it again. A missing one is a problem
//! for `check-config`; the other commands, which sign nothing, go on
//! without it, and `serve` then fails each delivery saying why (as it does
//! a missing SMTP password). This module must
//! never show a secret's value: not in a problem, not in `Debug`.

use std::fmt;
use std::path::PathBuf;

use super::check::Check;
use super::raw::RawWebhook;

/// What a job's decision is announced as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WebhookEvent {
    /// Applied: status `ok` or `rows_failed`.
    Finished,
    /// A sync held past `max_missing_percent`.
    Held,
    /// The whole file refused.
    Rejected,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 3] = [
        WebhookEvent::Finished,
        WebhookEvent::Held,
        WebhookEvent::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Finished => "job.finished",
            WebhookEvent::Held => "job.held",
            WebhookEvent::Rejected => "job.rejected",
        }
    }

    pub fn from_name(name: &str) -> Option<WebhookEvent> {
        WebhookEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// A signing secret's bytes. Its `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> WebhookSecret {
        WebhookSecret(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// One receiver of a tenant's job events.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// `http://` or `https://`, with a host.
    pub url: String,
    /// None when it could not be read (only `check-config` refuses that).
    pub secret: Option<WebhookSecret>,
    /// The events it wants; never empty.
    pub events: Vec<WebhookEvent>,
}

impl Webhook {
    pub fn wants(&self, event: WebhookEvent) -> bool {
        self.events.contains(&event)
    }
}

pub(super) fn check_webhooks(c: &mut Check, tenant: &str, raw: Vec<RawWebhook>) -> Vec<Webhook> {
    let mut out: Vec<Webhook> = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let key = format!("tenants.{tenant}.webhooks[{i}]");
        let before = c.problems.len();
        let url = r.url.unwrap_or_default();
        if url.is_empty() {
            c.problems.push(format!(
                "{key}.url is required: the https:// address the job events are POSTed to"
            ));
        } else if let Err(why) = check_url(&url) {
            c.problems
                .push(format!("{key}.url = {url:?} {why}; write it like \"https://app.example.com/hooks/userdrop\""));
        } else if out.iter().any(|w| w.url == url) {
            c.problems.push(format!(
                "{key}.url = {url:?} is configured twice for this tenant; list each receiver once, with every event it wants"
            ));
        }
        let secret = match (r.secret_env, r.secret_file) {
            (Some(_), Some(_)) => {
                c.problems
                    .push(format!("{key}: set secret_env or secret_file, not both"));
                None
            }
            (None, None) => {
                c.problems.push(format!(
                    "{key}: a secret is required to sign the events: set secret_env (an environment variable's name) or secret_file"
                ));
                None
            }
            (Some(var), None) => match std::env::var(&var) {
                Ok(v) if !v.trim().is_empty() => Some(Some(WebhookSecret::new(v.trim()))),
                _ if !c.env => Some(None),
                _ => {
                    c.problems.push(format!(
                        "{key}.secret_env = {var:?}: the environment variable {var} is not set (or empty, or not UTF-8) here; export it where userdrop runs (the service's environment)"
                    ));
                    None
                }
            },
            (None, Some(file)) => {
                let path = PathBuf::from(&file);
                match std::fs::read(&path) {
                    Ok(bytes) if !bytes.trim_ascii().is_empty() => {
                        Some(Some(WebhookSecret::new(bytes.trim_ascii())))
                    }
                    _ if !c.env => Some(None),
                    Ok(_) => {
                        c.problems.push(format!(
                            "{key}.secret_file = {file:?} is empty; write the secret into it"
                        ));
                        None
                    }
                    Err(e) => {
                        c.problems.push(format!(
                            "{key}.secret_file = {file:?} cannot be read ({e}); it must be readable by the user userdrop runs as"
                        ));
                        None
                    }
                }
            }
        };
        let mut events = Vec::new();
        match r.events {
            None => events.extend(WebhookEvent::ALL),
            Some(names) if names.is_empty() => c.problems.push(format!(
                "{key}.events is empty: list at least one of \"job.finished\", \"job.held\", \"job.rejected\", or leave it out for all three"
            )),
            Some(names) => {
                for name in names {
                    match WebhookEvent::from_name(&name) {
                        Some(e) if !events.contains(&e) => events.push(e),
                        Some(_) => {}
                        None => c.problems.push(format!(
                            "{key}.events: {name:?} is not one of \"job.finished\", \"job.held\", \"job.rejected\""
                        )),
                    }
                }
            }
        }
        if c.problems.len() != before {
            continue;
        }
        if let Some(secret) = secret {
            out.push(Webhook {
                url,
                secret,
                events,
            });
        }
    }
    out
}

/// An absolute http(s) URL with a host, as the sender parses it.
fn check_url(url: &str) -> Result<(), &'static str> {
    let uri: hyper::Uri = url.parse().map_err(|_| "is not a URL")?;
    match uri.scheme_str() {
        Some("https" | "http") => {}
        _ => return Err("must start with https:// (or http://)"),
    }
    match uri.host() {
        Some(h) if !h.is_empty() => Ok(()),
        _ => Err("has no host"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(url: &str, file: Option<&str>, events: Option<&[&str]>) -> RawWebhook {
        RawWebhook {
            url: Some(url.to_string()),
            secret_env: None,
            secret_file: file.map(str::to_string),
            events: events.map(|e| e.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn a_webhook_reads_its_secret_and_every_problem_is_listed_without_it() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("s");
        std::fs::write(&secret, "whsec-very-secret\n").unwrap();
        let s = secret.to_str().unwrap();
        let mut c = Check::default();
        let got = check_webhooks(
            &mut c,
            "acme",
            vec![raw("https://app.example.com/h", Some(s), None)],
        );
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(
            got[0].secret.as_ref().unwrap().expose(),
            b"whsec-very-secret"
        );
        assert_eq!(got[0].events, WebhookEvent::ALL);
        assert!(!format!("{got:?}").contains("very-secret"));

        // A command that signs nothing goes on without an unreadable one.
        let mut c = Check::default();
        let got = check_webhooks(
            &mut c,
            "acme",
            vec![raw(
                "https://a.example/h",
                Some("/nonexistent/secret"),
                None,
            )],
        );
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert!(got[0].secret.is_none());

        // check-config lists every problem, the unreadable secret too.
        let mut c = Check {
            env: true,
            ..Check::default()
        };
        let got = check_webhooks(
            &mut c,
            "acme",
            vec![
                raw("ftp://x/h", Some(s), Some(&["job.done"])),
                raw(
                    "https://a.example/h",
                    Some("/nonexistent/secret"),
                    Some(&[]),
                ),
                raw("https://app.example.com/h", Some(s), Some(&["job.held"])),
                raw("https://app.example.com/h", Some(s), None),
            ],
        );
        assert_eq!(got.len(), 1, "only the good one: {got:?}");
        let text = c.problems.join("\n");
        assert_eq!(c.problems.len(), 5, "{text}");
        assert!(text.contains("webhooks[0].url"), "{text}");
        assert!(text.contains("\"job.done\" is not one of"), "{text}");
        assert!(text.contains("webhooks[1].secret_file"), "{text}");
        assert!(text.contains("webhooks[1].events is empty"), "{text}");
        assert!(text.contains("configured twice"), "{text}");
        assert!(!text.contains("very-secret"), "{text}");
    }
}
