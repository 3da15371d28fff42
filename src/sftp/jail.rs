//! Path rules of the jail, all lexical: what an SFTP path names inside a
//! tenant root, which names are temporary, which directories are read-only.
//! The filesystem side (no symlink is ever followed) is in [`super::fs`].

use std::path::{Path, PathBuf};

/// The read-only directories of every tenant root (docs/behaviour.md#bak-and-results).
pub const PROTECTED_DIRS: [&str; 2] = [".bak", "results"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JailError {
    #[error("path contains a NUL byte")]
    Nul,
}

/// Normalises an SFTP path to a path relative to the tenant root: absolute
/// and relative paths both start at the root, `.` and empty components
/// vanish, `..` pops a component and stops at the root. The empty path is
/// the root itself.
pub fn normalize(path: &str) -> Result<PathBuf, JailError> {
    if path.contains('\0') {
        return Err(JailError::Nul);
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Ok(parts.iter().collect())
}

/// The path as the client sees it: `/` + the relative path.
pub fn display(rel: &Path) -> String {
    let s = rel.to_string_lossy();
    if s.is_empty() {
        "/".to_string()
    } else {
        format!("/{s}")
    }
}

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

/// Whether the path is one of the read-only directories or inside one.
pub fn is_protected(rel: &Path) -> bool {
    rel.components()
        .next()
        .map(|c| PROTECTED_DIRS.iter().any(|d| c.as_os_str() == *d))
        .unwrap_or(false)
}

/// Whether the path is exactly one of the read-only directories.
pub fn is_protected_dir(rel: &Path) -> bool {
    rel.components().count() == 1 && is_protected(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> String {
        normalize(p).unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn dot_dot_never_leaves_the_root() {
        assert_eq!(n("/"), "");
        assert_eq!(n(""), "");
        assert_eq!(n("."), "");
        assert_eq!(n(".."), "");
        assert_eq!(n("/../../etc/passwd"), "etc/passwd");
        assert_eq!(n("a/../../b"), "b");
        assert_eq!(n("a/./b/../c"), "a/c");
        assert_eq!(n("//a///b//"), "a/b");
        assert_eq!(n("users.csv"), "users.csv");
        assert_eq!(n("/users.csv"), "users.csv");
        assert_eq!(n("../other-tenant/users.csv"), "other-tenant/users.csv");
        assert_eq!(n("..."), "...");
        assert!(normalize("a\0b").is_err());
    }

    #[test]
    fn display_is_absolute() {
        assert_eq!(display(Path::new("")), "/");
        assert_eq!(display(Path::new("a/b.csv")), "/a/b.csv");
    }

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

    #[test]
    fn protected_dirs() {
        assert!(is_protected(Path::new(".bak")));
        assert!(is_protected(Path::new(".bak/x.csv")));
        assert!(is_protected(Path::new("results/a/b")));
        assert!(!is_protected(Path::new("resultsx")));
        assert!(!is_protected(Path::new("sub/results")));
        assert!(!is_protected(Path::new("")));
        assert!(is_protected_dir(Path::new("results")));
        assert!(!is_protected_dir(Path::new("results/x")));
        // Normalisation first: "/x/../.bak/y" is inside .bak.
        assert!(is_protected(&normalize("/x/../.bak/y").unwrap()));
    }
}
