//! Which files in the tenant roots are uploads that must not be imported:
//! being written by an SFTP session right now, or left incomplete by a
//! session that died. The sweeps and the watcher ask [`Uploads::blocks`]
//! before queueing a file; SFTP completion clears the mark.
//!
//! The marks are kept in `<data_dir>/uploads.json`, rewritten (temp file +
//! rename) on every change, so a daemon killed mid-upload finds the mark on
//! restart and treats the file as incomplete rather than importing half of
//! it. The rewrite is not fsynced: marks must survive a killed process, and
//! after a power loss the file's own bytes are just as uncertain. A mark
//! that cannot be written (a full disk) fails the upload's OPEN: an upload
//! the marks do not know of could be imported half-written after a restart.
//! Marks follow their file through renames. The open write handles
//! ([`crate::writers`]) are kept here too, in memory, under the same lock
//! as the marks. This module must never delete a file itself: it only says
//! which marks expired.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::ingest::names::is_temp_path;
use crate::writers::{Closed, FileId, Writer, Writers};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Writing,
    Incomplete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Mark {
    tenant: String,
    path: String,
    state: State,
    /// Unix seconds: when the upload started, or when it was found incomplete.
    since: u64,
    /// Open write handles (two sessions may write the same name).
    #[serde(default)]
    writers: u32,
    /// When a new upload began over an incomplete one: since when it was
    /// incomplete, to restore if the new open fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    incomplete_since: Option<u64>,
}

