//! The SFTP write handles open right now, by file (device and inode, not
//! name: a handle follows its file through renames). A file is complete only
//! when no write handle on it is open, whatever its name was when the handle
//! was opened (temp names included); claiming a file revokes every handle
//! on it, and a revoked handle never writes again.
//!
//! Kept in memory only (handles die with the process) inside the pickup's
//! upload marks (`pickup::uploads::Uploads`), so that the claim, which holds
//! the marks' lock, sees every handle registered before it and revokes any
//! registered after. It lives below both the SFTP server, which registers
//! handles, and the pickup, which claims files, so that neither imports the
//! other. A [`Writer`] checks its revocation without a lock or a system call
//! (one atomic load per WRITE). This module must never touch the file
//! system: it only records what the SFTP sessions and the claim tell it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A file by identity: what `stat` says of it, whatever its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of_meta(m: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: m.dev(),
            ino: m.ino(),
        }
    }
}

/// One open write handle's ticket: the session keeps it with the handle.
#[derive(Debug, Clone)]
pub struct Writer {
    file: FileId,
    /// The path the handle was opened at.
    opened_at: PathBuf,
    revoked: Arc<AtomicBool>,
}

impl Writer {
    /// A ticket nobody else tracks (a sink without a registry): never revoked.
    pub fn untracked(path: &Path, file: FileId) -> Writer {
        Writer {
            file,
            opened_at: path.to_path_buf(),
            revoked: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether the file was claimed (or archived) since: the handle must not
    /// write to it any more.
    pub fn revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }

    pub fn file(&self) -> FileId {
        self.file
    }

    pub fn opened_at(&self) -> &Path {
        &self.opened_at
    }
}

/// What a closing handle learns of its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The file's name now (relative to the tenant root); `None` when no name
    /// in the tenant root leads to it any more (claimed, replaced).
    pub path: Option<PathBuf>,
    /// Other write handles are still open on it: not complete yet.
    pub busy: bool,
}

#[derive(Debug)]
struct Entry {
    tenant: String,
    path: Option<PathBuf>,
    handles: u32,
    revoked: Arc<AtomicBool>,
}

/// The registry of open write handles.
#[derive(Debug, Default)]
pub struct Writers {
    open: HashMap<FileId, Entry>,
}

impl Writers {
    /// A write handle on `file`, at `path` of `tenant`'s root, was opened.
    pub fn opened(&mut self, tenant: &str, path: &Path, file: FileId) -> Writer {
        let e = self.open.entry(file).or_insert_with(|| Entry {
            tenant: tenant.to_string(),
            path: Some(path.to_path_buf()),
            handles: 0,
            revoked: Arc::new(AtomicBool::new(false)),
        });
        e.handles += 1;
        if !e.revoked.load(Ordering::Acquire) {
            e.path = Some(path.to_path_buf());
        }
        Writer {
            file,
            opened_at: path.to_path_buf(),
            revoked: e.revoked.clone(),
        }
    }

    /// The handle is closed.
    pub fn closed(&mut self, w: &Writer) -> Closed {
        let Some(e) = self.open.get_mut(&w.file) else {
            return Closed {
                path: None,
                busy: false,
            };
        };
        e.handles = e.handles.saturating_sub(1);
        let path = if e.revoked.load(Ordering::Acquire) {
            None
        } else {
            e.path.clone()
        };
        let busy = e.handles > 0;
        if !busy {
            self.open.remove(&w.file);
        }
        Closed { path, busy }
    }

    /// Whether a write handle is open on the file.
    pub fn is_open(&self, file: FileId) -> bool {
        self.open.contains_key(&file)
    }

    /// A rename moved `file` to `to` (and unlinked `replaced`, the file that
    /// was at `to`). Whether a write handle is open on the moved file.
    pub fn renamed(&mut self, file: FileId, to: &Path, replaced: Option<FileId>) -> bool {
        if let Some(e) = replaced.and_then(|r| self.open.get_mut(&r)) {
            e.path = None;
        }
        match self.open.get_mut(&file) {
            Some(e) => {
                e.path = Some(to.to_path_buf());
                true
            }
            None => false,
        }
    }

    /// The file was claimed: every handle on it fails from now on.
    pub fn revoke(&mut self, file: FileId) {
        if let Some(e) = self.open.get_mut(&file) {
            e.revoked.store(true, Ordering::Release);
            e.path = None;
            tracing::warn!(tenant = %e.tenant, handles = e.handles,
                "a claimed file had write handles open; they can no longer write");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: FileId = FileId { dev: 1, ino: 10 };
    const B: FileId = FileId { dev: 1, ino: 11 };

    #[test]
    fn a_handle_follows_its_file_through_renames() {
        let mut w = Writers::default();
        let h = w.opened("acme", Path::new(".x.csv"), A);
        assert!(w.is_open(A));
        assert!(w.renamed(A, Path::new("x.csv"), None));
        assert!(!w.renamed(B, Path::new("y.csv"), None));
        assert_eq!(
            w.closed(&h),
            Closed {
                path: Some("x.csv".into()),
                busy: false
            }
        );
        assert!(!w.is_open(A));
    }

    #[test]
    fn two_handles_both_must_close() {
        let mut w = Writers::default();
        let h1 = w.opened("acme", Path::new("a.csv"), A);
        let h2 = w.opened("acme", Path::new("a.csv"), A);
        assert!(w.closed(&h1).busy);
        assert!(w.is_open(A));
        assert!(!w.closed(&h2).busy);
        assert!(!w.is_open(A));
    }

    #[test]
    fn a_revoked_handle_knows_it_and_its_file_has_no_name() {
        let mut w = Writers::default();
        let h = w.opened("acme", Path::new("a.csv"), A);
        let other = w.opened("acme", Path::new("b.csv"), B);
        assert!(!h.revoked());
        w.revoke(A);
        assert!(h.revoked());
        assert!(!other.revoked());
        assert_eq!(w.closed(&h).path, None);
        // Replaced by a rename over it: no name leads to it.
        w.renamed(A, Path::new("b.csv"), Some(B));
        assert_eq!(w.closed(&other).path, None);
    }
}
