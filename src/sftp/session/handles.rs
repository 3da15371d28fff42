//! Open-handle accounting of the SFTP server: the table a session keeps its
//! handles in, and the counts that bound them per SSH connection and per
//! account (across all the account's connections and channels).
//!
//! Its role: refuse an OPEN or OPENDIR beyond a limit with a message naming
//! it, in O(1) (one short lock per open and per close). What it must never
//! do: let a count outlive its handle or a handle live without its count
//! (each table entry owns a [`Ticket`] whose `Drop` is the only place counts
//! go down), or do any I/O.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::SftpConfig;

/// Handles one SSH connection may hold, all its SFTP channels together.
pub const MAX_HANDLES_PER_SESSION: usize = 32;
/// Defaults of `[sftp]`'s `max_handles_per_account` and `max_inbox_entries`.
pub const DEFAULT_MAX_HANDLES_PER_ACCOUNT: usize = 64;
pub const DEFAULT_MAX_INBOX_ENTRIES: usize = 10_000;

/// The limits a session works under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleLimits {
    pub per_session: usize,
    pub per_account: usize,
    /// Entries a directory may hold before uploads of new names into it
    /// are refused.
    pub inbox_entries: usize,
}

impl Default for HandleLimits {
    fn default() -> Self {
        HandleLimits {
            per_session: MAX_HANDLES_PER_SESSION,
            per_account: DEFAULT_MAX_HANDLES_PER_ACCOUNT,
            inbox_entries: DEFAULT_MAX_INBOX_ENTRIES,
        }
    }
}

impl HandleLimits {
    pub fn from_config(sftp: &SftpConfig) -> HandleLimits {
        HandleLimits {
            per_session: MAX_HANDLES_PER_SESSION.min(sftp.max_handles_per_account),
            per_account: sftp.max_handles_per_account,
            inbox_entries: sftp.max_inbox_entries,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("too many open handles: one session may hold {0} files and directories at once; close some first")]
    Session(usize),
    #[error("too many open handles: account {account} may hold {limit} files and directories at once across its sessions (max_handles_per_account); close some first")]
    Account { account: String, limit: usize },
}

#[derive(Debug, Default)]
struct Counts {
    per_account: HashMap<Arc<str>, usize>,
    per_session: HashMap<u64, usize>,
}

/// The open-handle counts of one server, shared by all its sessions.
#[derive(Debug, Default)]
pub struct HandleCounts {
    counts: Mutex<Counts>,
}

impl HandleCounts {
    /// Handles `account` holds now, all its sessions together.
    pub fn of_account(&self, account: &str) -> usize {
        let c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.per_account.get(account).copied().unwrap_or(0)
    }
}

/// Where one SFTP channel counts its handles: its connection (`session`,
/// unique per server) and its account, under `limits`. Every channel of a
/// connection gets the same `session`.
#[derive(Debug, Clone)]
pub struct HandleScope {
    counts: Arc<HandleCounts>,
    session: u64,
    account: Arc<str>,
    limits: HandleLimits,
}

impl HandleScope {
    pub fn new(
        counts: Arc<HandleCounts>,
        session: u64,
        account: &str,
        limits: HandleLimits,
    ) -> HandleScope {
        HandleScope {
            counts,
            session,
            account: Arc::from(account),
            limits,
        }
    }

    /// A scope of its own, with the default limits (a session built
    /// without a server: tests, examples).
    pub fn standalone(account: &str) -> HandleScope {
        HandleScope::new(Arc::default(), 0, account, HandleLimits::default())
    }

    pub fn limits(&self) -> HandleLimits {
        self.limits
    }

