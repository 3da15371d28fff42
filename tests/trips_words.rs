//! Words and files a customer gets back (issue 13, points 3, 8, 9, 10),
//! through the real binary and a real SMTP server (aiosmtpd, by
//! `tests/peers/smtp_server.py`): the failed-rows CSV in the upload's own
//! dialect and importing back once fixed, the held-sync mail's verb and
//! list of who, the delimiter hint, and messages naming the customer's
//! columns with values quoted as they are.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::Value;

use crate::util::daemon::{serve_config, Serve};
use crate::util::{bin, repo, stderr, stdout, Env, SftpEnv, TENANT};

// --- words helpers ---

/// The test SMTP server: it binds a port the kernel picks and says so, and
/// prints `message PATH` for each message it accepts.
struct Smtp {
    child: Child,
    port: u16,
    lines: Receiver<String>,
}

impl Smtp {
    fn start(dir: &Path) -> Smtp {
        let ok = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            ok,
            "these tests need python3 with aiosmtpd: pip install aiosmtpd (scripts/test installs it)"
        );
        let mut child = Command::new("python3")
            .arg(repo().join("tests/peers/smtp_server.py"))
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 tests/peers/smtp_server.py");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut smtp = Smtp {
            child,
            port: 0,
            lines,
        };
        let port = smtp.wait_for("its port", "port ");
        smtp.port = port.parse().expect("a port number");
        smtp.wait_for("listening", "up");
        smtp
    }

    /// The rest of the next line starting with `prefix`.
    fn wait_for(&mut self, what: &str, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("the SMTP server did not report {what}: {e}"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_string();
            }
        }
    }

    /// The raw bytes of the next message accepted.
    fn next_message(&mut self) -> Vec<u8> {
        let path = self.wait_for("a message", "message ");
        std::fs::read(path).expect("read the received message")
    }

    fn toml(&self) -> String {
        format!(
            "[smtp]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"User Import <noreply@userdrop.example>\"\n",
            self.port
        )
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the binary with a config file.
fn run(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("USERDROP_CONFIG")
        .output()
        .expect("run userdrop")
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

/// Text as Windows-1252 bytes (the accents used here are all in Latin-1).
fn windows_1252(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character"))
        .collect()
}

/// The files in `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// The attachments of a message: (name, bytes).
fn attachments(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let m = MessageParser::default().parse(bytes).expect("a message");
    (0..m.attachment_count())
        .map(|i| {
            let a = m.attachment(i as u32).unwrap();
            (
                a.attachment_name().unwrap_or_default().to_string(),
                a.contents().to_vec(),
            )
        })
        .collect()
}

fn body_text(bytes: &[u8]) -> String {
    let m = MessageParser::default().parse(bytes).expect("a message");
    m.body_text(0).expect("a text body").into_owned()
}

// --- tests ---

/// A semicolon-separated Windows-1252 file from European Excel got its
/// failed rows back comma-separated, in UTF-8 without a byte order mark:
/// Excel showed one column and broken accents. The attachment,
/// `results/*.errors.csv` and `jobs show --failed-csv` are the same bytes,
/// in the upload's delimiter, UTF-8 with a BOM; and that file, fixed,
/// imports back as it is (its `row` and `error` columns are ignored).
#[test]
fn failed_rows_csv_is_in_the_uploads_delimiter_with_a_bom_and_imports_back_fixed() {
    // Unknown columns refused: the `row` and `error` of our own file are
    // still accepted.
    let env = SftpEnv::new("", "unknown_columns = \"error\"");
    let mut smtp = Smtp::start(&env.path("inbox"));
    let config = serve_config(&env, &smtp.toml());
    let root = env.root(TENANT);
    std::fs::create_dir_all(&root).unwrap();
    let upload = "userId;email;firstName;lastName\r\n\
                  U1;zoe@example.com;Zoë;Müller\r\n\
                  U2;not-an-address;Renée;Dupré\r\n\
                  U3;u3@example.com;François;Lefèvre\r\n\
                  U4;josé@;José;Núñez\r\n";
    std::fs::write(root.join("europe.csv"), windows_1252(upload)).unwrap();

    let mut serve = Serve::start(&config);
    let archived = serve.wait_for("archived", &[("file", "europe.csv")]);
    let job = archived["fields"]["job"].as_i64().expect("the job id");
    let mail = smtp.next_message();
    serve.signal("TERM");
    assert!(serve.wait_exit().success());

    let expected = "\u{feff}userId;email;firstName;lastName;row;error\n\
                    U2;not-an-address;Renée;Dupré;3;\"email “not-an-address” is not a valid address; write it like name@example.com\"\n\
                    U4;josé@;José;Núñez;5;\"email “josé@” is not a valid address; write it like name@example.com\"\n";
    let results = files_ending(&root.join("results"), ".errors.csv");
    assert_eq!(results.len(), 1, "{results:?}");
    let written = std::fs::read(&results[0]).unwrap();
    assert!(written.starts_with(b"\xEF\xBB\xBF"), "no BOM: {written:?}");
    assert_eq!(String::from_utf8_lossy(&written), expected);

    let files = attachments(&mail);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].0, "europe.failed.csv");
    assert_eq!(files[0].1, written, "the attachment is the results file");
    let shown = run(&config, &["jobs", "show", &job.to_string(), "--failed-csv"]);
    assert_eq!(
        shown.stdout,
        written,
        "jobs show --failed-csv: {}",
        stderr(&shown)
    );

    // The customer fixes the two cells in that very file and sends it back.
    let fixed = String::from_utf8(written)
        .unwrap()
        .replace("U2;not-an-address;", "U2;renee@example.com;")
        .replace("U4;josé@;", "U4;jose@example.com;");
    let path = env.write("europe.failed.csv", fixed);
    let out = run(
        &config,
        &[
            "import",
            "--tenant",
            TENANT,
            path.to_str().unwrap(),
            "--json",
        ],
    );
    let v = json(&out);
    assert_eq!(v["counts"]["failed"], 0, "{v:#}");
    assert_eq!(v["counts"]["added"], 2, "{v:#}");
    assert_eq!(v["delimiter"], ";", "{v:#}");
    assert_eq!(v["ignored_columns"], serde_json::json!(["row", "error"]));
    let sql = crate::util::sql(&env.config.db_path());
    let names: Vec<(String, String, String)> = sql
        .prepare("SELECT key, first_name, email FROM users WHERE tenant = ?1 ORDER BY key")
        .unwrap()
        .query_map([TENANT], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let want: Vec<(String, String, String)> = [
        ("U1", "Zoë", "zoe@example.com"),
        ("U2", "Renée", "renee@example.com"),
        ("U3", "François", "u3@example.com"),
        ("U4", "José", "jose@example.com"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(names, want);
}

/// The held-sync mail said "would remove 9 of 20 users" whatever
/// `missing` was, and did not say who: it says deactivate or delete as the
/// tenant does, and attaches the list (key, names, email) of who.
#[test]
fn held_sync_mail_says_deactivate_or_delete_and_attaches_who() {
    for (missing, verb) in [("deactivate", "deactivate"), ("delete", "delete")] {
        let tmp = tempfile::tempdir().unwrap();
        let mut smtp = Smtp::start(&tmp.path().join("inbox"));
        let env = Env::with_root(
            &smtp.toml(),
            &format!("mode = \"sync\"\nmissing = \"{missing}\"\nmax_missing_percent = 10"),
        );
        let mut all = String::from("user_id;email;first_name;last_name\n");
        for i in 1..=20 {
            all.push_str(&format!("U{i:02};u{i}@example.com;First{i};Lëst{i}\n"));
        }
        let first = env.write("all.csv", &all);
        let out = env.import(&first, &["--json"]);
        assert_eq!(json(&out)["counts"]["added"], 20, "{}", stdout(&out));
        // A first sync sends a success report only under notify = always:
        // nothing is queued yet.
        let kept: String = all.lines().take(12).map(|l| format!("{l}\n")).collect();
        let part = env.write("part.csv", kept);
        let out = env.import(&part, &["--json"]);
        let v = json(&out);
        assert_eq!(v["status"], "held", "{v:#}");
        let flushed = env.run(&["mail", "flush"]);
        assert!(flushed.status.success(), "{}", stderr(&flushed));
        let mail = smtp.next_message();

        let m = MessageParser::default().parse(&mail).unwrap();
        assert_eq!(
            m.subject(),
            Some(format!("acme: part.csv on hold — it would {verb} 9 of 20 users").as_str())
        );
        let body = body_text(&mail);
        assert!(
            body.contains(&format!(
                "Users this file would {verb} (they are not in it): 9 of 20."
            )) && body.contains("  U12  First12 Lëst12  u12@example.com"),
            "{body}"
        );
        assert!(!body.contains("remove"), "{body}");
        let files = attachments(&mail);
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].0, format!("part.would-{verb}.csv"));
        let mut want = String::from("\u{feff}key;first_name;last_name;email\n");
        for i in 12..=20 {
            want.push_str(&format!("U{i:02};First{i};Lëst{i};u{i}@example.com\n"));
        }
        assert_eq!(String::from_utf8_lossy(&files[0].1), want, "{missing}");
    }
}

/// Under `delimiter = "auto"` a hyphen- or semicolon-separated file whose
/// header the sniffer split on commas failed `missing_required_column`
/// with no word about the delimiter: it says which one it read with and
/// which one the header fits.
#[test]
fn missing_column_says_which_delimiter_was_assumed_and_which_fits() {
    let env = Env::new("");
    let v = env.import_json(
        "hyphen.csv",
        "user_id-email-Notes, misc\nU1-u1@example.com-a, b\n",
    );
    assert_eq!(v["file_error"]["code"], "missing_required_column", "{v:#}");
    let m = v["file_error"]["message"].as_str().unwrap();
    assert!(
        m.contains("The file was read with ',' as the delimiter; its header splits into the expected columns with '-': set delimiter = \"hyphen\" for this inbox"),
        "{m}"
    );

    let v = env.import_json(
        "semi.csv",
        "user_id;email;Name, First, Last\nU1;u1@example.com;Lee, Ann, B\n",
    );
    let m = v["file_error"]["message"].as_str().unwrap();
    assert!(
        m.contains("The file was read with ',' as the delimiter; its header splits into the expected columns with ';': set delimiter = \"semicolon\""),
        "{m}"
    );

    // No delimiter fits: nothing is made up.
    let v = env.import_json("noemail.csv", "user_id,name\nU1,x\n");
    let m = v["file_error"]["message"].as_str().unwrap();
    assert!(!m.contains("delimiter"), "{m}");
}

/// Messages said `first_name "…"` and `email "…"` for a file whose header
/// says `First Name` and `E-mail`, and quoted values with Rust escapes
/// (`"=HYPERLINK(\"x\")"` reached the CSV as `""=HYPERLINK(\""x\"")""`).
#[test]
fn messages_name_the_customers_columns_and_quote_values_as_they_are() {
    let env = Env::new("");
    let file = env.write(
        "names.csv",
        "User ID,First Name,E-mail\nU1,\"=HYPERLINK(\"\"x\"\")\",u1@example.com\nU2,Ann,not-an-address\nU3,\"\tTab\",u3@example.com\n",
    );
    let out = env.import(&file, &["--json"]);
    let v = json(&out);
    let job = v["job"].as_i64().unwrap();
    assert_eq!(v["errors"][0]["field"], "first_name", "{v:#}");
    assert_eq!(v["errors"][1]["field"], "email", "{v:#}");
    let shown = env.run(&["jobs", "show", &job.to_string(), "--failed-csv"]);
    assert_eq!(
        String::from_utf8(shown.stdout).unwrap(),
        "\u{feff}User ID,First Name,E-mail,row,error\n\
         U1,\"'=HYPERLINK(\"\"x\"\")\",u1@example.com,2,\"First Name “=HYPERLINK(\"\"x\"\")” starts with “=”, which spreadsheets run as a formula; remove that character\"\n\
         U2,Ann,not-an-address,3,E-mail “not-an-address” is not a valid address; write it like name@example.com\n\
         U3,'\tTab,u3@example.com,4,\"First Name “␉Tab” starts with a tab, which spreadsheets run as a formula; remove that character\"\n"
    );
}
