//! The daemon (issue 4): files dropped over SFTP or by the host become
//! applied users, a `.bak/` copy and `results/`, exactly once. In-process
//! tests run `Daemon` on 127.0.0.1:0 and wait on its `Done` events; the
//! signal tests run the real `userdrop serve` and read its JSON log.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;
use userdrop::config::Config;
use userdrop::daemon::Paths;
use userdrop::report::summary::Status;
use userdrop::store::{jobs, Store};

use crate::util::clients::{assert_ok, client, require_paramiko, run, sftp_key, sftp_password};
use crate::util::daemon::{
    job, names_in, serve_config, set_old, summary, users_of, Running, Serve,
};
use crate::util::{argon2_hash, bin, users_csv, Env, SftpEnv, ACME_PASS, ACME_USER, TENANT};

// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_upload_is_applied_archived_and_its_results_visible_over_sftp() {
    let env = SftpEnv::new("", "");
    let mut d = Running::start(env.config.clone(), true, Paths::default()).await;
    let data = users_csv(50, "a");
    env.write("users.local", &data);
    let out = sftp_key(&env, d.port, "put users.local users.csv\n", &[]).await;
    assert_ok(&out, "sftp put users.csv");
    let done = d.next_done("users.csv over SFTP").await;
    assert_eq!((done.file.as_str(), done.status), ("users.csv", Status::Ok));

    assert_eq!(
        users_of(&env.config, TENANT),
        50,
        "the users are in the store"
    );
    let root = env.root(TENANT);
    assert!(!root.join("users.csv").exists(), "the inbox is empty again");
    let j = job(&env.config, done.job);
    assert_eq!((j.source.as_str(), j.state.as_str()), ("sftp", "applied"));
    assert!(j.archived_at.is_some());
    let bak = names_in(&root.join(".bak"));
    assert_eq!(bak.len(), 1, "{bak:?}");
    assert!(
        bak[0].ends_with(&format!("-{}_users.csv", done.job)),
        "{bak:?}"
    );
    assert_eq!(
        std::fs::read(root.join(".bak").join(&bak[0])).unwrap(),
        data.as_bytes()
    );
    let s = summary(&root, done.job);
    assert_eq!(s["status"], "ok");
    assert_eq!(s["counts"]["added"], 50);
    assert_eq!(s["job"], done.job);
    assert!(
        names_in(&env.config.spool_dir(TENANT)).is_empty(),
        "spool is empty"
    );

    // The customer sees all three over SFTP and can fetch the summary.
    let results = names_in(&root.join("results"));
    let script = format!(
        "ls -1 .bak\nls -1 results\nget results/{} fetched.json\n",
        results[0]
    );
    let out = sftp_key(&env, d.port, &script, &[]).await;
    assert_ok(&out, "sftp ls + get");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&bak[0]), "{listing}");
    assert!(listing.contains(&results[0]), "{listing}");
    let fetched: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.path("fetched.json")).unwrap()).unwrap();
    assert_eq!(fetched, s);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_copied_in_by_the_host_is_taken_once_it_settles_not_while_it_grows() {
    let env = Env::new("");
    let mut config = env.config.clone();
    config.settle = Duration::from_secs(4);
    let paths = Paths {
        scheduler: false,
        ..Paths::default()
    };
    let mut d = Running::start(config.clone(), false, paths).await;
    let data = users_csv(400, "w");
    let bytes = data.as_bytes();
    let target = config.tenant_root(TENANT).join("users.csv");
    // Written in 8 pieces, 100 ms apart (cut mid-row): never still for 4 s.
    // The margin (40x) is wide so that a loaded machine does not stall this
    // thread that long; each gap is measured, and a stall says so.
    let mut f = std::fs::File::create(&target).unwrap();
    let piece = bytes.len() / 8 + 1;
    for chunk in bytes.chunks(piece) {
        use std::io::Write;
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        let gap = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            gap.elapsed() < config.settle,
            "this machine stalled the writer for {:?}, longer than settle: the test cannot tell",
            gap.elapsed()
        );
        assert!(
            matches!(
                d.done.try_recv(),
                Err(broadcast::error::TryRecvError::Empty)
            ),
            "a job ran while the file was still growing"
        );
        assert!(
            target.exists(),
            "the file was taken while it was still growing"
        );
    }
    drop(f);
    let done = d.next_done("the settled file").await;
    assert_eq!(done.status, Status::Ok);
    let j = job(&config, done.job);
    assert_eq!(j.source, "watcher");
    let s = summary(&config.tenant_root(TENANT), done.job);
    assert_eq!(s["counts"]["rows"], 400, "the whole file, not a prefix");
    assert_eq!(users_of(&config, TENANT), 400);
    d.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_scheduler_alone_picks_a_file_up_on_its_tick() {
    let env = Env::new("");
    let config = env.config.clone();
    let paths = Paths {
        sftp_events: false,
        watcher: false,
        scheduler: true,
    };
    let mut d = Running::start(config.clone(), false, paths).await;
    // After the start-up sweep: only a tick can find it.
    let target = config.tenant_root(TENANT).join("users.csv");
    std::fs::write(&target, users_csv(20, "s")).unwrap();
    set_old(&target, Duration::from_secs(3600));
    let until = userdrop::pickup::scheduler::until_next(&config.schedule, chrono::Utc::now())
        .unwrap()
        .saturating_sub(Duration::from_secs(2));
    // A paused clock only moves on once every task is idle and no blocking
    // work is in flight: when this sleep returns, anything the daemon would
    // do before the tick has been done.
    tokio::time::sleep(until).await;
    assert!(target.exists(), "taken before the scheduler's tick");
    assert!(d.done.try_recv().is_err(), "a job ran before the tick");
    // Paused time jumps to the tick as soon as everything waits; a day of
    // ticks at most.
    let done = tokio::time::timeout(Duration::from_secs(86_400), d.done.recv())
        .await
        .expect("the scheduler's tick picks the file up")
        .unwrap();
    assert_eq!(done.status, Status::Ok);
    assert_eq!(job(&config, done.job).source, "schedule");
    assert_eq!(users_of(&config, TENANT), 20);
    d.stop().await;
}

