//! The server's ed25519 host key: `<data_dir>/host_keys/ssh_host_ed25519_key`
//! (OpenSSH format, mode 0600, with a `.pub` beside it), generated on first
//! start and reused afterwards.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use password_hash::rand_core::{OsRng, RngCore};
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::LineEnding;
use russh::keys::{HashAlg, PrivateKey};

use super::SftpError;

pub const HOST_KEY_DIR: &str = "host_keys";
pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

pub fn host_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(HOST_KEY_DIR).join(HOST_KEY_FILE)
}

fn key_error(path: &Path, reason: impl std::fmt::Display) -> SftpError {
    SftpError::HostKey {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Loads the host key, generating and saving it when the file is missing.
pub fn load_or_generate(data_dir: &Path) -> Result<PrivateKey, SftpError> {
    let path = host_key_path(data_dir);
    match fs::read(&path) {
        Ok(bytes) => {
            let mode = fs::metadata(&path)
                .map_err(|e| key_error(&path, e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777),
                    "host key was readable by others; setting mode 0600");
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                    .map_err(|e| key_error(&path, e))?;
            }
            let key = PrivateKey::from_openssh(&bytes)
                .map_err(|e| key_error(&path, format!("not an OpenSSH private key: {e}")))?;
            if key.algorithm() != russh::keys::Algorithm::Ed25519 {
                return Err(key_error(&path, "not an ed25519 key"));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate(&path),
        Err(e) => Err(key_error(&path, e)),
    }
}

fn generate(path: &Path) -> Result<PrivateKey, SftpError> {
    let dir = path.parent().expect("host key path has a parent");
    fs::create_dir_all(dir).map_err(|e| key_error(path, e))?;
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    let pair = Ed25519Keypair::from_seed(&seed);
    let key = PrivateKey::new(KeypairData::Ed25519(pair), "userdrop host key")
        .map_err(|e| key_error(path, e))?;
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| key_error(path, e))?;
    // Written under a temporary name, then renamed: a crash never leaves
    // half a key behind.
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| key_error(&tmp, e))?;
        f.write_all(pem.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| key_error(&tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| key_error(path, e))?;
    let public = public_line(&key)?;
    let pub_path = path.with_extension("pub");
    fs::write(&pub_path, format!("{public}\n")).map_err(|e| key_error(&pub_path, e))?;
    tracing::info!(path = %path.display(), fingerprint = %fingerprint(&key), "generated SSH host key");
    Ok(key)
}

/// `"SHA256:<base64 without padding>"`, as `ssh-keygen -lf` prints it.
pub fn fingerprint(key: &PrivateKey) -> String {
    key.public_key().fingerprint(HashAlg::Sha256).to_string()
}

/// The OpenSSH public key line ("ssh-ed25519 AAAA… comment").
pub fn public_line(key: &PrivateKey) -> Result<String, SftpError> {
    key.public_key()
        .to_openssh()
        .map_err(|e| SftpError::HostKey {
            path: PathBuf::new(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = load_or_generate(dir.path()).unwrap();
        let path = host_key_path(dir.path());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        let k2 = load_or_generate(dir.path()).unwrap();
        assert_eq!(k1.public_key().key_data(), k2.public_key().key_data());
        let fp = fingerprint(&k2);
        assert!(fp.starts_with("SHA256:"), "{fp}");
        assert!(!fp.ends_with('='));
        assert_eq!(fp.len(), "SHA256:".len() + 43);
        let line = public_line(&k2).unwrap();
        assert!(line.starts_with("ssh-ed25519 AAAA"), "{line}");
        let pub_file = fs::read_to_string(path.with_extension("pub")).unwrap();
        assert_eq!(pub_file.trim(), line);
        // The fingerprint of the public line matches.
        let pk = russh::keys::PublicKey::from_openssh(&line).unwrap();
        assert_eq!(pk.fingerprint(HashAlg::Sha256).to_string(), fp);
    }

    #[test]
    fn garbage_key_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = host_key_path(dir.path());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "nope").unwrap();
        let e = load_or_generate(dir.path()).unwrap_err().to_string();
        assert!(e.contains("ssh_host_ed25519_key"), "{e}");
    }
}
