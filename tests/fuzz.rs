//! Property tests of the whole pipeline (decode, headers, validation, plan,
//! apply) against a POPULATED store, in every mode (insert, upsert, sync
//! with deactivate and with delete, skip_rows and reject_file).
//!
//! Three generators: random bytes, random mutations of a valid file, and
//! well-formed files drawn from a small grammar (keys, emails, names,
//! enabled values and DELETE rows chosen so that they collide often). For
//! every case: the report is self-consistent, a dry run and a real run give
//! the same report, a rejected or held file changes nothing, and no U+FFFD
//! that the file did not hold reaches the store or a message. For the
//! grammar, a small reference model of what each mode does to the user set
//! predicts the failed rows and their codes, the counts, the status, and
//! what `users export` (the real binary) prints afterwards.
//!
//! Case counts are bounded so that this module runs in seconds on 2 cores.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use userdrop::import::{self, ImportOptions};
use userdrop::report::summary::{JobReport, Status};
use userdrop::store::users;

use crate::util::{stderr, stdout, Env, TENANT};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Insert,
    Upsert,
    SyncDeactivate,
    SyncDelete,
}

/// The tenant settings a case runs under.
#[derive(Debug, Clone, Copy)]
struct Setup {
    mode: Mode,
    reject_file: bool,
    max_missing_percent: u32,
}

impl Setup {
    fn toml(&self) -> String {
        let mode = match self.mode {
            Mode::Insert => "mode = \"insert\"\n".to_string(),
            Mode::Upsert => "mode = \"upsert\"\n".to_string(),
            Mode::SyncDeactivate | Mode::SyncDelete => format!(
                "mode = \"sync\"\nmissing = \"{}\"\nmax_missing_percent = {}.0\n",
                if self.mode == Mode::SyncDelete {
                    "delete"
                } else {
                    "deactivate"
                },
                self.max_missing_percent
            ),
        };
        let on_error = if self.reject_file {
            "reject_file"
        } else {
            "skip_rows"
        };
        format!("{mode}on_error = \"{on_error}\"\n")
    }
}

fn setups() -> impl Strategy<Value = Setup> {
    (
        prop_oneof![
            Just(Mode::Insert),
            Just(Mode::Upsert),
            Just(Mode::SyncDeactivate),
            Just(Mode::SyncDelete)
        ],
        any::<bool>(),
        prop_oneof![Just(0u32), Just(30), Just(100)],
    )
        .prop_map(|(mode, reject_file, max_missing_percent)| Setup {
            mode,
            reject_file,
            max_missing_percent,
        })
}

/// The users every case starts from: U0..U7, U6 disabled. Their email is
/// `u<i>@example.com`, which the grammar below reuses.
const STORED: usize = 8;

fn base_csv() -> String {
    let mut s = String::from("user_id,email,first_name,enabled\n");
    for i in 0..STORED {
        s.push_str(&format!(
            "U{i},u{i}@example.com,Base{i},{}\n",
            if i == 6 { "false" } else { "true" }
        ));
    }
    s
}

fn run(
    env: &Env,
    store: &mut userdrop::store::Store,
    file: &std::path::Path,
    dry_run: bool,
) -> JobReport {
    let tenant = env.config.tenant(TENANT).unwrap();
    let opts = ImportOptions {
        file_name: "fuzz.csv",
        source: "test",
        dry_run,
        job: None,
        approved: false,
        rows: userdrop::import::RowNumbers::Lines,
    };
    import::run(store, tenant, file, &opts)
        .expect("import returns a report, not an error")
        .report
}

/// A store holding the base users, under `setup`.
fn populated(setup: Setup) -> (Env, userdrop::store::Store) {
    let env = Env::new(&setup.toml());
    let mut store = env.store();
    let base = env.write("base.csv", base_csv());
    let r = run(&env, &mut store, &base, false);
    assert_eq!(
        r.status,
        Status::Ok,
        "the base file imports: {}",
        r.human(5)
    );
    assert_eq!(r.counts.added, STORED as u64);
    (env, store)
}

/// Everything about the tenant an import may change.
fn snapshot(store: &userdrop::store::Store) -> String {
    let u = users::all_users(&store, TENANT).unwrap();
    let roles = users::role_names(&store, TENANT).unwrap();
    format!("{}\n{roles:?}", serde_json::to_string(&u).unwrap())
}

/// The same report but for what a dry run cannot have (a job id).
fn comparable(r: &JobReport) -> JobReport {
    let mut r = r.clone();
    r.job = None;
    r.dry_run = false;
    r
}

