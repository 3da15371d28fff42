//! Signed webhooks against the real `userdrop serve`: files uploaded with
//! OpenSSH `sftp`, and a real HTTP receiver in the test process (a plain
//! TCP listener on 127.0.0.1:0 speaking HTTP/1.1, answering 500 to the
//! first attempts when asked) that records every request it gets. The
//! signature is checked here with the `hmac` crate, the body against the
//! ledger's job, and the store's deliveries and the log for what the
//! sender decided. Nothing is mocked; no test sleeps to wait.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};

use crate::mail::TestCa;
use crate::util::clients::{assert_ok, require, sftp_key};
use crate::util::daemon::{serve_config, Serve};
use crate::util::{bin, config_text, sql, stderr, stdout, users_csv, SftpEnv, TENANT};

const SECRET: &str = "whsec_test_0123456789abcdef";

/// Small retries, so a receiver that fails at first is tried again fast.
const FAST_RETRIES: &str =
    "[smtp]\ntransport = \"file\"\nretry_initial = \"200ms\"\nretry_max = \"400ms\"\n";

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Got {
    method: String,
    path: String,
    /// Lower-case names.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    answered: u16,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}

/// The receiver: answers 500 to the first `fail_first` requests, then 204.
struct HookReceiver {
    url: String,
    got: Receiver<Got>,
}

fn receiver(fail_first: usize) -> HookReceiver {
    serve_hooks(fail_first, None)
}

/// The same receiver over HTTPS, with `ca`'s server certificate.
fn tls_receiver(fail_first: usize, ca: &TestCa) -> HookReceiver {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&ca.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&ca.key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    serve_hooks(fail_first, Some(Arc::new(config)))
}

fn serve_hooks(fail_first: usize, tls: Option<Arc<rustls::ServerConfig>>) -> HookReceiver {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let port = listener.local_addr().unwrap().port();
    let (tx, got) = channel();
    let scheme = if tls.is_some() { "https" } else { "http" };
    std::thread::spawn(move || {
        let mut n = 0;
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            if conn
                .set_read_timeout(Some(Duration::from_secs(30)))
                .is_err()
            {
                continue;
            }
            let answer = if n < fail_first { 500 } else { 204 };
            let got = match &tls {
                None => answer_one(conn, answer),
                Some(config) => {
                    let Ok(server) = rustls::ServerConnection::new(config.clone()) else {
                        continue;
                    };
                    let mut s = rustls::StreamOwned::new(server, conn);
                    let got = answer_one(&mut s, answer);
                    s.conn.send_close_notify();
                    let _ = s.flush();
                    got
                }
            };
            let Some(got) = got else { continue };
            n += 1;
            if tx.send(got).is_err() {
                break;
            }
        }
    });
    HookReceiver {
        url: format!("{scheme}://127.0.0.1:{port}/hooks/userdrop"),
        got,
    }
}

/// Reads one request and answers it with `status`.
fn answer_one(mut conn: impl Read + Write, status: u16) -> Option<Got> {
    let mut g = read_request(&mut conn)?;
    g.answered = status;
    let reason = if status == 204 {
        "No Content"
    } else {
        "Internal Server Error"
    };
    conn.write_all(
        format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .ok()?;
    conn.flush().ok()?;
    Some(g)
}

fn read_request(conn: &mut impl Read) -> Option<Got> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Got {
        method,
        path,
        headers,
        body,
        answered: 0,
    })
}

impl HookReceiver {
    fn next(&self, what: &str) -> Got {
        self.got
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("the receiver got no request ({what}): {e}"))
    }

    /// Every request not read yet (the daemon has stopped).
    fn rest(&self) -> Vec<Got> {
        self.got.try_iter().collect()
    }
}

/// A secret file outside the data dir, which the config names.
fn secret_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("acme-webhook.secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    (dir, path)
}

fn webhook_toml(url: &str, secret: &Path, events: Option<&str>) -> String {
    let mut t = format!(
        "[[webhooks]]\nurl = {url:?}\nsecret_file = {:?}\n",
        secret.to_str().unwrap()
    );
    if let Some(e) = events {
        t.push_str(&format!("events = {e}\n"));
    }
    t
}

