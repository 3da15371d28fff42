//! The embedded SFTP server against REAL clients: OpenSSH `sftp`/`ssh`
//! (key and password), curl (libssh2), paramiko, lftp, rclone and PuTTY
//! `psftp`. Each test runs its own server in-process on 127.0.0.1:0, drives
//! client programs as subprocesses, and checks what landed on disk and which
//! upload events the server sent. Waits are on events or on the clients,
//! never on timers; a missing client is a failure naming what to install
//! (`scripts/test` installs them all).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use userdrop::sftp::{
    host_key_fingerprint, Reloader, ServerStats, SftpServer, UploadEvent, MAX_AUTH_ATTEMPTS,
};

use crate::util::clients::*;
use crate::util::{
    argon2_hash, pattern_bytes, users_csv, SftpEnv, ACME_PASS, ACME_USER, BETA, BETA_PASS,
    BETA_USER, TENANT,
};

/// How long an expected event may take to arrive.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
/// After the expected events, how long the server must stay silent for the
/// test to conclude no further (unexpected) event is coming.
const QUIET: Duration = Duration::from_millis(400);

// ---------------------------------------------------------------------------
// The server under test

/// An upload event in a comparable form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Complete(String, PathBuf),
    Incomplete(String, PathBuf),
}

fn complete(tenant: &str, path: &str) -> Ev {
    Ev::Complete(tenant.into(), path.into())
}

fn incomplete(tenant: &str, path: &str) -> Ev {
    Ev::Incomplete(tenant.into(), path.into())
}

impl From<UploadEvent> for Ev {
    fn from(e: UploadEvent) -> Ev {
        match e {
            UploadEvent::Complete { tenant, path } => Ev::Complete(tenant, path),
            UploadEvent::Incomplete { tenant, path } => Ev::Incomplete(tenant, path),
        }
    }
}

struct Server {
    port: u16,
    stats: ServerStats,
    reloader: Reloader,
    events: UnboundedReceiver<UploadEvent>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<String>>,
}

impl Server {
    /// A server for `env` on 127.0.0.1 and a free port.
    async fn start(env: &SftpEnv) -> Server {
        // USERDROP_TEST_LOG=debug shows the server's log in a failing test.
        if let Ok(level) = std::env::var("USERDROP_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(format!("userdrop={level}"))
                .with_test_writer()
                .try_init();
        }
        let server = SftpServer::new(&env.config)
            .unwrap_or_else(|e| panic!("SftpServer::new on a fresh data dir: {e}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a test port");
        let port = listener.local_addr().unwrap().port();
        let (stats, reloader) = (server.stats(), server.reloader());
        let (tx, events) = unbounded_channel();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            match server.run(listener, tx, token).await {
                Ok(()) => String::new(),
                Err(e) => format!("{e}"),
            }
        });
        Server {
            port,
            stats,
            reloader,
            events,
            shutdown,
            task: Some(task),
        }
    }

    /// Cancels the server and checks that `run` returns cleanly.
    async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().unwrap();
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Err(_) => panic!("SftpServer::run did not return within 10 s of shutdown"),
            Ok(Err(e)) => panic!("SftpServer::run panicked: {e}"),
            Ok(Ok(err)) => assert!(err.is_empty(), "SftpServer::run failed: {err}"),
        }
    }

    /// Waits until every event of `expected` has arrived, then until the
    /// server is quiet, and returns everything that arrived.
    async fn collect(&mut self, expected: &[Ev]) -> Vec<Ev> {
        let mut got: Vec<Ev> = Vec::new();
        let missing = |got: &Vec<Ev>| {
            let mut left = got.clone();
            expected
                .iter()
                .filter(|e| match left.iter().position(|g| g == *e) {
                    Some(i) => {
                        left.remove(i);
                        false
                    }
                    None => true,
                })
                .cloned()
                .collect::<Vec<_>>()
        };
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        while !missing(&got).is_empty() {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => got.push(e.into()),
                Ok(None) => panic!(
                    "the server closed its event channel; waiting for {:?}, got {got:?}",
                    missing(&got)
                ),
                Err(_) => panic!(
                    "no event {:?} within {EVENT_TIMEOUT:?}; events seen: {got:?}",
                    missing(&got)
                ),
            }
        }
        while let Ok(Some(e)) = tokio::time::timeout(QUIET, self.events.recv()).await {
            got.push(e.into());
        }
        got
    }

    /// Exactly `expected` (in any order) arrive, and nothing else.
    async fn expect(&mut self, expected: &[Ev], what: &str) {
        let mut got = self.collect(expected).await;
        let mut want = expected.to_vec();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{what}: upload events");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

// ---------------------------------------------------------------------------
// The paramiko peer (tests/peers/sftp_paramiko.py): logins, held sessions,
// raw opens and renames.

fn peer_script() -> PathBuf {
    crate::util::repo().join("tests/peers/sftp_paramiko.py")
}

/// Runs the peer in `mode` against 127.0.0.1:`port` to its end; its output
/// and its stdout lines.
async fn peer(env: &SftpEnv, port: u16, mode: &str, args: &[&str]) -> (Output, Vec<String>) {
    require_paramiko();
    let mut c = client(env, "python3");
    c.arg(peer_script())
        .arg(mode)
        .args(["127.0.0.1", &port.to_string()])
        .args(args);
    let out = run(c, &format!("paramiko peer {mode}")).await;
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    (out, lines)
}

/// A paramiko session that stays logged in with a file open for writing,
/// driven line by line (the peer's `hold` mode).
struct Held {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    what: String,
}

impl Held {
    /// Logs in as `user` (with `password`, or with the env's key when it is
    /// empty) and opens `name` in the root for writing.
    async fn start(env: &SftpEnv, port: u16, user: &str, password: &str, name: &str) -> Held {
        use tokio::io::AsyncBufReadExt;
        require_paramiko();
        let mut c = client(env, "python3");
        c.arg(peer_script())
            .args(["hold", "127.0.0.1", &port.to_string(), user, password])
            .arg(&env.key)
            .arg(name)
            .stdin(Stdio::piped());
        let mut child = c.spawn().expect("start the paramiko peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut held = Held {
            child,
            stdin,
            stdout,
            what: format!("{user}'s held session ({name})"),
        };
        let ready = held.line().await;
        assert_eq!(ready, "READY", "{}: logging in", held.what);
        held
    }

    async fn line(&mut self) -> String {
        match tokio::time::timeout(CLIENT_TIMEOUT, self.stdout.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(_) => {
                use tokio::io::AsyncReadExt;
                let mut err = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut err).await;
                }
                panic!("{}: the peer ended early:\n{err}", self.what)
            }
            Err(_) => panic!("{}: no answer within {CLIENT_TIMEOUT:?}", self.what),
        }
    }

    /// Sends one command, returns the peer's answer.
    async fn ask(&mut self, command: &str) -> String {
        use tokio::io::AsyncWriteExt;
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{}: {command}: {e}", self.what));
        self.stdin.flush().await.unwrap();
        self.line().await
    }

    /// The session still writes.
    async fn expect_alive(&mut self, when: &str) {
        let answer = self.ask("write").await;
        assert_eq!(answer, "OK", "{} {when}: a write failed", self.what);
    }

    /// The server disconnected the session, saying `reason`, and writes fail.
    async fn expect_closed(&mut self, reason: &str, when: &str) {
        let answer = self.ask("closed").await;
        assert!(
            answer.starts_with("CLOSED") && answer.contains(reason),
            "{} {when}: expected the server to disconnect it saying {reason:?}, got {answer:?}",
            self.what
        );
        let answer = self.ask("write").await;
        assert!(
            answer.starts_with("ERR"),
            "{} {when}: a write after the disconnect answered {answer:?}",
            self.what
        );
    }
}

/// Asserts `path` holds exactly `want`, without printing megabytes.
fn assert_file(path: &Path, want: &[u8], what: &str) {
    let got = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{what}: {} is not readable: {e}", path.display()));
    if got != want {
        let first_diff = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} holds {} bytes, expected {} bytes; first differing byte at {:?}",
            path.display(),
            got.len(),
            want.len(),
            first_diff
        );
    }
}

