//! Path rules of the jail, all lexical: what an SFTP path names inside a
//! tenant root, which directories are read-only (which names are temporary
//! is [`crate::ingest::names`]'s rule, re-exported here).
//! The filesystem side (no symlink is ever followed) is in [`super::fs`].

use std::path::{Path, PathBuf};

pub use crate::ingest::names::{is_temp_name, is_temp_path};

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
