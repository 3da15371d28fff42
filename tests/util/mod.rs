//! Shared harness: a temp data dir with a config for tenant `acme`, the real
//! `userdrop` binary, and in-process access to the library for the same setup.

pub mod api;
pub mod clients;
pub mod daemon;

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

    /// Writes `text` to `name` and imports it with `--json`: the outcome.
    pub fn import_json(&self, name: &str, text: &str) -> serde_json::Value {
        let path = self.write(name, text);
        let out = self.import(&path, &["--json"]);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)))
    }

    pub fn store(&self) -> Store {
        Store::open(&self.config.db_path()).expect("open store")
    }

    /// A raw SQL connection to the store (see [`sql`]).
    pub fn sql(&self) -> rusqlite::Connection {
        sql(&self.config.db_path())
    }
}

/// A raw SQL connection to a store, for the checks no store function
/// offers (the application never needs them: counting rows by pattern,
/// holding the write lock, clearing a lease). Only tests open one.
pub fn sql(db: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).expect("open the store's database");
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .expect("busy timeout");
    conn
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

// ---------------------------------------------------------------------------
// SFTP: a data dir with two tenants and their accounts, for tests that run
// the embedded server in-process and drive real clients against it.

/// Tenants and accounts of [`SftpEnv`]. `acme-hr` logs in with a password or
/// with the env's ed25519 key; `beta-hr` with a password only.
pub const BETA: &str = "beta";
pub const ACME_USER: &str = "acme-hr";
pub const ACME_PASS: &str = "Acme-pass-2024";
pub const BETA_USER: &str = "beta-hr";
pub const BETA_PASS: &str = "Beta-pass-2024";

/// An argon2id PHC hash of `password`, as `userdrop passwd` makes.
pub fn argon2_hash(password: &str) -> String {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashes")
        .to_string()
}

/// Hashes are slow on purpose: make each test password's once per run.
fn cached_hash(password: &'static str) -> String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static HASHES: OnceLock<Mutex<HashMap<&'static str, String>>> = OnceLock::new();
    let map = HASHES.get_or_init(Default::default);
    if let Some(h) = map.lock().unwrap().get(password) {
        return h.clone();
    }
    let h = argon2_hash(password);
    map.lock().unwrap().insert(password, h.clone());
    h
}

/// A config with `[sftp]` settings and several tenants, each given as the
/// TOML keys of its table (accounts as `[[accounts]]`).
pub fn config_text_tenants(data_dir: &Path, sftp_toml: &str, tenants: &[(&str, &str)]) -> String {
    let mut root = toml::Table::new();
    root.insert(
        "data_dir".into(),
        toml::Value::String(data_dir.join("data").to_string_lossy().into()),
    );
    let sftp: toml::Table = toml::from_str(sftp_toml).expect("sftp settings parse");
    root.insert("sftp".into(), toml::Value::Table(sftp));
    let mut all = toml::Table::new();
    for (name, tenant_toml) in tenants {
        let mut tenant: toml::Table = toml::from_str(tenant_toml).expect("tenant settings parse");
        tenant
            .entry("failed_import_email")
            .or_insert_with(|| toml::Value::String(format!("it@{name}.example")));
        all.insert((*name).into(), toml::Value::Table(tenant));
    }
    root.insert("tenants".into(), toml::Value::Table(all));
    toml::to_string(&root).expect("config serialises")
}

/// A data dir for the SFTP server: tenants `acme` (account `acme-hr`, by
/// password or by `key`) and `beta` (account `beta-hr`, by password), an
/// ed25519 client key pair, and `home/` to run clients in (their `HOME`).
pub struct SftpEnv {
    pub dir: tempfile::TempDir,
    pub config: Config,
    /// The client's private key (its public half is in acme-hr's authorized_keys).
    pub key: PathBuf,
    pub home: PathBuf,
}

