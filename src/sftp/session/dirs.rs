//! Directories as a session sees them: listings read lazily, a batch per
//! READDIR, and the cap on the entries one directory may hold.
//!
//! Its role: keep what a directory handle costs bounded (one fd and one
//! batch) whatever the directory's size, and refuse an upload of a new name
//! into a directory that holds `max_inbox_entries` already. What it must
//! never do: read a whole directory into memory, follow a symlink, or block
//! the async runtime (every file system call runs on the blocking pool).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use russh_sftp::protocol::{File, OpenFlags, StatusCode};

use super::{attrs_of, blocking, Reply};
use crate::sftp::fs::{DirReader, Root};

/// Entries per READDIR reply (at most).
pub const DIR_BATCH: usize = 128;

/// An open directory: its reader, shared with the blocking task that reads
/// the next batch.
#[derive(Debug, Clone)]
pub struct DirHandle {
    reader: Arc<Mutex<DirReader>>,
}

impl DirHandle {
    pub async fn open(root: Arc<Root>, rel: PathBuf) -> io::Result<DirHandle> {
        let reader = blocking(move || root.open_dir(&rel)).await?;
        Ok(DirHandle {
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// The next batch as READDIR answers it; empty at the end.
    pub async fn next_files(&self) -> io::Result<Vec<File>> {
        let reader = self.reader.clone();
        let entries = blocking(move || {
            let mut r = reader.lock().unwrap_or_else(|p| p.into_inner());
            r.next_batch(DIR_BATCH)
        })
        .await?;
        Ok(entries
            .iter()
            .map(|e| File {
                filename: e.name.clone(),
                longname: long_name(&e.name, &e.stat),
                attrs: attrs_of(&e.stat),
            })
            .collect())
    }
}

/// Refuses an OPEN that would create a new name in a directory holding
/// `limit` entries already. Opening an existing file, or without CREAT,
/// always passes.
pub async fn check_room(
    root: &Arc<Root>,
    rel: &Path,
    pflags: OpenFlags,
    limit: usize,
) -> Reply<()> {
    if !pflags.contains(OpenFlags::CREATE) {
        return Ok(());
    }
    let root = root.clone();
    let target = rel.to_path_buf();
    let full = blocking(move || {
        match root.lstat(&target) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // Exists (or cannot be told): the open itself decides.
            _ => return Ok(false),
        }
        let dir = target.parent().unwrap_or(Path::new(""));
        match root.count_entries(dir, limit) {
            Ok(n) => Ok(n >= limit),
            Err(_) => Ok(false),
        }
    })
    .await
    .unwrap_or(false);
    if full {
        let dir = crate::sftp::jail::display(rel.parent().unwrap_or(Path::new("")));
        tracing::warn!(path = %rel.display(), max_inbox_entries = limit,
            "refused an upload: the directory is full");
        return Err(StatusCode::Failure.with_message(format!(
            "{dir} already holds {limit} entries, the most a directory may hold here \
             (max_inbox_entries): wait for files to be processed or remove some, then upload again"
        )));
    }
    Ok(())
}

/// A line like `ls -l` prints.
pub fn long_name(name: &str, st: &rustix::fs::Stat) -> String {
    use rustix::fs::FileType;
    let kind = match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::RegularFile => '-',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
        FileType::CharacterDevice => 'c',
        FileType::BlockDevice => 'b',
        FileType::Unknown => '?',
    };
    let mut perms = String::with_capacity(9);
    for shift in [6, 3, 0] {
        let bits = (st.st_mode >> shift) & 7;
        perms.push(if bits & 4 != 0 { 'r' } else { '-' });
        perms.push(if bits & 2 != 0 { 'w' } else { '-' });
        perms.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    let mtime = chrono::DateTime::from_timestamp(st.st_mtime, 0).unwrap_or_default();
    let six_months = 182 * 24 * 3600;
    let age = chrono::Utc::now().timestamp() - st.st_mtime;
    let when = if (0..six_months).contains(&age) {
        mtime.format("%b %e %H:%M")
    } else {
        mtime.format("%b %e  %Y")
    };
    format!(
        "{kind}{perms} {:>3} {:<8} {:<8} {:>8} {when} {name}",
        st.st_nlink, st.st_uid, st.st_gid, st.st_size
    )
}
