//! Shared harness: a temp data dir with a config for tenant `acme`, the real
//! `userdrop` binary, and in-process access to the library for the same setup.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use userdrop::config::Config;
use userdrop::store::Store;

pub const TENANT: &str = "acme";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_userdrop"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A data dir and a config whose tenant `acme` has the given settings
/// (keys of its table, TOML; subtables like `[fields.x]` allowed).
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub config: Config,
}

pub fn config_text(data_dir: &Path, tenant_toml: &str) -> String {
    let mut tenant: toml::Table = toml::from_str(tenant_toml).expect("tenant settings parse");
    tenant
        .entry("failed_import_email")
        .or_insert_with(|| toml::Value::String("it@acme.example".into()));
    let mut tenants = toml::Table::new();
    tenants.insert(TENANT.into(), toml::Value::Table(tenant));
    let mut root = toml::Table::new();
    root.insert(
        "data_dir".into(),
        toml::Value::String(data_dir.join("data").to_string_lossy().into()),
    );
    root.insert("tenants".into(), toml::Value::Table(tenants));
    toml::to_string(&root).expect("config serialises")
}

impl Env {
    pub fn new(tenant_toml: &str) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = config_text(dir.path(), tenant_toml);
        let config_path = dir.path().join("userdrop.toml");
        std::fs::write(&config_path, &text).expect("write config");
        let config = Config::parse(&text, "test config").expect("test config is valid");
        Env {
            dir,
            config_path,
            config,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).expect("write test file");
        p
    }

    /// Runs the real binary with this env's config.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .env_remove("USERDROP_CONFIG")
            .output()
            .expect("run userdrop")
    }

    /// `userdrop import --tenant acme FILE EXTRA...`
    pub fn import(&self, file: &Path, extra: &[&str]) -> Output {
        let mut args = vec![
            "import",
            "--tenant",
            TENANT,
            file.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    pub fn store(&self) -> Store {
        Store::open(&self.config.db_path()).expect("open store")
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A deterministic users file: header + `rows` rows, each reporting to an
/// earlier user.
pub fn users_csv(rows: usize, salt: &str) -> String {
    let mut s = String::with_capacity(rows * 90 + 80);
    s.push_str("user_id,email,first_name,last_name,enabled,roles,reports_to\n");
    for i in 1..=rows {
        let manager = if i == 1 {
            String::new()
        } else {
            format!("U{:07}", i / 10 + 1)
        };
        s.push_str(&format!(
            "U{i:07},user.{i}@example.com,First{i},Last{salt}{i},{},staff|team{},{manager}\n",
            if i % 17 == 0 { "false" } else { "true" },
            i % 7
        ));
    }
    s
}
