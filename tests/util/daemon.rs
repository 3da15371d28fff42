//! Running the daemon for a test: in-process ([`Running`], on 127.0.0.1:0,
//! waiting on its `Done` events) or as the real `userdrop serve` binary
//! ([`Serve`], reading its JSON log), and reading back what it left: jobs,
//! users, `.bak/` and `results/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use userdrop::config::Config;
use userdrop::daemon::{Daemon, Paths};
use userdrop::store::{jobs, Store};
use userdrop::worker::Done;

use crate::util::{bin, SftpEnv};

pub(crate) const JOB_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) struct Running {
    pub(crate) done: broadcast::Receiver<Done>,
    pub(crate) cancel: CancellationToken,
    pub(crate) task: tokio::task::JoinHandle<Result<(), userdrop::daemon::DaemonError>>,
    pub(crate) port: u16,
    pub(crate) _reload: mpsc::UnboundedSender<Config>,
}

impl Running {
    pub(crate) async fn start(config: Config, sftp: bool, paths: Paths) -> Running {
        if let Ok(level) = std::env::var("USERDROP_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(format!("userdrop={level}"))
                .with_test_writer()
                .try_init();
        }
        let (listener, port) = if sftp {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            (Some(l), port)
        } else {
            (None, 0)
        };
        let mut d = Daemon::new(config, listener).paths(paths);
        let ready = d.ready_signal();
        let done = d.subscribe();
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(d.run(cancel.clone(), rx));
        ready.await.expect("the daemon starts");
        Running {
            done,
            cancel,
            task,
            port,
            _reload: tx,
        }
    }

    pub(crate) async fn next_done(&mut self, what: &str) -> Done {
        match tokio::time::timeout(JOB_TIMEOUT, self.done.recv()).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => panic!("{what}: the daemon's job events ended: {e}"),
            Err(_) => panic!("{what}: no job reached .bak/ within {JOB_TIMEOUT:?}"),
        }
    }

    pub(crate) async fn stop(self) {
        self.cancel.cancel();
        self.task
            .await
            .expect("the daemon task")
            .expect("the daemon stops cleanly");
    }
}

pub(crate) fn job(config: &Config, id: i64) -> jobs::JobRow {
    let store = Store::open_read_only(&config.db_path()).unwrap();
    jobs::get(&store, id)
        .unwrap()
        .expect("the job is in the ledger")
}

pub(crate) fn users_of(config: &Config, tenant: &str) -> i64 {
    super::sql(&config.db_path())
        .query_row(
            "SELECT count(*) FROM users WHERE tenant = ?1",
            [tenant],
            |r| r.get(0),
        )
        .unwrap()
}

/// The names in `dir`, sorted. A directory that does not exist is a failed
/// test, not an empty list: "spool empty" must not pass on a wrong path.
pub(crate) fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub(crate) fn summary(root: &Path, job: i64) -> serde_json::Value {
    let name = names_in(&root.join("results"))
        .into_iter()
        .find(|n| n.contains(&format!("-{job}_")) && n.ends_with(".summary.json"))
        .unwrap_or_else(|| panic!("no results/*-{job}_*.summary.json"));
    serde_json::from_slice(&std::fs::read(root.join("results").join(name)).unwrap()).unwrap()
}

