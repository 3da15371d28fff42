//! `baseline --db PATH FILE.csv`
//!
//! The physical floor of loading a users CSV into userdrop's schema: the real
//! migration (`src/store/migrations/001_init.sql`), the same pragmas userdrop
//! sets, the `csv` crate reading byte records, and ONE transaction running one
//! prepared upsert per row. No validation, no diffing, no job ledger: whatever
//! userdrop does on top of this is its overhead.
//!
//! Prints `rows=N elapsed_s=S rows_per_s=R` on stdout.

use std::process::ExitCode;
use std::time::Instant;

use rusqlite::{params, Connection, OpenFlags};

const SCHEMA: &str = include_str!("../../../../src/store/migrations/001_init.sql");

const UPSERT: &str = "\
INSERT INTO users (tenant, key, user_id, email, first_name, last_name, enabled, roles, reports_to, row_hash, created_job, updated_job, created_at, updated_at)
VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, 1, ?10, ?10)
ON CONFLICT (tenant, key) DO UPDATE SET user_id = excluded.user_id, email = excluded.email, first_name = excluded.first_name, last_name = excluded.last_name, enabled = excluded.enabled, roles = excluded.roles, reports_to = excluded.reports_to, row_hash = excluded.row_hash, updated_job = excluded.updated_job, updated_at = excluded.updated_at";

const TENANT: &str = "bench";
const CREATED_AT: &str = "2026-11-21T00:00:00Z";

const USAGE: &str = "usage: baseline --db PATH FILE.csv";

fn main() -> ExitCode {
    let mut db = None;
    let mut file = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--db" => db = it.next(),
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if a.starts_with("--") => {
                eprintln!("baseline: unknown option {a}\n{USAGE}");
                return ExitCode::from(2);
            }
            _ if file.is_none() => file = Some(a),
            _ => {
                eprintln!("baseline: too many arguments\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(db), Some(file)) = (db, file) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match run(&db, &file) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baseline: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(db: &str, file: &str) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();

    let mut conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // Exactly the pragmas userdrop sets.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(format!("journal_mode is {mode}, not wal").into());
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "cache_size", -32768)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "busy_timeout", 5000)?;

    let has_users: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'users')",
        [],
        |r| r.get(0),
    )?;
    if !has_users {
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA)?;
        tx.commit()?;
    }

    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_path(file)?;
    let headers = rdr.byte_headers()?.clone();
    let col = |name: &str| -> Result<usize, String> {
        headers
            .iter()
            .position(|h| h == name.as_bytes())
            .ok_or_else(|| format!("{file}: no column {name:?} in the header"))
    };
    let (c_uid, c_email, c_first, c_last, c_enabled, c_roles, c_reports) = (
        col("user_id")?,
        col("email")?,
        col("first_name")?,
        col("last_name")?,
        col("enabled")?,
        col("roles")?,
        col("reports_to")?,
    );

    let mut rows: u64 = 0;
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare(UPSERT)?;
        let mut rec = csv::ByteRecord::new();
        let mut roles = String::with_capacity(128);
        while rdr.read_byte_record(&mut rec)? {
            let line = rows + 2;
            let field = |i: usize| -> Result<&str, String> {
                let b = rec.get(i).unwrap_or(b"");
                std::str::from_utf8(b).map_err(|_| format!("line {line}: column {i} is not UTF-8"))
            };
            let uid = field(c_uid)?;
            let email = field(c_email)?;
            let first = field(c_first)?;
            let last = field(c_last)?;
            let enabled = field(c_enabled)?;
            let reports = field(c_reports)?;
            roles_json(field(c_roles)?, &mut roles);
            let enabled = matches!(enabled.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "y");
            stmt.execute(params![
                TENANT,
                uid,
                email,
                non_empty(first),
                non_empty(last),
                enabled as i64,
                roles.as_str(),
                non_empty(reports),
                fnv1a(&rec) as i64,
                CREATED_AT,
            ])?;
            rows += 1;
        }
    }
    tx.commit()?;
    // Closing runs the final WAL checkpoint; count it, userdrop pays it too.
    conn.close().map_err(|(_, e)| e)?;

    let secs = started.elapsed().as_secs_f64();
    println!("rows={rows} elapsed_s={secs:.3} rows_per_s={:.0}", rows as f64 / secs);
    Ok(())
}

fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

/// `staff|eng` -> `["staff","eng"]` (empty cell -> `[]`), minimal JSON escaping.
fn roles_json(cell: &str, out: &mut String) {
    out.clear();
    out.push('[');
    let mut first = true;
    for role in cell.split('|').map(str::trim).filter(|r| !r.is_empty()) {
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        for c in role.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
}

/// A cheap 64-bit hash of the record's cells (stand-in for userdrop's row hash).
fn fnv1a(rec: &csv::ByteRecord) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in rec.iter() {
        for &b in f {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0x1f;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
