//! Unit tests of the SFTP protocol handler of one session.

use super::*;
use russh_sftp::server::Handler;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

fn session(
    max: u64,
) -> (
    tempfile::TempDir,
    SftpSession,
    UnboundedReceiver<UploadEvent>,
) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("acme");
    super::super::fs::ensure_tenant_root(&root).unwrap();
    let (tx, rx) = unbounded_channel();
    let (ended, _) = tokio::sync::oneshot::channel();
    let tenant = Arc::new(TenantInfo {
        name: "acme".into(),
        root: root.clone(),
        max_file_size: max,
    });
    let s = SftpSession::new(
        tenant,
        "hr".into(),
        Root::open(&root).unwrap(),
        Arc::new(tx),
        ended,
    );
    (dir, s, rx)
}

fn wflags() -> OpenFlags {
    OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE
}

async fn put(s: &mut SftpSession, name: &str, data: &[u8]) -> Reply<()> {
    let h = s
        .open(1, name.into(), wflags(), FileAttributes::default())
        .await?
        .handle;
    let w = s.write(2, h.clone(), 0, data.to_vec()).await;
    s.close(3, h).await?;
    w.map(|_| ())
}

fn complete(path: &str) -> UploadEvent {
    UploadEvent::Complete {
        tenant: "acme".into(),
        path: path.into(),
    }
}

fn incomplete(path: &str) -> UploadEvent {
    UploadEvent::Incomplete {
        tenant: "acme".into(),
        path: path.into(),
    }
}

#[tokio::test]
async fn close_rename_and_drop_report_uploads() {
    let (_d, mut s, mut rx) = session(1 << 20);
    put(&mut s, "/users.csv", b"a\n").await.unwrap();
    assert_eq!(rx.try_recv().unwrap(), complete("users.csv"));
    put(&mut s, "/x.csv.filepart", b"a\n").await.unwrap();
    assert!(rx.try_recv().is_err(), "temp names never complete");
    s.rename(4, "x.csv.filepart".into(), "/x.csv".into())
        .await
        .unwrap();
    assert_eq!(rx.try_recv().unwrap(), complete("x.csv"));
    // posix-rename arrives raw.
    put(&mut s, "/.y.csv", b"a\n").await.unwrap();
    let mut data = Vec::new();
    for p in ["/.y.csv", "/y.csv"] {
        data.extend_from_slice(&(p.len() as u32).to_be_bytes());
        data.extend_from_slice(p.as_bytes());
    }
    s.extended(5, "posix-rename@openssh.com".into(), data)
        .await
        .unwrap();
    assert_eq!(rx.try_recv().unwrap(), complete("y.csv"));
    // Late SETSTAT on a file already claimed: OK.
    let attrs = FileAttributes {
        mtime: Some(1_600_000_000),
        atime: Some(1_600_000_000),
        ..Default::default()
    };
    s.setstat(6, "/gone.csv".into(), attrs).await.unwrap();
    // A write handle open when the session ends: incomplete.
    let h = s
        .open(7, "/z.csv".into(), wflags(), FileAttributes::default())
        .await
        .unwrap()
        .handle;
    s.write(8, h, 0, b"partial".to_vec()).await.unwrap();
    drop(s);
    assert_eq!(rx.try_recv().unwrap(), incomplete("z.csv"));
}

#[tokio::test]
async fn pipelined_writes_land_in_order_even_when_overlapping() {
    let (d, mut s, mut rx) = session(1 << 20);
    let h = s
        .open(
            1,
            "/w.csv".into(),
            wflags() | OpenFlags::READ,
            FileAttributes::default(),
        )
        .await
        .unwrap()
        .handle;
    let mut expect = vec![0u8; 40 * 1000];
    for i in (0..40u64).rev() {
        let chunk = vec![i as u8; 1000];
        s.write(2, h.clone(), i * 1000, chunk).await.unwrap();
    }
    // Overwrites of a region still in flight land after it.
    for b in 0..20u8 {
        s.write(3, h.clone(), 500, vec![100 + b; 10]).await.unwrap();
    }
    for (i, byte) in expect.iter_mut().enumerate() {
        *byte = (i / 1000) as u8;
    }
    expect[500..510].fill(119);
    // A read on the handle sees every write.
    let got = s.read(4, h.clone(), 0, 40_000).await.unwrap().data;
    assert_eq!(got.len(), 40_000);
    assert!(got == expect);
    s.close(5, h).await.unwrap();
    assert_eq!(std::fs::read(d.path().join("acme/w.csv")).unwrap(), expect);
    assert_eq!(rx.try_recv().unwrap(), complete("w.csv"));
}

