//! Legacy `scp -O` (issue 13 point 22): the SCP protocol over an exec of
//! `scp -t`, the default of OpenSSH before 9.0. Uploads go through the same
//! jail, limits and completion rule as SFTP and are imported once; every
//! other exec (a command, `scp -f` downloads) stays refused. Driven by
//! OpenSSH `scp -O` and by paramiko speaking the sink protocol by hand
//! (tests/peers/scp_paramiko.py), against the daemon run in-process.

use std::process::Output;
use std::time::{Duration, SystemTime};

use userdrop::daemon::Paths;
use userdrop::report::summary::Status;

use crate::util::clients::{
    assert_failed, client, key_auth, require, require_paramiko, run, show, ssh_common, ssh_key,
};
use crate::util::daemon::{names_in, users_of, Running};
use crate::util::{repo, users_csv, SftpEnv, ACME_PASS, ACME_USER, TENANT};

/// `scp -O [flags] local… acme-hr@127.0.0.1:target` with the env's key.
async fn scp_o(env: &SftpEnv, port: u16, flags: &[&str], local: &[&str], target: &str) -> Output {
    require("scp", "openssh-client");
    let mut cmd = client(env, "scp");
    cmd.args(ssh_common())
        .args(key_auth(env))
        .arg("-O")
        .args(flags)
        .args(["-P", &port.to_string()])
        .args(local)
        .arg(format!("{ACME_USER}@127.0.0.1:{target}"));
    run(cmd, &format!("scp -O {flags:?} {local:?} host:{target}")).await
}

