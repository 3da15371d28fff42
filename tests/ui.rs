//! The tenant admin's web page in a real browser: Debian's chromium,
//! headless, driven by selenium (tests/peers/browser.py) against a real
//! `userdrop serve`. The browser does what a person does; these tests
//! assert what happened (rows in the store, jobs in the ledger, the bytes
//! of downloads). A missing chromium, chromium-driver or selenium fails the
//! test with the package to install (scripts/test installs them).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

use crate::util::api::Api;
use crate::util::{
    bin, repo, sql, stderr, stdout, ACME_PASS, ACME_USER, BETA, BETA_PASS, BETA_USER, TENANT,
};

/// One browser at a time: chromium is heavy for two cores.
static BROWSERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A headless chromium, through the driver script.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Browser {
    fn start(api: &Api) -> Browser {
        Browser::start_with(api, &[])
    }

    /// `args`: `nojs` turns the page's scripts off.
    fn start_with(api: &Api, args: &[&str]) -> Browser {
        let turn = BROWSERS.lock().unwrap_or_else(|e| e.into_inner());
        let downloads = api.env.path("downloads");
        let mut child = Command::new("python3")
            .arg(repo().join("tests/peers/browser.py"))
            .arg(&api.base)
            .arg(&downloads)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}): install python3"));
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut b = Browser {
            child,
            stdin,
            out,
            _turn: turn,
        };
        let ready = b.answer();
        assert_eq!(ready, json!("ready"));
        b
    }

    fn answer(&mut self) -> Value {
        let mut line = String::new();
        self.out.read_line(&mut line).unwrap();
        assert!(
            !line.is_empty(),
            "the browser driver stopped: {:?}",
            self.child.try_wait()
        );
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(e) = v.get("error") {
            panic!("the browser: {}", e.as_str().unwrap_or_default());
        }
        v["ok"].clone()
    }

    fn cmd(&mut self, c: Value) -> Value {
        writeln!(self.stdin, "{c}").unwrap();
        self.stdin.flush().unwrap();
        self.answer()
    }

    fn get(&mut self, path: &str) -> Value {
        self.cmd(json!({"cmd": "get", "path": path}))
    }

    fn click(&mut self, css: &str) -> Value {
        self.cmd(json!({"cmd": "click", "css": css}))
    }

    fn texts(&mut self, css: &str) -> Vec<String> {
        serde_json::from_value(self.cmd(json!({"cmd": "text", "css": css}))).unwrap()
    }

    fn count(&mut self, css: &str) -> u64 {
        self.cmd(json!({"cmd": "count", "css": css}))
            .as_u64()
            .unwrap()
    }

    fn table(&mut self, css: &str) -> Vec<Vec<String>> {
        serde_json::from_value(self.cmd(json!({"cmd": "table", "css": css}))).unwrap()
    }

    fn sign_in(&mut self, tenant: &str, user: &str, password: &str) -> Value {
        self.get("/ui/");
        self.cmd(json!({"cmd": "fill", "css": "#tenant", "value": tenant}));
        self.cmd(json!({"cmd": "fill", "css": "#user", "value": user}));
        self.cmd(json!({"cmd": "fill", "css": "#password", "value": password}));
        self.click("form[action='/ui/signin'] button")
    }

    /// Chooses `file` on the upload form and presses Validate; the page
    /// with the outcome.
    fn validate(&mut self, file: &Path, mode: &str) -> Value {
        self.get("/ui/upload");
        self.cmd(json!({"cmd": "file", "css": "#file", "path": file}));
        self.cmd(json!({"cmd": "select", "css": "#mode", "value": mode}));
        self.click("#validate");
        self.cmd(json!({"cmd": "wait", "css": "#message"}))
    }

    /// The CSRF token of the page's forms.
    fn csrf(&mut self) -> String {
        let v = self.cmd(json!({"cmd": "attr", "css": "input[name=csrf]", "name": "value"}));
        v[0].as_str().expect("a form with a CSRF token").to_string()
    }

    /// A request sent by the page's own script (`fetch`, with its cookies).
    fn fetch(&mut self, method: &str, path: &str, fields: &[(&str, &str)]) -> Value {
        self.cmd(json!({"cmd": "fetch", "method": method, "path": path, "fields": fields}))
    }

    fn screenshot(&mut self, name: &str) {
        if let Ok(dir) = std::env::var("UI_SCREENSHOTS") {
            let dir = repo().join(dir);
            std::fs::create_dir_all(&dir).unwrap();
            self.cmd(json!({"cmd": "screenshot", "path": dir.join(name)}));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "quit"}));
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

