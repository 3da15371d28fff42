use super::*;

fn cmd(target: &str, preserve: bool, target_is_dir: bool, recursive: bool) -> ScpCommand {
    ScpCommand {
        target: target.into(),
        preserve,
        target_is_dir,
        recursive,
    }
}

#[test]
fn the_sink_commands_openssh_and_others_send_are_accepted() {
    for (line, want) in [
        ("scp -t .", cmd(".", false, false, false)),
        ("scp -v -p -d -t -- dir", cmd("dir", true, true, false)),
        ("scp -r -t .", cmd(".", false, false, true)),
        ("scp -pt users.csv\n", cmd("users.csv", true, false, false)),
        ("scp -t -- -odd.csv", cmd("-odd.csv", false, false, false)),
        (
            "scp -t 'my file.csv'",
            cmd("my file.csv", false, false, false),
        ),
        ("scp -t \"a b\"", cmd("a b", false, false, false)),
        ("scp -t a\\ b", cmd("a b", false, false, false)),
        ("scp -t ~/in", cmd("~/in", false, false, false)),
    ] {
        assert_eq!(parse_command(line.as_bytes()), Ok(want), "{line}");
    }
}

#[test]
fn every_other_command_is_refused() {
    for (line, want) in [
        ("ls", CommandError::NotScp),
        ("", CommandError::NotScp),
        ("/bin/scp -t .", CommandError::NotScp),
        ("scp -f users.csv", CommandError::Source),
        ("scp users.csv", CommandError::NoSink),
        ("scp -p .", CommandError::NoSink),
        ("scp -t", CommandError::Targets),
        ("scp -t a b", CommandError::Targets),
        ("scp -tx .", CommandError::Option('x')),
        ("scp -t . ; ls", CommandError::Shell(';')),
        ("scp -t $(id)", CommandError::Shell('$')),
        ("scp -t \"$HOME\"", CommandError::Shell('$')),
        ("scp -t `id`", CommandError::Shell('`')),
        ("scp -t *.csv", CommandError::Shell('*')),
        ("scp -t a|b", CommandError::Shell('|')),
        ("scp -t a>b", CommandError::Shell('>')),
        ("scp -t 'open", CommandError::Quotes),
    ] {
        assert_eq!(parse_command(line.as_bytes()), Err(want), "{line}");
    }
    assert_eq!(parse_command(b"scp -t \xff"), Err(CommandError::Utf8));
}

#[test]
fn records_are_parsed_strictly() {
    assert_eq!(parse_entry("C0644 12 users.csv"), Ok((12, "users.csv")));
    assert_eq!(parse_entry("C0644 0 a b.csv"), Ok((0, "a b.csv")));
    assert_eq!(parse_entry("C0844 12 x"), Err("bad mode"));
    assert_eq!(parse_entry("C06441 12 x"), Err("mode not delimited"));
    assert_eq!(parse_entry("C0644 x"), Err("size not delimited"));
    assert_eq!(parse_entry("C0644 +1 x"), Err("size not present"));
    assert_eq!(
        parse_entry("C0644 99999999999999999999 x"),
        Err("size out of range")
    );
    assert_eq!(
        parse_times("T1600000000 0 1600000001 5"),
        Ok((1600000001, 1600000000))
    );
    assert_eq!(parse_times("T1 1000000 1 0"), Err("bad times"));
    assert_eq!(parse_times("T1 0 1"), Err("times not delimited"));
}

