//! `/metrics`: what a monitoring system needs to see userdrop work and to
//! alert when a customer's nightly export stops coming. Counters move as
//! requests are answered and jobs are archived; gauges (and the webhook
//! deliveries' counters, kept in the store) are read at scrape time from
//! the ledger and the SFTP server. Formatting is the `prometheus`
//! crate's. This module must never put a key, a file name or a user in a
//! label: labels are tenants, routes, codes and outcomes.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use super::pool::Use;
use super::{ApiError, AppState};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    jobs: IntCounterVec,
    rows: IntCounterVec,
    duration: HistogramVec,
    uploads: IntCounterVec,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    queue: IntGauge,
    last_success: GaugeVec,
    outbox: IntGaugeVec,
    webhooks: IntCounterVec,
    /// One scrape at a time moves the webhook counters up to the store's.
    webhooks_sync: Arc<std::sync::Mutex<()>>,
    sftp_sessions: IntGauge,
    auth_failures: Gauge,
    bans_total: Gauge,
    banned_now: IntGauge,
    provision_lag: IntGaugeVec,
    provision_deliveries: IntCounterVec,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    r.register(Box::new(c.clone())).expect("registered once");
    c
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
                .expect("a valid metric");
            r.register(Box::new(h.clone())).expect("registered once");
            h
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("a valid metric");
            r.register(Box::new(g.clone())).expect("registered once");
            g
        };
        let fgauge = |name: &str, help: &str| {
            let g = Gauge::new(name, help).expect("a valid metric");
            r.register(Box::new(g.clone())).expect("registered once");
            g
        };
        Metrics {
            jobs: counter(
                &r,
                "userdrop_jobs_finished_total",
                "Jobs archived, by tenant and outcome",
                &["tenant", "status"],
            ),
            rows: counter(
                &r,
                "userdrop_rows_total",
                "Rows of archived jobs, by tenant and outcome",
                &["tenant", "outcome"],
            ),
            duration: histogram(
                "userdrop_job_duration_seconds",
                "From a job's file being taken to its decision",
                &["tenant"],
                vec![0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0],
            ),
            uploads: counter(
                &r,
                "userdrop_http_uploads_total",
                "Files queued through the HTTP API",
                &["tenant"],
            ),
            requests: counter(
                &r,
                "userdrop_http_requests_total",
                "HTTP requests answered, by route and status code",
                &["route", "code"],
            ),
            request_seconds: histogram(
                "userdrop_http_request_duration_seconds",
                "Time to answer an HTTP request, by route",
                &["route"],
                prometheus::DEFAULT_BUCKETS.to_vec(),
            ),
            queue: gauge(
                "userdrop_jobs_undecided",
                "Jobs received and not yet decided (the queue)",
            ),
            last_success: {
                let g = GaugeVec::new(
                    Opts::new(
                        "userdrop_tenant_last_success_timestamp_seconds",
                        "When each tenant's last job that applied rows finished (Unix time)",
                    ),
                    &["tenant"],
                )
                .expect("a valid metric");
                r.register(Box::new(g.clone())).expect("registered once");
                g
            },
            outbox: {
                let g = IntGaugeVec::new(
                    Opts::new("userdrop_outbox_messages", "Mail in the outbox, by state"),
                    &["state"],
                )
                .expect("a valid metric");
                r.register(Box::new(g.clone())).expect("registered once");
                g
            },
            webhooks: counter(
                &r,
                "userdrop_webhook_deliveries_total",
                "Webhook attempts by tenant and outcome: delivered (2xx), retry (failed, tried again), gave_up",
                &["tenant", "outcome"],
            ),
            webhooks_sync: Arc::default(),
            sftp_sessions: gauge("userdrop_sftp_sessions", "Authenticated SFTP sessions open"),
            auth_failures: fgauge(
                "userdrop_auth_failures_total",
                "Failed logins since start (SFTP passwords and keys, HTTP API keys)",
            ),
            bans_total: fgauge("userdrop_bans_total", "Addresses banned since start"),
            banned_now: gauge("userdrop_banned_addresses", "Addresses banned now"),
            provision_lag: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "userdrop_provision_lag_changes",
                        "Changes not yet provisioned into the tenant's SCIM application",
                    ),
                    &["tenant"],
                )
                .expect("a valid metric");
                r.register(Box::new(g.clone())).expect("registered once");
                g
            },
            // Brought up to the provisioner's counts at scrape time.
            provision_deliveries: counter(
                &r,
                "userdrop_provision_deliveries_total",
                "SCIM requests settled since start, by tenant and outcome (pushed, deleted, refused, retried)",
                &["tenant", "outcome"],
            ),
            registry: r,
        }
    }

    pub(super) fn uploads(&self, tenant: &str) {
        self.uploads.with_label_values(&[tenant]).inc();
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

/// Counts every answered request by its route pattern (never the raw path:
/// that would put ids and tenants' names in labels without bound).
pub async fn count_requests(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let m = &state.metrics;
    m.requests
        .with_label_values(&[route.as_str(), resp.status().as_str()])
        .inc();
    m.request_seconds
        .with_label_values(&[route.as_str()])
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// Moves the job counters as the daemon archives jobs.
pub fn watch_jobs(state: Arc<AppState>) {
    let mut done = state.done.subscribe();
    tokio::spawn(async move {
        loop {
            let d = match done.recv().await {
                Ok(d) => d,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            };
            let id = d.job;
            let job = state
                .pool
                .run(Use::Read, move |s| Ok(crate::store::jobs::get(s, id)?))
                .await;
            let m = &state.metrics;
            m.jobs
                .with_label_values(&[d.tenant.as_str(), d.status.as_str()])
                .inc();
            let Ok(Some(job)) = job else { continue };
            if let Some(report) = job
                .report
                .as_deref()
                .and_then(|r| serde_json::from_str::<crate::report::summary::JobReport>(r).ok())
            {
                let c = &report.counts;
                for (outcome, n) in [
                    ("added", c.added),
                    ("updated", c.updated),
                    ("unchanged", c.unchanged),
                    ("deleted", c.deleted),
                    ("deactivated", c.deactivated),
                    ("failed", c.failed),
                ] {
                    m.rows
                        .with_label_values(&[d.tenant.as_str(), outcome])
                        .inc_by(n);
                }
            }
            if let (Some(from), Some(to)) = (
                seconds(&job.created_at),
                job.finished_at.as_deref().and_then(seconds),
            ) {
                m.duration
                    .with_label_values(&[d.tenant.as_str()])
                    .observe((to - from).max(0) as f64);
            }
        }
    });
}

fn seconds(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp())
}

/// The text of a scrape: gauges refreshed, then everything encoded.
pub async fn render(state: &Arc<AppState>) -> Result<String, ApiError> {
    let (g, hooks) = state
        .pool
        .run(Use::Read, |s| {
            Ok((
                crate::store::intake::gauges(s)?,
                crate::store::webhooks::outcomes(s)?,
            ))
        })
        .await?;
    let m = &state.metrics;
    m.queue.set(g.undecided);
    for (tenant, at) in &g.last_success {
        if let Some(t) = seconds(at) {
            m.last_success
                .with_label_values(&[tenant.as_str()])
                .set(t as f64);
        }
    }
    for (st, n) in &g.outbox {
        m.outbox.with_label_values(&[st.as_str()]).set(*n);
    }
    // The store's totals only grow: the counters are moved up to them.
    let synced = crate::worker::lock(&m.webhooks_sync);
    for o in &hooks {
        for (outcome, n) in [
            ("delivered", o.delivered),
            ("retry", o.retried),
            ("gave_up", o.gave_up),
        ] {
            let c = m.webhooks.with_label_values(&[o.tenant.as_str(), outcome]);
            c.inc_by(n.saturating_sub(c.get()));
        }
    }
    drop(synced);
    let provisioned: Vec<String> = state
        .config()
        .tenants
        .values()
        .filter(|t| t.provision.is_some())
        .map(|t| t.name.clone())
        .collect();
    if !provisioned.is_empty() {
        let lags = state
            .pool
            .run(Use::Read, move |s| {
                let mut lags = Vec::new();
                for t in provisioned {
                    let lag = crate::store::provision::standing(s, &t, 0)?.lag_changes;
                    lags.push((t, lag));
                }
                Ok(lags)
            })
            .await?;
        for (tenant, lag) in lags {
            m.provision_lag
                .with_label_values(&[tenant.as_str()])
                .set(lag);
        }
    }
    for ((tenant, outcome), n) in crate::provision::meter::read().deliveries {
        let c = m
            .provision_deliveries
            .with_label_values(&[tenant.as_str(), outcome]);
        c.inc_by(n.saturating_sub(c.get()));
    }
    if let Some(s) = &state.sftp {
        m.sftp_sessions.set(s.sessions() as i64);
    }
    {
        let b = crate::worker::lock(&state.bans);
        m.auth_failures.set(b.failures_total() as f64);
        m.bans_total.set(b.bans_total() as f64);
        m.banned_now.set(b.banned_now(Instant::now()) as i64);
    }
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&m.registry.gather(), &mut out)
        .map_err(|e| ApiError::internal("format the metrics", e))?;
    String::from_utf8(out).map_err(|e| ApiError::internal("format the metrics", e))
}
