//! The SSH side: accept loop, authentication, bans, session limits, and the
//! channel plumbing that hands an `sftp` subsystem to [`super::session`].
//! Everything but the `sftp` subsystem is refused.
//!
//! A reload ([`Reloader::reload`]) re-checks every open session against the
//! new accounts: a session whose account or tenant is gone, or whose
//! password or key is no longer the account's, is disconnected. Cancelling
//! the shutdown token disconnects every session. What this module must never
//! do: tell a client whether an account exists (a wrong password and an
//! unknown user cost the same argon2 work and the same pause), or count as a
//! failed login anything that is not one (an offered key the account lacks,
//! a refusal over the session limit).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use russh::keys::ssh_key::authorized_keys::Entry as AuthorizedKey;
use russh::keys::{PrivateKey, PublicKey};
use russh::server::{Auth, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, Disconnect, MethodKind, MethodSet, Pty, Sig};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::bans::{BanPolicy, Bans};
use super::fs::{ensure_tenant_root, Root};
use super::session::{SftpSession, TenantInfo, MAX_PACKET_LEN};
use super::{hostkey, SftpError, Sink, UploadSink};
use crate::config::Config;

/// Time every rejected authentication takes (russh pads to it), so that
/// failures all look alike whatever the reason.
const AUTH_REJECTION_TIME: Duration = Duration::from_millis(500);
/// Time a connection gets to finish the SSH version exchange.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Channels (concurrent SFTP sessions) one connection may open.
const MAX_CHANNELS_PER_CONNECTION: usize = 8;
/// How long shutdown waits for sessions to end before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Authentication attempts one connection may make (each failed one pays
/// [`AUTH_REJECTION_TIME`]); the next one is disconnected.
pub const MAX_AUTH_ATTEMPTS: usize = 6;

#[derive(Debug)]
struct AccountEntry {
    tenant: String,
    password_hash: Option<String>,
    keys: Vec<PublicKey>,
}

#[derive(Debug, Default)]
struct State {
    accounts: HashMap<String, AccountEntry>,
    tenants: HashMap<String, Arc<TenantInfo>>,
    max_sessions: usize,
    max_sessions_per_account: usize,
}

#[derive(Debug, Default)]
struct Counts {
    connections: usize,
    sessions: usize,
    per_account: HashMap<String, usize>,
}

/// What a session logged in with: a reload checks it is still the account's.
#[derive(Debug, Clone)]
enum Credential {
    /// The account's password hash at login.
    Password(String),
    Key(PublicKey),
}

/// An authenticated session, as a reload sees it.
struct LiveSession {
    account: String,
    tenant: String,
    credential: Credential,
    ip: IpAddr,
    /// Cancelled to disconnect the session.
    revoke: CancellationToken,
}

/// Why `state` no longer admits a session logged in as `account` of
/// `tenant` with `credential`, or `None` when it still does.
fn revoked_because(
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

struct Shared {
    state: RwLock<State>,
    bans: Mutex<Bans>,
    counts: Mutex<Counts>,
    /// Authenticated sessions by connection id. Lock order: `state`, then
    /// `counts`, then `live`.
    live: Mutex<HashMap<u64, LiveSession>>,
    next_connection: AtomicU64,
    /// argon2 verifications run (real or dummy hash), for [`ServerStats`].
    password_verifications: AtomicU64,
    ssh_config: RwLock<Arc<russh::server::Config>>,
    host_key: PrivateKey,
    /// Verified against when the account is unknown: the same work either way.
    dummy_hash: String,
}

impl Shared {
    /// Verifies `password` against `hash` on the blocking pool, counting
    /// every argon2 run.
    async fn verify_password(self: &Arc<Self>, hash: String, password: &str) -> bool {
        let shared = self.clone();
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            verify_password(&hash, &password, &shared.password_verifications)
        })
        .await
        .unwrap_or(false)
    }
}

