//! SCIM 2.0 provisioning against a real application: scim2-server (pip
//! install scim2-server; tests/peers/scim_server.py starts it on a free
//! port and says which). Files go in over SFTP to the real `userdrop
//! serve`; what the application holds is read back from the application
//! itself (GET /v2/Users), never from userdrop's tables. Each test waits
//! for the provisioner's `provisioned` (or `resynced`) log line. The retry
//! paths scim2-server never takes (5xx, 429 with Retry-After, an
//! application that is down) go through tests/peers/scim_flaky.py, a
//! reverse proxy in front of it that answers some requests itself and
//! prints every request it saw.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::util::clients::{assert_ok, require, sftp_key};
use crate::util::daemon::{serve_config, Serve};
use crate::util::{bin, heavy, repo, sql, stderr, stdout, users_csv, SftpEnv, TENANT};

const TOKEN: &str = "scim-test-token";

/// The boss (`w1`) is the second row, after someone reporting to them.
const FIRST: &str = "userId,email,firstName,lastName,reportsTo,mobileNumber,country\n\
u2,u2@example.com,Bob,Two,w1,+15550102,US\n\
w1,w1@example.com,Wendy,One,,,\n\
u3,u3@example.com,Cy,Three,w1,,\n\
u4,u4@example.com,Di,Four,w1,,\n\
u5,u5@example.com,Ed,Five,,,\n\
u6,u6@example.com,Flo,Six,,,\n";

/// u2, u3 and w1 renamed, u4 deleted by a DELETE row, u5 and u6 left out
/// (the sync deactivates them), u7 new.
const SECOND: &str = "userId,email,firstName,lastName,reportsTo,action\n\
u2,u2@example.com,Bobby,Two,w1,\n\
w1,w1@example.com,Wendy,Uno,,\n\
u3,u3@example.com,Cyd,Three,w1,\n\
u4,,,,,DELETE\n\
u7,u7@example.com,Gus,Seven,w1,\n";

/// scim2-server, in memory: stopped (and everything it held forgotten)
/// when dropped.
struct App {
    child: Child,
    port: u16,
}

