//! The HTTP API against the real `userdrop serve`, driven by real clients:
//! curl for the requests customers and schedulers send, schemathesis for the
//! OpenAPI document, Python's prometheus_client for `/metrics`. Each test
//! asserts what arrived: jobs in the ledger, users in the store, files in
//! `.bak/` and `results/`, mail in the outbox's delivery directory.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};

use crate::util::api::{new_key, Api};
use crate::util::clients::{assert_ok, require, sftp_key};
use crate::util::daemon::{job, names_in, users_of, Serve};
use crate::util::{bin, sql, stderr, stdout, users_csv, ACME_PASS, ACME_USER, BETA, TENANT};

const MIXED: &str = "userId,email,firstName,lastName\nh1,h1@example.com,Ann,One\nh2,not-an-address,Bob,Two\nh3,h3@example.com,Cy,Three\n";

/// Seed 000's own command, with the URL changed: the upload is queued (202,
/// the seed's message), becomes a job whose status, errors (JSON and CSV),
/// `.bak/`, `results/` and failure mail are those of the same file sent
/// over SFTP to another tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_upload_is_the_same_job_as_the_same_file_over_sftp() {
    let mut api = Api::start("", "", "");
    api.env.write("users.csv", MIXED);
    let (code, body) = api.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Accept: application/json",
            "-H",
            "Content-Type: multipart/form-data",
            "-H",
            "cache-control: no-cache",
            "-H",
            &api.acme(),
            "-F",
            "file=@./users.csv",
        ],
        "/v1/tenants/acme/imports",
    );
    assert_eq!(code, 202, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "queued", "{v}");
    assert_eq!(
        v["message"],
        "File uploaded successfully, import is in progress."
    );
    let id = v["id"].as_i64().unwrap();
    assert_eq!(v["status_url"], format!("/v1/tenants/acme/imports/{id}"));
    api.serve
        .wait_for("archived", &[("tenant", TENANT), ("file", "users.csv")]);

    let (code, v) = api.json(
        &["-H", &api.acme()],
        &format!("/v1/tenants/acme/imports/{id}"),
    );
    assert_eq!(code, 200);
    assert_eq!(v["status"], "applied", "{v:#}");
    assert_eq!(v["result"], "rows_failed", "{v:#}");
    assert_eq!(v["source"], "http");
    assert_eq!(v["report"]["counts"]["added"], 2, "{v:#}");
    assert_eq!(v["report"]["counts"]["failed"], 1, "{v:#}");
    assert_eq!(users_of(&api.env.config, TENANT), 2);

    let (_, e) = api.json(
        &["-H", &api.acme()],
        &format!("/v1/tenants/acme/imports/{id}/errors"),
    );
    assert_eq!(e["errors"].as_array().unwrap().len(), 1, "{e:#}");
    assert_eq!(e["errors"][0]["row"], 3);
    assert_eq!(e["errors"][0]["key"], "h2");
    assert_eq!(e["errors"][0]["code"], "invalid_email");
    let (code, csv) = api.curl(
        &["-H", &api.acme(), "-H", "Accept: text/csv"],
        &format!("/v1/tenants/acme/imports/{id}/errors"),
    );
    assert_eq!(code, 200);
    let cli = Command::new(bin())
        .arg("--config")
        .arg(api.env.path("userdrop.toml"))
        .args(["jobs", "show", &id.to_string(), "--failed-csv"])
        .output()
        .unwrap();
    assert_eq!(csv.as_bytes(), &cli.stdout[..], "the CLI's bytes, exactly");

    let root = api.env.root(TENANT);
    assert_eq!(names_in(&root.join(".bak")).len(), 1);
    assert!(names_in(&root.join("results"))
        .iter()
        .any(|n| n.ends_with("users.errors.csv")));
    let mail_dir = api.env.config.data_dir.join("mail");
    api.serve.wait_for("mail sent", &[("tenant", TENANT)]);
    let mail = newest_mail(&mail_dir);
    assert!(
        mail.contains("users.csv"),
        "the failure mail is about the file"
    );

    // The same file over SFTP to beta (by key is acme only: use acme's
    // key login into acme would change acme's users; beta by password).
    let out = crate::util::clients::sftp_password(
        &api.env,
        api.serve.port,
        crate::util::BETA_USER,
        crate::util::BETA_PASS,
        &format!("put {} users.csv\n", api.env.path("users.csv").display()),
        &[],
    )
    .await;
    assert_ok(&out, "the SFTP upload");
    let done = api
        .serve
        .wait_for("archived", &[("tenant", BETA), ("file", "users.csv")]);
    let sftp_job = done["fields"]["job"].as_i64().unwrap();
    let (a, b) = (job(&api.env.config, id), job(&api.env.config, sftp_job));
    let counts = |j: &userdrop::store::jobs::JobRow| {
        serde_json::from_str::<serde_json::Value>(j.report.as_deref().unwrap()).unwrap()["counts"]
            .clone()
    };
    assert_eq!(counts(&a), counts(&b), "the same outcome");
    let (_, beta_csv) = api.curl(
        &[
            "-H",
            &format!("x-api-key: {}", api.beta_key),
            "-H",
            "Accept: text/csv",
        ],
        &format!("/v1/tenants/beta/imports/{sftp_job}/errors"),
    );
    assert_eq!(beta_csv, csv, "the same failed-rows file");
}

