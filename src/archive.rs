//! Where a processed file and its outcome end up in the tenant root, so the
//! customer sees them over SFTP (docs/behaviour.md#bak-and-results): the original in
//! `.bak/<stamp>_<name>`, the outcome in `results/<stamp>_<stem>.summary.json`
//! and, when rows failed, `results/<stamp>_<stem>.errors.csv`; and pruning
//! both after `retention_days`. `<stamp>` is the job's UTC start time plus
//! its id, so nothing is overwritten and archiving a job twice (after a
//! crash) writes the same names again. This module must never touch the
//! store or a file outside the tenant root and the spool.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::report::failed_csv;
use crate::report::summary::JobReport;
use crate::store::jobs::{JobRow, StoredError};

pub const BAK: &str = ".bak";
pub const RESULTS: &str = "results";

/// `YYYYMMDDTHHMMSSZ-<id>` from the job's `created_at` (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn stamp(job: &JobRow) -> String {
    let compact: String = job
        .created_at
        .chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .collect();
    format!("{compact}-{}", job.id)
}

fn stem(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

/// Where the original goes, relative to the tenant root.
pub fn bak_name(job: &JobRow) -> PathBuf {
    Path::new(BAK).join(format!("{}_{}", stamp(job), job.file))
}

fn results_base(job: &JobRow) -> String {
    format!("{}_{}", stamp(job), stem(&job.file))
}

/// Writes `bytes` to `path` through a temp file and a rename: a reader never
/// sees half a summary.
fn write_atomic(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    write(&mut f)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes the results, then moves the spool file to `.bak/`. Returns the
/// original's new path. Safe to run again after a crash at any point.
pub fn archive(
    root: &Path,
    job: &JobRow,
    report: &JobReport,
    errors: &[StoredError],
) -> io::Result<PathBuf> {
    let results = root.join(RESULTS);
    let bak = root.join(BAK);
    std::fs::create_dir_all(&results)?;
    std::fs::create_dir_all(&bak)?;
    let base = results_base(job);
    write_atomic(&results.join(format!("{base}.summary.json")), |f| {
        serde_json::to_writer_pretty(&mut *f, report).map_err(io::Error::other)?;
        f.write_all(b"\n")
    })?;
    if !errors.is_empty() {
        let rows = failed_csv::group(errors);
        write_atomic(&results.join(format!("{base}.errors.csv")), |f| {
            failed_csv::write_report(&mut *f, report, &rows).map_err(io::Error::other)
        })?;
    }
    sync_dir(&results)?;
    let to = root.join(bak_name(job));
    match std::fs::rename(&job.path, &to) {
        Ok(()) => sync_dir(&bak)?,
        // Moved before a crash: the second run finds it in place.
        Err(e) if e.kind() == io::ErrorKind::NotFound && to.exists() => {}
        Err(e) => return Err(e),
    }
    Ok(to)
}

/// Removes `.bak/` and `results/` entries whose stamp is older than
/// `retention`. The stamp in the name decides, not the file's mtime (an
/// upload may carry its source's old mtime). Returns how many were removed.
pub fn prune(root: &Path, retention: Duration, now: SystemTime) -> usize {
    let Some(limit) = now.checked_sub(retention) else {
        return 0;
    };
    let limit = chrono::DateTime::<chrono::Utc>::from(limit);
    let mut removed = 0;
    for dir in [BAK, RESULTS] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(when) = name.to_str().and_then(stamp_time) else {
                continue;
            };
            if when < limit {
                match std::fs::remove_file(e.path()) {
                    Ok(()) => removed += 1,
                    Err(err) => tracing::warn!(path = %e.path().display(),
                        "retention: cannot remove: {err}"),
                }
            }
        }
    }
    removed
}

fn stamp_time(name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let s = name.get(..16)?;
    chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64, file: &str, path: &Path) -> JobRow {
        JobRow {
            id,
            tenant: "acme".into(),
            file: file.into(),
            source: "sftp".into(),
            path: path.to_string_lossy().into_owned(),
            state: crate::store::jobs::JobState::Applied,
            status: Some(crate::report::summary::Status::Ok),
            report: None,
            created_at: "2026-11-21T10:15:00Z".into(),
            finished_at: None,
            approved_at: None,
            archived_at: None,
        }
    }

    #[test]
    fn names_carry_the_stamp_and_the_job() {
        let j = job(42, "users.csv", Path::new("x"));
        assert_eq!(stamp(&j), "20261121T101500Z-42");
        assert_eq!(
            bak_name(&j),
            Path::new(".bak/20261121T101500Z-42_users.csv")
        );
        assert_eq!(results_base(&j), "20261121T101500Z-42_users");
    }

    #[test]
    fn archiving_twice_after_a_crash_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("acme");
        std::fs::create_dir_all(&root).unwrap();
        let spool = dir.path().join("7.csv");
        std::fs::write(&spool, "user_id\n").unwrap();
        let j = job(7, "users.csv", &spool);
        let report = JobReport::new("acme", "users.csv", Some(7), false);
        let a = archive(&root, &j, &report, &[]).unwrap();
        let b = archive(&root, &j, &report, &[]).unwrap();
        assert_eq!(a, b);
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "user_id\n");
        assert!(root
            .join("results/20261121T101500Z-7_users.summary.json")
            .is_file());
        assert!(!root
            .join("results/20261121T101500Z-7_users.errors.csv")
            .exists());
    }

    #[test]
    fn prune_goes_by_the_stamp_in_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join(BAK)).unwrap();
        std::fs::create_dir_all(root.join(RESULTS)).unwrap();
        std::fs::write(root.join(".bak/20200101T000000Z-1_users.csv"), "").unwrap();
        std::fs::write(
            root.join("results/20200101T000000Z-1_users.summary.json"),
            "",
        )
        .unwrap();
        std::fs::write(root.join(".bak/20261121T000000Z-2_users.csv"), "").unwrap();
        std::fs::write(root.join(".bak/notes.txt"), "").unwrap();
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-22T00:00:00Z").unwrap();
        let n = prune(root, Duration::from_secs(30 * 86400), now.into());
        assert_eq!(n, 2);
        assert!(root.join(".bak/20261121T000000Z-2_users.csv").exists());
        assert!(root.join(".bak/notes.txt").exists());
    }
}
