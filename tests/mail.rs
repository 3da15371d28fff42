//! Mail against real peers: a real SMTP server (aiosmtpd, started per test
//! on 127.0.0.1 by `tests/peers/smtp_server.py`, with a test CA made by
//! `openssl` for STARTTLS / TLS), the real binary (`import`, `mail`,
//! `mail flush`, `mail retry`) and the daemon's sender task in-process.
//! Received messages are read back with mail-parser. No peer is mocked,
//! and a missing one fails the test naming what to install. The server
//! binds a port the kernel picks and reports it (an outage is a port it
//! holds bound but not listening), reports every SMTP command it gets, and
//! can refuse the first attempts at RCPT, DATA or AUTH with a 5xx.

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;

use crate::util::{repo, stderr, stdout, Env};

/// How long a test waits for a peer's event before failing.
const PEER_WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Peers

/// The SMTP server of `tests/peers/smtp_server.py`. It binds a port the
/// kernel picks and reports it: no test guesses a free port.
struct Smtp {
    child: Child,
    port: u16,
    dir: PathBuf,
    events: Receiver<String>,
    /// Every line the server printed and the test has read, in order.
    seen: RefCell<Vec<String>>,
}

#[derive(Default)]
struct SmtpOptions<'a> {
    starttls: Option<&'a TestCa>,
    tls: Option<&'a TestCa>,
    auth: Option<&'a str>,
    /// `("rcpt" | "data" | "auth", n)`: the first n attempts are refused
    /// with a permanent (5xx) reply at that stage.
    reject: Option<(&'a str, u32)>,
    /// Bound but not listening (connections refused) until [`Smtp::up`].
    down: bool,
}

impl Smtp {
    fn start(dir: &Path, o: SmtpOptions<'_>) -> Smtp {
        let ok = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            ok,
            "the mail tests need python3 with aiosmtpd: pip install aiosmtpd (scripts/test installs it)"
        );
        let mut cmd = Command::new("python3");
        cmd.arg(repo().join("tests/peers/smtp_server.py"))
            .arg("--dir")
            .arg(dir);
        if let Some(ca) = o.starttls {
            cmd.arg("--starttls").arg(&ca.cert).arg(&ca.key);
        }
        if let Some(ca) = o.tls {
            cmd.arg("--tls").arg(&ca.cert).arg(&ca.key);
        }
        if let Some(a) = o.auth {
            cmd.args(["--auth", a]);
        }
        if let Some((stage, n)) = o.reject {
            cmd.args(["--reject", &format!("{stage}:{n}")]);
        }
        if o.down {
            cmd.arg("--down");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 tests/peers/smtp_server.py");
        let out = child.stdout.take().unwrap();
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut smtp = Smtp {
            child,
            port: 0,
            dir: dir.to_path_buf(),
            events,
            seen: RefCell::new(Vec::new()),
        };
        let first = smtp.wait_for("its port", |l| l.starts_with("port "));
        smtp.port = first["port ".len()..]
            .parse()
            .unwrap_or_else(|_| panic!("unexpected port line from the SMTP server: {first}"));
        if !o.down {
            smtp.wait_for("listening", |l| l == "up");
        }
        smtp
    }

    /// Reads the server's lines until one matches `pred`; returns it.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PEER_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.events.recv_timeout(left).unwrap_or_else(|e| {
                panic!(
                    "the SMTP server did not report {what} ({e}); it said: {:?}",
                    self.seen.borrow()
                )
            });
            self.seen.borrow_mut().push(line.clone());
            if pred(&line) {
                return line;
            }
        }
    }

    /// Starts listening on the port bound at start (`down: true`).
    fn up(&mut self) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("the server's stdin");
        stdin
            .write_all(b"up\n")
            .and_then(|_| stdin.flush())
            .unwrap();
        self.wait_for("listening", |l| l == "up");
    }

    /// Waits for the next message the server accepts.
    fn next_message(&self) -> Received {
        let line = self.wait_for("a message", |l| l.starts_with("message "));
        Received::read(Path::new(&line["message ".len()..]))
    }

    /// Waits for the next message the server refuses at the end of DATA.
    fn next_rejected(&self) -> Received {
        let line = self.wait_for("a refused message", |l| l.starts_with("rejected "));
        Received::read(Path::new(&line["rejected ".len()..]))
    }

    /// The SMTP commands received so far (of the lines read by now).
    fn commands(&self) -> Vec<String> {
        while let Ok(line) = self.events.try_recv() {
            self.seen.borrow_mut().push(line);
        }
        self.seen
            .borrow()
            .iter()
            .filter_map(|l| l.strip_prefix("command ").map(str::to_string))
            .collect()
    }

    /// Messages accepted so far (files in its directory).
    fn count(&self) -> usize {
        received_files(&self.dir).len()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn received_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A message as the server saved it, with its SMTP envelope.
struct Received {
    bytes: Vec<u8>,
    rcpt_tos: Vec<String>,
    mail_from: String,
}

impl Received {
    fn read(path: &Path) -> Received {
        let bytes = std::fs::read(path).expect("read the received message");
        let meta: Value = serde_json::from_slice(
            &std::fs::read(format!("{}.json", path.display())).expect("envelope file"),
        )
        .unwrap();
        Received {
            bytes,
            rcpt_tos: meta["rcpt_tos"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect(),
            mail_from: meta["mail_from"].as_str().unwrap().to_string(),
        }
    }

    /// The header section, as received (up to the first empty line).
    fn head(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        let end = text.find("\r\n\r\n").expect("a header section");
        text[..end].to_string()
    }

    fn message_id(&self) -> String {
        parse(&self.bytes)
            .message_id()
            .expect("a Message-ID")
            .to_string()
    }
}

/// A CA and a server certificate it signed for 127.0.0.1 / localhost.
pub(crate) struct TestCa {
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl TestCa {
    /// A CA and a server certificate it signed for 127.0.0.1 and localhost.
    pub(crate) fn new(dir: &Path, name: &str) -> TestCa {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&d)
                .output()
                .unwrap_or_else(|e| {
                    panic!("cannot run openssl ({e}): install openssl (scripts/test does)")
                });
            assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=userdrop test CA {name}"),
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ]);
        TestCa {
            ca: d.join("ca.pem"),
            cert: d.join("server.pem"),
            key: d.join("server.key"),
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// An `[smtp]` table for the test server on `port`; `extra` keys may set
/// `security` (default "none").
fn smtp_toml(port: u16, extra: &str) -> String {
    let security = if extra.contains("security") {
        ""
    } else {
        "security = \"none\"\n"
    };
    format!(
        "[smtp]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\n{security}from = \"User Import <noreply@userdrop.example>\"\nreply_to = \"ops@userdrop.example\"\n{extra}"
    )
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

fn outbox(env: &Env) -> Vec<Value> {
    let o = env.run(&["mail", "--json"]);
    assert!(o.status.success(), "mail --json: {}", stderr(&o));
    json(&o).as_array().unwrap().clone()
}

fn flush(env: &Env) -> std::process::Output {
    env.run(&["mail", "flush"])
}

/// A file of `rows` users where rows 3, 5, 7 and 9 fail, each with cells
/// that start with a formula character (=, +, -, @, tab, CR).
fn failing_file(rows: usize) -> String {
    let mut s = String::from("userId,email,firstName,lastName,notes\n");
    for i in 1..=rows {
        let row = i + 1;
        let line = match row {
            3 => "U3,not-an-email,=HYPERLINK(\"http://x\"),Lee,+1 555".to_string(),
            5 => "U5,+evil@,Ann,@home,-2".to_string(),
            7 => "U7,u7@example.com,-minus,\"\tTabbed\",x".to_string(),
            9 => "U9,u9@,\"\rCarriage\",Ok,=1+1".to_string(),
            _ => format!("U{row},user{row}@example.com,First{row},Last{row},n"),
        };
        s.push_str(&line);
        s.push('\n');
    }
    s
}

fn parse(bytes: &[u8]) -> mail_parser::Message<'_> {
    MessageParser::default()
        .parse(bytes)
        .expect("the message parses")
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address().map(str::to_string))
            .collect()
    })
    .unwrap_or_default()
}

