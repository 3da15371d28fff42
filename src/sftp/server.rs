//! The SSH side: the accept loop, the SSH handler of one connection and the
//! channel plumbing that hands an `sftp` subsystem to [`super::session`]
//! and an exec of the SCP sink (`scp -t`) to [`super::scp`]. Everything
//! else is refused. Authentication lives in
//! `auth`, the session registry and the reload in `sessions`, the russh
//! configuration in `ssh_config`.
//!
//! A reload ([`Reloader::reload`]) re-checks every open session against the
//! new accounts: a session whose account or tenant is gone, or whose
//! password or key is no longer the account's, is disconnected. Cancelling
//! the shutdown token disconnects every session. What this module must never
//! do: tell a client whether an account exists (a wrong password and an
//! unknown user cost the same argon2 work and the same pause), count as a
//! failed login anything that is not one (an offered key the account lacks,
//! a refusal over the session limit), or run any exec but the SCP sink.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use russh::server::{Auth, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, Disconnect, Pty, Sig};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::bans::{BanPolicy, Bans};
use super::cutoff::Cutoff;
use super::fs::Root;
use super::preauth::{self, PreAuthGuard};
use super::scp;
use super::session::{SftpSession, TenantInfo, MAX_PACKET_LEN};
use super::sessions::{
    build_state, ConnectionGuard, Counts, Credential, Reloader, ServerStats, SessionGuard, Shared,
};
use super::ssh_config::{rejected, ssh_config};
use super::{hostkey, SftpError, Sink, UploadSink};
use crate::config::Config;

/// Channels (concurrent SFTP sessions) one connection may open.
const MAX_CHANNELS_PER_CONNECTION: usize = 8;
/// How long a connection closed for its login grace time gets to read the
/// disconnect before it is cut.
const GRACE_LINGER: Duration = Duration::from_secs(1);
/// How long shutdown waits for sessions to end before dropping them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The embedded SFTP server; see the module docs of [`super`].
pub struct SftpServer {
    pub(super) shared: Arc<Shared>,
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
            bans: Arc::new(Mutex::new(Bans::new(BanPolicy::from_config(&config.sftp)))),
            preauth: Arc::new(Mutex::new(preauth::PreAuth::new(
                preauth::PreAuthPolicy::from_config(&config.sftp),
            ))),
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

