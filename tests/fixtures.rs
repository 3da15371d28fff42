//! Runs every behaviour case under `fixtures/<case>/`: optional `before.csv`
//! imported first, then `input.csv` as a dry run (outcome must match and the
//! store must not change) and for real (outcome and stored users must match
//! `expected.json`). Every failing case is listed, not just the first.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use userdrop::import::{self, ImportOptions};
use userdrop::report::summary::JobReport;
use userdrop::store::{users, Store};

use crate::util::{Env, TENANT};

fn run(env: &Env, store: &mut Store, file: &Path, dry_run: bool) -> JobReport {
    let tenant = env.config.tenant(TENANT).unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let opts = ImportOptions {
        file_name: &name,
        source: "test",
        dry_run,
        job: None,
        approved: false,
    };
    import::run(store, tenant, file, &opts)
        .expect("import runs")
        .report
}

/// Everything about the tenant's state that an import may change.
fn snapshot(store: &Store) -> String {
    let u = users::all_users(&store.conn, TENANT).unwrap();
    let roles = users::role_names(&store.conn, TENANT).unwrap();
    let jobs: i64 = store
        .conn
        .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
        .unwrap();
    format!("{}\n{roles:?}\n{jobs}", serde_json::to_string(&u).unwrap())
}

fn check_outcome(expected: &Value, r: &JobReport, what: &str, problems: &mut Vec<String>) {
    let mut eq = |name: &str, want: &Value, got: Value| {
        if *want != got {
            problems.push(format!("{what}: {name}: expected {want}, got {got}"));
        }
    };
    eq(
        "status",
        &expected["status"],
        Value::String(r.status.as_str().into()),
    );
    eq(
        "file_error",
        &expected["file_error"],
        r.file_error
            .as_ref()
            .map(|e| Value::String(e.code.clone()))
            .unwrap_or(Value::Null),
    );
    eq(
        "counts",
        &expected["counts"],
        serde_json::to_value(&r.counts).unwrap(),
    );
    let errors: Vec<Value> = r
        .errors
        .iter()
        .map(|e| serde_json::json!([e.row, e.code]))
        .collect();
    eq("errors", &expected["errors"], Value::Array(errors));
    for key in ["encoding", "delimiter"] {
        if let Some(want) = expected.get(key) {
            let got = if key == "encoding" {
                &r.encoding
            } else {
                &r.delimiter
            };
            eq(
                key,
                want,
                got.clone().map(Value::String).unwrap_or(Value::Null),
            );
        }
    }
    if let Some(want) = expected.get("ignored_columns") {
        eq(
            "ignored_columns",
            want,
            serde_json::to_value(&r.ignored_columns).unwrap(),
        );
    }
    // Every failure carries a message a person can act on.
    for e in &r.errors {
        if e.message.len() < 20 {
            problems.push(format!(
                "{what}: row {} {}: message too thin: {:?}",
                e.row, e.code, e.message
            ));
        }
    }
    if let Some(fe) = &r.file_error {
        if fe.message.len() < 20 {
            problems.push(format!(
                "{what}: file error message too thin: {:?}",
                fe.message
            ));
        }
    }
}

fn check_users(expected: &Value, store: &Store, problems: &mut Vec<String>) {
    let stored = users::all_users(&store.conn, TENANT).unwrap();
    if let Some(n) = expected.get("user_count") {
        if n.as_u64() != Some(stored.len() as u64) {
            problems.push(format!("user_count: expected {n}, got {}", stored.len()));
        }
    }
    let Some(want) = expected.get("users").and_then(Value::as_object) else {
        return;
    };
    let by_key: BTreeMap<&str, Value> = stored
        .iter()
        .map(|u| (u.key.as_str(), serde_json::to_value(u).unwrap()))
        .collect();
    let want_keys: Vec<&str> = want.keys().map(String::as_str).collect();
    let got_keys: Vec<&str> = by_key.keys().copied().collect();
    let mut want_sorted = want_keys.clone();
    want_sorted.sort_unstable();
    if want_sorted != got_keys {
        problems.push(format!(
            "stored keys: expected {want_sorted:?}, got {got_keys:?}"
        ));
    }
    for (key, fields) in want {
        let Some(user) = by_key.get(key.as_str()) else {
            continue;
        };
        for (field, value) in fields.as_object().expect("users.<key> is an object") {
            if user.get(field) != Some(value) {
                problems.push(format!(
                    "user {key}.{field}: expected {value}, got {}",
                    user.get(field).cloned().unwrap_or(Value::Null)
                ));
            }
        }
    }
}

fn run_case(dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json exists"),
    )
    .expect("expected.json parses");
    let tenant_toml = std::fs::read_to_string(dir.join("tenant.toml")).unwrap_or_default();
    let env = Env::new(&tenant_toml);
    let mut store = env.store();

    let before = dir.join("before.csv");
    if before.exists() {
        let r = run(&env, &mut store, &before, false);
        if r.status.as_str() != "ok" {
            problems.push(format!("before.csv did not import cleanly: {}", r.human(5)));
            return problems;
        }
    }
    let input = dir.join("input.csv");
    let snap = snapshot(&store);
    let dry = run(&env, &mut store, &input, true);
    check_outcome(&expected, &dry, "dry run", &mut problems);
    if dry.job.is_some() {
        problems.push("dry run: a job id was given".into());
    }
    if snapshot(&store) != snap {
        problems.push("dry run: the store changed".into());
    }
    let real = run(&env, &mut store, &input, false);
    check_outcome(&expected, &real, "import", &mut problems);
    check_users(&expected, &store, &mut problems);
    problems
}

#[test]
fn every_fixture_behaves_as_expected() {
    let root = crate::util::repo().join("fixtures");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .expect("fixtures/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 30,
        "only {} fixtures; the suite promises at least 30",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let problems = run_case(case);
        if !problems.is_empty() {
            failures.push(format!(
                "{}:\n    {}",
                case.file_name().unwrap().to_string_lossy(),
                problems.join("\n    ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