/// Checks `X-Userdrop-Signature` as a receiver would: `t=..,v1=..` with
/// v1 = hex HMAC-SHA256(secret, "<t>.<body>"), t close to now.
fn assert_signed(g: &Got) {
    let sig = g.header("x-userdrop-signature");
    let (t, v1) = sig
        .strip_prefix("t=")
        .and_then(|s| s.split_once(",v1="))
        .unwrap_or_else(|| panic!("not t=..,v1=..: {sig}"));
    let t: i64 = t
        .parse()
        .unwrap_or_else(|_| panic!("t is not a number: {sig}"));
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - t).abs() < 300,
        "t = {t} is not the time of the attempt ({now})"
    );
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&g.body);
    let want = hex::encode(mac.finalize().into_bytes());
    assert_eq!(v1, want, "the signature does not verify with the secret");
}

/// Deliveries in the store: (id, job, event, state, attempts).
fn deliveries(db: &Path) -> Vec<(i64, i64, String, String, i64)> {
    let conn = sql(db);
    let mut stmt = conn
        .prepare("SELECT id, job_id, event, state, attempts FROM webhooks ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// A job uploaded over SFTP is POSTed to the tenant's webhook, signed with
/// its secret; the receiver fails the first two attempts (HTTP 500), the
/// sender tries again with the mail's backoff, and the third attempt is
/// delivered — once: the same body each time, a fresh signature each time,
/// and nothing more after the 2xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_sftp_is_posted_signed_and_retried_until_delivered_once() {
    let hook = receiver(2);
    let (_secrets, secret) = secret_file();
    let env = SftpEnv::new("", &webhook_toml(&hook.url, &secret, None));
    require("curl", "curl");
    let config = serve_config(
        &env,
        &format!("{FAST_RETRIES}[http]\nlisten = \"127.0.0.1:0\"\n"),
    );
    let mut serve = Serve::start(&config);
    let base = serve
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("userdrop: HTTP listening on "))
        .unwrap_or_else(|| panic!("no HTTP line in:\n{}", serve.banner))
        .trim()
        .to_string();
    env.write("users.local", users_csv(5, "w"));
    let out = sftp_key(&env, serve.port, "put users.local users.csv\n", &[]).await;
    assert_ok(&out, "sftp put users.csv");
    let archived = serve.wait_for("archived", &[("file", "users.csv")]);
    let job = archived["fields"]["job"].as_i64().expect("the job's id");

    let mut got = vec![
        hook.next("first attempt"),
        hook.next("second attempt"),
        hook.next("third attempt"),
    ];
    serve.wait_for("webhook delivered", &[]);
    let rows = deliveries(&env.config.db_path());
    assert_eq!(rows.len(), 1, "one delivery for one job: {rows:?}");
    let (id, row_job, event, state, attempts) = rows[0].clone();
    assert_eq!(
        (row_job, event.as_str(), state.as_str(), attempts),
        (job, "job.finished", "sent", 3)
    );
    let metrics = Command::new("curl")
        .args(["-sS", "--fail", &format!("{base}/metrics")])
        .output()
        .unwrap();
    assert!(
        metrics.status.success(),
        "curl /metrics: {}",
        stderr(&metrics)
    );
    let metrics = stdout(&metrics);
    for (outcome, n) in [("delivered", 1), ("retry", 2), ("gave_up", 0)] {
        let line = format!(
            "userdrop_webhook_deliveries_total{{outcome=\"{outcome}\",tenant=\"{TENANT}\"}} {n}"
        );
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in:\n{metrics}"
        );
    }
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
    got.extend(hook.rest());

    assert_eq!(
        got.iter().map(|g| g.answered).collect::<Vec<_>>(),
        [500, 500, 204],
        "retried after each 500, then delivered exactly once"
    );
    for g in &got {
        assert_eq!(
            (g.method.as_str(), g.path.as_str()),
            ("POST", "/hooks/userdrop")
        );
        assert_eq!(g.header("content-type"), "application/json");
        assert!(g.header("user-agent").starts_with("userdrop/"), "{g:?}");
        assert_eq!(g.header("x-userdrop-event"), "job.finished");
        assert_eq!(g.header("x-userdrop-delivery"), id.to_string());
        assert_eq!(g.body, got[0].body, "every attempt sends the same bytes");
        assert_signed(g);
    }
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["event"], "job.finished");
    assert_eq!(body["id"], job);
    assert_eq!(body["job"], job);
    assert_eq!(body["tenant"], TENANT);
    assert_eq!(body["file"], "users.csv");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["counts"]["added"], 5);
    // The same object `jobs show --json` prints, errors aside.
    let shown = Command::new(bin())
        .arg("--config")
        .arg(&config)
        .args(["jobs", "show", &job.to_string(), "--json"])
        .output()
        .unwrap();
    assert!(shown.status.success(), "{}", stderr(&shown));
    let mut shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let mut sent = body.clone();
    for v in [&mut shown, &mut sent] {
        let o = v.as_object_mut().unwrap();
        o.remove("errors");
        o.remove("event");
        o.remove("id");
    }
    assert_eq!(sent, shown);

    // The operator's view of the same delivery.
    let listed = Command::new(bin())
        .arg("--config")
        .arg(&config)
        .args(["webhooks", "list", "--state", "sent", "--json"])
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["attempts"], 3);
    assert_eq!(listed[0]["last_status"], 204);
    assert_eq!(listed[0]["url"], hook.url.as_str());
}