/// Whether `password` matches the PHC `hash`; `runs` counts argon2 runs.
fn verify_password(hash: &str, password: &str, runs: &AtomicU64) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    runs.fetch_add(1, Ordering::Relaxed);
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Read-only counters of a running server (tests and diagnostics).
#[derive(Clone)]
pub struct ServerStats {
    shared: Arc<Shared>,
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

/// The embedded SFTP server; see the module docs of [`super`].
pub struct SftpServer {
    shared: Arc<Shared>,
}

/// Replaces tenants, accounts and limits of a running server (SIGHUP).
/// Open sessions keep going, except those the new accounts no longer admit
/// (account or tenant removed, password changed, key removed): those are
/// disconnected.
#[derive(Clone)]
pub struct Reloader {
    shared: Arc<Shared>,
}

fn build_state(config: &Config) -> (State, Vec<SftpError>) {
    let mut problems = Vec::new();
    let mut state = State {
        max_sessions: config.sftp.max_sessions,
        max_sessions_per_account: config.sftp.max_sessions_per_account,
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

/// Ciphers the server offers, preferred first. aes128-ctr is there for
/// curl/libssh2 and older paramiko; a test checks what clients negotiate.
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_GCM,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_192_CTR,
    russh::cipher::AES_128_CTR,
];
/// MACs (for the CTR ciphers), preferred first; no SHA-1.
const MACS: &[russh::mac::Name] = &[
    russh::mac::HMAC_SHA512_ETM,
    russh::mac::HMAC_SHA256_ETM,
    russh::mac::HMAC_SHA512,
    russh::mac::HMAC_SHA256,
];

fn preferred() -> russh::Preferred {
    russh::Preferred {
        cipher: std::borrow::Cow::Borrowed(CIPHERS),
        mac: std::borrow::Cow::Borrowed(MACS),
        ..russh::Preferred::DEFAULT
    }
}

/// The methods a client may go on with after a failure: both, always (russh
/// drops `password` after a rejected password unless told otherwise, which
/// left one password attempt per connection).
fn methods() -> MethodSet {
    MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..])
}

fn rejected() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(methods()),
        partial_success: false,
    }
}

fn ssh_config(config: &Config, key: &PrivateKey) -> russh::server::Config {
    russh::server::Config {
        server_id: russh::SshId::Standard("SSH-2.0-userdrop".into()),
        methods: methods(),
        preferred: preferred(),
        auth_rejection_time: AUTH_REJECTION_TIME,
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![key.clone()],
        inactivity_timeout: Some(config.sftp.idle_timeout),
        nodelay: true,
        // russh counts the "none" probe OpenSSH opens with as an attempt;
        // the handler enforces MAX_AUTH_ATTEMPTS on real ones.
        max_auth_attempts: MAX_AUTH_ATTEMPTS + 1,
        ..Default::default()
    }
}

impl SftpServer {
    /// From the validated config: loads the ed25519 host key from
    /// `<data_dir>/host_keys/ssh_host_ed25519_key` (OpenSSH format, mode
    /// 0600), generating it on first start; accounts and tenant roots
    /// (created if missing, with .bak/ and results/).
    pub fn new(config: &Config) -> Result<SftpServer, SftpError> {
        let host_key = hostkey::load_or_generate(&config.data_dir)?;
        let (state, mut problems) = build_state(config);
        if !problems.is_empty() {
            return Err(problems.remove(0));
        }
        let salt = SaltString::generate(&mut password_hash::rand_core::OsRng);
        let dummy_hash = Argon2::default()
            .hash_password(b"userdrop dummy password", &salt)
            .map_err(|e| SftpError::Ssh(format!("cannot prepare password checks: {e}")))?
            .to_string();
        let shared = Shared {
            state: RwLock::new(state),
            bans: Mutex::new(Bans::new(BanPolicy::from_config(&config.sftp))),
            counts: Mutex::new(Counts::default()),
            live: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
            password_verifications: AtomicU64::new(0),
            ssh_config: RwLock::new(Arc::new(ssh_config(config, &host_key))),
            host_key,
            dummy_hash,
        };
        Ok(SftpServer {
            shared: Arc::new(shared),
        })
    }