/// Does the file itself hold U+FFFD, in any encoding the pipeline reads?
fn holds_replacement_char(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| w == [0xEF, 0xBF, 0xBD])
        || bytes
            .windows(2)
            .any(|w| w == [0xFD, 0xFF] || w == [0xFF, 0xFD])
}

/// Runs `bytes` as a dry run and for real against a populated store and
/// checks what holds for ANY input. Returns the real report and the env
/// (for checks of the stored users).
fn import_checked(setup: Setup, bytes: &[u8]) -> (JobReport, Env, userdrop::store::Store) {
    let (env, mut store) = populated(setup);
    let file = env.write("fuzz.csv", bytes);
    let before = snapshot(&store);
    let stored_before = users::count(&store, TENANT).unwrap() as u64;

    let dry = run(&env, &mut store, &file, true);
    assert_eq!(snapshot(&store), before, "a dry run writes nothing");
    assert!(dry.job.is_none() && dry.dry_run);
    let real = run(&env, &mut store, &file, false);
    assert!(real.job.is_some() && !real.dry_run);
    assert_eq!(
        comparable(&dry),
        comparable(&real),
        "a dry run and a real run agree ({setup:?})"
    );
    check_report(&real);

    let stored = users::count(&store, TENANT).unwrap() as u64;
    let c = &real.counts;
    match real.status {
        Status::Rejected | Status::Held => {
            assert_eq!(
                snapshot(&store),
                before,
                "{:?}: nothing applied",
                real.status
            )
        }
        Status::Ok | Status::RowsFailed => assert_eq!(
            stored,
            stored_before + c.added - c.deleted,
            "the store grows by the added users and shrinks by the deleted ones"
        ),
    }
    if !holds_replacement_char(bytes) {
        let text = snapshot(&store);
        assert!(
            !text.contains('\u{FFFD}'),
            "U+FFFD reached the store from a file without one: {text}"
        );
        for e in &real.errors {
            assert!(
                !e.message.contains('\u{FFFD}') && !e.key.contains('\u{FFFD}'),
                "U+FFFD in a row error from a file without one: {e:?}"
            );
        }
        if let Some(fe) = &real.file_error {
            assert!(!fe.message.contains('\u{FFFD}'), "{fe:?}");
        }
        for col in real.columns.iter().chain(&real.ignored_columns) {
            assert!(!col.contains('\u{FFFD}'), "column {col:?}");
        }
    }
    (real, env, store)
}

/// What every report must satisfy, whatever the input.
fn check_report(r: &JobReport) {
    let c = &r.counts;
    let failed_rows: BTreeSet<u64> = r.errors.iter().map(|e| e.row).collect();
    assert_eq!(
        c.failed,
        failed_rows.len() as u64,
        "failed counts rows with errors"
    );
    assert!(
        r.errors.iter().all(|e| e.row >= 2),
        "the header is row 1; data starts at 2"
    );
    assert!(c.failed <= c.rows);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for e in &r.errors {
        *reasons.entry(e.code.clone()).or_default() += 1;
    }
    assert_eq!(r.reasons, reasons, "reasons tally the errors");
    assert_eq!(r.held.is_some(), r.status == Status::Held);
    let writes = c.added + c.updated + c.deleted + c.deactivated + c.roles_added;
    match r.status {
        Status::Ok => assert!(c.failed == 0 && r.file_error.is_none()),
        Status::RowsFailed => assert!(c.failed > 0 && r.file_error.is_none()),
        Status::Rejected => assert_eq!(writes, 0, "a rejected file counts no writes"),
        Status::Held => {
            assert_eq!(r.file_error.as_ref().unwrap().code, "too_many_deletes");
            let h = r.held.as_ref().unwrap();
            assert!(h.percent > h.max_missing_percent);
            assert!(
                c.deactivated == h.would_touch || c.deleted >= h.would_touch,
                "the counts say what the held sync would do: {c:?} {h:?}"
            );
        }
    }
    if r.file_error.is_some() && r.status == Status::Rejected {
        assert_eq!(c.rows, 0, "a refused file reports no rows");
    }
}

// ------------------------------------------------------------ raw inputs

