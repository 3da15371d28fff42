//! The life of a write handle beyond its bytes: registered by file identity
//! when opened (so that its file is not complete while it is open, whatever
//! it is renamed to), refused once its file is claimed, its partial file
//! removed when it goes past `max_file_size`, and its end reported as the
//! upload's completion or failure under the file's name at that moment.
//! This module must never let a write through a revoked or refused handle
//! reach the disk, nor make a system call per WRITE.

use std::io;
use std::path::{Path, PathBuf};

use russh_sftp::protocol::StatusCode;
use russh_sftp::server::StatusReply;

use super::{blocking, denied, io_reply, jail, OpenHandle, Reply, SftpSession, UploadEvent};
use crate::writers::{FileId, Writer};

/// How a write handle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// CLOSE, every write succeeded.
    Closed,
    /// CLOSE after a write failed.
    WriteFailed,
    /// The session ended with the handle open.
    SessionEnded,
}

/// What the client is told when a handle's file was claimed.
const CLAIMED: &str =
    "this file was taken for processing: the handle can no longer write to it; upload the file again";

/// ENOSPC on Linux.
const ENOSPC: i32 = 28;

fn no_space(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(ENOSPC)
}

/// The log text of a failed write.
pub(super) fn write_error(e: &io::Error) -> String {
    if no_space(e) {
        "a write: no space left on the server".to_string()
    } else {
        format!("a write: {e}")
    }
}

/// The client's answer to a failed write.
pub(super) fn write_reply(e: io::Error) -> StatusReply {
    if no_space(&e) {
        StatusCode::Failure.with_message("no space left on the server")
    } else {
        io_reply(e)
    }
}

fn file_id(st: &rustix::fs::Stat) -> FileId {
    FileId {
        dev: st.st_dev,
        ino: st.st_ino,
    }
}

impl SftpSession {
    fn limit_message(&self) -> String {
        format!(
            "file too large: the limit is {} per file; the partial upload was removed",
            bytesize::ByteSize::b(self.tenant.max_file_size)
                .display()
                .iec()
        )
    }

    /// The upload's mark could not be recorded: the OPEN fails, before the
    /// file is touched.
    pub(super) fn unrecorded(&self, rel: &Path, e: &io::Error) -> StatusReply {
        tracing::error!(tenant = %self.tenant.name, account = %self.account,
            path = %rel.display(), "refused an upload: its mark cannot be recorded: {e}");
        if no_space(e) {
            StatusCode::Failure.with_message("no space left on the server")
        } else {
            StatusCode::Failure.with_message("the server cannot record the upload; try again later")
        }
    }

    /// Registers a newly opened write handle by its file's identity, then
    /// checks that its name still leads to that file: a file claimed between
    /// the open and the registration is not written through this handle.
    pub(super) async fn register_writer(
        &mut self,
        rel: &Path,
        file: std::fs::File,
    ) -> Reply<(std::fs::File, Option<Writer>)> {
        let (file, st) = blocking(move || {
            let st = rustix::fs::fstat(&file).map_err(io::Error::from)?;
            Ok((file, st))
        })
        .await
        .map_err(io_reply)?;
        let id = file_id(&st);
        let writer = self.events.writer_opened(&self.tenant.name, rel, id);
        let root = self.root.clone();
        let r = rel.to_path_buf();
        let now = blocking(move || root.lstat(&r)).await;
        if now.as_ref().map(file_id).ok() != Some(id) {
            self.unregister_writer(Some(writer), rel);
            tracing::info!(tenant = %self.tenant.name, account = %self.account,
                path = %rel.display(), "refused an open: the file was moved while it was opened");
            return Err(StatusCode::Failure.with_message("the file was moved while it was opened"));
        }
        Ok((file, Some(writer)))
    }

    /// Takes back a registration whose handle never came to be.
    pub(super) fn unregister_writer(&self, writer: Option<Writer>, rel: &Path) {
        if let Some(w) = writer {
            self.events.writer_closed(&self.tenant.name, &w, rel, false);
        }
    }

    /// Whether a WRITE may go through the handle: not once its file was
    /// claimed, not once it was refused past the size limit.
    pub(super) fn writable(&self, handle: &str) -> Reply<()> {
        if let Some(OpenHandle::File {
            writer: Some(w),
            removed,
            ..
        }) = self.handles.get(handle)
        {
            if w.revoked() {
                return Err(denied(CLAIMED));
            }
            if *removed {
                return Err(StatusCode::Failure.with_message(self.limit_message()));
            }
        }
        Ok(())
    }

