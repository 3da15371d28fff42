//! `[sftp]`: the listener, session limits, timeouts, bans and the pre-login
//! limits. Checks only: it must never open a socket.

use std::net::SocketAddr;
use std::time::Duration;

use super::check::Check;
use super::raw::RawSftp;
use super::SftpConfig;

/// OpenSSH's `MaxStartups start:rate:full` over the unauthenticated
/// connections of the whole server: below `start` every one is accepted;
/// from `start` a new one is dropped with probability `rate` %, rising
/// linearly to 100 % at `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxStartups {
    pub start: usize,
    /// Percent, 1 to 100.
    pub rate: u32,
    pub full: usize,
}

/// The default `max_startups`: OpenSSH's rate and ceiling, but starting at
/// 20, above the per-address default of 10, so that one address alone can
/// never make the server drop anyone else's connections.
pub const DEFAULT_MAX_STARTUPS: &str = "20:30:100";

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
        login_grace_time: login_grace_time(c, r.login_grace_time.as_deref()),
        max_unauthenticated_per_address: c.count(
            "sftp.max_unauthenticated_per_address",
            r.max_unauthenticated_per_address,
            10,
            1,
            100_000,
        ) as usize,
        max_startups: max_startups(c, r.max_startups.as_deref()),
    }
}

/// At least a second (a login needs one), at most an hour.
fn login_grace_time(c: &mut Check, value: Option<&str>) -> Duration {
    let d = c.duration("sftp.login_grace_time", value, "30s");
    if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
        c.problems.push(format!(
            "sftp.login_grace_time = {:?} is out of range: use 1s to 1h (the default is 30s)",
            value.unwrap_or_default()
        ));
        return Duration::from_secs(30);
    }
    d
}

fn max_startups(c: &mut Check, value: Option<&str>) -> MaxStartups {
    let text = value.unwrap_or(DEFAULT_MAX_STARTUPS);
    match parse_max_startups(text) {
        Ok(m) => m,
        Err(why) => {
            c.problems.push(format!(
                "sftp.max_startups = {text:?} {why}; write it as \"start:rate:full\" like \
                 {DEFAULT_MAX_STARTUPS:?} (from `start` unauthenticated connections on, drop \
                 new ones with probability `rate` %, rising to 100 % at `full`)"
            ));
            parse_max_startups(DEFAULT_MAX_STARTUPS).expect("the default parses")
        }
    }
}

fn parse_max_startups(text: &str) -> Result<MaxStartups, &'static str> {
    let parts: Vec<&str> = text.trim().split(':').collect();
    let [start, rate, full] = parts[..] else {
        return Err("is not three numbers separated by colons");
    };
    let number = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| "is not three whole numbers")
    };
    let (start, rate, full) = (number(start)?, number(rate)?, number(full)?);
    if start == 0 || full > 100_000 {
        return Err("is out of range: start must be at least 1 and full at most 100000");
    }
    if !(1..=100).contains(&rate) {
        return Err("has a rate out of range: it is a percentage from 1 to 100");
    }
    if start > full {
        return Err("starts above its full count");
    }
    Ok(MaxStartups {
        start: start as usize,
        rate,
        full: full as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_startups_parses_and_refuses_what_makes_no_sense() {
        assert_eq!(
            parse_max_startups("10:30:100"),
            Ok(MaxStartups {
                start: 10,
                rate: 30,
                full: 100
            })
        );
        for bad in [
            "",
            "10:30",
            "10:30:100:1",
            "a:30:100",
            "0:30:100",
            "10:0:100",
            "10:101:100",
            "50:30:20",
        ] {
            assert!(parse_max_startups(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn pre_login_limits_have_defaults_and_report_every_problem() {
        let mut c = Check::default();
        let s = check_sftp(&mut c, RawSftp::default());
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        assert_eq!(s.login_grace_time, Duration::from_secs(30));
        assert_eq!(s.max_unauthenticated_per_address, 10);
        assert_eq!(parse_max_startups(DEFAULT_MAX_STARTUPS), Ok(s.max_startups));
        let mut c = Check::default();
        check_sftp(
            &mut c,
            RawSftp {
                login_grace_time: Some("0s".into()),
                max_unauthenticated_per_address: Some(0),
                max_startups: Some("30:30:10".into()),
                ..RawSftp::default()
            },
        );
        let all = c.problems.join("\n");
        for key in [
            "sftp.login_grace_time",
            "sftp.max_unauthenticated_per_address",
            "sftp.max_startups",
        ] {
            assert!(all.contains(key), "no problem about {key} in:\n{all}");
        }
    }
}
