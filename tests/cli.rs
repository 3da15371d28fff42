//! The command line as a user meets it: the real binary, real files, exit
//! codes (0 ok, 1 failed, 2 usage/config), the `--json` contract of docs/behaviour.md#the-json-outcome.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::util::{bin, repo, stderr, stdout, users_csv, Env, TENANT};

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

#[test]
fn import_json_has_the_documented_shape() {
    let env = Env::new("");
    let file = env.write(
        "users.csv",
        "userId,email,roles,notes\nU1,ann@example.com,admin|staff,x\nU1802,not-an-email,,y\n",
    );
    let out = env.import(&file, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "rows failed → exit 1");
    let v = json(&out);
    for key in [
        "job",
        "tenant",
        "file",
        "dry_run",
        "status",
        "file_error",
        "encoding",
        "delimiter",
        "ignored_columns",
        "columns",
        "counts",
        "reasons",
        "held",
        "errors",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["tenant"], "acme");
    assert_eq!(v["file"], "users.csv");
    assert_eq!(v["dry_run"], false);
    assert_eq!(v["status"], "rows_failed");
    assert_eq!(v["file_error"], Value::Null);
    assert_eq!(v["encoding"], "utf-8");
    assert_eq!(v["delimiter"], ",");
    assert_eq!(v["ignored_columns"], serde_json::json!(["notes"]));
    assert_eq!(
        v["columns"],
        serde_json::json!(["userId", "email", "roles", "notes"]),
        "the header cells as received"
    );
    assert_eq!(v["reasons"], serde_json::json!({"invalid_email": 1}));
    assert_eq!(v["held"], Value::Null, "only a held sync has `held`");
    assert_eq!(
        v["counts"],
        serde_json::json!({"rows": 2, "added": 1, "updated": 0, "unchanged": 0, "deleted": 0,
                           "deactivated": 0, "roles_added": 2, "failed": 1})
    );
    let e = &v["errors"][0];
    assert_eq!(
        (e["row"].as_u64(), e["key"].as_str()),
        (Some(3), Some("U1802"))
    );
    assert_eq!(
        (e["field"].as_str(), e["code"].as_str()),
        (Some("email"), Some("invalid_email"))
    );
    assert!(e["message"].as_str().unwrap().contains("not-an-email"));

    // jobs show --json returns the same object.
    let id = v["job"].as_i64().unwrap();
    let shown = env.run(&["jobs", "show", &id.to_string(), "--json"]);
    assert_eq!(
        shown.status.code(),
        Some(1),
        "the job's rows failed → exit 1"
    );
    assert_eq!(json(&shown), v);
}

