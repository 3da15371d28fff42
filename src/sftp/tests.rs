//! Unit tests of the SSH server that span its files (the server, the
//! session registry and the reload), and the config they share.

use super::hostkey;
use super::server::SftpServer;
use crate::config::Config;

pub(super) fn config(data_dir: &std::path::Path, tenants: &[&str]) -> Config {
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
