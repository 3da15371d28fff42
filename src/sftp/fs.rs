//! Filesystem access beneath a tenant root, never following a symlink.
//!
//! Every path is opened with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)` relative to a directory fd of the root, so the
//! kernel itself refuses `..` escapes and symlinks in any component: there is
//! no "check, then open" race. Operations on a name (unlink, rename, mkdir,
//! stat without following) open the parent that way and act on the last
//! component relative to it. All functions block: call them from
//! `spawn_blocking`.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags, ResolveFlags, Stat, Timespec, Timestamps};

fn resolve() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

fn errno(e: rustix::io::Errno) -> io::Error {
    io::Error::from(e)
}

/// Whether an error means "a symlink or an escape was refused".
pub fn is_refused_link(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == rustix::io::Errno::LOOP.raw_os_error()
            || code == rustix::io::Errno::XDEV.raw_os_error()
    )
}

/// A tenant root: an `O_PATH` directory fd every access is relative to.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    path: PathBuf,
}

/// One directory entry, not followed.
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: String,
    pub stat: Stat,
}

/// An open directory read a batch at a time, in the order the kernel
/// returns entries (not sorted). Holds one fd and `getdents`'s bounded
/// buffer, never the whole listing.
pub struct DirReader {
    dir: rustix::fs::Dir,
    done: bool,
}

impl std::fmt::Debug for DirReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirReader")
            .field("done", &self.done)
            .finish()
    }
}

