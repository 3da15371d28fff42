//! What a finished job sends, written to the outbox inside the job's own
//! transaction (called by `import::finish_job`): the report to the
//! tenant's `failed_import_email` as `notify` says (failures: rows failed,
//! the file was refused or the sync held; always: also a success summary;
//! never: nothing), and one invitation per user the job created whose row
//! asked for one, when the tenant configures invitations. Messages are
//! rendered here, completely, so that a resend is the same bytes with the
//! same Message-ID. This module must never send anything nor commit: the
//! caller's transaction decides whether the job, and its mail, happened.

use crate::config::{Notify, Tenant};
use crate::mail::compose::{self, ComposeError, Failures, Rendered};
use crate::report::summary::{JobReport, Status};
use crate::store::outbox::{self, NewMessage};
use crate::store::{jobs, StoreError, Tx};

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("composing the {kind} message of job {job}: {source}")]
    Compose {
        kind: &'static str,
        job: i64,
        #[source]
        source: ComposeError,
    },
}

/// Whether a report goes out for a job that ended with `status`.
pub fn wants_report(notify: Notify, status: Status) -> bool {
    match notify {
        Notify::Never => false,
        Notify::Always => true,
        Notify::Failures => status != Status::Ok,
    }
}

/// Queues a finished job's mail; returns how many messages were queued.
pub fn job_finished(
    tx: &Tx<'_>,
    tenant: &Tenant,
    job: i64,
    report: &JobReport,
    invitations: &[String],
) -> Result<usize, QueueError> {
    let mut queued = 0;
    if wants_report(tenant.notify, report.status) && !tenant.failed_import_email.is_empty() {
        let mut failures = Failures::new(tenant.outgoing.max_attachment_bytes);
        jobs::for_each_error(tx, job, |e| failures.push(e))?;
        let kind = if report.status == Status::Ok {
            "success"
        } else {
            "failure"
        };
        put(tx, tenant, job, kind, |message_id| {
            compose::job_report(
                tenant,
                &tenant.failed_import_email,
                message_id,
                report,
                &failures,
            )
        })?;
        queued += 1;
    }
    if let Some(inv) = &tenant.invitation {
        for key in invitations {
            let Some(user) = outbox::invitee(tx, &tenant.name, key)? else {
                continue;
            };
            // The import's address check and the mailer's differ at the
            // edges; an address the mailer refuses costs the user their
            // invitation, never the job.
            if user.email.parse::<lettre::Address>().is_err() {
                tracing::warn!(tenant = %tenant.name, job, user = %key, email = %user.email,
                    "no invitation: the mailer does not accept this address");
                continue;
            }
            put(tx, tenant, job, "invitation", |message_id| {
                compose::invitation(&tenant.outgoing, inv, &tenant.name, &user, message_id)
            })?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// Inserts one message: the row first (its id is part of the Message-ID),
/// then its rendered bytes.
fn put(
    tx: &Tx<'_>,
    tenant: &Tenant,
    job: i64,
    kind: &'static str,
    compose: impl FnOnce(&str) -> Result<Rendered, ComposeError>,
) -> Result<i64, QueueError> {
    let now = outbox::now_ms();
    let expires_at = now.saturating_add(
        i64::try_from(tenant.outgoing.give_up_after.as_millis()).unwrap_or(i64::MAX),
    );
    let id = outbox::insert(
        tx,
        &NewMessage {
            tenant: &tenant.name,
            job: Some(job),
            kind,
            expires_at,
        },
    )?;
    let message_id = format!(
        "<userdrop.{}.{job}.{id}.{now}@{}>",
        tenant.name,
        compose::id_domain(&tenant.outgoing.from)
    );
    let r = compose(&message_id).map_err(|source| QueueError::Compose { kind, job, source })?;
    outbox::set_message(
        tx,
        id,
        &outbox::Content {
            message_id: &message_id,
            envelope_from: &r.envelope_from,
            recipients: &r.recipients,
            subject: &r.subject,
            bytes: &r.bytes,
        },
    )?;
    tracing::debug!(tenant = %tenant.name, job, outbox = id, kind, subject = %r.subject, "mail queued");
    Ok(id)
}
