//! The job state machine of the daemon (docs/architecture.md#the-job-state-machine): one
//! queued file becomes one job, exactly once, across crashes.
//!
//! claim: the job row is committed (state `received`, its spool path fixed)
//! and only then is the file renamed from the tenant root into `spool/`;
//! every SFTP write handle still on it is revoked. The first run records the
//! hash of the bytes it reads; a re-run and an approval refuse bytes that
//! differ;
//! apply: `import::run` decides the job and records its outcome (and its
//! mail) in one transaction; archive: results are written, the original
//! moves to `.bak/`, `archived_at` is set. A restart finds every job that
//! stopped between two of these steps through `jobs::resumable` and carries
//! it on from the last one that was persisted: an undecided job runs again
//! (its transaction never committed), a decided one is only archived.
//!
//! approve: a held job is applied on an operator's word ([`approve`]), its
//! `results/` rewritten if the daemon had archived it.
//!
//! Everything here is blocking (CSV, SQLite, renames): the daemon calls it
//! on the blocking pool. This module must never decide whether a file is
//! complete (the pickup paths do) nor talk to SMTP.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::archive;
use crate::config::{Config, Tenant};
use crate::import::{self, ImportError, ImportOptions, Outcome};
use crate::ingest::error::{FileError, FileErrorCode};
use crate::pickup::admit::{accepted, admit, NotAdmitted, Settle};
use crate::pickup::queue::{Item, Work};
use crate::pickup::uploads::Uploads;
use crate::report::ledger::stored_report;
use crate::report::summary::Status;
use crate::store::jobs::{self, JobState};
use crate::store::{Store, StoreError};
use crate::writers::FileId;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Import(#[from] ImportError),
    #[error("job {job}: {what}: {source}")]
    Io {
        job: i64,
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("claiming {path}: {source}")]
    Claim {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A job that reached `.bak/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub job: i64,
    pub tenant: String,
    pub file: String,
    pub status: Status,
}

/// Runs one queue item to its end. `Ok(None)`: nothing to do (the file was
/// gone by its turn, or the job was already archived).
pub fn process(
    config: &Config,
    store: &Mutex<Store>,
    uploads: &Mutex<Uploads>,
    item: &Item,
) -> Result<Option<Done>, WorkerError> {
    let job = match &item.work {
        Work::File { name, source } => {
            if config.tenant(&item.tenant).is_none() {
                tracing::warn!(tenant = %item.tenant, file = %name,
                    "the tenant is no longer configured; the file stays where it is");
                return Ok(None);
            }
            match claim(config, store, uploads, &item.tenant, name, source.as_str())? {
                Some(id) => id,
                None => return Ok(None),
            }
        }
        Work::Resume { job } => *job,
    };
    carry_on(config, store, job)
}

/// A poisoned lock only means a job panicked; an SQLite transaction rolls
/// back on unwind and the upload marks are saved whole, so the data is
/// whole. The daemon uses the same.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records the job, then moves the file into the spool.
fn claim(
    config: &Config,
    store: &Mutex<Store>,
    uploads: &Mutex<Uploads>,
    tenant: &str,
    name: &str,
    source: &str,
) -> Result<Option<i64>, WorkerError> {
    let root = config.tenant_root(tenant);
    let from = root.join(name);
    // Gone (claimed by an earlier item, deleted): nothing to do.
    let Ok(meta) = std::fs::symlink_metadata(&from) else {
        return Ok(None);
    };
    let spool = config.spool_dir(tenant);
    std::fs::create_dir_all(&spool).map_err(|source| WorkerError::Claim {
        path: spool.clone(),
        source,
    })?;
    let mut s = lock(store);
    // Held until the file has moved: an SFTP session that opens the name
    // for writing meanwhile (a new upload over a queued file) waits for it,
    // and one that opened it before is seen here. Its completion queues the
    // file again.
    let mut marks = lock(uploads);
    match admit(tenant, name, Some(&meta), &marks, Settle::Done) {
        Ok(()) => {}
        Err(NotAdmitted::Uploading) => {
            tracing::debug!(
                tenant,
                file = name,
                "being uploaded again; left for its completion"
            );
            return Ok(None);
        }
        Err(_) => return Ok(None),
    }
    let (id, to) = jobs::create_claim(&mut s, tenant, name, source, &spool)?;
    match std::fs::rename(&from, &to) {
        Ok(()) => {}
        Err(e) => {
            jobs::delete_unstarted(&*s, id)?;
            if e.kind() == io::ErrorKind::NotFound {
                return Ok(None);
            }
            return Err(WorkerError::Claim {
                path: from,
                source: e,
            });
        }
    }
    // No write handle was open (admitted), and none opened since reaches
    // the spool: revoking is the guarantee, not the rule.
    marks.claimed(FileId::of_meta(&meta));
    drop(marks);
    drop(s);
    for dir in [&spool, &root] {
        archive::sync_dir(dir).map_err(|source| WorkerError::Io {
            job: id,
            what: format!("syncing {}", dir.display()),
            source,
        })?;
    }
    tracing::debug!(tenant, file = name, job = id, source, "claimed");
    Ok(Some(id))
}

fn carry_on(config: &Config, store: &Mutex<Store>, id: i64) -> Result<Option<Done>, WorkerError> {
    let Some(mut job) = jobs::get(&*lock(store), id)? else {
        return Ok(None);
    };
    if job.archived_at.is_some() {
        return Ok(None);
    }
    let Some(tenant) = config.tenant(&job.tenant) else {
        tracing::error!(job = id, tenant = %job.tenant,
            "the job's tenant is no longer configured; the job waits for it");
        return Ok(None);
    };
    if job.state == JobState::Received {
        if !decide(config, store, tenant, &job)? {
            return Ok(None);
        }
        job = jobs::get(&*lock(store), id)?.expect("the job exists");
    }
    let s = lock(store);
    let (report, errors) = stored_report(&*s, &job)?.expect("a decided job has a report");
    drop(s);
    let root = config.tenant_root(&job.tenant);
    let bak =
        archive::archive(&root, &job, &report, &errors).map_err(|source| WorkerError::Io {
            job: id,
            what: "archiving to .bak/ and results/".into(),
            source,
        })?;
    jobs::mark_archived(&*lock(store), id, &bak.to_string_lossy())?;
    Ok(Some(Done {
        job: id,
        tenant: job.tenant,
        file: job.file,
        status: report.status,
    }))
}

/// Runs the pipeline on a claimed job. `false`: the job's file is gone and
/// the job was never started (it is forgotten).
fn decide(
    config: &Config,
    store: &Mutex<Store>,
    tenant: &Tenant,
    job: &jobs::JobRow,
) -> Result<bool, WorkerError> {
    let path = PathBuf::from(&job.path);
    // A file that came in whole through the HTTP API or the web page was
    // never in the tenant root: a file of the same name there is another
    // upload.
    let from_root = !crate::intake::arrived_whole(&job.source);
    let present = path.is_file() || (from_root && reclaim(config, job, &path)?);
    if !present {
        tracing::warn!(job = job.id, tenant = %job.tenant, file = %job.file,
            "the claimed file is gone; forgetting the job");
        jobs::delete_unstarted(&*lock(store), job.id)?;
        return Ok(false);
    }
    let unchanged = check_content(store, job.id, &path)?;
    let mut s = lock(store);
    let (tenant, options) = crate::intake::tenant_for_job(&s, tenant, job.id)?;
    let tenant = &tenant;
    if !unchanged {
        // Bytes that are not the ones the job took are never applied; the
        // job ends refused (once, reported and archived) rather than being
        // retried on every tick.
        let err = FileError::new(
            FileErrorCode::Unreadable,
            format!(
                "{} changed on the server after userdrop took it for processing, so nothing in it was applied; upload the file again",
                job.file
            ),
        );
        import::refuse(&mut s, tenant, job.id, &job.file, &err)?;
        return Ok(true);
    }
    if let Err(err) = accepted(tenant, &job.file) {
        import::refuse(&mut s, tenant, job.id, &job.file, &err)?;
        return Ok(true);
    }
    let opts = ImportOptions {
        file_name: &job.file,
        source: &job.source,
        dry_run: false,
        job: Some(job.id),
        approved: false,
        rows: options.rows(),
    };
    import::run(&mut s, tenant, &path, &opts)?;
    Ok(true)
}

/// The hash of a job's bytes as the ledger keeps it: xxh3-128, 32 lowercase
/// hex digits. Reads the file through once.
pub fn content_hash(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(format!("{:032x}", h.digest128()))
}

/// Whether `path` still holds the bytes job `id` took: records their hash
/// the first time (its first run), compares it after. The hash is taken
/// without the store's lock.
fn check_content(store: &Mutex<Store>, id: i64, path: &Path) -> Result<bool, WorkerError> {
    let hash = content_hash(path).map_err(|source| WorkerError::Io {
        job: id,
        what: format!("reading {}", path.display()),
        source,
    })?;
    let s = lock(store);
    match jobs::recorded_hash(&*s, id)? {
        None => jobs::set_content_hash(&*s, id, &hash)?,
        Some(h) if h == hash => {}
        Some(_) => {
            tracing::error!(job = id, path = %path.display(),
                "the job's file changed after it was taken; it is not imported");
            return Ok(false);
        }
    }
    Ok(true)
}

/// A crash between the job row and the rename leaves the file in the tenant
/// root: finish the claim.
fn reclaim(config: &Config, job: &jobs::JobRow, to: &Path) -> Result<bool, WorkerError> {
    let from = config.tenant_root(&job.tenant).join(&job.file);
    match std::fs::rename(&from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(WorkerError::Claim { path: from, source }),
    }
}

/// Why a held job was not approved. The first four are the operator's to
/// fix (the CLI exits 2 on them); the rest are failures of the run.
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    #[error("there is no job {0}")]
    NoSuchJob(i64),
    /// `status` is the job's status, or `None` while it is undecided.
    #[error(
        "job {id} is not held (its status is {}); only held sync jobs can be approved",
        status.map_or("not decided yet", Status::as_str)
    )]
    NotHeld { id: i64, status: Option<Status> },
    #[error("job {newer} of tenant {tenant} was applied after job {id}; approving the older file would undo it. Upload the file again if it is still wanted")]
    NewerApplied { id: i64, newer: i64, tenant: String },
    /// The job's tenant is no longer in the configuration.
    #[error("no tenant {tenant:?} in {source_name}; the tenants are: {}", tenants.join(", "))]
    NoSuchTenant {
        tenant: String,
        source_name: String,
        tenants: Vec<String>,
    },
    #[error("the held file of job {id} is no longer at {}", path.display())]
    HeldFileGone { id: i64, path: PathBuf },
    #[error("the held file of job {id} ({}) changed after the job took it: its content hash is not the one recorded then, so it is not applied. Upload the file again if it is still wanted", path.display())]
    Changed { id: i64, path: PathBuf },
    #[error("reading the held file of job {id}")]
    Read {
        id: i64,
        #[source]
        source: io::Error,
    },
    #[error("job {0} vanished")]
    Vanished(i64),
    #[error("updating results/ of job {id}")]
    Archive {
        id: i64,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// Applies a held sync job: only a held job, and only while no newer job of
/// its tenant has been applied (approving the older file would undo it). The
/// kept file is judged again and applied past `max_missing_percent`; a job
/// the daemon already archived gets its `results/` rewritten with the new
/// outcome (its `.bak/` copy stays where it is). The one way to approve,
/// whichever door asks.
pub fn approve(store: &mut Store, config: &Config, id: i64) -> Result<Outcome, ApproveError> {
    let job = jobs::get(store, id)?.ok_or(ApproveError::NoSuchJob(id))?;
    if job.status != Some(Status::Held) {
        return Err(ApproveError::NotHeld {
            id,
            status: job.status,
        });
    }
    if let Some(newer) = jobs::newer_applied(store, &job.tenant, id)? {
        return Err(ApproveError::NewerApplied {
            id,
            newer,
            tenant: job.tenant,
        });
    }
    let tenant = config
        .tenant(&job.tenant)
        .ok_or_else(|| ApproveError::NoSuchTenant {
            tenant: job.tenant.clone(),
            source_name: config.source_name.clone(),
            tenants: config.tenants.keys().cloned().collect(),
        })?;
    let path = PathBuf::from(&job.path);
    if !path.is_file() {
        return Err(ApproveError::HeldFileGone { id, path });
    }
    if let Some(recorded) = jobs::recorded_hash(store, id)? {
        let now = content_hash(&path).map_err(|source| ApproveError::Read { id, source })?;
        if now != recorded {
            return Err(ApproveError::Changed { id, path });
        }
    }
    let (tenant, options) = crate::intake::tenant_for_job(store, tenant, id)?;
    let tenant = &tenant;
    let opts = ImportOptions {
        file_name: &job.file,
        source: &job.source,
        dry_run: false,
        job: Some(id),
        approved: true,
        rows: options.rows(),
    };
    let outcome = import::run(store, tenant, &path, &opts)?;
    if job.archived_at.is_some() {
        let job = jobs::get(store, id)?.ok_or(ApproveError::Vanished(id))?;
        if let Some((report, errors)) = stored_report(store, &job)? {
            archive::archive(&config.tenant_root(&job.tenant), &job, &report, &errors)
                .map_err(|source| ApproveError::Archive { id, source })?;
        }
    }
    Ok(outcome)
}
