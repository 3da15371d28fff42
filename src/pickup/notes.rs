//! The files of an inbox the pickup never takes, said once to the customer
//! (docs/behaviour.md#files-that-are-not-imported): a file in a subfolder,
//! or one left under a temp upload name, gets a note in `results/`
//! (`<name>.ignored.txt`, `/` written `_`) saying why and what to do, and a
//! log line, the first time a sweep finds it; the note is the memory, so
//! later sweeps (and restarts) stay quiet, and it goes when its file does.
//! A file removed for its age (a temp name, or an incomplete upload, past
//! `incomplete_ttl`) leaves `<stamp>_<name>.removed.txt`, pruned with the
//! other results after `retention_days`. This is the one part of the pickup
//! that writes, and only in `results/`; it must never touch a file to be
//! imported, nor decide what is imported ([`super::admit`] does).

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The directory of the tenant root the notes go to (the archive's).
const RESULTS: &str = "results";
const IGNORED: &str = ".ignored.txt";

/// Why a file found in an inbox is not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Below a subfolder: only the top folder is read.
    InSubfolder,
    /// A name upload clients write to before renaming, with no upload open
    /// on it and settled.
    TempName,
}

/// A file of an inbox that is not imported, relative to the tenant root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unread {
    pub path: String,
    pub why: Why,
    pub mtime: SystemTime,
}

/// What [`tell`] did, for the log and the tests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Told {
    /// Files noted for the first time.
    pub noted: Vec<String>,
    /// Temp-named files removed for their age.
    pub removed: Vec<String>,
}

fn flat(path: &str) -> String {
    path.replace('/', "_")
}

/// The note for `unread`'s files that have none yet; removes the temp-named
/// files older than `ttl` (their note saying so); removes the notes whose
/// file is gone. `unread` is everything a sweep of `root` found.
pub fn tell(root: &Path, tenant: &str, unread: &[Unread], ttl: Duration, now: SystemTime) -> Told {
    let results = root.join(RESULTS);
    let mut told = Told::default();
    let mut present = HashSet::new();
    for u in unread {
        let age = now.duration_since(u.mtime).unwrap_or_default();
        if u.why == Why::TempName && age >= ttl {
            match std::fs::remove_file(root.join(&u.path)) {
                Ok(()) => {
                    tracing::warn!(tenant, path = %u.path, ttl = %humantime::format_duration(ttl),
                        "removed a file left under a temp upload name for longer than incomplete_ttl");
                    removed(root, tenant, &u.path, Removed::TempName, ttl, now);
                    told.removed.push(u.path.clone());
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::error!(tenant, path = %u.path,
                    "cannot remove a temp-named file older than incomplete_ttl: {e}"),
            }
            continue;
        }
        let note = format!("{}{IGNORED}", flat(&u.path));
        present.insert(note.clone());
        if results.join(&note).exists() {
            continue;
        }
        let text = match u.why {
            Why::InSubfolder => in_subfolder(&u.path),
            Why::TempName => temp_name(&u.path, ttl),
        };
        match write_note(&results, &note, &text) {
            Ok(()) => {
                let why = match u.why {
                    Why::InSubfolder => "a file in a subfolder of the inbox is not imported",
                    Why::TempName => "a file under a temp upload name is not imported",
                };
                tracing::warn!(tenant, path = %u.path, note = %format!("{RESULTS}/{note}"), "{why}");
                told.noted.push(u.path.clone());
            }
            Err(e) => tracing::error!(tenant, path = %u.path, "cannot write {RESULTS}/{note}: {e}"),
        }
    }
    forget_gone(&results, &present);
    told
}

/// Why a file was removed for its age.
#[derive(Debug, Clone, Copy)]
pub enum Removed {
    TempName,
    /// An SFTP upload that never completed.
    Incomplete,
}

/// Writes the note of a file removed for its age: `<stamp>_<name>.removed.txt`.
pub fn removed(
    root: &Path,
    tenant: &str,
    path: &str,
    why: Removed,
    ttl: Duration,
    now: SystemTime,
) {
    let when = chrono::DateTime::<chrono::Utc>::from(now);
    let ttl = humantime::format_duration(ttl);
    let what = match why {
        Removed::TempName => format!(
            "kept a temporary upload name (.filepart, .part, .partial, .tmp, or a name starting with . or ~) for longer than {ttl}, so it was taken for an upload that never finished"
        ),
        Removed::Incomplete => format!(
            "was an upload that never completed (the connection ended before the file was closed), left for longer than {ttl}"
        ),
    };
    let text = format!(
        "{path} was removed from your inbox on {} UTC without being imported: it {what}.\n\
         Nothing in it was applied. Upload the file again under its final name (for example users.csv).\n",
        when.format("%Y-%m-%d %H:%M:%S")
    );
    let note = format!(
        "{}_{}.removed.txt",
        when.format("%Y%m%dT%H%M%SZ"),
        flat(path)
    );
    let results = root.join(RESULTS);
    if let Err(e) = write_note(&results, &note, &text) {
        tracing::error!(tenant, path, "cannot write {RESULTS}/{note}: {e}");
    }
    let _ = std::fs::remove_file(results.join(format!("{}{IGNORED}", flat(path))));
}

fn in_subfolder(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    format!(
        "{path} is not imported: userdrop reads only the files in the top folder of your inbox, never those in subfolders.\n\
         To import it, move it (or upload it again) to the top folder as {name}.\n\
         This note goes away when the file is no longer in the subfolder.\n"
    )
}

fn temp_name(path: &str, ttl: Duration) -> String {
    format!(
        "{path} is not imported: its name is a temporary upload name (.filepart, .part, .partial, .tmp, or a name starting with . or ~), the name upload programs write to before they rename the finished file, so it is taken for an upload that has not finished.\n\
         If the upload did finish, rename the file to its final name (for example users.csv) and it is imported. If it was interrupted, upload the file again.\n\
         A file left under such a name for {} is removed.\n",
        humantime::format_duration(ttl)
    )
}

/// Writes through a temp name and a rename, as the archive does.
fn write_note(results: &Path, name: &str, text: &str) -> io::Result<()> {
    std::fs::create_dir_all(results)?;
    let tmp: PathBuf = results.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, results.join(name))
}