fn text(page: &Value) -> &str {
    page["text"].as_str().unwrap_or_default()
}

fn h1(page: &Value) -> &str {
    page["h1"].as_str().unwrap_or_default()
}

fn count(api: &Api, query: &str) -> i64 {
    sql(&api.env.config.db_path())
        .query_row(query, [], |r| r.get(0))
        .unwrap()
}

/// Every user of a tenant, as one comparable text.
fn users_dump(api: &Api, tenant: &str) -> String {
    let out = Command::new(bin())
        .arg("--config")
        .arg(api.env.path("userdrop.toml"))
        .args(["users", "export", "--tenant", tenant])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// `userdrop ARGS` on the test's config.
fn cli(api: &Api, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("--config")
        .arg(api.env.path("userdrop.toml"))
        .args(args)
        .env_remove("USERDROP_CONFIG")
        .output()
        .unwrap()
}

const HEADER: &str = "user_id,email,first_name,last_name,enabled,roles,reports_to\n";

/// The file of the walk-through: 3 new users, 1 changed, 2 bad rows
/// (row 5: the email; row 7: the enabled flag), 4 new roles.
fn walkthrough_file() -> String {
    format!(
        "{HEADER}\
U001,ada@acme.example,Ada,Lovelace-King,true,staff|admin,\n\
U002,alan@acme.example,Alan,Turing,true,engineer,U001\n\
U003,grace@acme.example,Grace,Hopper,true,engineer|reviewer,U001\n\
U004,not-an-email,Bad,Email,true,staff,\n\
U005,katherine@acme.example,Katherine,Johnson,true,analyst,U001\n\
U006,edsger@acme.example,Edsger,Dijkstra,perhaps,engineer,U001\n"
    )
}

/// Sign-in takes the tenant's SFTP account; a wrong password is refused
/// with one sentence; the session cookie is HttpOnly and SameSite=Strict;
/// and the web's failures count towards the per-address ban the SFTP
/// server and the API keys share: once banned, the page is refused too.
#[test]
fn sign_in_refuses_a_wrong_password_and_the_ban_applies_here() {
    let api = Api::start(
        "",
        "ban_after = 3\nban_window = \"10m\"\nban_for = \"10m\"",
        "",
    );
    let mut b = Browser::start(&api);
    let p = b.sign_in(TENANT, ACME_USER, "not-the-password");
    assert!(
        text(&p).contains("The tenant, user or password is not right."),
        "{p:#}"
    );
    assert_eq!(b.count("input[name=password]"), 1, "still the sign-in form");
    let p = b.sign_in(TENANT, ACME_USER, ACME_PASS);
    assert_eq!(h1(&p), "Users", "{p:#}");
    let cookies = b.cmd(json!({"cmd": "cookies"}));
    let session = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "userdrop_session")
        .unwrap_or_else(|| panic!("no session cookie in {cookies:#}"));
    assert_eq!(session["httpOnly"], true, "{session:#}");
    assert_eq!(session["sameSite"], "Strict", "{session:#}");
    assert_eq!(session["secure"], false, "plain HTTP: not Secure");
    // Another tenant's account does not open this tenant.
    b.click("form.signout button");
    let p = b.sign_in(TENANT, BETA_USER, BETA_PASS);
    assert!(text(&p).contains("not right"), "{p:#}");
    // Two failures here (the one above and this) and one wrong API key:
    // three failures of one address, the ban.
    let p = b.sign_in(TENANT, ACME_USER, "still-not-it");
    assert!(text(&p).contains("not right"), "{p:#}");
    let (code, _) = api.json(&["-H", "x-api-key: udk_guess"], "/v1/tenants/acme/imports");
    assert_eq!(code, 401);
    let p = b.get("/ui/");
    assert_eq!(h1(&p), "Banned", "{p:#}");
    assert_eq!(b.count("input[name=password]"), 0, "no form to try again");
    let r = b.fetch(
        "POST",
        "/ui/signin",
        &[
            ("tenant", TENANT),
            ("user", ACME_USER),
            ("password", ACME_PASS),
        ],
    );
    assert_eq!(
        r["status"], 403,
        "the right password from a banned address: {r:#}"
    );
    let (code, v) = api.json(&["-H", &api.acme()], "/v1/tenants/acme/imports");
    assert_eq!(code, 403, "and the API is refused too: {v:#}");
}

