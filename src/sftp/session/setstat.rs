//! SETSTAT and FSETSTAT: which attribute changes the server makes and which
//! it refuses.
//!
//! Its role: set the times of a file in a writable place (clients keep a
//! file's modification time that way, rclone even after CLOSE, when the file
//! may be claimed already), ignore permissions and ownership of such a file
//! (clients send them along; the server keeps its own), and answer an error
//! for everything it does not do: any change on a directory, on `.bak/` or
//! `results/`, or of a file's size. What it must never do: answer OK for a
//! change it did not make (except the late times of a file already taken),
//! or change anything in `.bak/` or `results/`.

use std::path::Path;

use russh_sftp::protocol::{FileAttributes, StatusCode};
use russh_sftp::server::StatusReply;
use rustix::fs::{FileType, Stat};

use super::{denied, read_only};
use crate::sftp::jail;

/// What to do for a SETSTAT that is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Set these times (seconds; a `None` one is left alone).
    Times(Option<u32>, Option<u32>),
    /// Nothing to change (permissions or ownership only, or the times of a
    /// file already taken): answer OK.
    Nothing,
}

/// Judges a SETSTAT of `attrs` on `rel`, whose stat (not followed) is `st`,
/// or `None` when the name does not exist (any more).
pub fn judge(rel: &Path, st: Option<&Stat>, attrs: &FileAttributes) -> Result<Plan, StatusReply> {
    if jail::is_protected(rel) {
        return Err(read_only());
    }
    let times = attrs.atime.is_some() || attrs.mtime.is_some();
    let Some(st) = st else {
        // rclone sets the time after CLOSE: the file may be claimed already.
        // Nothing to apply it to, and not the client's failure.
        if times && attrs.size.is_none() {
            return Ok(Plan::Nothing);
        }
        return Err(StatusCode::NoSuchFile.with_message("no such file"));
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {}
        FileType::Directory => {
            return Err(denied(
                "the attributes of a directory cannot be changed on this server",
            ))
        }
        _ => {
            return Err(denied(
                "only the attributes of regular files can be changed",
            ))
        }
    }
    if attrs.size.is_some_and(|s| s != st.st_size as u64) {
        return Err(StatusCode::OpUnsupported.with_message(
            "changing a file's size with SETSTAT is not supported: upload the file again",
        ));
    }
    if times {
        Ok(Plan::Times(attrs.atime, attrs.mtime))
    } else {
        Ok(Plan::Nothing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_of(path: &Path) -> Stat {
        rustix::fs::lstat(path).unwrap()
    }

    #[test]
    fn only_times_of_writable_files_are_set() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "abc").unwrap();
        let file = stat_of(&d.path().join("f"));
        let dir = stat_of(d.path());
        let times = FileAttributes {
            atime: Some(1),
            mtime: Some(2),
            ..Default::default()
        };
        let perms = FileAttributes {
            permissions: Some(0o600),
            ..Default::default()
        };
        let f = Path::new("users.csv");
        assert_eq!(
            judge(f, Some(&file), &times).unwrap(),
            Plan::Times(Some(1), Some(2))
        );
        assert_eq!(judge(f, Some(&file), &perms).unwrap(), Plan::Nothing);
        assert_eq!(judge(f, None, &times).unwrap(), Plan::Nothing);
        assert_eq!(
            judge(f, None, &perms).unwrap_err().status_code,
            StatusCode::NoSuchFile
        );
        let size = |s| FileAttributes {
            size: Some(s),
            ..Default::default()
        };
        assert_eq!(judge(f, Some(&file), &size(3)).unwrap(), Plan::Nothing);
        assert_eq!(
            judge(f, Some(&file), &size(0)).unwrap_err().status_code,
            StatusCode::OpUnsupported
        );
        for (rel, st, attrs) in [
            ("", &dir, &times),
            ("sub", &dir, &perms),
            (".bak/x.csv", &file, &times),
            ("results/x.json", &file, &perms),
            (".bak", &dir, &times),
        ] {
            let e = judge(Path::new(rel), Some(st), attrs).unwrap_err();
            assert_eq!(e.status_code, StatusCode::PermissionDenied, "{rel}");
        }
        // Even when gone.
        let e = judge(Path::new(".bak/gone.csv"), None, &times).unwrap_err();
        assert_eq!(e.status_code, StatusCode::PermissionDenied);
    }
}
