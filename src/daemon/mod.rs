//! `userdrop serve`: wires the SFTP server, the pickup paths, the workers,
//! the mail sender ([`crate::mail::sender`]) and the webhook sender
//! ([`crate::webhook::sender`]) into one process (docs/architecture.md#data-flow,
//! docs/behaviour.md#the-daemon-start-shutdown-reload).
//!
//! One task owns the state (the queue, the settle candidates, the config)
//! and reacts to events: SFTP uploads, watcher notifications, settle and
//! scheduler timers, reloads, finished jobs. Jobs run on the blocking pool
//! ([`worker::process`]); one SQLite connection, behind a mutex, is shared
//! by the workers. Shutdown and reload come in from outside (a token and a
//! channel of validated configs); only [`serve`] turns OS signals into them.
//! Time is tokio's, so tests that pause it drive the scheduler. This module
//! must never run a pipeline step itself, nor block the runtime.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::archive;
use crate::config::{Config, ConfigError};
use crate::pickup::admit::{admit, Settle};
use crate::pickup::queue::{Item, Queue, Source, Work};
use crate::pickup::scheduler::{until_next, Clock};
use crate::pickup::uploads::Uploads;
use crate::pickup::watcher::{self, Seen, Settler, Watcher};
use crate::pickup::{notes, sweep, Swept};
use crate::sftp::{SftpError, SftpServer, UploadEvent, UploadSink};
use crate::store::{jobs, Store, StoreError};
use crate::worker::{self, lock, Done, WorkerError};
use crate::writers::{Closed, FileId, Writer};

mod serve;
pub use serve::serve;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sftp(#[from] SftpError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the file watcher: {0}")]
    Watch(#[from] notify::Error),
}

/// Which pickup paths run. All of them in production; tests switch some off
/// to show that another path alone picks a file up.
#[derive(Debug, Clone, Copy)]
pub struct Paths {
    /// Queue a file on its SFTP completion event.
    pub sftp_events: bool,
    pub watcher: bool,
    pub scheduler: bool,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            sftp_events: true,
            watcher: true,
            scheduler: true,
        }
    }
}

pub struct Daemon {
    config: Config,
    listener: Option<TcpListener>,
    /// Where the HTTP API is served, when `[http]` is configured.
    http: Option<TcpListener>,
    paths: Paths,
    done: broadcast::Sender<Done>,
    ready: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The SFTP server's upload reports: marks are updated on the session's own
/// task (before the OPEN reply, before the completion is queued), events go
/// on to the daemon's loop.
struct Sink {
    uploads: Arc<Mutex<Uploads>>,
    tx: mpsc::UnboundedSender<UploadEvent>,
}

impl UploadSink for Sink {
    fn opened(&self, tenant: &str, path: &Path) -> std::io::Result<()> {
        lock(&self.uploads).opened(tenant, path, SystemTime::now())
    }

    fn writer_opened(&self, tenant: &str, path: &Path, file: FileId) -> Writer {
        lock(&self.uploads).writer_opened(tenant, path, file)
    }

    fn writer_closed(&self, tenant: &str, writer: &Writer, _path: &Path, ok: bool) -> Closed {
        lock(&self.uploads).writer_closed(tenant, writer, ok)
    }

    fn renamed(
        &self,
        tenant: &str,
        from: &Path,
        to: &Path,
        moved: FileId,
        replaced: Option<FileId>,
    ) -> bool {
        lock(&self.uploads).renamed(tenant, from, to, moved, replaced)
    }

    fn open_failed(&self, tenant: &str, path: &Path) {
        lock(&self.uploads).open_failed(tenant, path);
    }