    /// The per-address failure counts and bans, for the other doors to
    /// share (a wrong API key counts like a wrong password).
    pub fn bans(&self) -> Arc<Mutex<Bans>> {
        self.shared.bans.clone()
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
        match listener.local_addr() {
            Ok(local) => tracing::info!(listen = %local, "SFTP server listening"),
            Err(_) => tracing::info!("SFTP server listening"),
        }
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
            let Some(handler) = self.admit_connection(peer, &events, &shutdown) else {
                continue;
            };
            let config = self.shared.ssh_config.read().unwrap().clone();
            let grace = self.shared.preauth.lock().unwrap().policy().grace;
            let _ = stream.set_nodelay(true);
            tasks.spawn(serve_connection(config, stream, handler, grace));
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

    /// The checks a new connection passes before anything is read from it
    /// (ban, pre-login limits, connection cap): its handler, or `None` when
    /// it is refused (dropping the stream closes it).
    fn admit_connection(
        &self,
        peer: SocketAddr,
        events: &Sink,
        shutdown: &CancellationToken,
    ) -> Option<SshHandler> {
        let ip = peer.ip().to_canonical();
        if let Some(left) = self.shared.bans.lock().unwrap().banned(ip, Instant::now()) {
            tracing::warn!(%ip, remaining = %humantime::format_duration(round_secs(left)),
                "refused a connection from a banned address");
            return None;
        }
        let admitted = self
            .shared
            .preauth
            .lock()
            .unwrap()
            .admit(ip, preauth::roll());
        if let Err(why) = admitted {
            let n = self.shared.preauth.lock().unwrap().refused(Instant::now());
            if n > 0 {
                tracing::warn!(%ip, refused = n,
                    "refused connections before login: {why} (this one's; refusals are logged every 10 s)");
            }
            return None;
        }
        let preauth = PreAuthGuard {
            preauth: self.shared.preauth.clone(),
            ip,
        };
        let Some(conn) = ConnectionGuard::new(&self.shared) else {
            tracing::warn!(%ip, "refused a connection: too many connections");
            return None;
        };
        Some(SshHandler {
            id: self.shared.next_connection.fetch_add(1, Ordering::Relaxed),
            revoke: CancellationToken::new(),
            shutdown: shutdown.clone(),
            shared: self.shared.clone(),
            events: events.clone(),
            peer,
            ip,
            login: None,
            attempts: 0,
            channels: HashMap::new(),
            sftp_channels: 0,
            scp_channels: HashSet::new(),
            pre_login: PreLogin {
                slot: Some(preauth),
                authenticated: CancellationToken::new(),
                grace_expired: CancellationToken::new(),
                attempted: false,
                struck: false,
                exempt: false,
            },
            _conn: conn,
        })
    }
}

/// One connection: the SSH handshake and the login within `grace`, then
/// the session until it ends, is revoked or the server shuts down.
async fn serve_connection(
    config: Arc<russh::server::Config>,
    stream: tokio::net::TcpStream,
    handler: SshHandler,
    grace: Duration,
) {
    let deadline = tokio::time::Instant::now() + grace;
    let (peer, token, revoke) = (
        handler.peer,
        handler.shutdown.clone(),
        handler.revoke.clone(),
    );
    let authenticated = handler.pre_login.authenticated.clone();
    let expired = handler.pre_login.grace_expired.clone();
    let cut = CancellationToken::new();
    let stream = Cutoff::new(super::quickack::QuickAck::new(stream), cut.clone());
    let run = russh::server::run_stream(config, stream, handler);
    let session = match tokio::time::timeout_at(deadline, run).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "SSH handshake failed: {e}");
            return;
        }
        Err(_) => {
            // Dropping the handshake drops the socket and the handler,
            // which counts the strike.
            expired.cancel();
            tracing::warn!(%peer, grace = %humantime::format_duration(grace),
                "closed a connection: no SSH banner within login_grace_time");
            return;
        }
    };
    let handle = session.handle();
    tokio::pin!(session);
    let (why, linger) = tokio::select! {
        r = &mut session => {
            if let Err(e) = r {
                tracing::debug!(%peer, "SSH session ended: {e}");
            }
            return;
        }
        _ = tokio::time::sleep_until(deadline), if !authenticated.is_cancelled() => {
            expired.cancel();
            tracing::warn!(%peer, grace = %humantime::format_duration(grace),
                "closed a connection: not logged in within login_grace_time");
            ("not logged in within the login grace time", GRACE_LINGER)
        }
        _ = token.cancelled() => ("server shutting down", SHUTDOWN_GRACE),
        _ = revoke.cancelled() => ("access revoked by a configuration reload", SHUTDOWN_GRACE),
    };
    // russh sends the disconnect only after its key exchange: a client
    // that never finished one is cut.
    let _ = tokio::time::timeout(
        linger,
        handle.disconnect(Disconnect::ByApplication, why.into(), "en".into()),
    )
    .await;
    if tokio::time::timeout(linger, &mut session).await.is_err() {
        cut.cancel();
        let _ = tokio::time::timeout(linger, session).await;
    }
}

pub(super) fn round_secs(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(1))
}

pub(super) struct Login {
    pub(super) account: String,
    pub(super) tenant: String,
    pub(super) _guard: SessionGuard,
}

/// A connection's state before it logs in.
pub(super) struct PreLogin {
    /// Its unauthenticated slot, freed at login (or when it ends).
    pub(super) slot: Option<PreAuthGuard>,
    /// Cancelled at login: the grace timer stops.
    pub(super) authenticated: CancellationToken,
    /// Cancelled when the login grace time ran out.
    pub(super) grace_expired: CancellationToken,
    /// It made an authentication request (a password, a key).
    pub(super) attempted: bool,
    /// A failed login of it was counted towards a ban already.
    pub(super) struck: bool,
    /// Good credentials refused by a limit: never a strike.
    pub(super) exempt: bool,
}

pub(super) struct SshHandler {
    /// This connection's id among the live sessions.
    pub(super) id: u64,
    /// Cancelled by a reload that revokes this session's access.
    pub(super) revoke: CancellationToken,
    /// The server's shutdown: a connection it ends is no strike.
    pub(super) shutdown: CancellationToken,
    pub(super) shared: Arc<Shared>,
    pub(super) events: Sink,
    pub(super) peer: SocketAddr,
    pub(super) ip: IpAddr,
    pub(super) login: Option<Login>,
    /// Password and public key attempts made on this connection (not the
    /// "none" probe, not a key offered without a signature that is accepted).
    pub(super) attempts: usize,
    pub(super) channels: HashMap<ChannelId, Channel<Msg>>,
    pub(super) sftp_channels: usize,
    /// Channels running the SCP sink (`exec scp -t`).
    pub(super) scp_channels: HashSet<ChannelId>,
    pub(super) pre_login: PreLogin,
    pub(super) _conn: ConnectionGuard,
}