#[tokio::test]
async fn size_limit_and_read_only_dirs() {
    let (d, mut s, mut rx) = session(10);
    let e = put(&mut s, "/big.csv", &[b'x'; 11]).await.unwrap_err();
    assert_eq!(e.status_code, StatusCode::Failure);
    assert!(e
        .error_message
        .unwrap()
        .contains("the limit is 10 B per file"));
    assert!(
        rx.try_recv().is_err(),
        "a refused upload is removed: nothing to report"
    );
    assert!(!d.path().join("acme/big.csv").exists());
    for p in ["/.bak/a.csv", "results/a.csv", "/x/../results/b.csv"] {
        let e = put(&mut s, p, b"a").await.unwrap_err();
        assert_eq!(e.status_code, StatusCode::PermissionDenied, "{p}");
    }
    assert!(s
        .mkdir(1, "/results/sub".into(), FileAttributes::default())
        .await
        .is_err());
    // Readable and deletable.
    std::fs::write(d.path().join("acme/results/r.json"), "{}").unwrap();
    let h = s
        .open(
            1,
            "/results/r.json".into(),
            OpenFlags::READ,
            FileAttributes::default(),
        )
        .await
        .unwrap()
        .handle;
    assert_eq!(s.read(2, h.clone(), 0, 100).await.unwrap().data, b"{}");
    s.close(3, h).await.unwrap();
    s.remove(4, "/results/r.json".into()).await.unwrap();
    assert!(s.rmdir(5, "/results".into()).await.is_err());
    assert!(s.symlink(6, "/l".into(), "/etc".into()).await.is_err());
    // Realpath never leaves the root.
    let n = s.realpath(7, "../../etc/./passwd".into()).await.unwrap();
    assert_eq!(n.files[0].filename, "/etc/passwd");
}

#[test]
fn ssh_strings_parse() {
    let mut data = Vec::new();
    for s in ["/a.part", "/a"] {
        data.extend_from_slice(&(s.len() as u32).to_be_bytes());
        data.extend_from_slice(s.as_bytes());
    }
    let mut rest = data.as_slice();
    assert_eq!(take_string(&mut rest).as_deref(), Some("/a.part"));
    assert_eq!(take_string(&mut rest).as_deref(), Some("/a"));
    assert_eq!(take_string(&mut rest), None);
    let mut short: &[u8] = &[0, 0, 0, 9, b'x'];
    assert_eq!(take_string(&mut short), None);
}

// --- Write handles, marks and claims, with a sink like the daemon's ---

use crate::pickup::admit::{admit, NotAdmitted, Settle};
use crate::pickup::uploads::{State, Uploads};
use crate::sftp::UploadSink;
use crate::writers::{Closed, FileId};
use tokio::sync::mpsc::UnboundedSender;

/// Marks and write handles in a real [`Uploads`], events on a channel: the
/// daemon's sink without the daemon.
struct Marks {
    uploads: std::sync::Mutex<Uploads>,
    tx: UnboundedSender<UploadEvent>,
}

impl Marks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Uploads> {
        self.uploads.lock().unwrap()
    }
}

impl UploadSink for Marks {
    fn opened(&self, tenant: &str, path: &Path) -> io::Result<()> {
        self.lock()
            .opened(tenant, path, std::time::SystemTime::now())
    }
    fn open_failed(&self, tenant: &str, path: &Path) {
        self.lock().open_failed(tenant, path);
    }
    fn event(&self, event: UploadEvent) {
        match &event {
            UploadEvent::Complete { tenant, path } => self.lock().completed(tenant, path),
            UploadEvent::Incomplete { tenant, path } => {
                self.lock()
                    .incomplete(tenant, path, std::time::SystemTime::now())
            }
        }
        let _ = self.tx.send(event);
    }
    fn writer_opened(&self, tenant: &str, path: &Path, file: FileId) -> Writer {
        self.lock().writer_opened(tenant, path, file)
    }
    fn writer_closed(&self, tenant: &str, w: &Writer, _path: &Path, ok: bool) -> Closed {
        self.lock().writer_closed(tenant, w, ok)
    }
    fn renamed(
        &self,
        tenant: &str,
        from: &Path,
        to: &Path,
        moved: FileId,
        replaced: Option<FileId>,
    ) -> bool {
        self.lock().renamed(tenant, from, to, moved, replaced)
    }
}

struct Marked {
    dir: tempfile::TempDir,
    marks: Arc<Marks>,
    rx: UnboundedReceiver<UploadEvent>,
}

