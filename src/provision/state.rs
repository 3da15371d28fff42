//! The provisioner's side of the store, for async code: each call runs on
//! the blocking pool over the provisioner's own connection
//! (`crate::store::provision` holds the SQL). Settling a change or a resync
//! push is one transaction. This module must never call the application.

use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::store::changes::{self, Change};
use crate::store::provision::{self, Outcome};
use crate::store::users::{self, Select, User};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the store task failed: {0}")]
    Task(String),
}

/// The provisioner's store connection.
#[derive(Clone)]
pub struct State {
    store: Arc<Mutex<Store>>,
}

impl State {
    pub async fn open(db: &Path) -> Result<State, StateError> {
        let db = db.to_path_buf();
        let store = tokio::task::spawn_blocking(move || Store::open(&db))
            .await
            .map_err(|e| StateError::Task(e.to_string()))??;
        Ok(State {
            store: Arc::new(Mutex::new(store)),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StateError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = store.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StateError::Task(e.to_string()))?
        .map_err(StateError::from)
    }

    /// The user as stored now (None: deleted).
    pub async fn user(&self, tenant: &str, key: &str) -> Result<Option<User>, StateError> {
        let (tenant, key) = (tenant.to_string(), key.to_string());
        self.run(move |s| {
            let mut found = None;
            users::users_matching(&*s, &tenant, &Select::Key(&key), 1, |u| {
                found = Some(u);
                Ok(())
            })?;
            Ok(found)
        })
        .await
    }

    pub async fn scim_id(&self, tenant: &str, key: &str) -> Result<Option<String>, StateError> {
        let (tenant, key) = (tenant.to_string(), key.to_string());
        self.run(move |s| provision::scim_id(&*s, &tenant, &key))
            .await
    }

    /// The key of the manager named `user_id`.
    pub async fn key_of(&self, tenant: &str, user_id: &str) -> Result<Option<String>, StateError> {
        let (tenant, user_id) = (tenant.to_string(), user_id.to_string());
        self.run(move |s| provision::key_of_user_id(&*s, &tenant, &user_id))
            .await
    }

    /// Whether a resync still has `key` to push.
    pub async fn marked(&self, tenant: &str, key: &str) -> Result<bool, StateError> {
        let (tenant, key) = (tenant.to_string(), key.to_string());
        self.run(move |s| provision::is_marked(&*s, &tenant, &key))
            .await
    }

    /// The next changes to bring the application up to, and the cursor
    /// they follow. A cursor behind the ledger's retention marks every user
    /// for a resync and starts from what retention kept.
    pub async fn next_changes(&self, tenant: &str, limit: i64) -> Result<Vec<Change>, StateError> {
        let tenant = tenant.to_string();
        self.run(move |s| {
            let cursor = provision::cursor(&*s, &tenant)?;
            let through = changes::pruned_through(&*s, &tenant)?;
            if cursor < through {
                let tx = s.write()?;
                let n = provision::mark_resync(&tx, &tenant)?;
                provision::advance(&tx, &tenant, through)?;
                tx.commit()?;
                tracing::warn!(tenant, cursor, through, users = n,
                    "the change ledger's retention removed changes the application never got: every user is pushed again");
            }
            changes::after(&*s, &tenant, cursor.max(through), limit)
        })
        .await
    }

    pub async fn resync_batch(&self, tenant: &str, limit: i64) -> Result<Vec<String>, StateError> {
        let tenant = tenant.to_string();
        self.run(move |s| provision::resync_batch(&*s, &tenant, limit))
            .await
    }

    /// Records an outcome without moving the cursor (a manager pushed
    /// ahead of their own change, or of their resync turn).
    pub async fn record(
        &self,
        tenant: &str,
        key: &str,
        outcome: Outcome,
        resync: bool,
    ) -> Result<(), StateError> {
        let (tenant, key) = (tenant.to_string(), key.to_string());
        self.run(move |s| {
            let tx = s.write()?;
            if resync {
                provision::settle_resync(&tx, &tenant, &key, &outcome)?;
            } else {
                provision::record(&tx, &tenant, &key, &outcome)?;
            }
            tx.commit()
        })
        .await
    }

    /// The application answered a batch of changes: each one's outcome
    /// (None: carried by a later change of the same user) and the cursor,
    /// in one transaction.
    pub async fn settle_all(
        &self,
        settled: Vec<(Change, Option<Outcome>)>,
    ) -> Result<(), StateError> {
        self.run(move |s| {
            let tx = s.write()?;
            for (c, outcome) in &settled {
                match outcome {
                    Some(o) => provision::settle_change(&tx, &c.tenant, c.seq, c.job, &c.key, o)?,
                    None => provision::advance(&tx, &c.tenant, c.seq)?,
                }
            }
            tx.commit()
        })
        .await
    }
}