/// `events = ["job.rejected"]`: a job that finishes queues nothing; a file
/// refused as a whole is POSTed as `job.rejected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_events_a_webhook_lists_are_queued() {
    let hook = receiver(0);
    let (_secrets, secret) = secret_file();
    let env = SftpEnv::new(
        "",
        &webhook_toml(&hook.url, &secret, Some("[\"job.rejected\"]")),
    );
    let config = serve_config(&env, FAST_RETRIES);
    let mut serve = Serve::start(&config);
    env.write("good.local", users_csv(3, "f"));
    env.write(
        "bad.local",
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml",
    );
    let out = sftp_key(&env, serve.port, "put good.local good.csv\n", &[]).await;
    assert_ok(&out, "sftp put good.csv");
    let good = serve.wait_for("archived", &[("file", "good.csv")])["fields"]["job"]
        .as_i64()
        .unwrap();
    let out = sftp_key(&env, serve.port, "put bad.local bad.csv\n", &[]).await;
    assert_ok(&out, "sftp put bad.csv");
    let bad = serve.wait_for("archived", &[("file", "bad.csv")])["fields"]["job"]
        .as_i64()
        .unwrap();
    let g = hook.next("the rejected job's event");
    serve.wait_for("webhook delivered", &[]);
    serve.signal("TERM");
    assert!(serve.wait_exit().success());

    assert_eq!(g.header("x-userdrop-event"), "job.rejected");
    assert_signed(&g);
    let body: serde_json::Value = serde_json::from_slice(&g.body).unwrap();
    assert_eq!(
        (body["event"].as_str(), body["id"].as_i64()),
        (Some("job.rejected"), Some(bad))
    );
    assert_eq!(body["status"], "rejected");
    assert!(
        hook.rest().is_empty(),
        "nothing but the rejected job was POSTed"
    );
    let rows = deliveries(&env.config.db_path());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].1, rows[0].2.as_str()), (bad, "job.rejected"));
    assert!(
        rows.iter().all(|r| r.1 != good),
        "job.finished was not queued"
    );
}

