//! `[sftp]`: the listener, session limits, timeouts and bans. Checks only:
//! it must never open a socket.

use std::net::SocketAddr;

use super::check::Check;
use super::raw::RawSftp;
use super::SftpConfig;

pub(super) fn check_sftp(c: &mut Check, r: RawSftp) -> SftpConfig {
    let listen_text = r.listen.as_deref().unwrap_or("0.0.0.0:2222");
    let listen = listen_text.parse().unwrap_or_else(|_| {
        c.problems.push(format!(
            "sftp.listen = {listen_text:?} is not an address and port like \"0.0.0.0:2222\""
        ));
        SocketAddr::from(([0, 0, 0, 0], 2222))
    });
    SftpConfig {
        listen,
        max_sessions: c.count("sftp.max_sessions", r.max_sessions, 100, 1, 100_000) as usize,
        max_sessions_per_account: c.count(
            "sftp.max_sessions_per_account",
            r.max_sessions_per_account,
            10,
            1,
            100_000,
        ) as usize,
        idle_timeout: c.duration("sftp.idle_timeout", r.idle_timeout.as_deref(), "10m"),
        incomplete_ttl: c.duration("sftp.incomplete_ttl", r.incomplete_ttl.as_deref(), "24h"),
        ban_after: c.count("sftp.ban_after", r.ban_after, 10, 1, 1_000_000) as u32,
        ban_window: c.duration("sftp.ban_window", r.ban_window.as_deref(), "10m"),
        ban_for: c.duration("sftp.ban_for", r.ban_for.as_deref(), "15m"),
        max_handles_per_account: c.count(
            "sftp.max_handles_per_account",
            r.max_handles_per_account,
            64,
            1,
            100_000,
        ) as usize,
        max_inbox_entries: c.count(
            "sftp.max_inbox_entries",
            r.max_inbox_entries,
            10_000,
            1,
            100_000_000,
        ) as usize,
    }
}
