//! The embedded SFTP server (docs/behaviour.md#the-sftp-server), built on russh + russh-sftp: the
//! only way customers hand files to userdrop.
//!
//! Its role: authenticate accounts (argon2id passwords, authorized keys),
//! jail each session in its tenant root, serve the SFTP operations standard
//! clients need, and report each upload as [`UploadEvent::Complete`] or
//! [`UploadEvent::Incomplete`] to the daemon. What it must never do: follow
//! or create a symlink, let a path leave its tenant root, write into `.bak/`
//! or `results/`, offer a shell, any exec but the SCP sink (uploads only)
//! or any forwarding, log a password,
//! import anything itself (it only reports), or block the async runtime on
//! file I/O.
//!
//! - [`server`]: SSH side: the accept loop and the channel plumbing.
//! - `auth`: password and key checks, attempts, admission of a login.
//! - `sessions`: the session registry, limits, revocation on reload.
//! - `ssh_config`: the russh config (algorithms, methods, rejection pause).
//! - [`session`]: the SFTP protocol handler of one session.
//! - [`scp`]: the legacy SCP sink (`scp -t`, what `scp -O` runs), writing
//!   through a [`session::SftpSession`].
//! - [`fs`]: filesystem access beneath a root with `openat2`, no symlinks.
//! - [`jail`]: lexical path rules, temp names, read-only directories.
//! - [`hostkey`]: the ed25519 host key on disk.
//! - [`bans`]: the per-address brute-force counter (pure, clock injected).
//! - [`preauth`]: the pre-login limits (per address, random early drop).
//! - `cutoff`: a socket the accept loop can cut (a session stuck in its key
//!   exchange ignores a disconnect).
//! - `framing`: SFTP packets checked before russh-sftp parses them, so that a
//!   malformed request gets a BAD_MESSAGE reply with its own id.
//! - [`quickack`]: immediate ACKs during the handshake (no 40 ms Nagle stall).

mod auth;
pub mod bans;
mod cutoff;
mod framing;
pub mod fs;
pub mod hostkey;
pub mod jail;
pub mod preauth;
pub mod quickack;
pub mod scp;
pub mod server;
pub mod session;
mod sessions;
mod ssh_config;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::writers::{Closed, FileId, Writer};

pub use auth::password_matches;
pub use server::SftpServer;
pub use sessions::{Reloader, ServerStats};
pub use ssh_config::{AUTH_REJECTION_TIME, MAX_AUTH_ATTEMPTS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadEvent {
    /// A file is complete: CLOSE of a write handle, or a temp name renamed to a final name.
    /// `path` is relative to the tenant root, e.g. "users.csv" (or "sub/x.csv").
    Complete { tenant: String, path: PathBuf },
    /// A write handle died with its session (client killed / connection dropped): never import it.
    Incomplete { tenant: String, path: PathBuf },
}

/// Where the server reports uploads. `opened` runs before the file is
/// opened (a truncating open already changes it) and before the reply, so a
/// sink that records it durably knows of every upload whose bytes can reach
/// the disk, even if the process is killed mid-way. Every `opened` is
/// followed by `open_failed`, or by a Complete / Incomplete event.
/// Implementations must be quick: they run on the session's task.
pub trait UploadSink: Send + Sync + 'static {
    /// A file with a final (non-temp) name is being opened for writing. An
    /// error (the mark cannot be recorded: a full disk) fails the OPEN.
    fn opened(&self, tenant: &str, path: &Path) -> std::io::Result<()>;
    /// The open announced by `opened` failed: nothing was written.
    fn open_failed(&self, tenant: &str, path: &Path);
    fn event(&self, event: UploadEvent);
    /// A write handle on `file` (any name, temp names too) is open: see
    /// [`crate::writers`]. The default tracks nothing.
    fn writer_opened(&self, tenant: &str, path: &Path, file: FileId) -> Writer {
        let _ = tenant;
        Writer::untracked(path, file)
    }
    /// The handle is closed (`ok`: every write succeeded); `path` is where
    /// the session last saw its file. The default: still there, no other.
    fn writer_closed(&self, tenant: &str, writer: &Writer, path: &Path, ok: bool) -> Closed {
        let _ = (tenant, writer, ok);
        Closed {
            path: Some(path.to_path_buf()),
            busy: false,
        }
    }
    /// A rename moved `moved` from `from` to `to`, replacing `replaced`.
    /// Whether the file is still not complete (a write handle open on it).
    fn renamed(
        &self,
        tenant: &str,
        from: &Path,
        to: &Path,
        moved: FileId,
        replaced: Option<FileId>,
    ) -> bool {
        let _ = (tenant, from, to, moved, replaced);
        false
    }
}

/// A plain channel sink: events only (tests, the standalone example).
impl UploadSink for tokio::sync::mpsc::UnboundedSender<UploadEvent> {
    fn opened(&self, _tenant: &str, _path: &Path) -> std::io::Result<()> {
        Ok(())
    }
    fn open_failed(&self, _tenant: &str, _path: &Path) {}
    fn event(&self, event: UploadEvent) {
        let _ = self.send(event);
    }
}

/// The sink as the sessions hold it.
pub type Sink = std::sync::Arc<dyn UploadSink>;

#[derive(Debug, thiserror::Error)]
pub enum SftpError {
    #[error("SSH host key {}: {reason}", path.display())]
    HostKey { path: PathBuf, reason: String },
    #[error("tenant {tenant}: cannot prepare its SFTP root {}: {source}", path.display())]
    TenantRoot {
        tenant: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("SFTP server: {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("SFTP server: {0}")]
    Ssh(String),
}

/// "SHA256:…" (as `ssh-keygen -lf` prints it) and the OpenSSH public key
/// line, generating the key if missing.
pub fn host_key_fingerprint(data_dir: &Path) -> Result<(String, String), SftpError> {
    let key = hostkey::load_or_generate(data_dir)?;
    Ok((hostkey::fingerprint(&key), hostkey::public_line(&key)?))
}