/// Waits until `cond` holds on the outbox, reading it from the store.
fn wait_for_outbox(db: &Path, what: &str, cond: impl Fn(&[Value]) -> bool) {
    let deadline = Instant::now() + PEER_WAIT;
    loop {
        let store = userdrop::store::Store::open_read_only(db).unwrap();
        let rows: Vec<Value> = userdrop::store::outbox::list(&store, None, 100)
            .unwrap()
            .iter()
            .map(|m| serde_json::json!({"id": m.id, "state": m.state, "attempts": m.attempts}))
            .collect();
        if cond(&rows) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn failed_rows_reach_the_tenant_as_one_message_with_the_rows_attached() {
    let env0 = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&env0.path().join("inbox"), SmtpOptions::default());
    let env = Env::with_root(
        &smtp_toml(smtp.port, ""),
        "failed_import_email = [\"it@acme.example\", \"hr@acme.example\"]",
    );
    let file = env.write("users.csv", failing_file(1250));
    let out = env.import(&file, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let job = report["job"].as_i64().unwrap();
    assert_eq!(report["counts"]["failed"], 4);

    // The CLI import queued it; nothing is sent until a sender runs.
    let queued = outbox(&env);
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0]["state"], "queued");
    assert_eq!(smtp.count(), 0);

    let out = flush(&env);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let got = smtp.next_message();
    // Exactly one: a second flush sends nothing more.
    let out = flush(&env);
    assert!(stdout(&out).contains("sent 0"), "{}", stdout(&out));
    assert_eq!(smtp.count(), 1);
    assert_eq!(outbox(&env)[0]["state"], "sent");

    assert_eq!(got.mail_from, "noreply@userdrop.example");
    assert_eq!(got.rcpt_tos, vec!["it@acme.example", "hr@acme.example"]);
    let m = parse(&got.bytes);
    assert_eq!(
        m.subject(),
        Some("acme: users.csv — 4 of 1,250 rows failed")
    );
    assert_eq!(
        addresses(m.to()),
        vec!["it@acme.example", "hr@acme.example"]
    );
    assert_eq!(addresses(m.from()), vec!["noreply@userdrop.example"]);
    assert_eq!(addresses(m.reply_to()), vec!["ops@userdrop.example"]);
    assert_eq!(
        m.header_raw("X-Userdrop-Job").map(str::trim),
        Some(job.to_string().as_str())
    );
    let body = m.body_text(0).expect("a text body").into_owned();
    let mut needles: Vec<String> = [
        "rows read        1,250",
        "added            1,246",
        "failed               4",
        "row 3  U3  invalid_email: email “not-an-email”",
        "row 7  U7  formula_value: firstName",
        "What happens next:",
        "Attached: users.failed.csv",
    ]
    .map(String::from)
    .to_vec();
    let reasons = report["reasons"].as_object().unwrap();
    assert!(reasons.len() >= 2, "{reasons:?}");
    for (code, n) in reasons {
        needles.push(format!("  {code:<24} {:>9}", n.as_u64().unwrap()));
    }
    for needle in &needles {
        assert!(
            body.contains(needle.as_str()),
            "missing {needle:?} in:\n{body}"
        );
    }

    // The attachment is the failed-rows CSV, byte for byte.
    assert_eq!(m.attachment_count(), 1);
    let att = m.attachment(0).unwrap();
    assert_eq!(att.attachment_name(), Some("users.failed.csv"));
    let shown = env.run(&["jobs", "show", &job.to_string(), "--failed-csv"]);
    assert_eq!(att.contents(), shown.stdout.as_slice());

    // Its rows and `error` cells are the job's row errors, neutralised.
    let errors = report["errors"].as_array().unwrap();
    let original: Vec<Vec<String>> = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(failing_file(1250).as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(att.contents());
    assert_eq!(
        rdr.headers().unwrap().iter().collect::<Vec<_>>(),
        vec![
            "userId",
            "email",
            "firstName",
            "lastName",
            "notes",
            "row",
            "error"
        ]
    );
    let rows: Vec<Vec<String>> = rdr
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 4);
    let neutral = |c: &str| {
        if c.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{c}")
        } else {
            c.to_string()
        }
    };
    for r in &rows {
        let n: u64 = r[5].parse().unwrap();
        let cells: Vec<String> = original[(n - 2) as usize]
            .iter()
            .map(|c| neutral(c))
            .collect();
        assert_eq!(&r[..5], cells.as_slice(), "row {n}");
        let messages: Vec<&str> = errors
            .iter()
            .filter(|e| e["row"] == n)
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        assert_eq!(r[6], neutral(&messages.join("; ")), "row {n}");
    }
    // The tricky cells, spelled out.
    assert_eq!(rows[0][2], "'=HYPERLINK(\"http://x\")");
    assert_eq!(rows[0][4], "'+1 555");
    assert_eq!(rows[1][1], "'+evil@");
    assert_eq!(rows[1][3], "'@home");
    assert_eq!(rows[2][3], "'\tTabbed");
    assert_eq!(rows[3][2], "'\rCarriage");
    assert_eq!(rows[3][4], "'=1+1");
}

