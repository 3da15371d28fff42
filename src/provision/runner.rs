//! The provisioner's loop: for each tenant with `[provision]`, reads the
//! change ledger from the tenant's cursor, in order, and makes the
//! application match the user as stored now (POST, PUT, DELETE), then
//! settles the change (id map, error list, cursor: one transaction). Users
//! marked by a resync go first. An application that is down, busy or
//! refusing everyone is asked again after a doubling wait (capped,
//! Retry-After honoured), never passed over; a user it refuses is recorded
//! and the next change goes on. A manager goes before the users reporting
//! to them. Woken after each job and on a timer. This module must never
//! write a user, and never skip a change without recording why.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use super::client::{Answer, Client, ClientError};
use super::mapping;
use super::meter;
use super::state::{State, StateError};
use crate::config::{Config, Provision};
use crate::store::changes::Change;
use crate::store::provision::Outcome;

/// The longest the provisioner sleeps without looking at the ledger:
/// `userdrop import` and `provision resync` change it without waking it.
const POLL: Duration = Duration::from_secs(30);
/// Changes read at a time.
const BATCH: i64 = 200;
/// Requests in flight at a time per tenant (each user's in order: a user
/// is pushed by one request at a time). Four: an application that closes
/// every connection (HTTP/1.0, as scim2-server does) takes a new one per
/// request, and a small server's listen backlog (5 in Python's
/// socketserver) drops the SYNs beyond it, each dropped connection then
/// waiting a whole second for its retransmission (bench/README.md, "SCIM
/// provisioning"). A server of one thread gains nothing from more.
const PARALLEL: usize = 4;
/// The first wait after a failed attempt, and the longest.
const FIRST_WAIT: Duration = Duration::from_millis(500);
const MAX_WAIT: Duration = Duration::from_secs(30);
/// The longest Retry-After honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Why a pass stopped before the ledger's end.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("stopping")]
    Cancelled,
    #[error(transparent)]
    State(#[from] StateError),
}

/// Runs until `cancel`.
pub async fn run(
    db: PathBuf,
    mut config: watch::Receiver<Arc<Config>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    if !config
        .borrow()
        .tenants
        .values()
        .any(|t| t.provision.is_some())
    {
        // Nothing to do until a reload brings a [provision] table.
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wait_for_provision(&mut config) => {}
        }
    }
    let state = match State::open(&db).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("the provisioner cannot open the store, nothing is provisioned: {e}");
            return;
        }
    };
    // One task per tenant, so an application that is down holds up only
    // its own tenant; this loop starts, restarts (a reload changed the
    // table) and wakes them.
    let mut tenants: HashMap<String, (Provision, Arc<Notify>, tokio::task::JoinHandle<()>)> =
        HashMap::new();
    loop {
        let c = config.borrow_and_update().clone();
        tenants.retain(|name, (p, _, task)| {
            let keep = c.tenant(name).and_then(|t| t.provision.as_ref()) == Some(&*p);
            if !keep {
                task.abort();
            }
            keep
        });
        for (name, t) in &c.tenants {
            let Some(p) = &t.provision else { continue };
            if let Some((_, wake, _)) = tenants.get(name) {
                wake.notify_one();
                continue;
            }
            let client = match Client::build(p) {
                Ok(client) => client,
                Err(e) => {
                    tracing::error!(tenant = %name, "cannot provision: {e}");
                    continue;
                }
            };
            let pass = Pass {
                tenant: name.clone(),
                client,
                state: state.clone(),
                cancel: cancel.clone(),
            };
            let tenant_wake = Arc::new(Notify::new());
            let task = tokio::spawn(tenant_loop(pass, tenant_wake.clone()));
            tenants.insert(name.clone(), (p.clone(), tenant_wake, task));
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
            r = config.changed() => if r.is_err() { break },
        }
    }
    // A stop does not wait for a request in flight: what the application
    // did with it is found out on the next start (a POST it took is
    // answered 409 then, and adopted).
    for (_, (_, _, task)) in tenants {
        task.abort();
        let _ = task.await;
    }
}