/// The text of the newest `.eml` the file transport delivered into `dir`.
fn newest_mail(dir: &Path) -> String {
    let mut names: Vec<String> = names_in(dir)
        .into_iter()
        .filter(|f| f.ends_with(".eml"))
        .collect();
    names.sort();
    std::fs::read_to_string(dir.join(names.last().expect("a delivered mail"))).unwrap()
}

/// Seed 001's headers do what they say: `DELIMITER: SEMI_COLON` reads a
/// semicolon file, `DELIMITER: HYPHEN` a hyphen one (which the automatic
/// choice never picks), `importType: insert` refuses users that exist and
/// `importType: upsert` updates them; the file is the part `uploadFile`.
#[test]
fn seed_001_headers_choose_the_delimiter_and_the_import_type() {
    let api = Api::start("", "", "");
    let send = |file: &str, headers: &[&str]| -> serde_json::Value {
        let mut args = vec!["-X", "POST", "-H", "Accept: application/json"];
        for h in headers {
            args.extend(["-H", h]);
        }
        let key = api.acme();
        let part = format!("uploadFile=@./{file}");
        args.extend(["-H", &key, "-F", &part]);
        let (code, v) = api.json(&args, "/v1/tenants/acme/imports?wait=true");
        assert_eq!(code, 200, "{v:#}");
        v
    };
    api.env.write(
        "semi.csv",
        "userId;email;firstName\ns1;s1@example.com;Ann\ns2;s2@example.com;Bob\n",
    );
    let v = send("semi.csv", &["DELIMITER: SEMI_COLON", "importType: upsert"]);
    assert_eq!(v["report"]["delimiter"], ";", "{v:#}");
    assert_eq!(v["report"]["counts"]["added"], 2, "{v:#}");

    api.env.write(
        "hyphen.csv",
        "userId-email-firstName\nh1-h1@example.com-Cy\n",
    );
    let v = send("hyphen.csv", &["DELIMITER: HYPHEN"]);
    assert_eq!(v["report"]["counts"]["added"], 1, "{v:#}");

    api.env.write(
        "again.csv",
        "userId;email;firstName\ns1;s1@example.com;Anna\n",
    );
    let v = send(
        "again.csv",
        &["DELIMITER: SEMI_COLON", "importType: insert"],
    );
    assert_eq!(
        v["report"]["counts"]["failed"], 1,
        "insert refuses an existing user: {v:#}"
    );
    let name = |key: &str| -> String {
        sql(&api.env.config.db_path())
            .query_row(
                "SELECT first_name FROM users WHERE tenant = 'acme' AND key = ?1",
                [key],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(name("s1"), "Ann");
    let v = send(
        "again.csv",
        &["DELIMITER: SEMI_COLON", "importType: upsert"],
    );
    assert_eq!(v["report"]["counts"]["updated"], 1, "{v:#}");
    assert_eq!(name("s1"), "Anna");
    assert_eq!(users_of(&api.env.config, TENANT), 3);
}

/// A JSON array of user objects imports the same users as the same rows in
/// CSV; `"status": "Inactive"` deactivates.
#[test]
fn a_json_bulk_upload_imports_the_same_users_as_the_csv() {
    let api = Api::start("", "", "");
    let body = r#"[
        {"userId": "j1", "email": "j1@example.com", "firstName": "Ann", "status": "Active", "roles": ["staff", "admin"]},
        {"userId": "j2", "email": "j2@example.com", "firstName": "Bob", "status": "Inactive"},
        {"userId": "j3", "email": "broken", "firstName": "Cy"}
    ]"#;
    let (code, v) = api.json(
        &[
            "-X",
            "POST",
            "-H",
            &api.acme(),
            "-H",
            "Content-Type: application/json",
            // Ignored: the table made from the array is comma-separated.
            "-H",
            "DELIMITER: SEMI_COLON",
            "--data-binary",
            body,
        ],
        "/v1/tenants/acme/imports?wait=true",
    );
    assert_eq!(code, 200, "{v:#}");
    assert_eq!(v["report"]["counts"]["added"], 2, "{v:#}");
    assert_eq!(v["report"]["counts"]["failed"], 1, "{v:#}");
    // A failed object is numbered by its place in the array.
    let (_, e) = api.json(
        &["-H", &api.acme()],
        &format!("/v1/tenants/acme/imports/{}/errors", v["id"]),
    );
    assert_eq!(e["errors"][0]["row"], 3, "{e:#}");
    assert_eq!(e["errors"][0]["key"], "j3", "{e:#}");
    let db = sql(&api.env.config.db_path());
    let row = |key: &str| -> (i64, String) {
        db.query_row(
            "SELECT enabled, roles FROM users WHERE tenant = 'acme' AND key = ?1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    assert_eq!(row("j1"), (1, r#"["staff","admin"]"#.to_string()));
    assert_eq!(row("j2").0, 0, "Inactive deactivates");

    // The same users as CSV into beta: the same store rows.
    let csv = "userId,email,firstName,enabled,roles\nj1,j1@example.com,Ann,Active,staff|admin\nj2,j2@example.com,Bob,Inactive,\nj3,broken,Cy,,\n";
    std::fs::write(api.env.path("same.csv"), csv).unwrap();
    let (code, v) = api.json(
        &[
            "-X",
            "POST",
            "-H",
            &format!("x-api-key: {}", api.beta_key),
            "-H",
            "Content-Type: text/csv",
            "--data-binary",
            "@same.csv",
        ],
        "/v1/tenants/beta/imports?wait=true&filename=same.csv",
    );
    assert_eq!(code, 200, "{v:#}");
    let users = |t: &str| -> Vec<(String, String, i64, String)> {
        let mut st = db
            .prepare("SELECT key, email, enabled, roles FROM users WHERE tenant = ?1 ORDER BY key")
            .unwrap();
        st.query_map([t], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(users(TENANT), users(BETA));

    let (code, v) = api.json(
        &[
            "-X",
            "POST",
            "-H",
            &api.acme(),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"email": "x"}"#,
        ],
        "/v1/tenants/acme/imports",
    );
    assert_eq!(code, 400, "{v:#}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("array"),
        "{v:#}"
    );
}

/// Wrong requests get a JSON error that says what to change, and change
/// nothing: 401 without or with a wrong key, 404 for another tenant's
/// resources, 400 for an unknown importType (listing the allowed ones) and
/// a form without the file part (naming it), 413 over max_upload before the
/// body is read, 415 for a type the API does not take.
#[test]
fn refusals_are_json_errors_that_say_what_to_change() {
    let api = Api::start("max_upload = \"2KiB\"", "", "");
    let imports = "/v1/tenants/acme/imports";
    api.env.write("users.csv", MIXED);

    let (code, v) = api.json(&["-X", "POST", "-F", "file=@./users.csv"], imports);
    assert_eq!(code, 401, "{v:#}");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("x-api-key"));
    let (code, _) = api.json(
        &[
            "-X",
            "POST",
            "-H",
            "Authorization: Bearer udk_wrong",
            "-F",
            "file=@./users.csv",
        ],
        imports,
    );
    assert_eq!(code, 401);

    // beta's key on acme's resources: as if they did not exist.
    let beta = format!("x-api-key: {}", api.beta_key);
    let (code, v) = api.json(
        &["-X", "POST", "-H", &beta, "-F", "file=@./users.csv"],
        imports,
    );
    assert_eq!(code, 404, "{v:#}");
    let (code, _) = api.json(&["-H", &beta], "/v1/tenants/acme/users");
    assert_eq!(code, 404);

    let (code, v) = api.json(
        &[
            "-X",
            "POST",
            "-H",
            &api.acme(),
            "-H",
            "importType: replace",
            "-F",
            "file=@./users.csv",
        ],
        imports,
    );
    assert_eq!(code, 400);
    let m = v["error"]["message"].as_str().unwrap();
    for word in ["insert", "upsert", "sync", "delsert"] {
        assert!(m.contains(word), "{m}");
    }
    let (code, v) = api.json(
        &[
            "-X",
            "POST",
            "-H",
            &api.acme(),
            "-F",
            "document=@./users.csv",
        ],
        imports,
    );
    assert_eq!(code, 400);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("`file`"),
        "{v:#}"
    );

    api.env.write("big.csv", users_csv(200, "b"));
    let (code, v) = api.json(
        &[
            "-X",
            "POST",
            "-H",
            &api.acme(),
            "-H",
            "Content-Type: text/csv",
            "--data-binary",
            "@big.csv",
        ],
        imports,
    );
    assert_eq!(code, 413, "{v:#}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("2.0 KiB"),
        "{v:#}"
    );
    let (code, v) = api.json(
        &[
            "-X",
            "POST",
            "-H",
            &api.acme(),
            "-H",
            "Content-Type: application/xml",
            "--data-binary",
            "<x/>",
        ],
        imports,
    );
    assert_eq!(code, 415, "{v:#}");

    assert_eq!(users_of(&api.env.config, TENANT), 0, "nothing was imported");
    assert_eq!(
        sql(&api.env.config.db_path())
            .query_row("SELECT count(*) FROM jobs", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        0,
        "no job was made"
    );
    let spool = api.env.config.spool_dir(TENANT);
    assert!(
        names_in(&spool).is_empty(),
        "nothing left in the spool: {:?}",
        names_in(&spool)
    );
}

/// Wrong API keys count towards the per-address ban the SFTP server keeps:
/// once banned, the right key is refused before any work, and so is an SFTP
/// login from that address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_api_keys_ban_the_address_for_http_and_sftp() {
    let api = Api::start(
        "",
        "ban_after = 3\nban_window = \"10m\"\nban_for = \"10m\"",
        "",
    );
    for _ in 0..3 {
        let (code, _) = api.json(&["-H", "x-api-key: udk_guess"], "/v1/tenants/acme/imports");
        assert_eq!(code, 401);
    }
    let (code, v) = api.json(&["-H", &api.acme()], "/v1/tenants/acme/imports");
    assert_eq!(code, 403, "the right key from a banned address: {v:#}");
    assert_eq!(v["error"]["code"], "banned");
    let out = sftp_key(&api.env, api.serve.port, "ls\n", &[]).await;
    assert!(
        !out.status.success(),
        "SFTP from the banned address is refused"
    );
    let (code, _) = api.curl(&[], "/healthz");
    assert_eq!(code, 200, "health checks are not behind the ban");
}

/// A client that sends its request head a byte at a time is cut after
/// `header_timeout`, without an answer: it holds nothing.
#[test]
fn a_slowloris_is_cut_by_the_header_timeout() {
    let api = Api::start("header_timeout = \"1s\"", "", "");
    let addr = api.base.trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Never finishes the head. The server closes; a read returns then (the
    // read timeout is only a bound for a broken server).
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut buf = Vec::new();
    let r = s.read_to_end(&mut buf);
    assert!(
        r.is_ok()
            || matches!(
                r.as_ref().unwrap_err().kind(),
                std::io::ErrorKind::ConnectionReset
            ),
        "the server closed the connection: {r:?}"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        !text.contains("200 OK"),
        "an unfinished head is never answered as a request: {text}"
    );
}

/// The same Idempotency-Key twice makes one job; the same key with other
/// bytes is a conflict.
#[test]
fn the_same_idempotency_key_makes_one_job() {
    let api = Api::start("", "", "");
    api.env.write("users.csv", MIXED);
    let post = |key: &str, file: &str| {
        api.json(
            &[
                "-X",
                "POST",
                "-H",
                &api.acme(),
                "-H",
                &format!("Idempotency-Key: {key}"),
                "-F",
                &format!("file=@./{file}"),
            ],
            "/v1/tenants/acme/imports",
        )
    };
    let (code, first) = post("nightly-2026-12-02", "users.csv");
    assert_eq!(code, 202, "{first:#}");
    let (code, again) = post("nightly-2026-12-02", "users.csv");
    assert_eq!(code, 200, "{again:#}");
    assert_eq!(again["id"], first["id"], "the first job, not a second");
    api.env.write("other.csv", users_csv(3, "o"));
    let (code, v) = post("nightly-2026-12-02", "other.csv");
    assert_eq!(code, 409, "{v:#}");
    let jobs: i64 = sql(&api.env.config.db_path())
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(jobs, 1);
}

/// A daemon SIGKILLed right after answering 202 finishes the job when it
/// starts again, once: the file and the job row were durable before the
/// answer.
#[test]
fn a_daemon_killed_after_202_finishes_the_job_once_on_restart() {
    let mut api = Api::start("", "", "");
    // Big enough that the import is still running when the kill lands.
    api.env.write("big.csv", users_csv(150_000, "k"));
    let (code, v) = api.json(
        &[
            "-X",
            "POST",
            "-H",
            &api.acme(),
            "-H",
            "Content-Type: text/csv",
            "--data-binary",
            "@big.csv",
        ],
        "/v1/tenants/acme/imports?filename=big.csv",
    );
    assert_eq!(code, 202, "{v:#}");
    api.serve.signal("KILL");
    let _ = api.serve.wait_exit_keeping_log();
    let id = v["id"].as_i64().unwrap();
    assert_eq!(
        job(&api.env.config, id).archived_at,
        None,
        "the kill came before the job ended (make the file bigger if not)"
    );

    let config = api.env.path("userdrop.toml");
    let mut again = Serve::start(&config);
    again.wait_for("carrying on unfinished jobs", &[("jobs", "1")]);
    again.wait_for("archived", &[("tenant", TENANT), ("file", "big.csv")]);
    assert_eq!(users_of(&api.env.config, TENANT), 150_000);
    let db = sql(&api.env.config.db_path());
    let jobs: i64 = db
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(jobs, 1, "one job, carried on");
    assert_eq!(job(&api.env.config, id).status.unwrap().as_str(), "ok");
    assert_eq!(names_in(&api.env.root(TENANT).join(".bak")).len(), 1);
}

/// `/metrics` is Prometheus text a real parser reads, and its counters move
/// with a job.
#[test]
fn metrics_parse_and_move_with_a_job() {
    require_python_module("prometheus_client", "prometheus_client");
    let api = Api::start("", "", "");
    let before = scrape(&api);
    api.env.write("users.csv", MIXED);
    let (code, _) = api.json(
        &["-X", "POST", "-H", &api.acme(), "-F", "file=@./users.csv"],
        "/v1/tenants/acme/imports?wait=true",
    );
    assert_eq!(code, 200);
    let after = scrape(&api);
    let get = |m: &serde_json::Value, name: &str, labels: &[(&str, &str)]| -> f64 {
        m.as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] == name)
            .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
            .map(|s| s["value"].as_f64().unwrap())
            .sum()
    };
    let finished = [("tenant", "acme"), ("status", "rows_failed")];
    assert_eq!(get(&before, "userdrop_jobs_finished_total", &finished), 0.0);
    assert_eq!(get(&after, "userdrop_jobs_finished_total", &finished), 1.0);
    assert_eq!(
        get(
            &after,
            "userdrop_rows_total",
            &[("tenant", "acme"), ("outcome", "added")]
        ),
        2.0
    );
    assert_eq!(
        get(
            &after,
            "userdrop_rows_total",
            &[("tenant", "acme"), ("outcome", "failed")]
        ),
        1.0
    );
    assert!(
        get(
            &after,
            "userdrop_tenant_last_success_timestamp_seconds",
            &[("tenant", "acme")]
        ) > 1.7e9
    );
    assert!(
        get(
            &after,
            "userdrop_http_requests_total",
            &[("route", "/v1/tenants/{tenant}/imports"), ("code", "200")]
        ) >= 1.0
    );
}

fn require_python_module(module: &str, package: &str) {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test needs python3 with {module}: pip install {package} (scripts/test installs it)"
    );
}