#[test]
fn starttls_with_the_test_ca_delivers_and_a_wrong_ca_is_retried_not_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let good = TestCa::new(tmp.path(), "good");
    let wrong = TestCa::new(tmp.path(), "wrong");
    let smtp = Smtp::start(
        &tmp.path().join("inbox"),
        SmtpOptions {
            starttls: Some(&good),
            auth: Some("userdrop:S3cret-pass"),
            ..Default::default()
        },
    );
    let ca_file = tmp.path().join("smtp-ca.pem");
    std::fs::copy(&wrong.ca, &ca_file).unwrap();
    let password_file = tmp.path().join("smtp-password");
    std::fs::write(&password_file, "S3cret-pass\n").unwrap();
    let env = Env::with_root(
        &smtp_toml(
            smtp.port,
            &format!(
                "security = \"starttls\"\nusername = \"userdrop\"\npassword_file = {:?}\nca_file = {:?}\n",
                password_file, ca_file
            ),
        ),
        "",
    );
    let file = env.write("users.csv", failing_file(10));
    assert_eq!(env.import(&file, &[]).status.code(), Some(1));

    // The wrong CA: the certificate is refused, nothing is delivered, the
    // message stays queued with the reason.
    let out = flush(&env);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("will retry 1"), "{}", stdout(&out));
    let m = &outbox(&env)[0];
    assert_eq!(m["state"], "queued");
    assert_eq!(m["attempts"], 1);
    let err = m["last_error"].as_str().unwrap().to_lowercase();
    assert!(
        err.contains("certificate") || err.contains("issuer"),
        "{err}"
    );
    assert!(!stderr(&out).contains("S3cret"), "a password in the logs");
    assert_eq!(smtp.count(), 0);

    // Tried again (still wrong): still queued, never dropped.
    assert_eq!(flush(&env).status.code(), Some(1));
    assert_eq!(outbox(&env)[0]["attempts"], 2);

    // The right CA: delivered, once, over STARTTLS with the password.
    std::fs::copy(&good.ca, &ca_file).unwrap();
    let out = flush(&env);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let got = smtp.next_message();
    assert_eq!(
        parse(&got.bytes).subject(),
        Some("acme: users.csv — 4 of 10 rows failed")
    );
    let m = &outbox(&env)[0];
    assert_eq!(
        (m["state"].as_str(), m["attempts"].as_i64()),
        (Some("sent"), Some(3))
    );
    assert_eq!(m["last_error"], Value::Null);
    assert_eq!(smtp.count(), 1);
}

#[test]
fn implicit_tls_with_a_password_from_the_environment_delivers() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path(), "ca");
    let smtp = Smtp::start(
        &tmp.path().join("inbox"),
        SmtpOptions {
            tls: Some(&ca),
            auth: Some("userdrop:Env-pass-1"),
            ..Default::default()
        },
    );
    let env = Env::with_root(
        &smtp_toml(
            smtp.port,
            &format!(
                "security = \"tls\"\nusername = \"userdrop\"\npassword_env = \"USERDROP_TEST_SMTP_PASSWORD\"\nca_file = {:?}\n",
                ca.ca
            ),
        ),
        "",
    );
    let file = env.write("users.csv", failing_file(4));
    assert_eq!(env.import(&file, &[]).status.code(), Some(1));
    // Without the variable: not sent, queued, the error names the variable.
    let out = flush(&env);
    assert_eq!(out.status.code(), Some(1));
    let err = outbox(&env)[0]["last_error"].as_str().unwrap().to_string();
    assert!(err.contains("USERDROP_TEST_SMTP_PASSWORD"), "{err}");
    let out = Command::new(crate::util::bin())
        .arg("--config")
        .arg(&env.config_path)
        .args(["mail", "flush"])
        .env("USERDROP_TEST_SMTP_PASSWORD", "Env-pass-1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let got = smtp.next_message();
    assert_eq!(
        parse(&got.bytes).subject(),
        Some("acme: users.csv — 2 of 4 rows failed")
    );
    assert_eq!(smtp.count(), 1);
}