const PARTIAL_SCRIPT: &str = r#"
import os, sys, paramiko
host, port, user, password, name = sys.argv[1:6]
t = paramiko.Transport((host, int(port)))
t.connect(username=user, password=password)
s = paramiko.SFTPClient.from_transport(t)
f = s.open(name, "wb")
f.write(b"user_id,email\n" + b"U1,a@example.com\n" * 5000)
f.flush()
s.stat(name)  # a round trip: the writes are on disk
print("written", flush=True)
os._exit(3)   # no CLOSE: the connection just drops
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xlsx_empty_header_only_and_partial_uploads_end_as_the_spec_says() {
    require_paramiko();
    let env = SftpEnv::new("", "");
    let mut d = Running::start(env.config.clone(), true, Paths::default()).await;
    let root = env.root(TENANT);
    env.write(
        "users.xlsx",
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml",
    );
    env.write("empty.csv", b"");
    env.write("header.csv", b"user_id,email,first_name\n");
    let out = sftp_key(
        &env,
        d.port,
        "put users.xlsx\nput empty.csv\nput header.csv\n",
        &[],
    )
    .await;
    assert_ok(&out, "sftp put three files");
    let mut by_file = std::collections::BTreeMap::new();
    for _ in 0..3 {
        let done = d.next_done("three uploads").await;
        by_file.insert(done.file.clone(), done);
    }
    let code = |f: &str| summary(&root, by_file[f].job)["file_error"]["code"].clone();
    assert_eq!(by_file["users.xlsx"].status, Status::Rejected);
    assert_eq!(code("users.xlsx"), "unsupported_file_type");
    let msg = summary(&root, by_file["users.xlsx"].job)["file_error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("CSV"), "the message says what to do: {msg}");
    assert_eq!(by_file["empty.csv"].status, Status::Rejected);
    assert_eq!(code("empty.csv"), "empty_file");
    assert_eq!(by_file["header.csv"].status, Status::Ok);
    assert_eq!(
        summary(&root, by_file["header.csv"].job)["counts"]["rows"],
        0
    );
    let bak = names_in(&root.join(".bak"));
    for f in ["users.xlsx", "empty.csv", "header.csv"] {
        assert!(
            bak.iter().any(|b| b.ends_with(&format!("_{f}"))),
            "{f} in .bak: {bak:?}"
        );
    }
    assert!(names_in(&root)
        .iter()
        .all(|n| n == ".bak" || n == "results"));

    // A partial upload (the client dies without CLOSE) is never imported.
    let script = env.write("partial.py", PARTIAL_SCRIPT);
    let mut c = client(&env, "python3");
    c.arg(script).args([
        "127.0.0.1",
        &d.port.to_string(),
        ACME_USER,
        ACME_PASS,
        "partial.csv",
    ]);
    let out = run(c, "paramiko partial upload").await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let partial = root.join("partial.csv");
    assert!(partial.exists());
    d.stop().await;

    // Not on restart either: the start-up sweep takes the file queued after
    // it (oldest first), never the partial one.
    set_old(&partial, Duration::from_secs(120));
    std::fs::write(root.join("later.csv"), users_csv(3, "l")).unwrap();
    set_old(&root.join("later.csv"), Duration::from_secs(60));
    let mut d = Running::start(env.config.clone(), true, Paths::default()).await;
    let done = d.next_done("later.csv at start-up").await;
    assert_eq!(done.file, "later.csv");
    assert!(partial.exists(), "the partial upload stays where it is");
    let partial_jobs: i64 = crate::util::sql(&env.config.db_path())
        .query_row(
            "SELECT count(*) FROM jobs WHERE file = 'partial.csv'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(partial_jobs, 0, "no job for the partial upload");
    d.stop().await;

    // After incomplete_ttl it is removed.
    let mut config = env.config.clone();
    config.sftp.incomplete_ttl = Duration::from_secs(60);
    let marks_file = config.data_dir.join("uploads.json");
    let marks = std::fs::read_to_string(&marks_file).unwrap();
    let mut marks: serde_json::Value = serde_json::from_str(&marks).unwrap();
    marks[0]["since"] = serde_json::json!(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 61
    );
    std::fs::write(&marks_file, marks.to_string()).unwrap();
    let d = Running::start(config, true, Paths::default()).await;
    assert!(
        !partial.exists(),
        "an incomplete upload older than incomplete_ttl is removed"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_adds_a_tenant_without_dropping_a_connected_session() {
    require_paramiko();
    let env = SftpEnv::new("", "");
    let config_path = serve_config(&env, "");
    let mut serve = Serve::start(&config_path);

    // A session that stays connected across the reload.
    let (mut holder, mut holder_out) = waiting_client(serve.port);

    // A broken config on SIGHUP: refused, every problem logged, old one stays.
    let good = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, format!("{good}\nworkers = \"many\"\n")).unwrap();
    serve.signal("HUP");
    let refused = serve.wait_for_prefix("reload refused");
    assert!(refused.contains("workers"), "{refused}");

    // Now a good one with a new tenant.
    const GAMMA_PASS: &str = "Gamma-pass-2024";
    std::fs::write(
        &config_path,
        format!(
            "{good}\n[tenants.gamma]\nfailed_import_email = \"it@gamma.example\"\n[[tenants.gamma.accounts]]\nname = \"gamma-hr\"\npassword_hash = \"{}\"\n",
            argon2_hash(GAMMA_PASS)
        ),
    )
    .unwrap();
    serve.signal("HUP");
    serve.wait_for("configuration reloaded", &[("tenants", "3")]);

    env.write("gamma.local", users_csv(5, "g"));
    let out = sftp_password(
        &env,
        serve.port,
        "gamma-hr",
        GAMMA_PASS,
        "put gamma.local users.csv\n",
        &[],
    )
    .await;
    assert_ok(&out, "the new tenant's account uploads");
    serve.wait_for("archived", &[("tenant", "gamma"), ("file", "users.csv")]);
    assert_eq!(users_of(&env.config, "gamma"), 5);

    // The session opened before the reload still works.
    holder.stdin.take().unwrap().write_all(b"upload\n").unwrap();
    let mut line = String::new();
    holder_out.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        "uploaded",
        "the old session survived the reload"
    );
    assert!(holder.wait().unwrap().success());
    serve.wait_for("archived", &[("tenant", "acme"), ("file", "held.csv")]);

    serve.signal("TERM");
    assert!(serve.wait_exit().success(), "SIGTERM: a clean exit");
}

/// A client that logs in, lists the inbox, says "connected", then waits
/// for a line on stdin: `upload` writes held.csv and says "uploaded";
/// `probe` lists again and says whether the server had closed the
/// connection ("closed") or not ("still open").
const WAITING_CLIENT: &str = r#"
import sys, paramiko
host, port, user, password = sys.argv[1:5]
t = paramiko.Transport((host, int(port)))
t.connect(username=user, password=password)
s = paramiko.SFTPClient.from_transport(t)
s.listdir(".")
print("connected", flush=True)
action = sys.stdin.readline().strip()
if action == "upload":
    with s.open("held.csv", "wb") as f:
        f.write(b"user_id,email\nH1,h1@example.com\n")
    print("uploaded", flush=True)
    s.close()
    t.close()
else:
    try:
        s.listdir(".")
        print("still open", flush=True)
    except Exception:
        print("closed", flush=True)
"#;

/// Starts [`WAITING_CLIENT`] as acme-hr and waits until it is connected.
fn waiting_client(port: u16) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = Command::new("python3")
        .args([
            "-c",
            WAITING_CLIENT,
            "127.0.0.1",
            &port.to_string(),
            ACME_USER,
            ACME_PASS,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "connected");
    (child, out)
}

/// SIGTERM while a long job runs: the daemon lets that job finish (the
/// signal is logged before the job's end, so it did wait), files still
/// queued behind it stay in the inbox untouched for the next start, an
/// idle SFTP session does not keep the daemon alive and finds its
/// connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_job_waits_for_it_leaves_queued_files_and_closes_sessions() {
    let _heavy = crate::util::heavy();
    require_paramiko();
    let env = SftpEnv::new("", "");
    let config_path = serve_config(&env, "");
    let rows = 300_000;
    let root = env.root(TENANT);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("big.csv"), users_csv(rows, "t")).unwrap();
    set_old(&root.join("big.csv"), Duration::from_secs(120));
    // Queued behind big.csv (one tenant's jobs run one at a time).
    let queued = ["q1.csv", "q2.csv", "q3.csv"];
    for (i, q) in queued.iter().enumerate() {
        let body = format!("user_id,email\nQ{i},q{i}@example.com\n");
        std::fs::write(root.join(q), body).unwrap();
        set_old(&root.join(q), Duration::from_secs(60 - i as u64));
    }
    let mut serve = Serve::start(&config_path);
    let (mut idle, mut idle_out) = waiting_client(serve.port);
    serve.wait_for("claimed", &[("file", "big.csv")]);
    serve.wait_for("applying", &[]);
    serve.signal("TERM");
    let n = serve.seen.len();
    let status = serve.wait_exit_keeping_log();
    assert!(status.success(), "exit after SIGTERM: {status}");
    let log = &serve.seen;
    let at = |m: &str| log.iter().position(|v| v["fields"]["message"] == m);
    let term = at("SIGTERM: stopping").expect("the SIGTERM line");
    let finished = log
        .iter()
        .position(|v| v["fields"]["message"] == "job finished" && v["fields"]["file"] == "big.csv")
        .expect("big.csv's job finished line");
    assert!(
        term < finished && n <= finished,
        "the job was still running at SIGTERM, and the daemon waited for it"
    );

    let store = Store::open_read_only(&env.config.db_path()).unwrap();
    let all = jobs::list(&store, None, 10).unwrap();
    assert_eq!(all.len(), 1, "one job, none for the queued files: {all:?}");
    assert_eq!(all[0].state, "applied");
    assert!(all[0].archived_at.is_some(), "archived before exit");
    assert_eq!(users_of(&env.config, TENANT), rows as i64);
    assert!(
        names_in(&env.config.spool_dir(TENANT)).is_empty(),
        "spool empty"
    );
    assert_eq!(names_in(&root.join(".bak")).len(), 1);
    for q in queued {
        assert!(root.join(q).exists(), "{q}: queued files stay in the inbox");
    }
    // The idle session did not hold the exit up, and is closed.
    idle.stdin.as_mut().unwrap().write_all(b"probe\n").unwrap();
    let mut line = String::new();
    idle_out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "closed");
    let _ = idle.wait();

    // The next start takes the queued files, oldest first, once each.
    let mut serve = Serve::start(&config_path);
    for q in queued {
        serve.wait_for("archived", &[("file", q)]);
    }
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
    let store = Store::open_read_only(&env.config.db_path()).unwrap();
    let mut all = jobs::list(&store, None, 10).unwrap();
    all.sort_by_key(|j| j.id);
    let files: Vec<&str> = all.iter().map(|j| j.file.as_str()).collect();
    assert_eq!(files, ["big.csv", "q1.csv", "q2.csv", "q3.csv"]);
    assert_eq!(users_of(&env.config, TENANT), rows as i64 + 3);
}

