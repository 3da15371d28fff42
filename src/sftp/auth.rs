//! Authentication of one SSH connection: password checks (argon2id on the
//! blocking pool), authorized keys, the attempts a connection may make,
//! failures counted towards a ban, and the admission of a good login
//! against the session limits.
//!
//! Its role: decide whether a login becomes a session. What it must never
//! do: tell a client whether an account exists (a wrong password and an
//! unknown user cost the same argon2 work and the same pause), count as a
//! failed login anything that is not one (an offered key the account lacks,
//! a refusal over the session limit), or log a password.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use russh::keys::PublicKey;
use russh::server::Auth;

use super::server::{round_secs, Login, SshHandler};
use super::sessions::{revoked_because, Credential, LiveSession, SessionGuard, Shared};
use super::ssh_config::{rejected, MAX_AUTH_ATTEMPTS};

impl Shared {
    /// Verifies `password` against `hash` on the blocking pool, counting
    /// every argon2 run.
    pub(super) async fn verify_password(self: &Arc<Self>, hash: String, password: &str) -> bool {
        let shared = self.clone();
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            verify_password(&hash, &password, &shared.password_verifications)
        })
        .await
        .unwrap_or(false)
    }
}

/// Whether `password` matches an account's PHC `hash` (argon2id), checked
/// exactly as an SFTP login checks it: for the other doors that sign the
/// same accounts in (the web page). Blocking: argon2 is slow on purpose.
pub fn password_matches(hash: &str, password: &str) -> bool {
    verify_password(hash, password, &AtomicU64::new(0))
}

/// Whether `password` matches the PHC `hash`; `runs` counts argon2 runs.
pub(super) fn verify_password(hash: &str, password: &str, runs: &AtomicU64) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    runs.fetch_add(1, Ordering::Relaxed);
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

impl SshHandler {
    pub(super) fn banned(&self) -> bool {
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
    pub(super) fn attempt(&mut self, user: &str, method: &str) -> bool {
        self.pre_login.attempted = true;
        if self.attempts >= MAX_AUTH_ATTEMPTS {
            tracing::warn!(ip = %self.ip, user, method,
                "refused authentication: {MAX_AUTH_ATTEMPTS} attempts on this connection");
            return false;
        }
        self.attempts += 1;
        true
    }

    pub(super) fn failed(&mut self, user: &str, method: &str) -> Auth {
        tracing::warn!(ip = %self.ip, user, method, "authentication failed");
        self.strike();
        rejected()
    }

    /// Counts one failure of this connection towards its address's ban.
    fn strike(&mut self) {
        self.pre_login.struck = true;
        let ban = self
            .shared
            .bans
            .lock()
            .unwrap()
            .record_failure(self.ip, Instant::now());
        if let Some(length) = ban {
            tracing::warn!(ip = %self.ip, ban_for = %humantime::format_duration(length),
                "address banned after repeated failed authentications");
        }
    }

    /// The connection ends without a login: one strike towards a ban when
    /// it ran out of login grace time, or when it made no authentication
    /// request at all (a banner and silence, a byte a second). Not for one
    /// that failed a login already (counted then), whose good credentials
    /// a limit refused, that offered only keys the account lacks, or that
    /// the server's shutdown ended.
    pub(super) fn never_logged_in(&mut self) {
        let p = &self.pre_login;
        if p.struck || p.exempt || self.shutdown.is_cancelled() {
            return;
        }
        let expired = p.grace_expired.is_cancelled();
        if p.attempted && !expired {
            return;
        }
        tracing::warn!(ip = %self.ip, peer = %self.peer,
            why = if expired { "login grace time" } else { "closed without an authentication request" },
            "a connection that never logged in counts towards a ban");
        self.strike();
    }

    /// Credentials are good: admit the session if the limits allow it. A
    /// refusal here is not a failed login (no strike towards a ban).
    pub(super) fn admit(&mut self, user: &str, tenant: String, credential: Credential) -> Auth {
        let method = match credential {
            Credential::Password(_) => "password",
            Credential::Key(_) => "publickey",
        };
        // Good credentials: a refusal from here on is no strike.
        self.pre_login.exempt = true;
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
        // No longer waiting to log in: its slot is free, its timer stops.
        self.pre_login.slot = None;
        self.pre_login.authenticated.cancel();
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
    pub(super) fn key_owner(&self, user: &str, key: &PublicKey) -> Option<String> {
        let s = self.shared.state.read().unwrap();
        let a = s.accounts.get(user)?;
        a.keys
            .iter()
            .any(|k| k.key_data() == key.key_data())
            .then(|| a.tenant.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

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
