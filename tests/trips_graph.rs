//! The management graph (issue 13, points 1 and 2): deleting a manager
//! left users pointing at nobody (and `users export` no longer imported
//! back), and loops of managers were accepted. Each test drives the real
//! binary (or the daemon over SFTP) and reads the store and the report.

use serde_json::{json, Value};

use crate::util::{stderr, stdout, Env, TENANT};

/// `(key, reports_to, updated_job)` of every user of the tenant, by key.
fn managers_in(env: &Env) -> Vec<(String, Option<String>, i64)> {
    let conn = env.sql();
    let mut stmt = conn
        .prepare("SELECT key, reports_to, updated_job FROM users WHERE tenant = ?1 ORDER BY key")
        .unwrap();
    stmt.query_map([TENANT], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn reports_to(env: &Env, key: &str) -> Option<String> {
    managers_in(env)
        .into_iter()
        .find(|(k, _, _)| k == key)
        .unwrap_or_else(|| panic!("no user {key} in the store"))
        .1
}

/// Each error as (row, code, key).
fn errors(v: &Value) -> Vec<(u64, String, String)> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["code"].as_str().unwrap().to_string(),
                e["key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn message_of(v: &Value, row: u64) -> String {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["row"] == row)
        .unwrap_or_else(|| panic!("no error on row {row}: {v:#}"))["message"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `users export`, imported back: nothing fails and nothing changes.
fn export_imports_back_unchanged(env: &Env) {
    let out = env.run(&["users", "export", "--tenant", TENANT]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = managers_in(env);
    let v = env.import_json("export.csv", &stdout(&out));
    let c = &v["counts"];
    assert_eq!(c["failed"], 0, "the export imports back: {v:#}");
    assert_eq!(
        (
            c["added"].as_u64(),
            c["updated"].as_u64(),
            c["deleted"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{v:#}"
    );
    assert_eq!(c["unchanged"].as_u64(), Some(before.len() as u64), "{v:#}");
    assert_eq!(
        managers_in(env),
        before,
        "re-importing the export changed the store"
    );
}

/// The reproduction: `mgr` and `emp` (reporting to `mgr`); then a
/// file deleting `mgr` with a new row `new1` reporting to `mgr`. Both
/// pointed at a user that no longer existed, and the export did not import
/// back (`unknown_reports_to`).
#[test]
fn deleting_a_manager_clears_the_reports_of_stored_users_and_fails_new_rows_naming_them() {
    let env = Env::new("");
    let v = env.import_json(
        "first.csv",
        "user_id,email,reports_to\nmgr,mgr@example.com,\nemp,emp@example.com,mgr\nsub,sub@example.com,mgr\nboss,boss@example.com,\n",
    );
    assert_eq!(v["counts"]["added"], 4, "{v:#}");
    let v = env.import_json(
        "second.csv",
        "user_id,email,reports_to,action\nmgr,,,DELETE\nnew1,new1@example.com,mgr,\nnew2,new2@example.com,boss,\n",
    );
    let job = v["job"].as_i64().unwrap();
    assert_eq!(v["status"], "rows_failed", "{v:#}");
    assert_eq!(
        errors(&v),
        vec![(3, "unknown_reports_to".into(), "new1".into())],
        "{v:#}"
    );
    let m = message_of(&v, 3);
    assert!(m.contains("deleted by row 2"), "{m}");
    let c = &v["counts"];
    assert_eq!(
        (
            c["deleted"].as_u64(),
            c["added"].as_u64(),
            c["failed"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{v:#}"
    );
    assert_eq!(c["managers_cleared"], 2, "{v:#}");
    assert_eq!(
        v["managers_lost"],
        json!([{"key": "emp", "manager": "mgr"}, {"key": "sub", "manager": "mgr"}]),
        "{v:#}"
    );
    // The store: nobody points at mgr; the cleared users carry this job.
    let users = managers_in(&env);
    assert_eq!(
        users,
        vec![
            ("boss".into(), None, 1),
            ("emp".into(), None, job),
            ("new2".into(), Some("boss".into()), job),
            ("sub".into(), None, job),
        ],
    );
    // The human outcome and the mail name who lost which manager.
    let shown = env.run(&["jobs", "show", &job.to_string()]);
    assert!(
        stdout(&shown).contains("emp (was mgr), sub (was mgr)"),
        "{}",
        stdout(&shown)
    );
    let mail = env.run(&["mail", "show", "1"]);
    let text = String::from_utf8_lossy(&mail.stdout).replace("=\r\n", "");
    assert!(text.contains("emp (was mgr)"), "{text}");
    export_imports_back_unchanged(&env);
}

/// A sync that deletes the users a file leaves out (`missing = "delete"`)
/// deletes managers too: those who reported to them lose their manager.
#[test]
fn a_sync_deleting_a_manager_clears_the_reports_to_them() {
    let env = Env::new("mode = \"sync\"\nmissing = \"delete\"\nmax_missing_percent = 100.0");
    let v = env.import_json(
        "all.csv",
        "user_id,email,reports_to\nmgr,mgr@example.com,\nemp,emp@example.com,mgr\nx,x@example.com,\n",
    );
    assert_eq!(v["counts"]["added"], 3, "{v:#}");
    // No reports_to column: emp's stored manager is kept by the row, then
    // the sync deletes mgr.
    let v = env.import_json(
        "sync.csv",
        "user_id,email\nemp,emp@example.com\nx,x@example.com\n",
    );
    assert_eq!(v["status"], "ok", "{v:#}");
    assert_eq!(v["counts"]["deleted"], 1, "{v:#}");
    assert_eq!(v["counts"]["managers_cleared"], 1, "{v:#}");
    assert_eq!(
        v["managers_lost"],
        json!([{"key": "emp", "manager": "mgr"}]),
        "{v:#}"
    );
    assert_eq!(reports_to(&env, "emp"), None);
    export_imports_back_unchanged(&env);
}

/// Deactivation keeps `reports_to`: a deactivated manager still exists.
#[test]
fn a_sync_deactivating_a_manager_keeps_the_reports_to_them() {
    let env = Env::new("mode = \"sync\"\nmax_missing_percent = 100.0");
    env.import_json(
        "all.csv",
        "user_id,email,reports_to\nmgr,mgr@example.com,\nemp,emp@example.com,mgr\n",
    );
    let v = env.import_json(
        "sync.csv",
        "user_id,email,reports_to\nemp,emp@example.com,mgr\n",
    );
    assert_eq!(v["status"], "ok", "{v:#}");
    assert_eq!(v["counts"]["deactivated"], 1, "{v:#}");
    assert!(v["counts"].get("managers_cleared").is_none(), "{v:#}");
    assert_eq!(reports_to(&env, "emp"), Some("mgr".into()));
    export_imports_back_unchanged(&env);
}

/// `c1` reporting to `c2` and `c2` to `c1` (and a longer loop) were
/// accepted silently. Every row of a loop fails `reports_to_cycle`, once,
/// naming the loop from its own user; rows off the loops are applied.
#[test]
fn management_loops_in_a_file_are_refused_naming_the_loop() {
    let env = Env::new("");
    let v = env.import_json(
        "loops.csv",
        "user_id,email,reports_to\n\
         c1,c1@example.com,c2\n\
         c2,c2@example.com,c1\n\
         l1,l1@example.com,l2\n\
         l2,l2@example.com,l3\n\
         l3,l3@example.com,l1\n\
         d,d@example.com,\n\
         e,e@example.com,d\n",
    );
    assert_eq!(v["status"], "rows_failed", "{v:#}");
    let codes: Vec<(u64, String, String)> = (2..=6)
        .map(|r| {
            (
                r,
                "reports_to_cycle".to_string(),
                ["c1", "c2", "l1", "l2", "l3"][r as usize - 2].to_string(),
            )
        })
        .collect();
    assert_eq!(errors(&v), codes, "one error per row of a loop: {v:#}");
    assert_eq!(v["reasons"], json!({"reports_to_cycle": 5}), "{v:#}");
    assert!(message_of(&v, 2).contains("c1 → c2 → c1"), "{v:#}");
    assert!(message_of(&v, 3).contains("c2 → c1 → c2"), "{v:#}");
    assert!(message_of(&v, 5).contains("l2 → l3 → l1 → l2"), "{v:#}");
    let c = &v["counts"];
    assert_eq!(
        (c["added"].as_u64(), c["failed"].as_u64()),
        (Some(2), Some(5)),
        "{v:#}"
    );
    assert_eq!(
        managers_in(&env)
            .into_iter()
            .map(|(k, m, _)| (k, m))
            .collect::<Vec<_>>(),
        vec![("d".into(), None), ("e".into(), Some("d".into()))]
    );
}

/// A loop that closes over stored users: `s1` (stored) reports to `s2`;
/// the file makes `s2` report to the new `c`, and `c` to `s1`.
#[test]
fn a_management_loop_closing_over_stored_users_is_refused() {
    let env = Env::new("");
    env.import_json(
        "first.csv",
        "user_id,email,reports_to\ns2,s2@example.com,\ns1,s1@example.com,s2\n",
    );
    let v = env.import_json(
        "second.csv",
        "user_id,email,reports_to\ns2,s2@example.com,c\nc,c@example.com,s1\n",
    );
    assert_eq!(
        errors(&v),
        vec![
            (2, "reports_to_cycle".into(), "s2".into()),
            (3, "reports_to_cycle".into(), "c".into())
        ],
        "{v:#}"
    );
    assert!(message_of(&v, 3).contains("c → s1 → s2 → c"), "{v:#}");
    assert_eq!(v["counts"]["failed"], 2, "{v:#}");
    assert_eq!(reports_to(&env, "s2"), None, "the stored s2 is untouched");
    assert_eq!(managers_in(&env).len(), 2, "c was not added");
}

/// `d` (stored) reports to `e`; the file makes `e` report to `d` and `d`
/// to a manager that does not exist. `d`'s row fails, so `d` keeps `e` as
/// its manager: applying `e`'s row would close the loop `e → d → e`.
#[test]
fn a_row_whose_failure_would_close_a_loop_is_refused_too() {
    let env = Env::new("");
    env.import_json(
        "first.csv",
        "user_id,email,reports_to\ne,e@example.com,\nd,d@example.com,e\n",
    );
    let v = env.import_json(
        "second.csv",
        "user_id,email,reports_to\ne,e@example.com,d\nd,d@example.com,nobody\n",
    );
    assert_eq!(
        errors(&v),
        vec![
            (2, "reports_to_cycle".into(), "e".into()),
            (3, "unknown_reports_to".into(), "d".into())
        ],
        "{v:#}"
    );
    assert!(message_of(&v, 2).contains("e → d → e"), "{v:#}");
    assert_eq!(reports_to(&env, "e"), None);
    assert_eq!(reports_to(&env, "d"), Some("e".into()));
    export_imports_back_unchanged(&env);
}

/// A user reporting to themselves got two contradictory errors
/// (`invalid_reports_to`, then `unknown_reports_to` as their own row had
/// failed): now one, the loop of one.
#[test]
fn a_self_report_gives_one_error() {
    let env = Env::new("");
    let v = env.import_json(
        "self.csv",
        "user_id,email,reports_to\nU1,u1@example.com,U1\nU2,u2@example.com,\n",
    );
    assert_eq!(
        errors(&v),
        vec![(2, "reports_to_cycle".into(), "U1".into())],
        "{v:#}"
    );
    assert!(message_of(&v, 2).contains("U1 → U1"), "{v:#}");
    assert_eq!(v["counts"]["added"], 1, "{v:#}");
}

/// Both rules through the daemon: files uploaded over SFTP (OpenSSH
/// `sftp`), outcome read from `results/` and the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_managers_and_loops_over_sftp() {
    use crate::util::clients::{assert_ok, sftp_key};
    use crate::util::daemon::{summary, Running};
    let env = crate::util::SftpEnv::new("", "");
    let paths = userdrop::daemon::Paths {
        scheduler: false,
        ..Default::default()
    };
    let mut d = Running::start(env.config.clone(), true, paths).await;
    let root = env.root(TENANT);
    env.write(
        "first.csv",
        "user_id,email,reports_to\nmgr,mgr@example.com,\nemp,emp@example.com,mgr\n",
    );
    env.write(
        "second.csv",
        "user_id,email,reports_to,action\nmgr,,,DELETE\nnew1,new1@example.com,mgr,\nc1,c1@example.com,c2,\nc2,c2@example.com,c1,\nok,ok@example.com,emp,\n",
    );
    let out = sftp_key(&env, d.port, "put first.csv users1.csv\n", &[]).await;
    assert_ok(&out, "sftp put first.csv");
    let first = d.next_done("the first file").await;
    assert_eq!(summary(&root, first.job)["counts"]["added"], 2);
    let out = sftp_key(&env, d.port, "put second.csv users2.csv\n", &[]).await;
    assert_ok(&out, "sftp put second.csv");
    let second = d.next_done("the second file").await;
    d.stop().await;
    let s = summary(&root, second.job);
    let c = &s["counts"];
    assert_eq!(
        (
            c["deleted"].as_u64(),
            c["added"].as_u64(),
            c["failed"].as_u64(),
            c["managers_cleared"].as_u64()
        ),
        (Some(1), Some(1), Some(3), Some(1)),
        "{s:#}"
    );
    assert_eq!(
        s["reasons"],
        json!({"unknown_reports_to": 1, "reports_to_cycle": 2}),
        "{s:#}"
    );
    let conn = crate::util::sql(&env.config.db_path());
    let mut stmt = conn
        .prepare("SELECT key, reports_to FROM users WHERE tenant = ?1 ORDER BY key")
        .unwrap();
    let users: Vec<(String, Option<String>)> = stmt
        .query_map([TENANT], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        users,
        vec![("emp".into(), None), ("ok".into(), Some("emp".into()))]
    );
}
