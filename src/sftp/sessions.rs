//! The session registry of the SSH server: the accounts and tenants in
//! force, the connection and session counts with their limits, the live
//! authenticated sessions, and the reload that swaps the accounts and
//! revokes the sessions the new ones no longer admit.
//!
//! Its role: the state the accept loop and the authentication share, and
//! the guards that keep its counts honest. What it must never do: keep a
//! session whose account, tenant or credential a reload removed, or leave a
//! count behind when a connection or session ends (the guards' `Drop` is
//! the only place counts go down). Lock order: `state`, then `counts`,
//! then `live`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use russh::keys::ssh_key::authorized_keys::Entry as AuthorizedKey;
use russh::keys::{PrivateKey, PublicKey};
use tokio_util::sync::CancellationToken;

use super::bans::{BanPolicy, Bans};
use super::fs::ensure_tenant_root;
use super::preauth::{PreAuth, PreAuthPolicy};
use super::session::handles::{HandleCounts, HandleLimits, HandleScope};
use super::session::TenantInfo;
use super::ssh_config::ssh_config;
use super::SftpError;
use crate::config::Config;

#[derive(Debug)]
pub(super) struct AccountEntry {
    pub(super) tenant: String,
    pub(super) password_hash: Option<String>,
    pub(super) keys: Vec<PublicKey>,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) accounts: HashMap<String, AccountEntry>,
    pub(super) tenants: HashMap<String, Arc<TenantInfo>>,
    pub(super) max_sessions: usize,
    pub(super) max_sessions_per_account: usize,
    pub(super) handle_limits: HandleLimits,
}

#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) connections: usize,
    pub(super) sessions: usize,
    pub(super) per_account: HashMap<String, usize>,
    /// Open SFTP handles per connection and per account (kept across reloads).
    pub(super) handles: Arc<HandleCounts>,
}

/// What a session logged in with: a reload checks it is still the account's.
#[derive(Debug, Clone)]
pub(super) enum Credential {
    /// The account's password hash at login.
    Password(String),
    Key(PublicKey),
}

/// An authenticated session, as a reload sees it.
pub(super) struct LiveSession {
    pub(super) account: String,
    pub(super) tenant: String,
    pub(super) credential: Credential,
    pub(super) ip: IpAddr,
    /// Cancelled to disconnect the session.
    pub(super) revoke: CancellationToken,
}

/// Why `state` no longer admits a session logged in as `account` of
/// `tenant` with `credential`, or `None` when it still does.
pub(super) fn revoked_because(
    state: &State,
    account: &str,
    tenant: &str,
    credential: &Credential,
) -> Option<&'static str> {
    let Some(a) = state.accounts.get(account) else {
        return Some("the account was removed");
    };
    if a.tenant != tenant || !state.tenants.contains_key(tenant) {
        return Some("the account's tenant was removed or changed");
    }
    match credential {
        Credential::Password(hash) if a.password_hash.as_deref() != Some(hash.as_str()) => {
            Some("the account's password was changed or removed")
        }
        Credential::Key(key) if !a.keys.iter().any(|k| k.key_data() == key.key_data()) => {
            Some("the key the session logged in with was removed from the account")
        }
        _ => None,
    }
}

pub(super) struct Shared {
    pub(super) state: RwLock<State>,
    /// Shared with the HTTP door: a failure at either counts for both.
    pub(super) bans: Arc<Mutex<Bans>>,
    /// Unauthenticated connections (a lock of its own: taken alone).
    pub(super) preauth: Arc<Mutex<PreAuth>>,
    pub(super) counts: Mutex<Counts>,
    /// Authenticated sessions by connection id. Lock order: `state`, then
    /// `counts`, then `live`.
    pub(super) live: Mutex<HashMap<u64, LiveSession>>,
    pub(super) next_connection: AtomicU64,
    /// argon2 verifications run (real or dummy hash), for [`ServerStats`].
    pub(super) password_verifications: AtomicU64,
    pub(super) ssh_config: RwLock<Arc<russh::server::Config>>,
    pub(super) host_key: PrivateKey,
    /// Verified against when the account is unknown: the same work either way.
    pub(super) dummy_hash: String,
}

/// Read-only counters of a running server (tests and diagnostics).
#[derive(Clone)]
pub struct ServerStats {
    pub(super) shared: Arc<Shared>,
}

impl ServerStats {
    /// argon2 password verifications run so far (one per password attempt,
    /// against the account's hash or, for an unknown user, a dummy hash).
    pub fn password_verifications(&self) -> u64 {
        self.shared.password_verifications.load(Ordering::Relaxed)
    }

    /// Authenticated sessions open now.
    pub fn sessions(&self) -> usize {
        self.shared.counts.lock().unwrap().sessions
    }
}

