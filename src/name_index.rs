//! Keeps the name index ([`crate::store::names`]) up with the change
//! ledger in `userdrop serve`, so the web page finds users by the start of
//! a name without the import paying for an index on names. Woken after
//! each job, at start-up, and every [`POLL`] for the changes `userdrop
//! import` makes beside the daemon. It follows [`BATCH`] changes per
//! transaction on its own connection, so a job waiting for the write lock
//! waits for one batch at most. This module must never change a user.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::{names, Store, StoreError};

/// The longest the follower sleeps without looking at the ledger: a
/// `userdrop import` run beside the daemon is searchable by name this long
/// after it (a look that finds nothing to follow takes no write lock).
const POLL: Duration = Duration::from_secs(5);
/// Changes followed per transaction.
const BATCH: i64 = 5_000;
/// How long a batch waits for the write lock (a long import holds it).
const BUSY: Duration = Duration::from_secs(60);

/// Runs until `cancel`.
pub async fn run(
    db: PathBuf,
    config: watch::Receiver<Arc<Config>>,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut store: Option<Store> = None;
    loop {
        let tenants: Vec<String> = config.borrow().tenants.keys().cloned().collect();
        let db = db.clone();
        let taken = store.take();
        let pass = tokio::task::spawn_blocking(move || {
            let mut s = match taken {
                Some(s) => s,
                None => {
                    let s = Store::open(&db)?;
                    s.set_busy_timeout(BUSY)?;
                    s
                }
            };
            for tenant in &tenants {
                catch_up(&mut s, tenant)?;
            }
            Ok::<_, StoreError>(s)
        })
        .await;
        match pass {
            Ok(Ok(s)) => store = Some(s),
            Ok(Err(e)) => tracing::warn!("the name index could not follow the ledger: {e}"),
            Err(e) => tracing::error!("name index task: {e}"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Follows the tenant's changes to the end, a batch per transaction.
fn catch_up(s: &mut Store, tenant: &str) -> Result<(), StoreError> {
    if !names::behind(s, tenant)? {
        return Ok(());
    }
    let mut followed = 0;
    loop {
        let tx = s.write()?;
        let caught = names::catch_up(&tx, tenant, BATCH)?;
        tx.commit()?;
        followed += caught.changes;
        if caught.rebuilt {
            tracing::info!(
                tenant,
                users = caught.changes,
                through = caught.through,
                "rebuilt the name index (its cursor was behind the change ledger's retention)"
            );
        }
        if caught.rebuilt || caught.changes < BATCH as usize {
            if followed > 0 && !caught.rebuilt {
                tracing::info!(
                    tenant,
                    changes = followed,
                    through = caught.through,
                    "indexed names"
                );
            }
            return Ok(());
        }
    }
}