    /// A handle to replace tenants/accounts/limits later (SIGHUP) without dropping sessions.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            shared: self.shared.clone(),
        }
    }

    /// Counters of this server, readable while it runs.
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            shared: self.shared.clone(),
        }
    }

    /// Serves until `shutdown` is cancelled (which disconnects every
    /// session). Upload events go to `events`.
    pub async fn run(
        self,
        listener: TcpListener,
        events: impl UploadSink,
        shutdown: CancellationToken,
    ) -> Result<(), SftpError> {
        let events: Sink = Arc::new(events);
        let local = listener.local_addr().ok();
        tracing::info!(listen = ?local, "SFTP server listening");
        let mut tasks = JoinSet::new();
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: wait a little rather than spin.
                        tracing::warn!("SFTP accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            while tasks.try_join_next().is_some() {}
            let ip = peer.ip().to_canonical();
            if let Some(left) = self.shared.bans.lock().unwrap().banned(ip, Instant::now()) {
                tracing::warn!(%ip, remaining = %humantime::format_duration(round_secs(left)),
                    "refused a connection from a banned address");
                continue;
            }
            let Some(conn) = ConnectionGuard::new(&self.shared) else {
                tracing::warn!(%ip, "refused a connection: too many connections");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let config = self.shared.ssh_config.read().unwrap().clone();
            let revoke = CancellationToken::new();
            let handler = SshHandler {
                id: self.shared.next_connection.fetch_add(1, Ordering::Relaxed),
                revoke: revoke.clone(),
                shared: self.shared.clone(),
                events: events.clone(),
                peer,
                ip,
                login: None,
                attempts: 0,
                channels: HashMap::new(),
                sftp_channels: 0,
                _conn: conn,
            };
            let token = shutdown.clone();
            tasks.spawn(async move {
                let session = match tokio::time::timeout(
                    HANDSHAKE_TIMEOUT,
                    russh::server::run_stream(config, super::quickack::QuickAck::new(stream), handler),
                )
                .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "SSH handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "SSH handshake timed out");
                        return;
                    }
                };
                let handle = session.handle();
                tokio::pin!(session);
                tokio::select! {
                    r = &mut session => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, "SSH session ended: {e}");
                        }
                    }
                    _ = token.cancelled() => {
                        let _ = handle
                            .disconnect(Disconnect::ByApplication, "server shutting down".into(), "en".into())
                            .await;
                        let _ = tokio::time::timeout(SHUTDOWN_GRACE, session).await;
                    }
                    _ = revoke.cancelled() => {
                        let _ = handle
                            .disconnect(
                                Disconnect::ByApplication,
                                "access revoked by a configuration reload".into(),
                                "en".into(),
                            )
                            .await;
                        let _ = tokio::time::timeout(SHUTDOWN_GRACE, session).await;
                    }
                }
            });
        }
        drop(listener);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        tracing::info!("SFTP server stopped");
        Ok(())
    }
}

fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(1))
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
        *self.shared.ssh_config.write().unwrap() =
            Arc::new(ssh_config(config, &self.shared.host_key));
        tracing::info!(tenants, accounts, "SFTP configuration reloaded");
    }
}

/// Counts a TCP connection while it lives.
struct ConnectionGuard {
    shared: Arc<Shared>,
}

