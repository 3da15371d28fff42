//! Which files in the tenant roots are uploads that must not be imported:
//! being written by an SFTP session right now, or left incomplete by a
//! session that died. The sweeps and the watcher ask [`Uploads::blocks`]
//! before queueing a file; SFTP completion clears the mark.
//!
//! The marks are kept in `<data_dir>/uploads.json`, rewritten (temp file +
//! rename) on every change, so a daemon killed mid-upload finds the mark on
//! restart and treats the file as incomplete rather than importing half of
//! it. The rewrite is not fsynced: marks must survive a killed process, and
//! after a power loss the file's own bytes are just as uncertain. This
//! module must never delete a file itself: it only says which marks expired.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

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
        let u = Uploads { file, marks };
        u.save();
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

    pub fn opened(&mut self, tenant: &str, path: &Path, now: SystemTime) {
        let m = self.mark(tenant, path, State::Writing, now, 0);
        if m.state == State::Incomplete {
            m.incomplete_since = Some(m.since);
        }
        m.state = State::Writing;
        m.writers += 1;
        self.save();
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
        self.save();
    }

    /// The upload is complete: the file may be imported.
    pub fn completed(&mut self, tenant: &str, path: &Path) {
        let k = key(tenant, path);
        if let Some(m) = self.marks.get_mut(&k) {
            if m.writers > 1 {
                m.writers -= 1;
                self.save();
                return;
            }
        }
        if self.marks.remove(&k).is_some() {
            self.save();
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
        self.save();
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
            self.save();
        }
    }

    fn save(&self) {
        let list: Vec<&Mark> = self.marks.values().collect();
        let tmp = self.file.with_extension("json.tmp");
        let r = serde_json::to_vec_pretty(&list)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.file));
        if let Err(e) = r {
            tracing::error!(file = %self.file.display(), "cannot save the upload marks: {e}");
        }
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
        u.opened("acme", p, now);
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
        u.opened("acme", Path::new("users.csv"), now);
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
        u.opened("acme", p, now);
        u.incomplete("acme", p, now);
        assert_eq!(u.state("acme", "users.csv"), Some(State::Incomplete));
        u.opened("acme", p, now);
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
        u.opened("acme", p, now);
        u.open_failed("acme", p);
        assert!(!u.blocks("acme", "users.csv"));
        u.opened("acme", p, now);
        u.incomplete("acme", p, now);
        let later = now + Duration::from_secs(100);
        u.opened("acme", p, later);
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
        u.opened("acme", p, now);
        u.opened("acme", p, now);
        u.completed("acme", p);
        assert!(u.blocks("acme", "users.csv"));
        u.completed("acme", p);
        assert!(!u.blocks("acme", "users.csv"));
    }
}