/// `data_dir` and `[sftp] listen` change only on restart: a SIGHUP that
/// changes them is logged, and the daemon goes on with the old ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_keeps_data_dir_and_listen_until_a_restart() {
    let env = SftpEnv::new("", "");
    let config_path = serve_config(&env, "");
    let mut serve = Serve::start(&config_path);
    let other = env.path("elsewhere");
    let text = std::fs::read_to_string(&config_path).unwrap();
    let old_dir = env.config.data_dir.to_string_lossy().into_owned();
    assert!(text.contains(&old_dir) && text.contains("127.0.0.1:0"));
    std::fs::write(
        &config_path,
        text.replace(&old_dir, &other.to_string_lossy())
            .replace("127.0.0.1:0", "127.0.0.1:1"),
    )
    .unwrap();
    serve.signal("HUP");
    serve.wait_for("data_dir changes only on restart; keeping the old one", &[]);
    serve.wait_for("[sftp] listen changes only on restart", &[]);
    serve.wait_for("configuration reloaded", &[]);
    env.write("after.local", users_csv(2, "a"));
    let out = sftp_key(&env, serve.port, "put after.local after.csv\n", &[]).await;
    assert_ok(&out, "an upload to the old port after the reload");
    serve.wait_for("archived", &[("file", "after.csv")]);
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
    assert_eq!(
        users_of(&env.config, TENANT),
        2,
        "imported into the old store"
    );
    assert!(
        !other.exists(),
        "the new data_dir is not used before a restart"
    );
}

