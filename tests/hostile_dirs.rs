//! A logged-in account attacking the server's memory and bookkeeping with
//! directories and handles, and attribute changes the server does not make:
//! OPENDIR floods over many channels and sessions (memory stays bounded, the
//! handle limits hold), listings of a 20,000-entry inbox (read lazily, every
//! name once), uploads into a full directory (`max_inbox_entries`), and
//! SETSTAT on directories and `.bak/` (refused, not "OK and nothing").
//! Driven by paramiko (tests/peers/hostile_dirs.py), which can send the raw
//! requests OpenSSH's client cannot.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use tokio::sync::mpsc::unbounded_channel;
use tokio_util::sync::CancellationToken;
use userdrop::sftp::SftpServer;

use crate::util::clients::{assert_ok, client, require_paramiko, run, show};
use crate::util::daemon::{serve_config, Serve};
use crate::util::{repo, SftpEnv, ACME_PASS, ACME_USER, TENANT};

/// The embedded SFTP server alone (no pickup: nothing in the inbox is
/// claimed while a test looks at it), on 127.0.0.1 and a free port.
struct Server {
    port: u16,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(env: &SftpEnv) -> Server {
        let server = SftpServer::new(&env.config).expect("SftpServer::new");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test port");
        let port = listener.local_addr().unwrap().port();
        let (tx, mut events) = unbounded_channel();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            // Drained so that the events of many uploads do not pile up.
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            server
                .run(listener, tx, token)
                .await
                .expect("the server runs");
        });
        Server {
            port,
            shutdown,
            task,
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server stops within 10 s")
            .expect("the server task");
    }
}

/// Runs tests/peers/hostile_dirs.py MODE as acme-hr, by password.
async fn peer(env: &SftpEnv, port: u16, mode: &str, args: &[&str]) -> Output {
    peer_as(env, port, ACME_PASS, mode, args).await
}

/// Runs tests/peers/hostile_dirs.py MODE as acme-hr with `credential`: a
/// password, or `key:FILE`.
async fn peer_as(env: &SftpEnv, port: u16, credential: &str, mode: &str, args: &[&str]) -> Output {
    require_paramiko();
    let mut c = client(env, "python3");
    c.arg(repo().join("tests/peers/hostile_dirs.py"))
        .args([mode, "127.0.0.1", &port.to_string(), ACME_USER, credential])
        .args(args);
    let out = run(c, &format!("hostile_dirs.py {mode}")).await;
    assert_ok(&out, &format!("hostile_dirs.py {mode}"));
    out
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the peer printed no JSON ({e}):\n{}", show(out)))
}

/// `ops` results: each operation's line, "OK" or "ERR <message>".
fn op_results(out: &Output) -> Vec<(String, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (op, rest) = l.split_once(' ').unwrap_or((l, ""));
            (op.to_string(), rest.to_string())
        })
        .collect()
}

fn make_files(dir: &Path, n: usize, name: impl Fn(usize) -> String) -> BTreeSet<String> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let name = name(i);
            std::fs::File::create(dir.join(&name)).unwrap();
            name
        })
        .collect()
}

/// A line of /proc/PID/status, in KiB.
fn proc_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The attack of the issue: one account opens every directory handle it
/// can over several sessions of 8 channels on a 20,000-entry directory and
/// reads them slowly. Before the fix each OPENDIR held the whole listing
/// (255 handles per channel: gigabytes); now a handle costs one fd and one
/// batch, a session holds at most 32 and the account at most
/// `max_handles_per_account` (64 by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opendir_flood_by_one_account_stays_under_100_mb_and_hits_the_handle_limits() {
    let _heavy = crate::util::heavy();
    let env = SftpEnv::new("", "");
    let big = env.root(TENANT).join("big");
    make_files(&big, 20_000, |i| format!("entry-{i:05}.txt"));
    let serve = Serve::start(&serve_config(&env, ""));
    let pid = serve.child.id();
    // By key: each password login costs argon2 19 MiB of scratch memory,
    // which is not what this test measures.
    let key = format!("key:{}", env.key.display());
    let out = peer_as(
        &env,
        serve.port,
        &key,
        "flood",
        &[&pid.to_string(), "/big", "4", "8", "20"],
    )
    .await;
    let r = json_of(&out);
    let hwm_mb = proc_kb(pid, "VmHWM:") / 1024;
    eprintln!("flood: {r}; the server's peak RSS: {hwm_mb} MB");
    assert_eq!(
        r["stopped_for_rss"], false,
        "the server passed 100 MB of RSS during the attack: {r}"
    );
    assert!(
        hwm_mb < 100,
        "the server's peak RSS was {hwm_mb} MB (limit 100): {r}"
    );
    assert_eq!(r["opened"], 64, "max_handles_per_account = 64: {r}");
    let refusals = r["refusals"].as_object().unwrap();
    let said = |words: &[&str]| refusals.keys().any(|m| words.iter().all(|w| m.contains(w)));
    assert!(
        said(&["max_handles_per_account", "64", ACME_USER]),
        "an OPENDIR past the account's limit names it: {r}"
    );
    assert!(
        said(&["one session may hold 32"]),
        "an OPENDIR past a session's limit names it: {r}"
    );
    // Every handle was read: its first batch and 20 more, 128 entries each.
    assert_eq!(r["entries_read"], 64 * 21 * 128, "{r}");
    drop(serve);
}

