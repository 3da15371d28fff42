//! The name index (`user_names`): each user's first and last name,
//! lowercased, so the web page finds a tenant's users by the start of a
//! name in one range read, at a million users as at ten. The import does
//! not write it (an index on the users table by name made a fresh import of
//! a million users 1.85 times slower): it follows the change ledger a batch
//! at a time ([`catch_up`], run by `userdrop serve` after each job). For
//! each change that touched a name it removes the names the user had
//! before and adds the names the user has now; a reader checks every entry
//! against the user as stored ([`super::browse`]), so an entry a later
//! change has not yet removed is never shown, and a user changed after the
//! cursor is found once the index caught up (seconds after the job). A
//! cursor behind the ledger's retention builds the tenant's index again
//! from the users. This module must never change a user.

use rusqlite::{params, OptionalExtension};

use super::changes::{self, Change};
use super::{Db, StoreError};

/// What one [`catch_up`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caught {
    /// Changes followed (all of the tenant's, when the index was rebuilt).
    pub changes: usize,
    /// The seq the index is now at.
    pub through: i64,
    /// Whether the index was rebuilt from the users.
    pub rebuilt: bool,
}

/// The last change the tenant's name index has followed.
pub fn cursor(db: &impl Db, tenant: &str) -> Result<i64, StoreError> {
    Ok(db
        .sql()
        .prepare_cached("SELECT seq FROM user_names_cursor WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Whether the tenant has changes the index has not followed yet (a read:
/// the follower takes the write lock only when there are).
pub fn behind(db: &impl Db, tenant: &str) -> Result<bool, StoreError> {
    let at = cursor(db, tenant)?;
    Ok(at < changes::pruned_through(db, tenant)? || !changes::after(db, tenant, at, 1)?.is_empty())
}

/// Follows up to `limit` of the tenant's changes after the cursor, and
/// moves it. Run it in one transaction: the entries and the cursor move
/// together.
pub fn catch_up(db: &impl Db, tenant: &str, limit: i64) -> Result<Caught, StoreError> {
    let at = cursor(db, tenant)?;
    if at < changes::pruned_through(db, tenant)? {
        return rebuild(db, tenant);
    }
    let list = changes::after(db, tenant, at, limit)?;
    // Creations one after another (a fresh import's) are entered with one
    // statement each batch; any other change goes after them, in order.
    let mut created: Vec<&str> = Vec::new();
    for c in &list {
        if c.op == "created" {
            created.push(&c.key);
            continue;
        }
        index_created(db, tenant, &mut created)?;
        follow(db, c)?;
    }
    index_created(db, tenant, &mut created)?;
    let through = list.last().map_or(at, |c| c.seq);
    set_cursor(db, tenant, through)?;
    Ok(Caught {
        changes: list.len(),
        through,
        rebuilt: false,
    })
}

/// Builds the tenant's index again from its users, as of its newest change.
pub fn rebuild(db: &impl Db, tenant: &str) -> Result<Caught, StoreError> {
    let conn = db.sql();
    conn.prepare_cached("DELETE FROM user_names WHERE tenant = ?1")?
        .execute([tenant])?;
    let users = conn
        .prepare_cached(&index_names_of("tenant = ?1"))?
        .execute([tenant])?;
    let through = changes::last_seq(db, tenant)?;
    set_cursor(db, tenant, through)?;
    Ok(Caught {
        changes: users,
        through,
        rebuilt: true,
    })
}

fn set_cursor(db: &impl Db, tenant: &str, seq: i64) -> Result<(), StoreError> {
    db.sql()
        .prepare_cached(
            "INSERT INTO user_names_cursor (tenant, seq) VALUES (?1, ?2)
             ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq",
        )?
        .execute(params![tenant, seq])?;
    Ok(())
}

/// One change: the names it says the user had before go, the user's names
/// as stored now come (none for a user since deleted).
fn follow(db: &impl Db, c: &Change) -> Result<(), StoreError> {
    const NAMES: [&str; 2] = ["first_name", "last_name"];
    let touched = match c.op.as_str() {
        "created" | "deleted" => true,
        _ => c.fields.iter().any(|f| NAMES.contains(&f.as_str())),
    };
    if !touched {
        return Ok(());
    }
    let conn = db.sql();
    if let Some(before) = &c.before {
        let before: serde_json::Value =
            serde_json::from_str(before).map_err(|source| StoreError::Json {
                column: "changes.before",
                source,
            })?;
        let mut remove = conn.prepare_cached(
            "DELETE FROM user_names WHERE tenant = ?1 AND name = lower(?2) AND key = ?3",
        )?;
        for name in NAMES.iter().filter_map(|f| before[f].as_str()) {
            remove.execute(params![c.tenant, name, c.key])?;
        }
    }
    conn.prepare_cached(&index_names_of("tenant = ?1 AND key = ?2"))?
        .execute(params![c.tenant, c.key])?;
    Ok(())
}

/// Enters the names of the users just created with these keys (a
/// creation had no names before), and empties the list.
fn index_created(db: &impl Db, tenant: &str, keys: &mut Vec<&str>) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let list = serde_json::Value::from(std::mem::take(keys)).to_string();
    db.sql()
        .prepare_cached(&index_names_of(
            "tenant = ?1 AND key IN (SELECT value FROM json_each(?2))",
        ))?
        .execute(params![tenant, list])?;
    Ok(())
}

/// The statement that enters the names of the users `filter` picks (an
/// SQL condition on `users`) into the index: each non-empty first and last
/// name, lowercased as a search lowercases its prefix (SQLite's `lower`).
fn index_names_of(filter: &str) -> String {
    format!(
        "INSERT OR IGNORE INTO user_names (tenant, name, key)
         SELECT tenant, lower(first_name), key FROM users
           WHERE {filter} AND coalesce(first_name, '') <> ''
         UNION ALL
         SELECT tenant, lower(last_name), key FROM users
           WHERE {filter} AND coalesce(last_name, '') <> ''"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sealed::Sql as _;
    use crate::store::Store;

    fn entries(s: &Store, tenant: &str) -> Vec<(String, String)> {
        let conn = s.sql();
        let mut stmt = conn
            .prepare("SELECT name, key FROM user_names WHERE tenant = ?1 ORDER BY name, key")
            .unwrap();
        stmt.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, k)| (n.to_string(), k.to_string()))
            .collect()
    }

    /// Imports `csv` into the store at `db` as a job of tenant `t` (a
    /// sync that may delete), the way every door does.
    fn import(db: &std::path::Path, name: &str, csv: &str) {
        let c = crate::config::Config::parse(
            "data_dir = \"unused\"\n[tenants.t]\nfailed_import_email = \"it@t.example\"\n\
             mode = \"sync\"\nmissing = \"delete\"\nmax_missing_percent = 100\n",
            "test",
        )
        .unwrap();
        let file = db.with_file_name(name);
        std::fs::write(&file, csv).unwrap();
        let mut s = Store::open(db).unwrap();
        let opts = crate::import::ImportOptions {
            file_name: name,
            source: "cli",
            dry_run: false,
            job: None,
            approved: false,
            rows: crate::import::RowNumbers::Lines,
        };
        crate::import::run(&mut s, &c.tenants["t"], &file, &opts).unwrap();
    }

    #[test]
    fn follows_creations_renames_and_deletions_and_rebuilds_when_behind() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        import(
            &db,
            "1.csv",
            "user_id,email,first_name,last_name\n\
             u1,u1@x.example,Ada,Lovelace\nu2,u2@x.example,Al,Al\nu3,u3@x.example,Grace,Hopper\n",
        );
        let mut s = Store::open(&db).unwrap();
        let tx = s.write().unwrap();
        let c = catch_up(&tx, "t", 2).unwrap();
        assert_eq!((c.changes, c.rebuilt), (2, false));
        assert_eq!(catch_up(&tx, "t", 100).unwrap().changes, 1);
        tx.commit().unwrap();
        assert_eq!(
            entries(&s, "t"),
            pairs(&[
                ("ada", "u1"),
                ("al", "u2"),
                ("grace", "u3"),
                ("hopper", "u3"),
                ("lovelace", "u1")
            ])
        );
        // u1 renamed twice before the index follows; u2's first name
        // changes while the last name keeps "al"; u3 left out (deleted).
        drop(s);
        import(
            &db,
            "2.csv",
            "user_id,email,first_name,last_name\n\
             u1,u1@x.example,Ada,King\nu2,u2@x.example,Bo,Al\n",
        );
        import(
            &db,
            "3.csv",
            "user_id,email,first_name,last_name\n\
             u1,u1@x.example,Augusta,King\nu2,u2@x.example,Bo,Al\n",
        );
        let mut s = Store::open(&db).unwrap();
        let tx = s.write().unwrap();
        let c = catch_up(&tx, "t", 100).unwrap();
        assert_eq!(c.through, changes::last_seq(&tx, "t").unwrap());
        tx.commit().unwrap();
        let now = pairs(&[
            ("al", "u2"),
            ("augusta", "u1"),
            ("bo", "u2"),
            ("king", "u1"),
        ]);
        assert_eq!(entries(&s, "t"), now);
        // Nothing more to follow.
        let tx = s.write().unwrap();
        assert_eq!(catch_up(&tx, "t", 100).unwrap().changes, 0);
        // Retention went past the cursor: the index is built again.
        tx.sql()
            .execute_batch(
                "DELETE FROM user_names; UPDATE user_names_cursor SET seq = 1;
                 INSERT INTO changes_pruned (tenant, through) VALUES ('t', 2);",
            )
            .unwrap();
        let c = catch_up(&tx, "t", 100).unwrap();
        assert!(c.rebuilt);
        tx.commit().unwrap();
        assert_eq!(entries(&s, "t"), now);
    }

    #[test]
    fn the_migration_indexes_the_users_already_stored() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        import(
            &db,
            "1.csv",
            "user_id,email,first_name,last_name\nu1,u1@x.example,Ada,Lovelace\nu2,u2@x.example,,Hopper\n",
        );
        // The store as it was before migration 013.
        Store::open(&db)
            .unwrap()
            .sql()
            .execute_batch(
                "DROP TABLE user_names; DROP TABLE user_names_cursor; DROP INDEX changes_tenant;
                 PRAGMA user_version = 12;",
            )
            .unwrap();
        let s = Store::open(&db).unwrap();
        assert_eq!(
            entries(&s, "t"),
            pairs(&[("ada", "u1"), ("hopper", "u2"), ("lovelace", "u1")])
        );
        assert_eq!(
            cursor(&s, "t").unwrap(),
            changes::last_seq(&s, "t").unwrap()
        );
        assert!(!behind(&s, "t").unwrap());
    }
}
