//! The HTTP door's own store connections, apart from the workers' one:
//! reads run beside a long import (WAL), and a write (a new job) waits for
//! the import's transaction rather than for its mutex. Short reads go to a
//! few reader threads that each keep a connection and take one request
//! after another from a queue (a busy reader is not woken per request, as
//! the blocking pool's threads are); writes and streamed exports run on the
//! blocking pool, each kind waiting (asynchronously) for a turn first, so an
//! upload waiting for an import's write lock never holds up a status read.
//! This module must never hand a connection to two requests at once, nor
//! run a store call on the async runtime's own threads.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::store::{Store, StoreError};

use super::ApiError;

/// How long a request waits for the write lock a running import holds
/// (an import of a million rows holds it for some seconds).
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Threads answering short reads.
const READERS: usize = 2;

/// A short read waiting for a reader thread.
type ReadJob = Box<dyn FnOnce(&mut Option<Store>) + Send>;

/// Requests of one kind using the store at once. Two cores gain nothing
/// from more short reads in parallel; writes mostly wait on the lock.
const TURNS: usize = 4;

/// What a request does with its connection, for whose turn it waits.
#[derive(Debug, Clone, Copy)]
pub enum Use {
    /// A short read (a job, a page of errors or users).
    Read,
    /// A write or a dry run: may wait for the write lock.
    Write,
    /// A read held while a response streams out (an export).
    Stream,
}

pub struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Store>>,
    /// The reader threads' queue; they stop when the pool is dropped.
    reads: mpsc::Sender<ReadJob>,
    writes: Arc<Semaphore>,
    streams: Arc<Semaphore>,
}

impl Pool {
    pub fn new(path: PathBuf) -> Pool {
        let (tx, rx) = mpsc::channel::<ReadJob>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..READERS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("userdrop-http-read-{i}"))
                .spawn(move || {
                    // Opened on the first read, kept after; a read that
                    // panicked leaves none (the next opens anew).
                    let mut store: Option<Store> = None;
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(job) = job else { return };
                        job(&mut store);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "HTTP: could not start a store reader thread");
            }
        }
        Pool {
            path,
            idle: Mutex::new(Vec::new()),
            reads: tx,
            writes: Arc::new(Semaphore::new(TURNS)),
            streams: Arc::new(Semaphore::new(TURNS)),
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
        // At most one connection per turn is ever out, so every one opened
        // is kept.
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(store);
    }

    /// Runs `f` with a connection off the async runtime: a read on a
    /// reader thread, anything else on the blocking pool once a turn of its
    /// kind is free.
    pub async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        kind: Use,
        f: impl FnOnce(&mut Store) -> Result<R, ApiError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let turns = match kind {
            Use::Read => return self.read(f).await,
            Use::Write => &self.writes,
            Use::Stream => &self.streams,
        };
        let turn = turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::internal("wait for the store", e))?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let mut store = pool.take()?;
            let r = f(&mut store);
            pool.give_back(store);
            r
        })
        .await
        .map_err(|e| ApiError::internal("finish the request", e))?
    }

    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, ApiError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let path = self.path.clone();
        let job: ReadJob = Box::new(move |store: &mut Option<Store>| {
            let run = || -> Result<R, ApiError> {
                if store.is_none() {
                    let s = Store::open(&path)?;
                    s.set_busy_timeout(BUSY_WAIT)?;
                    *store = Some(s);
                }
                f(store.as_mut().expect("opened above"))
            };
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
                Ok(r) => {
                    let _ = tx.send(r);
                }
                // Dropping `tx` answers the request with an error.
                Err(_) => *store = None,
            }
        });
        if self.reads.send(job).is_err() {
            return Err(ApiError::internal(
                "read the store",
                std::io::Error::other("no store reader is running"),
            ));
        }
        rx.await
            .map_err(|e| ApiError::internal("read the store", e))?
    }
}