#[test]
fn targets_stay_in_the_inbox() {
    assert_eq!(target_path(".").unwrap(), "/");
    assert_eq!(target_path("").unwrap(), "/");
    assert_eq!(target_path("~").unwrap(), "/");
    assert_eq!(target_path("~/in/x.csv").unwrap(), "/in/x.csv");
    assert_eq!(target_path("/etc/passwd").unwrap(), "/etc/passwd");
    for bad in ["..", "../x", "a/../../x", "/.."] {
        assert!(
            target_path(bad).unwrap_err().contains("not accepted"),
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------
// The sink over bytes given in advance, writing through a real session.

use std::sync::Arc;

use crate::sftp::session::TenantInfo;
use crate::sftp::UploadEvent;

struct Ran {
    dir: tempfile::TempDir,
    status: u32,
    /// What the sink answered.
    out: Vec<u8>,
    /// The events, the session dropped.
    events: Vec<UploadEvent>,
}

impl Ran {
    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("acme")
    }
}

async fn sink(command: &str, input: &[u8], max_file_size: u64) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("acme");
    crate::sftp::fs::ensure_tenant_root(&root).unwrap();
    let tenant = Arc::new(TenantInfo {
        name: "acme".into(),
        root: root.clone(),
        max_file_size,
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let (ended, _) = tokio::sync::oneshot::channel();
    let mut sftp = SftpSession::new(
        tenant,
        "hr".into(),
        crate::sftp::fs::Root::open(&root).unwrap(),
        Arc::new(tx),
        ended,
    );
    let ctx = SinkContext {
        tenant: "acme".into(),
        account: "hr".into(),
        max_file_size,
    };
    let cmd = parse_command(command.as_bytes()).unwrap();
    let mut out = Vec::new();
    let status = run_sink(&cmd, &ctx, &mut sftp, input, &mut out).await;
    drop(sftp);
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    Ran {
        dir,
        status,
        out,
        events,
    }
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
async fn a_file_is_complete_after_its_final_nul_and_acknowledged() {
    let r = sink("scp -t .", b"C0644 4 a.csv\nx,y\n\0", 100).await;
    assert_eq!((r.status, r.out.as_slice()), (0, &b"\0\0\0"[..]));
    assert_eq!(r.events, [complete("a.csv")]);
    assert_eq!(std::fs::read(r.root().join("a.csv")).unwrap(), b"x,y\n");
    // The target names the file when it is not a directory.
    let r = sink("scp -t /b.csv", b"C0644 2 other.csv\nab\0", 100).await;
    assert_eq!(
        (r.status, r.events.as_slice()),
        (0, &[complete("b.csv")][..])
    );
}

#[tokio::test]
async fn a_file_cut_off_or_ended_with_an_error_is_never_complete() {
    for input in [
        &b"C0644 10 a.csv\nabc"[..],
        b"C0644 3 a.csv\nabc",
        b"C0644 3 a.csv\nabc\x01scp: a.csv: read error\n",
        b"C0644 3 a.csv\nabc\x02scp: a.csv: read error\n",
    ] {
        let r = sink("scp -t .", input, 100).await;
        assert_eq!(r.status, 1, "{input:?}");
        assert_eq!(r.events, [incomplete("a.csv")], "{input:?}");
    }
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_before_a_byte_and_the_next_goes_on() {
    let r = sink("scp -t .", b"C0644 11 big.csv\nC0644 1 b.csv\nb\0", 10).await;
    assert_eq!(r.status, 1);
    let out = String::from_utf8_lossy(&r.out);
    assert!(
        out.starts_with("\0\x01scp: /big.csv: file too large: 11 bytes, the limit is 10 B")
            && out.contains("(max_file_size)")
            && out.ends_with("\n\0\0"),
        "{out:?}"
    );
    assert!(!r.root().join("big.csv").exists());
    assert_eq!(r.events, [complete("b.csv")]);
}

#[tokio::test]
async fn times_are_applied_and_directories_made_only_under_r() {
    let r = sink(
        "scp -p -t .",
        b"T1600000000 0 1600000001 0\nC0644 1 t.csv\nt\0",
        10,
    )
    .await;
    assert_eq!(r.status, 0);
    let st = std::fs::metadata(r.root().join("t.csv")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((st.mtime(), st.atime()), (1_600_000_000, 1_600_000_001));

    let r = sink("scp -r -t .", b"D0755 0 sub\nC0644 1 x.csv\nx\0E\n", 10).await;
    assert_eq!((r.status, r.out.as_slice()), (0, &b"\0\0\0\0\0"[..]));
    assert_eq!(r.events, [complete("sub/x.csv")]);

    let r = sink("scp -t .", b"D0755 0 sub\n", 10).await;
    assert_eq!(r.status, 1);
    assert!(String::from_utf8_lossy(&r.out).contains("\x02scp: protocol error"));
    assert!(!r.root().join("sub").exists());
    let r = sink("scp -r -t .bak", b"D0755 0 sub\n", 10).await;
    assert_eq!(r.status, 1);
    assert!(String::from_utf8_lossy(&r.out).starts_with("\x02scp: /.bak: a recursive upload"));
}