impl SftpEnv {
    /// `sftp_toml`: keys of `[sftp]` over the test defaults (listen on
    /// 127.0.0.1, generous session limits); `acme_toml`: extra keys of
    /// `[tenants.acme]`, e.g. `max_file_size = "1KiB"`.
    pub fn new(sftp_toml: &str, acme_toml: &str) -> SftpEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("make home");
        let key = dir.path().join("id_ed25519");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "test-key", "-f"])
            .arg(&key)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run ssh-keygen ({e}): install openssh-client (scripts/test does)")
            });
        assert!(out.status.success(), "ssh-keygen: {}", stderr(&out));
        let public = std::fs::read_to_string(key.with_extension("pub")).expect("read .pub");

        let mut sftp: toml::Table = toml::from_str(
            r#"
            listen = "127.0.0.1:0"
            max_sessions = 100
            max_sessions_per_account = 50
            idle_timeout = "5m"
            "#,
        )
        .unwrap();
        let over: toml::Table = toml::from_str(sftp_toml).expect("sftp settings parse");
        sftp.extend(over);

        let account = |name: &str, pass: &'static str, keys: &[&str]| {
            let mut a = toml::Table::new();
            a.insert("name".into(), name.into());
            a.insert("password_hash".into(), cached_hash(pass).into());
            a.insert(
                "authorized_keys".into(),
                toml::Value::Array(keys.iter().map(|k| (*k).into()).collect()),
            );
            toml::Value::Array(vec![toml::Value::Table(a)])
        };
        let mut acme: toml::Table = toml::from_str(acme_toml).expect("acme settings parse");
        acme.insert(
            "accounts".into(),
            account(ACME_USER, ACME_PASS, &[public.trim()]),
        );
        let mut beta = toml::Table::new();
        beta.insert("accounts".into(), account(BETA_USER, BETA_PASS, &[]));
        let text = config_text_tenants(
            dir.path(),
            &toml::to_string(&sftp).unwrap(),
            &[
                (TENANT, &toml::to_string(&acme).unwrap()),
                (BETA, &toml::to_string(&beta).unwrap()),
            ],
        );
        std::fs::write(dir.path().join("userdrop.toml"), &text).expect("write config");
        let config = Config::parse(&text, "test config").expect("test config is valid");
        SftpEnv {
            dir,
            config,
            key,
            home,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a local file for a client to upload.
    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).expect("write test file");
        p
    }

    pub fn root(&self, tenant: &str) -> PathBuf {
        self.config.tenant_root(tenant)
    }
}

/// Deterministic, incompressible-looking bytes (so that a misplaced or
/// repeated block shows).
pub fn pattern_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Mail: an Env whose config also has top-level settings (an [smtp] table).

impl Env {
    /// As [`Env::new`], with `root_toml` (e.g. an `[smtp]` table) merged into
    /// the top level of the config.
    pub fn with_root(root_toml: &str, tenant_toml: &str) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut root: toml::Table =
            toml::from_str(&config_text(dir.path(), tenant_toml)).expect("config parses");
        let extra: toml::Table = toml::from_str(root_toml).expect("root settings parse");
        root.extend(extra);
        let text = toml::to_string(&root).expect("config serialises");
        let config_path = dir.path().join("userdrop.toml");
        std::fs::write(&config_path, &text).expect("write config");
        let config = Config::parse(&text, "test config").expect("test config is valid");
        Env {
            dir,
            config_path,
            config,
        }
    }
}

/// Held by the tests that load both cores for many seconds (the kill -9
/// harness, the crash test's large imports, the SIGTERM test's long job), so
/// that two of them never run at once and starve each other's timing. Not a
/// `MutexGuard`: async tests hold it across their awaits.
pub struct Heavy(());

static HEAVY_BUSY: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
static HEAVY_FREED: std::sync::Condvar = std::sync::Condvar::new();

pub fn heavy() -> Heavy {
    let mut busy = HEAVY_BUSY.lock().unwrap_or_else(|p| p.into_inner());
    while *busy {
        busy = HEAVY_FREED.wait(busy).unwrap_or_else(|p| p.into_inner());
    }
    *busy = true;
    Heavy(())
}

impl Drop for Heavy {
    fn drop(&mut self) {
        *HEAVY_BUSY.lock().unwrap_or_else(|p| p.into_inner()) = false;
        HEAVY_FREED.notify_one();
    }
}