/// tests/peers/scp_paramiko.py: `command` as an exec, then `steps`; its
/// output lines.
async fn by_hand(env: &SftpEnv, port: u16, command: &str, steps: &[&str]) -> Vec<String> {
    require_paramiko();
    let mut c = client(env, "python3");
    c.arg(repo().join("tests/peers/scp_paramiko.py"))
        .args([
            "127.0.0.1",
            &port.to_string(),
            ACME_USER,
            ACME_PASS,
            command,
        ])
        .args(steps);
    let out = run(c, &format!("paramiko exec {command:?}")).await;
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// Jobs the store holds for `file`.
fn jobs_for(env: &SftpEnv, file: &str) -> i64 {
    crate::util::sql(&env.config.db_path())
        .query_row("SELECT count(*) FROM jobs WHERE file = ?1", [file], |r| {
            r.get(0)
        })
        .unwrap()
}

fn all_jobs(env: &SftpEnv) -> i64 {
    crate::util::sql(&env.config.db_path())
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Waits for the job of `file` and checks it was applied once and moved to
/// `.bak/`.
async fn imported_once(env: &SftpEnv, d: &mut Running, file: &str, users: usize) {
    let done = d.next_done(file).await;
    assert_eq!((done.file.as_str(), done.status), (file, Status::Ok));
    assert_eq!(jobs_for(env, file), 1, "{file} imported once");
    let root = env.root(TENANT);
    assert!(!root.join(file).exists(), "{file} left the inbox");
    let bak = names_in(&root.join(".bak"));
    assert!(
        bak.iter()
            .any(|n| n.ends_with(&format!("-{}_{file}", done.job))),
        "{file} in .bak/: {bak:?}"
    );
    assert!(users_of(&env.config, TENANT) >= users as i64);
}

/// `scp -O` was refused with "exec request failed"; now it uploads, exits
/// 0, and the file is imported once, with `-p` (times kept) too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_scp_o_upload_exits_zero_and_is_imported_once() {
    let env = SftpEnv::new("", "");
    let mut d = Running::start(env.config.clone(), true, Paths::default()).await;
    env.write("users.csv", users_csv(5, "a"));
    let out = scp_o(&env, d.port, &[], &["users.csv"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    imported_once(&env, &mut d, "users.csv", 5).await;

    // -p: a T record first; the times are applied to the upload.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    let local = env.write("local.csv", users_csv(8, "b"));
    std::fs::File::options()
        .append(true)
        .open(&local)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = scp_o(&env, d.port, &["-p"], &["local.csv"], "kept.csv").await;
    assert_eq!(out.status.code(), Some(0), "scp -O -p: {}", show(&out));
    imported_once(&env, &mut d, "kept.csv", 8).await;
    let root = env.root(TENANT);
    let bak = names_in(&root.join(".bak"));
    let kept = bak.iter().find(|n| n.ends_with("_kept.csv")).unwrap();
    let mtime = std::fs::metadata(root.join(".bak").join(kept))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(mtime, old, "scp -p kept the modification time");
    assert_eq!(all_jobs(&env), 2);
    d.stop().await;
}

/// An upload over `max_file_size` is refused before a byte is written,
/// with a message naming the limit that `scp` prints, a non-zero exit, and
/// nothing imported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_scp_o_over_max_file_size_is_refused_naming_the_limit() {
    let env = SftpEnv::new("", "max_file_size = \"1KiB\"");
    let mut d = Running::start(env.config.clone(), true, Paths::default()).await;
    env.write("big.csv", users_csv(100, "big"));
    env.write("small.csv", "user_id,email\nU1,u1@example.com\n");
    let out = scp_o(&env, d.port, &[], &["big.csv"], "").await;
    assert_failed(&out, "scp -O of a file over max_file_size");
    let err = stderr(&out);
    assert!(
        err.contains("max_file_size") && err.contains("1.0 KiB"),
        "the message names the limit: {}",
        show(&out)
    );
    assert!(!env.root(TENANT).join("big.csv").exists(), "nothing left");
    // The next upload of the connection's kind goes through; only it is a job.
    let out = scp_o(&env, d.port, &[], &["small.csv"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    imported_once(&env, &mut d, "small.csv", 1).await;
    assert_eq!(all_jobs(&env), 1, "the refused upload was not imported");
    d.stop().await;
}

/// Targets outside the inbox (`..`, through a symlink, into `.bak/`, a
/// directory that is not there) are refused with a message; nothing is
/// written anywhere, nothing imported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_scp_o_cannot_leave_the_jail() {
    let env = SftpEnv::new("", "");
    let mut d = Running::start(env.config.clone(), true, Paths::default()).await;
    let root = env.root(TENANT);
    let outside = env.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
    env.write("users.csv", users_csv(3, "j"));
    for (target, says) in [
        ("../outside/users.csv", "\"..\" is not accepted"),
        ("../../../../outside", "\"..\" is not accepted"),
        ("link/users.csv", "symbolic links are not followed"),
        ("link", "symbolic links are not followed"),
        (".bak/users.csv", "read-only"),
        ("/tmp/users.csv", "no such file"),
    ] {
        let out = scp_o(&env, d.port, &[], &["users.csv"], target).await;
        assert_failed(&out, &format!("scp -O to {target}"));
        assert!(stderr(&out).contains(says), "{target}: {}", show(&out));
    }
    // Recursion only into the inbox root or a directory in it.
    std::fs::create_dir_all(env.path("tree")).unwrap();
    env.write("tree/users.csv", users_csv(2, "t"));
    for target in [".bak", "users.csv"] {
        let out = scp_o(&env, d.port, &["-r"], &["tree"], target).await;
        assert_failed(&out, &format!("scp -O -r to {target}"));
        assert!(
            stderr(&out).contains("scp -r) is accepted only into the inbox root"),
            "{target}: {}",
            show(&out)
        );
    }
    assert_eq!(names_in(&outside), Vec::<String>::new(), "nothing outside");
    assert_eq!(names_in(&root.join(".bak")), Vec::<String>::new());
    // A recursive upload into the root makes the directory in the inbox.
    let out = scp_o(&env, d.port, &["-r"], &["tree"], "").await;
    assert_eq!(out.status.code(), Some(0), "scp -O -r: {}", show(&out));
    assert!(root.join("tree/users.csv").is_file());
    // The connection still works: a good upload is the only job.
    let out = scp_o(&env, d.port, &[], &["users.csv"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    imported_once(&env, &mut d, "users.csv", 3).await;
    assert_eq!(all_jobs(&env), 1);
    d.stop().await;
}

/// Every exec but the SCP sink stays refused: a command, `scp -f` (what
/// `scp -O host:file .` runs to download), a shell syntax around `scp -t`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_execs_and_scp_downloads_stay_refused() {
    let env = SftpEnv::new("", "");
    let d = Running::start(env.config.clone(), true, Paths::default()).await;
    let root = env.root(TENANT);
    std::fs::write(root.join("there.csv"), "user_id,email\n").unwrap();
    let out = run(ssh_key(&env, d.port, &[], &["ls"]), "ssh host ls").await;
    assert_failed(&out, "ssh host ls");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("there.csv"));

    require("scp", "openssh-client");
    let mut cmd = client(&env, "scp");
    cmd.args(ssh_common())
        .args(key_auth(&env))
        .args(["-O", "-P", &d.port.to_string()])
        .arg(format!("{ACME_USER}@127.0.0.1:there.csv"))
        .arg("fetched.csv");
    let out = run(cmd, "scp -O host:there.csv (download)").await;
    assert_failed(&out, "scp -O download");
    assert!(!env.path("fetched.csv").exists(), "nothing was downloaded");

    for command in [
        "scp -f there.csv",
        "scp -t . ; ls",
        "scp -t $(touch x)",
        "sh -c 'scp -t .'",
        "scp -t -x .",
    ] {
        let lines = by_hand(&env, d.port, command, &[]).await;
        assert!(
            lines.len() == 1 && lines[0].starts_with("EXECFAIL"),
            "{command}: {lines:?}"
        );
    }
    assert!(!root.join("x").exists());
    d.stop().await;
}

/// paramiko's exec channel speaking the sink protocol by hand: a good
/// upload with times is imported once; a malformed C-record ends the
/// transfer with a clear fatal error, exit status 1, nothing imported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scp_sink_spoken_by_hand_over_paramiko() {
    let env = SftpEnv::new("", "");
    let mut d = Running::start(env.config.clone(), true, Paths::default()).await;
    let root = env.root(TENANT);

    for (record, says) in [
        ("C06x4 20 bad.csv\\n", "FATAL scp: protocol error: bad mode"),
        (
            "C0644 bad.csv\\n",
            "FATAL scp: protocol error: size not delimited",
        ),
        (
            "C0644 -1 bad.csv\\n",
            "FATAL scp: protocol error: size not present",
        ),
        (
            "C0644 20 ../bad.csv\\n",
            "FATAL scp: protocol error: unexpected filename",
        ),
        (
            "X0644 20 bad.csv\\n",
            "FATAL scp: protocol error: expected control record",
        ),
        (
            "D0755 0 bad\\n",
            "FATAL scp: protocol error: received a directory without -r",
        ),
    ] {
        let lines = by_hand(
            &env,
            d.port,
            "scp -t .",
            &["recv", &format!("send:{record}"), "recv", "eof"],
        )
        .await;
        assert_eq!(lines[0], "ACK", "{record}: {lines:?}");
        assert!(lines[1].starts_with(says), "{record}: {lines:?}");
        assert_eq!(lines.last().unwrap(), "EXIT 1", "{record}: {lines:?}");
    }
    assert!(!root.join("bad.csv").exists() && !root.join("bad").exists());

    // Cut off mid-file: never complete.
    let lines = by_hand(
        &env,
        d.port,
        "scp -t .",
        &[
            "recv",
            "send:C0644 100 cut.csv\\n",
            "recv",
            "send:user_id,email\\n",
            "eof",
        ],
    )
    .await;
    assert_eq!(lines, ["ACK", "ACK", "EXIT 1"]);

    let body = "user_id,email\\nU1,u1@example.com\\n";
    let size = "user_id,email\nU1,u1@example.com\n".len();
    let lines = by_hand(
        &env,
        d.port,
        "scp -p -t -- hand.csv",
        &[
            "recv",
            "send:T1600000000 0 1600000000 0\\n",
            "recv",
            &format!("send:C0600 {size} whatever.csv\\n"),
            "recv",
            &format!("send:{body}\\x00"),
            "recv",
            "eof",
        ],
    )
    .await;
    assert_eq!(lines, ["ACK", "ACK", "ACK", "ACK", "EXIT 0"]);
    imported_once(&env, &mut d, "hand.csv", 1).await;
    assert_eq!(all_jobs(&env), 1, "only the good upload is a job");
    d.stop().await;
}