/// Removes the `.ignored.txt` notes whose file is no longer found.
fn forget_gone(results: &Path, present: &HashSet<String>) {
    let Ok(entries) = std::fs::read_dir(results) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        if name.ends_with(IGNORED) && !present.contains(&name) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noted_once_forgotten_when_gone_removed_when_old() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let now = SystemTime::now();
        let ttl = Duration::from_secs(3600);
        std::fs::write(root.join("x.filepart"), "a").unwrap();
        std::fs::write(root.join("old.part"), "a").unwrap();
        let unread = vec![
            Unread {
                path: "sub/users.csv".into(),
                why: Why::InSubfolder,
                mtime: now,
            },
            Unread {
                path: "x.filepart".into(),
                why: Why::TempName,
                mtime: now,
            },
            Unread {
                path: "old.part".into(),
                why: Why::TempName,
                mtime: now - ttl,
            },
        ];
        let told = tell(root, "acme", &unread, ttl, now);
        assert_eq!(told.noted, ["sub/users.csv", "x.filepart"]);
        assert_eq!(told.removed, ["old.part"]);
        assert!(!root.join("old.part").exists());
        let again = tell(root, "acme", &unread[..2], ttl, now);
        assert_eq!(again, Told::default(), "once");
        tell(root, "acme", &unread[..1], ttl, now);
        let notes: Vec<String> = std::fs::read_dir(root.join(RESULTS))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            notes.contains(&"sub_users.csv.ignored.txt".to_string()),
            "{notes:?}"
        );
        assert!(
            !notes.contains(&"x.filepart.ignored.txt".to_string()),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.ends_with("_old.part.removed.txt")),
            "{notes:?}"
        );
    }
}
