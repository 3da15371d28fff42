//! What an operator trips over (issue 13, points 7, 13, 16, 18): the CLI
//! import deciding as the daemon does and leaving the same `results/`,
//! `check-config` listing every problem, `serve` saying where mail goes,
//! and the inbox files the pickup never takes reported once. Each test goes
//! through the real binary and is named after what broke.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::util::daemon::{names_in, serve_config, set_old, summary, users_of, Serve};
use crate::util::{bin, stderr, stdout, SftpEnv, TENANT};

/// The real binary with `config` and `args`.
fn userdrop(config: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("USERDROP_CONFIG")
        .output()
        .expect("run userdrop")
}

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

fn import_args<'a>(file: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "import",
        "--tenant",
        TENANT,
        file.to_str().expect("utf-8 path"),
        "--json",
    ];
    v.extend_from_slice(extra);
    v
}

/// `userdrop import` read `users.json` and a file without extension as CSV,
/// while the daemon refuses both (`accept`); `--dry-run` previewed an
/// import the daemon would never do. Now the CLI, its dry run and the
/// daemon refuse the same file with the same message, and nothing is
/// applied.
#[test]
fn import_refuses_a_name_accept_refuses_as_the_daemon_does() {
    let env = SftpEnv::new("", "");
    let config = serve_config(&env, "");
    let body = "user_id,email\nU1,u1@example.com\n";
    let mut cli_messages = Vec::new();
    for name in ["users.json", "users"] {
        let file = env.write(name, body);
        let dry = userdrop(&config, &import_args(&file, &["--dry-run"]));
        let real = userdrop(&config, &import_args(&file, &[]));
        for (what, out) in [("--dry-run", &dry), ("import", &real)] {
            assert_eq!(out.status.code(), Some(1), "{name} {what}: {}", stderr(out));
            let v = json_of(out);
            assert_eq!(v["status"], "rejected", "{name} {what}: {v:#}");
            assert_eq!(
                v["file_error"]["code"], "unsupported_file_type",
                "{name} {what}: {v:#}"
            );
            assert_eq!(v["counts"]["added"], 0, "{name} {what}: {v:#}");
        }
        assert_eq!(
            json_of(&dry)["file_error"]["message"],
            json_of(&real)["file_error"]["message"],
            "{name}: the dry run previews the refusal word for word"
        );
        cli_messages.push(json_of(&real)["file_error"]["message"].clone());
    }
    assert_eq!(users_of(&env.config, TENANT), 0, "nothing was applied");

    // The daemon, given the same file in the inbox.
    let root = env.root(TENANT);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("users.json"), body).unwrap();
    set_old(&root.join("users.json"), Duration::from_secs(60));
    let mut serve = Serve::start(&config);
    let line = serve.wait_for("archived", &[("file", "users.json")]);
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
    let job = line["fields"]["job"].as_i64().expect("the job id");
    let daemon = summary(&root, job);
    assert_eq!(daemon["status"], "rejected", "{daemon:#}");
    assert_eq!(
        daemon["file_error"]["message"], cli_messages[0],
        "the CLI says what the daemon says"
    );
    assert_eq!(users_of(&env.config, TENANT), 0);
}