const VALID: &str = "userId,email,firstName,lastName,enabled,roles,reportsTo,transaction\n\
U1,u1@example.com,Ann,Lee,true,admin|staff,,\n\
U2,bob@example.com,\"Bob, Jr\",Ray,no,staff,U1,\n\
U3,u3@example.com,Cy,\"Multi\nLine\",1,,U2,\n\
U9,dee@example.com,Dee,Ma,inactive,ops,U99,\n\
U5,,Eve,Ng,,,,DELETE\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_give_a_clean_outcome(
        setup in setups(),
        bytes in proptest::collection::vec(any::<u8>(), 0..1500),
    ) {
        import_checked(setup, &bytes);
    }

    #[test]
    fn mutated_valid_files_give_a_clean_outcome(
        setup in setups(),
        edits in proptest::collection::vec((0usize..400, any::<u8>(), 0u8..4), 1..12),
    ) {
        let mut bytes = VALID.as_bytes().to_vec();
        for (pos, byte, op) in edits {
            let pos = pos % (bytes.len() + 1);
            match op {
                0 => bytes.insert(pos, byte),
                1 if pos < bytes.len() => { bytes.remove(pos); }
                2 if pos < bytes.len() => bytes[pos] = byte,
                // Structural bytes are where parsers break.
                _ => bytes.insert(pos, [b',', b'"', b'\n', b'\r', b';', b'|'][byte as usize % 6]),
            }
        }
        import_checked(setup, &bytes);
    }
}

#[test]
fn the_valid_base_file_imports_over_the_stored_users() {
    let setup = Setup {
        mode: Mode::Upsert,
        reject_file: false,
        max_missing_percent: 100,
    };
    let (r, _env, store) = import_checked(setup, VALID.as_bytes());
    assert_eq!(r.status, Status::RowsFailed, "{}", r.human(10));
    // U1, U2, U3 stored (updated); U9's manager is unknown; U5 deleted.
    assert_eq!(
        (r.counts.added, r.counts.updated, r.counts.deleted),
        (0, 3, 1),
        "{}",
        r.human(10)
    );
    let codes: Vec<&str> = r.errors.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["unknown_reports_to"]);
    assert_eq!(
        users::count(&store, TENANT).unwrap(),
        7,
        "8 stored, U5 deleted"
    );
}

/// A Windows-1252 file whose bytes are not UTF-8: decoded, never replaced
/// by U+FFFD (the property the fuzzers check, shown on one known input).
#[test]
fn windows_1252_names_reach_the_store_without_replacement_chars() {
    let setup = Setup {
        mode: Mode::Upsert,
        reject_file: false,
        max_missing_percent: 100,
    };
    let (r, _env, store) = import_checked(
        setup,
        b"user_id,email,first_name\nU1,u1@example.com,Jos\xe9\nU20,x@example.com,M\xfcller\n",
    );
    assert_eq!(r.status, Status::Ok, "{}", r.human(5));
    let names: Vec<Option<String>> = users::all_users(&store, TENANT)
        .unwrap()
        .into_iter()
        .filter(|u| u.key == "U1" || u.key == "U20")
        .map(|u| u.first_name)
        .collect();
    assert_eq!(names, [Some("José".into()), Some("Müller".into())]);
}

// ------------------------------------------------------------ the model

/// A cell choice of the grammar.
#[derive(Debug, Clone, Copy)]
enum Email {
    /// `u<j>@example.com`: the address user j has (or would get).
    Of(usize),
    /// `U<j>@EXAMPLE.COM`: the same address in other case.
    Shouting(usize),
    Bad,
    Empty,
}

#[derive(Debug, Clone)]
struct Row {
    /// Index into the key pool; `None` is an empty cell.
    user: Option<usize>,
    email: Email,
    /// 0, 1: a name; 2: a formula.
    name: u8,
    /// "true", "false", "", "maybe"
    enabled: &'static str,
    delete: bool,
}

/// Keys U0..U11: the first STORED are in the store before the file.
const POOL: usize = 12;

fn rows() -> impl Strategy<Value = Vec<Row>> {
    let user = prop_oneof![1 => Just(None), 12 => (0..POOL).prop_map(Some)];
    let email = prop_oneof![
        6 => (0..POOL).prop_map(Email::Of),
        1 => (0..POOL).prop_map(Email::Shouting),
        1 => Just(Email::Bad),
        1 => Just(Email::Empty),
    ];
    let enabled = prop_oneof![
        3 => Just("true"),
        2 => Just("false"),
        1 => Just(""),
        1 => Just("maybe"),
    ];
    let row = (
        user,
        email,
        prop_oneof![6 => 0u8..2, 1 => Just(2u8)],
        enabled,
        prop::bool::weighted(0.15),
    )
        .prop_map(|(user, email, name, enabled, delete)| Row {
            user,
            email,
            name,
            enabled,
            delete,
        });
    proptest::collection::vec(row, 0..10)
}