    fn event(&self, event: UploadEvent) {
        match &event {
            UploadEvent::Complete { tenant, path } => lock(&self.uploads).completed(tenant, path),
            UploadEvent::Incomplete { tenant, path } => {
                lock(&self.uploads).incomplete(tenant, path, SystemTime::now())
            }
        }
        let _ = self.tx.send(event);
    }
}

type Finished = (String, Result<Option<Done>, WorkerError>);

/// The running SFTP server: its reload handle, its task, the bans it
/// keeps and its counters.
struct SftpTask {
    reloader: crate::sftp::Reloader,
    task: tokio::task::JoinHandle<Result<(), SftpError>>,
    bans: Arc<Mutex<crate::sftp::bans::Bans>>,
    stats: crate::sftp::ServerStats,
}

/// What the loop needs to start jobs.
struct Jobs {
    queue: Queue,
    store: Arc<Mutex<Store>>,
    uploads: Arc<Mutex<Uploads>>,
    finished: mpsc::UnboundedSender<Finished>,
    /// Ledger jobs a worker carries on right now (the HTTP API says
    /// `running` for them).
    running: Arc<Mutex<HashSet<i64>>>,
}

impl Jobs {
    fn push(&mut self, tenant: &str, work: Work) {
        let item = Item {
            tenant: tenant.to_string(),
            work,
        };
        if self.queue.push(item.clone()) {
            tracing::debug!(?item, "queued");
        }
    }

    fn push_file(&mut self, tenant: &str, name: String, source: Source) {
        self.push(tenant, Work::File { name, source });
    }

    /// Starts every job the queue allows now.
    fn dispatch(&mut self, config: &Arc<Config>) {
        while let Some(item) = self.queue.take() {
            let (config, store, tx) = (config.clone(), self.store.clone(), self.finished.clone());
            let uploads = self.uploads.clone();
            let running = self.running.clone();
            let job = match item.work {
                Work::Resume { job } => Some(job),
                Work::File { .. } => None,
            };
            if let Some(j) = job {
                lock(&running).insert(j);
            }
            tokio::task::spawn_blocking(move || {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    worker::process(&config, &store, &uploads, &item)
                }))
                .unwrap_or_else(|_| {
                    Err(WorkerError::Io {
                        job: 0,
                        what: format!("the job of {:?} panicked", item.work),
                        source: std::io::Error::other("panic"),
                    })
                });
                if let Some(j) = job {
                    lock(&running).remove(&j);
                }
                let _ = tx.send((item.tenant, r));
            });
        }
    }

    /// An SFTP upload completed: a file in the tenant root becomes a job
    /// (uploads into subfolders are not imported).
    fn on_upload(&mut self, ev: UploadEvent) {
        if let UploadEvent::Complete { tenant, path } = ev {
            let Some(name) = path.to_str() else { return };
            if admit(&tenant, name, None, &lock(&self.uploads), Settle::Done).is_ok() {
                self.push_file(&tenant, name.to_string(), Source::Sftp);
            }
        }
    }

    /// Files the watcher saw that have been still for `settle`: each one
    /// not being uploaded and not a temp name becomes a job.
    fn on_settled(&mut self, config: &Arc<Config>, settler: &mut Settler) {
        let ready = settler.ready(Instant::now(), |(t, n)| {
            watcher::stat(&config.tenant_root(t).join(n))
        });
        for (tenant, name) in ready {
            if admit(&tenant, &name, None, &lock(&self.uploads), Settle::Done).is_ok() {
                self.push_file(&tenant, name, Source::Watcher);
            }
        }
    }

    /// The scheduler's tick: unfinished jobs, then every inbox, then the
    /// housekeeping (expired incomplete uploads, retention).
    async fn on_tick(&mut self, config: &Arc<Config>, settler: &mut Settler, settle_young: bool) {
        tracing::debug!("scheduled sweep");
        if let Err(e) = self.resume().await {
            tracing::error!("cannot list unfinished jobs: {e}");
        }
        self.sweep_all(config, settler, Source::Schedule, settle_young);
        housekeeping(config, &self.uploads, &self.store).await;
    }

    /// Queues every settled file of every inbox, oldest first; files still
    /// changing go to the settler when the watcher runs.
    fn sweep_all(
        &mut self,
        config: &Config,
        settler: &mut Settler,
        source: Source,
        settle_young: bool,
    ) {
        let now = SystemTime::now();
        for (tenant, root) in roots(config) {
            let Swept {
                ready,
                young,
                unread,
            } = sweep(&root, &tenant, &lock(&self.uploads), config.settle, now);
            notes::tell(&root, &tenant, &unread, config.sftp.incomplete_ttl, now);
            for name in ready {
                self.push_file(&tenant, name, source);
            }
            if settle_young {
                for name in young {
                    let st = watcher::stat(&root.join(&name));
                    settler.note((tenant.clone(), name), st, Instant::now());
                }
            }
        }
    }

    /// After a stop: no new job starts; the running ones finish and are
    /// reported.
    async fn finish_running(
        &mut self,
        finished: &mut mpsc::UnboundedReceiver<Finished>,
        done: &broadcast::Sender<Done>,
    ) {
        tracing::info!(
            running = self.queue.running(),
            "shutting down: letting running jobs finish"
        );
        while self.queue.running() > 0 {
            let Some((tenant, r)) = finished.recv().await else {
                break;
            };
            self.queue.done(&tenant);
            report(done, r);
        }
    }

    /// Queues the ledger's unfinished jobs (before any new file, so a crash
    /// between a job row and its claim is carried on, not claimed twice).
    /// The query waits for the store, which a long import may hold: it runs
    /// on the blocking pool, not on the loop's thread.
    async fn resume(&mut self) -> Result<usize, StoreError> {
        let store = self.store.clone();
        let list = tokio::task::spawn_blocking(move || jobs::resumable(&*lock(&store)))
            .await
            .expect("listing unfinished jobs does not panic")?;
        let n = list.len();
        for j in list {
            self.push(&j.tenant, Work::Resume { job: j.id });
        }
        Ok(n)
    }
}

