//! What a decided job announces, written inside the job's own transaction
//! (called by `import::finish_job`, beside the mail): its one event, and
//! one delivery per tenant webhook that wants that event. The body is
//! rendered here, once — the job object `userdrop jobs show ID --json`
//! prints, without its row errors, plus `event` and `id` — and stored, so
//! every attempt sends the same bytes. This module must never send
//! anything nor commit: the caller's transaction decides whether the job,
//! and its deliveries, happened.

use crate::config::{Tenant, WebhookEvent};
use crate::report::summary::{JobReport, Status};
use crate::store::webhooks::{self, NewDelivery};
use crate::store::{outbox, StoreError, Tx};

/// The event a job decided with `status` emits: exactly one.
pub fn event_of(status: Status) -> WebhookEvent {
    match status {
        Status::Ok | Status::RowsFailed => WebhookEvent::Finished,
        Status::Held => WebhookEvent::Held,
        Status::Rejected => WebhookEvent::Rejected,
    }
}

/// The JSON body: `{"event": ..., "id": JOB, ...}` followed by the fields
/// of the job's stored outcome (`JobReport::ledger_json`, the object the
/// ledger keeps, the API's `report` and `jobs show --json` without errors).
pub fn body(event: WebhookEvent, job: i64, report: &JobReport) -> Vec<u8> {
    let ledger = report.ledger_json();
    let fields = ledger
        .strip_prefix('{')
        .expect("a report serialises as a JSON object");
    let mut out = format!("{{\"event\":\"{}\",\"id\":{job}", event.as_str());
    if fields != "}" {
        out.push(',');
    }
    out.push_str(fields);
    out.into_bytes()
}

/// Queues a decided job's deliveries; returns how many were queued.
pub fn job_finished(
    tx: &Tx<'_>,
    tenant: &Tenant,
    job: i64,
    report: &JobReport,
) -> Result<usize, StoreError> {
    let event = event_of(report.status);
    let wanted: Vec<_> = tenant.webhooks.iter().filter(|w| w.wants(event)).collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let body = body(event, job, report);
    let expires_at = outbox::now_ms().saturating_add(
        i64::try_from(tenant.outgoing.give_up_after.as_millis()).unwrap_or(i64::MAX),
    );
    for w in &wanted {
        let id = webhooks::insert(
            tx,
            &NewDelivery {
                tenant: &tenant.name,
                job,
                event: event.as_str(),
                url: &w.url,
                body: &body,
                expires_at,
            },
        )?;
        tracing::debug!(tenant = %tenant.name, job, delivery = id, event = event.as_str(),
            url = %w.url, "webhook queued");
    }
    Ok(wanted.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_job_object_with_event_and_id_and_no_row_errors() {
        let mut r = JobReport::new("acme", "users.csv", Some(42), false);
        r.status = Status::Held;
        let b = body(event_of(r.status), 42, &r);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["event"], "job.held");
        assert_eq!(v["id"], 42);
        assert_eq!(v["job"], 42);
        assert_eq!(v["tenant"], "acme");
        assert_eq!(v["status"], "held");
        let mut shown = serde_json::to_value(&r).unwrap();
        let obj = v.as_object().unwrap();
        for (k, want) in shown.as_object_mut().unwrap() {
            assert_eq!(&obj[k], want, "{k}");
        }
        assert!(b.starts_with(br#"{"event":"job.held","id":42,"job":42,"#));
        assert_eq!(event_of(Status::Ok), WebhookEvent::Finished);
        assert_eq!(event_of(Status::RowsFailed), WebhookEvent::Finished);
        assert_eq!(event_of(Status::Rejected), WebhookEvent::Rejected);
    }
}