/// Read lazily, a batch per READDIR, the listing of a large inbox is still
/// complete: every name exactly once.
#[tokio::test]
async fn a_20000_entry_inbox_is_listed_completely_a_batch_at_a_time() {
    let env = SftpEnv::new("", "");
    let root = env.root(TENANT);
    let mut want = make_files(&root, 20_000, |i| format!("u{i:05}.csv"));
    want.extend([".bak".to_string(), "results".to_string()]);
    let server = Server::start(&env).await;
    let r = json_of(&peer(&env, server.port, "list", &["/"]).await);
    let names: Vec<String> = serde_json::from_value(r["names"].clone()).unwrap();
    let seen: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(seen.len(), names.len(), "a name was listed twice");
    assert!(
        seen == want,
        "listed {} names, not the {}",
        seen.len(),
        want.len()
    );
    let largest = r["largest_reply"].as_u64().unwrap();
    assert!(
        (1..=128).contains(&largest),
        "a READDIR reply held {largest} entries"
    );
    server.stop().await;
}

/// `max_inbox_entries`: an upload of a new name into a directory that holds
/// that many entries is refused, naming the limit; rewriting an existing
/// file is not an entry more and passes; a removal makes room again.
#[tokio::test]
async fn uploads_of_new_names_beyond_max_inbox_entries_are_refused() {
    let env = SftpEnv::new("max_inbox_entries = 4", "");
    let root = env.root(TENANT);
    let local = env.write("users.csv", "user_id,email\nU1,ann@acme.example\n");
    let local = local.to_str().unwrap();
    let server = Server::start(&env).await;
    // The root holds .bak/ and results/: two entries of four.
    let put = |name: &str| format!("put:{local}:/{name}");
    let out = peer(
        &env,
        server.port,
        "ops",
        &[&put("a.csv"), &put("b.csv"), &put("c.csv"), &put("a.csv")],
    )
    .await;
    let r = op_results(&out);
    assert_eq!(r[0].1, "OK", "{}", show(&out));
    assert_eq!(r[1].1, "OK", "{}", show(&out));
    assert!(
        r[2].1.starts_with("ERR") && r[2].1.contains("max_inbox_entries") && r[2].1.contains('4'),
        "the fifth entry is refused, naming the limit:\n{}",
        show(&out)
    );
    assert_eq!(
        r[3].1,
        "OK",
        "rewriting a.csv adds no entry:\n{}",
        show(&out)
    );
    assert!(
        !root.join("c.csv").exists(),
        "the refused upload left c.csv"
    );
    std::fs::remove_file(root.join("b.csv")).unwrap();
    let out = peer(&env, server.port, "ops", &[&put("c.csv")]).await;
    assert_eq!(op_results(&out)[0].1, "OK", "{}", show(&out));
    assert!(root.join("c.csv").is_file());
    server.stop().await;
}

fn mtime(path: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().mtime()
}

/// SETSTAT and FSETSTAT on directories and in `.bak/` used to answer OK
/// and do nothing; they are refused now. The times of an inbox file are
/// still set, its permissions still ignored (clients send them along), and
/// rclone's late SETSTAT on a file already taken is still OK.
#[tokio::test]
async fn setstat_on_directories_and_bak_files_is_refused_but_file_times_are_set() {
    use std::os::unix::fs::PermissionsExt;
    let env = SftpEnv::new("", "");
    let root = env.root(TENANT);
    let server = Server::start(&env).await; // makes the root, .bak/, results/
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::write(root.join(".bak/old.csv"), "user_id\nU1\n").unwrap();
    std::fs::write(root.join("users.csv"), "user_id\nU1\n").unwrap();
    let (bak_mtime, sub_mode) = (
        mtime(&root.join(".bak/old.csv")),
        std::fs::metadata(root.join("sub"))
            .unwrap()
            .permissions()
            .mode(),
    );
    let refused = [
        "chmod:/sub:700",
        "utime:/sub",
        "chmod:/:700",
        "utime:/",
        "utime:/.bak/old.csv",
        "chmod:/.bak/old.csv:600",
        "futime:/.bak/old.csv",
        "utime:/results",
        "truncate:/users.csv:0",
    ];
    let allowed = [
        "utime:/users.csv",
        "chmod:/users.csv:600",
        "utime:/gone.csv",
    ];
    let ops: Vec<&str> = refused.iter().chain(allowed.iter()).copied().collect();
    let out = peer(&env, server.port, "ops", &ops).await;
    let r = op_results(&out);
    assert_eq!(r.len(), ops.len(), "{}", show(&out));
    for (op, result) in &r[..refused.len()] {
        assert!(
            result.starts_with("ERR"),
            "{op} must be refused, got {result:?}:\n{}",
            show(&out)
        );
    }
    for (op, result) in &r[refused.len()..] {
        assert_eq!(result, "OK", "{op}:\n{}", show(&out));
    }
    assert_eq!(
        mtime(&root.join(".bak/old.csv")),
        bak_mtime,
        ".bak/ changed"
    );
    assert_eq!(
        std::fs::metadata(root.join("sub"))
            .unwrap()
            .permissions()
            .mode(),
        sub_mode
    );
    assert_eq!(mtime(&root.join("users.csv")), 1_600_000_000);
    assert_eq!(
        std::fs::read(root.join("users.csv")).unwrap(),
        b"user_id\nU1\n"
    );
    server.stop().await;
}