impl Marked {
    fn new() -> Marked {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let (tx, rx) = unbounded_channel();
        let uploads = Uploads::load(&dir.path().join("data"), std::time::SystemTime::now());
        let marks = Arc::new(Marks {
            uploads: std::sync::Mutex::new(uploads),
            tx,
        });
        Marked { dir, marks, rx }
    }

    fn session(&self, max: u64) -> SftpSession {
        let root = self.dir.path().join("acme");
        super::super::fs::ensure_tenant_root(&root).unwrap();
        let (ended, _) = tokio::sync::oneshot::channel();
        let tenant = Arc::new(TenantInfo {
            name: "acme".into(),
            root: root.clone(),
            max_file_size: max,
        });
        SftpSession::new(
            tenant,
            "hr".into(),
            Root::open(&root).unwrap(),
            self.marks.clone(),
            ended,
        )
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join("acme").join(name)
    }

    /// What the claim asks, with the file's metadata.
    fn admit(&self, name: &str) -> Result<(), NotAdmitted> {
        let meta = std::fs::symlink_metadata(self.file(name)).unwrap();
        admit("acme", name, Some(&meta), &self.marks.lock(), Settle::Done)
    }
}

fn posix_rename_data(from: &str, to: &str) -> Vec<u8> {
    let mut data = Vec::new();
    for p in [from, to] {
        data.extend_from_slice(&(p.len() as u32).to_be_bytes());
        data.extend_from_slice(p.as_bytes());
    }
    data
}

async fn open_w(s: &mut SftpSession, name: &str) -> String {
    s.open(1, name.into(), wflags(), FileAttributes::default())
        .await
        .unwrap()
        .handle
}

/// Issue 11.1: a temp name renamed to its final name with the write handle
/// still open is not complete (today's rule completed it on the rename):
/// not taken, not reported, until the handle closes.
#[tokio::test]
async fn a_file_renamed_with_its_write_handle_open_is_complete_only_when_it_closes() {
    let mut m = Marked::new();
    let mut s = m.session(1 << 20);
    let h = open_w(&mut s, "/.held.csv").await;
    s.write(2, h.clone(), 0, b"a,b\n1,2\n".to_vec())
        .await
        .unwrap();
    s.extended(
        3,
        "posix-rename@openssh.com".into(),
        posix_rename_data("/.held.csv", "/held.csv"),
    )
    .await
    .unwrap();
    assert!(
        m.rx.try_recv().is_err(),
        "no Complete while a handle is open"
    );
    assert_eq!(m.admit("held.csv"), Err(NotAdmitted::Uploading));
    // The upload goes on, under the new name.
    s.write(4, h.clone(), 8, b"3,4\n".to_vec()).await.unwrap();
    s.close(5, h).await.unwrap();
    assert_eq!(m.rx.try_recv().unwrap(), complete("held.csv"));
    assert_eq!(m.admit("held.csv"), Ok(()));
    assert_eq!(
        std::fs::read(m.file("held.csv")).unwrap(),
        b"a,b\n1,2\n3,4\n"
    );
}

/// Issue 11.1: once its file is claimed, a handle still open on it can no
/// longer write (the spool and `.bak/` copies are out of its reach).
#[tokio::test]
async fn a_claimed_file_refuses_writes_through_a_handle_still_open() {
    let m = Marked::new();
    let mut s = m.session(1 << 20);
    let h = open_w(&mut s, "/x.csv").await;
    s.write(2, h.clone(), 0, b"a\n".to_vec()).await.unwrap();
    let meta = std::fs::symlink_metadata(m.file("x.csv")).unwrap();
    m.marks.lock().claimed(FileId::of_meta(&meta));
    let e = s
        .write(3, h.clone(), 0, b"changed\n".to_vec())
        .await
        .unwrap_err();
    assert_eq!(e.status_code, StatusCode::PermissionDenied);
    assert!(e.error_message.unwrap().contains("taken for processing"));
    s.close(4, h).await.unwrap();
    assert_eq!(std::fs::read(m.file("x.csv")).unwrap(), b"a\n");
}

