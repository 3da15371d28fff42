//! Driving real SFTP clients against a server on 127.0.0.1: OpenSSH
//! `sftp`/`ssh` (key or password), paramiko, and the checks on what they
//! printed. Shared by the SFTP and daemon tests. A missing client program is
//! a failure naming the package to install, never a skip.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;

use crate::util::{SftpEnv, ACME_PASS, ACME_USER};

/// How long a client may take before the test calls it hung.
pub(crate) const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Fails (never skips) when a client program is missing.
pub(crate) fn require(command: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(command).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{command}` is not installed: install the Debian package {package} \
         (apt-get install {package}; scripts/test installs every test peer)"
    );
}

pub(crate) fn require_paramiko() {
    require("python3", "python3");
    let ok = std::process::Command::new("python3")
        .args(["-c", "import paramiko"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "python3 cannot import paramiko: `pip install paramiko` (scripts/test installs it)"
    );
}

/// A client command run in the env's dir with HOME pointing into it, no
/// agent, no stdin.
pub(crate) fn client(env: &SftpEnv, program: &str) -> Command {
    let mut c = Command::new(program);
    c.current_dir(env.dir.path())
        .env("HOME", &env.home)
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

pub(crate) async fn run(mut cmd: Command, what: &str) -> Output {
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start the client: {e}"));
    match tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output()).await {
        Ok(out) => out.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => panic!("{what}: the client hung for {CLIENT_TIMEOUT:?}"),
    }
}

pub(crate) fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub(crate) fn assert_ok(o: &Output, what: &str) {
    assert!(o.status.success(), "{what} failed:\n{}", show(o));
}

pub(crate) fn assert_failed(o: &Output, what: &str) {
    assert!(
        !o.status.success(),
        "{what} should have failed but succeeded:\n{}",
        show(o)
    );
}

/// OpenSSH options shared by ssh and sftp: no user config, no known_hosts,
/// no agent, quiet.
pub(crate) fn ssh_common() -> Vec<String> {
    [
        "-F",
        "/dev/null",
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "IdentityAgent=none",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
    ]
    .map(String::from)
    .to_vec()
}

pub(crate) fn key_auth(env: &SftpEnv) -> Vec<String> {
    vec![
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        "PasswordAuthentication=no".into(),
        "-o".into(),
        "KbdInteractiveAuthentication=no".into(),
        "-i".into(),
        env.key.to_string_lossy().into(),
    ]
}

pub(crate) fn password_auth() -> Vec<String> {
    [
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password",
        "-o",
        "NumberOfPasswordPrompts=1",
    ]
    .map(String::from)
    .to_vec()
}

/// Writes an sftp/psftp batch file and returns its path.
pub(crate) fn batch_file(env: &SftpEnv, script: &str) -> PathBuf {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let i = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    env.write(&format!("batch{i}.txt"), script)
}

/// `sftp -b` as acme-hr with the env's key.
pub(crate) async fn sftp_key(env: &SftpEnv, port: u16, script: &str, extra: &[&str]) -> Output {
    require("sftp", "openssh-client");
    let mut c = client(env, "sftp");
    c.args(ssh_common())
        .args(key_auth(env))
        .args(extra)
        .arg("-P")
        .arg(port.to_string())
        .arg("-b")
        .arg(batch_file(env, script))
        .arg(format!("{ACME_USER}@127.0.0.1"));
    run(c, "OpenSSH sftp (key)").await
}

/// `sshpass -p PASS sftp -b` as `user`.
pub(crate) async fn sftp_password(
    env: &SftpEnv,
    port: u16,
    user: &str,
    pass: &str,
    script: &str,
    extra: &[&str],
) -> Output {
    require("sftp", "openssh-client");
    require("sshpass", "sshpass");
    let mut c = client(env, "sshpass");
    c.args(["-p", pass, "sftp", "-o", "BatchMode=no"])
        .args(ssh_common())
        .args(password_auth())
        .args(extra)
        .arg("-P")
        .arg(port.to_string())
        .arg("-b")
        .arg(batch_file(env, script))
        .arg(format!("{user}@127.0.0.1"));
    run(c, "OpenSSH sftp (password)").await
}

/// `ssh` as acme-hr with the env's key, with `args` after the destination.
pub(crate) fn ssh_key(env: &SftpEnv, port: u16, options: &[&str], args: &[&str]) -> Command {
    require("ssh", "openssh-client");
    let mut c = client(env, "ssh");
    c.args(ssh_common())
        .args(key_auth(env))
        .args(options)
        .arg("-p")
        .arg(port.to_string())
        .arg(format!("{ACME_USER}@127.0.0.1"))
        .args(args);
    c
}

pub(crate) const PARAMIKO_SCRIPT: &str = r#"
import sys, paramiko
host, port, user, password, mode = sys.argv[1:6]
args = sys.argv[6:]
transport = paramiko.Transport((host, int(port)))
transport.connect(username=user, password=password)
sftp = paramiko.SFTPClient.from_transport(transport)
if mode == "put":
    local, remote = args
    sftp.put(local, remote)
elif mode == "part":
    # upload to NAME.part, then rename it to NAME; args: local name how ...
    for local, final, how in zip(args[0::3], args[1::3], args[2::3]):
        sftp.put(local, final + ".part")
        if how == "posix":
            sftp.posix_rename(final + ".part", final)
        else:
            sftp.rename(final + ".part", final)
else:
    raise SystemExit("unknown mode " + mode)
sftp.close()
transport.close()
"#;

pub(crate) async fn paramiko(env: &SftpEnv, port: u16, mode: &str, args: &[&str]) -> Output {
    require_paramiko();
    let script = env.write("paramiko_client.py", PARAMIKO_SCRIPT);
    let mut c = client(env, "python3");
    c.arg(script)
        .args(["127.0.0.1", &port.to_string(), ACME_USER, ACME_PASS, mode])
        .args(args);
    run(c, &format!("paramiko {mode}")).await
}
