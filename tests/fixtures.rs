//! Runs every behaviour case under `fixtures/<case>/`: optional `before.csv`
//! imported first, then `input.csv` as a dry run (outcome must match and the
//! store must not change) and for real (outcome and stored users must match
//! `expected.json`). Every failing case is listed, not just the first.
//!
//! Every directory under `fixtures/` is a case, except those named in
//! [`NOT_CASES`]; a case holds only the files [`CASE_FILES`] names, and
//! `expected.json` must pin every outcome field this runner checks (an
//! absent key is a failure, not a skipped check); optional keys
//! (`encoding`, `delimiter`, `ignored_columns`, `file_error_says`: words the
//! file error's message must hold) are checked when present. The number of cases is
//! pinned in [`CASES`], so losing fixtures fails the run.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use userdrop::import::{self, ImportOptions};
use userdrop::report::summary::JobReport;
use userdrop::store::{users, Store};

use crate::util::{Env, TENANT};

/// How many cases `fixtures/` holds. Adding a case means raising this;
/// losing one fails the run.
const CASES: usize = 114;

/// Directories of `fixtures/` that are not cases: `sample` is the file the
/// README has a newcomer upload (the embedded default imports it, see
/// `cli::embedded_default_imports_the_sample_file`).
const NOT_CASES: &[&str] = &["sample"];

/// Plain files allowed at the top of `fixtures/`: the script that writes
/// the cases.
const NOT_CASE_FILES: &[&str] = &["generate.py"];

/// What a case directory may hold; anything else (say a misspelt
/// `befor.csv`, which would silently not run) fails.
const CASE_FILES: &[&str] = &["input.csv", "expected.json", "tenant.toml", "before.csv"];

/// Keys every `expected.json` must have.
const REQUIRED: &[&str] = &[
    "description",
    "status",
    "file_error",
    "counts",
    "errors",
    "reasons",
    "held",
    "columns",
];

fn run(env: &Env, store: &mut Store, file: &Path, dry_run: bool) -> JobReport {
    let tenant = env.config.tenant(TENANT).unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let opts = ImportOptions {
        file_name: &name,
        source: "test",
        dry_run,
        job: None,
        approved: false,
        rows: userdrop::import::RowNumbers::Lines,
    };
    import::run(store, tenant, file, &opts)
        .expect("import runs")
        .report
}

/// Everything about the tenant's state that an import may change.
fn snapshot(store: &Store) -> String {
    let u = users::all_users(&store, TENANT).unwrap();
    let roles = users::role_names(&store, TENANT).unwrap();
    let jobs = userdrop::store::jobs::list(store, None, i64::MAX)
        .unwrap()
        .len();
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
    // Each error as [row, code, field, key].
    let errors: Vec<Value> = r
        .errors
        .iter()
        .map(|e| serde_json::json!([e.row, e.code, e.field, e.key]))
        .collect();
    eq("errors", &expected["errors"], Value::Array(errors));
    eq(
        "reasons",
        &expected["reasons"],
        serde_json::to_value(&r.reasons).unwrap(),
    );
    eq(
        "columns",
        &expected["columns"],
        serde_json::to_value(&r.columns).unwrap(),
    );
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
    // Optional: words the file error's message must contain.
    if let Some(says) = expected.get("file_error_says").and_then(Value::as_array) {
        let message = r
            .file_error
            .as_ref()
            .map(|e| e.message.as_str())
            .unwrap_or("");
        for want in says {
            if !want.as_str().is_some_and(|w| message.contains(w)) {
                problems.push(format!(
                    "{what}: file error message {message:?} lacks {want}"
                ));
            }
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
    check_held(&expected["held"], r, what, problems);
}

/// `held` is null, or the numbers a held sync reports (its percentage
/// compared to 1e-9: JSON floats need not round-trip to the last bit).
fn check_held(want: &Value, r: &JobReport, what: &str, problems: &mut Vec<String>) {
    let got = serde_json::to_value(&r.held).unwrap();
    let same = match (want, &r.held) {
        (Value::Null, None) => true,
        (Value::Object(w), Some(h)) => {
            let num = |k: &str| w.get(k).and_then(Value::as_f64);
            w.len() == 4
                && w.get("would_touch").and_then(Value::as_u64) == Some(h.would_touch)
                && w.get("of_users").and_then(Value::as_u64) == Some(h.of_users)
                && num("percent").is_some_and(|p| (p - h.percent).abs() < 1e-9)
                && num("max_missing_percent") == Some(h.max_missing_percent)
        }
        _ => false,
    };
    if !same {
        problems.push(format!("{what}: held: expected {want}, got {got}"));
    }
}

fn check_users(expected: &Value, store: &Store, problems: &mut Vec<String>) {
    let stored = users::all_users(&store, TENANT).unwrap();
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
    for entry in std::fs::read_dir(dir).expect("the case directory reads") {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !CASE_FILES.contains(&name.as_str()) {
            problems.push(format!(
                "{name}: not a file a case may hold ({CASE_FILES:?})"
            ));
        }
    }
    let expected: Value = match std::fs::read_to_string(dir.join("expected.json")) {
        Err(e) => {
            problems.push(format!("no expected.json: {e}; every directory is a case"));
            return problems;
        }
        Ok(text) => match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("expected.json does not parse: {e}"));
                return problems;
            }
        },
    };
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|k| expected.get(k).is_none())
        .collect();
    if !missing.is_empty() {
        problems.push(format!("expected.json lacks {missing:?}"));
        return problems;
    }
    if expected.get("users").is_none() && expected.get("user_count").is_none() {
        problems.push("expected.json pins no stored users (`users` or `user_count`)".into());
        return problems;
    }
    if !dir.join("input.csv").exists() {
        problems.push("no input.csv".into());
        return problems;
    }
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
    let mut cases = Vec::new();
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&root).expect("fixtures/ exists") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !NOT_CASES.contains(&name.as_str()) {
                cases.push(path);
            }
        } else if !NOT_CASE_FILES.contains(&name.as_str()) {
            failures.push(format!("{name}: a stray file in fixtures/"));
        }
    }
    cases.sort();
    for other in NOT_CASES {
        assert!(
            root.join(other).join("users.csv").is_file(),
            "fixtures/{other}/users.csv is gone"
        );
    }
    assert_eq!(
        cases.len(),
        CASES,
        "fixtures/ holds {} cases, not {CASES}: a case was lost (or added without raising CASES)",
        cases.len()
    );
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
