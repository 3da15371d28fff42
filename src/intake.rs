//! Files that arrive whole through a door other than an inbox (the HTTP
//! API; the web page next) become jobs exactly as an SFTP upload does: the
//! bytes are streamed into the tenant's spool and fsynced, then the job row
//! is committed with the file in place ([`crate::store::intake`]); only then
//! is the client told "queued", and the daemon's worker carries the job on
//! like any claimed file. A crash after the answer loses nothing: the job is
//! in the ledger and its file in the spool. The request's options (mode,
//! delimiter) travel with the job and are laid over the tenant's settings by
//! the worker and by `jobs approve`. This module must never judge a row: the
//! import does.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Mode, Tenant};
use crate::import::RowNumbers;
use crate::ingest::decode::Delimiter;
use crate::store::intake::{self, Intake, IntakeError, NewJob};
use crate::store::Store;

/// The job source of an upload through the HTTP API.
pub const SOURCE_HTTP: &str = "http";

/// The job source of a file loaded on the tenant admin's web page.
pub const SOURCE_WEB: &str = "web";

/// Whether a job of this source came in whole through a door of its own
/// (never through the tenant root): a file of the same name in the root is
/// another upload.
pub fn arrived_whole(source: &str) -> bool {
    source == SOURCE_HTTP || source == SOURCE_WEB
}

/// The prefix of a spool file still being received: never a job's file,
/// removed at start-up ([`remove_partial`]).
const PARTIAL_PREFIX: &str = ".incoming-";

/// What an upload asked for beyond the tenant's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobOptions {
    pub mode: Option<Mode>,
    pub delimiter: Option<Delimiter>,
    /// The file is a JSON array made into a table: errors number rows by
    /// object, as the customer sent them.
    pub from_json: bool,
}

/// The options as the ledger keeps them: by name.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delimiter: Option<String>,
    /// `objects` for a JSON upload; absent for a file's own lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<String>,
}

impl JobOptions {
    pub fn is_empty(&self) -> bool {
        *self == JobOptions::default()
    }

    pub fn to_json(self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let s = StoredOptions {
            mode: self.mode.map(|m| m.as_str().to_string()),
            delimiter: self.delimiter.map(|d| match d {
                Delimiter::Auto => "auto".to_string(),
                Delimiter::Fixed(b) => (b as char).to_string(),
            }),
            rows: self.from_json.then(|| "objects".to_string()),
        };
        serde_json::to_string(&s).ok()
    }

    /// Options read back from the ledger; a name this userdrop does not
    /// know is left out (the tenant's setting applies).
    pub fn from_json(text: &str) -> JobOptions {
        let s: StoredOptions = serde_json::from_str(text).unwrap_or_default();
        JobOptions {
            mode: s.mode.as_deref().and_then(Mode::from_name),
            delimiter: s.delimiter.as_deref().and_then(Delimiter::from_name),
            from_json: s.rows.as_deref() == Some("objects"),
        }
    }

    /// How the job's rows are numbered.
    pub fn rows(&self) -> RowNumbers {
        if self.from_json {
            RowNumbers::Objects
        } else {
            RowNumbers::Lines
        }
    }

    /// The tenant as this job sees it.
    pub fn apply(&self, tenant: &Tenant) -> Tenant {
        let mut t = tenant.clone();
        if let Some(m) = self.mode {
            t.mode = m;
        }
        if let Some(d) = self.delimiter {
            t.delimiter = d;
        }
        t
    }
}

/// The tenant a stored job runs with (its own options over the tenant's
/// settings) and the options themselves (the worker and `jobs approve` both
/// call this).
pub fn tenant_for_job(
    store: &Store,
    tenant: &Tenant,
    job: i64,
) -> Result<(Tenant, JobOptions), crate::store::StoreError> {
    let options = match intake::options(store, job)? {
        Some(text) => JobOptions::from_json(&text),
        None => JobOptions::default(),
    };
    Ok((options.apply(tenant), options))
}

/// An upload being written to the spool, hashed as it goes. The body's
/// frames are kept as they came (no copy) until [`WRITE_AT`] bytes gather;
/// then they are hashed and written in one vectored write on the blocking
/// pool while the next frames arrive: one hop per MiB, not one per frame,
/// and the bytes are touched once on their way to the file. Dropped before
/// [`Spooling::finish`] (the client went away), its file is removed.
pub struct Spooling {
    /// The file and the hash when no write is under way; else the write has them.
    sink: Option<Sink>,
    /// The write under way, which hands them back.
    writing: Option<tokio::task::JoinHandle<std::io::Result<Sink>>>,
    frames: Vec<bytes::Bytes>,
    gathered: usize,
    path: PathBuf,
    len: u64,
}

/// What every write needs, passed from one write to the next.
struct Sink {
    file: std::fs::File,
    hasher: xxhash_rust::xxh3::Xxh3,
}

impl Sink {
    /// Hashes and writes `frames` in order. Blocking.
    fn put(&mut self, frames: &[bytes::Bytes]) -> std::io::Result<()> {
        use std::io::{IoSlice, Write};
        for f in frames {
            self.hasher.update(f);
        }
        let mut slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
        let mut left = &mut slices[..];
        while !left.is_empty() {
            match self.file.write_vectored(left) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut left, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// How many bytes gather before they are written.
const WRITE_AT: usize = 1 << 20;

/// An upload written whole and fsynced, not yet a job.
#[derive(Debug)]
pub struct Spooled {
    path: PathBuf,
    pub hash: String,
    pub len: u64,
}

impl Spooling {
    pub async fn create(spool: &Path) -> std::io::Result<Spooling> {
        let path = partial_path(spool);
        let (spool, at) = (spool.to_path_buf(), path.clone());
        let file = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&spool)?;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&at)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Spooling {
            sink: Some(Sink {
                file,
                hasher: xxhash_rust::xxh3::Xxh3::new(),
            }),
            writing: None,
            frames: Vec::new(),
            gathered: 0,
            path,
            len: 0,
        })
    }