impl App {
    /// On `port` (0: any free one).
    fn start(port: u16) -> App {
        require("python3", "python3");
        let mut child = Command::new("python3")
            .arg(repo().join("tests/peers/scim_server.py"))
            .args(["--port", &port.to_string(), "--bearer-token", TOKEN])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 tests/peers/scim_server.py");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let port = loop {
            line.clear();
            let n = out.read_line(&mut line).unwrap();
            assert!(
                n > 0,
                "the SCIM application exited before listening ({:?}): install it with `pip install scim2-server` (scripts/test does)",
                child.wait()
            );
            if let Some(p) = line.trim().strip_prefix("PORT ") {
                break p.parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in out.lines() {});
        App { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    /// Every user the application holds, by userName (a userName held
    /// twice fails the test), read 1000 at a time.
    fn users(&self) -> BTreeMap<String, serde_json::Value> {
        let mut by_name = BTreeMap::new();
        let mut start = 1;
        loop {
            let out = Command::new("curl")
                .args(["-sS", "-f", "-H", &format!("Authorization: Bearer {TOKEN}")])
                .arg(format!(
                    "{}/Users?count=1000&startIndex={start}",
                    self.url()
                ))
                .output()
                .expect("curl");
            assert_ok(&out, "GET /v2/Users");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let page = v["Resources"].as_array().cloned().unwrap_or_default();
            for u in &page {
                let name = u["userName"].as_str().unwrap().to_string();
                assert!(
                    by_name.insert(name.clone(), u.clone()).is_none(),
                    "userName {name} is held twice"
                );
            }
            start += page.len();
            if page.is_empty() || start > v["totalResults"].as_u64().unwrap_or(0) as usize {
                return by_name;
            }
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the proxy answered: `REQ n ms method path userName status`.
#[derive(Debug, Clone)]
struct Req {
    n: u64,
    ms: u64,
    method: String,
    path: String,
    user: String,
    /// 0: closed without an answer (no backend).
    status: u16,
}

/// tests/peers/scim_flaky.py: a reverse proxy in front of the application
/// that answers some requests itself with an error (or closes the
/// connection while it has no backend), and reports every request. Its
/// port stays the same while the application behind it changes.
struct Flaky {
    child: Child,
    port: u16,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<Req>,
}

impl Flaky {
    /// In front of `backend` (None: down until [`Flaky::backend`]), with
    /// scim_flaky.py's fault options.
    fn start(backend: Option<u16>, args: &[&str]) -> Flaky {
        require("python3", "python3");
        let mut cmd = Command::new("python3");
        cmd.arg(repo().join("tests/peers/scim_flaky.py")).args(args);
        if let Some(p) = backend {
            cmd.args(["--backend", &p.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 tests/peers/scim_flaky.py");
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut f = Flaky {
            child,
            port: 0,
            stdin,
            lines,
            seen: Vec::new(),
        };
        let line = f.next_line("PORT");
        f.port = line.strip_prefix("PORT ").unwrap().parse().unwrap();
        f
    }

    /// The next line starting with `prefix` (REQ lines on the way are kept).
    fn next_line(&mut self, prefix: &str) -> String {
        loop {
            let line = self.one_line(prefix);
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// The next line the proxy prints; a REQ line is kept in `seen`.
    fn one_line(&mut self, what: &str) -> String {
        let line = self
            .lines
            .recv_timeout(crate::util::daemon::JOB_TIMEOUT)
            .unwrap_or_else(|_| {
                panic!(
                    "scim_flaky.py said nothing while waiting for {what} (exited: {:?}); seen: {:#?}",
                    self.child.try_wait(),
                    self.seen
                )
            });
        if let Some(req) = line.strip_prefix("REQ ") {
            let f: Vec<&str> = req.split(' ').collect();
            self.seen.push(Req {
                n: f[0].parse().unwrap(),
                ms: f[1].parse().unwrap(),
                method: f[2].to_string(),
                path: f[3].to_string(),
                user: f[4].to_string(),
                status: f[5].parse().unwrap(),
            });
        }
        line
    }

    /// Points the proxy at the application on `port`.
    fn backend(&mut self, port: u16) {
        use std::io::Write as _;
        writeln!(self.stdin, "BACKEND {port}").unwrap();
        self.stdin.flush().unwrap();
        self.next_line(&format!("BACKEND {port}"));
    }

    /// Waits until the requests seen satisfy `done`.
    fn wait_until(&mut self, what: &str, done: impl Fn(&[Req]) -> bool) {
        while !done(&self.seen) {
            self.one_line(what);
        }
    }

    /// Every request before a marker request of the test's own: what the
    /// daemon sent is reported by then (it had its answers already).
    fn requests(&mut self) -> Vec<Req> {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-H",
                &format!("Authorization: Bearer {TOKEN}"),
            ])
            .arg(format!("http://127.0.0.1:{}/v2/marker", self.port))
            .output()
            .expect("curl");
        assert!(out.status.success(), "curl through scim_flaky.py: {out:?}");
        self.wait_until("the marker request", |seen| {
            seen.iter().any(|r| r.path == "/v2/marker")
        });
        let mut seen: Vec<Req> = self
            .seen
            .iter()
            .filter(|r| r.path != "/v2/marker")
            .cloned()
            .collect();
        seen.sort_by_key(|r| r.n);
        seen
    }
}

impl Drop for Flaky {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Four users, no managers: each is one POST.
const FOUR: &str = "userId,email,firstName,lastName\n\
a1,a1@example.com,Ann,One\n\
a2,a2@example.com,Bob,Two\n\
a3,a3@example.com,Cy,Three\n\
a4,a4@example.com,Di,Four\n";

/// An SFTP env whose tenant acme (sync mode) provisions into `port`.
fn env_for(port: u16) -> (SftpEnv, std::path::PathBuf) {
    require("curl", "curl");
    let env = SftpEnv::new(
        "",
        &format!(
            "mode = \"sync\"\nmax_missing_percent = 50\n\
             [provision]\nscim_url = \"http://127.0.0.1:{port}/v2\"\ntoken_file = \"TOKEN_FILE\"\n"
        ),
    );
    let token = env.write("scim.token", format!("{TOKEN}\n"));
    let config = serve_config(&env, "[http]\nlisten = \"127.0.0.1:0\"\n");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("TOKEN_FILE", token.to_str().unwrap())).unwrap();
    (env, config)
}

fn last_seq(env: &SftpEnv) -> i64 {
    sql(&env.config.db_path())
        .query_row(
            "SELECT max(seq) FROM changes WHERE tenant = ?1",
            [TENANT],
            |r| r.get(0),
        )
        .unwrap()
}

/// Uploads a file and waits for its job to be archived: the job's id.
async fn upload(env: &SftpEnv, serve: &mut Serve, name: &str, text: &str) -> i64 {
    env.write(name, text);
    assert_ok(
        &sftp_key(env, serve.port, &format!("put {name}\n"), &[]).await,
        "sftp put",
    );
    let line = serve.wait_for("archived", &[("tenant", TENANT), ("file", name)]);
    line["fields"]["job"].as_i64().expect("the job's id")
}

/// Waits until the application was brought up to the ledger's last change.
fn wait_provisioned(env: &SftpEnv, serve: &mut Serve) {
    let seq = last_seq(env).to_string();
    serve.wait_for("provisioned", &[("tenant", TENANT), ("seq", &seq)]);
}

fn provision_cli(config: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("--config")
        .arg(config)
        .arg("provision")
        .args(args)
        .output()
        .unwrap()
}

fn status_json(config: &std::path::Path) -> serde_json::Value {
    let out = provision_cli(config, &["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(stdout(&out).trim()).unwrap()
}

fn manager_of(u: &serde_json::Value) -> &serde_json::Value {
    &u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"]
}

/// The first file's users arrive whole (names, email, active, phone,
/// country, the manager by the application's id, though the manager's row
/// comes later); the sync file's changes arrive as exactly those changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_gets_the_users_then_exactly_their_changes() {
    let app = App::start(0);
    let (env, config) = env_for(app.port);
    let mut serve = Serve::start(&config);
    upload(&env, &mut serve, "first.csv", FIRST).await;
    wait_provisioned(&env, &mut serve);

    let users = app.users();
    let names: Vec<&str> = users.keys().map(String::as_str).collect();
    assert_eq!(names, ["u2", "u3", "u4", "u5", "u6", "w1"]);
    let u2 = &users["u2"];
    assert_eq!(u2["externalId"], "u2");
    assert_eq!(u2["name"]["givenName"], "Bob");
    assert_eq!(u2["name"]["familyName"], "Two");
    assert_eq!(u2["emails"][0]["value"], "u2@example.com");
    assert_eq!(u2["emails"][0]["primary"], true);
    assert_eq!(u2["active"], true);
    assert_eq!(u2["phoneNumbers"][0]["value"], "+15550102");
    assert_eq!(u2["addresses"][0]["country"], "US");
    let boss = users["w1"]["id"].clone();
    for k in ["u2", "u3", "u4"] {
        assert_eq!(manager_of(&users[k]), &boss, "{k}'s manager");
    }
    assert!(manager_of(&users["u5"]).is_null());

    upload(&env, &mut serve, "second.csv", SECOND).await;
    wait_provisioned(&env, &mut serve);
    let after = app.users();
    let names: Vec<&str> = after.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["u2", "u3", "u5", "u6", "u7", "w1"],
        "u4 deleted, u7 new"
    );
    assert_eq!(after["u2"]["name"]["givenName"], "Bobby");
    assert_eq!(after["u3"]["name"]["givenName"], "Cyd");
    assert_eq!(after["w1"]["name"]["familyName"], "Uno");
    assert_eq!(after["u5"]["active"], false);
    assert_eq!(after["u6"]["active"], false);
    assert_eq!(after["u7"]["active"], true);
    assert_eq!(manager_of(&after["u7"]), &boss);
    // The same application users, updated in place (same ids).
    for k in ["u2", "u3", "u5", "u6", "w1"] {
        assert_eq!(after[k]["id"], users[k]["id"], "{k} kept its id");
    }
    let s = status_json(&config);
    assert_eq!(s["lag_changes"], 0);
    assert_eq!(s["errors"], 0);

    // /metrics: no lag, and what was pushed and deleted.
    let base = serve
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("userdrop: HTTP listening on "))
        .expect("the HTTP API listens")
        .trim()
        .to_string();
    let out = Command::new("curl")
        .args(["-sS", "-f", &format!("{base}/metrics")])
        .output()
        .unwrap();
    assert_ok(&out, "GET /metrics");
    let text = stdout(&out);
    assert!(
        text.contains("userdrop_provision_lag_changes{tenant=\"acme\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("userdrop_provision_deliveries_total{outcome=\"deleted\",tenant=\"acme\"} 1"),
        "{text}"
    );
}

/// The application is down while a file is imported (the proxy in front
/// of it, on a port that stays the same, closes every connection without an
/// answer): the changes wait (the cursor stays); once the application is
/// behind the proxy they arrive, each user once, managers first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_wait_for_the_application_and_arrive_once() {
    let mut proxy = Flaky::start(None, &[]);
    let (env, config) = env_for(proxy.port);
    let mut serve = Serve::start(&config);
    upload(&env, &mut serve, "first.csv", FIRST).await;
    serve.wait_for(
        "the application did not take the change; trying again",
        &[("tenant", TENANT)],
    );
    let s = status_json(&config);
    assert_eq!(s["cursor"], 0, "{s}");
    assert_eq!(s["lag_changes"], 6, "{s}");

    let app = App::start(0);
    proxy.backend(app.port);
    wait_provisioned(&env, &mut serve);
    let users = app.users();
    assert_eq!(users.len(), 6);
    let boss = &users["w1"];
    // In order: the manager before the users reporting to them (several
    // users are pushed at a time; each user's changes one after another).
    let created = |k: &str| users[k]["meta"]["created"].as_str().unwrap().to_string();
    for k in ["u2", "u3", "u4"] {
        assert!(created("w1") <= created(k), "{k} before its manager");
    }
    assert_eq!(manager_of(&users["u2"]), &boss["id"]);
    assert_eq!(status_json(&config)["lag_changes"], 0);
    // Nothing reached the application while it was down.
    let reqs = proxy.requests();
    assert!(reqs.iter().any(|r| r.status == 0), "{reqs:#?}");
}

/// The application answers 503 (no Retry-After) to the first three
/// requests: those changes are asked again after the doubling wait, and
/// every user arrives exactly once (one POST answered 201 each, none
/// answered 409: no user created twice), each user's refused attempts
/// before its accepted one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_application_is_asked_again_and_gets_each_user_once() {
    let app = App::start(0);
    let mut proxy = Flaky::start(Some(app.port), &["--fail", "3", "--status", "503"]);
    let (env, config) = env_for(proxy.port);
    let mut serve = Serve::start(&config);
    upload(&env, &mut serve, "four.csv", FOUR).await;
    let line = serve.wait_for(
        "the application did not take the change; trying again",
        &[("tenant", TENANT)],
    );
    let error = line["fields"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("503"), "{line}");
    wait_provisioned(&env, &mut serve);

    let users = app.users();
    let names: Vec<&str> = users.keys().map(String::as_str).collect();
    assert_eq!(names, ["a1", "a2", "a3", "a4"]);
    assert_eq!(users["a3"]["name"]["givenName"], "Cy");
    let reqs = proxy.requests();
    let statuses: Vec<u16> = reqs.iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..3], [503, 503, 503], "{reqs:#?}");
    assert_eq!(reqs.len(), 7, "3 refused + 4 taken: {reqs:#?}");
    for k in ["a1", "a2", "a3", "a4"] {
        let mine: Vec<&Req> = reqs.iter().filter(|r| r.user == k).collect();
        assert!(
            mine.iter()
                .all(|r| r.method == "POST" && r.path == "/v2/Users"),
            "{mine:#?}"
        );
        // Its 503s, then one 201: nothing after it, nothing before it taken.
        let taken: Vec<u16> = mine.iter().map(|r| r.status).collect();
        assert_eq!(taken.last(), Some(&201), "{k}: {mine:#?}");
        assert!(
            taken[..taken.len() - 1].iter().all(|s| *s == 503),
            "{k}: {mine:#?}"
        );
    }
    let s = status_json(&config);
    assert_eq!(s["lag_changes"], 0, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
}

/// The application answers 429 with `Retry-After: 2` to every request for
/// one user until the test lets it through: the other users arrive, the
/// cursor waits for that user's change (nothing is passed over), each
/// attempt comes no sooner than the Retry-After says (the provisioner's
/// own first waits are 0.5 s and 1 s), and once the application takes it
/// the user arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_and_the_change_waits_for_it() {
    let app = App::start(0);
    let mut proxy = Flaky::start(
        Some(app.port),
        &[
            "--fail",
            "1000000",
            "--status",
            "429",
            "--retry-after",
            "2",
            "--fail-user",
            "a3",
        ],
    );
    let (env, config) = env_for(proxy.port);
    let mut serve = Serve::start(&config);
    upload(&env, &mut serve, "four.csv", FOUR).await;
    // Three attempts at a3, and the others taken.
    proxy.wait_until("three attempts at a3 and the others taken", |seen| {
        seen.iter().filter(|r| r.user == "a3").count() >= 3
            && ["a1", "a2", "a4"]
                .iter()
                .all(|k| seen.iter().any(|r| r.user == *k && r.status == 201))
    });
    let line = serve.wait_for(
        "the application did not take the change; trying again",
        &[("tenant", TENANT), ("retry_in", "2s")],
    );
    assert!(
        line["fields"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("429"),
        "{line}"
    );
    // The change waits: the batch (and the cursor) is not settled while a3
    // is refused.
    let s = status_json(&config);
    assert_eq!(s["cursor"], 0, "{s}");
    assert_eq!(s["lag_changes"], 4, "{s}");
    let held: Vec<String> = app.users().into_keys().collect();
    assert_eq!(held, ["a1", "a2", "a4"]);

    // Let it through.
    {
        use std::io::Write as _;
        writeln!(proxy.stdin, "HEAL").unwrap();
        proxy.stdin.flush().unwrap();
        proxy.next_line("HEAL");
    }
    wait_provisioned(&env, &mut serve);
    let users = app.users();
    let names: Vec<&str> = users.keys().map(String::as_str).collect();
    assert_eq!(names, ["a1", "a2", "a3", "a4"]);
    let reqs = proxy.requests();
    let a3: Vec<&Req> = reqs.iter().filter(|r| r.user == "a3").collect();
    let (refused, taken) = a3.split_at(a3.len() - 1);
    assert!(refused.len() >= 3, "{a3:#?}");
    assert!(refused.iter().all(|r| r.status == 429), "{a3:#?}");
    assert_eq!(taken[0].status, 201, "{a3:#?}");
    for pair in a3.windows(2) {
        assert!(
            pair[1].ms >= pair[0].ms + 2000,
            "an attempt came sooner than Retry-After: 2 allows: {a3:#?}"
        );
    }
    for k in ["a1", "a2", "a4"] {
        let mine: Vec<u16> = reqs
            .iter()
            .filter(|r| r.user == *k)
            .map(|r| r.status)
            .collect();
        assert_eq!(mine, [201], "{k}: {reqs:#?}");
    }
    let s = status_json(&config);
    assert_eq!(s["lag_changes"], 0, "{s}");
    assert_eq!(s["errors"], 0, "{s}");
}

/// A user the application refuses (a userName it does not tell apart
/// from another's) is reported by `provision status`; the others arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_user_is_reported_and_the_rest_arrive() {
    let app = App::start(0);
    let (env, config) = env_for(app.port);
    let mut serve = Serve::start(&config);
    let file = "userId,email,firstName,lastName\n\
        a1,a1@example.com,Ann,One\n\
        b2,b2@example.com,Bob,Two\n\
        B2,bee2@example.com,Bee,Two\n\
        c3,c3@example.com,Cy,Three\n";
    let job = upload(&env, &mut serve, "case.csv", file).await;
    wait_provisioned(&env, &mut serve);
    // b2 and B2 are pushed side by side: the application keeps whichever
    // came first and refuses the other.
    let names: Vec<String> = app.users().into_keys().collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"a1".into()) && names.contains(&"c3".into()));
    let refused = if names.contains(&"b2".into()) {
        "B2"
    } else {
        "b2"
    };
    let s = status_json(&config);
    assert_eq!(s["errors"], 1, "{s}");
    assert_eq!(s["last_errors"][0]["key"], refused);
    assert_eq!(s["last_errors"][0]["status"], 409);
    assert_eq!(s["lag_changes"], 0);
    let text = stdout(&provision_cli(&config, &["status"]));
    assert!(
        text.contains("refused 1") && text.contains(&format!("key {refused}: 409")),
        "{text}"
    );
    // The job's JSON report names it too.
    let out = Command::new(bin())
        .arg("--config")
        .arg(&config)
        .args(["jobs", "show", &job.to_string(), "--json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["provision_refused"][0]["key"], refused, "{report:#}");
    assert_eq!(report["provision_refused"][0]["status"], 409);
    // And so does the human report.
    let out = Command::new(bin())
        .arg("--config")
        .arg(&config)
        .args(["jobs", "show", &job.to_string()])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("the SCIM application refused 1 user:")
            && text.contains(&format!(
                "    key {refused}: 409 the application holds another user"
            )),
        "{text}"
    );
}

/// `provision resync` fills an application that lost every user (a fresh
/// one on the same port), managers included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_fills_an_empty_application() {
    let app = App::start(0);
    let port = app.port;
    let (env, config) = env_for(port);
    let mut serve = Serve::start(&config);
    upload(&env, &mut serve, "first.csv", FIRST).await;
    wait_provisioned(&env, &mut serve);
    assert_eq!(app.users().len(), 6);
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
    drop(app);

    let fresh = App::start(port);
    assert!(fresh.users().is_empty());
    let out = provision_cli(&config, &["resync", "--tenant", TENANT]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("6 users marked"), "{}", stdout(&out));
    let mut serve = Serve::start(&config);
    serve.wait_for("resynced", &[("tenant", TENANT), ("users", "6")]);
    let users = fresh.users();
    assert_eq!(users.len(), 6);
    assert_eq!(users["u2"]["name"]["givenName"], "Bob");
    assert_eq!(manager_of(&users["u2"]), &users["w1"]["id"]);
    assert_eq!(status_json(&config)["resync_pending"], 0);
}

/// SIGKILL the daemon ten times while 5,000 users (managers in chains) are
/// provisioned: afterwards the application holds exactly userdrop's users,
/// each once, with their managers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_provisioning_loses_and_doubles_nothing() {
    let _heavy = heavy();
    let app = App::start(0);
    let (env, config) = env_for(app.port);
    let mut serve = Serve::start(&config);
    upload(&env, &mut serve, "big.csv", &users_csv(5000, "k")).await;
    let last = last_seq(&env);
    let mut kills = 0;
    while kills < 10 {
        serve.wait_for_message(|m| m == "provisioned", "provisioned");
        let at = serve.seen.last().unwrap()["fields"]["seq"]
            .as_i64()
            .unwrap();
        if at == last {
            break;
        }
        serve.signal("KILL");
        serve.wait_exit_keeping_log();
        kills += 1;
        serve = Serve::start(&config);
    }
    assert!(kills >= 10, "only {kills} kills before the end");
    // Then to the end, however many batches that takes.
    loop {
        serve.wait_for_message(|m| m == "provisioned", "provisioned");
        if serve.seen.last().unwrap()["fields"]["seq"].as_i64() == Some(last) {
            break;
        }
    }
    let users = app.users();
    let keys: Vec<String> = sql(&env.config.db_path())
        .prepare("SELECT key FROM users WHERE tenant = ?1 ORDER BY key")
        .unwrap()
        .query_map([TENANT], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(keys.len(), 5000);
    assert_eq!(users.keys().cloned().collect::<Vec<_>>(), keys);
    // U0000123 reports to U0000013.
    assert_eq!(
        manager_of(&users["U0000123"]),
        &users["U0000013"]["id"],
        "the manager by the application's id"
    );
    assert_eq!(users["U0000017"]["active"], false);
}