#[derive(Debug)]
pub struct Uploads {
    file: PathBuf,
    marks: BTreeMap<(String, String), Mark>,
    writers: Writers,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn key(tenant: &str, path: &Path) -> (String, String) {
    (tenant.to_string(), path.to_string_lossy().into_owned())
}

impl Uploads {
    /// Loads the marks; an upload that was being written when the daemon
    /// stopped is incomplete now (its session is gone).
    pub fn load(data_dir: &Path, now: SystemTime) -> Uploads {
        let file = data_dir.join("uploads.json");
        let mut marks = BTreeMap::new();
        match std::fs::read(&file) {
            Ok(bytes) => match serde_json::from_slice::<Vec<Mark>>(&bytes) {
                Ok(list) => {
                    for mut m in list {
                        if m.state == State::Writing {
                            tracing::warn!(tenant = %m.tenant, path = %m.path,
                                "upload incomplete: the daemon stopped while it was written");
                            m.state = State::Incomplete;
                            m.since = secs(now);
                            m.writers = 0;
                        }
                        marks.insert((m.tenant.clone(), m.path.clone()), m);
                    }
                }
                Err(e) => tracing::error!(file = %file.display(),
                    "cannot read the upload marks ({e}); starting without them"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::error!(file = %file.display(),
                "cannot read the upload marks ({e}); starting without them"),
        }
        let u = Uploads {
            file,
            marks,
            writers: Writers::default(),
        };
        u.store();
        u
    }

    /// The mark of this upload, made with these values if there is none.
    fn mark(
        &mut self,
        tenant: &str,
        path: &Path,
        state: State,
        now: SystemTime,
        writers: u32,
    ) -> &mut Mark {
        self.marks.entry(key(tenant, path)).or_insert_with(|| Mark {
            tenant: tenant.to_string(),
            path: path.to_string_lossy().into_owned(),
            state,
            since: secs(now),
            writers,
            incomplete_since: None,
        })
    }

    /// An upload of a final name is about to be opened. An error: the mark
    /// could not be written to disk; nothing changed, and the upload must
    /// not go ahead.
    pub fn opened(&mut self, tenant: &str, path: &Path, now: SystemTime) -> std::io::Result<()> {
        let before = self.marks.get(&key(tenant, path)).cloned();
        let m = self.mark(tenant, path, State::Writing, now, 0);
        if m.state == State::Incomplete {
            m.incomplete_since = Some(m.since);
        }
        m.state = State::Writing;
        m.writers += 1;
        let saved = self.save();
        if saved.is_err() {
            match before {
                Some(m) => self.marks.insert(key(tenant, path), m),
                None => self.marks.remove(&key(tenant, path)),
            };
        }
        saved
    }

    /// The open announced by [`Uploads::opened`] failed: the file is as it
    /// was before (absent from the marks, or incomplete since before).
    pub fn open_failed(&mut self, tenant: &str, path: &Path) {
        let k = key(tenant, path);
        let Some(m) = self.marks.get_mut(&k) else {
            return;
        };
        m.writers = m.writers.saturating_sub(1);
        if m.writers == 0 {
            match m.incomplete_since.take() {
                Some(since) => {
                    m.state = State::Incomplete;
                    m.since = since;
                }
                None => {
                    self.marks.remove(&k);
                }
            }
        }
        self.store();
    }

    /// The upload is complete: the file may be imported.
    pub fn completed(&mut self, tenant: &str, path: &Path) {
        let k = key(tenant, path);
        if let Some(m) = self.marks.get_mut(&k) {
            if m.writers > 1 {
                m.writers -= 1;
                self.store();
                return;
            }
        }
        if self.marks.remove(&k).is_some() {
            self.store();
        }
    }

    pub fn incomplete(&mut self, tenant: &str, path: &Path, now: SystemTime) {
        // Without an `opened` first (a temp name): one writer, now gone.
        let m = self.mark(tenant, path, State::Incomplete, now, 1);
        m.writers = m.writers.saturating_sub(1);
        if m.writers == 0 {
            m.state = State::Incomplete;
            m.since = secs(now);
            m.incomplete_since = None;
        }
        self.store();
    }

    /// Whether the file must not be imported now.
    pub fn blocks(&self, tenant: &str, name: &str) -> bool {
        self.marks
            .contains_key(&(tenant.to_string(), name.to_string()))
    }

    pub fn state(&self, tenant: &str, name: &str) -> Option<State> {
        self.marks
            .get(&(tenant.to_string(), name.to_string()))
            .map(|m| m.state)
    }

    /// Incomplete uploads older than `ttl`: (tenant, path).
    pub fn expired(&self, ttl: Duration, now: SystemTime) -> Vec<(String, PathBuf)> {
        let limit = secs(now).saturating_sub(ttl.as_secs());
        self.marks
            .values()
            .filter(|m| m.state == State::Incomplete && m.since <= limit)
            .map(|m| (m.tenant.clone(), PathBuf::from(&m.path)))
            .collect()
    }

    pub fn forget(&mut self, tenant: &str, path: &Path) {
        if self.marks.remove(&key(tenant, path)).is_some() {
            self.store();
        }
    }

    /// Writes the marks; a failure is logged and returned.
    fn save(&self) -> std::io::Result<()> {
        let list: Vec<&Mark> = self.marks.values().collect();
        let tmp = self.file.with_extension("json.tmp");
        let r = serde_json::to_vec_pretty(&list)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.file));
        if let Err(e) = &r {
            let _ = std::fs::remove_file(&tmp);
            tracing::error!(file = %self.file.display(), "cannot save the upload marks: {e}");
        }
        r
    }

    /// Saves after a change that must not fail the caller (the error is logged).
    fn store(&self) {
        let _ = self.save();
    }

    /// A write handle on `file` (any name) was opened.
    pub fn writer_opened(&mut self, tenant: &str, path: &Path, file: FileId) -> Writer {
        self.writers.opened(tenant, path, file)
    }

    /// A write handle is closed; `ok`: every write through it succeeded.
    /// A mark on a temp name is settled here (final names are by their
    /// Complete / Incomplete event): an upload resumed under its temp name
    /// and closed whole is no longer incomplete.
    pub fn writer_closed(&mut self, tenant: &str, w: &Writer, ok: bool) -> Closed {
        let closed = self.writers.closed(w);
        if let (true, false, Some(p)) = (ok, closed.busy, &closed.path) {
            if is_temp_path(p) {
                self.completed(tenant, p);
            }
        }
        closed
    }