    /// Counts one more handle, or says which limit it would cross.
    pub fn acquire(&self) -> Result<Ticket, LimitError> {
        let mut c = self.counts.counts.lock().unwrap_or_else(|p| p.into_inner());
        let session = c.per_session.get(&self.session).copied().unwrap_or(0);
        if session >= self.limits.per_session {
            return Err(LimitError::Session(self.limits.per_session));
        }
        let account = c.per_account.get(&*self.account).copied().unwrap_or(0);
        if account >= self.limits.per_account {
            return Err(LimitError::Account {
                account: self.account.to_string(),
                limit: self.limits.per_account,
            });
        }
        *c.per_session.entry(self.session).or_insert(0) += 1;
        *c.per_account.entry(self.account.clone()).or_insert(0) += 1;
        Ok(Ticket {
            scope: self.clone(),
        })
    }
}

/// One counted handle; dropping it gives the count back.
#[derive(Debug)]
pub struct Ticket {
    scope: HandleScope,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let s = &self.scope;
        let mut c = s.counts.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = c.per_session.get_mut(&s.session) {
            *n -= 1;
            if *n == 0 {
                c.per_session.remove(&s.session);
            }
        }
        if let Some(n) = c.per_account.get_mut(&*s.account) {
            *n -= 1;
            if *n == 0 {
                c.per_account.remove(&*s.account);
            }
        }
    }
}

/// A session's open handles by name. Each entry holds its [`Ticket`]:
/// removing the entry (or dropping the table) releases the count.
#[derive(Debug)]
pub struct HandleTable<T> {
    scope: HandleScope,
    map: HashMap<String, (T, Ticket)>,
    next: u64,
}

impl<T> HandleTable<T> {
    pub fn new(scope: HandleScope) -> HandleTable<T> {
        HandleTable {
            scope,
            map: HashMap::new(),
            next: 0,
        }
    }

    pub fn scope(&self) -> &HandleScope {
        &self.scope
    }

    /// Counts and stores `h` under a new name, or refuses it.
    pub fn insert(&mut self, h: T) -> Result<String, LimitError> {
        let ticket = self.scope.acquire()?;
        self.next += 1;
        let name = self.next.to_string();
        self.map.insert(name.clone(), (h, ticket));
        Ok(name)
    }

    pub fn get(&self, name: &str) -> Option<&T> {
        self.map.get(name).map(|(h, _)| h)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut T> {
        self.map.get_mut(name).map(|(h, _)| h)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Takes a handle out of the table; its count is released.
    pub fn remove(&mut self, name: &str) -> Option<T> {
        self.map.remove(name).map(|(h, _ticket)| h)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.map.values().map(|(h, _)| h)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.map.values_mut().map(|(h, _)| h)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Takes every handle out of the table (the session ends); their counts
    /// are released.
    pub fn take_all(&mut self) -> Vec<(String, T)> {
        self.map
            .drain()
            .map(|(name, (h, _ticket))| (name, h))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_session: usize, per_account: usize) -> HandleLimits {
        HandleLimits {
            per_session,
            per_account,
            inbox_entries: 10,
        }
    }

    #[test]
    fn sessions_and_accounts_are_bounded_and_released() {
        let counts = Arc::new(HandleCounts::default());
        let l = limits(2, 3);
        let mut a1 = HandleTable::new(HandleScope::new(counts.clone(), 1, "hr", l));
        // A second channel of the same connection shares its count.
        let mut a1b = HandleTable::new(HandleScope::new(counts.clone(), 1, "hr", l));
        let mut a2 = HandleTable::new(HandleScope::new(counts.clone(), 2, "hr", l));
        let mut other = HandleTable::new(HandleScope::new(counts.clone(), 3, "ops", l));
        let h1 = a1.insert("x").unwrap();
        a1b.insert("y").unwrap();
        assert_eq!(a1.insert("z"), Err(LimitError::Session(2)));
        a2.insert("z").unwrap();
        let e = a2.insert("w").unwrap_err();
        assert!(
            e.to_string().contains("max_handles_per_account") && e.to_string().contains("3"),
            "{e}"
        );
        other.insert("o").unwrap();
        assert_eq!(counts.of_account("hr"), 3);
        assert_eq!(a1.remove(&h1), Some("x"));
        assert_eq!(counts.of_account("hr"), 2);
        a2.insert("w").unwrap();
        drop(a2);
        drop(a1b);
        assert_eq!(counts.of_account("hr"), 0);
        assert_eq!(counts.of_account("ops"), 1);
        assert!(counts.counts.lock().unwrap().per_session.len() == 1);
    }
}
