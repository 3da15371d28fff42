//! Delivers the queued webhooks: the daemon's task. Each pass claims due
//! deliveries (with a lease, like the mail outbox), signs each body with
//! its tenant's current secret at the time of the attempt, POSTs it, and
//! records the outcome at once: a 2xx answer is delivered; anything else
//! (another status, a network error, [`post::TIMEOUT`]) is tried again
//! after the mail's backoff ([`crate::mail::sender::backoff`] on `[smtp]`
//! `retry_initial` / `retry_max`), and given up with a loud error once a
//! failed attempt is past `give_up_after`. State lives in SQLite only, so
//! a restart carries on. This module must never change a body, and never
//! log or store a secret or a signature.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::{post, sign};
use crate::config::Config;
use crate::mail::sender::{backoff, blocking, error_text, open, SenderError, Shared};
use crate::store::outbox::now_ms;
use crate::store::webhooks::{self, Claimed};

/// How long a claimed delivery is held: far longer than an attempt.
const LEASE: Duration = Duration::from_secs(5 * 60);

/// Deliveries claimed at a time.
const BATCH: i64 = 20;

/// The longest the sender sleeps without looking at the store: other
/// processes (`userdrop import`, `jobs approve`) queue without waking it.
const POLL: Duration = Duration::from_secs(60);

/// One pass: every due delivery is attempted once.
async fn deliver(
    store: &Shared,
    config: &Config,
    tls: &tokio_rustls::TlsConnector,
    cancel: &CancellationToken,
) -> Result<(), SenderError> {
    let mut after = 0i64;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let now = now_ms();
        let lease_until = now + LEASE.as_millis() as i64;
        let batch = blocking(store, move |s| {
            webhooks::claim(s, now, lease_until, after, BATCH)
        })
        .await?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        let mut batch = batch.into_iter();
        while let Some(d) = batch.next() {
            let result = attempt(config, tls, &d).await;
            record(store, config, &d, result).await?;
            if cancel.is_cancelled() {
                let rest: Vec<i64> = batch.by_ref().map(|d| d.id).collect();
                blocking(store, move |s| {
                    for id in rest {
                        webhooks::release(s, id)?;
                    }
                    Ok(())
                })
                .await?;
                break;
            }
        }
    }
    Ok(())
}

/// A failed attempt: why, and the status code if the receiver answered.
type Failure = (String, Option<u16>);

async fn attempt(
    config: &Config,
    tls: &tokio_rustls::TlsConnector,
    d: &Claimed,
) -> Result<u16, Failure> {
    let hook = config
        .tenant(&d.tenant)
        .and_then(|t| t.webhooks.iter().find(|w| w.url == d.url))
        .ok_or_else(|| {
            (
                format!(
                    "tenant {} has no webhook with this url in the configuration any more, so there is no secret to sign with; put it back (and reload) or let it give up",
                    d.tenant
                ),
                None,
            )
        })?;
    let secret = hook.secret.as_ref().ok_or_else(|| {
        (
            format!(
                "the secret of tenant {}'s webhook could not be read when the configuration was loaded (its secret_env variable unset, or its secret_file unreadable or empty): provide it to the service and reload; `userdrop check-config` shows the problem",
                d.tenant
            ),
            None,
        )
    })?;
    let t = chrono::Utc::now().timestamp();
    let headers = [
        (
            "x-userdrop-signature",
            sign::signature(secret.expose(), t, &d.body),
        ),
        ("x-userdrop-event", d.event.clone()),
        ("x-userdrop-delivery", d.id.to_string()),
    ];
    match post::post(tls, &d.url, &headers, d.body.clone()).await {
        Ok(code) if (200..300).contains(&code) => Ok(code),
        Ok(code) => Err((format!("the receiver answered HTTP {code}"), Some(code))),
        Err(e) => Err((error_text(&e), None)),
    }
}

async fn record(
    store: &Shared,
    config: &Config,
    d: &Claimed,
    result: Result<u16, Failure>,
) -> Result<(), SenderError> {
    let now = now_ms();
    let id = d.id;
    match result {
        Ok(code) => {
            blocking(store, move |s| webhooks::mark_sent(s, id, now, code)).await?;
            tracing::info!(delivery = id, tenant = %d.tenant, job = d.job, event = %d.event,
                url = %d.url, status = code, attempts = d.attempts + 1, "webhook delivered");
        }
        Err((error, code)) if now >= d.expires_at => {
            let e = error.clone();
            blocking(store, move |s| webhooks::mark_failed(s, id, now, &e, code)).await?;
            tracing::error!(delivery = id, tenant = %d.tenant, job = d.job, event = %d.event,
                url = %d.url, attempts = d.attempts + 1, error = %error,
                "GAVE UP on a webhook after smtp.give_up_after: it was NOT delivered; fix the receiver, then see `userdrop webhooks list --state failed`");
        }
        Err((error, code)) => {
            let wait = backoff(&config.mail, d.attempts + 1);
            let next = now
                .saturating_add(wait.as_millis() as i64)
                .min(d.expires_at.max(now));
            let e = error.clone();
            blocking(store, move |s| {
                webhooks::mark_retry(s, id, now, next, &e, code)
            })
            .await?;
            tracing::warn!(delivery = id, tenant = %d.tenant, job = d.job, url = %d.url,
                attempts = d.attempts + 1,
                retry_in = %humantime::format_duration(Duration::from_millis((next - now) as u64)),
                error = %error, "webhook not delivered; will retry");
        }
    }
    Ok(())
}

/// The daemon's webhook task: delivers due deliveries, then sleeps until
/// the next is due, `wake` is notified (a job finished), the config
/// changes, or `cancel`. Errors are logged, never fatal.
pub async fn run(
    db: PathBuf,
    mut config: watch::Receiver<Arc<Config>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut store: Option<Shared> = None;
    let mut config_open = true;
    // Reading the system's CA store is file I/O: off the runtime.
    let tls = match tokio::task::spawn_blocking(post::tls).await {
        Ok(tls) => tls,
        Err(e) => {
            tracing::error!(error = %e, "webhook sender: the TLS settings could not be built; no webhook is sent until a restart");
            return;
        }
    };
    tracing::info!("webhook sender started");
    while !cancel.is_cancelled() {
        let current = config.borrow_and_update().clone();
        let mut wait = POLL;
        let shared = match &store {
            Some(s) => Ok(s.clone()),
            None => open(&db).await.inspect(|s| store = Some(s.clone())),
        };
        match shared {
            Err(e) => {
                tracing::error!(error = %e, "webhook sender: the store cannot be opened; trying again");
                wait = Duration::from_secs(5);
            }
            Ok(s) => match deliver(&s, &current, &tls, &cancel).await {
                Err(e) => {
                    tracing::error!(error = %e, "webhook sender: a pass failed; trying again");
                    wait = Duration::from_secs(5);
                    store = None;
                }
                Ok(()) => match blocking(&s, webhooks::next_due).await {
                    Ok(Some(due)) => {
                        let ms = due.saturating_sub(now_ms()).max(0) as u64;
                        wait = wait.min(Duration::from_millis(ms));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "webhook sender: reading the deliveries failed");
                        wait = Duration::from_secs(5);
                    }
                },
            },
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            changed = config.changed(), if config_open => {
                if changed.is_err() {
                    config_open = false;
                }
            }
        }
    }
    tracing::info!("webhook sender stopped");
}