/// The names an sftp session's `ls` printed: its stdout without the echoed
/// `sftp>` command lines, each entry reduced to its last path component.
fn listed_names(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with("sftp>") && !l.starts_with("Remote working directory:"))
        .flat_map(|l| l.split_whitespace())
        .map(|w| w.rsplit('/').next().unwrap_or(w).to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// An sftp session's stdout without its echoed `sftp>` command lines.
fn replies(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with("sftp>"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn exists_at_all(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Every file and directory under `dir` (relative paths, files with their
/// contents), skipping the subtrees in `skip`.
fn snapshot(dir: &Path, skip: &[&Path]) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    fn walk(base: &Path, dir: &Path, skip: &[&Path], out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if skip.iter().any(|s| p == *s) {
                continue;
            }
            let rel = p.strip_prefix(base).unwrap().to_path_buf();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                out.insert(rel, None);
                walk(base, &p, skip, out);
            } else if meta.file_type().is_symlink() {
                out.insert(rel, Some(b"-> symlink".to_vec()));
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, skip, &mut out);
    out
}

/// A name no other run uses, for probes of the real filesystem (/etc, /tmp).
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("userdrop-{tag}-{}-{nanos}", std::process::id())
}

// ---------------------------------------------------------------------------
// 1. Every client uploads into the tenant root

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_sftp_with_key_uploads_a_complete_file() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let data = users_csv(2000, "key");
    env.write("local.csv", &data);

    let out = sftp_key(&env, server.port, "put local.csv users.csv\n", &[]).await;
    assert_ok(&out, "sftp put with a key");
    assert_file(
        &env.root(TENANT).join("users.csv"),
        data.as_bytes(),
        "sftp put",
    );
    server
        .expect(&[complete(TENANT, "users.csv")], "sftp put with a key")
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssh_sftp_with_password_uploads_a_complete_file() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let data = users_csv(2000, "pw");
    env.write("local.csv", &data);

    let out = sftp_password(
        &env,
        server.port,
        ACME_USER,
        ACME_PASS,
        "put local.csv users.csv\nls -l users.csv\n",
        &[],
    )
    .await;
    assert_ok(&out, "sshpass + sftp put with a password");
    assert_file(
        &env.root(TENANT).join("users.csv"),
        data.as_bytes(),
        "sftp put (password)",
    );
    server
        .expect(&[complete(TENANT, "users.csv")], "sftp put with a password")
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_uploads_a_complete_file() {
    require("curl", "curl");
    let version = std::process::Command::new("curl")
        .arg("-V")
        .output()
        .expect("curl -V");
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(
        version
            .lines()
            .any(|l| l.starts_with("Protocols:") && l.split_whitespace().any(|p| p == "sftp")),
        "this curl has no sftp support (Debian's curl has it through libssh2):\n{version}"
    );
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let data = users_csv(3000, "curl");
    let local = env.write("local.csv", &data);

    let mut c = client(&env, "curl");
    c.args(["-sS", "-k", "--fail", "-u"])
        .arg(format!("{ACME_USER}:{ACME_PASS}"))
        .arg("-T")
        .arg(&local)
        .arg(format!("sftp://127.0.0.1:{}/users.csv", server.port));
    let out = run(c, "curl -T sftp://").await;
    assert_ok(&out, "curl -T sftp://");
    assert_file(
        &env.root(TENANT).join("users.csv"),
        data.as_bytes(),
        "curl upload",
    );
    server
        .expect(&[complete(TENANT, "users.csv")], "curl upload")
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paramiko_put_uploads_a_complete_file() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let data = users_csv(3000, "paramiko");
    env.write("local.csv", &data);

    let out = paramiko(&env, server.port, "put", &["local.csv", "users.csv"]).await;
    assert_ok(&out, "paramiko SFTPClient.put");
    assert_file(
        &env.root(TENANT).join("users.csv"),
        data.as_bytes(),
        "paramiko put",
    );
    server
        .expect(&[complete(TENANT, "users.csv")], "paramiko put")
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paramiko_part_then_rename_completes_only_the_final_name() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let a = users_csv(1500, "a");
    let b = users_csv(1700, "b");
    env.write("a.csv", &a);
    env.write("b.csv", &b);

    // a.csv.part --rename--> a.csv; b.csv.part --posix-rename@openssh.com--> b.csv
    let out = paramiko(
        &env,
        server.port,
        "part",
        &["a.csv", "a.csv", "rename", "b.csv", "b.csv", "posix"],
    )
    .await;
    assert_ok(&out, "paramiko put NAME.part + rename");
    let root = env.root(TENANT);
    assert_file(&root.join("a.csv"), a.as_bytes(), "a.csv after rename");
    assert_file(
        &root.join("b.csv"),
        b.as_bytes(),
        "b.csv after posix-rename",
    );
    assert!(!exists_at_all(&root.join("a.csv.part")), "a.csv.part left");
    assert!(!exists_at_all(&root.join("b.csv.part")), "b.csv.part left");
    server
        .expect(
            &[complete(TENANT, "a.csv"), complete(TENANT, "b.csv")],
            "paramiko .part uploads: one Complete per final name, none for .part",
        )
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lftp_put_uploads_a_complete_file() {
    require("lftp", "lftp");
    require("ssh", "openssh-client");
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let data = users_csv(2500, "lftp");
    env.write("local.csv", &data);

    let mut c = client(&env, "lftp");
    c.arg("-c").arg(format!(
        "set sftp:auto-confirm yes; \
         set sftp:connect-program \"ssh -a -x -F /dev/null -o StrictHostKeyChecking=no \
         -o UserKnownHostsFile=/dev/null -o PubkeyAuthentication=no\"; \
         set net:max-retries 1; set net:timeout 15; \
         open -u {ACME_USER},{ACME_PASS} sftp://127.0.0.1:{port}; \
         put local.csv -o users.csv",
        port = server.port
    ));
    let out = run(c, "lftp put").await;
    assert_ok(&out, "lftp put");
    assert_file(
        &env.root(TENANT).join("users.csv"),
        data.as_bytes(),
        "lftp put",
    );
    server
        .expect(&[complete(TENANT, "users.csv")], "lftp put")
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_copyto_uploads_a_complete_file_despite_its_late_setstat() {
    require("rclone", "rclone");
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let data = users_csv(2500, "rclone");
    let local = env.write("local.csv", &data);
    // rclone keeps the source's modification time: a SETSTAT after CLOSE,
    // which must succeed (rclone fails the copy otherwise).
    let mtime = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(&local)
        .unwrap()
        .set_modified(mtime)
        .unwrap();

    let mut obscure = client(&env, "rclone");
    obscure.args(["obscure", ACME_PASS]);
    let obscured = run(obscure, "rclone obscure").await;
    assert_ok(&obscured, "rclone obscure");
    let obscured = String::from_utf8_lossy(&obscured.stdout).trim().to_string();

    let mut c = client(&env, "rclone");
    c.arg("copyto")
        .arg(&local)
        .arg(":sftp:users.csv")
        .args(["--sftp-host", "127.0.0.1", "--sftp-port"])
        .arg(server.port.to_string())
        .args(["--sftp-user", ACME_USER, "--sftp-pass", &obscured])
        .arg("--config")
        .arg(env.home.join("rclone.conf"))
        .args(["--retries", "1", "--low-level-retries", "1", "-v"]);
    let out = run(c, "rclone copyto").await;
    assert_ok(&out, "rclone copyto :sftp:users.csv");
    let target = env.root(TENANT).join("users.csv");
    assert_file(&target, data.as_bytes(), "rclone copyto");
    server
        .expect(&[complete(TENANT, "users.csv")], "rclone copyto")
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psftp_filepart_then_rename_completes_only_the_final_name() {
    require("psftp", "putty-tools");
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let (fingerprint, _) = host_key_fingerprint(&env.config.data_dir)
        .unwrap_or_else(|e| panic!("host_key_fingerprint after start: {e}"));
    let data = users_csv(2500, "psftp");
    env.write("local.csv", &data);
    // How WinSCP (and psftp scripts modelled on it) upload: to NAME.filepart,
    // then rename.
    let script = batch_file(
        &env,
        "put local.csv users.csv.filepart\nmv users.csv.filepart users.csv\nls\n",
    );

    let mut c = client(&env, "psftp");
    c.arg("-P")
        .arg(server.port.to_string())
        .args(["-pw", ACME_PASS, "-batch", "-b"])
        .arg(&script)
        .args(["-hostkey", &fingerprint])
        .arg(format!("{ACME_USER}@127.0.0.1"));
    let out = run(c, "psftp").await;
    assert_ok(&out, "psftp put .filepart + mv (host key pinned)");
    let root = env.root(TENANT);
    assert_file(&root.join("users.csv"), data.as_bytes(), "psftp upload");
    assert!(
        !exists_at_all(&root.join("users.csv.filepart")),
        "users.csv.filepart left behind"
    );
    server
        .expect(
            &[complete(TENANT, "users.csv")],
            "psftp .filepart upload: one Complete for users.csv, none for the .filepart",
        )
        .await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 2. A client killed mid-upload leaves an incomplete file, which resumes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_upload_is_incomplete_and_reput_completes_it() {
    require("sftp", "openssh-client");
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    const SIZE: usize = 50 << 20;
    let data = pattern_bytes(SIZE, 7);
    env.write("big.local", &data);
    let target = env.root(TENANT).join("big.csv");

    // Throttled (-l, Kbit/s: ~2 MB/s) so the kill lands mid-file, in its own
    // process group so that the ssh child sftp spawned dies with it and the
    // connection drops with no CLOSE.
    let mut c = client(&env, "sftp");
    c.args(ssh_common())
        .args(key_auth(&env))
        .args(["-l", "16000", "-P"])
        .arg(server.port.to_string())
        .arg("-b")
        .arg(batch_file(&env, "put big.local big.csv\n"))
        .arg(format!("{ACME_USER}@127.0.0.1"))
        .process_group(0);
    let mut child = c.spawn().expect("start sftp");
    let pid = child.id().expect("sftp pid");
    let deadline = std::time::Instant::now() + CLIENT_TIMEOUT;
    loop {
        let len = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
        if len >= 1 << 20 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().await.unwrap();
            panic!(
                "sftp ended ({status}) before 1 MiB of big.csv was on disk ({len} bytes):\n{}",
                show(&out)
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "big.csv never reached 1 MiB on disk ({len} bytes)"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // bash's kill builtin signals a whole process group (no procps needed).
    let killed = std::process::Command::new("bash")
        .args(["-c", &format!("kill -KILL -- -{pid}")])
        .status()
        .expect("run bash -c kill");
    assert!(killed.success(), "kill -9 the sftp process group");
    let status = tokio::time::timeout(CLIENT_TIMEOUT, child.wait())
        .await
        .expect("killed sftp exits")
        .unwrap();
    assert!(!status.success(), "sftp was killed");

    server
        .expect(
            &[incomplete(TENANT, "big.csv")],
            "an upload cut off by kill -9: Incomplete, never Complete",
        )
        .await;
    let partial = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    assert!(
        partial < SIZE as u64,
        "big.csv is not partial after the kill ({partial} bytes)"
    );
    assert_eq!(
        &std::fs::read(&target).unwrap()[..],
        &data[..partial as usize],
        "the partial big.csv holds the file's first {partial} bytes"
    );

    let out = sftp_key(&env, server.port, "reput big.local big.csv\n", &[]).await;
    assert_ok(&out, "sftp reput (resume)");
    assert_file(&target, &data, "big.csv after reput");
    server
        .expect(
            &[complete(TENANT, "big.csv")],
            "the resumed upload completes once",
        )
        .await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 3. Hostile clients stay in their root

/// Plants what the jail tests probe: `<data>/etc/` (where a naive
/// `root + "/../../etc/x"` would land), a secret next to the tenant roots,
/// a file in beta's root, a marker in acme's root.
fn plant_neighbours(env: &SftpEnv) {
    let data = &env.config.data_dir;
    std::fs::create_dir_all(data.join("etc")).unwrap();
    std::fs::write(data.join("tenants").join("secret.txt"), "outside the roots").unwrap();
    std::fs::write(env.root(BETA).join("b.csv"), "beta's file").unwrap();
    std::fs::write(env.root(TENANT).join("marker.csv"), "acme's marker").unwrap();
    std::fs::create_dir_all(env.path("local")).unwrap();
    std::fs::create_dir_all(env.path("dl")).unwrap();
    std::fs::write(env.path("local/x.csv"), "id\n1\n").unwrap();
}

/// Everything under the temp dir that is not acme's root nor the client's
/// own files.
fn outside_acme(env: &SftpEnv) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let root = env.root(TENANT);
    let home = env.home.clone();
    let dl = env.path("dl");
    let skip = [root.as_path(), home.as_path(), dl.as_path()];
    snapshot(env.dir.path(), &skip)
        .into_iter()
        .filter(|(p, _)| {
            let name = p.to_string_lossy();
            !(name.starts_with("batch") && name.ends_with(".txt"))
        })
        .collect()
}

/// Events for files inside acme's root only, each naming an existing file.
fn assert_events_inside(env: &SftpEnv, events: &[Ev]) {
    for e in events {
        let (Ev::Complete(t, p) | Ev::Incomplete(t, p)) = e;
        assert_eq!(t, TENANT, "event for another tenant: {e:?}");
        assert!(
            p.is_relative()
                && p.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_))),
            "event path is not a plain path inside the root: {e:?}"
        );
        if let Ev::Complete(..) = e {
            assert!(
                env.root(TENANT).join(p).is_file(),
                "Complete for a file that is not in the root: {e:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotdot_and_absolute_paths_stay_inside_the_root() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    plant_neighbours(&env);
    let evil = unique("evil");
    let before = outside_acme(&env);

    let script = format!(
        "-put local/x.csv ../../etc/{evil}\n\
         -put local/x.csv /etc/{evil}\n\
         -put local/x.csv /tmp/{evil}\n\
         -put local/x.csv ../../../../../../../../../tmp/{evil}\n\
         -put local/x.csv ../escape.csv\n\
         -put local/x.csv ../beta/escape.csv\n\
         -put local/x.csv /../beta/escape2.csv\n\
         -mkdir ../newdir\n\
         -mkdir /../../newdir2\n\
         -rename marker.csv ../moved.csv\n\
         -rm ../secret.txt\n\
         -rm ../beta/b.csv\n\
         -cd ..\n\
         pwd\n\
         -cd /\n\
         -cd ../../..\n\
         pwd\n\
         ls -1a\n\
         -get /etc/passwd dl/passwd\n\
         -get ../../../../../../etc/passwd dl/passwd2\n\
         -get ../secret.txt dl/secret\n\
         -get /../secret.txt dl/secret2\n\
         -get ../beta/b.csv dl/b\n\
         -get ../../userdrop.toml dl/config\n"
    );
    let out = sftp_key(&env, server.port, &script, &[]).await;
    assert_ok(&out, "sftp session of traversal attempts");
    let stdout = String::from_utf8_lossy(&out.stdout);

    assert_eq!(
        outside_acme(&env),
        before,
        "files outside acme's root changed:\n{}",
        show(&out)
    );
    for p in [format!("/etc/{evil}"), format!("/tmp/{evil}")] {
        assert!(!exists_at_all(Path::new(&p)), "{p} was written");
    }
    let downloads: Vec<_> = std::fs::read_dir(env.path("dl")).unwrap().collect();
    assert!(
        downloads.is_empty(),
        "a path outside the root was read: {downloads:?}\n{}",
        show(&out)
    );
    let pwds: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("Remote working directory:"))
        .collect();
    assert_eq!(
        pwds,
        ["Remote working directory: /"; 2],
        "`cd ..` from the root stays at /:\n{}",
        show(&out)
    );
    let names = listed_names(&out);
    assert!(
        names.iter().any(|n| n == "marker.csv" || n == "moved.csv"),
        "`ls` at / lists acme's root:\n{}",
        show(&out)
    );
    for name in [
        "secret.txt",
        "tenants",
        "beta",
        "b.csv",
        "userdrop.toml",
        "passwd",
    ] {
        assert!(
            !names.iter().any(|n| n == name),
            "`ls` at / shows {name}, which is outside acme's root:\n{}",
            show(&out)
        );
    }
    let events = server.collect(&[]).await;
    assert_events_inside(&env, &events);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_traversal_names_are_literal_files_in_the_root() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    plant_neighbours(&env);
    let before = outside_acme(&env);

    let out = sftp_key(
        &env,
        server.port,
        "put local/x.csv ..%2f..%2fx\n\
         put local/x.csv %2e%2e%2fy.csv\n\
         get ..%2f..%2fx dl/x\n",
        &[],
    )
    .await;
    assert_ok(&out, "sftp put of %2f-encoded names");
    let root = env.root(TENANT);
    let x = std::fs::read(env.path("local/x.csv")).unwrap();
    assert_file(&root.join("..%2f..%2fx"), &x, "literal ..%2f..%2fx");
    assert_file(&root.join("%2e%2e%2fy.csv"), &x, "literal %2e%2e%2fy.csv");
    assert_file(&env.path("dl/x"), &x, "reading ..%2f..%2fx back");
    assert_eq!(outside_acme(&env), before, "files outside the root changed");
    // `..%2f..%2fx` starts with "." (a temp name): no Complete for it.
    server
        .expect(
            &[complete(TENANT, "%2e%2e%2fy.csv")],
            "encoded names are plain file names",
        )
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_planted_in_the_root_are_not_followed() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    plant_neighbours(&env);
    let outside = env.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.csv"), "outside secret").unwrap();
    let outside_file = env.path("outside_file.csv");
    std::fs::write(&outside_file, "outside file").unwrap();
    let root = env.root(TENANT);
    std::os::unix::fs::symlink(&outside, root.join("linkdir")).unwrap();
    std::os::unix::fs::symlink(&outside_file, root.join("linkfile.csv")).unwrap();
    std::os::unix::fs::symlink(env.root(BETA), root.join("linkbeta")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd")).unwrap();
    let before = outside_acme(&env);

    let out = sftp_key(
        &env,
        server.port,
        "-get linkfile.csv dl/f\n\
         -get linkdir/secret.csv dl/g\n\
         -get linkbeta/b.csv dl/h\n\
         -get passwd dl/p\n\
         -ls linkdir\n\
         -ls linkbeta\n\
         -put local/x.csv linkfile.csv\n\
         -put local/x.csv linkdir/evil.csv\n\
         -put local/x.csv linkbeta/evil.csv\n\
         -cd linkdir\n\
         -put local/x.csv evil2.csv\n",
        &[],
    )
    .await;
    assert_ok(&out, "sftp session through planted symlinks");
    assert_eq!(
        outside_acme(&env),
        before,
        "a write went through a symlink out of the root:\n{}",
        show(&out)
    );
    let downloads: Vec<_> = std::fs::read_dir(env.path("dl")).unwrap().collect();
    assert!(
        downloads.is_empty(),
        "a read followed a symlink out of the root: {downloads:?}\n{}",
        show(&out)
    );
    let stdout = replies(&out);
    for leaked in ["secret.csv", "b.csv", "root:x:0:0"] {
        assert!(
            !stdout.contains(leaked),
            "listing through a symlink shows {leaked}:\n{}",
            show(&out)
        );
    }
    let events = server.collect(&[]).await;
    assert_events_inside(&env, &events);
    for e in &events {
        let (Ev::Complete(_, p) | Ev::Incomplete(_, p)) = e;
        assert!(
            !p.starts_with("linkdir") && !p.starts_with("linkbeta"),
            "an event for a path through a symlink: {e:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_create_symlinks() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    plant_neighbours(&env);
    let root = env.root(TENANT);

    for (cmd, link) in [
        ("ln -s marker.csv link1", "link1"),
        ("ln -s /etc/passwd link2", "link2"),
        ("ln -s ../secret.txt link3", "link3"),
        ("symlink ../../.. link4", "link4"),
    ] {
        let out = sftp_key(&env, server.port, &format!("{cmd}\n"), &[]).await;
        assert_failed(&out, &format!("sftp `{cmd}`"));
        assert!(
            !exists_at_all(&root.join(link)),
            "`{cmd}` created {link} in the root:\n{}",
            show(&out)
        );
    }
    server.expect(&[], "refused symlinks").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_reach_each_other() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    plant_neighbours(&env);
    let beta_before = snapshot(&env.root(BETA), &[]);

    // acme-hr probes beta's root every way it can.
    let out = sftp_key(
        &env,
        server.port,
        "ls -1a /\n\
         -get /beta/b.csv dl/1\n\
         -get ../beta/b.csv dl/2\n\
         -get /../beta/b.csv dl/3\n\
         -get ../../tenants/beta/b.csv dl/4\n\
         -put local/x.csv ../beta/from-acme.csv\n\
         -rm ../beta/b.csv\n\
         -rename marker.csv ../beta/marker.csv\n\
         -ls ../beta\n",
        &[],
    )
    .await;
    assert_ok(&out, "acme-hr's session");
    assert!(
        !replies(&out).contains("b.csv"),
        "acme-hr sees beta's b.csv:\n{}",
        show(&out)
    );
    assert!(
        std::fs::read_dir(env.path("dl")).unwrap().next().is_none(),
        "acme-hr read beta's file:\n{}",
        show(&out)
    );
    assert_eq!(
        snapshot(&env.root(BETA), &[]),
        beta_before,
        "acme-hr changed beta's root:\n{}",
        show(&out)
    );

    // beta-hr sees its own root only, and its uploads are beta's.
    let acme_before = snapshot(&env.root(TENANT), &[]);
    env.write("beta-local.csv", users_csv(10, "beta"));
    let out = sftp_password(
        &env,
        server.port,
        BETA_USER,
        BETA_PASS,
        "put beta-local.csv beta.csv\nls -1a /\n-get /marker.csv dl/m\n-get ../acme/marker.csv dl/m2\n",
        &[],
    )
    .await;
    assert_ok(&out, "beta-hr's session");
    let names = listed_names(&out);
    assert!(
        names.iter().any(|n| n == "b.csv") && names.iter().any(|n| n == "beta.csv"),
        "beta-hr's / lists b.csv and beta.csv:\n{}",
        show(&out)
    );
    assert!(
        !names.iter().any(|n| n == "marker.csv"),
        "beta-hr sees acme's marker.csv:\n{}",
        show(&out)
    );
    assert!(
        !env.path("dl/m").exists() && !env.path("dl/m2").exists(),
        "beta-hr read acme's file"
    );
    assert_file(
        &env.root(BETA).join("beta.csv"),
        users_csv(10, "beta").as_bytes(),
        "beta-hr's upload",
    );
    assert_eq!(
        snapshot(&env.root(TENANT), &[]),
        acme_before,
        "beta-hr changed acme's root"
    );

    // One tenant's password does not open another tenant's account.
    let out = sftp_password(&env, server.port, ACME_USER, BETA_PASS, "ls\n", &[]).await;
    assert_failed(&out, "acme-hr with beta-hr's password");

    let events = server.collect(&[complete(BETA, "beta.csv")]).await;
    assert_eq!(
        events,
        [complete(BETA, "beta.csv")],
        "only beta's upload, as beta's"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bak_and_results_are_readable_and_deletable_but_not_writable() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    plant_neighbours(&env);
    let root = env.root(TENANT);
    for d in [".bak", "results"] {
        assert!(
            root.join(d).is_dir(),
            "SftpServer::new did not create {d}/ in the tenant root"
        );
    }
    let old = b"user_id\nU1\n";
    let summary = br#"{"outcome":"ok"}"#;
    std::fs::write(root.join(".bak/old.csv"), old).unwrap();
    std::fs::write(root.join("results/r.summary.json"), summary).unwrap();

    // Writes, each in its own session so that each one's failure shows.
    for cmd in [
        "put local/x.csv .bak/new.csv",
        "put local/x.csv results/new.csv",
        "put local/x.csv /results/../.bak/new2.csv",
        "put local/x.csv .bak/old.csv",
        "rename marker.csv .bak/marker.csv",
        "rename marker.csv results/marker.csv",
        "mkdir .bak/sub",
        "mkdir results/sub",
    ] {
        let out = sftp_key(&env, server.port, &format!("{cmd}\n"), &[]).await;
        assert_failed(&out, &format!("sftp `{cmd}`"));
    }
    let names = |d: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(".bak"), ["old.csv"], ".bak/ after write attempts");
    assert_eq!(
        names("results"),
        ["r.summary.json"],
        "results/ after write attempts"
    );
    assert_file(
        &root.join(".bak/old.csv"),
        old,
        ".bak/old.csv not overwritten",
    );
    assert!(root.join("marker.csv").is_file(), "marker.csv moved");

    // Reading and deleting work.
    let out = sftp_key(
        &env,
        server.port,
        "ls -1a .bak\n\
         get .bak/old.csv dl/old.csv\n\
         get results/r.summary.json dl/r.json\n\
         rm .bak/old.csv\n\
         rm results/r.summary.json\n",
        &[],
    )
    .await;
    assert_ok(&out, "reading and deleting in .bak/ and results/");
    assert!(
        listed_names(&out).iter().any(|n| n == "old.csv"),
        "`ls .bak` lists old.csv:\n{}",
        show(&out)
    );
    assert_file(&env.path("dl/old.csv"), old, "get .bak/old.csv");
    assert_file(
        &env.path("dl/r.json"),
        summary,
        "get results/r.summary.json",
    );
    assert!(names(".bak").is_empty(), ".bak/old.csv deleted");
    assert!(
        names("results").is_empty(),
        "results/r.summary.json deleted"
    );
    server.expect(&[], "nothing was uploaded").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_beyond_max_file_size_fails() {
    let env = SftpEnv::new("", "max_file_size = \"1KiB\"");
    let mut server = Server::start(&env).await;
    let root = env.root(TENANT);
    let small = pattern_bytes(1024, 1);
    let big = pattern_bytes(64 * 1024, 2);
    env.write("small.csv", &small);
    env.write("big.csv", &big);

    let out = sftp_key(&env, server.port, "put small.csv small.csv\n", &[]).await;
    assert_ok(&out, "a 1 KiB upload with max_file_size = 1KiB");
    assert_file(&root.join("small.csv"), &small, "1 KiB upload");

    let out = sftp_key(&env, server.port, "put big.csv big.csv\n", &[]).await;
    assert_failed(&out, "a 64 KiB upload with max_file_size = 1KiB");
    let on_disk = std::fs::metadata(root.join("big.csv"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(
        on_disk <= 1024,
        "big.csv holds {on_disk} bytes, beyond max_file_size"
    );

    let out = paramiko(&env, server.port, "put", &["big.csv", "big2.csv"]).await;
    assert_failed(&out, "paramiko put of 64 KiB with max_file_size = 1KiB");

    let events = server.collect(&[complete(TENANT, "small.csv")]).await;
    let completes: Vec<&Ev> = events
        .iter()
        .filter(|e| matches!(e, Ev::Complete(..)))
        .collect();
    assert_eq!(
        completes,
        [&complete(TENANT, "small.csv")],
        "a refused oversize upload must never be Complete; events: {events:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_shell_requests_are_refused() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let probe = std::env::temp_dir().join(unique("exec"));
    let probe_str = probe.to_string_lossy().into_owned();

    // exec
    let touch = format!("touch {probe_str}; echo EXECUTED; ls /");
    let out = run(
        ssh_key(&env, server.port, &[], &[&touch]),
        "ssh user@host COMMAND",
    )
    .await;
    assert_failed(&out, "ssh exec");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("EXECUTED"),
        "the exec request ran:\n{}",
        show(&out)
    );
    assert!(!probe.exists(), "the exec request created {probe_str}");

    // An interactive shell with a pty (-tt: pty-req, then shell) and
    // without (-T: the shell request alone), commands on stdin.
    for option in ["-tt", "-T"] {
        let mut c = ssh_key(&env, server.port, &[option], &[]);
        c.stdin(Stdio::piped());
        let mut child = c.spawn().expect("start ssh for a shell");
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().unwrap();
            let _ = stdin
                .write_all(format!("touch {probe_str}\necho SHELL_RAN\nexit\n").as_bytes())
                .await;
        }
        let out =
            match tokio::time::timeout(Duration::from_secs(20), child.wait_with_output()).await {
                Ok(o) => o.unwrap(),
                Err(_) => panic!("ssh {option} was not refused: the session stayed open for 20 s"),
            };
        assert_failed(&out, &format!("ssh {option} (shell)"));
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("SHELL_RAN"),
            "ssh {option}: the shell ran:\n{}",
            show(&out)
        );
        assert!(
            !probe.exists(),
            "ssh {option}: the shell created {probe_str}"
        );
    }

    // a subsystem other than sftp
    let out = run(
        ssh_key(&env, server.port, &["-s"], &["netconf"]),
        "ssh -s netconf",
    )
    .await;
    assert_failed(&out, "ssh -s netconf (a subsystem other than sftp)");

    server.expect(&[], "no uploads").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_forwarding_is_refused() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    // A target the forwarding would reach: it must never see a connection.
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    target.set_nonblocking(true).unwrap();
    let target_addr = format!("127.0.0.1:{}", target.local_addr().unwrap().port());

    // -W: a direct-tcpip channel, opened at once.
    let out = run(
        ssh_key(&env, server.port, &["-W", &target_addr], &[]),
        "ssh -W",
    )
    .await;
    assert_failed(&out, "ssh -W (direct-tcpip)");

    // -R with ExitOnForwardFailure: a tcpip-forward global request.
    let remote = format!("0:{target_addr}");
    let out = run(
        ssh_key(
            &env,
            server.port,
            &["-N", "-o", "ExitOnForwardFailure=yes", "-R", &remote],
            &[],
        ),
        "ssh -N -R",
    )
    .await;
    assert_failed(&out, "ssh -N -R (remote forwarding)");

    match target.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, from)) => panic!("a forwarded connection reached the target from {from}"),
        Err(e) => panic!("accept on the target: {e}"),
    }
    server.expect(&[], "no uploads").await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 4. Brute force

/// `n` logins with wrong passwords for `user` from 127.0.0.1, all at once
/// (each rejection takes the server's rejection time); each must fail.
async fn wrong_passwords(env: &SftpEnv, port: u16, user: &str, n: usize) -> Vec<Output> {
    require("sshpass", "sshpass");
    require("sftp", "openssh-client");
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..n {
        let mut c = client(env, "sshpass");
        c.args(["-p", &format!("wrong-{i}"), "sftp", "-o", "BatchMode=no"])
            .args(ssh_common())
            .args(password_auth())
            .args(["-o", "BindAddress=127.0.0.1", "-P", &port.to_string()])
            .args(["-b", "/dev/null"])
            .arg(format!("{user}@127.0.0.1"));
        attempts.spawn(run(c, "sftp with a wrong password"));
    }
    let mut outs = Vec::new();
    while let Some(out) = attempts.join_next().await {
        let out = out.expect("attempt task");
        assert_failed(&out, &format!("{user} with a wrong password"));
        outs.push(out);
    }
    outs
}

/// The median of some durations (seconds).
fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty(), "no timings");
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_and_wrong_password_look_the_same() {
    // No ban may interfere with the 12 failures below.
    let env = SftpEnv::new("ban_after = 1000", "");
    let mut server = Server::start(&env).await;
    let port = server.port;

    // What the client is told, and the work the server does: one argon2
    // verification each (an unknown user's against a dummy hash).
    let before = server.stats.password_verifications();
    let wrong = wrong_passwords(&env, port, ACME_USER, 1).await;
    let after_wrong = server.stats.password_verifications();
    let unknown = wrong_passwords(&env, port, "nobody-here", 1).await;
    let after_unknown = server.stats.password_verifications();
    let (wrong, unknown) = (&wrong[0], &unknown[0]);
    assert_eq!(
        wrong.status.code(),
        unknown.status.code(),
        "exit codes differ:\nwrong password: {}\nunknown user: {}",
        show(wrong),
        show(unknown)
    );
    assert_eq!(
        String::from_utf8_lossy(&wrong.stderr).replace(ACME_USER, "USER"),
        String::from_utf8_lossy(&unknown.stderr).replace("nobody-here", "USER"),
        "what the client is told differs between a wrong password and an unknown user"
    );
    assert_eq!(
        after_wrong - before,
        1,
        "argon2 verifications for one wrong password"
    );
    assert_eq!(
        after_unknown - after_wrong,
        1,
        "argon2 verifications for one unknown user (the dummy hash): the same work"
    );

    // The time, as a client measures it from its request to the refusal:
    // interleaved tries on fresh connections, medians compared with bounds
    // wide enough for a loaded 2-core box, and both pay the 500 ms pause.
    const ROUNDS: usize = 5;
    let (out, lines) = peer(
        &env,
        port,
        "timing",
        &[&ROUNDS.to_string(), ACME_USER, "nobody-here"],
    )
    .await;
    assert_ok(&out, "paramiko timing of wrong password vs unknown user");
    let took: BTreeMap<String, Vec<f64>> = serde_json::from_str(lines.last().unwrap())
        .unwrap_or_else(|e| panic!("timing output: {e}\n{}", show(&out)));
    let wrong_s = median(took[ACME_USER].clone());
    let unknown_s = median(took["nobody-here"].clone());
    for (what, t) in [("wrong password", wrong_s), ("unknown user", unknown_s)] {
        assert!(
            t >= 0.45,
            "a refused {what} took {t:.3} s (median): less than the 500 ms pause; {took:?}"
        );
    }
    let ratio = unknown_s / wrong_s;
    assert!(
        (0.5..=2.0).contains(&ratio),
        "unknown user {unknown_s:.3} s vs wrong password {wrong_s:.3} s (medians): \
         ratio {ratio:.2} outside 0.5..2; {took:?}"
    );
    assert_eq!(
        server.stats.password_verifications() - after_unknown,
        2 * ROUNDS as u64,
        "one argon2 verification per timed try, known user or not"
    );
    server.expect(&[], "no uploads").await;
    server.stop().await;
}

/// `sftp -b SCRIPT` as `user` by password, OpenSSH's own prompts answered
/// in turn by `passwords` (through SSH_ASKPASS): several attempts on ONE
/// connection. Returns the output and how many prompts were answered.
async fn sftp_password_attempts(
    env: &SftpEnv,
    port: u16,
    user: &str,
    passwords: &[&str],
    script: &str,
) -> (Output, usize) {
    use std::os::unix::fs::PermissionsExt;
    require("sftp", "openssh-client");
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let i = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = env.path(&format!("askpass{i}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("passwords"), passwords.join("\n") + "\n").unwrap();
    let askpass = dir.join("askpass.sh");
    std::fs::write(
        &askpass,
        format!(
            "#!/bin/sh\nd='{}'\nn=$(cat \"$d/count\" 2>/dev/null || echo 0)\nn=$((n+1))\n\
             echo $n > \"$d/count\"\nsed -n \"${{n}}p\" \"$d/passwords\"\n",
            dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = client(env, "sftp");
    c.env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .args(["-o", "BatchMode=no"])
        .args(ssh_common())
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "NumberOfPasswordPrompts=10",
            "-P",
        ])
        .arg(port.to_string())
        .arg("-b")
        .arg(batch_file(env, script))
        .arg(format!("{user}@127.0.0.1"));
    let out = run(c, "OpenSSH sftp (password prompts)").await;
    let prompts = std::fs::read_to_string(dir.join("count"))
        .map(|s| s.trim().parse().unwrap_or(0))
        .unwrap_or(0);
    (out, prompts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_password_attempts_on_one_connection_and_the_seventh_is_refused() {
    let env = SftpEnv::new("ban_after = 1000", "");
    let mut server = Server::start(&env).await;
    let port = server.port;
    env.write("local.csv", users_csv(5, "attempts"));
    let root = env.root(TENANT);
    assert_eq!(MAX_AUTH_ATTEMPTS, 6, "the README documents 6 attempts");

    // Wrong, wrong, right on ONE connection: logged in, the session works.
    let (out, prompts) = sftp_password_attempts(
        &env,
        port,
        ACME_USER,
        &["wrong-a", "wrong-b", ACME_PASS],
        "put local.csv third.csv\n",
    )
    .await;
    assert_ok(&out, "OpenSSH sftp: wrong, wrong, right on one connection");
    assert_eq!(prompts, 3, "password prompts answered");
    assert_file(
        &root.join("third.csv"),
        users_csv(5, "attempts").as_bytes(),
        "the upload after the third attempt",
    );
    assert_eq!(server.stats.password_verifications(), 3);
    server
        .expect(
            &[complete(TENANT, "third.csv")],
            "the upload after wrong, wrong, right",
        )
        .await;

    // Six wrong passwords, then the right one: the 7th attempt is refused
    // before any password check.
    let mut passwords: Vec<String> = (1..=MAX_AUTH_ATTEMPTS)
        .map(|i| format!("wrong-{i}"))
        .collect();
    passwords.push(ACME_PASS.into());
    let passwords: Vec<&str> = passwords.iter().map(String::as_str).collect();
    let (out, prompts) = sftp_password_attempts(
        &env,
        port,
        ACME_USER,
        &passwords,
        "put local.csv seventh.csv\n",
    )
    .await;
    assert_failed(&out, "OpenSSH sftp: 6 wrong passwords, then the right one");
    assert!(
        prompts >= MAX_AUTH_ATTEMPTS,
        "only {prompts} password prompts: the server cut the attempts short\n{}",
        show(&out)
    );
    assert!(
        !root.join("seventh.csv").exists(),
        "a 7th attempt logged in"
    );
    assert_eq!(
        server.stats.password_verifications(),
        3 + MAX_AUTH_ATTEMPTS as u64,
        "password checks: the 7th attempt must not reach one"
    );
    server
        .expect(&[], "no upload after 6 wrong passwords")
        .await;
    server.stop().await;
}

/// `sftp -b` as `user` with the private key `key` only (no password).
async fn sftp_with_key(env: &SftpEnv, port: u16, key: &Path, user: &str, script: &str) -> Output {
    require("sftp", "openssh-client");
    let mut c = client(env, "sftp");
    c.args(ssh_common())
        .args([
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
            "-i",
        ])
        .arg(key)
        .arg("-P")
        .arg(port.to_string())
        .arg("-b")
        .arg(batch_file(env, script))
        .arg(format!("{user}@127.0.0.1"));
    run(c, "OpenSSH sftp (another key)").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_offered_keys_and_session_limit_refusals_are_not_strikes_towards_a_ban() {
    let env = SftpEnv::new("ban_after = 2\nmax_sessions_per_account = 1", "");
    let server = Server::start(&env).await;
    let port = server.port;
    let stranger = env.path("stranger_ed25519");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .output()
        .expect("run ssh-keygen");
    assert_ok(&out, "ssh-keygen for a key no account has");

    // Three logins offering a key acme-hr lacks: refused, not strikes.
    for i in 0..3 {
        let out = sftp_with_key(&env, port, &stranger, ACME_USER, "ls\n").await;
        assert_failed(&out, &format!("login #{i} with a key acme-hr lacks"));
    }
    let out = sftp_password(&env, port, BETA_USER, BETA_PASS, "ls\n", &[]).await;
    assert_ok(
        &out,
        "beta-hr from the same address after 3 unknown keys (ban_after = 2): not banned",
    );

    // Three logins over acme-hr's session limit: refused, not strikes.
    let held = hold_session(&env, port, "limit").await;
    for i in 0..3 {
        let out = sftp_password(&env, port, ACME_USER, ACME_PASS, "ls\n", &[]).await;
        assert_failed(
            &out,
            &format!("acme-hr login #{i} over max_sessions_per_account"),
        );
    }
    let out = sftp_password(&env, port, BETA_USER, BETA_PASS, "ls\n", &[]).await;
    assert_ok(
        &out,
        "beta-hr after 3 logins refused over the session limit (ban_after = 2): not banned",
    );
    release_session(&env, port, &held).await;

    // Whereas two wrong passwords are strikes: the address is banned.
    wrong_passwords(&env, port, BETA_USER, 2).await;
    let out = sftp_password(&env, port, BETA_USER, BETA_PASS, "ls\n", &[]).await;
    assert_failed(
        &out,
        "the right password after 2 wrong ones (ban_after = 2)",
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_wrong_passwords_ban_the_address_but_not_others() {
    let env = SftpEnv::new(
        "ban_after = 10\nban_window = \"10m\"\nban_for = \"10m\"",
        "",
    );
    let mut server = Server::start(&env).await;
    let port = server.port;
    env.write("local.csv", users_csv(20, "ban"));

    // Nine wrong passwords do not ban: the right one still logs in.
    wrong_passwords(&env, port, ACME_USER, 9).await;
    let out = sftp_password(
        &env,
        port,
        ACME_USER,
        ACME_PASS,
        "put local.csv before.csv\n",
        &["-o", "BindAddress=127.0.0.1"],
    )
    .await;
    assert_ok(
        &out,
        "the right password after 9 wrong ones (below ban_after)",
    );
    server
        .expect(
            &[complete(TENANT, "before.csv")],
            "the upload before the ban",
        )
        .await;

    // Ten wrong passwords from 127.0.0.1 ban it.
    wrong_passwords(&env, port, ACME_USER, 10).await;

    // The right password (and the right key) from the same address: refused.
    let out = sftp_password(
        &env,
        port,
        ACME_USER,
        ACME_PASS,
        "put local.csv banned.csv\n",
        &["-o", "BindAddress=127.0.0.1"],
    )
    .await;
    assert_failed(&out, "the right password from a banned address");
    let out = sftp_key(
        &env,
        port,
        "put local.csv banned2.csv\n",
        &["-o", "BindAddress=127.0.0.1"],
    )
    .await;
    assert_failed(&out, "the right key from a banned address");
    let root = env.root(TENANT);
    assert!(!root.join("banned.csv").exists() && !root.join("banned2.csv").exists());

    // Another address logs in.
    let out = sftp_password(
        &env,
        port,
        ACME_USER,
        ACME_PASS,
        "put local.csv users.csv\n",
        &["-o", "BindAddress=127.0.0.2"],
    )
    .await;
    assert_ok(&out, "the right password from 127.0.0.2 (not banned)");
    assert_file(
        &root.join("users.csv"),
        users_csv(20, "ban").as_bytes(),
        "upload from 127.0.0.2",
    );
    server
        .expect(&[complete(TENANT, "users.csv")], "only the unbanned upload")
        .await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 5. Host key

/// `ssh-keygen -lf FILE` → ("SHA256:…", key type in parentheses).
fn keygen_fingerprint(file: &Path) -> String {
    require("ssh-keygen", "openssh-client");
    let out = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(file)
        .output()
        .expect("run ssh-keygen -lf");
    assert_ok(&out, &format!("ssh-keygen -lf {}", file.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or_default();
    assert!(line.ends_with("(ED25519)"), "not an ed25519 key: {line}");
    line.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// What a client sees: `ssh-keyscan` of the running server, fingerprinted.
async fn scanned_fingerprint(env: &SftpEnv, port: u16) -> String {
    require("ssh-keyscan", "openssh-client");
    let mut c = client(env, "ssh-keyscan");
    c.args([
        "-t",
        "ed25519",
        "-T",
        "10",
        "-p",
        &port.to_string(),
        "127.0.0.1",
    ]);
    let out = run(c, "ssh-keyscan").await;
    assert_ok(&out, "ssh-keyscan");
    assert!(
        !out.stdout.is_empty(),
        "ssh-keyscan got no ed25519 key:\n{}",
        show(&out)
    );
    let file = env.write(&format!("scanned-{port}"), &out.stdout);
    keygen_fingerprint(&file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_key_is_stable_across_restarts() {
    let env = SftpEnv::new("", "");
    let key_file = env.config.data_dir.join("host_keys/ssh_host_ed25519_key");

    let server = Server::start(&env).await;
    let first = scanned_fingerprint(&env, server.port).await;
    server.stop().await;
    let key_bytes = std::fs::read(&key_file).expect("the host key file exists after a start");

    let server = Server::start(&env).await;
    let second = scanned_fingerprint(&env, server.port).await;
    server.stop().await;

    assert!(first.starts_with("SHA256:"), "fingerprint {first}");
    assert_eq!(first, second, "the host key changed across a restart");
    assert_eq!(
        std::fs::read(&key_file).unwrap(),
        key_bytes,
        "the host key file was rewritten on restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_key_fingerprint_matches_ssh_keygen_and_what_clients_see() {
    use std::os::unix::fs::PermissionsExt;
    let env = SftpEnv::new("", "");
    let server = Server::start(&env).await;
    let data_dir = &env.config.data_dir;
    let key_file = data_dir.join("host_keys/ssh_host_ed25519_key");
    let mode = std::fs::metadata(&key_file)
        .expect("host_keys/ssh_host_ed25519_key exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "host key file mode {:o}", mode & 0o777);

    let (fingerprint, public_line) =
        host_key_fingerprint(data_dir).unwrap_or_else(|e| panic!("host_key_fingerprint: {e}"));

    // The private key file is OpenSSH format: ssh-keygen derives its public key.
    let out = std::process::Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&key_file)
        .output()
        .expect("run ssh-keygen -y");
    assert_ok(&out, "ssh-keygen -y -f ssh_host_ed25519_key");
    let derived = String::from_utf8_lossy(&out.stdout).into_owned();
    let key_of = |line: &str| {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        key_of(&public_line),
        key_of(&derived),
        "host_key_fingerprint's public key line vs ssh-keygen -y"
    );
    let pub_file = env.write("host_key.pub", &derived);
    assert_eq!(
        fingerprint,
        keygen_fingerprint(&pub_file),
        "host_key_fingerprint vs ssh-keygen -lf"
    );
    let line_file = env.write("host_key_line.pub", format!("{}\n", public_line.trim()));
    assert_eq!(
        fingerprint,
        keygen_fingerprint(&line_file),
        "ssh-keygen -lf of host_key_fingerprint's own public line"
    );
    assert_eq!(
        fingerprint,
        scanned_fingerprint(&env, server.port).await,
        "host_key_fingerprint vs what ssh-keyscan sees"
    );
    server.stop().await;
}

/// Opens an authenticated connection as acme-hr that stays open (an OpenSSH
/// control master, `-f` returns once logged in); returns its control socket.
async fn hold_session(env: &SftpEnv, port: u16, name: &str) -> PathBuf {
    let control = env.dir.path().join(format!("ctl-{name}"));
    let mut c = ssh_key(
        env,
        port,
        &["-f", "-N", "-M", "-S", control.to_str().unwrap()],
        &[],
    );
    // -f forks a child that keeps our pipes open: don't wait for them.
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let status = tokio::time::timeout(CLIENT_TIMEOUT, c.status())
        .await
        .expect("ssh -f returns once logged in")
        .expect("run ssh");
    assert!(
        status.success(),
        "holding a session as {ACME_USER} ({name}) failed"
    );
    control
}

async fn release_session(env: &SftpEnv, port: u16, control: &Path) {
    let mut c = ssh_key(
        env,
        port,
        &["-S", control.to_str().unwrap(), "-O", "exit"],
        &[],
    );
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let _ = tokio::time::timeout(CLIENT_TIMEOUT, c.status()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_limits_per_account_and_in_total_refuse_extra_logins() {
    let env = SftpEnv::new("max_sessions = 2\nmax_sessions_per_account = 1", "");
    let server = Server::start(&env).await;
    let held = hold_session(&env, server.port, "first").await;

    // A second session of the same account is refused…
    let out = sftp_password(&env, server.port, ACME_USER, ACME_PASS, "ls\n", &[]).await;
    assert_failed(
        &out,
        "a second acme-hr session over max_sessions_per_account = 1",
    );
    // …another account still gets in (2 sessions in total)…
    let out = sftp_password(&env, server.port, BETA_USER, BETA_PASS, "ls\n", &[]).await;
    assert_ok(&out, "beta-hr while acme-hr holds its one session");

    // …and once the first session ends, acme-hr logs in again.
    release_session(&env, server.port, &held).await;
    let mut admitted = false;
    // The server notices the closed connection asynchronously: a bounded
    // number of tries, each a full login, not a timed sleep.
    for _ in 0..20 {
        let out = sftp_password(&env, server.port, ACME_USER, ACME_PASS, "ls\n", &[]).await;
        if out.status.success() {
            admitted = true;
            break;
        }
    }
    assert!(
        admitted,
        "acme-hr never got its session back after the first one closed"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_session_limit_refuses_logins_of_any_account() {
    let env = SftpEnv::new("max_sessions = 1\nmax_sessions_per_account = 5", "");
    let server = Server::start(&env).await;
    let held = hold_session(&env, server.port, "only").await;
    let out = sftp_password(&env, server.port, BETA_USER, BETA_PASS, "ls\n", &[]).await;
    assert_failed(&out, "beta-hr over max_sessions = 1");
    release_session(&env, server.port, &held).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_are_closed_after_idle_timeout() {
    let env = SftpEnv::new("idle_timeout = \"2s\"", "");
    let server = Server::start(&env).await;
    // An authenticated connection that sends nothing (no keepalives).
    let c = ssh_key(
        &env,
        server.port,
        &["-N", "-o", "ServerAliveInterval=0"],
        &[],
    );
    // Both bounds hold whatever the scheduling noise: the server cannot
    // close before 2 s without traffic (delays only make it later, so the
    // 1.5 s lower bound is no race), and the upper bound is 15 times the
    // timeout.
    let started = std::time::Instant::now();
    let out = run(c, "an idle ssh -N session").await;
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_millis(1500),
        "the session ended after {lasted:?}, before the idle timeout:\n{}",
        show(&out)
    );
    assert!(
        lasted < Duration::from_secs(30),
        "an idle session was kept {lasted:?}"
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 7. Reload and shutdown reach open sessions

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_revokes_changed_passwords_removed_accounts_and_tenants_and_closes_their_sessions() {
    const NEW_PASS: &str = "Beta-pass-2025";
    const REVOKED: &str = "access revoked";
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let port = server.port;
    let mut acme = Held::start(&env, port, ACME_USER, "", "held-acme.csv").await;
    let mut beta = Held::start(&env, port, BETA_USER, BETA_PASS, "held-beta.csv").await;
    assert_eq!(server.stats.sessions(), 2);
    let mut config = env.config.clone();

    // beta-hr's password changes: its open session is closed, the old
    // password no longer logs in, the new one does; acme-hr goes on.
    config.tenants.get_mut(BETA).unwrap().accounts[0].password_hash = Some(argon2_hash(NEW_PASS));
    server.reloader.reload(&config);
    beta.expect_closed(REVOKED, "after its password changed")
        .await;
    acme.expect_alive("after beta-hr's password changed").await;
    let out = sftp_password(&env, port, BETA_USER, BETA_PASS, "ls\n", &[]).await;
    assert_failed(&out, "beta-hr with its old password after the reload");
    let out = sftp_password(&env, port, BETA_USER, NEW_PASS, "ls\n", &[]).await;
    assert_ok(&out, "beta-hr with its new password after the reload");

    // beta-hr's account is removed (tenant beta stays): closed, refused.
    let mut beta2 = Held::start(&env, port, BETA_USER, NEW_PASS, "held-beta2.csv").await;
    config.tenants.get_mut(BETA).unwrap().accounts.clear();
    server.reloader.reload(&config);
    beta2
        .expect_closed(REVOKED, "after its account was removed")
        .await;
    acme.expect_alive("after beta-hr's account was removed")
        .await;
    let out = sftp_password(&env, port, BETA_USER, NEW_PASS, "ls\n", &[]).await;
    assert_failed(&out, "beta-hr after its account was removed");

    // Tenant acme is removed: its key session is closed, its key refused.
    config.tenants.remove(TENANT);
    server.reloader.reload(&config);
    acme.expect_closed(REVOKED, "after its tenant was removed")
        .await;
    let out = sftp_key(&env, port, "ls\n", &[]).await;
    assert_failed(&out, "acme-hr's key after tenant acme was removed");

    // Each cut session had its file open for writing: incomplete, never
    // complete.
    server
        .expect(
            &[
                incomplete(BETA, "held-beta.csv"),
                incomplete(BETA, "held-beta2.csv"),
                incomplete(TENANT, "held-acme.csv"),
            ],
            "sessions closed by reloads",
        )
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_keeps_an_account_keeps_its_session() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let port = server.port;
    let mut acme = Held::start(&env, port, ACME_USER, ACME_PASS, "held.csv").await;
    // A new tenant and a new limit: nothing about acme-hr changes.
    let mut config = env.config.clone();
    config.sftp.max_sessions = 7;
    let mut gamma = config.tenants[BETA].clone();
    gamma.name = "gamma".into();
    gamma.accounts[0].name = "gamma-hr".into();
    config.tenants.insert("gamma".into(), gamma);
    server.reloader.reload(&config);
    acme.expect_alive("after a reload that added a tenant")
        .await;
    let out = sftp_password(&env, port, "gamma-hr", BETA_PASS, "ls\n", &[]).await;
    assert_ok(&out, "the new tenant's account logs in after the reload");
    assert_eq!(acme.ask("bye").await, "BYE");
    server
        .expect(&[complete(TENANT, "held.csv")], "the held upload, closed")
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_disconnects_open_sessions() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let mut held = Held::start(&env, server.port, ACME_USER, ACME_PASS, "held.csv").await;
    held.expect_alive("before the shutdown").await;
    // What SIGTERM does to the server.
    server.shutdown.cancel();
    held.expect_closed("server shutting down", "after the shutdown")
        .await;
    server
        .expect(
            &[incomplete(TENANT, "held.csv")],
            "the upload cut by the shutdown",
        )
        .await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 8. What the host plants in the root; renames

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_and_device_files_in_the_root_are_never_opened() {
    use rustix::fs::{mknodat, FileType, Mode, CWD};
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let root = env.root(TENANT);
    let fifo = root.join("pipe.csv");
    let zero = root.join("zero.csv");
    mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o666), 0).expect("mkfifo");
    // /dev/zero's numbers: reading it never ends.
    mknodat(
        CWD,
        &zero,
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 5),
    )
    .unwrap_or_else(|e| panic!("mknod a character device (the tests run as root): {e}"));

    let started = std::time::Instant::now();
    let (out, lines) = peer(
        &env,
        server.port,
        "special",
        &[ACME_USER, ACME_PASS, "pipe.csv", "zero.csv"],
    )
    .await;
    let took = started.elapsed();
    // Should the server have blocked in a FIFO open, release it before
    // failing: a writer that opens without blocking.
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&fifo);
    }
    assert_ok(&out, "paramiko raw opens of a FIFO and a device");
    let results: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            let mut w = l.splitn(4, ' ');
            (
                w.next().unwrap_or(""),
                w.next().unwrap_or(""),
                w.next().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            ("pipe.csv", "r", "ERR"),
            ("pipe.csv", "w", "ERR"),
            ("zero.csv", "r", "ERR"),
            ("zero.csv", "w", "ERR"),
        ],
        "every OPEN of a FIFO or a device answers an error at once (no TIMEOUT, no OPENED):\n{}",
        show(&out)
    );
    assert!(
        took < Duration::from_secs(30),
        "refusing four opens took {took:?}"
    );
    let kind = |p: &Path| std::fs::symlink_metadata(p).unwrap().file_type();
    use std::os::unix::fs::FileTypeExt;
    assert!(kind(&fifo).is_fifo() && kind(&zero).is_char_device());
    server.expect(&[], "no uploads").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_rename_overwrites_an_existing_target() {
    let env = SftpEnv::new("", "");
    let mut server = Server::start(&env).await;
    let root = env.root(TENANT);
    // Files a previous upload (or the host) left.
    std::fs::write(root.join("users.csv"), "old users\n").unwrap();
    std::fs::write(root.join("target.csv"), "old target\n").unwrap();
    std::fs::write(root.join("other.csv"), "other\n").unwrap();
    let data = users_csv(300, "rename");
    env.write("local.csv", &data);

    // A temp name renamed (SSH_FXP_RENAME, not posix-rename) over users.csv.
    let out = paramiko(
        &env,
        server.port,
        "part",
        &["local.csv", "users.csv", "rename"],
    )
    .await;
    assert_ok(&out, "paramiko put users.csv.part + rename over users.csv");
    assert_file(
        &root.join("users.csv"),
        data.as_bytes(),
        "users.csv after the rename over it",
    );
    assert!(!exists_at_all(&root.join("users.csv.part")));

    // A final name renamed over another.
    let (out, lines) = peer(
        &env,
        server.port,
        "rename",
        &[ACME_USER, ACME_PASS, "other.csv", "target.csv"],
    )
    .await;
    assert_ok(&out, "paramiko rename other.csv target.csv");
    assert_eq!(
        lines,
        ["OK"],
        "SSH_FXP_RENAME over an existing file:\n{}",
        show(&out)
    );
    assert_file(
        &root.join("target.csv"),
        b"other\n",
        "target.csv after the rename",
    );
    assert!(!exists_at_all(&root.join("other.csv")), "other.csv left");
    server
        .expect(
            &[complete(TENANT, "users.csv")],
            "the temp name renamed to users.csv completes it",
        )
        .await;
    server.stop().await;
}

// ---------------------------------------------------------------------------
// 9. Algorithms, as a real client negotiates them

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_negotiate_the_ciphers_and_macs_we_offer_and_never_sha1() {
    let env = SftpEnv::new("", "");
    let server = Server::start(&env).await;
    // What curl/libssh2 and older paramiko need, and our first choices.
    for (cipher, mac) in [
        ("aes128-ctr", "hmac-sha2-256"),
        ("aes256-ctr", "hmac-sha2-512-etm@openssh.com"),
        ("chacha20-poly1305@openssh.com", "hmac-sha2-256"),
        ("aes256-gcm@openssh.com", "hmac-sha2-256"),
    ] {
        let out = sftp_key(
            &env,
            server.port,
            "pwd\n",
            &[
                "-v",
                "-o",
                &format!("Ciphers={cipher}"),
                "-o",
                &format!("MACs={mac}"),
            ],
        )
        .await;
        assert_ok(&out, &format!("sftp with only {cipher} / {mac}"));
        let log = String::from_utf8_lossy(&out.stderr);
        // AEAD ciphers carry their own MAC: OpenSSH logs "<implicit>".
        let want_mac = if cipher.contains("gcm") || cipher.contains("chacha") {
            "<implicit>"
        } else {
            mac
        };
        let want = format!("kex: server->client cipher: {cipher} MAC: {want_mac}");
        assert!(
            log.contains(&want),
            "OpenSSH did not negotiate {cipher} / {want_mac} (no {want:?}):\n{}",
            show(&out)
        );
    }
    // Unrestricted, OpenSSH and the server settle on the server's first
    // choice that OpenSSH also prefers.
    let out = sftp_key(&env, server.port, "pwd\n", &["-v"]).await;
    assert_ok(&out, "sftp with OpenSSH's defaults");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("kex: server->client cipher: chacha20-poly1305@openssh.com"),
        "OpenSSH's defaults did not negotiate chacha20-poly1305:\n{}",
        show(&out)
    );
    // SHA-1 MACs are not offered.
    let out = sftp_key(
        &env,
        server.port,
        "pwd\n",
        &["-v", "-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha1"],
    )
    .await;
    assert_failed(&out, "sftp offering only hmac-sha1");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no matching MAC"),
        "refused for another reason than the MAC:\n{}",
        show(&out)
    );
    server.stop().await;
}
