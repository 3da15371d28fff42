//! Delivers the outbox. Each pass claims queued messages (with a lease, so
//! the daemon and `userdrop mail flush` never send one at once), hands each
//! to the transport and records the outcome right away: sent as soon as the
//! server accepted it; otherwise tried again after a backoff that doubles
//! from `retry_initial` to `retry_max`; or, once a failed attempt is past
//! the message's `give_up_after`, marked `failed` with a loud error log
//! (`userdrop mail retry ID` queues it again). State lives in SQLite only,
//! so a restart carries on where the last process stopped. This module
//! must never compose or change a message, and never log a credential.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, MailConfig};
use crate::mail::transport::Transport;
use crate::store::outbox::{self, Claimed};
use crate::store::{Store, StoreError};

/// How long a claimed message is held by its sender. Longer than any
/// attempt can take (every SMTP command has a 30 s timeout), so that only a
/// sender that died loses its claim.
const LEASE: Duration = Duration::from_secs(15 * 60);

/// Messages claimed at a time.
const BATCH: i64 = 20;

/// The longest the daemon's sender sleeps without looking at the outbox:
/// other processes (`userdrop import`, `mail retry`) queue messages without
/// waking it.
const POLL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store task failed: {0}")]
    Task(String),
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    /// Failed this time, queued for a later attempt.
    pub retrying: usize,
    /// Given up on this time.
    pub failed: usize,
}

/// The wait before the attempt after `attempts` failed ones.
pub fn backoff(mail: &MailConfig, attempts: i64) -> Duration {
    let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
    mail.retry_initial
        .saturating_mul(1u32 << doublings)
        .min(mail.retry_max)
}

/// The store a sender works on (the webhook sender shares these helpers).
pub(crate) type Shared = Arc<Mutex<Store>>;

pub(crate) async fn blocking<T: Send + 'static>(
    store: &Shared,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, SenderError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let guard = store.lock().unwrap_or_else(|p| p.into_inner());
        f(&guard)
    })
    .await
    .map_err(|e| SenderError::Task(e.to_string()))?
    .map_err(SenderError::from)
}

pub(crate) async fn open(db: &Path) -> Result<Shared, SenderError> {
    let db = db.to_path_buf();
    let store = tokio::task::spawn_blocking(move || Store::open(&db))
        .await
        .map_err(|e| SenderError::Task(e.to_string()))??;
    Ok(Arc::new(Mutex::new(store)))
}

/// One pass over the outbox: every due message (or, with `everything`,
/// every queued one not held by another sender) is attempted once.
pub async fn deliver(db: &Path, mail: &MailConfig, everything: bool) -> Result<Pass, SenderError> {
    let store = open(db).await?;
    deliver_with(&store, mail, everything, None).await
}

async fn deliver_with(
    store: &Shared,
    mail: &MailConfig,
    everything: bool,
    cancel: Option<&CancellationToken>,
) -> Result<Pass, SenderError> {
    let mut pass = Pass::default();
    // Built lazily: a pass with nothing to send reads no secret.
    let mut transport: Option<Result<Transport, String>> = None;
    let mut after = 0i64;
    loop {
        if cancel.is_some_and(|c| c.is_cancelled()) {
            break;
        }
        let now = outbox::now_ms();
        let lease_until = now + LEASE.as_millis() as i64;
        let batch = blocking(store, move |s| {
            outbox::claim(s, now, lease_until, everything, after, BATCH)
        })
        .await?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        let t = transport.get_or_insert_with(|| {
            Transport::build(mail).map_err(|e| {
                let msg = format!("{e:#}");
                tracing::error!(error = %msg, "the mail transport cannot be set up");
                msg
            })
        });
        let t = t.clone();
        let mut batch = batch.into_iter();
        while let Some(m) = batch.next() {
            let result = match &t {
                Ok(t) => t
                    .send(m.id, &m.envelope_from, &m.recipients, &m.message)
                    .await
                    .map_err(|e| error_text(&e)),
                Err(e) => Err(e.clone()),
            };
            record(store, mail, &m, result, &mut pass).await?;
            if cancel.is_some_and(|c| c.is_cancelled()) {
                // Hand the rest back at once rather than when their lease ends.
                let rest: Vec<i64> = batch.by_ref().map(|m| m.id).collect();
                blocking(store, move |s| {
                    for id in rest {
                        outbox::release(s, id)?;
                    }
                    Ok(())
                })
                .await?;
                break;
            }
        }
    }
    Ok(pass)
}

/// The error and its causes on one line.
pub(crate) fn error_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