/// One tenant: a pass to the ledger's end, then a wait for a wake-up.
async fn tenant_loop(pass: Pass, wake: Arc<Notify>) {
    loop {
        match pass.run().await {
            Ok(()) => {}
            Err(Stop::Cancelled) => return,
            Err(Stop::State(e)) => {
                tracing::error!(tenant = %pass.tenant, "provisioning stopped, it starts again at the next wake-up: {e}")
            }
        }
        tokio::select! {
            _ = pass.cancel.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn wait_for_provision(config: &mut watch::Receiver<Arc<Config>>) {
    loop {
        if config.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        if config
            .borrow()
            .tenants
            .values()
            .any(|t| t.provision.is_some())
        {
            return;
        }
    }
}

/// One tenant's work until its ledger is all provisioned.
struct Pass {
    tenant: String,
    client: Client,
    state: State,
    cancel: CancellationToken,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, Stop>> + Send + 'a>>;

impl Pass {
    async fn run(&self) -> Result<(), Stop> {
        self.resync().await?;
        loop {
            if self.cancel.is_cancelled() {
                return Err(Stop::Cancelled);
            }
            let batch = self.state.next_changes(&self.tenant, BATCH).await?;
            let Some(last) = batch.last().map(|c| c.seq) else {
                return Ok(());
            };
            let outcomes = self.push_batch(&batch).await?;
            let mut refused = 0;
            let mut settled = Vec::with_capacity(batch.len());
            for (i, c) in batch.iter().enumerate() {
                // A user's earlier changes in the batch were carried by the
                // one push of the user as stored now: the outcome (and a
                // refusal) goes with their last change.
                let later = batch[i + 1..].iter().any(|o| o.key == c.key);
                let outcome = if later {
                    None
                } else {
                    outcomes.get(&c.key).cloned()
                };
                if let Some(Outcome::Refused { status, message }) = &outcome {
                    refused += 1;
                    tracing::warn!(tenant = %self.tenant, seq = c.seq, job = c.job, key = %c.key,
                        status, error = %message, "the application refused a user; going on with the next change");
                }
                settled.push((c.clone(), outcome));
            }
            self.state.settle_all(settled).await?;
            tracing::info!(tenant = %self.tenant, seq = last, changes = batch.len(), refused,
                "provisioned");
        }
    }

    /// Brings the application up to every user a batch touches: each user
    /// once (as stored now), several users at a time, over kept-alive
    /// connections. Each outcome's id is recorded as soon as it is known,
    /// so a crash before the batch is settled pushes again without
    /// creating anyone twice.
    async fn push_batch(&self, batch: &[Change]) -> Result<HashMap<String, Outcome>, Stop> {
        let mut seen = HashSet::new();
        let keys: VecDeque<String> = batch
            .iter()
            .filter(|c| seen.insert(c.key.clone()))
            .map(|c| c.key.clone())
            .collect();
        let queue = std::sync::Mutex::new(keys);
        let outcomes = std::sync::Mutex::new(HashMap::new());
        let worker = || async {
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                let Some(key) = next else { return Ok(()) };
                let outcome = self.make_match(&key, &mut HashSet::new()).await?;
                meter::count(&self.tenant, &outcome);
                self.state
                    .record(&self.tenant, &key, outcome.clone(), false)
                    .await?;
                outcomes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, outcome);
            }
        };
        let results: Vec<Result<(), Stop>> =
            futures_util::future::join_all((0..PARALLEL).map(|_| worker())).await;
        for r in results {
            r?;
        }
        Ok(outcomes.into_inner().unwrap_or_else(|p| p.into_inner()))
    }

    /// Pushes every user a resync marked.
    async fn resync(&self) -> Result<(), Stop> {
        let mut pushed = 0usize;
        loop {
            let keys = self.state.resync_batch(&self.tenant, BATCH).await?;
            if keys.is_empty() {
                break;
            }
            for key in keys {
                if self.cancel.is_cancelled() {
                    return Err(Stop::Cancelled);
                }
                let outcome = self.make_match(&key, &mut HashSet::new()).await?;
                if let Outcome::Refused { status, message } = &outcome {
                    tracing::warn!(tenant = %self.tenant, key = %key, status, error = %message,
                        "the application refused a user on resync");
                }
                meter::count(&self.tenant, &outcome);
                self.state.record(&self.tenant, &key, outcome, true).await?;
                pushed += 1;
            }
        }
        if pushed > 0 {
            tracing::info!(tenant = %self.tenant, users = pushed, "resynced");
        }
        Ok(())
    }

    /// Makes the application hold `key` as stored now (or not at all, once
    /// deleted), and says what it holds. `visiting`: the managers pushed
    /// ahead on this walk (a chain never comes back, but a guard costs
    /// nothing).
    fn make_match<'a>(
        &'a self,
        key: &'a str,
        visiting: &'a mut HashSet<String>,
    ) -> Boxed<'a, Outcome> {
        Box::pin(async move {
            let t = &self.tenant;
            let user = self.state.user(t, key).await?;
            let id = self.state.scim_id(t, key).await?;
            let Some(user) = user else {
                return Ok(match id {
                    None => Outcome::Gone,
                    Some(id) => match self.ask(|| self.client.delete(&id)).await? {
                        Answer::Refused { status, message } => Outcome::Refused { status, message },
                        _ => Outcome::Gone,
                    },
                });
            };
            visiting.insert(key.to_string());
            let manager = self.manager_of(&user, visiting).await?;
            let body = mapping::user_json(&user, manager.as_deref());
            if let Some(id) = id {
                match self.ask(|| self.client.replace(&id, &body)).await? {
                    Answer::Holds(id) => return Ok(Outcome::Holds(id)),
                    Answer::Refused { status, message } => {
                        return Ok(Outcome::Refused { status, message })
                    }
                    // Gone from the application: created again below.
                    Answer::Gone | Answer::Conflict => {}
                }
            }
            self.create(key, &body).await
        })
    }

    /// POST; on 409, adopt the application's user of this very userName
    /// (compared exactly: another user whose name differs only in case is
    /// not this one) and replace it.
    async fn create(&self, key: &str, body: &Value) -> Result<Outcome, Stop> {
        match self.ask(|| self.client.create(body)).await? {
            Answer::Holds(id) => Ok(Outcome::Holds(id)),
            Answer::Refused { status, message } => Ok(Outcome::Refused { status, message }),
            Answer::Gone => Ok(Outcome::Refused {
                status: 404,
                message: "the application answered 404 to creating a user".into(),
            }),
            Answer::Conflict => match self.ask(|| self.client.find(key)).await? {
                Some((id, name)) if name == key => {
                    match self.ask(|| self.client.replace(&id, body)).await? {
                        Answer::Holds(id) => Ok(Outcome::Holds(id)),
                        Answer::Refused { status, message } => {
                            Ok(Outcome::Refused { status, message })
                        }
                        Answer::Gone | Answer::Conflict => Ok(Outcome::Refused {
                            status: 409,
                            message: format!("the application says userName {key:?} is taken, but its user {id} cannot be replaced"),
                        }),
                    }
                }
                Some((id, name)) => Ok(Outcome::Refused {
                    status: 409,
                    message: format!("the application holds another user, {name:?} (id {id}), whose userName it does not tell apart from {key:?}"),
                }),
                None => Ok(Outcome::Refused {
                    status: 409,
                    message: format!("the application says userName {key:?} is taken but finds no such user"),
                }),
            },
        }
    }

    /// The manager's id in the application, pushing the manager first when
    /// they are not there yet (or are marked by a resync).
    async fn manager_of(
        &self,
        user: &crate::store::users::User,
        visiting: &mut HashSet<String>,
    ) -> Result<Option<String>, Stop> {
        let t = &self.tenant;
        let Some(boss) = user.reports_to.as_deref().filter(|b| !b.is_empty()) else {
            return Ok(None);
        };
        let Some(mkey) = self.state.key_of(t, boss).await? else {
            return Ok(None);
        };
        if visiting.contains(&mkey) {
            return Ok(self.state.scim_id(t, &mkey).await?);
        }
        let marked = self.state.marked(t, &mkey).await?;
        if !marked {
            if let Some(id) = self.state.scim_id(t, &mkey).await? {
                return Ok(Some(id));
            }
        }
        let outcome = self.make_match(&mkey, visiting).await?;
        let id = match &outcome {
            Outcome::Holds(id) => Some(id.clone()),
            _ => None,
        };
        meter::count(t, &outcome);
        self.state.record(t, &mkey, outcome, marked).await?;
        Ok(id)
    }

    /// One request, asked again until the application answers it: a
    /// doubling wait from FIRST_WAIT to MAX_WAIT, or its Retry-After.
    async fn ask<'f, T, F, Fut>(&self, f: F) -> Result<T, Stop>
    where
        F: Fn() -> Fut + 'f,
        Fut: Future<Output = Result<T, ClientError>> + 'f,
    {
        let mut wait = FIRST_WAIT;
        loop {
            match f().await {
                Ok(a) => return Ok(a),
                Err(e) => {
                    let pause = e.retry_after().map_or(wait, |r| r.min(MAX_RETRY_AFTER));
                    tracing::warn!(tenant = %self.tenant, error = %e,
                        retry_in = %humantime::format_duration(pause),
                        "the application did not take the change; trying again");
                    meter::count_retry(&self.tenant);
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(Stop::Cancelled),
                        _ = tokio::time::sleep(pause) => {}
                    }
                    wait = (wait * 2).min(MAX_WAIT);
                }
            }
        }
    }
}