impl Daemon {
    /// `listener`: where SFTP is served; `None` runs without SFTP.
    pub fn new(config: Config, listener: Option<TcpListener>) -> Daemon {
        let (done, _) = broadcast::channel(4096);
        Daemon {
            config,
            listener,
            http: None,
            paths: Paths::default(),
            done,
            ready: None,
        }
    }

    /// Serves the HTTP API on `listener` too (the config needs `[http]`).
    pub fn http(mut self, listener: TcpListener) -> Daemon {
        self.http = Some(listener);
        self
    }

    pub fn paths(mut self, paths: Paths) -> Daemon {
        self.paths = paths;
        self
    }

    /// Fires once the start-up work is done: unfinished jobs and the inboxes'
    /// files are queued, expired uploads removed, SFTP accepting.
    pub fn ready_signal(&mut self) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.ready = Some(tx);
        rx
    }

    /// Every job that reaches `.bak/`, as it does.
    pub fn subscribe(&self) -> broadcast::Receiver<Done> {
        self.done.subscribe()
    }

    /// Runs until `cancel`: then stops accepting SFTP sessions and new jobs,
    /// lets the running jobs finish, and returns. `reloads` brings validated
    /// configs (SIGHUP).
    pub async fn run(
        self,
        cancel: CancellationToken,
        mut reloads: mpsc::UnboundedReceiver<Config>,
    ) -> Result<(), DaemonError> {
        let Daemon {
            config,
            listener,
            http,
            paths,
            done,
            ready,
        } = self;
        let mut config = Arc::new(absolute(config)?);
        let store = Store::open(&config.db_path())?;
        let uploads = Arc::new(Mutex::new(Uploads::load(
            &config.data_dir,
            SystemTime::now(),
        )));
        ensure_roots(&config)?;
        remove_partial_uploads(&config);
        let (finished_tx, mut finished) = mpsc::unbounded_channel::<Finished>();
        let mut jobs = Jobs {
            queue: Queue::new(config.workers),
            store: Arc::new(Mutex::new(store)),
            uploads,
            finished: finished_tx,
            running: Arc::new(Mutex::new(HashSet::new())),
        };
        // The mail sender sees the current config (SIGHUP) and is woken as
        // soon as a job has committed its mail.
        let (config_tx, config_rx) = watch::channel(config.clone());
        let wake_mail = Arc::new(Notify::new());
        let mailer = tokio::spawn(crate::mail::sender::run(
            config.db_path(),
            config_rx,
            wake_mail.clone(),
            cancel.clone(),
        ));
        // The webhook sender likewise, woken by the same finished jobs.
        let wake_webhooks = Arc::new(Notify::new());
        let webhooker = tokio::spawn(crate::webhook::sender::run(
            config.db_path(),
            config_tx.subscribe(),
            wake_webhooks.clone(),
            cancel.clone(),
        ));
        // The SCIM provisioner, woken like the mail sender: after each job.
        let wake_provision = Arc::new(Notify::new());
        let provisioner = tokio::spawn(crate::provision::run(
            config.db_path(),
            config_tx.subscribe(),
            wake_provision.clone(),
            cancel.clone(),
        ));
        // The name index follows the ledger, woken after each job too.
        let wake_names = Arc::new(Notify::new());
        let name_index = tokio::spawn(crate::name_index::run(
            config.db_path(),
            config_tx.subscribe(),
            wake_names.clone(),
            cancel.clone(),
        ));
        let (transport, to) = crate::mail::transport::describe(&config.mail);
        tracing::info!(transport, to = %to, "mail transport");
        let resumed = jobs.resume().await?;
        if resumed > 0 {
            tracing::info!(jobs = resumed, "carrying on unfinished jobs");
        }

        let (up_tx, mut up_rx) = mpsc::unbounded_channel();
        let sftp = match listener {
            Some(l) => Some(start_sftp(&config, l, &jobs.uploads, up_tx, &cancel)?),
            None => None,
        };
        let (http_tx, mut http_rx) = mpsc::unbounded_channel::<crate::http::Queued>();
        let tls = match config.http.as_ref().and_then(|h| h.tls.as_ref()) {
            Some((cert, key)) => {
                Some(
                    crate::http::tls_acceptor(cert, key).map_err(|e| DaemonError::Io {
                        what: "loading [http] tls_cert and tls_key".into(),
                        source: std::io::Error::other(e),
                    })?,
                )
            }
            None => None,
        };
        let http_task =
            http.map(|l| start_http(l, tls, &config_tx, http_tx, &done, &sftp, &jobs, &cancel));

        let mut settler = Settler::new(config.settle);
        let (mut fs_watcher, mut seen_rx) = start_watcher(paths.watcher, &config)?;

        // Start-up sweep: after the watcher is on, so nothing falls between.
        jobs.sweep_all(&config, &mut settler, Source::Startup, paths.watcher);
        housekeeping(&config, &jobs.uploads, &jobs.store).await;
        jobs.dispatch(&config);

        let clock = Clock::start();
        let next_tick = |c: &Config| {
            paths
                .scheduler
                .then(|| until_next(&c.schedule, clock.now()))
                .flatten()
                .map(|d| Instant::now() + d)
        };
        let mut tick = next_tick(&config);
        tracing::info!(tenants = config.tenants.len(), data_dir = %config.data_dir.display(),
            "userdrop running");
        if let Some(r) = ready {
            let _ = r.send(());
        }

        loop {
            let settle_at = settler.next_check();
            tokio::select! {
                _ = cancel.cancelled() => break,
                Some(ev) = up_rx.recv() => {
                    if paths.sftp_events {
                        jobs.on_upload(ev);
                    }
                }
                Some(q) = http_rx.recv() => {
                    jobs.push(&q.tenant, Work::Resume { job: q.job });
                }
                Some(seen) = seen_rx.recv() => {
                    let st = watcher::stat(&config.tenant_root(&seen.0).join(&seen.1));
                    settler.note(seen, st, Instant::now());
                }
                _ = sleep_until(settle_at), if settle_at.is_some() => {
                    jobs.on_settled(&config, &mut settler);
                }
                _ = sleep_until(tick), if tick.is_some() => {
                    jobs.on_tick(&config, &mut settler, paths.watcher).await;
                    tick = next_tick(&config);
                }
                Some(new) = reloads.recv() => {
                    let reloaded = reload(&config, new, &sftp, &mut fs_watcher, &mut jobs, &mut settler);
                    if let Some(c) = reloaded {
                        config = c;
                        // Announced once every part has it (the HTTP keys too).
                        let _ = config_tx.send(config.clone());
                        tracing::info!(tenants = config.tenants.len(), "configuration reloaded");
                    }
                    tick = next_tick(&config);
                }
                Some((tenant, r)) = finished.recv() => {
                    jobs.queue.done(&tenant);
                    report(&done, r);
                    wake_mail.notify_one();
                    wake_webhooks.notify_one();
                    wake_provision.notify_one();
                    wake_names.notify_one();
                }
            }
            jobs.dispatch(&config);
        }

        jobs.finish_running(&mut finished, &done).await;
        if let Some(t) = http_task {
            if let Err(e) = t.await {
                tracing::error!("HTTP server task: {e}");
            }
        }
        if let Err(e) = mailer.await {
            tracing::error!("mail sender task: {e}");
        }
        if let Err(e) = webhooker.await {
            tracing::error!("webhook sender task: {e}");
        }
        if let Err(e) = provisioner.await {
            tracing::error!("provisioner task: {e}");
        }
        if let Err(e) = name_index.await {
            tracing::error!("name index task: {e}");
        }
        if let Some(SftpTask { task, .. }) = sftp {
            match task.await {
                Ok(r) => r?,
                Err(e) => tracing::error!("SFTP server task: {e}"),
            }
        }
        tracing::info!("userdrop stopped");
        Ok(())
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn report(done: &broadcast::Sender<Done>, r: Result<Option<Done>, WorkerError>) {
    match r {
        Ok(Some(d)) => {
            tracing::info!(job = d.job, tenant = %d.tenant, file = %d.file,
                status = d.status.as_str(), "archived");
            let _ = done.send(d);
        }
        Ok(None) => {}
        Err(e) => tracing::error!("job failed to complete, it will be retried: {e}"),
    }
}

/// Relative paths in the config are taken from the working directory at
/// start, once: the daemon's paths then never depend on it again.
fn absolute(mut config: Config) -> Result<Config, DaemonError> {
    config.data_dir = std::path::absolute(&config.data_dir).map_err(|source| DaemonError::Io {
        what: format!("resolving {}", config.data_dir.display()),
        source,
    })?;
    Ok(config)
}

fn roots(config: &Config) -> Vec<(String, PathBuf)> {
    config
        .tenants
        .keys()
        .map(|t| (t.clone(), config.tenant_root(t)))
        .collect()
}

fn ensure_roots(config: &Config) -> Result<(), DaemonError> {
    for (_, root) in roots(config) {
        crate::sftp::fs::ensure_tenant_root(&root).map_err(|source| DaemonError::Io {
            what: format!("creating the tenant root {}", root.display()),
            source,
        })?;
    }
    Ok(())
}

/// The file watcher over every inbox, when it runs, and what it sees.
fn start_watcher(
    on: bool,
    config: &Config,
) -> Result<(Option<Watcher>, mpsc::UnboundedReceiver<Seen>), DaemonError> {
    let (tx, rx) = mpsc::unbounded_channel::<Seen>();
    if !on {
        return Ok((None, rx));
    }
    let mut w = Watcher::new(tx)?;
    w.set_roots(&roots(config));
    Ok((Some(w), rx))
}

/// Starts the SFTP server on `listener`; its upload reports update the marks
/// and reach the loop on `events`.
fn start_sftp(
    config: &Config,
    listener: TcpListener,
    uploads: &Arc<Mutex<Uploads>>,
    events: mpsc::UnboundedSender<UploadEvent>,
    cancel: &CancellationToken,
) -> Result<SftpTask, DaemonError> {
    let server = SftpServer::new(config)?;
    let reloader = server.reloader();
    let (bans, stats) = (server.bans(), server.stats());
    let sink = Sink {
        uploads: uploads.clone(),
        tx: events,
    };
    let task = tokio::spawn(server.run(listener, sink, cancel.clone()));
    Ok(SftpTask {
        reloader,
        task,
        bans,
        stats,
    })
}

/// Starts the HTTP API on `listener`. Its uploads come back on `queued`
/// as committed jobs; it shares the SFTP server's bans (or keeps its own
/// when SFTP is off).
#[allow(clippy::too_many_arguments)]
fn start_http(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    config: &watch::Sender<Arc<Config>>,
    queued: mpsc::UnboundedSender<crate::http::Queued>,
    done: &broadcast::Sender<Done>,
    sftp: &Option<SftpTask>,
    jobs: &Jobs,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let c = config.borrow().clone();
    let bans = match sftp {
        Some(s) => s.bans.clone(),
        None => Arc::new(Mutex::new(crate::sftp::bans::Bans::new(
            crate::sftp::bans::BanPolicy::from_config(&c.sftp),
        ))),
    };
    let state = crate::http::AppState::new(crate::http::Wiring {
        config: config.subscribe(),
        queue: queued,
        done: done.clone(),
        bans,
        sftp: sftp.as_ref().map(|s| s.stats.clone()),
        sftp_up: Arc::new(std::sync::atomic::AtomicBool::new(sftp.is_some())),
        stopping: cancel.clone(),
        running: jobs.running.clone(),
    });
    tokio::spawn(crate::http::run(listener, state, tls))
}

/// Uploads the HTTP API was still receiving when the daemon stopped: never
/// jobs, removed.
fn remove_partial_uploads(config: &Config) {
    for t in config.tenants.keys() {
        let n = crate::intake::remove_partial(&config.spool_dir(t));
        if n > 0 {
            tracing::info!(tenant = %t, files = n, "removed uploads cut off by the last stop");
        }
    }
}

/// Removes incomplete uploads older than `incomplete_ttl` and prunes
/// `.bak/` and `results/` after `retention_days`, and the change ledger
/// after `changes_retention_days`.
async fn housekeeping(
    config: &Arc<Config>,
    uploads: &Arc<Mutex<Uploads>>,
    store: &Arc<Mutex<Store>>,
) {
    let (config, uploads, store) = (config.clone(), uploads.clone(), store.clone());
    let r = tokio::task::spawn_blocking(move || {
        let now = SystemTime::now();
        let mut marks = lock(&uploads);
        for (tenant, path) in marks.expired(config.sftp.incomplete_ttl, now) {
            let root = config.tenant_root(&tenant);
            match std::fs::remove_file(root.join(&path)) {
                Ok(()) => {
                    let ttl = config.sftp.incomplete_ttl;
                    tracing::warn!(tenant, path = %path.display(),
                        ttl = %humantime::format_duration(ttl),
                        "removed an incomplete upload older than incomplete_ttl");
                    let rel = path.to_string_lossy();
                    notes::removed(&root, &tenant, &rel, notes::Removed::Incomplete, ttl, now);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::error!(tenant, path = %path.display(),
                        "cannot remove an expired incomplete upload: {e}");
                    continue;
                }
            }
            marks.forget(&tenant, &path);
        }
        drop(marks);
        let retention = std::time::Duration::from_secs(u64::from(config.retention_days) * 86_400);
        for (tenant, root) in roots(&config) {
            let n = archive::prune(&root, retention, now);
            if n > 0 {
                tracing::info!(
                    tenant,
                    removed = n,
                    days = config.retention_days,
                    "pruned .bak/ and results/"
                );
            }
        }
        let days = i64::from(config.changes_retention_days);
        let before = (chrono::Utc::now() - chrono::Duration::days(days))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        match crate::store::changes::prune(&*lock(&store), &before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, days, "pruned the change ledger"),
            Err(e) => tracing::error!("cannot prune the change ledger: {e}"),
        }
    })
    .await;
    if let Err(e) = r {
        tracing::error!("housekeeping: {e}");
    }
}