#[test]
fn mail_queued_while_smtp_is_down_is_delivered_exactly_once_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    // Down: its port is bound (no other process can take it) but refuses
    // connections until `up`.
    let mut smtp = Smtp::start(
        &tmp.path().join("inbox"),
        SmtpOptions {
            down: true,
            ..Default::default()
        },
    );
    let env = Env::with_root(&smtp_toml(smtp.port, ""), "");
    let file = env.write("users.csv", failing_file(6));
    assert_eq!(env.import(&file, &[]).status.code(), Some(1));
    let queued = outbox(&env);
    let id = queued[0]["id"].as_i64().unwrap();
    let message_id = queued[0]["message_id"].as_str().unwrap().to_string();
    let rendered = env.run(&["mail", "show", &id.to_string()]).stdout;

    // SMTP is down: each process tries, fails, leaves the message queued.
    for attempt in 1..=2 {
        let out = flush(&env);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        let m = &outbox(&env)[0];
        assert_eq!(m["state"], "queued");
        assert_eq!(m["attempts"], attempt);
        assert!(m["next_attempt_at"].is_string());
        let err = m["last_error"].as_str().unwrap().to_lowercase();
        assert!(err.contains("refused"), "{err}");
    }
    assert_eq!(smtp.commands(), Vec::<String>::new());

    // SMTP comes up: delivered, and only once however often senders run.
    smtp.up();
    let out = flush(&env);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let got = smtp.next_message();
    // The resend is the message rendered when the job ended: same bytes,
    // same Message-ID.
    same_bytes(&got.bytes, &rendered);
    assert_eq!(format!("<{}>", got.message_id()), message_id);
    for _ in 0..2 {
        let out = flush(&env);
        assert!(out.status.success());
        assert!(stdout(&out).starts_with("sent 0"), "{}", stdout(&out));
    }
    assert_eq!(smtp.count(), 1);
    assert_eq!(outbox(&env)[0]["state"], "sent");
}

#[test]
fn the_daemon_sender_waits_out_an_outage_and_a_restart_then_delivers_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut smtp = Smtp::start(
        &tmp.path().join("inbox"),
        SmtpOptions {
            down: true,
            ..Default::default()
        },
    );
    let env = Env::with_root(
        &smtp_toml(
            smtp.port,
            "retry_initial = \"50ms\"\nretry_max = \"200ms\"\n",
        ),
        "",
    );
    let file = env.write("users.csv", failing_file(6));
    assert_eq!(env.import(&file, &[]).status.code(), Some(1));
    let rendered = last_message(&env);
    let db = env.config.db_path();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = Arc::new(env.config.clone());
    let start = |rt: &tokio::runtime::Runtime| {
        let (tx, rx) = tokio::sync::watch::channel(config.clone());
        let wake = Arc::new(tokio::sync::Notify::new());
        let cancel = tokio_util::sync::CancellationToken::new();
        let task = rt.spawn(userdrop::mail::sender::run(
            db.clone(),
            rx,
            wake.clone(),
            cancel.clone(),
        ));
        (task, tx, wake, cancel)
    };

    // First daemon: SMTP down, it keeps retrying with backoff.
    let (task, _tx, _wake, cancel) = start(&rt);
    wait_for_outbox(&db, "two failed attempts", |rows| {
        rows.len() == 1 && rows[0]["attempts"].as_i64() >= Some(2) && rows[0]["state"] == "queued"
    });
    cancel.cancel();
    rt.block_on(task).unwrap();

    // SMTP comes up; a new daemon starts and delivers it.
    smtp.up();
    let (task, _tx, wake, cancel) = start(&rt);
    let got = smtp.next_message();
    same_bytes(&got.bytes, &rendered);
    wait_for_outbox(&db, "the message marked sent", |rows| {
        rows[0]["state"] == "sent"
    });
    // Woken again (as after a job): nothing more goes out.
    wake.notify_one();
    let out = flush(&env);
    assert!(stdout(&out).starts_with("sent 0"), "{}", stdout(&out));
    cancel.cancel();
    rt.block_on(task).unwrap();
    assert_eq!(smtp.count(), 1);
}