#[test]
fn a_refused_file_exits_1_with_a_file_error() {
    let env = Env::new("");
    let file = env.write("users.csv", "name,mail\nAnn,ann@example.com\n");
    let out = env.import(&file, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["status"], "rejected");
    assert_eq!(v["file_error"]["code"], "missing_required_column");
    assert_eq!(v["file_error"]["field"], "user_id");
    assert!(v["file_error"]["message"]
        .as_str()
        .unwrap()
        .contains("name, mail"));
    let listed = env.run(&["jobs", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(json(&listed)[0]["status"], "rejected");
}

#[test]
fn dry_run_writes_nothing() {
    let env = Env::new("");
    let file = env.write("users.csv", users_csv(20, "x"));
    let out = env.import(&file, &["--dry-run", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(
        (v["job"].clone(), v["dry_run"].clone()),
        (Value::Null, Value::Bool(true))
    );
    assert_eq!(v["counts"]["added"], 20);
    let listed = env.run(&["jobs", "--json"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(json(&listed), serde_json::json!([]));
    let export = env.run(&["users", "export", "--tenant", TENANT]);
    assert!(export.status.success(), "{}", stderr(&export));
    assert_eq!(stdout(&export).lines().count(), 1, "header only");
}

#[test]
fn check_config_reports_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "workers = 0\n[tenants.acme]\nfailed_import_email = \"nope\"\nmode = \"merge\"\n[tenants.beta]\nfailed_import_email = \"a@b.example\"\ncolour = 1\n",
    )
    .unwrap();
    let out = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for needle in [
        "data_dir is required",
        "workers = 0",
        "\"nope\"",
        "mode = \"merge\"",
        "colour",
        "5 problems",
    ] {
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
    }
    // USERDROP_CONFIG works like --config.
    let out = Command::new(bin())
        .env("USERDROP_CONFIG", &cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn default_config_is_valid_and_documents_every_tenant_key() {
    let out = Command::new(bin()).arg("default-config").output().unwrap();
    assert!(out.status.success());
    let text = stdout(&out);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("example.toml");
    std::fs::write(&cfg, &text).unwrap();
    let check = Command::new(bin())
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        // check-config fails on an unset password_env (issue 13 #13).
        .env("USERDROP_SMTP_PASSWORD", "set in the service's environment")
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", stderr(&check));
    for key in [
        "mode",
        "missing",
        "max_missing_percent",
        "on_error",
        "key",
        "delimiter",
        "encoding",
        "date_format",
        "role_separator",
        "unknown_columns",
        "notify",
        "accept",
        "max_file_size",
        "possible_names",
        "retention_days",
        "schedule",
        "workers",
        "log_format",
        "ban_after",
        "incomplete_ttl",
        "password_env",
    ] {
        assert!(
            text.contains(&format!("{key} =")),
            "{key} is not documented"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new("");
    let out = env.run(&["import", "--tenant", "nosuch", "x.csv"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no tenant \"nosuch\""));
    let out = env.run(&["import", "--tenant", TENANT, "/nonexistent/users.csv"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn export_imports_back_unchanged() {
    let env = Env::new("[fields.department]\npossible_names = [\"Dept\"]\n");
    let file = env.write(
        "users.csv",
        "userId,email,firstName,lastName,roles,mobile,country,Dept,taskNotification,lastActiveDate\n\
         U1,ann@Example.COM,Ann,Lee,admin|staff,+44 7700 900123,GB,Sales,OFF,2024-03-01\n\
         U2,bob@example.com,\"Bob, Jr\",O'Neil,,,,,,\n",
    );
    let first = env.import(&file, &[]);
    assert!(first.status.success(), "{}", stdout(&first));
    let exported = env.path("export.csv");
    let out = env.run(&[
        "users",
        "export",
        "--tenant",
        TENANT,
        "--output",
        exported.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(
        text.contains("'+44 7700 900123"),
        "formula-looking cells are neutralised:\n{text}"
    );
    assert!(
        text.contains("ann@example.com"),
        "domain lower-cased:\n{text}"
    );
    let again = env.import(&exported, &["--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let v = json(&again);
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["counts"]["unchanged"], 2, "{v}");
    assert_eq!(v["counts"]["updated"], 0, "{v}");
    let export2 = env.run(&["users", "export", "--tenant", TENANT]);
    assert!(export2.status.success(), "{}", stderr(&export2));
    assert_eq!(stdout(&export2), text);
}

#[test]
fn held_sync_job_is_applied_by_approve() {
    let env = Env::new("mode = \"sync\"");
    let all = env.write("all.csv", users_csv(20, "x"));
    assert!(env.import(&all, &[]).status.success());
    // A truncated export: 5 of 20 users → the sync would deactivate 75%.
    let truncated: String = users_csv(20, "x")
        .lines()
        .take(6)
        .map(|l| format!("{l}\n"))
        .collect();
    let part = env.write("part.csv", truncated);
    let out = env.import(&part, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["status"], "held");
    assert_eq!(v["file_error"]["code"], "too_many_deletes");
    assert_eq!(
        v["held"],
        serde_json::json!({"would_touch": 14, "of_users": 20, "percent": 70.0,
                           "max_missing_percent": 10.0}),
        "held says why: {v}"
    );
    assert_eq!(
        v["counts"]["deactivated"], 14,
        "what would happen (user 17 is already disabled): {v}"
    );
    let enabled: i64 = env
        .sql()
        .query_row("SELECT count(*) FROM users WHERE enabled = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        enabled, 19,
        "held: nothing applied (user 17 was disabled by the file)"
    );
    // The held file is kept: the caller's copy may go away.
    std::fs::remove_file(&part).unwrap();
    let id = v["job"].as_i64().unwrap().to_string();
    let approve = env.run(&["jobs", "approve", &id]);
    assert!(
        approve.status.success(),
        "{}{}",
        stdout(&approve),
        stderr(&approve)
    );
    let shown = env.run(&["jobs", "show", &id, "--json"]);
    assert!(shown.status.success(), "approved → ok: {}", stdout(&shown));
    let shown = json(&shown);
    assert_eq!(shown["status"], "ok");
    assert_eq!(shown["counts"]["deactivated"], 14);
    let again = env.run(&["jobs", "approve", &id]);
    assert_eq!(again.status.code(), Some(2), "approving twice is refused");
}

#[test]
fn approve_refuses_when_a_newer_file_was_applied() {
    let env = Env::new("mode = \"sync\"");
    let all = env.write("all.csv", users_csv(20, "x"));
    assert!(env.import(&all, &[]).status.success());
    let part = env.write("part.csv", users_csv(3, "x"));
    let held = env.import(&part, &["--json"]);
    assert_eq!(held.status.code(), Some(1), "held → exit 1");
    let held = json(&held);
    assert_eq!(held["status"], "held");
    assert!(env.import(&all, &[]).status.success());
    let out = env.run(&["jobs", "approve", &held["job"].to_string()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("was applied after"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn template_lists_the_tenant_fields() {
    let env = Env::new("key = \"email\"\n[fields.department]\npossible_names = [\"Dept\"]\n");
    let out = env.run(&["template", "--tenant", TENANT]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let header = stdout(&out);
    assert!(
        header.starts_with("email,user_id,first_name,last_name,"),
        "{header}"
    );
    assert!(header.trim_end().ends_with(",department"), "{header}");
}

#[test]
fn passwd_hash_is_argon2id_and_accepted_by_config() {
    let mut child = Command::new(bin())
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = stdout(&out).trim().to_string();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    use argon2::PasswordVerifier;
    let parsed = argon2::PasswordHash::new(&hash).unwrap();
    assert!(argon2::Argon2::default()
        .verify_password(b"correct horse", &parsed)
        .is_ok());
    assert!(argon2::Argon2::default()
        .verify_password(b"wrong", &parsed)
        .is_err());
    let env = Env::new(&format!(
        "[[accounts]]\nname = \"hr\"\npassword_hash = \"{hash}\"\n"
    ));
    assert!(env.run(&["check-config"]).status.success());
}

#[test]
fn embedded_default_imports_the_sample_file() {
    let dir = tempfile::tempdir().unwrap();
    let sample = repo().join("fixtures/sample/users.csv");
    let out = Command::new(bin())
        .current_dir(dir.path())
        .env_remove("USERDROP_CONFIG")
        .args(["import", "--tenant", "demo"])
        .arg(&sample)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("demo: users.csv — imported"),
        "{}",
        stdout(&out)
    );
    assert!(dir.path().join("userdrop-data/userdrop.db").exists());
}

#[test]
fn jobs_show_failed_csv_matches_the_row_errors() {
    let env = Env::new("");
    let file = env.write(
        "users.csv",
        "userId,email,firstName\nU1,a@example.com,=1+1\nU2,b@example.com,Bo\n",
    );
    let imported = env.import(&file, &["--json"]);
    assert_eq!(imported.status.code(), Some(1), "a row failed → exit 1");
    let v = json(&imported);
    assert_eq!(
        (v["job"].as_i64(), v["status"].as_str()),
        (Some(1), Some("rows_failed"))
    );
    assert_eq!(v["counts"]["added"], 1, "{v}");
    let out = env.run(&["jobs", "show", "1", "--failed-csv"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "like `jobs show`, exit 1 for a job whose rows failed: {}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&out),
        "\u{feff}userId,email,firstName,row,error\nU1,a@example.com,'=1+1,2,\"firstName “=1+1” starts with “=”, which spreadsheets run as a formula; remove that character\"\n"
    );
}

#[test]
fn host_key_is_generated_once_and_printed_for_pinning() {
    let env = Env::new("");
    let first = env.run(&["host-key"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let text = stdout(&first);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("SHA256:") && !lines[0].ends_with('='),
        "{text}"
    );
    assert!(lines[1].starts_with("ssh-ed25519 AAAA"), "{text}");
    let key = env.config.data_dir.join("host_keys/ssh_host_ed25519_key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(
        mode & 0o777,
        0o600,
        "the private host key is readable only by its owner"
    );
    let again = env.run(&["host-key"]);
    assert_eq!(stdout(&again), text, "the key is reused, not regenerated");
}

/// An [`Env`] whose config has two tenants, `acme` and `beta`.
fn two_tenants() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let text = crate::util::config_text_tenants(dir.path(), "", &[(TENANT, ""), ("beta", "")]);
    let config_path = dir.path().join("userdrop.toml");
    std::fs::write(&config_path, &text).unwrap();
    let config = userdrop::config::Config::parse(&text, "test config").unwrap();
    Env {
        dir,
        config_path,
        config,
    }
}

fn job_ids(out: &std::process::Output) -> Vec<(i64, String)> {
    assert!(out.status.success(), "{}", stderr(out));
    json(out)
        .as_array()
        .expect("a JSON list")
        .iter()
        .map(|j| {
            (
                j["job"].as_i64().unwrap(),
                j["tenant"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn jobs_tenant_and_limit_filter_the_history() {
    let env = two_tenants();
    // Jobs 1..=5, alternating tenants: acme 1, 3, 5; beta 2, 4.
    for n in 1..=5 {
        let tenant = if n % 2 == 1 { TENANT } else { "beta" };
        let file = env.write(&format!("f{n}.csv"), users_csv(2, &n.to_string()));
        let out = env.run(&["import", "--tenant", tenant, file.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let ids = |args: &[&str]| {
        let mut all = vec!["jobs", "--json"];
        all.extend_from_slice(args);
        job_ids(&env.run(&all))
    };
    let acme = |ids: &[i64]| -> Vec<(i64, String)> {
        ids.iter().map(|&i| (i, TENANT.to_string())).collect()
    };
    let beta = |ids: &[i64]| -> Vec<(i64, String)> {
        ids.iter().map(|&i| (i, "beta".to_string())).collect()
    };
    assert_eq!(
        ids(&[]).iter().map(|j| j.0).collect::<Vec<_>>(),
        [5, 4, 3, 2, 1]
    );
    assert_eq!(ids(&["--tenant", TENANT]), acme(&[5, 3, 1]));
    assert_eq!(ids(&["--tenant", "beta"]), beta(&[4, 2]));
    assert_eq!(ids(&["--tenant", TENANT, "--limit", "2"]), acme(&[5, 3]));
    assert_eq!(ids(&["--limit", "1"]), acme(&[5]));
    assert_eq!(ids(&["--tenant", "beta", "--limit", "5"]), beta(&[4, 2]));
    // The table a person reads is filtered the same way.
    let out = env.run(&["jobs", "--tenant", "beta"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(
        rows.iter()
            .all(|r| r.contains(" beta ") && !r.contains(TENANT)),
        "{text}"
    );
    let out = env.run(&["jobs", "--tenant", "nosuch"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown tenant is a usage error"
    );
}

/// Reads open the store read-only: while another process holds the write
/// lock (here this test, inside BEGIN IMMEDIATE with an uncommitted change,
/// as an import in progress would), `jobs`, `jobs show` and `users export`
/// answer at once from the last committed state, neither waiting for the
/// writer's lock nor failing on it.
#[test]
fn reads_answer_while_another_process_holds_the_write_lock() {
    let env = Env::new("");
    let file = env.write("users.csv", users_csv(3, "x"));
    let out = env.import(&file, &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    let writer = env.sql();
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    writer
        .execute_batch("UPDATE users SET first_name = 'Uncommitted'; DELETE FROM jobs;")
        .unwrap();
    // The lock is really held: a second writer cannot start.
    let blocked = env.import(&file, &[]);
    assert_ne!(blocked.status.code(), Some(0), "the write lock is held");

    let listed = env.run(&["jobs", "--json"]);
    assert!(listed.status.success(), "jobs: {}", stderr(&listed));
    let listed = json(&listed);
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["status"], "ok");

    let shown = env.run(&["jobs", "show", "1", "--json"]);
    assert!(shown.status.success(), "jobs show: {}", stderr(&shown));
    assert_eq!(json(&shown)["counts"]["added"], 3);

    let export = env.run(&["users", "export", "--tenant", TENANT]);
    assert!(export.status.success(), "users export: {}", stderr(&export));
    let text = stdout(&export);
    assert_eq!(text.lines().count(), 4, "header and 3 users:\n{text}");
    assert!(
        text.contains("First1") && !text.contains("Uncommitted"),
        "the last committed state:\n{text}"
    );

    writer.execute_batch("ROLLBACK").unwrap();
}
