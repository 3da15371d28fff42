//! The HTTP door's own store connections, apart from the workers' one:
//! reads run beside a long import (WAL), and a write (a new job) waits for
//! the import's transaction rather than for its mutex. Every use runs on the
//! blocking pool. This module must never hand a connection to two requests
//! at once.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::store::{Store, StoreError};

use super::ApiError;

/// How long a request waits for the write lock a running import holds
/// (an import of a million rows holds it for some seconds).
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Connections kept open between requests.
const KEEP: usize = 8;

pub struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Store>>,
}

impl Pool {
    pub fn new(path: PathBuf) -> Pool {
        Pool {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn take(&self) -> Result<Store, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match idle {
            Some(s) => Ok(s),
            None => {
                let s = Store::open(&self.path)?;
                s.set_busy_timeout(BUSY_WAIT)?;
                Ok(s)
            }
        }
    }

    fn give_back(&self, store: Store) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < KEEP {
            idle.push(store);
        }
    }

    /// Runs `f` with a connection on the blocking pool.
    pub async fn run<R: Send + 'static>(
        self: &std::sync::Arc<Self>,
        f: impl FnOnce(&mut Store) -> Result<R, ApiError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = pool.take()?;
            let r = f(&mut store);
            pool.give_back(store);
            r
        })
        .await
        .map_err(|e| ApiError::internal("finish the request", e))?
    }
}
