//! A running `userdrop serve` with the HTTP API on and an API key per
//! tenant, driven with curl: what the HTTP and change-feed tests share.

use std::path::Path;
use std::process::Command;

use super::clients::require;
use super::daemon::{serve_config, Serve};
use super::{bin, stderr, stdout, SftpEnv, BETA, TENANT};

/// A running daemon with the HTTP API on, and an API key per tenant made
/// with `userdrop api-key new`.
pub(crate) struct Api {
    pub(crate) env: SftpEnv,
    pub(crate) serve: Serve,
    pub(crate) base: String,
    pub(crate) acme_key: String,
    pub(crate) beta_key: String,
}

/// `userdrop api-key new`: the token and the config lines it printed.
pub(crate) fn new_key(config: &Path, tenant: &str, name: &str) -> (String, String) {
    let out = Command::new(bin())
        .arg("--config")
        .arg(config)
        .args(["api-key", "new", "--tenant", tenant, "--name", name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let token = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("udk_"))
        .unwrap_or_else(|| panic!("no token in:\n{text}"))
        .to_string();
    let lines = text[text.find("[[tenants.").expect("config lines")..].to_string();
    (token, lines)
}

impl Api {
    /// `http_toml`: keys of `[http]` over listen on a free port;
    /// `sftp_toml`, `acme_toml`: as for [`SftpEnv::new`].
    pub(crate) fn start(http_toml: &str, sftp_toml: &str, acme_toml: &str) -> Api {
        require("curl", "curl");
        let env = SftpEnv::new(sftp_toml, acme_toml);
        let config = serve_config(&env, "");
        let (acme_key, acme_lines) = new_key(&config, TENANT, "hr-nightly");
        let (beta_key, beta_lines) = new_key(&config, BETA, "beta-sync");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n{acme_lines}\n{beta_lines}\n[http]\nlisten = \"127.0.0.1:0\"\n{http_toml}\n"
        ));
        std::fs::write(&config, text).unwrap();
        let serve = Serve::start(&config);
        let base = base_of(&serve);
        Api {
            env,
            serve,
            base,
            acme_key,
            beta_key,
        }
    }

    /// Starts the daemon again on the same configuration, after it
    /// stopped (its HTTP port is a new one).
    pub(crate) fn start_again(&mut self) {
        self.serve = Serve::start(&self.env.path("userdrop.toml"));
        self.base = base_of(&self.serve);
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// curl with `args`, then the URL; returns (status, body).
    pub(crate) fn curl(&self, args: &[&str], path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "-w", "\n%{http_code}"])
            .args(args)
            .arg(self.url(path))
            .current_dir(self.env.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "curl: {}", stderr(&out));
        let text = stdout(&out);
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.trim().parse().unwrap(), body.to_string())
    }

    pub(crate) fn json(&self, args: &[&str], path: &str) -> (u16, serde_json::Value) {
        let (code, body) = self.curl(args, path);
        let v = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{path} answered {code} with no JSON ({e}): {body}"));
        (code, v)
    }

    pub(crate) fn acme(&self) -> String {
        format!("x-api-key: {}", self.acme_key)
    }
}

/// The HTTP base URL the daemon printed.
fn base_of(serve: &Serve) -> String {
    serve
        .banner
        .lines()
        .find_map(|l| l.strip_prefix("userdrop: HTTP listening on "))
        .unwrap_or_else(|| panic!("no HTTP line in:\n{}", serve.banner))
        .trim()
        .to_string()
}