// ---------------------------------------------------------------------------
// Crash harness: kill -9 at random moments, restart, every file exactly once.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_processes_every_file_exactly_once() {
    let _heavy = crate::util::heavy();
    const FILES: usize = 36;
    const KILLS: usize = 32;
    let env = SftpEnv::new("", "");
    let config_path = serve_config(&env, "");
    let root = env.root(TENANT);
    std::fs::create_dir_all(&root).unwrap();
    // Each content: its own users; sizes vary so kills land in every step.
    // Every third content also has two failing rows, so that a job, its
    // failure mail and its errors.csv are exercised under the kills.
    let base_rows = |i: usize| [40, 400, 4_000, 12_000][i % 4];
    let failing = |i: usize| i % 3 == 2;
    let content = |i: usize| -> String {
        let body = users_csv(base_rows(i), &format!("k{i}"))
            .lines()
            .enumerate()
            .map(|(n, l)| {
                if n == 0 {
                    l.to_string()
                } else {
                    l.replacen(",user.", &format!(",f{i}.user."), 1)
                        .replace("U0", &format!("F{i:03}U0"))
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let bad = if failing(i) {
            format!("F{i:03}X1,not-an-email,Bad,Row,true,,\nF{i:03}X2,x{i}@example.com,Bad,Row,maybe,,\n")
        } else {
            String::new()
        };
        body + "\n" + &bad
    };
    let rows_of = |i: usize| base_rows(i) + if failing(i) { 2 } else { 0 };
    // Host drops: written aside, renamed into place (file00.csv, …).
    let drop_file = |i: usize| {
        let tmp = env.path(&format!("file{i:02}.tmp"));
        std::fs::write(&tmp, content(i)).unwrap();
        set_old(&tmp, Duration::from_secs(30));
        std::fs::rename(&tmp, root.join(format!("file{i:02}.csv"))).unwrap();
    };
    // SFTP uploads (contents 100, 101, …), throttled on odd runs so that
    // kills cut uploads mid-file; a failed upload is retried under a new
    // name, as a client would after an error.
    let sftp_put = |c: usize, name: &str, throttle: bool| -> Command {
        let local = env.path(&format!("sftp{c}.local"));
        std::fs::write(&local, content(c)).unwrap();
        let batch = env.path(&format!("{name}.batch"));
        std::fs::write(&batch, format!("put {} {name}\n", local.display())).unwrap();
        let mut cmd = Command::new("sftp");
        cmd.args(crate::util::clients::ssh_common())
            .args(crate::util::clients::key_auth(&env))
            .env("HOME", &env.home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if throttle {
            cmd.args(["-l", "6000"]);
        }
        cmd
    };
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut rand = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    crate::util::clients::require("sftp", "openssh-client");
    let (mut next, mut resumed_runs) = (0, 0);
    // SFTP: (name, content) whose client said OK / said it failed.
    let (mut sftp_ok, mut sftp_failed) = (Vec::new(), Vec::new());
    let (mut content_no, mut attempt) = (100, 0);
    for run in 0..KILLS {
        let mut serve = Serve::start(&config_path);
        for _ in 0..rand(3) + 1 {
            if next < FILES {
                drop_file(next);
                next += 1;
            }
        }
        let name = format!("sftp{content_no}_{attempt}.csv");
        let mut client = sftp_put(content_no, &name, run % 2 == 1)
            .arg("-P")
            .arg(serve.port.to_string())
            .arg("-b")
            .arg(env.path(&format!("{name}.batch")))
            .arg(format!("{ACME_USER}@127.0.0.1"))
            .spawn()
            .expect("start sftp");
        // A random moment: a job is being claimed, applied or archived, an
        // upload is half-way.
        std::thread::sleep(Duration::from_millis(rand(400)));
        let _ = serve.child.kill();
        let _ = serve.child.wait();
        let ok = client.wait().unwrap().success();
        if ok {
            sftp_ok.push((name, content_no));
            content_no += 1;
            attempt = 0;
        } else {
            sftp_failed.push((name, content_no));
            attempt += 1;
        }
        while let Ok(v) = serve.log.recv_timeout(Duration::from_secs(5)) {
            serve.seen.push(v);
        }
        let said = |m: &str| serve.seen.iter().any(|v| v["fields"]["message"] == m);
        resumed_runs += usize::from(said("carrying on unfinished jobs"));
    }
    // The kills must have hit jobs in flight (between the job row and the
    // archive) and uploads in flight, or this test proves nothing.
    assert!(
        resumed_runs >= 5,
        "too few kills landed mid-job: {resumed_runs} of {KILLS} restarts found a job to carry on"
    );
    assert!(
        sftp_failed.len() >= 3,
        "too few kills cut an upload: {sftp_failed:?}"
    );
    eprintln!(
        "crash harness: {KILLS} kills, {resumed_runs} restarts carried on a job, {} uploads cut, {} completed",
        sftp_failed.len(),
        sftp_ok.len()
    );
    while next < FILES {
        drop_file(next);
        next += 1;
    }
    // The last run is not killed: one more upload, then wait until every
    // host file and every upload whose client said OK is archived.
    let mut serve = Serve::start(&config_path);
    let name = format!("sftp{content_no}_{attempt}.csv");
    let out = sftp_key(
        &env,
        serve.port,
        &format!("put {} {name}\n", {
            let local = env.path(&format!("sftp{content_no}.local"));
            std::fs::write(&local, content(content_no)).unwrap();
            local.display().to_string()
        }),
        &[],
    )
    .await;
    assert_ok(&out, "the last upload");
    sftp_ok.push((name, content_no));
    let expected: Vec<String> = (0..FILES)
        .map(|i| format!("file{i:02}.csv"))
        .chain(sftp_ok.iter().map(|(n, _)| n.clone()))
        .collect();
    let missing = |config: &Config| -> usize {
        let unarchived: i64 = crate::util::sql(&config.db_path())
            .query_row(
                "SELECT count(*) FROM jobs WHERE archived_at IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let store = Store::open_read_only(&config.db_path()).unwrap();
        let all = jobs::list(&store, None, 10_000).unwrap();
        unarchived as usize
            + expected
                .iter()
                .filter(|n| !all.iter().any(|j| &j.file == *n))
                .count()
    };
    while missing(&env.config) > 0 {
        let n = serve.seen.len();
        serve.wait_for_any_after(n, "archived");
    }
    serve.signal("TERM");
    assert!(serve.wait_exit().success());

    let store = Store::open_read_only(&env.config.db_path()).unwrap();
    let all = jobs::list(&store, None, 10_000).unwrap();
    let mut per_file = std::collections::BTreeMap::<String, Vec<&jobs::JobRow>>::new();
    for j in &all {
        per_file.entry(j.file.clone()).or_default().push(j);
    }
    let content_of = |name: &str| -> usize {
        if let Some(i) = name.strip_prefix("file") {
            return i[..2].parse().unwrap();
        }
        sftp_ok
            .iter()
            .chain(&sftp_failed)
            .find(|(n, _)| n == name)
            .map(|(_, c)| *c)
            .unwrap_or_else(|| panic!("a job for a file nobody dropped: {name}"))
    };
    // The same contents through a clean, never-killed pipeline, once each.
    let clean = Env::new("");
    let mut clean_counts = std::collections::BTreeMap::new();
    let mut by_content = std::collections::BTreeMap::<usize, Vec<&jobs::JobRow>>::new();
    let report_of = |j: &jobs::JobRow| -> serde_json::Value {
        serde_json::from_str(j.report.as_deref().unwrap()).unwrap()
    };
    for (name, list) in &per_file {
        let c = content_of(name);
        let j = list[0];
        assert_eq!(list.len(), 1, "{name}: exactly one job: {list:?}");
        assert_eq!(j.state, "applied", "{name}");
        assert!(j.archived_at.is_some(), "{name}");
        let got = report_of(j);
        // Never a partial upload: every job read the whole content.
        assert_eq!(
            got["counts"]["rows"],
            rows_of(c),
            "{name}: rows of the whole file"
        );
        assert_eq!(
            got["counts"]["failed"],
            if failing(c) { 2 } else { 0 },
            "{name}: failed rows"
        );
        clean_counts.entry(c).or_insert_with(|| {
            let local = clean.write(&format!("c{c}.csv"), content(c));
            let out = clean.import(&local, &["--json"]);
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["counts"].clone()
        });
        by_content.entry(c).or_default().push(j);
        check_archived(&env, j, content(c).as_bytes());
    }
    // Each content's first job applied it as a clean run does. A later job
    // of the same content can only be an upload whose client saw the
    // connection cut after the server had it whole, retried under a new
    // name: it finds every row unchanged. A second apply of one file (or a
    // resumed job applied twice) shows here as counts that differ.
    for (c, list) in &mut by_content {
        list.sort_by_key(|j| j.id);
        assert_eq!(
            &report_of(list[0])["counts"],
            &clean_counts[c],
            "{}: counts of a clean run",
            list[0].file
        );
        for later in &list[1..] {
            let counts = &report_of(later)["counts"];
            assert!(
                *c >= 100
                    && list[..list.len() - 1]
                        .iter()
                        .all(|j| sftp_failed.iter().any(|(n, _)| n == &j.file)),
                "content {c} imported twice, and not by a retried upload: {list:?}"
            );
            for k in ["added", "updated", "deleted", "deactivated"] {
                assert_eq!(
                    counts[k], 0,
                    "{}: a second import of content {c} changed users",
                    later.file
                );
            }
            assert_eq!(
                counts["unchanged"],
                rows_of(*c) - if failing(*c) { 2 } else { 0 }
            );
        }
    }
    for (name, _) in &sftp_ok {
        assert!(
            per_file.contains_key(name),
            "{name}: uploaded OK but never processed"
        );
    }
    for i in 0..FILES {
        assert!(
            per_file.contains_key(&format!("file{i:02}.csv")),
            "file{i:02}.csv: no job"
        );
    }
    // Every user, field by field, as the clean run has them.
    let export = |config_path: &Path| {
        let out = Command::new(bin())
            .arg("--config")
            .arg(config_path)
            .args(["users", "export", "--tenant", TENANT])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", crate::util::stderr(&out));
        out.stdout
    };
    let (got, want) = (export(&config_path), export(&clean.config_path));
    assert!(
        got == want,
        "the users differ from a clean run's ({} vs {} bytes exported)",
        got.len(),
        want.len()
    );
    assert!(
        names_in(&env.config.spool_dir(TENANT)).is_empty(),
        "nothing left in spool/"
    );
    // Left in the inbox: only uploads cut off (incomplete, never imported).
    let left: Vec<String> = names_in(&root)
        .into_iter()
        .filter(|n| n != ".bak" && n != "results")
        .collect();
    for n in &left {
        assert!(
            sftp_failed.iter().any(|(f, _)| f == n) && !per_file.contains_key(n),
            "left in the inbox: {n}"
        );
    }
    assert_eq!(names_in(&root.join(".bak")).len(), per_file.len());
    assert_eq!(
        names_in(&root.join("results")).len(),
        per_file.len()
            + all
                .iter()
                .filter(|j| report_of(j)["counts"]["failed"] != 0)
                .count(),
        "results/: a summary per job and an errors.csv per job with failed rows, nothing else"
    );
    check_failure_mail_once(&env, &config_path, &all);
}

/// A job's `.bak/` copy holds exactly the bytes it read, and its `results/`
/// are complete: the summary of its outcome, and the failed rows (as `jobs
/// show --failed-csv` prints them) when rows failed.
fn check_archived(env: &SftpEnv, j: &jobs::JobRow, content: &[u8]) {
    let root = env.root(TENANT);
    let tag = format!("-{}_", j.id);
    let bak: Vec<String> = names_in(&root.join(".bak"))
        .into_iter()
        .filter(|n| n.contains(&tag) && n.ends_with(&format!("_{}", j.file)))
        .collect();
    assert_eq!(bak.len(), 1, "{}: one .bak/ copy: {bak:?}", j.file);
    assert!(
        std::fs::read(root.join(".bak").join(&bak[0])).unwrap() == content,
        "{}: the .bak/ copy is the file as it came",
        j.file
    );
    let report: serde_json::Value = serde_json::from_str(j.report.as_deref().unwrap()).unwrap();
    let s = summary(&root, j.id);
    assert_eq!(
        s["counts"], report["counts"],
        "{}: results/ summary",
        j.file
    );
    assert_eq!(
        s["status"], report["status"],
        "{}: results/ summary",
        j.file
    );
    let errors: Vec<String> = names_in(&root.join("results"))
        .into_iter()
        .filter(|n| n.contains(&tag) && n.ends_with(".errors.csv"))
        .collect();
    if report["counts"]["failed"] == 0 {
        assert!(
            errors.is_empty(),
            "{}: errors.csv without failed rows",
            j.file
        );
        return;
    }
    assert_eq!(errors.len(), 1, "{}: one errors.csv", j.file);
    let out = Command::new(bin())
        .arg("--config")
        .arg(env.path("userdrop.toml"))
        .args(["jobs", "show", &j.id.to_string(), "--failed-csv"])
        .output()
        .unwrap();
    // `jobs show` exits as the job's status does: 1 for failed rows.
    assert_eq!(out.status.code(), Some(1), "{}", crate::util::stderr(&out));
    assert!(
        std::fs::read(root.join("results").join(&errors[0])).unwrap() == out.stdout,
        "{}: results/ errors.csv is the job's failed rows",
        j.file
    );
}

/// Each job with failed rows committed exactly one failure message with
/// its outcome, and none without; once delivered, each is one `.eml`
/// carrying the Message-ID the outbox recorded. A message whose sender was
/// killed mid-send is still leased: the lease is ended here (as time would
/// end it) and `mail flush` delivers the rest.
fn check_failure_mail_once(env: &SftpEnv, config_path: &Path, all: &[jobs::JobRow]) {
    use mail_parser::MessageParser;
    {
        crate::util::sql(&env.config.db_path())
            .execute("UPDATE outbox SET lease_until = NULL", [])
            .unwrap();
    }
    let out = Command::new(bin())
        .arg("--config")
        .arg(config_path)
        .args(["mail", "flush"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mail flush: {}",
        crate::util::stderr(&out)
    );
    let store = crate::util::sql(&env.config.db_path());
    let mut stmt = store
        .prepare("SELECT id, job_id, kind, state, message_id FROM outbox ORDER BY id")
        .unwrap();
    let rows: Vec<(i64, Option<i64>, String, String, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let dir = env.config.data_dir.join("mail");
    let emls: Vec<String> = names_in(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".eml") && !n.starts_with('.'))
        .collect();
    assert_eq!(
        emls.len(),
        rows.len(),
        "one .eml per outbox message: {emls:?}"
    );
    let mut failing = 0;
    for j in all {
        let report: serde_json::Value = serde_json::from_str(j.report.as_deref().unwrap()).unwrap();
        let mine: Vec<_> = rows.iter().filter(|r| r.1 == Some(j.id)).collect();
        if report["counts"]["failed"] == 0 {
            assert!(
                mine.is_empty(),
                "{}: mail for a job without failures",
                j.file
            );
            continue;
        }
        failing += 1;
        assert_eq!(
            mine.len(),
            1,
            "{}: exactly one failure message: {mine:?}",
            j.file
        );
        let (id, _, kind, state, message_id) = mine[0];
        assert_eq!(
            (kind.as_str(), state.as_str()),
            ("failure", "sent"),
            "{}",
            j.file
        );
        let bytes = std::fs::read(dir.join(format!("{id}.eml"))).unwrap();
        let m = MessageParser::default()
            .parse(&bytes)
            .expect("a valid .eml");
        assert_eq!(
            m.message_id().map(|s| format!("<{s}>")).as_deref(),
            Some(message_id.as_str()),
            "{}: the Message-ID the outbox kept",
            j.file
        );
        assert!(
            m.subject().unwrap_or_default().contains(&j.file),
            "{}: {:?}",
            j.file,
            m.subject()
        );
    }
    assert!(
        failing >= 5,
        "too few jobs with failed rows to prove anything: {failing}"
    );
}

/// The README's front door: `userdrop serve` with no config, then the
/// printed password and the sample file over OpenSSH sftp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default_serve_prints_a_password_and_imports_the_sample_upload() {
    crate::util::clients::require("sshpass", "sshpass");
    let dir = tempfile::tempdir().unwrap();
    let embedded =
        userdrop::config::Config::parse(userdrop::config::EMBEDDED_DEFAULT, "embedded").unwrap();
    assert_eq!(
        embedded.sftp.listen.to_string(),
        "127.0.0.1:2222",
        "the embedded default listens on 127.0.0.1:2222"
    );
    // That port may be taken here: USERDROP_SFTP_LISTEN moves it.
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir.path())
        .env("USERDROP_SFTP_LISTEN", "127.0.0.1:0");
    let mut serve = Serve::spawn(cmd);
    let password = serve
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("user demo  password "))
        .unwrap_or_else(|| panic!("no password in:\n{}", serve.banner))
        .to_string();
    let sample = crate::util::repo().join("fixtures/sample/users.csv");
    let batch = dir.path().join("batch");
    std::fs::write(&batch, format!("put {} users.csv\n", sample.display())).unwrap();
    let out = std::process::Command::new("sshpass")
        .args([
            "-p",
            &password,
            "sftp",
            "-o",
            "BatchMode=no",
            "-o",
            "StrictHostKeyChecking=no",
        ])
        .args([
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "PubkeyAuthentication=no",
            "-P",
            &serve.port.to_string(),
            "-b",
        ])
        .arg(&batch)
        .arg("demo@127.0.0.1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = serve.wait_for_text("archived");
    assert!(
        line.contains("tenant=demo") && line.contains("status=\"ok\""),
        "{line}"
    );
    let data = dir.path().join("userdrop-data");
    assert_eq!(names_in(&data.join("tenants/demo/.bak")).len(), 1);
    assert!(data.join("demo-account.phc").is_file());
    assert!(!serve.banner.contains("$argon2"), "no hash on stdout");
    serve.signal("INT");
    assert!(serve.wait_exit().success());

    // Started again: the same account, no new password.
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir.path())
        .env("USERDROP_SFTP_LISTEN", "127.0.0.1:0");
    let serve = Serve::spawn(cmd);
    assert!(!serve.banner.contains("password"), "{}", serve.banner);
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
}

/// The demo password is printed once: a first start on a port that is
/// already taken must fail before making the account, so that the next
/// start still shows it.
#[test]
fn a_busy_port_does_not_swallow_the_one_time_demo_password() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = Command::new(bin())
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("USERDROP_CONFIG")
        .env("USERDROP_SFTP_LISTEN", &addr)
        .output()
        .unwrap();
    let err = crate::util::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!crate::util::stdout(&out).contains("password"));
    assert_eq!(err.matches("cannot listen on").count(), 1, "{err}");
    assert_eq!(err.matches("in use").count(), 1, "the cause once: {err}");
    assert!(!dir.path().join("userdrop-data/demo-account.phc").exists());
    drop(busy);

    let mut cmd = Command::new(bin());
    cmd.current_dir(dir.path())
        .env("USERDROP_SFTP_LISTEN", "127.0.0.1:0");
    let serve = Serve::spawn(cmd);
    assert!(
        serve.banner.contains("user demo  password "),
        "{}",
        serve.banner
    );
    serve.signal("TERM");
    assert!(serve.wait_exit().success());

    let out = Command::new(bin())
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("USERDROP_CONFIG")
        .env("USERDROP_SFTP_LISTEN", "nowhere")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad address is a usage error");
    assert!(crate::util::stderr(&out).contains("USERDROP_SFTP_LISTEN=\"nowhere\""));
}