    /// A write past `max_file_size`: the handle fails for good and its
    /// partial file is removed at once (emptied first, in case its name
    /// now leads elsewhere), so that no rename can ever make it a job.
    pub(super) async fn refuse_oversize(&mut self, handle: &str, what: &str) -> StatusReply {
        let first = match self.handles.get_mut(handle) {
            Some(OpenHandle::File {
                removed, failed, ..
            }) if !*removed => {
                *removed = true;
                *failed = true;
                true
            }
            _ => false,
        };
        if first {
            // Writes in flight land first; nothing reaches the file after.
            while self.settle(handle, 0).await.is_err() {}
            if let Some(OpenHandle::File {
                file,
                rel,
                writer: Some(w),
                ..
            }) = self.handles.get(handle)
            {
                let (file, rel, id) = (file.clone(), rel.clone(), w.file());
                let root = self.root.clone();
                let r = rel.clone();
                let gone = blocking(move || {
                    file.set_len(0)?;
                    match root.lstat(&r) {
                        Ok(st) if file_id(&st) == id => root.remove(&r).map(|()| true),
                        _ => Ok(false),
                    }
                })
                .await;
                tracing::warn!(tenant = %self.tenant.name, account = %self.account,
                path = %rel.display(), limit = self.tenant.max_file_size,
                "refused {what} past max_file_size; the partial upload is removed ({})",
                match gone {
                    Ok(true) => "removed".to_string(),
                    Ok(false) => "emptied; its name leads elsewhere".to_string(),
                    Err(e) => format!("cannot remove it: {e}"),
                });
            }
        }
        StatusCode::Failure.with_message(self.limit_message())
    }

    /// A write handle ended: the sink learns it, and the upload is reported
    /// under the name its file has now.
    pub(super) fn closed_writer(&mut self, rel: PathBuf, w: Writer, ending: Ending, removed: bool) {
        let tenant = self.tenant.name.clone();
        let c = self
            .events
            .writer_closed(&tenant, &w, &rel, ending == Ending::Closed);
        if removed {
            // Refused past the limit and removed: as if never opened.
            if !jail::is_temp_path(w.opened_at()) {
                self.events
                    .open_failed(&tenant, c.path.as_deref().unwrap_or(&rel));
            }
            tracing::debug!(path = %rel.display(), "a refused upload's handle closed");
            return;
        }
        let Some(path) = c.path else {
            tracing::warn!(tenant, account = %self.account, path = %rel.display(),
                "a write handle ended on a file that was claimed or replaced meanwhile");
            return;
        };
        let why = match ending {
            Ending::Closed if jail::is_temp_path(&path) => {
                tracing::debug!(path = %path.display(), "temporary upload closed");
                return;
            }
            Ending::Closed => return self.complete(&path),
            Ending::WriteFailed => "upload incomplete: a write failed",
            Ending::SessionEnded => "upload incomplete: session ended with the file open",
        };
        tracing::warn!(tenant, account = %self.account, path = %path.display(), "{why}");
        self.events.event(UploadEvent::Incomplete { tenant, path });
    }

    /// A regular file was renamed: this session's handles on it follow it,
    /// and the sink moves its marks. Whether it is still not complete.
    pub(super) fn renamed_file(
        &mut self,
        from: &Path,
        to: &Path,
        st: &rustix::fs::Stat,
        replaced: Option<&rustix::fs::Stat>,
    ) -> bool {
        let moved = file_id(st);
        let replaced = replaced.map(file_id).filter(|r| *r != moved);
        for h in self.handles.values_mut() {
            if let OpenHandle::File {
                rel,
                writer: Some(w),
                ..
            } = h
            {
                if w.file() == moved {
                    *rel = to.to_path_buf();
                }
            }
        }
        self.events
            .renamed(&self.tenant.name, from, to, moved, replaced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11.3: a full disk is named as such, in the log and to the
    /// client, never as the size limit.
    #[test]
    fn a_full_disk_is_reported_as_no_space_not_as_the_size_limit() {
        let full = io::Error::from_raw_os_error(28);
        assert_eq!(write_error(&full), "a write: no space left on the server");
        let reply = write_reply(io::Error::from_raw_os_error(28));
        assert_eq!(reply.status_code, StatusCode::Failure);
        assert_eq!(
            reply.error_message.as_deref(),
            Some("no space left on the server")
        );
        let other = io::Error::from_raw_os_error(5);
        assert!(!write_error(&other).contains("no space"));
        assert!(!write_error(&other).contains("limit"));
    }
}