/// The secret is read when the config is: `check-config` says when the
/// variable is missing (naming it, with every other problem) and never
/// prints the secret's value.
#[test]
fn check_config_reads_the_secret_and_never_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("userdrop.toml");
    let write = |events: &str| {
        let hook = format!(
            "[[webhooks]]\nurl = \"https://app.example.com/hooks/userdrop\"\nsecret_env = \"ACME_WEBHOOK_SECRET\"\nevents = {events}\n"
        );
        std::fs::write(&path, config_text(dir.path(), &hook)).unwrap();
    };
    write(r#"["job.held", "job.done"]"#);
    let check = |secret: Option<&str>| {
        let mut c = Command::new(bin());
        c.arg("--config").arg(&path).arg("check-config");
        c.env_remove("USERDROP_CONFIG")
            .env_remove("ACME_WEBHOOK_SECRET");
        if let Some(s) = secret {
            c.env("ACME_WEBHOOK_SECRET", s);
        }
        c.output().unwrap()
    };
    let out = check(None);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("secret_env = \"ACME_WEBHOOK_SECRET\""),
        "{text}"
    );
    assert!(text.contains("\"job.done\" is not one of"), "{text}");

    write(r#"["job.held"]"#);
    let out = check(Some(SECRET));
    assert!(out.status.success(), "{}", stderr(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        !all.contains(SECRET),
        "check-config printed the secret:\n{all}"
    );
}

/// A receiver that never answers 2xx: the delivery is retried until a
/// failed attempt is past `give_up_after`, then given up, loudly, and left
/// `failed` in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_keeps_failing_is_given_up_loudly() {
    let hook = receiver(usize::MAX);
    let (_secrets, secret) = secret_file();
    let env = SftpEnv::new("", &webhook_toml(&hook.url, &secret, None));
    let config = serve_config(
        &env,
        "[smtp]\ntransport = \"file\"\nretry_initial = \"200ms\"\nretry_max = \"200ms\"\ngive_up_after = \"1s\"\n",
    );
    let mut serve = Serve::start(&config);
    env.write("users.local", users_csv(2, "g"));
    let out = sftp_key(&env, serve.port, "put users.local users.csv\n", &[]).await;
    assert_ok(&out, "sftp put users.csv");
    let gave_up = serve.wait_for_prefix("GAVE UP on a webhook");
    assert!(gave_up.contains("NOT delivered"), "{gave_up}");
    serve.signal("TERM");
    assert!(serve.wait_exit().success());

    let rows = deliveries(&env.config.db_path());
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (_, _, event, state, attempts) = &rows[0];
    assert_eq!((event.as_str(), state.as_str()), ("job.finished", "failed"));
    let got = hook.rest();
    assert_eq!(
        got.len() as i64,
        *attempts,
        "one request per recorded attempt"
    );
    assert!(
        *attempts >= 2,
        "it was retried before giving up: {attempts}"
    );
    assert!(got.iter().all(|g| g.answered == 500));
    let last_error: String = sql(&env.config.db_path())
        .query_row("SELECT last_error FROM webhooks", [], |r| r.get(0))
        .unwrap();
    assert!(last_error.contains("HTTP 500"), "{last_error}");
}

/// An https:// receiver: the POST goes over TLS, its certificate checked
/// against the system's CA store (here the test CA, through
/// `SSL_CERT_FILE`, which that store honours).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_receiver_gets_the_signed_post() {
    let (_secrets, secret) = secret_file();
    let certs = tempfile::tempdir().unwrap();
    let ca = TestCa::new(certs.path(), "webhooks");
    let hook = tls_receiver(0, &ca);
    assert!(hook.url.starts_with("https://"));
    let env = SftpEnv::new("", &webhook_toml(&hook.url, &secret, None));
    let config = serve_config(&env, FAST_RETRIES);
    let mut cmd = Command::new(bin());
    cmd.arg("--config")
        .arg(&config)
        .env("SSL_CERT_FILE", &ca.ca);
    let mut serve = Serve::spawn(cmd);
    env.write("users.local", users_csv(2, "s"));
    let out = sftp_key(&env, serve.port, "put users.local users.csv\n", &[]).await;
    assert_ok(&out, "sftp put users.csv");
    let job = serve.wait_for("archived", &[("file", "users.csv")])["fields"]["job"]
        .as_i64()
        .unwrap();
    let g = hook.next("the POST over TLS");
    serve.wait_for("webhook delivered", &[]);
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
    assert_signed(&g);
    let body: serde_json::Value = serde_json::from_slice(&g.body).unwrap();
    assert_eq!(
        (body["event"].as_str(), body["id"].as_i64()),
        (Some("job.finished"), Some(job))
    );
    assert_eq!(g.header("host"), hook.url.split('/').nth(2).unwrap());
}