async fn record(
    store: &Shared,
    mail: &MailConfig,
    m: &Claimed,
    result: Result<(), String>,
    pass: &mut Pass,
) -> Result<(), SenderError> {
    let now = outbox::now_ms();
    let id = m.id;
    match result {
        Ok(()) => {
            blocking(store, move |s| outbox::mark_sent(s, id, now)).await?;
            pass.sent += 1;
            tracing::info!(outbox = id, tenant = %m.tenant, job = m.job, kind = %m.kind,
                to = %m.recipients.join(", "), subject = %m.subject, "mail sent");
        }
        Err(error) if now >= m.expires_at => {
            let e = error.clone();
            blocking(store, move |s| outbox::mark_failed(s, id, now, &e)).await?;
            pass.failed += 1;
            tracing::error!(outbox = id, tenant = %m.tenant, job = m.job, kind = %m.kind,
                to = %m.recipients.join(", "), subject = %m.subject, attempts = m.attempts + 1,
                error = %error,
                "GAVE UP on a message after smtp.give_up_after: it was NOT delivered; fix the cause, then `userdrop mail retry {id}`");
        }
        Err(error) => {
            let wait = backoff(mail, m.attempts + 1);
            let next = now
                .saturating_add(wait.as_millis() as i64)
                .min(m.expires_at.max(now));
            let e = error.clone();
            blocking(store, move |s| outbox::mark_retry(s, id, now, next, &e)).await?;
            pass.retrying += 1;
            tracing::warn!(outbox = id, tenant = %m.tenant, job = m.job, attempts = m.attempts + 1,
                retry_in = %humantime::format_duration(Duration::from_millis((next - now) as u64)),
                error = %error, "mail not delivered; will retry");
        }
    }
    Ok(())
}

/// The daemon's mail task: delivers due messages, then sleeps until the
/// next one is due, `wake` is notified (a job queued mail), the config
/// changes, or `cancel`. Runs until cancelled; errors are logged, never
/// fatal (the outbox keeps everything).
pub async fn run(
    db: PathBuf,
    mut config: watch::Receiver<Arc<Config>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut store: Option<Shared> = None;
    let mut config_open = true;
    tracing::info!(db = %db.display(), "mail sender started");
    while !cancel.is_cancelled() {
        let mail = config.borrow_and_update().mail.clone();
        let mut wait = POLL;
        let shared = match &store {
            Some(s) => Ok(s.clone()),
            None => open(&db).await.inspect(|s| store = Some(s.clone())),
        };
        match shared {
            Err(e) => {
                tracing::error!(error = %e, "mail sender: the store cannot be opened; trying again");
                wait = Duration::from_secs(5);
            }
            Ok(s) => match deliver_with(&s, &mail, false, Some(&cancel)).await {
                Err(e) => {
                    tracing::error!(error = %e, "mail sender: a pass failed; trying again");
                    wait = Duration::from_secs(5);
                    store = None;
                }
                Ok(_) => match blocking(&s, outbox::next_due).await {
                    Ok(Some(due)) => {
                        let ms = due.saturating_sub(outbox::now_ms()).max(0) as u64;
                        wait = wait.min(Duration::from_millis(ms));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "mail sender: reading the outbox failed");
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
    tracing::info!("mail sender stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transport as TransportConfig;

    fn mail(initial: Duration, max: Duration) -> MailConfig {
        MailConfig {
            transport: TransportConfig::File {
                dir: PathBuf::from("/nonexistent"),
            },
            from: "noreply@example.com".into(),
            reply_to: None,
            max_attachment_bytes: 1 << 20,
            give_up_after: Duration::from_secs(3 * 86_400),
            retry_initial: initial,
            retry_max: max,
        }
    }

    #[test]
    fn backoff_doubles_from_retry_initial_and_stops_at_retry_max() {
        let secs = Duration::from_secs;
        // The defaults: 30 s, doubling, capped at 30 min.
        let m = mail(secs(30), secs(1800));
        let got: Vec<u64> = (1..=9).map(|n| backoff(&m, n).as_secs()).collect();
        assert_eq!(got, [30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
        // No attempt yet counts as the first: never shorter than the start.
        assert_eq!(backoff(&m, 0), secs(30));
        assert_eq!(backoff(&m, -5), secs(30));
        // However many attempts, the wait stays at the cap (no overflow).
        for n in [31, 32, 63, 64, 1_000, i64::MAX] {
            assert_eq!(backoff(&m, n), secs(1800), "after {n} attempts");
        }
        // A cap that is not a power-of-two multiple is reached, not skipped.
        let m = mail(Duration::from_millis(100), Duration::from_millis(350));
        let got: Vec<u128> = (1..=5).map(|n| backoff(&m, n).as_millis()).collect();
        assert_eq!(got, [100, 200, 350, 350, 350]);
        // Equal bounds: a constant wait.
        let m = mail(secs(60), secs(60));
        assert!((1..50).all(|n| backoff(&m, n) == secs(60)));
        // Huge bounds saturate instead of panicking.
        let m = mail(secs(365 * 86_400), Duration::MAX);
        assert_eq!(backoff(&m, 2), secs(2 * 365 * 86_400));
        assert!(backoff(&m, i64::MAX) >= secs(365 * 86_400) * (1 << 30));
    }
}
