//! Crash safety: the real binary is SIGKILLed in the middle of a large
//! import, at several depths, and the store must hold either nothing of the
//! file or all of it. The kill points are events, not timers: the "applying"
//! log line, then the WAL growing past a size, which means the transaction
//! has spilled pages to disk and a torn write would show.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{bin, users_csv, Env, TENANT};

fn users_in(db: &Path) -> i64 {
    let store = userdrop::store::Store::open(db).expect("store opens after a kill");
    let check: String = crate::util::sql(db)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "store integrity after a kill");
    userdrop::store::users::count(&store, TENANT).unwrap()
}

/// Starts an import and kills it once the WAL holds at least `wal_bytes`
/// after the apply pass began. Returns false if it finished first.
fn kill_during_apply(env: &Env, file: &Path, wal_bytes: u64) -> bool {
    let mut child = Command::new(bin())
        .arg("--config")
        .arg(&env.config_path)
        .args(["import", "--tenant", TENANT])
        .arg(file)
        .env("RUST_LOG", "userdrop=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start userdrop import");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("applying") => break,
            Some(_) => continue,
            None => panic!("the import ended before its apply pass started"),
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let wal = env.config.db_path().with_extension("db-wal");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) >= wal_bytes {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "the WAL never reached {wal_bytes} bytes"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().expect("SIGKILL the import");
    let status = child.wait().unwrap();
    assert!(!status.success(), "the import was killed, not finished");
    true
}

#[test]
fn sigkill_mid_import_leaves_nothing_or_everything() {
    let _heavy = crate::util::heavy();
    let env = Env::new("");
    let rows = 400_000;
    let file = env.write("big.csv", users_csv(rows, "a"));
    let db = env.config.db_path();

    for wal_bytes in [0, 1 << 20, 8 << 20] {
        assert!(
            kill_during_apply(&env, &file, wal_bytes),
            "the import finished before the WAL reached {wal_bytes} bytes; raise the row count"
        );
        assert_eq!(
            users_in(&db),
            0,
            "killed at WAL >= {wal_bytes}: the store holds part of the file"
        );
        let store = env.store();
        let all = userdrop::store::jobs::list(&store, None, 1000).unwrap();
        assert!(
            all.iter()
                .filter(|j| j.state == "received")
                .all(|j| j.status.is_none()),
            "a killed job must not look finished"
        );
    }

    let done = env.run(&["import", "--tenant", TENANT, file.to_str().unwrap()]);
    assert!(done.status.success(), "{}", crate::util::stderr(&done));
    assert_eq!(users_in(&db), rows as i64);

    // And a kill during a re-import of a changed file leaves the first import whole.
    let changed = env.write("big2.csv", users_csv(rows, "b"));
    assert!(
        kill_during_apply(&env, &changed, 1 << 20),
        "the re-import finished before the kill"
    );
    let store = env.sql();
    let mut stmt = store
        .prepare("SELECT count(*) FROM users WHERE tenant = ?1 AND last_name LIKE 'Lasta%'")
        .unwrap();
    let untouched: i64 = stmt.query_row([TENANT], |r| r.get(0)).unwrap();
    assert_eq!(
        untouched, rows as i64,
        "a killed update must leave every user as before"
    );
}