/// Replaces tenants, accounts and limits of a running server (SIGHUP).
/// Open sessions keep going, except those the new accounts no longer admit
/// (account or tenant removed, password changed, key removed): those are
/// disconnected.
#[derive(Clone)]
pub struct Reloader {
    pub(super) shared: Arc<Shared>,
}

pub(super) fn build_state(config: &Config) -> (State, Vec<SftpError>) {
    let mut problems = Vec::new();
    let mut state = State {
        max_sessions: config.sftp.max_sessions,
        max_sessions_per_account: config.sftp.max_sessions_per_account,
        handle_limits: HandleLimits::from_config(&config.sftp),
        ..State::default()
    };
    for (name, tenant) in &config.tenants {
        let root = config.tenant_root(name);
        if let Err(source) = ensure_tenant_root(&root) {
            problems.push(SftpError::TenantRoot {
                tenant: name.clone(),
                path: root.clone(),
                source,
            });
            continue;
        }
        state.tenants.insert(
            name.clone(),
            Arc::new(TenantInfo {
                name: name.clone(),
                root,
                max_file_size: tenant.max_file_size,
            }),
        );
        for account in &tenant.accounts {
            let mut keys = Vec::new();
            for line in &account.authorized_keys {
                match AuthorizedKey::from_str(line.trim()) {
                    Ok(entry) => keys.push(entry.public_key().clone()),
                    Err(e) => tracing::warn!(account = %account.name, tenant = %name,
                        "ignoring an authorized_keys line that does not parse: {e}"),
                }
            }
            state.accounts.insert(
                account.name.clone(),
                AccountEntry {
                    tenant: name.clone(),
                    password_hash: account.password_hash.clone(),
                    keys,
                },
            );
        }
    }
    (state, problems)
}

impl Reloader {
    pub fn reload(&self, config: &Config) {
        let (state, problems) = build_state(config);
        for p in problems {
            tracing::error!("SFTP reload: {p}");
        }
        let (accounts, tenants) = (state.accounts.len(), state.tenants.len());
        {
            // Swap and re-check under the write lock: a login admitted
            // concurrently either registered before (and is checked here) or
            // checks itself against the new state.
            let mut s = self.shared.state.write().unwrap();
            *s = state;
            let live = self.shared.live.lock().unwrap();
            for l in live.values() {
                if let Some(why) = revoked_because(&s, &l.account, &l.tenant, &l.credential) {
                    tracing::warn!(ip = %l.ip, account = %l.account, tenant = %l.tenant,
                        "SFTP reload: disconnecting a session: {why}");
                    l.revoke.cancel();
                }
            }
        }
        self.shared
            .bans
            .lock()
            .unwrap()
            .set_policy(BanPolicy::from_config(&config.sftp));
        self.shared
            .preauth
            .lock()
            .unwrap()
            .set_policy(PreAuthPolicy::from_config(&config.sftp));
        *self.shared.ssh_config.write().unwrap() =
            Arc::new(ssh_config(config, &self.shared.host_key));
        tracing::info!(tenants, accounts, "SFTP configuration reloaded");
    }
}

/// Counts a TCP connection while it lives.
pub(super) struct ConnectionGuard {
    pub(super) shared: Arc<Shared>,
}

impl ConnectionGuard {
    pub(super) fn new(shared: &Arc<Shared>) -> Option<ConnectionGuard> {
        let max = shared.state.read().unwrap().max_sessions;
        // A backstop: sessions, plus the unauthenticated connections the
        // pre-login limits let wait (`max_startups` full).
        let cap = max + shared.preauth.lock().unwrap().policy().startups.full;
        let mut c = shared.counts.lock().unwrap();
        if c.connections >= cap {
            return None;
        }
        c.connections += 1;
        Some(ConnectionGuard {
            shared: shared.clone(),
        })
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.shared.counts.lock().unwrap().connections -= 1;
    }
}

/// Counts an authenticated session (total and per account) and keeps it
/// in the live sessions while it lives.
pub(super) struct SessionGuard {
    pub(super) shared: Arc<Shared>,
    pub(super) account: String,
    pub(super) id: u64,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        {
            let mut c = self.shared.counts.lock().unwrap();
            c.sessions -= 1;
            if let Some(n) = c.per_account.get_mut(&self.account) {
                *n -= 1;
                if *n == 0 {
                    c.per_account.remove(&self.account);
                }
            }
        }
        self.shared.live.lock().unwrap().remove(&self.id);
    }
}

impl Shared {
    /// Where an SFTP channel of connection `connection`, logged in as
    /// `account`, counts its open handles, under the limits in force.
    pub(super) fn handle_scope(&self, connection: u64, account: &str) -> HandleScope {
        let limits = self.state.read().unwrap().handle_limits;
        let counts = self.counts.lock().unwrap().handles.clone();
        HandleScope::new(counts, connection, account, limits)
    }
}
