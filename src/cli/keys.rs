//! `userdrop passwd`, `userdrop host-key` and `userdrop api-key new`: the
//! secrets an operator handles by hand (a password hash for the config, the
//! host key customers pin, an API key's hash). This file must never hold a
//! rule of the product, nor write a secret anywhere but standard output.

use std::io::{self, BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Result};

use super::out;
use super::{load, usage};

pub(super) fn passwd() -> Result<ExitCode> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let password = if io::stdin().is_terminal() {
        let a = rpassword::prompt_password("password: ")?;
        let b = rpassword::prompt_password("again: ")?;
        if a != b {
            return Err(usage("the two passwords differ"));
        }
        a
    } else {
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.is_empty() {
        return Err(usage("the password is empty"));
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow!("hashing failed: {e}"))?;
    out!("{hash}");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn host_key(config_path: Option<&Path>) -> Result<ExitCode> {
    let c = load(config_path)?;
    let (fingerprint, public) = crate::sftp::host_key_fingerprint(&c.data_dir)?;
    out!("{fingerprint}");
    out!("{public}");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn api_key_new(
    config_path: Option<&Path>,
    tenant: &str,
    name: &str,
) -> Result<ExitCode> {
    if name.trim().is_empty() {
        return Err(usage(
            "--name is empty: name the key after who uses it, like hr-nightly",
        ));
    }
    // The tenant must exist: a key pasted under a misspelt tenant opens nothing.
    let c = load(config_path)?;
    if c.tenant(tenant).is_none() {
        return Err(usage(format!(
            "no tenant {tenant:?} in {}; the tenants are: {}",
            c.source_name,
            c.tenants.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let (token, hash) = crate::config::new_api_token()?;
    out!("API key for tenant {tenant} ({name}); it is shown only now:");
    out!("  {token}");
    out!("");
    out!("Add these lines to the configuration, then reload (SIGHUP):");
    out!("");
    out!("[[tenants.{tenant}.api_keys]]");
    out!("name = {}", toml_string(name));
    out!("hash = \"{hash}\"");
    Ok(ExitCode::SUCCESS)
}

/// A TOML basic string of `s`.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