/// Rows tend to name their own user's address, so that most rows are valid
/// and the interesting collisions stay frequent but not universal.
fn bias(rows: Vec<Row>, own: Vec<bool>) -> Vec<Row> {
    rows.into_iter()
        .zip(own.into_iter().chain(std::iter::repeat(false)))
        .map(|(mut r, own)| {
            if let (true, Some(u), Email::Of(_)) = (own, r.user, r.email) {
                r.email = Email::Of(u);
            }
            r
        })
        .collect()
}

fn email_text(e: Email) -> String {
    match e {
        Email::Of(j) => format!("u{j}@example.com"),
        Email::Shouting(j) => format!("U{j}@EXAMPLE.COM"),
        Email::Bad => "not-an-address".into(),
        Email::Empty => String::new(),
    }
}

fn csv_of(rows: &[Row]) -> String {
    let mut s = String::from("user_id,email,first_name,enabled,transaction\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{}\n",
            r.user.map(|u| format!("U{u}")).unwrap_or_default(),
            email_text(r.email),
            ["Ann", "Bob", "=1+1"][r.name as usize],
            r.enabled,
            if r.delete { "DELETE" } else { "" }
        ));
    }
    s
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MUser {
    email: String,
    first_name: String,
    enabled: bool,
}

type Users = BTreeMap<String, MUser>;

fn base_users() -> Users {
    (0..STORED)
        .map(|i| {
            (
                format!("U{i}"),
                MUser {
                    email: format!("u{i}@example.com"),
                    first_name: format!("Base{i}"),
                    enabled: i != 6,
                },
            )
        })
        .collect()
}

/// What the model expects of an import.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    status: Status,
    /// Per failed spreadsheet row: its error codes, sorted.
    errors: BTreeMap<u64, Vec<String>>,
    rows: u64,
    added: u64,
    updated: u64,
    unchanged: u64,
    deleted: u64,
    deactivated: u64,
    failed: u64,
}

