//! Bad input never panics: random bytes and random mutations of a valid file
//! go through the whole pipeline (decode, headers, validation, plan, apply),
//! and every outcome must be a clean, self-consistent report.

use std::collections::BTreeSet;

use proptest::prelude::*;
use userdrop::import::{self, ImportOptions};
use userdrop::report::summary::{JobReport, Status};

use crate::util::{Env, TENANT};

const VALID: &str = "userId,email,firstName,lastName,enabled,roles,reportsTo,transaction\n\
U1,ann@example.com,Ann,Lee,true,admin|staff,,\n\
U2,bob@example.com,\"Bob, Jr\",Ray,no,staff,U1,\n\
U3,cy@example.com,Cy,\"Multi\nLine\",1,,U2,\n\
U4,dee@example.com,Dee,Ma,inactive,ops,U9,\n\
U5,,Eve,Ng,,,,DELETE\n";

fn import(bytes: &[u8]) -> JobReport {
    let env = Env::new("mode = \"sync\"\nmax_missing_percent = 100");
    let file = env.write("fuzz.csv", bytes);
    let mut store = env.store();
    let tenant = env.config.tenant(TENANT).unwrap();
    let opts = ImportOptions {
        file_name: "fuzz.csv",
        source: "test",
        dry_run: false,
        job: None,
        approved: false,
    };
    let report = import::run(&mut store, tenant, &file, &opts)
        .expect("import returns a report, not an error")
        .report;
    let stored = userdrop::store::users::count(&store.conn, TENANT).unwrap() as u64;
    check(&report, stored);
    report
}

fn check(r: &JobReport, stored: u64) {
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
    match r.status {
        Status::Ok => assert!(c.failed == 0 && r.file_error.is_none()),
        Status::RowsFailed => assert!(c.failed > 0 && r.file_error.is_none()),
        Status::Rejected => assert_eq!(c.added + c.updated + c.deleted + c.deactivated, 0),
        Status::Held => assert!(r.file_error.is_some()),
    }
    if r.status == Status::Rejected {
        assert_eq!(stored, 0, "a rejected file writes nothing");
    } else {
        assert_eq!(
            stored, c.added,
            "a fresh store holds exactly the added users"
        );
    }
    for e in &r.errors {
        assert!(!e.message.contains('\u{FFFD}') || r.encoding.is_some());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_give_a_clean_outcome(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        import(&bytes);
    }

    #[test]
    fn mutated_valid_files_give_a_clean_outcome(
        edits in proptest::collection::vec((0usize..400, any::<u8>(), 0u8..4), 1..12)
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
        import(&bytes);
    }
}

#[test]
fn the_valid_base_file_imports() {
    let r = import(VALID.as_bytes());
    assert_eq!(r.status, Status::RowsFailed, "{}", r.human(10));
    assert_eq!(r.counts.added, 3);
    let codes: Vec<&str> = r.errors.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["unknown_reports_to", "not_found"]);
}