impl DirReader {
    /// The next name (without `.` and `..`), or `None` at the end.
    fn next_name(&mut self) -> io::Result<Option<std::ffi::CString>> {
        while !self.done {
            match self.dir.next() {
                None => self.done = true,
                Some(Err(e)) => {
                    self.done = true;
                    return Err(errno(e));
                }
                Some(Ok(entry)) => {
                    let name = entry.file_name();
                    if name.to_bytes() != b"." && name.to_bytes() != b".." {
                        return Ok(Some(name.to_owned()));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Up to `max` entries, not followed; empty at the end. An entry that
    /// vanishes between the listing and its stat is left out.
    pub fn next_batch(&mut self, max: usize) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::with_capacity(max.min(256));
        while out.len() < max {
            let Some(name) = self.next_name()? else { break };
            let fd = self.dir.fd().map_err(errno)?;
            if let Ok(stat) = rustix::fs::statat(fd, name.as_c_str(), AtFlags::SYMLINK_NOFOLLOW) {
                out.push(DirEntry {
                    name: String::from_utf8_lossy(name.to_bytes()).into_owned(),
                    stat,
                });
            }
        }
        Ok(out)
    }
}

fn dot(rel: &Path) -> &Path {
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let dir = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        Ok(Root {
            dir,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_raw(&self, rel: &Path, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        rustix::fs::openat2(
            &self.dir,
            dot(rel),
            flags | OFlags::CLOEXEC,
            mode,
            resolve(),
        )
        .map_err(errno)
    }

    /// The parent directory (opened beneath the root) and the last name.
    fn parent(&self, rel: &Path) -> io::Result<(OwnedFd, OsString)> {
        let name = rel
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::PermissionDenied, "the root itself"))?
            .to_os_string();
        let parent = rel.parent().unwrap_or(Path::new(""));
        let fd = self.open_raw(parent, OFlags::PATH | OFlags::DIRECTORY, Mode::empty())?;
        Ok((fd, name))
    }

    /// Opens a regular file. `flags` carries the access mode and
    /// CREAT/EXCL/TRUNC/APPEND; anything but a regular file is refused.
    pub fn open_file(&self, rel: &Path, flags: OFlags, mode: u32) -> io::Result<File> {
        if rel.as_os_str().is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        // openat2 refuses a mode without O_CREAT.
        let mode = if flags.contains(OFlags::CREATE) {
            Mode::from_raw_mode(mode)
        } else {
            Mode::empty()
        };
        // NONBLOCK: opening a FIFO planted in the root must not hang.
        let fd = self.open_raw(rel, flags | OFlags::NOCTTY | OFlags::NONBLOCK, mode)?;
        let st = rustix::fs::fstat(&fd).map_err(errno)?;
        let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
        if kind == rustix::fs::FileType::Directory {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        if kind != rustix::fs::FileType::RegularFile {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "not a regular file",
            ));
        }
        // Back to blocking I/O for the regular file.
        let fl = rustix::fs::fcntl_getfl(&fd).map_err(errno)?;
        rustix::fs::fcntl_setfl(&fd, fl - OFlags::NONBLOCK).map_err(errno)?;
        Ok(File::from(fd))
    }

    /// Stat following nothing: a symlink anywhere in the path is refused.
    pub fn stat(&self, rel: &Path) -> io::Result<Stat> {
        let fd = self.open_raw(rel, OFlags::PATH, Mode::empty())?;
        rustix::fs::fstat(&fd).map_err(errno)
    }

    /// Stat of the name itself (a symlink shows as a symlink).
    pub fn lstat(&self, rel: &Path) -> io::Result<Stat> {
        if rel.as_os_str().is_empty() {
            return rustix::fs::fstat(&self.dir).map_err(errno);
        }
        let (dir, name) = self.parent(rel)?;
        rustix::fs::statat(&dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW).map_err(errno)
    }

    /// Opens a directory for reading its entries in batches
    /// ([`DirReader::next_batch`]): memory stays bounded whatever its size.
    pub fn open_dir(&self, rel: &Path) -> io::Result<DirReader> {
        let fd = self.open_raw(
            rel,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW,
            Mode::empty(),
        )?;
        Ok(DirReader {
            dir: rustix::fs::Dir::new(fd).map_err(errno)?,
            done: false,
        })
    }

    /// Every entry of a directory (without `.` and `..`), not followed,
    /// sorted by name. Holds them all: for small directories and tests;
    /// the SFTP server lists with [`Root::open_dir`].
    pub fn read_dir(&self, rel: &Path) -> io::Result<Vec<DirEntry>> {
        let mut reader = self.open_dir(rel)?;
        let mut out = Vec::new();
        loop {
            let batch = reader.next_batch(1024)?;
            if batch.is_empty() {
                break;
            }
            out.extend(batch);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// How many entries (without `.` and `..`) a directory holds, counting
    /// no further than `stop`.
    pub fn count_entries(&self, rel: &Path, stop: usize) -> io::Result<usize> {
        let mut reader = self.open_dir(rel)?;
        let mut n = 0;
        while n < stop {
            match reader.next_name()? {
                Some(_) => n += 1,
                None => break,
            }
        }
        Ok(n)
    }

    pub fn mkdir(&self, rel: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        rustix::fs::mkdirat(&dir, name.as_os_str(), Mode::from_raw_mode(0o750)).map_err(errno)
    }

    pub fn rmdir(&self, rel: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        rustix::fs::unlinkat(&dir, name.as_os_str(), AtFlags::REMOVEDIR).map_err(errno)
    }

    pub fn remove(&self, rel: &Path) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        rustix::fs::unlinkat(&dir, name.as_os_str(), AtFlags::empty()).map_err(errno)
    }

    /// Renames, replacing an existing target unless `no_replace`.
    pub fn rename(&self, from: &Path, to: &Path, no_replace: bool) -> io::Result<()> {
        let (fdir, fname) = self.parent(from)?;
        let (tdir, tname) = self.parent(to)?;
        let flags = if no_replace {
            RenameFlags::NOREPLACE
        } else {
            RenameFlags::empty()
        };
        rustix::fs::renameat_with(&fdir, fname.as_os_str(), &tdir, tname.as_os_str(), flags)
            .map_err(errno)
    }

    /// Sets access and modification times (seconds) of a name, not followed.
    pub fn set_times(&self, rel: &Path, atime: Option<u32>, mtime: Option<u32>) -> io::Result<()> {
        let times = timestamps(atime, mtime);
        if rel.as_os_str().is_empty() {
            return Ok(());
        }
        let (dir, name) = self.parent(rel)?;
        rustix::fs::utimensat(&dir, name.as_os_str(), &times, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(errno)
    }

    pub fn statvfs(&self) -> io::Result<rustix::fs::StatVfs> {
        rustix::fs::fstatvfs(&self.dir).map_err(errno)
    }
}

/// Times for `utimensat`/`futimens`; a missing one is left alone.
pub fn timestamps(atime: Option<u32>, mtime: Option<u32>) -> Timestamps {
    let ts = |t: Option<u32>| match t {
        Some(s) => Timespec {
            tv_sec: s as _,
            tv_nsec: 0,
        },
        None => Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT as _,
        },
    };
    Timestamps {
        last_access: ts(atime),
        last_modification: ts(mtime),
    }
}

/// Creates a tenant root with its `.bak/` and `results/` when missing.
pub fn ensure_tenant_root(root: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true).mode(0o750);
    b.create(root)?;
    for d in super::jail::PROTECTED_DIRS {
        b.create(root.join(d))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, Root) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tenants/acme");
        ensure_tenant_root(&root).unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret").unwrap();
        std::fs::create_dir_all(dir.path().join("tenants/other")).unwrap();
        std::fs::write(dir.path().join("tenants/other/users.csv"), "x").unwrap();
        std::fs::write(root.join("users.csv"), "a,b\n").unwrap();
        symlink(dir.path().join("secret.txt"), root.join("link.txt")).unwrap();
        symlink(dir.path(), root.join("linkdir")).unwrap();
        symlink("users.csv", root.join("inner-link")).unwrap();
        let r = Root::open(&root).unwrap();
        (dir, r)
    }

    fn ro() -> OFlags {
        OFlags::RDONLY
    }

    #[test]
    fn symlinks_are_never_followed() {
        let (_d, r) = setup();
        assert!(r.open_file(Path::new("users.csv"), ro(), 0).is_ok());
        for p in ["link.txt", "linkdir/secret.txt", "inner-link"] {
            let e = r.open_file(Path::new(p), ro(), 0).unwrap_err();
            assert!(is_refused_link(&e), "{p}: {e}");
            assert!(r.stat(Path::new(p)).is_err(), "{p}");
        }
        // Writing through a link is refused too.
        let e = r
            .open_file(Path::new("link.txt"), OFlags::WRONLY | OFlags::TRUNC, 0o640)
            .unwrap_err();
        assert!(is_refused_link(&e), "{e}");
        assert_eq!(
            std::fs::read_to_string(r.path().join("../../secret.txt")).unwrap(),
            "secret"
        );
        // lstat shows the link itself; readdir lists it.
        let st = r.lstat(Path::new("link.txt")).unwrap();
        assert_eq!(
            rustix::fs::FileType::from_raw_mode(st.st_mode),
            rustix::fs::FileType::Symlink
        );
        let names: Vec<_> = r
            .read_dir(Path::new(""))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert!(names.contains(&"link.txt".to_string()));
        assert!(r.read_dir(Path::new("linkdir")).is_err());
        assert!(r.mkdir(Path::new("linkdir/x")).is_err());
        assert!(r.remove(Path::new("linkdir/secret.txt")).is_err());
        assert!(r
            .rename(
                Path::new("users.csv"),
                Path::new("linkdir/stolen.csv"),
                false
            )
            .is_err());
    }

    #[test]
    fn dot_dot_cannot_escape_even_unnormalised() {
        let (_d, r) = setup();
        let e = r
            .open_file(Path::new("../other/users.csv"), ro(), 0)
            .unwrap_err();
        assert!(is_refused_link(&e), "{e}");
        assert!(r.stat(Path::new("..")).is_err());
        assert!(r.read_dir(Path::new("../..")).is_err());
    }

    #[test]
    fn ordinary_operations_work() {
        let (_d, r) = setup();
        r.mkdir(Path::new("sub")).unwrap();
        let f = r
            .open_file(
                Path::new("sub/x.csv.part"),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
                0o640,
            )
            .unwrap();
        use std::os::unix::fs::FileExt;
        f.write_at(b"hello", 3).unwrap();
        drop(f);
        r.rename(Path::new("sub/x.csv.part"), Path::new("sub/x.csv"), false)
            .unwrap();
        assert_eq!(r.stat(Path::new("sub/x.csv")).unwrap().st_size, 8);
        r.set_times(Path::new("sub/x.csv"), Some(1_000_000), Some(1_234_567))
            .unwrap();
        assert_eq!(r.lstat(Path::new("sub/x.csv")).unwrap().st_mtime, 1_234_567);
        assert!(r
            .rename(Path::new("users.csv"), Path::new("sub/x.csv"), true)
            .is_err());
        r.remove(Path::new("sub/x.csv")).unwrap();
        r.rmdir(Path::new("sub")).unwrap();
        assert!(r.open_file(Path::new(""), ro(), 0).is_err());
        assert!(r.open_file(Path::new("results"), ro(), 0).is_err());
        assert!(r.statvfs().unwrap().f_bsize > 0);
    }
}