#[test]
fn the_systemd_unit_is_hardened_checks_its_config_and_reloads_with_sighup() {
    let unit =
        std::fs::read_to_string(crate::util::repo().join("systemd/userdrop.service")).unwrap();
    for line in [
        "ProtectSystem=strict",
        "StateDirectory=userdrop",
        "NoNewPrivileges=yes",
        "UMask=077",
        "ExecStartPre=/usr/local/bin/userdrop check-config",
        "ExecStart=/usr/local/bin/userdrop serve",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(unit.lines().any(|l| l.trim() == line), "missing {line:?}");
    }
}

/// The whole path of a failure mail (docs/behaviour.md#mail) through the daemon: a file with a failed row,
/// uploaded over SFTP, ends as one message (here the `file` transport) with
/// the row attached; a clean file sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_row_uploaded_over_sftp_is_mailed_by_the_daemon() {
    use mail_parser::{MessageParser, MimeHeaders};
    let env = SftpEnv::new("", "");
    let config_path = serve_config(&env, "");
    let mut serve = Serve::start(&config_path);
    env.write("clean.local", users_csv(3, "c"));
    env.write(
        "bad.local",
        "user_id,email,first_name\nB1,b1@example.com,Ann\nB2,not-an-email,=cmd\nB3,b3@example.com,Cy\n",
    );
    let out = sftp_key(
        &env,
        serve.port,
        "put clean.local clean.csv\nput bad.local users.csv\n",
        &[],
    )
    .await;
    assert_ok(&out, "sftp put");
    serve.wait_for("mail sent", &[("tenant", "acme")]);
    serve.wait_for("archived", &[("file", "clean.csv")]);
    let dir = env.config.data_dir.join("mail");
    let emls: Vec<String> = names_in(&dir)
        .into_iter()
        .filter(|n| n.ends_with(".eml"))
        .collect();
    assert_eq!(
        emls.len(),
        1,
        "one message, none for the clean file: {emls:?}"
    );
    let bytes = std::fs::read(dir.join(&emls[0])).unwrap();
    let m = MessageParser::default()
        .parse(&bytes)
        .expect("a valid .eml");
    assert_eq!(m.subject(), Some("acme: users.csv — 1 of 3 rows failed"));
    let att = m.attachment(0).expect("the failed rows attached");
    assert_eq!(att.attachment_name(), Some("users.failed.csv"));
    let csv = String::from_utf8_lossy(att.contents()).into_owned();
    assert!(
        csv.starts_with("\u{feff}user_id,email,first_name,row,error"),
        "{csv}"
    );
    assert!(csv.contains("B2,not-an-email,'=cmd,3,"), "{csv}");
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
}

