//! The embedded default's demo account (docs/behaviour.md#the-embedded-default): `userdrop serve` with no
//! config gives the `demo` tenant an account `demo` whose password is
//! generated on first start and printed once. Only its argon2id hash is
//! kept, in `<data_dir>/demo-account.phc` (mode 0600); later starts reuse it
//! and print nothing secret. This module must never be used with an
//! operator's config, and never log the password.

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHasher, SaltString};

use crate::config::{Account, Config};

pub const TENANT: &str = "demo";
pub const ACCOUNT: &str = "demo";

/// Letters and digits that cannot be mistaken for one another.
const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

pub fn hash_file(config: &Config) -> PathBuf {
    config.data_dir.join("demo-account.phc")
}

/// Adds the demo account to the demo tenant. Returns the password when it
/// was generated now (first start), for the caller to print once.
pub fn ensure_account(config: &mut Config) -> io::Result<Option<String>> {
    let file = hash_file(config);
    let (hash, password) = match std::fs::read_to_string(&file) {
        Ok(h) => (h.trim().to_string(), None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let password = generate();
            let salt = SaltString::generate(&mut OsRng);
            let hash = argon2::Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map_err(|e| io::Error::other(e.to_string()))?
                .to_string();
            keep_hash(&file, &hash)?;
            (hash, Some(password))
        }
        Err(e) => return Err(e),
    };
    if let Some(t) = config.tenants.get_mut(TENANT) {
        t.accounts.retain(|a| a.name != ACCOUNT);
        t.accounts.push(Account {
            name: ACCOUNT.to_string(),
            password_hash: Some(hash),
            authorized_keys: Vec::new(),
        });
    }
    Ok(password)
}

pub fn api_key_file(config: &Config) -> PathBuf {
    config.data_dir.join("demo-api-key.sha256")
}

/// The demo key's name in the demo tenant's `api_keys`.
pub const API_KEY_NAME: &str = "demo";

/// Gives the demo tenant an API key for the HTTP API, made like the demo
/// password: on first start, its hash kept in `<data_dir>/demo-api-key.sha256`
/// (mode 0600), the token returned for the caller to print once.
pub fn ensure_api_key(config: &mut Config) -> io::Result<Option<String>> {
    let file = api_key_file(config);
    let (hash, token) = match std::fs::read_to_string(&file) {
        Ok(h) => (h.trim().to_string(), None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let (token, hash) = crate::config::new_api_token()?;
            keep_hash(&file, &hash)?;
            (hash, Some(token))
        }
        Err(e) => return Err(e),
    };
    let sha256 = crate::config::parse_key_hash(&hash).ok_or_else(|| {
        io::Error::other(format!(
            "{} does not hold a key hash; delete it and restart to make a new demo key",
            file.display()
        ))
    })?;
    if let Some(t) = config.tenants.get_mut(TENANT) {
        t.api_keys.retain(|k| k.name != API_KEY_NAME);
        t.api_keys.push(crate::config::ApiKey {
            name: API_KEY_NAME.to_string(),
            sha256,
        });
    }
    Ok(token)
}

/// Writes a secret's hash where only the daemon's user reads it (0600),
/// durably, never over an existing one.
fn keep_hash(file: &std::path::Path, hash: &str) -> io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    writeln!(f, "{hash}")?;
    f.sync_all()
}

fn generate() -> String {
    let mut bytes = [0u8; 20];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_made_once_and_its_hash_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::load(None).unwrap();
        c.data_dir = dir.path().to_path_buf();
        let first = ensure_account(&mut c).unwrap().expect("a new password");
        assert_eq!(first.len(), 20);
        let hash = c.tenants[TENANT].accounts[0].password_hash.clone().unwrap();
        assert!(hash.starts_with("$argon2id$"));
        let mut again = Config::load(None).unwrap();
        again.data_dir = dir.path().to_path_buf();
        assert_eq!(ensure_account(&mut again).unwrap(), None);
        assert_eq!(again.tenants[TENANT].accounts.len(), 1);
        assert_eq!(again.tenants[TENANT].accounts[0].password_hash, Some(hash));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(hash_file(&c))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