/// Issue 11.2: an upload refused past `max_file_size` leaves nothing that
/// a rename could turn into a job, final name or temp name.
#[tokio::test]
async fn a_refused_over_limit_upload_is_removed_and_cannot_be_renamed_into_a_job() {
    let mut m = Marked::new();
    let mut s = m.session(10);
    for (name, to) in [("/big.csv", "/other.csv"), ("/x.part", "/x.csv")] {
        let h = open_w(&mut s, name).await;
        s.write(2, h.clone(), 0, vec![b'x'; 8]).await.unwrap();
        let e = s.write(3, h.clone(), 8, vec![b'x'; 8]).await.unwrap_err();
        assert_eq!(e.status_code, StatusCode::Failure);
        assert!(
            e.error_message
                .unwrap()
                .contains("the limit is 10 B per file"),
            "the client is told the limit"
        );
        // Later writes through the handle fail too: nothing comes back.
        assert!(s.write(4, h.clone(), 0, vec![b'y'; 2]).await.is_err());
        let _ = s.close(5, h).await;
        let e = s.rename(6, name.into(), to.into()).await.unwrap_err();
        assert_eq!(e.status_code, StatusCode::NoSuchFile, "{name}");
        assert!(!m.file(&name[1..]).exists() && !m.file(&to[1..]).exists());
    }
    assert!(
        m.rx.try_recv().is_err(),
        "nothing complete, nothing to mark"
    );
    assert!(!m.marks.lock().blocks("acme", "big.csv"), "no mark left");
}

/// Issue 11.3: a mark that cannot be written (here a real ENOSPC:
/// uploads.json's temp file is `/dev/full`) fails the OPEN before the file
/// exists, telling the client the server is out of space.
#[tokio::test]
async fn an_upload_whose_mark_cannot_be_saved_is_refused_at_open() {
    let m = Marked::new();
    let mut s = m.session(1 << 20);
    let tmp = m.dir.path().join("data/uploads.json.tmp");
    std::os::unix::fs::symlink("/dev/full", &tmp).unwrap();
    let e = s
        .open(1, "/users.csv".into(), wflags(), FileAttributes::default())
        .await
        .unwrap_err();
    assert_eq!(e.status_code, StatusCode::Failure);
    assert_eq!(
        e.error_message.as_deref(),
        Some("no space left on the server")
    );
    assert!(
        !m.file("users.csv").exists(),
        "the OPEN never reached the file"
    );
    assert!(!m.marks.lock().blocks("acme", "users.csv"));
    // The failed save cleaned up its temp file: the next upload is recorded.
    assert!(std::fs::symlink_metadata(&tmp).is_err());
    put(&mut s, "/users.csv", b"a\n").await.unwrap();
}

/// Issue 11.12: an upload cut off under its temp name, resumed, closed
/// whole and renamed, leaves no mark behind (the old one named a file
/// that is gone).
#[tokio::test]
async fn a_resumed_temp_upload_renamed_leaves_no_stale_mark() {
    let mut m = Marked::new();
    let mut s = m.session(1 << 20);
    let h = open_w(&mut s, "/x.csv.part").await;
    s.write(2, h, 0, b"a,b\n".to_vec()).await.unwrap();
    drop(s);
    assert_eq!(m.rx.try_recv().unwrap(), incomplete("x.csv.part"));
    assert_eq!(
        m.marks.lock().state("acme", "x.csv.part"),
        Some(State::Incomplete)
    );
    let mut s = m.session(1 << 20);
    let h = s
        .open(
            1,
            "/x.csv.part".into(),
            OpenFlags::WRITE | OpenFlags::APPEND,
            FileAttributes::default(),
        )
        .await
        .unwrap()
        .handle;
    s.write(2, h.clone(), 4, b"1,2\n".to_vec()).await.unwrap();
    s.close(3, h).await.unwrap();
    s.rename(4, "/x.csv.part".into(), "/x.csv".into())
        .await
        .unwrap();
    assert_eq!(m.rx.try_recv().unwrap(), complete("x.csv"));
    let marks = m.marks.lock();
    assert_eq!(marks.state("acme", "x.csv.part"), None, "stale mark");
    assert_eq!(marks.state("acme", "x.csv"), None);
    drop(marks);
    let saved = std::fs::read_to_string(m.dir.path().join("data/uploads.json")).unwrap();
    assert_eq!(saved.trim(), "[]", "uploads.json: {saved}");
}

/// An incomplete file renamed is still incomplete: its mark goes with it.
#[tokio::test]
async fn an_incomplete_file_renamed_keeps_its_mark() {
    let mut m = Marked::new();
    let mut s = m.session(1 << 20);
    let h = open_w(&mut s, "/a.csv").await;
    s.write(2, h, 0, b"a,b\n".to_vec()).await.unwrap();
    drop(s);
    assert_eq!(m.rx.try_recv().unwrap(), incomplete("a.csv"));
    let mut s = m.session(1 << 20);
    s.rename(1, "/a.csv".into(), "/b.csv".into()).await.unwrap();
    assert!(m.rx.try_recv().is_err());
    let marks = m.marks.lock();
    assert_eq!(marks.state("acme", "a.csv"), None);
    assert_eq!(marks.state("acme", "b.csv"), Some(State::Incomplete));
}