#[test]
fn expiry_gives_up_loudly_and_mail_retry_resends_it_with_the_same_message_id() {
    let tmp = tempfile::tempdir().unwrap();
    // The first attempt is refused after DATA (the server saw the message).
    let smtp = Smtp::start(
        &tmp.path().join("inbox"),
        SmtpOptions {
            reject: Some(("data", 1)),
            ..Default::default()
        },
    );
    let env = Env::with_root(&smtp_toml(smtp.port, "give_up_after = \"1ms\"\n"), "");
    let file = env.write("users.csv", failing_file(4));
    assert_eq!(env.import(&file, &[]).status.code(), Some(1));

    let out = flush(&env);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("gave up 1"), "{}", stdout(&out));
    let log = stderr(&out);
    assert!(log.contains("ERROR") && log.contains("GAVE UP"), "{log}");
    let first = smtp.next_rejected();
    let failed = json(&env.run(&["mail", "--json", "--state", "failed"]));
    let id = failed[0]["id"].as_i64().expect("one failed message");
    assert!(failed[0]["failed_at"].is_string());
    assert!(
        failed[0]["last_error"].as_str().unwrap().contains("554"),
        "{failed:?}"
    );
    assert_eq!(
        json(&env.run(&["mail", "--json", "--state", "queued"])),
        serde_json::json!([])
    );
    // A failed message is not tried again by itself.
    assert!(stdout(&flush(&env)).starts_with("sent 0, will retry 0, gave up 0; 0 queued"));

    let out = env.run(&["mail", "retry", &id.to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(outbox(&env)[0]["state"], "queued");
    let out = flush(&env);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let again = smtp.next_message();
    assert_eq!(outbox(&env)[0]["state"], "sent");
    // `mail retry` resends the same message: same Message-ID, same bytes.
    assert_eq!(again.message_id(), first.message_id());
    same_bytes(&again.bytes, &first.bytes);
    // A sent message cannot be queued again (it would arrive twice).
    let out = env.run(&["mail", "retry", &id.to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("twice"), "{}", stderr(&out));
    assert_eq!(env.run(&["mail", "retry", "999"]).status.code(), Some(2));
    assert_eq!(smtp.count(), 1);
}

#[test]
fn the_file_transport_writes_an_eml_the_parser_reads() {
    // No [smtp] table: the embedded behaviour, .eml files under data/mail.
    let env = Env::new("");
    let file = env.write("users.csv", failing_file(4));
    let out = env.import(&file, &["--json"]);
    let job = json(&out)["job"].as_i64().unwrap();
    let out = flush(&env);
    assert!(out.status.success(), "{}", stderr(&out));
    let dir = env.config.data_dir.join("mail");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let id = outbox(&env)[0]["id"].as_i64().unwrap();
    assert_eq!(names, vec![format!("{id}.eml")], "one file, no temp left");
    let bytes = std::fs::read(dir.join(format!("{id}.eml"))).unwrap();
    let m = parse(&bytes);
    assert_eq!(m.subject(), Some("acme: users.csv — 2 of 4 rows failed"));
    assert_eq!(addresses(m.to()), vec!["it@acme.example"]);
    assert!(m
        .message_id()
        .is_some_and(|id| id.starts_with("userdrop.acme.")));
    assert_eq!(
        m.attachment(0).unwrap().contents(),
        env.run(&["jobs", "show", &job.to_string(), "--failed-csv"])
            .stdout
            .as_slice()
    );
    // `mail show` prints the same bytes.
    assert_eq!(env.run(&["mail", "show", &id.to_string()]).stdout, bytes);
}

#[test]
fn a_job_without_failures_sends_nothing_unless_notify_is_always() {
    let good = "userId,email\nU1,ann@example.com\nU2,bob@example.com\n";
    let env = Env::new("");
    let out = env.import(&env.write("users.csv", good), &[]);
    assert!(out.status.success());
    assert_eq!(outbox(&env), Vec::<Value>::new());
    assert!(flush(&env).status.success());
    assert!(!env.config.data_dir.join("mail").exists());

    let env = Env::new("notify = \"never\"");
    let out = env.import(&env.write("users.csv", failing_file(4)), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(outbox(&env), Vec::<Value>::new());

    let env = Env::new("notify = \"always\"");
    env.import(&env.write("users.csv", good), &[]);
    let list = outbox(&env);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["kind"], "success");
    assert!(flush(&env).status.success());
    let id = list[0]["id"].as_i64().unwrap();
    let bytes = std::fs::read(env.config.data_dir.join(format!("mail/{id}.eml"))).unwrap();
    let m = parse(&bytes);
    assert_eq!(m.subject(), Some("acme: users.csv imported — 2 rows"));
    assert_eq!(m.attachment_count(), 0);
    assert!(m.body_text(0).unwrap().contains("added                2"));
}

/// The message queued for the newest job, read through `mail show`.
fn last_message(env: &Env) -> Vec<u8> {
    let list = outbox(env);
    let id = list[0]["id"].as_i64().expect("a queued message");
    env.run(&["mail", "show", &id.to_string()]).stdout
}

#[test]
fn refused_and_held_files_get_a_message_saying_what_to_fix() {
    let env = Env::new("mode = \"sync\"");
    // An Excel workbook under a .csv name.
    let mut xlsx = b"PK\x03\x04".to_vec();
    xlsx.extend_from_slice(&[0u8; 64]);
    env.import(&env.write("users.csv", &xlsx), &[]);
    let bytes = last_message(&env);
    let m = parse(&bytes);
    assert_eq!(
        m.subject(),
        Some("acme: users.csv not imported — not a CSV file")
    );
    let body = m.body_text(0).unwrap().into_owned();
    assert!(body.contains("unsupported_file_type"), "{body}");
    assert!(body.contains("Save the file as CSV"), "{body}");
    assert_eq!(m.attachment_count(), 0);

    // A missing column: which one, and the header names understood.
    env.import(&env.write("users.csv", "userId,name\nU1,Ann\n"), &[]);
    let bytes = last_message(&env);
    let m = parse(&bytes);
    assert_eq!(
        m.subject(),
        Some("acme: users.csv not imported — a required column is missing")
    );
    let body = m.body_text(0).unwrap().into_owned();
    assert!(body.contains("Add the email column"), "{body}");
    assert!(
        body.contains("\"e-mail\"") || body.contains("\"E-mail\""),
        "{body}"
    );

    // Undecodable: binary that is no workbook.
    env.import(
        &env.write("users.csv", b"userId,email\nU1,\x00\x00\x01\n"),
        &[],
    );
    let bytes = last_message(&env);
    let body = parse(&bytes).body_text(0).unwrap().into_owned();
    assert!(body.contains("Export the file again as CSV text"), "{body}");

    // A sync that would deactivate most users is held.
    env.import(
        &env.write("users.csv", crate::util::users_csv(20, "a")),
        &[],
    );
    env.import(&env.write("users.csv", crate::util::users_csv(2, "a")), &[]);
    let bytes = last_message(&env);
    let m = parse(&bytes);
    assert_eq!(
        m.subject(),
        Some("acme: users.csv on hold — it would deactivate 17 of 20 users")
    );
    let body = m.body_text(0).unwrap().into_owned();
    assert!(body.contains("userdrop jobs approve"), "{body}");
}

#[test]
fn a_large_attachment_is_cut_at_a_row_boundary_with_a_note() {
    let env = Env::with_root(
        "[smtp]\ntransport = \"file\"\nmax_attachment_bytes = \"1KiB\"\n",
        "",
    );
    let mut s = String::from("userId,email\n");
    for i in 0..200 {
        s.push_str(&format!("U{i},bad-address-{i}\n"));
    }
    let out = env.import(&env.write("big.csv", s), &["--json"]);
    let job = json(&out)["job"].as_i64().unwrap();
    let bytes = last_message(&env);
    let m = parse(&bytes);
    assert_eq!(m.subject(), Some("acme: big.csv — 200 of 200 rows failed"));
    let att = m.attachment(0).unwrap().contents().to_vec();
    let full = env
        .run(&["jobs", "show", &job.to_string(), "--failed-csv"])
        .stdout;
    assert!(att.len() <= 1024 && att.len() > 100, "{}", att.len());
    assert!(full.starts_with(&att) && att.ends_with(b"\n"));
    let kept = att.iter().filter(|&&b| b == b'\n').count() - 1;
    let body = m.body_text(0).unwrap().into_owned();
    assert!(
        body.contains(&format!("the first {kept} of 200 failed rows")),
        "{body}"
    );
    assert!(body.contains("results/"), "{body}");
    assert!(body.contains("The first 20 of 200 failures"), "{body}");
}

#[test]
fn new_users_who_asked_get_an_invitation_through_the_outbox() {
    let env = Env::new(
        r#"
        [invitation]
        subject = "Welcome to {tenant}, {first_name}"
        body = "Hello {first_name} {last_name},\n\nset up your account: {link}\n"
        link = "https://app.example.com/invite?tenant={tenant}&user={user_id}&email={email}"
        "#,
    );
    let file = env.write(
        "users.csv",
        "userId,email,firstName,lastName,notifyIfNewUser\n\
         U1,ann+x@example.com,Ann,Lee,true\n\
         U2,bob@example.com,Bob,Ray,false\n\
         U3,not-an-email,Cy,Doe,true\n",
    );
    env.import(&file, &[]);
    let list = outbox(&env);
    let invitations: Vec<&Value> = list.iter().filter(|m| m["kind"] == "invitation").collect();
    assert_eq!(invitations.len(), 1, "{list:?}");
    assert_eq!(
        invitations[0]["to"],
        serde_json::json!(["ann+x@example.com"])
    );
    assert!(flush(&env).status.success());
    let id = invitations[0]["id"].as_i64().unwrap();
    let bytes = std::fs::read(env.config.data_dir.join(format!("mail/{id}.eml"))).unwrap();
    let m = parse(&bytes);
    assert_eq!(m.subject(), Some("Welcome to acme, Ann"));
    assert_eq!(
        m.body_text(0).unwrap().replace("\r\n", "\n").trim_end(),
        "Hello Ann Lee,\n\nset up your account: https://app.example.com/invite?tenant=acme&user=U1&email=ann%2Bx%40example.com"
    );
    // The user exists now: importing the row again invites nobody.
    env.import(&file, &[]);
    let again = outbox(&env);
    assert_eq!(
        again.iter().filter(|m| m["kind"] == "invitation").count(),
        1
    );
}

#[test]
fn invitation_templates_are_checked_with_the_config() {
    let env = Env::new("");
    let bad = env.write(
        "bad.toml",
        format!(
            "data_dir = {:?}\n[smtp]\ntransport = \"file\"\nca_file = \"/x\"\n[tenants.acme]\nfailed_import_email = \"it@acme.example\"\n[tenants.acme.invitation]\nsubject = \"Hi {{name}}\"\nbody = \"Go: {{link}}\"\n",
            env.path("data")
        ),
    );
    let out = Command::new(crate::util::bin())
        .arg("--config")
        .arg(&bad)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for needle in [
        "unknown placeholder {name}",
        "uses {link} but no link template",
        "smtp.ca_file does not apply",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
}

/// Asserts two messages are the same bytes, showing where they differ.
fn same_bytes(got: &[u8], want: &[u8]) {
    if got != want {
        let at = got.iter().zip(want).take_while(|(a, b)| a == b).count();
        let show = |b: &[u8]| {
            String::from_utf8_lossy(&b[at.saturating_sub(40)..(at + 40).min(b.len())]).into_owned()
        };
        panic!(
            "different messages ({} and {} bytes), from byte {at}: {:?} vs {:?}",
            got.len(),
            want.len(),
            show(got),
            show(want)
        );
    }
}

/// The one message in the outbox, read from the store.
fn the_message(env: &Env) -> userdrop::store::outbox::Entry {
    let store = userdrop::store::Store::open_read_only(&env.config.db_path()).unwrap();
    let mut list = userdrop::store::outbox::list(&store, None, 10).unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    list.remove(0)
}

/// Rewrites the config's `[smtp] port` (the test moves to another server).
fn point_at(env: &Env, from: u16, to: u16) {
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    let line = format!("port = {from}\n");
    assert!(text.contains(&line), "{text}");
    std::fs::write(
        &env.config_path,
        text.replace(&line, &format!("port = {to}\n")),
    )
    .unwrap();
}

#[test]
fn starttls_is_required_a_server_without_it_gets_nothing_and_the_message_stays_queued() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = TestCa::new(tmp.path(), "ca");
    // aiosmtpd without a TLS context: STARTTLS is not offered at all.
    let plain = Smtp::start(&tmp.path().join("plain"), SmtpOptions::default());
    let env = Env::with_root(
        &smtp_toml(
            plain.port,
            &format!("security = \"starttls\"\nca_file = {:?}\n", ca.ca),
        ),
        "",
    );
    let file = env.write("users.csv", failing_file(4));
    assert_eq!(env.import(&file, &[]).status.code(), Some(1));

    for attempt in 1..=2 {
        let out = flush(&env);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        assert!(stdout(&out).contains("will retry 1"), "{}", stdout(&out));
        // The client talked to the server, then hung up.
        plain.wait_for("the client hanging up", |l| l == "disconnect");
        let m = &outbox(&env)[0];
        assert_eq!(m["state"], "queued");
        assert_eq!(m["attempts"], attempt);
        let err = m["last_error"].as_str().unwrap();
        assert!(err.to_lowercase().contains("tls"), "{err}");
    }
    // It greeted the server and sent nothing else in clear text: no sender,
    // no recipient, no message.
    let commands = plain.commands();
    assert!(commands.iter().any(|c| c == "EHLO"), "{commands:?}");
    for verb in ["MAIL", "RCPT", "DATA", "AUTH"] {
        assert!(
            !commands.iter().any(|c| c == verb),
            "{verb} in {commands:?}"
        );
    }
    assert_eq!(std::fs::read_dir(&plain.dir).unwrap().count(), 0);
    // `userdrop mail` shows it queued, with the reason.
    let out = env.run(&["mail"]);
    let list = stdout(&out);
    assert!(
        list.contains("queued") && list.contains("last error:"),
        "{list}"
    );

    // The same message goes out once the server offers STARTTLS.
    let secure = Smtp::start(
        &tmp.path().join("secure"),
        SmtpOptions {
            starttls: Some(&ca),
            ..Default::default()
        },
    );
    point_at(&env, plain.port, secure.port);
    let out = flush(&env);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let got = secure.next_message();
    assert_eq!(
        parse(&got.bytes).subject(),
        Some("acme: users.csv — 2 of 4 rows failed")
    );
    let commands = secure.commands();
    let tls = commands.iter().position(|c| c == "STARTTLS");
    let mail = commands.iter().position(|c| c == "MAIL");
    assert!(tls.is_some() && tls < mail, "{commands:?}");
    let m = &outbox(&env)[0];
    assert_eq!(
        (m["state"].as_str(), m["attempts"].as_i64()),
        (Some("sent"), Some(3))
    );
    assert_eq!(secure.count(), 1);
}

/// A server that refuses the first three attempts at `stage` with a
/// permanent `code` reply: each refusal leaves the message queued, due again
/// after 1 h, 2 h, then 3 h (doubling from retry_initial, capped at
/// retry_max); the fourth attempt delivers it, once, with the Message-ID it
/// was queued with.
fn a_permanent_refusal_is_retried_on_the_doubling_schedule(stage: &str, code: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let password_file = tmp.path().join("smtp-password");
    std::fs::write(&password_file, "S3cret-pass\n").unwrap();
    let hour = 3_600_000i64;
    let auth = stage == "auth";
    let ca = auth.then(|| TestCa::new(tmp.path(), "ca"));
    // The first three attempts are refused with a 5xx, then accepted.
    let smtp = Smtp::start(
        &tmp.path().join(stage),
        SmtpOptions {
            tls: ca.as_ref(),
            auth: auth.then_some("userdrop:S3cret-pass"),
            reject: Some((stage, 3)),
            ..Default::default()
        },
    );
    let mut extra = "retry_initial = \"1h\"\nretry_max = \"3h\"\n".to_string();
    if let Some(ca) = &ca {
        extra.push_str(&format!(
                "security = \"tls\"\nusername = \"userdrop\"\npassword_file = {password_file:?}\nca_file = {:?}\n",
                ca.ca
            ));
    }
    let env = Env::with_root(&smtp_toml(smtp.port, &extra), "");
    let file = env.write("users.csv", failing_file(4));
    assert_eq!(env.import(&file, &[]).status.code(), Some(1));
    let queued = the_message(&env);

    // Each refusal keeps it queued; the next attempt is due 1 h, 2 h,
    // then 3 h later (doubling, capped at retry_max).
    let mut refused = Vec::new();
    for (attempt, wait) in [(1, hour), (2, 2 * hour), (3, 3 * hour)] {
        let before = userdrop::store::outbox::now_ms();
        let out = flush(&env);
        let after = userdrop::store::outbox::now_ms();
        assert_eq!(out.status.code(), Some(1), "{stage}: {}", stdout(&out));
        assert!(
            stdout(&out).contains("will retry 1"),
            "{stage}: {}",
            stdout(&out)
        );
        assert!(!stderr(&out).contains("S3cret"), "a password in the logs");
        let m = the_message(&env);
        assert_eq!(
            (m.state.as_str(), m.attempts),
            ("queued", attempt),
            "{stage}"
        );
        let err = m.last_error.clone().unwrap_or_default();
        assert!(err.contains(code), "{stage}: {err}");
        assert!(
            (before + wait..=after + wait).contains(&m.next_attempt_at),
            "{stage}: attempt {attempt} due in {} ms, not {wait}",
            m.next_attempt_at - before
        );
        if stage == "data" {
            refused.push(smtp.next_rejected());
        }
    }
    let out = flush(&env);
    assert!(
        out.status.success(),
        "{stage}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let got = smtp.next_message();
    let m = the_message(&env);
    assert_eq!((m.state.as_str(), m.attempts), ("sent", 4), "{stage}");
    assert_eq!(smtp.count(), 1, "{stage}");
    // Every attempt carried the message as queued: one Message-ID.
    assert_eq!(format!("<{}>", got.message_id()), queued.message_id);
    for r in &refused {
        assert_eq!(r.message_id(), got.message_id());
        same_bytes(&r.bytes, &got.bytes);
    }
    let seen = smtp.seen.borrow().clone();
    if auth {
        let outcomes: Vec<&String> = seen.iter().filter(|l| l.starts_with("auth ")).collect();
        assert_eq!(
            outcomes,
            ["auth rejected", "auth rejected", "auth rejected", "auth ok"],
            "{seen:?}"
        );
        assert!(!stderr(&out).contains("S3cret"), "a password in the logs");
    }
}

#[test]
fn a_5xx_at_rcpt_is_retried_on_the_doubling_schedule_not_dropped() {
    a_permanent_refusal_is_retried_on_the_doubling_schedule("rcpt", "550");
}

#[test]
fn a_5xx_after_data_is_retried_with_the_same_message_id_not_dropped() {
    a_permanent_refusal_is_retried_on_the_doubling_schedule("data", "554");
}

#[test]
fn an_auth_rejection_is_retried_on_the_doubling_schedule_not_dropped() {
    a_permanent_refusal_is_retried_on_the_doubling_schedule("auth", "535");
}

/// The kinds of the messages in the outbox, oldest first.
fn kinds(env: &Env) -> Vec<String> {
    let mut list = outbox(env);
    list.reverse();
    list.iter()
        .map(|m| m["kind"].as_str().unwrap().to_string())
        .collect()
}

const INVITATION: &str = r#"
[invitation]
subject = "Welcome to {tenant}, {first_name}"
body = "Hello {first_name},\n\nset up your account: {link}\n"
link = "https://app.example.com/invite?user={user_id}"
"#;

/// `rows` valid users U1..; those in `invite` ask for an invitation.
fn invite_file(rows: usize, invite: &[usize], extra: &str) -> String {
    let mut s = String::from("userId,email,firstName,lastName,notifyIfNewUser\n");
    for i in 1..=rows {
        s.push_str(&format!(
            "U{i},user{i}@example.com,First{i},Last{i},{}\n",
            invite.contains(&i)
        ));
    }
    s.push_str(extra);
    s
}

#[test]
fn every_message_carries_auto_submitted_on_the_wire() {
    let tmp = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&tmp.path().join("inbox"), SmtpOptions::default());
    let env = Env::with_root(
        &smtp_toml(smtp.port, ""),
        &format!("mode = \"sync\"\nnotify = \"always\"\n{INVITATION}"),
    );
    // A good file (a summary, and an invitation for U1), a refused file,
    // a held sync and a file with a failed row: every kind of message.
    env.import(&env.write("users.csv", invite_file(20, &[1], "")), &[]);
    let mut xlsx = b"PK\x03\x04".to_vec();
    xlsx.extend_from_slice(&[0u8; 64]);
    env.import(&env.write("users.csv", &xlsx), &[]);
    env.import(&env.write("users.csv", invite_file(2, &[], "")), &[]);
    env.import(
        &env.write(
            "users.csv",
            invite_file(20, &[], "U99,not-an-email,A,B,false\n"),
        ),
        &[],
    );
    assert_eq!(
        kinds(&env),
        ["success", "invitation", "failure", "failure", "failure"]
    );
    let out = flush(&env);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let mut subjects = Vec::new();
    for _ in 0..5 {
        let got = smtp.next_message();
        let head = got.head();
        let auto: Vec<&str> = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("auto-submitted:"))
            .collect();
        assert_eq!(auto, ["Auto-Submitted: auto-generated"], "{head}");
        subjects.push(parse(&got.bytes).subject().unwrap_or_default().to_string());
    }
    assert_eq!(
        subjects,
        [
            "acme: users.csv imported — 20 rows",
            "Welcome to acme, First1",
            "acme: users.csv not imported — not a CSV file",
            "acme: users.csv on hold — it would deactivate 18 of 20 users",
            "acme: users.csv — 1 of 21 rows failed",
        ]
    );
    assert_eq!(smtp.count(), 5);
}

#[test]
fn a_rejected_or_held_job_invites_nobody() {
    // on_error = "reject_file": one bad row and nobody is created, so nobody
    // is invited, even the valid new user who asked.
    let env = Env::new(&format!("on_error = \"reject_file\"\n{INVITATION}"));
    let out = env.import(
        &env.write(
            "users.csv",
            invite_file(1, &[1], "U2,not-an-email,A,B,true\n"),
        ),
        &["--json"],
    );
    assert_eq!(json(&out)["status"], "rejected");
    assert_eq!(kinds(&env), ["failure"]);
    assert!(flush(&env).status.success());
    let sent = std::fs::read_dir(env.config.data_dir.join("mail"))
        .unwrap()
        .count();
    assert_eq!(sent, 1, "only the report is sent");
    // The same user in a file without the bad row is created and invited.
    let out = env.import(
        &env.write("users.csv", invite_file(1, &[1], "")),
        &["--json"],
    );
    assert_eq!(json(&out)["status"], "ok");
    assert_eq!(kinds(&env), ["failure", "invitation"]);

    // A held sync: the new user who asked is not invited while it is held;
    // approving the job creates the user and invites them.
    let env = Env::new(&format!("mode = \"sync\"\n{INVITATION}"));
    env.import(&env.write("users.csv", invite_file(20, &[], "")), &[]);
    assert_eq!(kinds(&env), Vec::<String>::new());
    let out = env.import(
        &env.write(
            "users.csv",
            invite_file(2, &[], "U99,u99@example.com,New,User,true\n"),
        ),
        &["--json"],
    );
    let report = json(&out);
    assert_eq!(report["status"], "held");
    assert_eq!(kinds(&env), ["failure"]);
    assert!(flush(&env).status.success());
    let sent = std::fs::read_dir(env.config.data_dir.join("mail"))
        .unwrap()
        .count();
    assert_eq!(sent, 1, "only the hold notice is sent");
    let job = report["job"].as_i64().unwrap().to_string();
    let out = env.run(&["jobs", "approve", &job]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert_eq!(kinds(&env), ["failure", "invitation"]);
    assert_eq!(
        outbox(&env)[0]["to"],
        serde_json::json!(["u99@example.com"])
    );
}

#[test]
fn invitations_do_not_depend_on_notify() {
    for notify in ["never", "failures", "always"] {
        let env = Env::new(&format!("notify = \"{notify}\"\n{INVITATION}"));
        // All rows good: U1 asked to be invited, U2 did not.
        let out = env.import(&env.write("users.csv", invite_file(2, &[1], "")), &[]);
        assert!(out.status.success(), "{notify}: {}", stderr(&out));
        let expected: &[&str] = match notify {
            "always" => &["success", "invitation"],
            _ => &["invitation"],
        };
        assert_eq!(kinds(&env), expected, "notify = {notify}");
        // Rows failed: the valid new user who asked is invited all the same.
        let out = env.import(
            &env.write(
                "users.csv",
                invite_file(0, &[], "U3,u3@example.com,C,D,true\nU4,bad,E,F,true\n"),
            ),
            &[],
        );
        assert_eq!(out.status.code(), Some(1), "{notify}");
        let mut expected = expected.to_vec();
        if notify != "never" {
            expected.push("failure");
        }
        expected.push("invitation");
        assert_eq!(kinds(&env), expected, "notify = {notify}");

        // Delivered: the invitations reach U1 and U3.
        assert!(flush(&env).status.success());
        let mut invited = Vec::new();
        for m in outbox(&env).iter().filter(|m| m["kind"] == "invitation") {
            assert_eq!(m["state"], "sent");
            let id = m["id"].as_i64().unwrap();
            let bytes = std::fs::read(env.config.data_dir.join(format!("mail/{id}.eml"))).unwrap();
            invited.extend(addresses(parse(&bytes).to()));
        }
        invited.sort();
        assert_eq!(invited, ["u3@example.com", "user1@example.com"], "{notify}");
    }
}
