//! The SFTP protocol handler of one session, over one tenant root: maps
//! every request onto [`super::fs::Root`] after [`super::jail`]
//! normalisation, reports completed and abandoned uploads.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh_sftp::extensions::{LimitsExtension, Statvfs};
use russh_sftp::protocol::{
    Attrs, Data, ExtendedReply, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status,
    StatusCode, Version,
};
use russh_sftp::server::StatusReply;
use rustix::fs::OFlags;

use super::fs::{is_refused_link, Root};
use super::jail;
use super::{Sink, UploadEvent};
use crate::writers::Writer;

mod writes;

mod dirs;
pub mod handles;
mod setstat;

use dirs::DirHandle;
use handles::{HandleScope, HandleTable};

/// Largest SFTP packet a client may send, and the limits advertised.
pub const MAX_PACKET_LEN: u32 = 256 * 1024;
pub const MAX_READ_LEN: u32 = 255 * 1024;
pub const MAX_WRITE_LEN: u32 = 255 * 1024;
/// Per SSH connection, all its channels together (see [`handles`]).
pub const MAX_OPEN_HANDLES: usize = handles::MAX_HANDLES_PER_SESSION;

/// What a session knows about its tenant.
#[derive(Debug, Clone)]
pub struct TenantInfo {
    pub name: String,
    pub root: PathBuf,
    pub max_file_size: u64,
}

enum OpenHandle {
    File {
        file: Arc<std::fs::File>,
        rel: PathBuf,
        write: bool,
        append: bool,
        /// A write failed (size limit, disk full): the file is never complete.
        failed: bool,
        /// Refused past `max_file_size`: the partial file was removed, and
        /// no write through this handle succeeds any more.
        removed: bool,
        /// The write handle's ticket: revoked once its file is claimed.
        writer: Option<Writer>,
        /// Writes handed to the blocking pool, not yet awaited (offset,
        /// end, task): the reply goes out while the disk write runs.
        pending: VecDeque<Pending>,
    },
    Dir(DirHandle),
}

pub struct SftpSession {
    tenant: Arc<TenantInfo>,
    account: String,
    root: Arc<Root>,
    events: Sink,
    handles: HandleTable<OpenHandle>,
    /// Dropped with the session: tells the SSH side to send EOF + CLOSE.
    _ended: Option<tokio::sync::oneshot::Sender<()>>,
}

type Reply<T> = Result<T, StatusReply>;
type Pending = (u64, u64, tokio::task::JoinHandle<io::Result<()>>);

/// Writes of one handle in flight at most (× 255 KiB: bounded memory).
const MAX_PENDING_WRITES: usize = 8;

fn denied(msg: &str) -> StatusReply {
    StatusCode::PermissionDenied.with_message(msg)
}

fn read_only() -> StatusReply {
    denied(".bak/ and results/ are read-only")
}

fn io_reply(e: io::Error) -> StatusReply {
    if is_refused_link(&e) {
        return denied("symbolic links are not followed");
    }
    match e.kind() {
        io::ErrorKind::NotFound => StatusCode::NoSuchFile.with_message("no such file"),
        io::ErrorKind::PermissionDenied => denied(&e.to_string()),
        io::ErrorKind::AlreadyExists => StatusCode::Failure.with_message("file already exists"),
        _ => StatusCode::Failure.with_message(e.to_string()),
    }
}

fn ok(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".to_string(),
        language_tag: "en-US".to_string(),
    }
}

fn attrs_of(st: &rustix::fs::Stat) -> FileAttributes {
    FileAttributes {
        size: Some(st.st_size as u64),
        uid: Some(st.st_uid),
        gid: Some(st.st_gid),
        permissions: Some(st.st_mode),
        atime: Some(st.st_atime as u32),
        mtime: Some(st.st_mtime as u32),
        ..Default::default()
    }
}

