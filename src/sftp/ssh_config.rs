//! The russh server configuration: the algorithms offered (ciphers, MACs),
//! the authentication methods, the rejection pause and the attempt limit.
//!
//! Its role: one place that says what the SSH layer offers clients and how
//! a refusal looks on the wire. What it must never do: offer SHA-1 MACs or
//! weaker ciphers, or let a rejection reveal why it happened (every refusal
//! proceeds with the same methods after the same pause).

use std::time::Duration;

use russh::keys::PrivateKey;
use russh::server::Auth;
use russh::{MethodKind, MethodSet};

use crate::config::Config;

/// Time every rejected authentication takes (russh pads to it), so that
/// failures all look alike whatever the reason.
pub const AUTH_REJECTION_TIME: Duration = Duration::from_millis(500);
/// Authentication attempts one connection may make (each failed one pays
/// `AUTH_REJECTION_TIME`); the next one is disconnected.
pub const MAX_AUTH_ATTEMPTS: usize = 6;

/// Ciphers the server offers, preferred first. aes128-ctr is there for
/// curl/libssh2 and older paramiko; a test checks what clients negotiate.
pub(super) const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_256_GCM,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_192_CTR,
    russh::cipher::AES_128_CTR,
];
/// MACs (for the CTR ciphers), preferred first; no SHA-1.
pub(super) const MACS: &[russh::mac::Name] = &[
    russh::mac::HMAC_SHA512_ETM,
    russh::mac::HMAC_SHA256_ETM,
    russh::mac::HMAC_SHA512,
    russh::mac::HMAC_SHA256,
];

pub(super) fn preferred() -> russh::Preferred {
    russh::Preferred {
        cipher: std::borrow::Cow::Borrowed(CIPHERS),
        mac: std::borrow::Cow::Borrowed(MACS),
        ..russh::Preferred::DEFAULT
    }
}

/// The methods a client may go on with after a failure: both, always (russh
/// drops `password` after a rejected password unless told otherwise, which
/// left one password attempt per connection).
pub(super) fn methods() -> MethodSet {
    MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..])
}

pub(super) fn rejected() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(methods()),
        partial_success: false,
    }
}

pub(super) fn ssh_config(config: &Config, key: &PrivateKey) -> russh::server::Config {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sftp::hostkey;
    use crate::sftp::tests::config;

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
}