/// Every sample of `/metrics`, parsed by prometheus_client's text parser.
fn scrape(api: &Api) -> serde_json::Value {
    let (code, text) = api.curl(&[], "/metrics");
    assert_eq!(code, 200);
    let mut child = Command::new("python3")
        .arg(crate::util::repo().join("tests/peers/prometheus_parse.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out: Output = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused /metrics: {}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// schemathesis reads `/v1/openapi.json` from the running server and sends
/// generated requests to every operation: no 5xx, and every answer matches
/// the document (status codes, content types, bodies).
#[test]
fn schemathesis_finds_every_answer_in_the_document() {
    require(
        "st",
        "schemathesis (pip install schemathesis; scripts/test installs it)",
    );
    let api = Api::start("", "", "");
    api.env.write("users.csv", MIXED);
    let (code, _) = api.json(
        &["-X", "POST", "-H", &api.acme(), "-F", "file=@./users.csv"],
        "/v1/tenants/acme/imports?wait=true",
    );
    assert_eq!(code, 200);
    let conf = api.env.write(
        "schemathesis.toml",
        "[parameters]\n\"path.tenant\" = \"acme\"\n",
    );
    let out = Command::new("st")
        .arg("--config-file")
        .arg(&conf)
        .args(["run", &api.url("/v1/openapi.json")])
        .args(["-H", &api.acme()])
        // One worker: CPython 3.11's parser is not safe for the parallel
        // lambda parsing hypothesis does with several ("AST constructor
        // recursion depth mismatch").
        .args(["--checks", "all", "--max-examples", "10", "-w", "1"])
        .args(["--phases", "examples,coverage,fuzzing", "--seed", "1"])
        .current_dir(api.env.dir.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stdout(&out).contains("passed"), "{}", stdout(&out));
}

/// The embedded default serves the API too, with a demo key printed once:
/// the README's curl upload works as written.
#[test]
fn the_embedded_default_takes_the_readme_curl_upload_with_the_demo_key() {
    require("curl", "curl");
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir.path())
        .env("USERDROP_SFTP_LISTEN", "127.0.0.1:0")
        .env("USERDROP_HTTP_LISTEN", "127.0.0.1:0");
    let mut serve = Serve::spawn(cmd);
    let token = serve
        .banner
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("udk_"))
        .unwrap_or_else(|| panic!("no demo key in:\n{}", serve.banner))
        .to_string();
    let base = serve
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("userdrop: HTTP listening on "))
        .unwrap()
        .trim()
        .to_string();
    let sample = crate::util::repo().join("fixtures/sample/users.csv");
    let out = Command::new("curl")
        .args(["-sS", "-f", "-X", "POST", "-H"])
        .arg(format!("x-api-key: {token}"))
        .arg("-F")
        .arg(format!("file=@{}", sample.display()))
        .arg(format!("{base}/v1/tenants/demo/imports"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "queued");
    let line = serve.wait_for_text("archived");
    assert!(line.contains("tenant=demo"), "{line}");
    assert!(dir
        .path()
        .join("userdrop-data/demo-api-key.sha256")
        .is_file());
    assert!(
        !std::fs::read_to_string(dir.path().join("userdrop-data/demo-api-key.sha256"))
            .unwrap()
            .contains(&token),
        "only the hash is kept"
    );
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
    let mut cmd = Command::new(bin());
    cmd.current_dir(dir.path())
        .env("USERDROP_SFTP_LISTEN", "127.0.0.1:0")
        .env("USERDROP_HTTP_LISTEN", "127.0.0.1:0");
    let serve = Serve::spawn(cmd);
    assert!(
        !serve.banner.contains("udk_"),
        "printed once: {}",
        serve.banner
    );
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
}

/// With `tls_cert` and `tls_key`, the API is HTTPS: curl trusting the
/// certificate gets its answer; plain HTTP on the same port gets none.
#[test]
fn tls_cert_and_key_serve_https() {
    require("openssl", "openssl");
    let env_dir = tempfile::tempdir().unwrap();
    let (cert, key) = (
        env_dir.path().join("cert.pem"),
        env_dir.path().join("key.pem"),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let api = Api::start(
        &format!(
            "tls_cert = {:?}\ntls_key = {:?}",
            cert.display().to_string(),
            key.display().to_string()
        ),
        "",
        "",
    );
    assert!(api.base.starts_with("https://"), "{}", api.base);
    let (code, v) = api.json(
        &["--cacert", &cert.display().to_string(), "-H", &api.acme()],
        "/v1/tenants/acme/imports",
    );
    assert_eq!(code, 200, "{v:#}");
    assert_eq!(v["imports"], serde_json::json!([]));
    let plain = Command::new("curl")
        .args(["-sS", "-m", "10"])
        .arg(api.url("/healthz").replace("https://", "http://"))
        .output()
        .unwrap();
    assert!(
        !stdout(&plain).contains("\"ok\""),
        "plain HTTP is not answered on the TLS port"
    );

    // The web page under TLS: its cookies are Secure (with HttpOnly and
    // SameSite=Strict), and the session they carry works.
    let cacert = cert.display().to_string();
    let curl = |args: &[&str], path: &str| -> (String, String) {
        let out = Command::new("curl")
            .args(["-sS", "-m", "10", "--cacert", &cacert, "-D", "-"])
            .args(args)
            .arg(api.url(path))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (head.to_string(), body.to_string())
    };
    let cookie_of = |head: &str, name: &str| -> String {
        let line = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:") && l.contains(name))
            .unwrap_or_else(|| panic!("no {name} cookie in:\n{head}"));
        for attr in ["; Secure", "; HttpOnly", "; SameSite=Strict", "; Path=/ui"] {
            assert!(line.contains(attr), "{attr} missing: {line}");
        }
        let value = line.split_once(':').unwrap().1.trim();
        value.split(';').next().unwrap().to_string()
    };
    let (head, body) = curl(&[], "/ui/");
    let signin = cookie_of(&head, "userdrop_signin=");
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token in the sign-in form")
        .to_string();
    let (head, _) = curl(
        &[
            "-H",
            &format!("Cookie: {signin}"),
            "--data-urlencode",
            &format!("tenant={TENANT}"),
            "--data-urlencode",
            &format!("user={ACME_USER}"),
            "--data-urlencode",
            &format!("password={ACME_PASS}"),
            "--data-urlencode",
            &format!("csrf={csrf}"),
        ],
        "/ui/signin",
    );
    assert!(head.starts_with("HTTP/1.1 303"), "{head}");
    let session = cookie_of(&head, "userdrop_session=");
    let (head, body) = curl(&["-H", &format!("Cookie: {session}")], "/ui/users");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("No users yet"), "{body}");
}

/// SIGHUP reloads the keys with the tenants: a key added to the config
/// opens its tenant after the reload, a key removed stops opening it.
#[test]
fn sighup_reloads_the_api_keys() {
    let mut api = Api::start("", "", "");
    let config = api.env.path("userdrop.toml");
    let (new_token, new_lines) = new_key(&config, TENANT, "added-later");
    let (code, _) = api.json(
        &["-H", &format!("x-api-key: {new_token}")],
        "/v1/tenants/acme/imports",
    );
    assert_eq!(code, 401, "not in the config yet");
    // Add the new key and drop beta's.
    let text = std::fs::read_to_string(&config).unwrap();
    let beta_block = text
        .find("[[tenants.beta.api_keys]]")
        .map(|at| {
            let end = text[at..].find("\n\n").map_or(text.len(), |e| at + e);
            text[at..end].to_string()
        })
        .expect("beta's key lines");
    let text = text.replace(&beta_block, "");
    std::fs::write(&config, format!("{text}\n{new_lines}\n")).unwrap();
    api.serve.signal("HUP");
    api.serve.wait_for("configuration reloaded", &[]);
    let (code, v) = api.json(
        &["-H", &format!("x-api-key: {new_token}")],
        "/v1/tenants/acme/imports",
    );
    assert_eq!(code, 200, "{v:#}");
    let (code, _) = api.json(
        &["-H", &format!("x-api-key: {}", api.beta_key)],
        "/v1/tenants/beta/imports",
    );
    assert_eq!(code, 401, "a removed key opens nothing");
}

/// SIGTERM stops accepting connections at once, lets an upload in flight
/// finish (its client gets 202) and exits; the job that upload made is
/// carried on, once, at the next start.
#[test]
fn sigterm_lets_an_upload_in_flight_finish() {
    let mut api = Api::start("", "", "");
    // About 3 s at the rate below: the signal lands mid-body.
    api.env.write("slow.csv", users_csv(6_000, "t"));
    let upload = Command::new("curl")
        .args(["-sS", "-w", "\n%{http_code}", "--limit-rate", "100K"])
        .args([
            "-X",
            "POST",
            "-H",
            &api.acme(),
            "-H",
            "Content-Type: text/csv",
        ])
        .args(["-T", "slow.csv"])
        .arg(api.url("/v1/tenants/acme/imports?filename=slow.csv"))
        .current_dir(api.env.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    api.serve
        .wait_for("HTTP upload receiving", &[("tenant", TENANT)]);
    api.serve.signal("TERM");
    api.serve.wait_for(
        "HTTP: no new connections; letting requests in flight finish",
        &[],
    );

    // A new connection is refused now (curl: "couldn't connect", exit 7).
    let refused = Command::new("curl")
        .args(["-sS", "-o", "/dev/null"])
        .arg(api.url("/healthz"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(7), "{}", stderr(&refused));

    let out = upload.wait_with_output().unwrap();
    assert!(out.status.success(), "curl: {}", stderr(&out));
    let text = stdout(&out);
    let (body, code) = text.rsplit_once('\n').unwrap();
    assert_eq!(code.trim(), "202", "{body}");
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let id = v["id"].as_i64().unwrap();
    assert!(api.serve.wait_exit_keeping_log().success());
    assert_eq!(job(&api.env.config, id).archived_at, None);

    let config = api.env.path("userdrop.toml");
    let mut again = Serve::start(&config);
    again.wait_for("archived", &[("tenant", TENANT), ("file", "slow.csv")]);
    assert_eq!(users_of(&api.env.config, TENANT), 6_000);
    assert_eq!(job(&api.env.config, id).status.unwrap().as_str(), "ok");
    let jobs: i64 = sql(&api.env.config.db_path())
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(jobs, 1, "one job, carried on");
}