/// Reads an SSH string from the front of `data`.
fn take_string(data: &mut &[u8]) -> Option<String> {
    if data.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes(data[..4].try_into().ok()?) as usize;
    let rest = &data[4..];
    if rest.len() < len {
        return None;
    }
    let s = String::from_utf8_lossy(&rest[..len]).into_owned();
    *data = &rest[len..];
    Some(s)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e.to_string())))
}

impl SftpSession {
    pub fn new(
        tenant: Arc<TenantInfo>,
        account: String,
        root: Root,
        events: Sink,
        ended: tokio::sync::oneshot::Sender<()>,
    ) -> SftpSession {
        SftpSession {
            tenant,
            handles: HandleTable::new(HandleScope::standalone(&account)),
            account,
            root: Arc::new(root),
            events,
            _ended: Some(ended),
        }
    }

    /// Counts this session's handles in `scope` (its connection and its
    /// account, under the server's limits) instead of a scope of its own.
    /// Call before the first request.
    pub fn with_handle_scope(mut self, scope: HandleScope) -> SftpSession {
        self.handles = HandleTable::new(scope);
        self
    }

    fn path(&self, p: &str) -> Reply<PathBuf> {
        jail::normalize(p).map_err(|e| StatusCode::BadMessage.with_message(e.to_string()))
    }

    fn insert_handle(&mut self, h: OpenHandle) -> Reply<String> {
        self.handles.insert(h).map_err(|e| {
            tracing::warn!(tenant = %self.tenant.name, account = %self.account,
                "refused a handle: {e}");
            StatusCode::Failure.with_message(e.to_string())
        })
    }

    fn file(&self, handle: &str) -> Reply<(Arc<std::fs::File>, bool, bool)> {
        match self.handles.get(handle) {
            Some(OpenHandle::File {
                file,
                write,
                append,
                ..
            }) => Ok((file.clone(), *write, *append)),
            Some(OpenHandle::Dir(_)) => {
                Err(StatusCode::Failure.with_message("handle is a directory"))
            }
            None => Err(StatusCode::Failure.with_message("invalid handle")),
        }
    }

    fn complete(&self, rel: &Path) {
        tracing::info!(tenant = %self.tenant.name, account = %self.account,
            path = %rel.display(), "upload complete");
        self.events.event(UploadEvent::Complete {
            tenant: self.tenant.name.clone(),
            path: rel.to_path_buf(),
        });
    }

    /// Awaits the handle's writes in flight, oldest first, leaving at most
    /// `keep`. A failed one marks the handle failed and is returned.
    async fn settle(&mut self, handle: &str, keep: usize) -> Reply<()> {
        loop {
            let task = match self.handles.get_mut(handle) {
                Some(OpenHandle::File { pending, .. }) if pending.len() > keep => {
                    pending.pop_front().map(|(_, _, t)| t)
                }
                _ => None,
            };
            let Some(task) = task else { return Ok(()) };
            let r = task
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
            if let Err(e) = r {
                self.write_failed(handle, &writes::write_error(&e));
                return Err(writes::write_reply(e));
            }
        }
    }

    /// Marks a write handle as failed, logging the first failure only.
    fn write_failed(&mut self, handle: &str, what: &str) {
        if let Some(OpenHandle::File { failed, rel, .. }) = self.handles.get_mut(handle) {
            if !*failed {
                *failed = true;
                tracing::warn!(tenant = %self.tenant.name, account = %self.account,
                    path = %rel.display(), "refused {what}");
            }
        }
    }

