//! Which file names are temporary: the names upload clients write to before
//! they rename the finished file into place (WinSCP's `.filepart`, rsync's
//! dot files, `.part`, `.tmp` …). A temp name is never imported, whichever
//! way the file arrived, so the SFTP server (completion) and the pickup
//! (admission) both ask here. This module must never touch the filesystem.

use std::path::Path;

/// Whether a file name is a temporary upload name, never imported:
/// `*.filepart`, `*.part`, `*.partial`, `*.tmp`, or starting with `.` or `~`.
pub fn is_temp_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with('~')
        || [".filepart", ".part", ".partial", ".tmp"]
            .iter()
            .any(|suffix| lower.ends_with(suffix))
}

/// [`is_temp_name`] of the last component of a relative path.
pub fn is_temp_path(rel: &Path) -> bool {
    rel.file_name()
        .map(|n| is_temp_name(&n.to_string_lossy()))
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names() {
        for t in [
            "users.csv.filepart",
            "users.csv.part",
            "x.PARTIAL",
            "a.tmp",
            ".users.csv",
            "~users.csv",
        ] {
            assert!(is_temp_name(t), "{t}");
        }
        for f in ["users.csv", "users.txt", "part", "tmp.csv", "a.tmp.csv"] {
            assert!(!is_temp_name(f), "{f}");
        }
        assert!(is_temp_path(Path::new("sub/.hidden")));
        assert!(!is_temp_path(Path::new("sub/x.csv")));
    }
}