/// The reference model: what a mode does to the user set, written from the
/// README's rules, not from the code.
fn model(setup: Setup, rows: &[Row], stored: &Users) -> (Expected, Users) {
    let key = |r: &Row| r.user.map(|u| format!("U{u}"));
    let lower_email = |r: &Row| {
        let t = email_text(r.email);
        (!t.is_empty()).then(|| t.to_lowercase())
    };
    // Row-local rules. A DELETE row needs only its key.
    let mut errors: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| {
            let mut e = Vec::new();
            if r.user.is_none() {
                e.push("missing_user_id");
            }
            if !r.delete {
                match r.email {
                    Email::Empty => e.push("missing_email"),
                    Email::Bad => e.push("invalid_email"),
                    _ => {}
                }
                if r.name == 2 {
                    e.push("formula_value");
                }
                if r.enabled == "maybe" {
                    e.push("invalid_enabled");
                }
            }
            e
        })
        .collect();
    // Cross-row rules, judged on every row (valid or not, DELETE or not).
    let count = |f: &dyn Fn(&Row) -> Option<String>| {
        let mut n: BTreeMap<String, usize> = BTreeMap::new();
        for r in rows {
            if let Some(v) = f(r) {
                *n.entry(v).or_default() += 1;
            }
        }
        n
    };
    let keys = count(&key);
    let emails = count(&lower_email);
    for (i, r) in rows.iter().enumerate() {
        if key(r).is_some_and(|k| keys[&k] > 1) {
            errors[i].push("duplicate_user_id");
        }
        if lower_email(r).is_some_and(|e| emails[&e] > 1) {
            errors[i].push("duplicate_email");
        }
    }

    // Applying, in file order, in one transaction.
    let mut users = stored.clone();
    let (mut added, mut updated, mut unchanged, mut deleted, mut deactivated) = (0, 0, 0, 0, 0);
    let holder = |users: &Users, email: &str, not: &str| {
        users
            .iter()
            .any(|(k, u)| k != not && u.email.to_lowercase() == email.to_lowercase())
    };
    let mut deferred: Vec<usize> = Vec::new();
    let mut write = |users: &mut Users, i: usize| -> bool {
        let r = &rows[i];
        let k = key(r).unwrap();
        let email = match r.email {
            Email::Of(j) => format!("u{j}@example.com"),
            Email::Shouting(j) => format!("U{j}@example.com"),
            _ => unreachable!("a valid row has an email"),
        };
        if holder(users, &email, &k) {
            return false;
        }
        let new = MUser {
            email,
            first_name: ["Ann", "Bob"][r.name as usize].into(),
            enabled: r.enabled != "false",
        };
        match users.get(&k) {
            None => added += 1,
            Some(old) if *old == new => unchanged += 1,
            Some(_) => updated += 1,
        }
        users.insert(k, new);
        true
    };
    for (i, r) in rows.iter().enumerate() {
        if !errors[i].is_empty() {
            continue;
        }
        let k = key(r).unwrap();
        if r.delete {
            if users.remove(&k).is_some() {
                deleted += 1;
            } else {
                errors[i].push("not_found");
            }
        } else if setup.mode == Mode::Insert && stored.contains_key(&k) {
            errors[i].push("already_exists");
        } else if !write(&mut users, i) {
            deferred.push(i);
        }
    }
    // A row refused because another user held its address is tried again
    // while anything moves (the file applies as a whole, in any order);
    // users who swap addresses in a ring move together.
    loop {
        loop {
            let before = deferred.len();
            deferred.retain(|&i| !write(&mut users, i));
            if deferred.is_empty() || deferred.len() == before {
                break;
            }
        }
        // key of a waiting row → key of the holder of the address it wants
        let waits: BTreeMap<String, String> = deferred
            .iter()
            .filter_map(|&i| {
                let r = &rows[i];
                let want = email_text(r.email).to_lowercase();
                let holder = users
                    .iter()
                    .find(|(_, u)| u.email.to_lowercase() == want)?
                    .0
                    .clone();
                Some((key(r).unwrap(), holder))
            })
            .collect();
        let ring = waits.keys().find(|start| {
            let mut at = *start;
            (0..waits.len()).any(|_| match waits.get(at) {
                Some(next) => {
                    at = next;
                    next == *start
                }
                None => false,
            })
        });
        let Some(start) = ring.cloned() else { break };
        users.get_mut(&start).unwrap().email = format!("\u{1}parked:{start}");
    }
    for i in deferred {
        errors[i].push("duplicate_email");
    }
    let failed = errors.iter().filter(|e| !e.is_empty()).count() as u64;

    // Sync: users named by no row are deactivated or deleted, unless that
    // is more than max_missing_percent of the users before the file.
    let mut held = false;
    let sync = matches!(setup.mode, Mode::SyncDeactivate | Mode::SyncDelete);
    if sync && added + updated + unchanged + deleted > 0 {
        let named: BTreeSet<String> = rows.iter().filter_map(key).collect();
        let absent: Vec<String> = users
            .iter()
            .filter(|(k, u)| !named.contains(*k) && (setup.mode == Mode::SyncDelete || u.enabled))
            .map(|(k, _)| k.clone())
            .collect();
        let percent = absent.len() as f64 * 100.0 / stored.len() as f64;
        held = !absent.is_empty() && percent > setup.max_missing_percent as f64;
        for k in absent {
            if setup.mode == Mode::SyncDelete {
                users.remove(&k);
                deleted += 1;
            } else {
                users.get_mut(&k).unwrap().enabled = false;
                deactivated += 1;
            }
        }
    }

    let mut exp = Expected {
        status: Status::Ok,
        errors: errors
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.is_empty())
            .map(|(i, e)| {
                let mut e: Vec<String> = e.iter().map(|s| s.to_string()).collect();
                e.sort();
                (i as u64 + 2, e)
            })
            .collect(),
        rows: rows.len() as u64,
        added,
        updated,
        unchanged,
        deleted,
        deactivated,
        failed,
    };
    if held {
        exp.status = Status::Held;
        return (exp, stored.clone());
    }
    if setup.reject_file && failed > 0 {
        exp.status = Status::Rejected;
        (
            exp.added,
            exp.updated,
            exp.unchanged,
            exp.deleted,
            exp.deactivated,
        ) = (0, 0, 0, 0, 0);
        return (exp, stored.clone());
    }
    if failed > 0 {
        exp.status = Status::RowsFailed;
    }
    (exp, users)
}

fn observed(r: &JobReport) -> Expected {
    let mut errors: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for e in &r.errors {
        errors.entry(e.row).or_default().push(e.code.clone());
    }
    for codes in errors.values_mut() {
        codes.sort();
    }
    let c = &r.counts;
    Expected {
        status: r.status,
        errors,
        rows: c.rows,
        added: c.added,
        updated: c.updated,
        unchanged: c.unchanged,
        deleted: c.deleted,
        deactivated: c.deactivated,
        failed: c.failed,
    }
}

