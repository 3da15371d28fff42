//! `[tenants.NAME.provision]`: the SCIM 2.0 application a tenant's users
//! are pushed into: its base URL, where the bearer token comes from, and an
//! optional private CA. Checks only: it must never read the token's value
//! or connect (for `check-config` it asks whether `token_env` is set, never
//! what it holds).

use std::path::PathBuf;

use super::check::Check;
use super::raw::RawProvision;
use super::{Provision, SecretSource};

pub(super) fn check_provision(
    c: &mut Check,
    key: &str,
    r: RawProvision,
    env: bool,
) -> Option<Provision> {
    let before = c.problems.len();
    let scim_url = match r.scim_url.as_deref().map(str::trim) {
        None | Some("") => {
            c.problems.push(format!(
                "{key}.scim_url is required: the application's SCIM base URL, like \"https://app.example.com/scim/v2\""
            ));
            String::new()
        }
        Some(u) => {
            let ok = (u.starts_with("https://") || u.starts_with("http://"))
                && u.split_once("://").is_some_and(|(_, rest)| {
                    !rest.is_empty()
                        && !rest.starts_with('/')
                        && !rest.contains(char::is_whitespace)
                });
            if !ok {
                c.problems.push(format!(
                    "{key}.scim_url = {u:?} is not an http(s) URL like \"https://app.example.com/scim/v2\""
                ));
            }
            u.trim_end_matches('/').to_string()
        }
    };
    let token = match (&r.token_env, &r.token_file) {
        (Some(_), Some(_)) => {
            c.problems
                .push(format!("{key}: set token_env or token_file, not both"));
            None
        }
        (Some(v), None) => {
            if env && std::env::var_os(v).is_none_or(|x| x.is_empty()) {
                c.problems.push(format!(
                    "{key}.token_env = {v:?}: the environment variable {v} is not set (or empty) here, so serve could not call the application; export it in the service's environment"
                ));
            }
            Some(SecretSource::Env(v.clone()))
        }
        (None, Some(f)) => Some(SecretSource::File(PathBuf::from(f))),
        (None, None) => {
            c.problems.push(format!(
                "{key}: set token_env (an environment variable's name) or token_file (a file holding the bearer token)"
            ));
            None
        }
    };
    if r.ca_file.is_some() && scim_url.starts_with("http://") {
        c.problems.push(format!(
            "{key}.ca_file only applies to an https:// scim_url"
        ));
    }
    if c.problems.len() != before {
        return None;
    }
    Some(Provision {
        scim_url,
        token: token?,
        ca_file: r.ca_file.map(PathBuf::from),
    })
}