    pub async fn write(&mut self, frame: bytes::Bytes) -> std::io::Result<()> {
        // An empty frame (a multipart body's empty file sends one) would be
        // a write of nothing, which the vectored write takes for a full disk.
        if frame.is_empty() {
            return Ok(());
        }
        self.len += frame.len() as u64;
        self.gathered += frame.len();
        self.frames.push(frame);
        if self.gathered >= WRITE_AT {
            let mut sink = self.settle().await?;
            let frames = std::mem::take(&mut self.frames);
            self.gathered = 0;
            self.writing = Some(tokio::task::spawn_blocking(move || {
                sink.put(&frames)?;
                Ok(sink)
            }));
        }
        Ok(())
    }

    /// The sink once no write is under way.
    async fn settle(&mut self) -> std::io::Result<Sink> {
        match self.writing.take() {
            Some(w) => w.await.map_err(std::io::Error::other)?,
            None => Ok(self.sink.take().expect("not finished")),
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes what is left and fsyncs the bytes.
    pub async fn finish(mut self) -> std::io::Result<Spooled> {
        let mut sink = self.settle().await?;
        let rest = std::mem::take(&mut self.frames);
        let hasher = tokio::task::spawn_blocking(move || {
            sink.put(&rest)?;
            sink.file.sync_all()?;
            Ok::<_, std::io::Error>(sink.hasher)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Spooled {
            path: std::mem::take(&mut self.path),
            hash: format!("{:032x}", hasher.digest128()),
            len: self.len,
        })
    }
}

impl Drop for Spooling {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Spooled {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file made here rather than received (a JSON bulk upload converted
    /// to CSV): `fill` writes it, then it is fsynced. Blocking.
    pub fn make<E: From<std::io::Error>>(
        spool: &Path,
        fill: impl FnOnce(&mut dyn std::io::Write) -> Result<(), E>,
    ) -> Result<Spooled, E> {
        use std::io::Write;
        std::fs::create_dir_all(spool)?;
        let path = partial_path(spool);
        let mut out = Spooled {
            path: path.clone(),
            hash: String::new(),
            len: 0,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let mut w = Hashing {
            inner: std::io::BufWriter::new(file),
            hasher: xxhash_rust::xxh3::Xxh3::new(),
            len: 0,
        };
        fill(&mut w)?;
        w.flush()?;
        let file = w.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        out.hash = format!("{:032x}", w.hasher.digest128());
        out.len = w.len;
        Ok(out)
    }
}

/// Hashes what passes through on its way to the file.
struct Hashing<W> {
    inner: W,
    hasher: xxhash_rust::xxh3::Xxh3,
    len: u64,
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A new name for a file being received in `spool`.
fn partial_path(spool: &Path) -> PathBuf {
    let mut id = [0u8; 12];
    argon2::password_hash::rand_core::RngCore::fill_bytes(
        &mut argon2::password_hash::rand_core::OsRng,
        &mut id,
    );
    spool.join(format!("{PARTIAL_PREFIX}{}.part", hex::encode(id)))
}

impl Drop for Spooled {
    fn drop(&mut self) {
        // Still here: it never became a job (a replayed key, a dry run, a
        // failure). A job's file was renamed away from this path.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Who is submitting what.
#[derive(Debug, Clone)]
pub struct Submission<'a> {
    pub tenant: &'a str,
    pub file: &'a str,
    pub source: &'a str,
    pub options: JobOptions,
    pub idempotency_key: Option<&'a str>,
}

/// Makes the spooled upload a job: row, options and key committed with the
/// file moved to its spool name and the directory fsynced. Blocking: run it
/// off the async runtime.
pub fn submit(
    store: &mut Store,
    spool: &Path,
    sub: &Submission<'_>,
    spooled: &Spooled,
) -> Result<Intake, IntakeError> {
    let options = sub.options.to_json();
    let job = NewJob {
        tenant: sub.tenant,
        file: sub.file,
        source: sub.source,
        content_hash: &spooled.hash,
        options: options.as_deref(),
        idempotency_key: sub.idempotency_key,
    };
    intake::submit(store, &job, spool, |to| {
        std::fs::rename(&spooled.path, to)?;
        crate::archive::sync_dir(spool)
    })
}

/// Removes uploads a crash left half-received in a spool directory.
pub fn remove_partial(spool: &Path) -> usize {
    let Ok(dir) = std::fs::read_dir(spool) else {
        return 0;
    };
    let mut n = 0;
    for e in dir.flatten() {
        if e.file_name().to_string_lossy().starts_with(PARTIAL_PREFIX)
            && std::fs::remove_file(e.path()).is_ok()
        {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_survive_the_ledger() {
        let o = JobOptions {
            mode: Some(Mode::Sync),
            delimiter: Some(Delimiter::Fixed(b';')),
            from_json: true,
        };
        let back = JobOptions::from_json(&o.to_json().unwrap());
        assert_eq!(back, o);
        assert_eq!(JobOptions::default().to_json(), None);
        assert_eq!(
            JobOptions::from_json(r#"{"delimiter":"\t"}"#).delimiter,
            Some(Delimiter::Fixed(b'\t'))
        );
    }
}