/// `users export` through the real binary, reduced to the model's fields.
fn exported(env: &Env) -> Users {
    let out = env.run(&["users", "export", "--tenant", TENANT]);
    assert!(out.status.success(), "users export: {}", stderr(&out));
    let text = stdout(&out);
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let header = rd.headers().unwrap().clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no {name} column in the export: {text}"))
    };
    let (k, e, f, en) = (
        col("user_id"),
        col("email"),
        col("first_name"),
        col("enabled"),
    );
    rd.records()
        .map(|rec| {
            let rec = rec.unwrap();
            (
                rec[k].to_string(),
                MUser {
                    email: rec[e].to_string(),
                    first_name: rec[f].to_string(),
                    enabled: match &rec[en] {
                        "true" => true,
                        "false" => false,
                        other => panic!("enabled {other:?} in the export"),
                    },
                },
            )
        })
        .collect()
}

fn check_against_model(setup: Setup, rows: &[Row]) {
    let csv = csv_of(rows);
    let (real, env, _store) = import_checked(setup, csv.as_bytes());
    let (want, want_users) = model(setup, rows, &base_users());
    assert_eq!(
        observed(&real),
        want,
        "{setup:?}\n{csv}\nthe model and the import disagree:\n{}",
        real.human(50)
    );
    assert_eq!(
        exported(&env),
        want_users,
        "{setup:?}\n{csv}\nusers export after the import is not what the model expects ({})",
        real.human(50)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_mode_does_what_the_model_says(
        setup in setups(),
        rows in rows(),
        own in proptest::collection::vec(prop::bool::weighted(0.6), 10),
    ) {
        check_against_model(setup, &bias(rows, own));
    }
}

/// The model's corners, pinned, so that each is exercised whatever the
/// random draw.
#[test]
fn model_corners() {
    let row = |user: Option<usize>, email: Email, delete: bool| Row {
        user,
        email,
        name: 0,
        enabled: "true",
        delete,
    };
    let sync = |mode, max| Setup {
        mode,
        reject_file: false,
        max_missing_percent: max,
    };
    // U2 takes U1's address before U1 moves on: order independent.
    let chain = [
        row(Some(2), Email::Of(1), false),
        row(Some(1), Email::Of(9), false),
    ];
    // Three users swap addresses in a ring.
    let ring = [
        row(Some(1), Email::Of(2), false),
        row(Some(2), Email::Of(3), false),
        row(Some(3), Email::Of(1), false),
    ];
    // An address of a stored user not in the file.
    let taken = [row(Some(9), Email::Of(3), false)];
    // A deleted user's address reused, the DELETE after the reuse.
    let freed = [
        row(Some(9), Email::Of(3), false),
        row(Some(3), Email::Empty, true),
    ];
    for setup in [
        sync(Mode::Upsert, 0),
        sync(Mode::Insert, 0),
        sync(Mode::SyncDeactivate, 100),
        sync(Mode::SyncDeactivate, 0),
        sync(Mode::SyncDelete, 100),
        sync(Mode::SyncDelete, 30),
        Setup {
            mode: Mode::Upsert,
            reject_file: true,
            max_missing_percent: 0,
        },
    ] {
        for rows in [&chain[..], &ring[..], &taken[..], &freed[..], &[][..]] {
            check_against_model(setup, rows);
        }
    }
    // The model itself is not vacuous: held, rejected and the sync counts.
    let (e, _) = model(sync(Mode::SyncDeactivate, 30), &taken, &base_users());
    assert_eq!((e.status, e.deactivated), (Status::RowsFailed, 0), "{e:?}");
    let (e, _) = model(sync(Mode::SyncDeactivate, 30), &freed, &base_users());
    assert_eq!(
        (e.status, e.deactivated, e.deleted),
        (Status::Held, 6, 1),
        "{e:?}"
    );
    let (e, u) = model(sync(Mode::SyncDelete, 100), &chain, &base_users());
    assert_eq!((e.status, e.deleted, u.len()), (Status::Ok, 6, 2), "{e:?}");
    let (e, u) = model(sync(Mode::Upsert, 0), &ring, &base_users());
    assert_eq!((e.status, e.updated), (Status::Ok, 3), "{e:?}");
    assert_eq!(u["U3"].email, "u1@example.com");
}