impl ConnectionGuard {
    fn new(shared: &Arc<Shared>) -> Option<ConnectionGuard> {
        let max = shared.state.read().unwrap().max_sessions;
        // Unauthenticated connections are bounded too, with room for
        // clients still logging in.
        let cap = (max * 2).max(max + 16);
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
struct SessionGuard {
    shared: Arc<Shared>,
    account: String,
    id: u64,
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

struct Login {
    account: String,
    tenant: String,
    _guard: SessionGuard,
}

struct SshHandler {
    /// This connection's id among the live sessions.
    id: u64,
    /// Cancelled by a reload that revokes this session's access.
    revoke: CancellationToken,
    shared: Arc<Shared>,
    events: Sink,
    peer: SocketAddr,
    ip: IpAddr,
    login: Option<Login>,
    /// Password and public key attempts made on this connection (not the
    /// "none" probe, not a key offered without a signature that is accepted).
    attempts: usize,
    channels: HashMap<ChannelId, Channel<Msg>>,
    sftp_channels: usize,
    _conn: ConnectionGuard,
}

impl SshHandler {
    fn banned(&self) -> bool {
        let left = self
            .shared
            .bans
            .lock()
            .unwrap()
            .banned(self.ip, Instant::now());
        if let Some(left) = left {
            tracing::warn!(ip = %self.ip, remaining = %humantime::format_duration(round_secs(left)),
                "refused authentication from a banned address");
            true
        } else {
            false
        }
    }

    /// Counts an attempt; false when the connection has used all of them.
    fn attempt(&mut self, user: &str, method: &str) -> bool {
        if self.attempts >= MAX_AUTH_ATTEMPTS {
            tracing::warn!(ip = %self.ip, user, method,
                "refused authentication: {MAX_AUTH_ATTEMPTS} attempts on this connection");
            return false;
        }
        self.attempts += 1;
        true
    }

    fn failed(&self, user: &str, method: &str) -> Auth {
        let ban = self
            .shared
            .bans
            .lock()
            .unwrap()
            .record_failure(self.ip, Instant::now());
        tracing::warn!(ip = %self.ip, user, method, "authentication failed");
        if let Some(length) = ban {
            tracing::warn!(ip = %self.ip, ban_for = %humantime::format_duration(length),
                "address banned after repeated failed authentications");
        }
        rejected()
    }

    /// Credentials are good: admit the session if the limits allow it. A
    /// refusal here is not a failed login (no strike towards a ban).
    fn admit(&mut self, user: &str, tenant: String, credential: Credential) -> Auth {
        let method = match credential {
            Credential::Password(_) => "password",
            Credential::Key(_) => "publickey",
        };
        // Held until the session is registered: a reload cannot slip
        // between the check and the registration.
        let s = self.shared.state.read().unwrap();
        if let Some(why) = revoked_because(&s, user, &tenant, &credential) {
            tracing::warn!(ip = %self.ip, account = user, "refused login: {why} meanwhile (reload)");
            return rejected();
        }
        let (max, max_per_account) = (s.max_sessions, s.max_sessions_per_account);
        {
            let mut c = self.shared.counts.lock().unwrap();
            if c.sessions >= max {
                tracing::warn!(ip = %self.ip, account = user, max_sessions = max,
                    "refused login: the server's session limit is reached");
                return rejected();
            }
            let mine = c.per_account.get(user).copied().unwrap_or(0);
            if mine >= max_per_account {
                tracing::warn!(ip = %self.ip, account = user, max_sessions_per_account = max_per_account,
                    "refused login: the account's session limit is reached");
                return rejected();
            }
            c.sessions += 1;
            *c.per_account.entry(user.to_string()).or_default() += 1;
        }
        self.shared.live.lock().unwrap().insert(
            self.id,
            LiveSession {
                account: user.to_string(),
                tenant: tenant.clone(),
                credential,
                ip: self.ip,
                revoke: self.revoke.clone(),
            },
        );
        drop(s);
        self.shared.bans.lock().unwrap().record_success(self.ip);
        tracing::info!(ip = %self.ip, account = user, tenant = %tenant, method, "session opened");
        self.login = Some(Login {
            account: user.to_string(),
            tenant,
            _guard: SessionGuard {
                shared: self.shared.clone(),
                account: user.to_string(),
                id: self.id,
            },
        });
        Auth::Accept
    }

    /// The account's tenant, when `key` is one of its authorized keys.
    fn key_owner(&self, user: &str, key: &PublicKey) -> Option<String> {
        let s = self.shared.state.read().unwrap();
        let a = s.accounts.get(user)?;
        a.keys
            .iter()
            .any(|k| k.key_data() == key.key_data())
            .then(|| a.tenant.clone())
    }

    fn refuse(&self, what: &str) {
        tracing::warn!(ip = %self.ip,
            account = self.login.as_ref().map(|l| l.account.as_str()).unwrap_or("-"),
            "refused {what}: only the sftp subsystem is offered");
    }

    /// Logs and refuses a channel the server never offers.
    async fn reject_channel(
        &self,
        what: &str,
        reply: russh::server::ChannelOpenHandle,
    ) -> Result<(), russh::Error> {
        self.refuse(what);
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }
}

impl Drop for SshHandler {
    fn drop(&mut self) {
        if let Some(l) = &self.login {
            tracing::info!(ip = %self.ip, account = %l.account, tenant = %l.tenant, "session closed");
        }
    }
}

impl russh::server::Handler for SshHandler {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if self.banned() || !self.attempt(user, "password") {
            return Ok(rejected());
        }
        let found = {
            let s = self.shared.state.read().unwrap();
            s.accounts
                .get(user)
                .and_then(|a| Some((a.password_hash.clone()?, a.tenant.clone())))
        };
        // An unknown user (or one without a password) costs the same argon2
        // run, against the dummy hash.
        let hash = match &found {
            Some((h, _)) => h.clone(),
            None => self.shared.dummy_hash.clone(),
        };
        let good = self.shared.verify_password(hash, password).await;
        match found {
            Some((hash, tenant)) if good => {
                Ok(self.admit(user, tenant, Credential::Password(hash)))
            }
            _ => Ok(self.failed(user, "password")),
        }
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.banned() {
            return Ok(rejected());
        }
        // An offered key that is not authorized is not a failed login:
        // clients try every key they hold. It is an attempt, as in OpenSSH.
        if self.key_owner(user, offer.public_key).is_some() {
            return Ok(Auth::Accept);
        }
        tracing::debug!(ip = %self.ip, user, "an offered key is not the account's");
        self.attempt(user, "publickey");
        Ok(rejected())
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.banned() || !self.attempt(user, "publickey") {
            return Ok(rejected());
        }
        match self.key_owner(user, key.public_key) {
            Some(tenant) => Ok(self.admit(user, tenant, Credential::Key(key.public_key.clone()))),
            None => Ok(self.failed(user, "publickey")),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.login.is_none()
            || self.channels.len() + self.sftp_channels >= MAX_CHANNELS_PER_CONNECTION
        {
            tracing::warn!(ip = %self.ip, "refused a session channel: too many channels");
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.reject_channel("an X11 channel", reply).await
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.reject_channel("TCP forwarding (direct-tcpip)", reply)
            .await
    }

    async fn channel_open_forwarded_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        _host_to_connect: &str,
        _port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.reject_channel("TCP forwarding (forwarded-tcpip)", reply)
            .await
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        _channel: Channel<Msg>,
        _socket_path: &str,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.reject_channel("socket forwarding (streamlocal)", reply)
            .await
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The client sends nothing more (OpenSSH `bye`): close, or it hangs.
        session.close(channel)?;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse("a pty");
        session.channel_failure(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse("X11 forwarding");
        session.channel_failure(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        variable_name: &str,
        _variable_value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        tracing::debug!(ip = %self.ip, variable_name, "ignored an env request");
        session.channel_failure(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse("a shell");
        session.channel_failure(channel)
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.refuse("exec");
        session.channel_failure(channel)
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.refuse("agent forwarding");
        Ok(false)
    }

    async fn signal(
        &mut self,
        _channel: ChannelId,
        _signal: Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.refuse("remote TCP forwarding");
        Ok(false)
    }

    async fn streamlocal_forward(
        &mut self,
        _socket_path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.refuse("remote socket forwarding");
        Ok(false)
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(login) = &self.login else {
            return session.channel_failure(channel_id);
        };
        if name != "sftp" {
            self.refuse(&format!("subsystem {name:?}"));
            return session.channel_failure(channel_id);
        }
        let tenant = self
            .shared
            .state
            .read()
            .unwrap()
            .tenants
            .get(&login.tenant)
            .cloned();
        let Some(tenant) = tenant else {
            tracing::warn!(ip = %self.ip, account = %login.account, tenant = %login.tenant,
                "refused sftp: the tenant is no longer configured");
            return session.channel_failure(channel_id);
        };
        let root = match Root::open(&tenant.root) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(tenant = %tenant.name, root = %tenant.root.display(),
                    "cannot open the tenant root: {e}");
                return session.channel_failure(channel_id);
            }
        };
        let Some(channel) = self.channels.remove(&channel_id) else {
            return session.channel_failure(channel_id);
        };
        self.sftp_channels += 1;
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
        let sftp = SftpSession::new(
            tenant.clone(),
            login.account.clone(),
            root,
            self.events.clone(),
            ended_tx,
        );
        session.channel_success(channel_id)?;
        // When the SFTP loop ends (the handler is dropped), send EOF + CLOSE:
        // sshj/JSch clients otherwise wait 30 s.
        let handle = session.handle();
        tokio::spawn(async move {
            let _ = ended_rx.await;
            let _ = handle.eof(channel_id).await;
            let _ = handle.close(channel_id).await;
        });
        tracing::info!(ip = %self.ip, peer = %self.peer, account = %login.account,
            tenant = %tenant.name, "sftp started");
        russh_sftp::server::run_with_config(
            channel.into_stream(),
            sftp,
            russh_sftp::server::Config {
                max_client_packet_len: MAX_PACKET_LEN + 1024,
            },
        )
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_config_offers_what_libssh2_and_paramiko_need_and_no_sha1() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), &["acme"]);
        let key = hostkey::load_or_generate(dir.path()).unwrap();
        let c = ssh_config(&config, &key);
        let names = |v: Vec<&str>| v.join(",");
        let ciphers = names(c.preferred.cipher.iter().map(|n| n.as_ref()).collect());
        let macs = names(c.preferred.mac.iter().map(|n| n.as_ref()).collect());
        assert_eq!(
            ciphers,
            "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr",
            "ciphers offered, preferred first (aes128-ctr: curl/libssh2, paramiko)"
        );
        assert_eq!(
            macs,
            "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512,hmac-sha2-256",
            "MACs offered, preferred first (hmac-sha2-256: libssh2), no SHA-1"
        );
        assert!(c
            .preferred
            .kex
            .iter()
            .any(|k| k.as_ref() == "curve25519-sha256"));
        assert_eq!(
            c.max_auth_attempts,
            MAX_AUTH_ATTEMPTS + 1,
            "+1: the none probe"
        );
        assert_eq!(c.auth_rejection_time, AUTH_REJECTION_TIME);
        assert_eq!(c.inactivity_timeout, Some(config.sftp.idle_timeout));
        assert_eq!(
            c.methods,
            MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..])
        );
    }