/// A failure mail whose attachment was cut points to
/// `results/…errors.csv`, but a CLI import wrote no `results/`. Now it
/// leaves what an upload leaves: the summary and the failed rows (the same
/// bytes as `jobs show --failed-csv`) in `results/`, a copy in `.bak/`, the
/// caller's file where it was; a dry run writes nothing.
#[test]
fn cli_import_with_failed_rows_writes_results_like_an_upload() {
    let env = SftpEnv::new("", "");
    let config = serve_config(&env, "");
    let root = env.root(TENANT);
    let file = env.write(
        "staff.csv",
        "user_id,email\nU1,u1@example.com\nU2,not-an-address\nU3,u3@example.com\n",
    );

    let dry = userdrop(&config, &import_args(&file, &["--dry-run"]));
    assert_eq!(json_of(&dry)["counts"]["failed"], 1, "{}", stdout(&dry));
    assert!(
        !root.join("results").exists(),
        "a dry run writes no results/"
    );

    let out = userdrop(&config, &import_args(&file, &[]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v = json_of(&out);
    assert_eq!(v["counts"]["failed"], 1, "{v:#}");
    let job = v["job"].as_i64().expect("a recorded job");

    let results = names_in(&root.join("results"));
    let errors_csv = results
        .iter()
        .find(|n| n.ends_with(&format!("-{job}_staff.errors.csv")))
        .unwrap_or_else(|| panic!("no results/*-{job}_staff.errors.csv in {results:?}"));
    let shown = userdrop(&config, &["jobs", "show", &job.to_string(), "--failed-csv"]);
    // Exit 1: the job's rows did not all succeed.
    assert_eq!(shown.status.code(), Some(1), "{}", stderr(&shown));
    assert!(!shown.stdout.is_empty());
    assert_eq!(
        std::fs::read(root.join("results").join(errors_csv)).unwrap(),
        shown.stdout,
        "results/ holds the failed rows jobs show --failed-csv prints"
    );
    let s = summary(&root, job);
    assert_eq!(s["counts"]["failed"], 1, "{s:#}");
    assert_eq!(s["counts"]["added"], 2, "{s:#}");
    assert_eq!(
        names_in(&root.join(".bak")),
        [format!(
            "{}_staff.csv",
            errors_csv.trim_end_matches("_staff.errors.csv")
        )],
        "the original's copy in .bak/ as for an upload"
    );
    assert!(file.is_file(), "the caller's file stays where it was");
    let stored = crate::util::daemon::job(&env.config, job);
    assert!(stored.archived_at.is_some(), "the job is archived");
}

/// SftpEnv's config, edited as a TOML table.
fn edit_config(path: &Path, edit: impl FnOnce(&mut toml::Table)) {
    let mut t: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
    edit(&mut t);
    std::fs::write(path, toml::to_string(&t).unwrap()).unwrap();
}

fn acme_account(t: &mut toml::Table) -> &mut toml::Table {
    t["tenants"][TENANT]["accounts"][0]
        .as_table_mut()
        .expect("acme's first account")
}

/// `check-config` said ok to an `authorized_keys` line the SFTP server
/// cannot parse (it only warned at start, and the customer got
/// "Permission denied"). The old check looked only at the line's shape.
#[test]
fn check_config_fails_on_an_authorized_keys_line_that_does_not_parse() {
    let env = SftpEnv::new("", "");
    let config = env.path("userdrop.toml");
    let ok = userdrop(&config, &["check-config"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    edit_config(&config, |t| {
        acme_account(t)["authorized_keys"]
            .as_array_mut()
            .unwrap()
            .push("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAnot-a-key hr@acme".into());
    });
    let out = userdrop(&config, &["check-config"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("tenants.acme.accounts.acme-hr.authorized_keys[1]"),
        "names the key: {}",
        stderr(&out)
    );
}

const UNSET_VAR: &str = "USERDROP_TEST_SMTP_PASSWORD_NEVER_SET";

fn smtp_with_password_env(var: &str) -> String {
    format!(
        "[smtp]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = 2525\nsecurity = \"none\"\n\
         username = \"mailer\"\npassword_env = \"{var}\"\n"
    )
}

/// `check-config` said ok with `password_env` naming a variable that is not
/// set: every mail would then fail at delivery. It fails, naming the key;
/// with the variable set it is ok.
#[test]
fn check_config_fails_on_an_unset_password_env() {
    let env = SftpEnv::new("", "");
    let config = serve_config(&env, &smtp_with_password_env(UNSET_VAR));
    let out = userdrop(&config, &["check-config"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("smtp.password_env") && stderr(&out).contains(UNSET_VAR),
        "names the key and the variable: {}",
        stderr(&out)
    );
    let set = Command::new(bin())
        .arg("--config")
        .arg(&config)
        .arg("check-config")
        .env_remove("USERDROP_CONFIG")
        .env(UNSET_VAR, "secret")
        .output()
        .unwrap();
    assert!(set.status.success(), "{}", stderr(&set));
}

/// `check-config` stopped at the first unknown key or TOML syntax error:
/// fixing a config took one run per mistake. Now every unknown key (in any
/// table), and every syntax error it can find, is listed in one run.
#[test]
fn check_config_lists_every_unknown_key_and_syntax_error_in_one_run() {
    let env = SftpEnv::new("", "");
    let config = env.path("userdrop.toml");
    edit_config(&config, |t| {
        t.insert("wokers".into(), 2.into());
        t["sftp"]
            .as_table_mut()
            .unwrap()
            .insert("idle_timout".into(), "5m".into());
        t["tenants"][TENANT]
            .as_table_mut()
            .unwrap()
            .insert("mod".into(), "sync".into());
        acme_account(t).insert("pasword_hash".into(), "x".into());
        // A value problem beside them is reported in the same run.
        t.insert("retention_days".into(), 0.into());
    });
    let out = userdrop(&config, &["check-config"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    for key in [
        "wokers",
        "sftp.idle_timout",
        "tenants.acme.mod",
        "tenants.acme.accounts.acme-hr.pasword_hash",
        "retention_days",
    ] {
        assert!(err.contains(&format!("- {key}")), "{key} is named: {err}");
    }
    assert!(err.contains("did you mean \"workers\""), "{err}");

    let broken = env.write(
        "broken.toml",
        "data_dir = \"/tmp/x\"\nworkers = \nsettle = \"5s\nschedule = \"x\"\n",
    );
    let out = userdrop(&broken, &["check-config"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("line 2") && err.contains("line 3"),
        "both syntax errors: {err}"
    );
}

/// `serve` never said which mail transport was active: an operator could
/// not tell whether reports went to a server or into a directory. It logs
/// it once at start, with where mail goes, never the password.
#[test]
fn serve_logs_once_which_mail_transport_is_active_and_where_mail_goes() {
    let env = SftpEnv::new("", "");
    let config = serve_config(&env, "");
    let mut serve = Serve::start(&config);
    let line = serve.wait_for("mail transport", &[]);
    assert_eq!(line["fields"]["transport"], "file", "{line}");
    let to = line["fields"]["to"].as_str().unwrap();
    assert!(
        to.contains(&env.config.data_dir.join("mail").display().to_string()),
        "{to}"
    );
    serve.signal("TERM");
    assert!(serve.wait_exit().success());

    let env = SftpEnv::new("", "");
    let var = "USERDROP_TEST_SMTP_PASSWORD";
    let config = serve_config(&env, &smtp_with_password_env(var));
    let mut cmd = Command::new(bin());
    cmd.arg("--config").arg(&config).env(var, "s3cret-Passw0rd");
    let mut serve = Serve::spawn(cmd);
    let line = serve.wait_for("mail transport", &[]);
    serve.wait_for("userdrop running", &[]);
    serve.signal("TERM");
    let status = serve.wait_exit_keeping_log();
    assert!(status.success());
    assert_eq!(line["fields"]["transport"], "smtp", "{line}");
    let to = line["fields"]["to"].as_str().unwrap();
    assert!(
        to.starts_with("127.0.0.1:2525") && to.contains(var) && to.contains("mailer"),
        "{to}"
    );
    let all: Vec<String> = serve.seen.iter().map(|v| v.to_string()).collect();
    assert_eq!(
        all.iter()
            .filter(|l| l.contains("\"mail transport\""))
            .count(),
        1,
        "logged once"
    );
    assert!(
        !all.iter().any(|l| l.contains("s3cret-Passw0rd")),
        "never the password"
    );
}

/// How many log lines so far have `message` and `path`.
fn lines_with(serve: &Serve, message: &str, path: &str) -> usize {
    serve
        .seen
        .iter()
        .filter(|v| v["fields"]["message"] == message && v["fields"]["path"] == path)
        .count()
}

const IN_SUBFOLDER: &str = "a file in a subfolder of the inbox is not imported";
const UNDER_TEMP_NAME: &str = "a file under a temp upload name is not imported";
const TEMP_REMOVED: &str =
    "removed a file left under a temp upload name for longer than incomplete_ttl";

/// A file in a subfolder of the inbox, or under a temp name never renamed,
/// sat there forever without a word. Each is now reported once (a log line
/// and a note in results/), not on every sweep; a temp-named file older
/// than incomplete_ttl is removed, and that is reported too; a note goes
/// when its file does.
#[test]
fn files_in_subfolders_and_under_temp_names_are_reported_once_and_old_temp_files_removed() {
    let env = SftpEnv::new("", "");
    let config = serve_config(&env, "");
    // A sweep every second: "once" is checked over several sweeps.
    edit_config(&config, |t| {
        t.insert("schedule".into(), "* * * * * *".into());
    });
    let root = env.root(TENANT);
    let body = "user_id,email\nU1,u1@example.com\n";
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("sub/users.csv"), body).unwrap();
    std::fs::write(root.join("sub/deeper/more.csv"), body).unwrap();
    std::fs::write(root.join("users.csv.filepart"), body).unwrap();
    set_old(&root.join("users.csv.filepart"), Duration::from_secs(60));
    std::fs::write(root.join("old.filepart"), body).unwrap();
    // Older than the default incomplete_ttl (24h).
    set_old(&root.join("old.filepart"), Duration::from_secs(2 * 86_400));

    let mut serve = Serve::start(&config);
    serve.wait_for(IN_SUBFOLDER, &[("path", "sub/users.csv")]);
    serve.wait_for(IN_SUBFOLDER, &[("path", "sub/deeper/more.csv")]);
    serve.wait_for(UNDER_TEMP_NAME, &[("path", "users.csv.filepart")]);
    serve.wait_for(TEMP_REMOVED, &[("path", "old.filepart")]);
    // Three more sweeps: nothing said again.
    for _ in 0..3 {
        let n = serve.seen.len();
        serve.wait_for_any_after(n, "scheduled sweep");
    }
    for (message, path) in [
        (IN_SUBFOLDER, "sub/users.csv"),
        (IN_SUBFOLDER, "sub/deeper/more.csv"),
        (UNDER_TEMP_NAME, "users.csv.filepart"),
    ] {
        assert_eq!(lines_with(&serve, message, path), 1, "{path}: said once");
    }
    let results = root.join("results");
    let notes = names_in(&results);
    for note in [
        "sub_users.csv.ignored.txt",
        "sub_deeper_more.csv.ignored.txt",
        "users.csv.filepart.ignored.txt",
    ] {
        assert!(notes.contains(&note.to_string()), "{note} in {notes:?}");
    }
    let sub_note = std::fs::read_to_string(results.join("sub_users.csv.ignored.txt")).unwrap();
    assert!(sub_note.contains("top folder"), "{sub_note}");
    let temp_note =
        std::fs::read_to_string(results.join("users.csv.filepart.ignored.txt")).unwrap();
    assert!(temp_note.contains("rename"), "{temp_note}");
    let removed = notes
        .iter()
        .find(|n| n.ends_with("_old.filepart.removed.txt"))
        .unwrap_or_else(|| panic!("a removal note in {notes:?}"));
    let removed = std::fs::read_to_string(results.join(removed)).unwrap();
    assert!(removed.contains("old.filepart was removed"), "{removed}");
    assert!(!root.join("old.filepart").exists(), "removed");
    assert!(root.join("sub/users.csv").exists(), "left where it is");
    assert_eq!(users_of(&env.config, TENANT), 0, "nothing imported");

    // Renamed to its final name: imported, and its note goes.
    std::fs::rename(root.join("users.csv.filepart"), root.join("users.csv")).unwrap();
    serve.wait_for("archived", &[("file", "users.csv")]);
    let n = serve.seen.len();
    serve.wait_for_any_after(n, "scheduled sweep");
    let n = serve.seen.len();
    serve.wait_for_any_after(n, "scheduled sweep");
    assert!(
        !results.join("users.csv.filepart.ignored.txt").exists(),
        "the note goes with its file: {:?}",
        names_in(&results)
    );
    serve.signal("TERM");
    assert!(serve.wait_exit().success());
    assert_eq!(users_of(&env.config, TENANT), 1);
}
