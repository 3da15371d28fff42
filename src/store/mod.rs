//! The store: users, roles, the job ledger and its row errors, the mail
//! outbox, kept in SQLite (WAL).
//!
//! This module is the seam between the application and its database: no
//! other module names SQLite. What the rest of the crate sees is what it
//! needs from a store, whatever engine is behind it:
//! - a [`Store`], opened for writing ([`Store::open`], which also applies
//!   the numbered migrations in `migrations/` once) or for reading while
//!   another process writes ([`Store::open_read_only`]);
//! - a [`Tx`], the one write transaction a job (or a command) runs in,
//!   taken with the write lock at once ([`Store::write`]), with a tentative
//!   part that can be undone on its own ([`Tx::tentative`]);
//! - the functions of [`jobs`], [`users`], [`outbox`] and [`webhooks`], which run on
//!   either ([`Db`]).
//!
//! A PostgreSQL store would implement these and nothing outside would
//! change. This module must never know about files, CSV or SFTP: it stores
//! what it is told, in the transactions the caller chooses.

pub mod browse;
pub mod changes;
mod directory;
pub mod intake;
pub mod jobs;
pub mod names;
pub mod outbox;
pub mod provision;
pub mod users;
pub mod webhooks;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

/// Numbered migrations, applied in order; `PRAGMA user_version` records how
/// many have run.
const MIGRATIONS: &[(&str, &str)] = &[
    ("001_init", include_str!("migrations/001_init.sql")),
    ("002_daemon", include_str!("migrations/002_daemon.sql")),
    ("003_outbox", include_str!("migrations/003_outbox.sql")),
    (
        "004_content_hash",
        include_str!("migrations/004_content_hash.sql"),
    ),
    ("005_dn", include_str!("migrations/005_dn.sql")),
    ("006_intake", include_str!("migrations/006_intake.sql")),
    ("007_changes", include_str!("migrations/007_changes.sql")),
    ("008_webhooks", include_str!("migrations/008_webhooks.sql")),
    (
        "009_provision",
        include_str!("migrations/009_provision.sql"),
    ),
    (
        "010_ledger_by_writer",
        include_str!("migrations/010_ledger_by_writer.sql"),
    ),
    (
        "011_created_runs",
        include_str!("migrations/011_created_runs.sql"),
    ),
    (
        "012_user_id_index",
        include_str!("migrations/012_user_id_index.sql"),
    ),
    (
        "013_user_names",
        include_str!("migrations/013_user_names.sql"),
    ),
    (
        "014_changes_by_tenant",
        include_str!("migrations/014_changes_by_tenant.sql"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the store {path} is at schema version {found}, newer than this userdrop knows ({known}); run a newer userdrop")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("store: {0}")]
    Value(#[from] rusqlite::types::FromSqlError),
    #[error("store: corrupt JSON in column {column}: {source}")]
    Json {
        column: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

/// An open store.
pub struct Store {
    conn: Connection,
}

/// A write transaction: what one job (or one command) changes, committed
/// together or not at all. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx<'s> {
    tx: rusqlite::Transaction<'s>,
}

/// What the functions of this module run on: the store between
/// transactions, or a transaction open on it. Sealed: only this module's
/// types are one, so the SQL stays here.
pub trait Db: sealed::Sql {}

impl Db for Store {}
impl Db for Tx<'_> {}
impl<T: Db + ?Sized> Db for &T {}

mod sealed {
    /// The connection under a [`super::Db`]; unnameable outside the store.
    pub trait Sql {
        fn sql(&self) -> &rusqlite::Connection;
    }

    impl Sql for super::Store {
        fn sql(&self) -> &rusqlite::Connection {
            &self.conn
        }
    }

    impl Sql for super::Tx<'_> {
        fn sql(&self) -> &rusqlite::Connection {
            &self.tx
        }
    }

    impl<T: Sql + ?Sized> Sql for &T {
        fn sql(&self) -> &rusqlite::Connection {
            (**self).sql()
        }
    }
}

/// The name of the tentative part of a transaction (one at a time).
const TENTATIVE: &str = "tentative";

impl Tx<'_> {
    /// Makes everything the transaction did durable.
    pub fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit()?)
    }

    /// Forgets everything the transaction did.
    pub fn rollback(self) -> Result<(), StoreError> {
        Ok(self.tx.rollback()?)
    }

    /// Starts the tentative part: what follows, until [`Tx::keep`] or
    /// [`Tx::undo`], can be dropped without dropping what came before (a
    /// job undoes its users' changes but keeps its ledger row).
    pub fn tentative(&self) -> Result<(), StoreError> {
        Ok(self.tx.execute_batch(&format!("SAVEPOINT {TENTATIVE}"))?)
    }

    /// Drops the changes of the tentative part and ends it.
    pub fn undo(&self) -> Result<(), StoreError> {
        Ok(self
            .tx
            .execute_batch(&format!("ROLLBACK TO {TENTATIVE}; RELEASE {TENTATIVE}"))?)
    }

    /// Ends the tentative part, keeping its changes in the transaction.
    pub fn keep(&self) -> Result<(), StoreError> {
        Ok(self.tx.execute_batch(&format!("RELEASE {TENTATIVE}"))?)
    }
}

/// The pragmas of every connection. `synchronous = FULL` because a job's
/// commit is the moment a file counts as processed: it must survive power
/// loss, not just a crash. The benchmark baseline uses the same.
pub const PRAGMAS: &str = "PRAGMA journal_mode = WAL;
PRAGMA synchronous = FULL;
PRAGMA cache_size = -32768;
PRAGMA temp_store = MEMORY;
PRAGMA foreign_keys = ON;
PRAGMA busy_timeout = 5000;";

impl Store {
    /// Opens (creating when needed) the store and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.execute_batch(PRAGMAS).map_err(open_err)?;
        migrate(&mut conn, path)?;
        Ok(Store { conn })
    }

    /// Starts a write transaction holding the store's write lock from the
    /// start, so what it reads cannot go stale under another writer before
    /// it writes.
    pub fn write(&mut self) -> Result<Tx<'_>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Ok(Tx { tx })
    }

    /// How long a statement waits for another connection's write lock
    /// before failing (5 s unless set): a door that commits beside a long
    /// import waits for it.
    pub fn set_busy_timeout(&self, wait: std::time::Duration) -> Result<(), StoreError> {
        Ok(self.conn.busy_timeout(wait)?)
    }

    /// A store for reading while another process writes.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA query_only = ON;")
            .map_err(open_err)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > MIGRATIONS.len() as i64 {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
                known: MIGRATIONS.len() as i64,
            });
        }
        Ok(Store { conn })
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    // Up to date already (every open but the first): no write lock, so a
    // connection opens beside a running import.
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current == MIGRATIONS.len() as i64 {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known,
        });
    }
    for (_, sql) in &MIGRATIONS[version as usize..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", known)?;
    tx.commit()?;
    Ok(())
}

/// The current UTC time as stored: RFC 3339 with seconds.
pub fn now_text() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_twice_and_migrates_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/userdrop.db");
        drop(Store::open(&p).unwrap());
        let s = Store::open(&p).unwrap();
        let v: i64 = s
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
        let mode: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(Store::open_read_only(&p).unwrap());
    }
}