    fn config(data_dir: &std::path::Path, tenants: &[&str]) -> Config {
        let mut text = format!("data_dir = {:?}\n", data_dir.display().to_string());
        for t in tenants {
            text.push_str(&format!(
                "[tenants.{t}]\nfailed_import_email = [\"it@{t}.example\"]\n\
                 [[tenants.{t}.accounts]]\nname = \"{t}-hr\"\n\
                 authorized_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGs1L7UU8cGd0oPcuENfTq1ZbANKk3gQ2f1IB2S8JOXS x\"]\n"
            ));
        }
        Config::parse(&text, "test").unwrap()
    }

    #[test]
    fn new_prepares_roots_and_reload_swaps_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let server = SftpServer::new(&config(dir.path(), &["acme"])).unwrap();
        for d in ["", ".bak", "results"] {
            assert!(dir.path().join("tenants/acme").join(d).is_dir(), "{d}");
        }
        assert!(hostkey::host_key_path(dir.path()).is_file());
        {
            let s = server.shared.state.read().unwrap();
            assert_eq!(s.accounts["acme-hr"].keys.len(), 1);
            assert_eq!(s.accounts["acme-hr"].tenant, "acme");
        }
        server
            .reloader()
            .reload(&config(dir.path(), &["acme", "beta"]));
        assert!(dir.path().join("tenants/beta/results").is_dir());
        let s = server.shared.state.read().unwrap();
        assert!(s.accounts.contains_key("beta-hr"));
        assert!(s.tenants.contains_key("beta"));
    }

    #[test]
    fn password_verification() {
        let salt = SaltString::generate(&mut password_hash::rand_core::OsRng);
        let hash = Argon2::default()
            .hash_password(b"s3cret", &salt)
            .unwrap()
            .to_string();
        let runs = AtomicU64::new(0);
        assert!(verify_password(&hash, "s3cret", &runs));
        assert!(!verify_password(&hash, "S3cret", &runs));
        assert!(!verify_password("not a hash", "s3cret", &runs));
        assert_eq!(
            runs.load(Ordering::Relaxed),
            2,
            "argon2 ran for the two real hashes"
        );
    }
}
