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