/// Swaps in a new config: tenants, accounts, limits. What needs a restart
/// (data_dir, the listen address) keeps its old value, with a warning.
/// `None`: refused (logged), the old config stays.
fn reload(
    old: &Arc<Config>,
    new: Config,
    sftp: &Option<SftpTask>,
    fs_watcher: &mut Option<Watcher>,
    jobs: &mut Jobs,
    settler: &mut Settler,
) -> Option<Arc<Config>> {
    let mut new = match absolute(new) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("reload refused, the old configuration stays: {e}");
            return None;
        }
    };
    if new.data_dir != old.data_dir {
        tracing::warn!(old = %old.data_dir.display(), new = %new.data_dir.display(),
            "data_dir changes only on restart; keeping the old one");
        new.data_dir = old.data_dir.clone();
    }
    if new.sftp.listen != old.sftp.listen {
        tracing::warn!("[sftp] listen changes only on restart");
    }
    if new.http.as_ref().map(|h| h.listen) != old.http.as_ref().map(|h| h.listen) {
        tracing::warn!("[http] listen (and whether HTTP runs at all) changes only on restart");
    }
    if let Err(e) = ensure_roots(&new) {
        tracing::error!("reload refused, the old configuration stays: {e}");
        return None;
    }
    if let Some(s) = sftp {
        s.reloader.reload(&new);
    }
    if let Some(w) = fs_watcher {
        w.set_roots(&roots(&new));
    }
    jobs.queue.set_workers(new.workers);
    settler.set_settle(new.settle);
    Some(Arc::new(new))
}