/// The walk-through of the issue: a file with two bad rows is validated
/// (exactly those two rows and their reasons, nothing written), loaded (the
/// seed's message with the job's counts, a job of source `web`), the users
/// page shows the new users, and the job page lists the two failures with
/// a failed-rows CSV byte-identical to `jobs show ID --failed-csv`.
#[test]
fn validate_shows_the_bad_rows_then_load_applies_the_file() {
    let mut api = Api::start("", "", "");
    let before = api.env.write(
        "before.csv",
        format!("{HEADER}U001,ada@acme.example,Ada,Lovelace,true,staff,\n"),
    );
    let out = cli(
        &api,
        &["import", "--tenant", TENANT, before.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let file = api.env.write("users.csv", walkthrough_file());
    let mut b = Browser::start(&api);
    b.sign_in(TENANT, ACME_USER, ACME_PASS);
    let p = b.get("/ui/upload");
    assert_eq!(
        b.cmd(json!({"cmd": "attr", "css": "#load", "name": "disabled"}))[0],
        "true",
        "Load waits for a validation: {p:#}"
    );
    let users_before = users_dump(&api, TENANT);
    let jobs_before = count(&api, "SELECT count(*) FROM jobs");
    let p = b.validate(&file, "upsert");
    let errors = b.table("#errors");
    assert_eq!(
        errors.len(),
        2,
        "exactly the two bad rows: {errors:?}\n{p:#}"
    );
    assert_eq!(errors[0][0], "5");
    assert_eq!(errors[0][1], "U004");
    assert_eq!(errors[0][2], "email");
    assert_eq!(errors[0][3], "invalid_email");
    assert!(errors[0][4].contains("not-an-email"), "{errors:?}");
    assert_eq!(errors[1][0], "7");
    assert_eq!(errors[1][1], "U006");
    assert_eq!(errors[1][2], "enabled");
    assert!(errors[1][3].starts_with("invalid_enabled"), "{errors:?}");
    assert!(errors[1][4].contains("perhaps"), "{errors:?}");
    assert_eq!(b.texts("#count-added"), ["3"]);
    assert_eq!(b.texts("#count-updated"), ["1"]);
    assert_eq!(b.texts("#count-failed"), ["2"]);
    assert_eq!(
        users_dump(&api, TENANT),
        users_before,
        "Validate writes no user"
    );
    assert_eq!(
        count(&api, "SELECT count(*) FROM jobs"),
        jobs_before,
        "nor a job"
    );
    b.screenshot("ui-validate.png");
    let p = b.click("#load");
    let p = if b.count("#message") == 0 {
        b.cmd(json!({"cmd": "wait", "css": "#message"}))
    } else {
        p
    };
    assert_eq!(
        b.texts("#message"),
        ["Users Loaded successfully. 3 Added, 1 Updated, 0 Deleted, 4 Roles Added"],
        "{p:#}"
    );
    let id: i64 = count(&api, "SELECT max(id) FROM jobs");
    assert_eq!(
        count(
            &api,
            &format!("SELECT count(*) FROM jobs WHERE id = {id} AND source = 'web'")
        ),
        1
    );
    assert_eq!(
        count(&api, "SELECT count(*) FROM users WHERE tenant = 'acme'"),
        4
    );
    assert_eq!(
        count(&api, "SELECT count(*) FROM users WHERE tenant = 'acme' AND key = 'U001' AND last_name = 'Lovelace-King'"),
        1
    );
    // The users page shows them.
    let p = b.get("/ui/users");
    let rows = b.table("#users");
    let keys: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(keys, ["U001", "U002", "U003", "U005"], "{p:#}");
    assert_eq!(rows[1][1], "Alan Turing");
    assert_eq!(rows[1][2], "alan@acme.example");
    b.screenshot("ui-users.png");
    // Search by the start of a name, any case, once the name index has
    // followed the job.
    let last = count(&api, "SELECT max(seq) FROM changes").to_string();
    api.serve
        .wait_for("indexed names", &[("tenant", TENANT), ("through", &last)]);
    b.get("/ui/users?q=gra&by=name");
    let rows = b.table("#users");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "U003");
    // The job page: its two failures and the failed-rows CSV.
    let p = b.get(&format!("/ui/jobs/{id}"));
    assert_eq!(b.texts("#source"), ["web"], "{p:#}");
    let errors = b.table("#errors");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!((errors[0][0].as_str(), errors[1][0].as_str()), ("5", "7"));
    let got = b.cmd(json!({"cmd": "download", "css": "#failed-csv"}));
    let downloaded = std::fs::read(got.as_str().unwrap()).unwrap();
    let cli_csv = cli(&api, &["jobs", "show", &id.to_string(), "--failed-csv"]);
    assert!(!cli_csv.stdout.is_empty(), "{}", stderr(&cli_csv));
    assert_eq!(downloaded, cli_csv.stdout, "the page's CSV is the CLI's");
    // And the users CSV is `users export`'s.
    b.get("/ui/users");
    let got = b.cmd(json!({"cmd": "download", "css": "#download"}));
    let downloaded = std::fs::read_to_string(got.as_str().unwrap()).unwrap();
    assert_eq!(
        downloaded,
        users_dump(&api, TENANT),
        "the users CSV is `users export`'s"
    );
    // The jobs list has it, from its source.
    b.get("/ui/jobs");
    let jobs = b.table("#jobs");
    assert_eq!(jobs[0][0], id.to_string());
    assert_eq!(jobs[0][2], "web");
    assert!(jobs.iter().any(|j| j[2] == "cli"), "every source: {jobs:?}");
}

/// An empty file says "Users file is empty", and cannot be loaded.
#[test]
fn an_empty_file_says_users_file_is_empty() {
    let api = Api::start("", "", "");
    let file = api.env.write("empty.csv", "");
    let mut b = Browser::start(&api);
    b.sign_in(TENANT, ACME_USER, ACME_PASS);
    b.validate(&file, "upsert");
    assert_eq!(b.texts("#message"), ["Users file is empty"]);
    assert_eq!(
        b.cmd(json!({"cmd": "attr", "css": "#load", "name": "disabled"}))[0],
        "true"
    );
    assert_eq!(count(&api, "SELECT count(*) FROM jobs"), 0);
}

/// A customer's cell is text wherever the page shows it: a name that is
/// HTML opens no dialog and makes no element, in the users table, on the
/// user's page, and in a validation's failed rows.
#[test]
fn a_hostile_cell_is_shown_as_text() {
    let api = Api::start("", "", "");
    let evil = "<img src=x onerror=alert(1)>";
    let file = api.env.write(
        "evil.csv",
        format!("{HEADER}X1,x1@acme.example,\"{evil}\",Smith,true,staff,\n"),
    );
    let out = cli(
        &api,
        &["import", "--tenant", TENANT, file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let mut b = Browser::start(&api);
    b.sign_in(TENANT, ACME_USER, ACME_PASS);
    b.get("/ui/users");
    let rows = b.table("#users");
    assert_eq!(
        rows[0][1],
        format!("{evil} Smith"),
        "shown as the text it is"
    );
    assert_eq!(b.count("main img"), 0, "no element made of it");
    assert_eq!(b.cmd(json!({"cmd": "alert"})), Value::Null, "no dialog");
    b.get("/ui/users/X1");
    assert!(b.texts("#user")[0].contains(evil));
    assert_eq!(b.count("main img"), 0);
    assert_eq!(b.cmd(json!({"cmd": "alert"})), Value::Null);
    let bad = api.env.write(
        "evil2.csv",
        format!("{HEADER}X2,{evil},Eve,Smith,true,staff,\n"),
    );
    b.validate(&bad, "upsert");
    let errors = b.table("#errors");
    assert!(errors[0][4].contains(evil), "{errors:?}");
    assert_eq!(b.count("main img"), 0);
    assert_eq!(b.cmd(json!({"cmd": "alert"})), Value::Null);
}

/// Every post needs the session's CSRF token; another tenant's job and
/// user are not found, whatever the URL.
#[test]
fn posts_need_the_csrf_token_and_tenants_are_kept_apart() {
    let api = Api::start("", "", "");
    let beta = api.env.write(
        "beta.csv",
        format!("{HEADER}B1,b1@beta.example,Bea,Beta,true,staff,\n"),
    );
    let out = cli(&api, &["import", "--tenant", BETA, beta.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let beta_job = count(&api, "SELECT max(id) FROM jobs WHERE tenant = 'beta'");
    let mut b = Browser::start(&api);
    b.sign_in(TENANT, ACME_USER, ACME_PASS);
    b.get("/ui/upload");
    let token = b.csrf();
    // Without the token (and with a wrong one): refused, nothing judged.
    let r = b.cmd(
        json!({"cmd": "fetch", "method": "POST", "path": "/ui/upload/validate",
        "multipart": true, "fields": [["mode", "upsert"]],
        "file": {"name": "u.csv", "text": format!("{HEADER}A9,a9@acme.example,A,Nine,true,,\n")}}),
    );
    assert_eq!(r["status"], 403, "{r:#}");
    let r = b.cmd(
        json!({"cmd": "fetch", "method": "POST", "path": "/ui/upload/validate",
        "multipart": true, "fields": [["csrf", "0".repeat(64)], ["mode", "upsert"]],
        "file": {"name": "u.csv", "text": format!("{HEADER}A9,a9@acme.example,A,Nine,true,,\n")}}),
    );
    assert_eq!(r["status"], 403, "{r:#}");
    let r = b.fetch("POST", "/ui/signout", &[]);
    assert_eq!(r["status"], 403, "{r:#}");
    let r = b.fetch("POST", &format!("/ui/jobs/{beta_job}/approve"), &[]);
    assert_eq!(r["status"], 403, "{r:#}");
    // With it, the same validation goes through.
    let r = b.cmd(
        json!({"cmd": "fetch", "method": "POST", "path": "/ui/upload/validate",
        "multipart": true, "fields": [["csrf", token], ["mode", "upsert"]],
        "file": {"name": "u.csv", "text": format!("{HEADER}A9,a9@acme.example,A,Nine,true,,\n")}}),
    );
    assert_eq!(r["status"], 200, "{r:#}");
    assert!(
        r["text"].as_str().unwrap().contains("Every row is good"),
        "{r:#}"
    );
    // Tenant beta's job and user, from acme's session.
    let r = b.fetch("GET", &format!("/ui/jobs/{beta_job}"), &[]);
    assert_eq!(r["status"], 404, "{r:#}");
    let r = b.fetch("GET", &format!("/ui/jobs/{beta_job}/failed.csv"), &[]);
    assert_eq!(r["status"], 404, "{r:#}");
    let r = b.fetch("GET", "/ui/users/B1", &[]);
    assert_eq!(r["status"], 404, "{r:#}");
    let p = b.get("/ui/users?q=B&by=key");
    assert!(!text(&p).contains("b1@beta.example"), "{p:#}");
    // Signed out, nothing is shown.
    b.click("form.signout button");
    let r = b.fetch("GET", "/ui/users", &[]);
    assert!(
        r["url"].as_str().unwrap().ends_with("/ui/"),
        "to the sign-in: {r:#}"
    );
    assert_eq!(
        count(&api, "SELECT count(*) FROM jobs WHERE tenant = 'acme'"),
        0
    );
}

/// Load clicked twice, the result page reloaded, and the Load form posted
/// again (a second tab, a resubmission) make one job.
#[test]
fn load_twice_or_reload_makes_one_job() {
    let api = Api::start("", "", "");
    let file = api.env.write(
        "users.csv",
        format!("{HEADER}D1,d1@acme.example,Dee,One,true,staff,\nD2,d2@acme.example,Dee,Two,true,staff,\n"),
    );
    let mut b = Browser::start(&api);
    b.sign_in(TENANT, ACME_USER, ACME_PASS);
    b.validate(&file, "upsert");
    let action = b.cmd(json!({"cmd": "attr", "css": "#load-form", "name": "action"}))[0]
        .as_str()
        .unwrap()
        .to_string();
    let token = b.csrf();
    b.cmd(json!({"cmd": "dblclick", "css": "#load", "until": "#message"}));
    assert_eq!(
        b.texts("#message"),
        ["Users Loaded successfully. 2 Added, 0 Updated, 0 Deleted, 1 Roles Added"]
    );
    b.cmd(json!({"cmd": "refresh"}));
    let path = action
        .split_once("://")
        .map(|(_, rest)| &rest[rest.find('/').unwrap()..])
        .unwrap_or(&action)
        .to_string();
    for _ in 0..2 {
        let r = b.fetch("POST", &path, &[("csrf", &token)]);
        assert_eq!(r["status"], 200, "{r:#}");
    }
    assert_eq!(count(&api, "SELECT count(*) FROM jobs"), 1, "one job");
    assert_eq!(
        count(&api, "SELECT count(*) FROM jobs WHERE source = 'web'"),
        1
    );
    assert_eq!(count(&api, "SELECT count(*) FROM users"), 2);
}

/// A sync that would remove more users than the tenant allows is held: its
/// job page says what it would do, and Approve (the library's approve)
/// applies it.
#[test]
fn a_held_sync_shows_what_it_would_do_and_approve_applies_it() {
    let api = Api::start("", "", "max_missing_percent = 20");
    let mut rows = HEADER.to_string();
    for i in 1..=5 {
        rows.push_str(&format!("S{i},s{i}@acme.example,Sam,No{i},true,staff,\n"));
    }
    let before = api.env.write("before.csv", rows);
    let out = cli(
        &api,
        &["import", "--tenant", TENANT, before.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let file = api.env.write(
        "only-one.csv",
        format!("{HEADER}S1,s1@acme.example,Sam,No1,true,staff,\n"),
    );
    let mut b = Browser::start(&api);
    b.sign_in(TENANT, ACME_USER, ACME_PASS);
    let p = b.validate(&file, "sync");
    assert!(text(&p).contains("would touch 4 of 5 users"), "{p:#}");
    b.click("#load");
    let p = b.cmd(json!({"cmd": "wait", "css": "#job-link"}));
    assert!(b.texts("#message")[0].contains("on hold"), "{p:#}");
    b.click("#job-link");
    let held = b.texts("#held");
    assert!(
        held[0].contains("deactivate 4 of the tenant's 5 users"),
        "{held:?}"
    );
    let id = count(&api, "SELECT max(id) FROM jobs WHERE source = 'web'");
    assert_eq!(
        count(
            &api,
            &format!("SELECT count(*) FROM jobs WHERE id = {id} AND status = 'held'")
        ),
        1
    );
    assert_eq!(
        count(&api, "SELECT count(*) FROM users WHERE enabled = 1"),
        5,
        "held: nothing applied"
    );
    let p = b.click("#approve");
    assert_eq!(b.texts("#state"), ["applied"], "{p:#}");
    assert_eq!(
        count(&api, &format!("SELECT count(*) FROM jobs WHERE id = {id} AND approved_at IS NOT NULL AND status = 'ok'")),
        1
    );
    assert_eq!(
        count(&api, "SELECT count(*) FROM users WHERE enabled = 1"),
        1,
        "approved: applied"
    );
}

/// The page works without JavaScript: sign in, Validate shows the failed
/// row, Load applies the file and says what it did. With JavaScript, a
/// large file shows "Validating…" while the server checks it, then the
/// same outcome page.
#[test]
fn works_without_javascript_and_shows_validating_for_a_large_file() {
    let api = Api::start("", "", "");
    {
        let mut b = Browser::start_with(&api, &["nojs"]);
        b.sign_in(TENANT, ACME_USER, ACME_PASS);
        assert_eq!(b.count("html.js"), 0, "the page's scripts are off");
        let file = api.env.write(
            "nojs.csv",
            format!(
                "{HEADER}N1,n1@acme.example,Nora,Jones,true,staff,\n\
                 N2,not-an-email,Ned,Jones,true,staff,\n"
            ),
        );
        b.validate(&file, "upsert");
        assert_eq!(b.texts("#count-added"), ["1"]);
        assert_eq!(b.texts("#count-failed"), ["1"]);
        let errors = b.table("#errors");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0][1], "N2");
        assert_eq!(
            count(&api, "SELECT count(*) FROM users"),
            0,
            "validated only"
        );
        let p = b.click("#load");
        let p = if b.count("#message") == 0 {
            b.cmd(json!({"cmd": "wait", "css": "#message"}))
        } else {
            p
        };
        let message = b.texts("#message");
        assert!(
            message[0].starts_with("Users Loaded successfully. 1 Added, 0 Updated, 0 Deleted"),
            "{message:?} {p:#}"
        );
        assert_eq!(
            count(&api, "SELECT count(*) FROM users WHERE key = 'N1'"),
            1
        );
        assert_eq!(b.count("html.js"), 0);
    }
    // With scripts, a file large enough that checking it takes a moment.
    let rows = 100_000;
    let mut text = String::with_capacity(rows * 64 + HEADER.len());
    text.push_str(HEADER);
    for i in 0..rows {
        text.push_str(&format!(
            "L{i:06},l{i}@acme.example,Lee,Large{i},true,staff,\n"
        ));
    }
    let big = api.env.write("large.csv", text);
    let mut b = Browser::start(&api);
    b.sign_in(TENANT, ACME_USER, ACME_PASS);
    assert_eq!(b.count("html.js"), 1, "the page's scripts run");
    b.get("/ui/upload");
    b.cmd(json!({"cmd": "file", "css": "#file", "path": big}));
    b.cmd(json!({"cmd": "select", "css": "#mode", "value": "upsert"}));
    b.cmd(json!({"cmd": "press", "css": "#validate"}));
    b.cmd(json!({"cmd": "wait_text", "css": "#progress span", "text": "Validating…"}));
    b.cmd(json!({"cmd": "wait", "css": "#message"}));
    assert_eq!(b.texts("#count-added"), ["100,000"]);
    assert_eq!(b.texts("#count-failed"), ["0"]);
    assert_eq!(
        count(&api, "SELECT count(*) FROM users WHERE key LIKE 'L%'"),
        0
    );
}