/// A sync that would remove too many users is held by the daemon, archived
/// like any job, and `jobs approve` applies the `.bak/` copy and rewrites
/// the job's results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_sync_job_is_archived_and_approve_applies_it_and_updates_results() {
    let env = Env::new("mode = \"sync\"\nmax_missing_percent = 10");
    let before = env.write("before.csv", users_csv(20, "h"));
    assert!(env.import(&before, &[]).status.success());
    let config = env.config.clone();
    let root = config.tenant_root(TENANT);
    std::fs::create_dir_all(&root).unwrap();
    let target = root.join("users.csv");
    std::fs::write(&target, users_csv(5, "h")).unwrap();
    set_old(&target, Duration::from_secs(60));
    let mut d = Running::start(config.clone(), false, Paths::default()).await;
    let done = d.next_done("the start-up sweep's held sync").await;
    d.stop().await;
    assert_eq!(done.status, Status::Held);
    assert_eq!(users_of(&config, TENANT), 20, "nothing applied while held");
    assert_eq!(summary(&root, done.job)["status"], "held");

    let out = env.run(&["jobs", "approve", &done.job.to_string()]);
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    assert_eq!(users_of(&config, TENANT), 20, "deactivated, not deleted");
    let s = summary(&root, done.job);
    assert_eq!(s["status"], "ok", "results/ shows the approved outcome");
    // 15 users are absent; one of them (U17) was disabled already.
    assert_eq!(s["counts"]["deactivated"], 14);
    assert_eq!(
        names_in(&root.join(".bak")).len(),
        1,
        "the .bak/ copy stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_bak_and_results_by_their_stamp_at_start() {
    let env = Env::new("");
    let mut config = env.config.clone();
    config.retention_days = 30;
    let root = config.tenant_root(TENANT);
    for d in [".bak", "results"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let old = root.join(".bak/20200101T000000Z-1_users.csv");
    let old_summary = root.join("results/20200101T000000Z-1_users.summary.json");
    let today = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let recent = root.join(format!(".bak/{today}-2_users.csv"));
    for p in [&old, &old_summary, &recent] {
        std::fs::write(p, "x").unwrap();
    }
    // An upload's mtime may be years old: the stamp decides, not the mtime.
    set_old(&recent, Duration::from_secs(86_400 * 400));
    let d = Running::start(config, false, Paths::default()).await;
    assert!(
        !old.exists() && !old_summary.exists(),
        "older than retention_days: removed"
    );
    assert!(recent.exists(), "a recent stamp stays, whatever its mtime");
    d.stop().await;
}

/// Retention is not only a start-up chore: a daemon that runs for months
/// prunes on its scheduler ticks too.
#[tokio::test(start_paused = true)]
async fn retention_also_prunes_on_a_scheduler_tick() {
    let env = Env::new("");
    let mut config = env.config.clone();
    config.retention_days = 30;
    let root = config.tenant_root(TENANT);
    let paths = Paths {
        sftp_events: false,
        watcher: false,
        scheduler: true,
    };
    let d = Running::start(config.clone(), false, paths).await;
    // Planted after the start-up housekeeping: only a tick can prune them.
    let old = root.join(".bak/20200101T000000Z-1_users.csv");
    let old_summary = root.join("results/20200101T000000Z-1_users.summary.json");
    for p in [&old, &old_summary] {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x").unwrap();
    }
    let until =
        userdrop::pickup::scheduler::until_next(&config.schedule, chrono::Utc::now()).unwrap();
    // Paused time moves on only when the daemon is idle (blocking work
    // included): each sleep returns after everything due has been done.
    tokio::time::sleep(until.saturating_sub(Duration::from_secs(2))).await;
    assert!(old.exists(), "pruned before any tick");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !old.exists() && !old_summary.exists(),
        "older than retention_days: removed by the tick"
    );
    d.stop().await;
}

/// A file without an extension matches no `accept` pattern: refused with a
/// report saying what to upload, kept in `.bak/`, nothing imported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_without_an_extension_is_refused_not_imported() {
    let env = Env::new("");
    let config = env.config.clone();
    let root = config.tenant_root(TENANT);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("users"), users_csv(3, "x")).unwrap();
    set_old(&root.join("users"), Duration::from_secs(60));
    let mut d = Running::start(config.clone(), false, Paths::default()).await;
    let done = d.next_done("a file without extension").await;
    d.stop().await;
    assert_eq!(done.file, "users");
    assert_eq!(done.status, Status::Rejected);
    let s = summary(&root, done.job);
    assert_eq!(s["file_error"]["code"], "unsupported_file_type", "{s}");
    assert_eq!(users_of(&config, TENANT), 0, "nothing imported");
    assert!(!root.join("users").exists());
    assert_eq!(names_in(&root.join(".bak")).len(), 1);
}
