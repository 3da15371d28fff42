//! Pickup path 2 (docs/behaviour.md#the-watcher): files placed in a tenant root by other means
//! than SFTP (a local copy, rsync, a shared volume). [`Watcher`] turns
//! filesystem notifications (notify: inotify on Linux) on every tenant root
//! into candidate names; [`Settler`] holds each candidate until its size and
//! mtime have been still for `settle`, then lets it go. The daemon also asks
//! the upload marks before queueing, so a file an SFTP session holds open is
//! never taken here. This module must never read or move a file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

/// A name in a tenant root that changed: (tenant, file name).
pub type Seen = (String, String);

type Roots = Arc<RwLock<HashMap<PathBuf, String>>>;

pub struct Watcher {
    inner: notify::RecommendedWatcher,
    roots: Roots,
}

impl Watcher {
    pub fn new(tx: UnboundedSender<Seen>) -> notify::Result<Watcher> {
        let roots: Roots = Arc::default();
        let map = roots.clone();
        let inner = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!("file watcher: {e}");
                    return;
                }
            };
            if matches!(ev.kind, EventKind::Remove(_) | EventKind::Access(_)) {
                return;
            }
            let roots = map.read().unwrap();
            for p in &ev.paths {
                let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
                    continue;
                };
                let (Some(tenant), Some(name)) = (roots.get(dir), name.to_str()) else {
                    continue;
                };
                let _ = tx.send((tenant.clone(), name.to_string()));
            }
        })?;
        Ok(Watcher { inner, roots })
    }

    /// Watches exactly these tenant roots (on start and on reload).
    pub fn set_roots(&mut self, wanted: &[(String, PathBuf)]) {
        let current: Vec<PathBuf> = self.roots.read().unwrap().keys().cloned().collect();
        for dir in current {
            if !wanted.iter().any(|(_, d)| *d == dir) {
                let _ = self.inner.unwatch(&dir);
                self.roots.write().unwrap().remove(&dir);
            }
        }
        for (tenant, dir) in wanted {
            if self.roots.read().unwrap().contains_key(dir) {
                continue;
            }
            match self.inner.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.roots
                        .write()
                        .unwrap()
                        .insert(dir.clone(), tenant.clone());
                }
                Err(e) => tracing::error!(tenant, root = %dir.display(),
                    "cannot watch the inbox ({e}); the scheduler still sweeps it"),
            }
        }
    }
}

/// Size and mtime: what "still" compares.
pub type Stat = (u64, SystemTime);

pub fn stat(path: &Path) -> Option<Stat> {
    let m = std::fs::symlink_metadata(path).ok()?;
    m.is_file()
        .then(|| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

#[derive(Debug)]
struct Candidate {
    stat: Stat,
    changed: Instant,
}

/// Candidates waiting to be still for `settle`. Time is tokio's.
#[derive(Debug)]
pub struct Settler {
    settle: Duration,
    candidates: HashMap<Seen, Candidate>,
}

impl Settler {
    pub fn new(settle: Duration) -> Settler {
        Settler {
            settle,
            candidates: HashMap::new(),
        }
    }

    pub fn set_settle(&mut self, settle: Duration) {
        self.settle = settle;
    }

    /// A change was seen (`stat` as of now; `None`: gone).
    pub fn note(&mut self, seen: Seen, stat: Option<Stat>, now: Instant) {
        match stat {
            None => {
                self.candidates.remove(&seen);
            }
            Some(stat) => {
                let c = self
                    .candidates
                    .entry(seen)
                    .or_insert(Candidate { stat, changed: now });
                if c.stat != stat {
                    c.stat = stat;
                    c.changed = now;
                }
            }
        }
    }

    /// When the next candidate may have settled.
    pub fn next_check(&self) -> Option<Instant> {
        self.candidates
            .values()
            .map(|c| c.changed + self.settle)
            .min()
    }

    /// Candidates still for `settle`, re-checked with `stat`; those that
    /// changed meanwhile start waiting again, those gone are dropped.
    pub fn ready(&mut self, now: Instant, stat: impl Fn(&Seen) -> Option<Stat>) -> Vec<Seen> {
        let mut out = Vec::new();
        let settle = self.settle;
        self.candidates.retain(|seen, c| {
            if c.changed + settle > now {
                return true;
            }
            match stat(seen) {
                None => false,
                Some(s) if s != c.stat => {
                    c.stat = s;
                    c.changed = now;
                    true
                }
                Some(_) => {
                    out.push(seen.clone());
                    false
                }
            }
        });
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(n: &str) -> Seen {
        ("acme".into(), n.into())
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_goes_once_it_has_been_still_for_settle() {
        let mut s = Settler::new(Duration::from_secs(5));
        let t0 = Instant::now();
        let st = (10, SystemTime::UNIX_EPOCH);
        s.note(seen("a.csv"), Some(st), t0);
        assert_eq!(s.next_check(), Some(t0 + Duration::from_secs(5)));
        assert!(s
            .ready(t0 + Duration::from_secs(4), |_| Some(st))
            .is_empty());
        assert_eq!(
            s.ready(t0 + Duration::from_secs(5), |_| Some(st)),
            vec![seen("a.csv")]
        );
        assert_eq!(s.next_check(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_still_growing_waits_again() {
        let mut s = Settler::new(Duration::from_secs(5));
        let t0 = Instant::now();
        s.note(seen("a.csv"), Some((10, SystemTime::UNIX_EPOCH)), t0);
        let t5 = t0 + Duration::from_secs(5);
        let grown = (20, SystemTime::UNIX_EPOCH);
        assert!(s.ready(t5, |_| Some(grown)).is_empty());
        assert_eq!(s.next_check(), Some(t5 + Duration::from_secs(5)));
        assert_eq!(
            s.ready(t5 + Duration::from_secs(5), |_| Some(grown)),
            vec![seen("a.csv")]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_removed_before_it_settles_is_dropped() {
        let mut s = Settler::new(Duration::from_secs(5));
        let t0 = Instant::now();
        s.note(seen("a.csv"), Some((1, SystemTime::UNIX_EPOCH)), t0);
        assert!(s.ready(t0 + Duration::from_secs(6), |_| None).is_empty());
        assert_eq!(s.next_check(), None);
    }
}