impl SshHandler {
    fn refuse(&self, what: &str) {
        tracing::warn!(ip = %self.ip,
            account = self.login.as_ref().map(|l| l.account.as_str()).unwrap_or("-"),
            "refused {what}: only the sftp subsystem and scp uploads (scp -t) are offered");
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

impl SshHandler {
    /// The session a channel of this login gets: its tenant's root opened,
    /// the channel taken out of the table. `None` (logged) when the tenant
    /// is gone or its root cannot be opened.
    fn open_session(
        &mut self,
        channel_id: ChannelId,
        ended: tokio::sync::oneshot::Sender<()>,
    ) -> Option<(SftpSession, Channel<Msg>, String, Arc<TenantInfo>)> {
        let login = self.login.as_ref()?;
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
                "refused a session: the tenant is no longer configured");
            return None;
        };
        let root = match Root::open(&tenant.root) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(tenant = %tenant.name, root = %tenant.root.display(),
                    "cannot open the tenant root: {e}");
                return None;
            }
        };
        let channel = self.channels.remove(&channel_id)?;
        self.sftp_channels += 1;
        let account = login.account.clone();
        let sftp = SftpSession::new(
            tenant.clone(),
            account.clone(),
            root,
            self.events.clone(),
            ended,
        )
        .with_handle_scope(self.shared.handle_scope(self.id, &account));
        Some((sftp, channel, account, tenant))
    }
}

impl Drop for SshHandler {
    fn drop(&mut self) {
        if let Some(l) = &self.login {
            tracing::info!(ip = %self.ip, account = %l.account, tenant = %l.tenant, "session closed");
        } else {
            self.never_logged_in();
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
        // The client sends nothing more (OpenSSH `bye`, the end of `scp`):
        // an exit status first (OpenSSH's `scp`, SFTP underneath, reports
        // failure without one, and nightly scripts check `$?`), then close,
        // or the client hangs.
        // An scp sink's channel is answered by its own task, with the
        // status of the transfer.
        if self.scp_channels.contains(&channel) {
            return Ok(());
        }
        session.exit_status_request(channel, 0)?;
        session.close(channel)?;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        self.scp_channels.remove(&channel);
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
        channel_id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.login.is_none() {
            return session.channel_failure(channel_id);
        }
        let cmd = match scp::parse_command(data) {
            Ok(cmd) => cmd,
            Err(why) => {
                self.refuse(&format!("exec ({why})"));
                return session.channel_failure(channel_id);
            }
        };
        // The sink's channel gets no EOF answer of its own (see
        // `channel_eof`): its task sends the exit status once it is done.
        let (ended_tx, _) = tokio::sync::oneshot::channel::<()>();
        let Some((sftp, channel, account, tenant)) = self.open_session(channel_id, ended_tx) else {
            return session.channel_failure(channel_id);
        };
        self.scp_channels.insert(channel_id);
        session.channel_success(channel_id)?;
        tracing::info!(ip = %self.ip, peer = %self.peer, account = %account,
            tenant = %tenant.name, "scp started");
        let ctx = scp::SinkContext {
            tenant: tenant.name.clone(),
            account,
            max_file_size: tenant.max_file_size,
        };
        tokio::spawn(scp::serve_channel(channel, cmd, ctx, sftp));
        Ok(())
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
        if self.login.is_none() {
            return session.channel_failure(channel_id);
        }
        if name != "sftp" {
            self.refuse(&format!("subsystem {name:?}"));
            return session.channel_failure(channel_id);
        }
        // When the SFTP loop ends (the handler is dropped), send EOF + CLOSE:
        // sshj/JSch clients otherwise wait 30 s.
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<()>();
        let Some((sftp, channel, account, tenant)) = self.open_session(channel_id, ended_tx) else {
            return session.channel_failure(channel_id);
        };
        session.channel_success(channel_id)?;
        let handle = session.handle();
        tokio::spawn(async move {
            let _ = ended_rx.await;
            let _ = handle.eof(channel_id).await;
            let _ = handle.close(channel_id).await;
        });
        tracing::info!(ip = %self.ip, peer = %self.peer, account = %account,
            tenant = %tenant.name, "sftp started");
        let stream = super::framing::Checked::new(
            channel.into_stream(),
            MAX_PACKET_LEN + 1024,
            self.ip,
            account,
        );
        russh_sftp::server::run_with_config(
            stream,
            sftp,
            russh_sftp::server::Config {
                max_client_packet_len: MAX_PACKET_LEN + 1024,
            },
        )
        .await;
        Ok(())
    }
}