    async fn do_rename(&mut self, id: u32, old: String, new: String) -> Reply<Status> {
        let from = self.path(&old)?;
        let to = self.path(&new)?;
        if jail::is_protected(&from) || jail::is_protected(&to) {
            tracing::info!(tenant = %self.tenant.name, account = %self.account,
                from = %from.display(), to = %to.display(), "refused rename in a read-only directory");
            return Err(read_only());
        }
        let root = self.root.clone();
        let (f, t) = (from.clone(), to.clone());
        let (replaced, st) = blocking(move || {
            let replaced = root.lstat(&t).ok();
            root.rename(&f, &t, false)?;
            Ok((replaced, root.lstat(&t)?))
        })
        .await
        .map_err(io_reply)?;
        let regular =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
        // Not complete while a write handle is open on the file, whatever
        // name it was opened under, nor while its mark says incomplete.
        let busy = regular && self.renamed_file(&from, &to, &st, replaced.as_ref());
        if regular && jail::is_temp_path(&from) && !jail::is_temp_path(&to) && !busy {
            self.complete(&to);
        } else if busy {
            tracing::info!(tenant = %self.tenant.name, account = %self.account,
                from = %from.display(), to = %to.display(),
                "renamed; not complete while a write handle is open on it or it is incomplete");
        } else {
            tracing::debug!(from = %from.display(), to = %to.display(), "renamed");
        }
        Ok(ok(id))
    }
}

impl Drop for SftpSession {
    fn drop(&mut self) {
        for (_, h) in self.handles.take_all() {
            if let OpenHandle::File {
                rel,
                write: true,
                removed,
                writer: Some(w),
                ..
            } = h
            {
                self.closed_writer(rel, w, writes::Ending::SessionEnded, removed);
            }
        }
    }
}

