//! The one rule of which file in an inbox may become a job: a plain file in
//! the tenant root, not a temp name, not marked as an upload in progress or
//! left incomplete, no SFTP write handle open on it (whatever name the
//! handle was opened under), and settled. The SFTP completion events, the watcher,
//! the sweeps and the worker's claim all ask [`admit`]; none decides on its
//! own. [`accepted`] is the other half: whether the tenant imports a file
//! of that name at all (`accept`), asked by the worker before the pipeline
//! and by `userdrop import` alike. This module must never move, open or
//! read a file.

use std::fs::Metadata;
use std::time::{Duration, SystemTime};

use super::uploads::Uploads;
use crate::config::Tenant;
use crate::ingest::error::{FileError, FileErrorCode};
use crate::ingest::names::is_temp_name;
use crate::writers::FileId;

/// Why a file is not taken now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAdmitted {
    /// In a subfolder: only the tenant root's files are imported.
    NotInRoot,
    /// A directory, a symlink, a FIFO, a device.
    NotAFile,
    /// A name upload clients write to before renaming (`.filepart` …).
    TempName,
    /// An upload in progress, or one that never completed, or a write
    /// handle still open on the file.
    Uploading,
    /// Changed within `settle`: perhaps still being copied in.
    Unsettled,
}

/// What the caller knows of the file's stillness.
#[derive(Debug, Clone, Copy)]
pub enum Settle {
    /// Settled already: an SFTP completion, the watcher's settler, a claim
    /// of a queued file.
    Done,
    /// Judge by its mtime: still for at least `settle` at `now`.
    ByMtime { settle: Duration, now: SystemTime },
}

/// Whether `name` (relative to the tenant root) may become a job now.
/// `meta` is its `symlink_metadata` where the caller has it (the claim
/// always has it: only then are open write handles checked, by inode).
pub fn admit(
    tenant: &str,
    name: &str,
    meta: Option<&Metadata>,
    uploads: &Uploads,
    settle: Settle,
) -> Result<(), NotAdmitted> {
    if name.is_empty() || name.contains('/') {
        return Err(NotAdmitted::NotInRoot);
    }
    if meta.is_some_and(|m| !m.is_file()) {
        return Err(NotAdmitted::NotAFile);
    }
    if is_temp_name(name) {
        return Err(NotAdmitted::TempName);
    }
    if uploads.blocks(tenant, name) || meta.is_some_and(|m| uploads.is_written(FileId::of_meta(m)))
    {
        return Err(NotAdmitted::Uploading);
    }
    if let (Settle::ByMtime { settle, now }, Some(m)) = (settle, meta) {
        let mtime = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if now.duration_since(mtime).unwrap_or_default() < settle {
            return Err(NotAdmitted::Unsettled);
        }
    }
    Ok(())
}

/// Whether `tenant` imports a file named `file_name` (its `accept`
/// patterns). A file it does not is refused as a whole, with this error,
/// before anything reads it: by the daemon's worker, and by `userdrop
/// import` (a dry run included) for the same file.
pub fn accepted(tenant: &Tenant, file_name: &str) -> Result<(), FileError> {
    if tenant.accepts(file_name) {
        return Ok(());
    }
    Err(FileError::new(
        FileErrorCode::UnsupportedFileType,
        format!(
            "{file_name} is not a file userdrop reads: only {} are imported. Save the sheet as CSV (for example File > Save As > CSV UTF-8) and upload that file",
            tenant.accept.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn each_reason_in_turn() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let data = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let mut up = Uploads::load(data.path(), now);
        let old = now - Duration::from_secs(60);
        for n in ["a.csv", "x.part", "up.csv"] {
            std::fs::File::create(root.join(n))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        std::fs::write(root.join("young.csv"), "x").unwrap();
        std::fs::create_dir(root.join("d.csv")).unwrap();
        up.opened("acme", Path::new("up.csv"), now).unwrap();
        let by_mtime = Settle::ByMtime {
            settle: Duration::from_secs(5),
            now,
        };
        let check = |up: &Uploads, name: &str| {
            let meta = std::fs::symlink_metadata(root.join(name)).ok();
            admit("acme", name, meta.as_ref(), up, by_mtime)
        };
        assert_eq!(check(&up, "a.csv"), Ok(()));
        // A write handle open on a.csv, opened under a temp name.
        let meta = std::fs::symlink_metadata(root.join("a.csv")).unwrap();
        let w = up.writer_opened("acme", Path::new(".a.csv"), FileId::of_meta(&meta));
        assert_eq!(check(&up, "a.csv"), Err(NotAdmitted::Uploading));
        up.writer_closed("acme", &w, true);
        assert_eq!(check(&up, "x.part"), Err(NotAdmitted::TempName));
        assert_eq!(check(&up, "up.csv"), Err(NotAdmitted::Uploading));
        assert_eq!(check(&up, "young.csv"), Err(NotAdmitted::Unsettled));
        assert_eq!(check(&up, "d.csv"), Err(NotAdmitted::NotAFile));
        assert_eq!(
            admit("acme", "sub/a.csv", None, &up, Settle::Done),
            Err(NotAdmitted::NotInRoot)
        );
        assert_eq!(admit("acme", "young.csv", None, &up, Settle::Done), Ok(()));
    }
}
