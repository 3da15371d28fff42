//! How files reach processing (docs/behaviour.md#pickup): four paths into one [`queue`].
//! SFTP completion events arrive from the server through the daemon; the
//! [`watcher`] notices files placed by other means and waits for them to
//! settle; the [`scheduler`] and the start-up [`sweep`] list every inbox.
//! [`uploads`] remembers which files are uploads in progress or left
//! incomplete, so that no path ever takes one. A sweep also lists the files
//! it never takes (in subfolders, under temp names) for [`notes`] to tell
//! the customer once. This module must never claim, move or read a file's
//! content: it only says which files are ready, and `notes` writes only in
//! `results/`.

pub mod admit;
pub mod notes;
pub mod queue;
pub mod scheduler;
pub mod uploads;
pub mod watcher;

use std::path::Path;
use std::time::{Duration, SystemTime};

use admit::{admit, NotAdmitted, Settle};
use notes::{Unread, Why};
use uploads::Uploads;

use crate::writers::FileId;

/// Subfolders a sweep looks into for files it never takes: how deep, and
/// how many entries in all (a sweep must stay cheap whatever a customer
/// makes of the tree).
const SUBFOLDER_DEPTH: usize = 4;
const SUBFOLDER_ENTRIES: usize = 1000;

/// The tenant root's own directories, never reported.
const OWN_DIRS: [&str; 2] = [".bak", "results"];

/// What a sweep of one tenant root found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Files still for at least `settle`: ready to queue.
    pub ready: Vec<String>,
    /// Files changed within `settle` (perhaps still being copied in): the
    /// watcher settles them, or the next sweep takes them.
    pub young: Vec<String>,
    /// Files never taken: in a subfolder, or settled under a temp name
    /// with no upload open on it.
    pub unread: Vec<Unread>,
}

/// Lists the files of a tenant root that [`admit()`] lets in, and those it
/// holds back only because they are not settled yet. Oldest first, so a
/// backlog is taken in arrival order.
pub fn sweep(
    root: &Path,
    tenant: &str,
    uploads: &Uploads,
    settle: Duration,
    now: SystemTime,
) -> Swept {
    let mut found: Vec<(SystemTime, String, bool)> = Vec::new();
    let mut unread = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(tenant, root = %root.display(), "cannot list the inbox: {e}");
            return Swept::default();
        }
    };
    for e in entries.flatten() {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let still = match admit(
            tenant,
            &name,
            Some(&meta),
            uploads,
            Settle::ByMtime { settle, now },
        ) {
            Ok(()) => true,
            Err(NotAdmitted::Unsettled) => false,
            Err(NotAdmitted::NotAFile) if meta.is_dir() && !OWN_DIRS.contains(&name.as_str()) => {
                let mut budget = SUBFOLDER_ENTRIES;
                in_subfolders(&e.path(), &name, 1, &mut budget, &mut unread);
                continue;
            }
            Err(NotAdmitted::TempName)
                if meta.is_file()
                    && !uploads.blocks(tenant, &name)
                    && !uploads.is_written(FileId::of_meta(&meta))
                    && now.duration_since(mtime).unwrap_or_default() >= settle =>
            {
                unread.push(Unread {
                    path: name,
                    why: Why::TempName,
                    mtime,
                });
                continue;
            }
            Err(_) => continue,
        };
        found.push((mtime, name, still));
    }
    found.sort();
    let mut s = Swept {
        unread,
        ..Swept::default()
    };
    for (_, name, still) in found {
        if still {
            s.ready.push(name);
        } else {
            s.young.push(name);
        }
    }
    s
}

/// The regular files below `dir` (`rel` from the tenant root), `depth`
/// levels down, within `budget` entries.
fn in_subfolders(dir: &Path, rel: &str, depth: usize, budget: &mut usize, out: &mut Vec<Unread>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let path = format!("{rel}/{name}");
        if meta.is_dir() && depth < SUBFOLDER_DEPTH {
            in_subfolders(&e.path(), &path, depth + 1, budget, out);
        } else if meta.is_file() {
            out.push(Unread {
                path,
                why: Why::InSubfolder,
                mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_takes_settled_final_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let old = SystemTime::now() - Duration::from_secs(60);
        for n in ["b.csv", "a.xlsx", "x.filepart", ".hidden", "uploading.csv"] {
            let f = std::fs::File::create(root.join(n)).unwrap();
            f.set_modified(old).unwrap();
        }
        std::fs::write(root.join("fresh.csv"), "x").unwrap();
        std::fs::create_dir(root.join(".bak")).unwrap();
        std::fs::create_dir(root.join("dir.csv")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link.csv")).unwrap();
        let data = tempfile::tempdir().unwrap();
        let mut up = Uploads::load(data.path(), SystemTime::now());
        up.opened("acme", Path::new("uploading.csv"), SystemTime::now())
            .unwrap();
        let s = sweep(root, "acme", &up, Duration::from_secs(5), SystemTime::now());
        assert_eq!(s.ready, vec!["a.xlsx", "b.csv"]);
        assert_eq!(s.young, vec!["fresh.csv"]);
    }

    #[test]
    fn a_sweep_takes_a_backlog_oldest_first_not_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let now = SystemTime::now();
        // Names in the reverse of their arrival order, and one tie broken
        // by name.
        for (n, age) in [
            ("a.csv", 10),
            ("b.csv", 30),
            ("c.csv", 20),
            ("d.csv", 40),
            ("e.csv", 30),
        ] {
            let f = std::fs::File::create(root.join(n)).unwrap();
            f.set_modified(now - Duration::from_secs(age)).unwrap();
        }
        let data = tempfile::tempdir().unwrap();
        let up = Uploads::load(data.path(), now);
        let s = sweep(root, "acme", &up, Duration::from_secs(5), now);
        assert_eq!(s.ready, vec!["d.csv", "b.csv", "e.csv", "c.csv", "a.csv"]);
    }
}