impl russh_sftp::server::Handler for SftpSession {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported.with_message("operation not supported")
    }

    async fn init(
        &mut self,
        _version: u32,
        _extensions: HashMap<String, String>,
    ) -> Reply<Version> {
        let mut v = Version::new();
        for (name, ver) in [
            ("posix-rename@openssh.com", "1"),
            ("statvfs@openssh.com", "2"),
            ("fsync@openssh.com", "1"),
            ("limits@openssh.com", "1"),
        ] {
            v.extensions.insert(name.to_string(), ver.to_string());
        }
        Ok(v)
    }

    async fn realpath(&mut self, id: u32, path: String) -> Reply<Name> {
        let rel = self.path(&path)?;
        Ok(Name {
            id,
            files: vec![File::dummy(jail::display(&rel))],
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Reply<Attrs> {
        let rel = self.path(&path)?;
        let root = self.root.clone();
        let st = blocking(move || root.stat(&rel)).await.map_err(io_reply)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&st),
        })
    }

    async fn lstat(&mut self, id: u32, path: String) -> Reply<Attrs> {
        let rel = self.path(&path)?;
        let root = self.root.clone();
        let st = blocking(move || root.lstat(&rel)).await.map_err(io_reply)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&st),
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Reply<Attrs> {
        self.settle(&handle, 0).await?;
        let (file, _, _) = self.file(&handle)?;
        let st = blocking(move || rustix::fs::fstat(&*file).map_err(io::Error::from))
            .await
            .map_err(io_reply)?;
        Ok(Attrs {
            id,
            attrs: attrs_of(&st),
        })
    }

    async fn opendir(&mut self, id: u32, path: String) -> Reply<Handle> {
        let rel = self.path(&path)?;
        let dir = DirHandle::open(self.root.clone(), rel)
            .await
            .map_err(io_reply)?;
        let handle = self.insert_handle(OpenHandle::Dir(dir))?;
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Reply<Name> {
        let Some(OpenHandle::Dir(dir)) = self.handles.get(&handle) else {
            return Err(StatusCode::Failure.with_message("invalid handle"));
        };
        let files = dir.clone().next_files().await.map_err(io_reply)?;
        if files.is_empty() {
            return Err(StatusCode::Eof.into());
        }
        Ok(Name { id, files })
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> Reply<Handle> {
        let rel = self.path(&filename)?;
        let write = pflags.intersects(
            OpenFlags::WRITE | OpenFlags::APPEND | OpenFlags::CREATE | OpenFlags::TRUNCATE,
        );
        let read = pflags.contains(OpenFlags::READ) || !write;
        if write && jail::is_protected(&rel) {
            tracing::info!(tenant = %self.tenant.name, account = %self.account,
                path = %rel.display(), "refused write in a read-only directory");
            return Err(read_only());
        }
        let max_entries = self.handles.scope().limits().inbox_entries;
        dirs::check_room(&self.root, &rel, pflags, max_entries).await?;
        let mut flags = match (read, write) {
            (true, true) => OFlags::RDWR,
            (false, true) => OFlags::WRONLY,
            _ => OFlags::RDONLY,
        };
        let append = pflags.contains(OpenFlags::APPEND);
        if append {
            flags |= OFlags::APPEND;
        }
        if pflags.contains(OpenFlags::CREATE) {
            flags |= OFlags::CREATE;
            if pflags.contains(OpenFlags::EXCLUDE) {
                flags |= OFlags::EXCL;
            }
        }
        if pflags.contains(OpenFlags::TRUNCATE) {
            flags |= OFlags::TRUNC;
        }
        // Reported before the file is opened (a truncating open already
        // changes it), and taken back if no write handle results.
        let tracked = write && !jail::is_temp_path(&rel);
        if tracked {
            if let Err(e) = self.events.opened(&self.tenant.name, &rel) {
                return Err(self.unrecorded(&rel, &e));
            }
        }
        let root = self.root.clone();
        let r = rel.clone();
        let opened = blocking(move || root.open_file(&r, flags, 0o640)).await;
        let opened = match opened {
            Ok(file) if write => self.register_writer(&rel, file).await,
            Ok(file) => Ok((file, None)),
            Err(e) => Err(io_reply(e)),
        }
        .and_then(|(file, writer)| {
            let w = writer.clone();
            self.insert_handle(OpenHandle::File {
                file: Arc::new(file),
                rel: rel.clone(),
                write,
                append,
                failed: false,
                removed: false,
                writer,
                pending: VecDeque::new(),
            })
            .inspect_err(|_| self.unregister_writer(w, &rel))
        });
        match opened {
            Ok(handle) => {
                if write {
                    tracing::debug!(tenant = %self.tenant.name, path = %rel.display(), "open for write");
                }
                Ok(Handle { id, handle })
            }
            Err(e) => {
                if tracked {
                    self.events.open_failed(&self.tenant.name, &rel);
                }
                Err(e)
            }
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Reply<Data> {
        self.settle(&handle, 0).await?;
        let (file, _, _) = self.file(&handle)?;
        let len = len.min(MAX_READ_LEN) as usize;
        let data = blocking(move || {
            let mut buf = vec![0u8; len];
            let mut got = 0;
            while got < len {
                match file.read_at(&mut buf[got..], offset + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buf.truncate(got);
            Ok(buf)
        })
        .await
        .map_err(io_reply)?;
        if data.is_empty() && len > 0 {
            return Err(StatusCode::Eof.into());
        }
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Reply<Status> {
        let (file, write, append) = self.file(&handle)?;
        if !write {
            return Err(denied("handle not open for writing"));
        }
        // One map lookup and one atomic load: no system call.
        self.writable(&handle)?;
        let max = self.tenant.max_file_size;
        if !append && offset.saturating_add(data.len() as u64) > max {
            return Err(self.refuse_oversize(&handle, "a write").await);
        }
        if !append {
            // Pipelined: the disk write runs on the blocking pool while the
            // reply goes out; an overlapping write waits for those before
            // it, and errors surface at the next write or at CLOSE.
            let end = offset + data.len() as u64;
            let overlaps = match self.handles.get(&handle) {
                Some(OpenHandle::File { pending, .. }) => {
                    pending.iter().any(|(o, e, _)| offset < *e && *o < end)
                }
                _ => false,
            };
            let keep = if overlaps { 0 } else { MAX_PENDING_WRITES - 1 };
            self.settle(&handle, keep).await?;
            let task = tokio::task::spawn_blocking(move || file.write_all_at(&data, offset));
            if let Some(OpenHandle::File { pending, .. }) = self.handles.get_mut(&handle) {
                pending.push_back((offset, end, task));
            }
            return Ok(ok(id));
        }
        self.settle(&handle, 0).await?;
        let r = blocking(move || {
            if append {
                let size = file.metadata()?.len();
                if size.saturating_add(data.len() as u64) > max {
                    return Ok(false);
                }
                // O_APPEND: the kernel writes at the end whatever the offset.
                file.write_all_at(&data, size)?;
            } else {
                file.write_all_at(&data, offset)?;
            }
            Ok(true)
        })
        .await;
        match r {
            Ok(true) => Ok(ok(id)),
            Ok(false) => Err(self.refuse_oversize(&handle, "an append").await),
            Err(e) => {
                self.write_failed(&handle, &writes::write_error(&e));
                Err(writes::write_reply(e))
            }
        }
    }

    async fn close(&mut self, id: u32, handle: String) -> Reply<Status> {
        let settled = self.settle(&handle, 0).await;
        match self.handles.remove(&handle) {
            Some(OpenHandle::File {
                rel,
                write: true,
                failed,
                removed,
                writer: Some(w),
                ..
            }) => {
                let ending = if failed {
                    writes::Ending::WriteFailed
                } else {
                    writes::Ending::Closed
                };
                self.closed_writer(rel, w, ending, removed);
                match (failed, settled) {
                    (true, Err(e)) => Err(e),
                    _ => Ok(ok(id)),
                }
            }
            Some(_) => Ok(ok(id)),
            None => Err(StatusCode::Failure.with_message("invalid handle")),
        }
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> Reply<Status> {
        let rel = self.path(&path)?;
        let root = self.root.clone();
        let r = rel.clone();
        let st = match blocking(move || root.lstat(&r)).await {
            Ok(st) => Some(st),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_reply(e)),
        };
        let plan = setstat::judge(&rel, st.as_ref(), &attrs).inspect_err(|_| {
            tracing::info!(tenant = %self.tenant.name, account = %self.account,
                path = %rel.display(), "refused SETSTAT");
        })?;
        let setstat::Plan::Times(atime, mtime) = plan else {
            return Ok(ok(id));
        };
        let root = self.root.clone();
        match blocking(move || root.set_times(&rel, atime, mtime)).await {
            // Claimed between the stat and now: as when already gone.
            Ok(()) => Ok(ok(id)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(ok(id)),
            Err(e) => Err(io_reply(e)),
        }
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> Reply<Status> {
        self.settle(&handle, 0).await?;
        let (file, _, _) = self.file(&handle)?;
        let Some(OpenHandle::File { rel, .. }) = self.handles.get(&handle) else {
            return Err(StatusCode::Failure.with_message("invalid handle"));
        };
        let rel = rel.clone();
        let f = file.clone();
        let st = blocking(move || rustix::fs::fstat(&*f).map_err(io::Error::from))
            .await
            .map_err(io_reply)?;
        let plan = setstat::judge(&rel, Some(&st), &attrs).inspect_err(|_| {
            tracing::info!(tenant = %self.tenant.name, account = %self.account,
                path = %rel.display(), "refused FSETSTAT");
        })?;
        let setstat::Plan::Times(atime, mtime) = plan else {
            return Ok(ok(id));
        };
        let times = super::fs::timestamps(atime, mtime);
        blocking(move || rustix::fs::futimens(&*file, &times).map_err(io::Error::from))
            .await
            .map_err(io_reply)?;
        Ok(ok(id))
    }

    async fn remove(&mut self, id: u32, filename: String) -> Reply<Status> {
        let rel = self.path(&filename)?;
        if jail::is_protected_dir(&rel) {
            return Err(read_only());
        }
        let root = self.root.clone();
        let r = rel.clone();
        blocking(move || root.remove(&r)).await.map_err(io_reply)?;
        tracing::info!(tenant = %self.tenant.name, account = %self.account,
            path = %rel.display(), "removed");
        Ok(ok(id))
    }

    async fn mkdir(&mut self, id: u32, path: String, _attrs: FileAttributes) -> Reply<Status> {
        let rel = self.path(&path)?;
        if jail::is_protected(&rel) {
            return Err(read_only());
        }
        let root = self.root.clone();
        blocking(move || root.mkdir(&rel)).await.map_err(io_reply)?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Reply<Status> {
        let rel = self.path(&path)?;
        if rel.as_os_str().is_empty() || jail::is_protected_dir(&rel) {
            return Err(denied("this directory cannot be removed"));
        }
        let root = self.root.clone();
        blocking(move || root.rmdir(&rel)).await.map_err(io_reply)?;
        Ok(ok(id))
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Reply<Status> {
        self.do_rename(id, oldpath, newpath).await
    }

    async fn readlink(&mut self, _id: u32, _path: String) -> Reply<Name> {
        Err(denied("symbolic links are not supported"))
    }

    async fn symlink(&mut self, _id: u32, _linkpath: String, _targetpath: String) -> Reply<Status> {
        tracing::info!(tenant = %self.tenant.name, account = %self.account, "refused symlink creation");
        Err(denied("symbolic links are not supported"))
    }

    async fn extended(&mut self, id: u32, request: String, data: Vec<u8>) -> Reply<Packet> {
        let mut rest = data.as_slice();
        let bad = || StatusReply::from(StatusCode::BadMessage);
        match request.as_str() {
            "posix-rename@openssh.com" => {
                let old = take_string(&mut rest).ok_or_else(bad)?;
                let new = take_string(&mut rest).ok_or_else(bad)?;
                Ok(self.do_rename(id, old, new).await?.into())
            }
            "statvfs@openssh.com" => {
                let path = take_string(&mut rest).ok_or_else(bad)?;
                // Resolved for its errors; the numbers are the root's filesystem.
                let rel = self.path(&path)?;
                let root = self.root.clone();
                let v = blocking(move || {
                    root.stat(&rel)?;
                    root.statvfs()
                })
                .await
                .map_err(io_reply)?;
                let reply = Statvfs {
                    block_size: v.f_bsize,
                    fragment_size: v.f_frsize,
                    blocks: v.f_blocks,
                    blocks_free: v.f_bfree,
                    blocks_avail: v.f_bavail,
                    inodes: v.f_files,
                    inodes_free: v.f_ffree,
                    inodes_avail: v.f_favail,
                    fs_id: v.f_fsid,
                    flags: v.f_flag.bits(),
                    name_max: v.f_namemax,
                };
                extended_reply(id, &reply)
            }
            "fsync@openssh.com" => {
                let handle = take_string(&mut rest).ok_or_else(bad)?;
                self.settle(&handle, 0).await?;
                let (file, _, _) = self.file(&handle)?;
                blocking(move || file.sync_all()).await.map_err(io_reply)?;
                Ok(ok(id).into())
            }
            "limits@openssh.com" => extended_reply(
                id,
                &LimitsExtension {
                    max_packet_len: MAX_PACKET_LEN as u64,
                    max_read_len: MAX_READ_LEN as u64,
                    max_write_len: MAX_WRITE_LEN as u64,
                    max_open_handles: MAX_OPEN_HANDLES as u64,
                },
            ),
            _ => Err(self.unimplemented()),
        }
    }
}

fn extended_reply<T: serde::Serialize>(id: u32, value: &T) -> Reply<Packet> {
    let data = russh_sftp::ser::to_bytes(value)
        .map_err(|e| StatusCode::Failure.with_message(e.to_string()))?;
    Ok(ExtendedReply {
        id,
        data: data.to_vec(),
    }
    .into())
}

#[cfg(test)]
mod tests;
