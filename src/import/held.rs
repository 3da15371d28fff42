//! A held job's file kept for its approval. A job run on a caller's file
//! (the CLI's `import`) that ends held keeps a copy in the tenant's spool
//! (`<id>_<name>`), since the caller's copy may change or vanish before the
//! operator approves; the ledger's path then points at the copy. The
//! daemon's jobs need none of this: their file is already the spool's. This
//! module must never decide whether a job is held; the outcome says so.

use std::io;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::report::summary::{JobReport, Status};
use crate::store::{jobs, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error("creating {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("keeping a copy of the held file in {}", path.display())]
    Copy {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// If `report` is a recorded held job, copies `file` (named `file_name` in
/// the report) into the spool and points the job at the copy; returns the
/// copy's path. Otherwise does nothing.
pub fn keep_if_held(
    store: &Store,
    config: &Config,
    report: &JobReport,
    file: &Path,
    file_name: &str,
) -> Result<Option<PathBuf>, KeepError> {
    let (Status::Held, Some(id)) = (report.status, report.job) else {
        return Ok(None);
    };
    let dir = config.spool_dir(&report.tenant);
    std::fs::create_dir_all(&dir).map_err(|source| KeepError::CreateDir {
        path: dir.clone(),
        source,
    })?;
    let kept = dir.join(format!("{id}_{file_name}"));
    std::fs::copy(file, &kept).map_err(|source| KeepError::Copy {
        path: kept.clone(),
        source,
    })?;
    jobs::set_path(store, id, &kept.to_string_lossy())?;
    Ok(Some(kept))
}