pub(crate) fn set_old(path: &Path, age: Duration) {
    let f = std::fs::File::options().append(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

// ---------------------------------------------------------------------------
// The real `userdrop serve`: signals.

pub(crate) struct Serve {
    pub(crate) child: Child,
    pub(crate) port: u16,
    pub(crate) log: std_mpsc::Receiver<serde_json::Value>,
    pub(crate) seen: Vec<serde_json::Value>,
    /// What it printed on stdout up to "listening".
    pub(crate) banner: String,
}

impl Serve {
    pub(crate) fn start(config_path: &Path) -> Serve {
        let mut cmd = Command::new(bin());
        cmd.arg("--config").arg(config_path);
        Serve::spawn(cmd)
    }

    pub(crate) fn spawn(mut cmd: Command) -> Serve {
        // The embedded default's HTTP port may be taken here: a free one,
        // unless the test chose.
        if !cmd.get_envs().any(|(k, _)| k == "USERDROP_HTTP_LISTEN") {
            cmd.env("USERDROP_HTTP_LISTEN", "127.0.0.1:0");
        }
        let mut child = cmd
            .arg("serve")
            .env("RUST_LOG", "info,userdrop=debug")
            .env_remove("USERDROP_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start userdrop serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, log) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"fields": {"message": line}}));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let mut banner = String::new();
        let port = loop {
            line.clear();
            let n = out.read_line(&mut line).unwrap();
            banner.push_str(&line);
            assert!(
                n > 0,
                "userdrop serve exited before listening: {:?}",
                child.wait()
            );
            if let Some(addr) = line.trim().strip_prefix("userdrop: SFTP listening on ") {
                let addr = addr.split(';').next().unwrap();
                break addr.rsplit(':').next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in out.lines() {});
        Serve {
            child,
            port,
            log,
            seen: Vec::new(),
            banner,
        }
    }

    /// Waits for a log line whose message is `message` and whose fields
    /// match `fields`.
    pub(crate) fn wait_for(&mut self, message: &str, fields: &[(&str, &str)]) -> serde_json::Value {
        let matches = |v: &serde_json::Value| {
            let f = &v["fields"];
            f["message"] == message
                && fields.iter().all(|(k, want)| match &f[*k] {
                    serde_json::Value::String(s) => s == want,
                    other => serde_json::to_string(other).is_ok_and(|s| s == *want),
                })
        };
        if let Some(v) = self.seen.iter().find(|v| matches(v)) {
            return v.clone();
        }
        let deadline = std::time::Instant::now() + JOB_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.log.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if matches(&v) {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "no log line {message:?} {fields:?} within {JOB_TIMEOUT:?}; the log:\n{}",
                    self.seen
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("bash")
            .args(["-c", &format!("kill -{sig} {}", self.child.id())])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig}");
    }

    /// Waits for the exit and keeps every log line in `seen`.
    pub(crate) fn wait_exit_keeping_log(&mut self) -> std::process::ExitStatus {
        let status = self.child.wait().unwrap();
        while let Ok(v) = self.log.recv_timeout(JOB_TIMEOUT) {
            self.seen.push(v);
        }
        status
    }

    pub(crate) fn wait_exit(mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + JOB_TIMEOUT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "userdrop serve did not exit"
            );
            // Draining the log keeps the child from blocking on a full pipe.
            let _ = self.log.recv_timeout(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SftpEnv's config with JSON logs, for the binary.
pub(crate) fn serve_config(env: &SftpEnv, extra_toml: &str) -> PathBuf {
    let path = env.path("userdrop.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("log_format = \"json\"\n{text}\n{extra_toml}"),
    )
    .unwrap();
    path
}

impl Serve {
    /// Waits for a log line with this message after the first `n` seen.
    pub(crate) fn wait_for_any_after(&mut self, n: usize, message: &str) {
        if !self.seen[n..]
            .iter()
            .any(|v| v["fields"]["message"] == message)
        {
            self.wait_for_message(|m| m == message, message);
        }
    }

    /// The message of the next log line containing `text`.
    pub(crate) fn wait_for_text(&mut self, text: &str) -> String {
        self.wait_for_message(|m| m.contains(text), text)
    }

    /// The message of the next log line starting with `prefix`.
    pub(crate) fn wait_for_prefix(&mut self, prefix: &str) -> String {
        self.wait_for_message(|m| m.starts_with(prefix), prefix)
    }

    pub(crate) fn wait_for_message(&mut self, want: impl Fn(&str) -> bool, what: &str) -> String {
        let deadline = std::time::Instant::now() + JOB_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let v = self
                .log
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line {what:?} within {JOB_TIMEOUT:?}"));
            self.seen.push(v.clone());
            if let Some(m) = v["fields"]["message"].as_str() {
                if want(m) {
                    return m.to_string();
                }
            }
        }
    }
}