    /// A rename moved `moved` from `from` to `to`, replacing `replaced`: the
    /// marks follow the file (a mark of a replaced, incomplete file goes).
    /// Whether the file is still not complete (a write handle open on it, or
    /// its mark says so).
    pub fn renamed(
        &mut self,
        tenant: &str,
        from: &Path,
        to: &Path,
        moved: FileId,
        replaced: Option<FileId>,
    ) -> bool {
        let written = self.writers.renamed(moved, to, replaced);
        let (kf, kt) = (key(tenant, from), key(tenant, to));
        let mut changed = false;
        if let Some(mut m) = self.marks.remove(&kf) {
            m.path = kt.1.clone();
            self.marks.insert(kt.clone(), m);
            changed = true;
        } else if self
            .marks
            .get(&kt)
            .is_some_and(|m| m.state == State::Incomplete)
        {
            self.marks.remove(&kt);
            changed = true;
        }
        if changed {
            self.store();
        }
        written || self.marks.contains_key(&kt)
    }

    /// Whether a write handle is open on the file: it is not complete.
    pub fn is_written(&self, file: FileId) -> bool {
        self.writers.is_open(file)
    }

    /// The file was claimed: no handle may write to it any more.
    pub fn claimed(&mut self, file: FileId) {
        self.writers.revoke(file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_blocks_its_file_until_complete() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let mut u = Uploads::load(dir.path(), now);
        let p = Path::new("users.csv");
        assert!(!u.blocks("acme", "users.csv"));
        u.opened("acme", p, now).unwrap();
        assert!(u.blocks("acme", "users.csv"));
        assert!(!u.blocks("beta", "users.csv"));
        u.completed("acme", p);
        assert!(!u.blocks("acme", "users.csv"));
    }

    #[test]
    fn a_daemon_killed_mid_upload_finds_the_file_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let mut u = Uploads::load(dir.path(), now);
        u.opened("acme", Path::new("users.csv"), now).unwrap();
        drop(u);
        let u = Uploads::load(dir.path(), now);
        assert_eq!(u.state("acme", "users.csv"), Some(State::Incomplete));
        assert!(u.expired(Duration::from_secs(60), now).is_empty());
        let later = now + Duration::from_secs(61);
        assert_eq!(
            u.expired(Duration::from_secs(60), later),
            vec![("acme".to_string(), PathBuf::from("users.csv"))]
        );
    }

    #[test]
    fn a_resumed_upload_that_completes_clears_the_mark() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let mut u = Uploads::load(dir.path(), now);
        let p = Path::new("users.csv");
        u.opened("acme", p, now).unwrap();
        u.incomplete("acme", p, now);
        assert_eq!(u.state("acme", "users.csv"), Some(State::Incomplete));
        u.opened("acme", p, now).unwrap();
        assert_eq!(u.state("acme", "users.csv"), Some(State::Writing));
        u.completed("acme", p);
        assert!(!u.blocks("acme", "users.csv"));
        let u = Uploads::load(dir.path(), now);
        assert!(!u.blocks("acme", "users.csv"));
    }

    #[test]
    fn a_failed_open_leaves_the_marks_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let mut u = Uploads::load(dir.path(), now);
        let p = Path::new("users.csv");
        u.opened("acme", p, now).unwrap();
        u.open_failed("acme", p);
        assert!(!u.blocks("acme", "users.csv"));
        u.opened("acme", p, now).unwrap();
        u.incomplete("acme", p, now);
        let later = now + Duration::from_secs(100);
        u.opened("acme", p, later).unwrap();
        u.open_failed("acme", p);
        assert_eq!(u.state("acme", "users.csv"), Some(State::Incomplete));
        assert_eq!(
            u.expired(Duration::from_secs(60), later).len(),
            1,
            "incomplete since the first time, not since the failed open"
        );
    }

    #[test]
    fn two_writers_of_one_name_both_must_finish() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let mut u = Uploads::load(dir.path(), now);
        let p = Path::new("users.csv");
        u.opened("acme", p, now).unwrap();
        u.opened("acme", p, now).unwrap();
        u.completed("acme", p);
        assert!(u.blocks("acme", "users.csv"));
        u.completed("acme", p);
        assert!(!u.blocks("acme", "users.csv"));
    }
}
