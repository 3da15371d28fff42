//! The pre-login limits: how many connections may wait unauthenticated,
//! in total and per source address, and how long each may take to log in.
//!
//! Its role: keep the slots before login from being filled by sockets that
//! never log in (a banner and then silence, or a byte a second), so that a
//! client from another address still gets in. A new connection is refused
//! at once when its address already holds `max_unauthenticated_per_address`
//! unauthenticated connections, and dropped at random, OpenSSH
//! `MaxStartups`-style, when the whole server holds many. What it must never
//! do: count an authenticated session (its slot is freed at login), or
//! decide anything from a clock or a random draw of its own (both are passed
//! in, so that the rules are tested exactly).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{MaxStartups, SftpConfig};

/// Refusals are logged at most this often (with the count since): a flood
/// must not flood the log too.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreAuthPolicy {
    pub per_address: usize,
    pub startups: MaxStartups,
    pub grace: Duration,
}

impl PreAuthPolicy {
    pub fn from_config(c: &SftpConfig) -> PreAuthPolicy {
        PreAuthPolicy {
            per_address: c.max_unauthenticated_per_address,
            startups: c.max_startups,
            grace: c.login_grace_time,
        }
    }
}

/// Why a new connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address holds `limit` unauthenticated connections already.
    PerAddress { limit: usize },
    /// Random early drop: the server holds `unauthenticated` connections.
    EarlyDrop { unauthenticated: usize },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::PerAddress { limit } => write!(
                f,
                "the address has {limit} unauthenticated connections \
                 (max_unauthenticated_per_address)"
            ),
            Refusal::EarlyDrop { unauthenticated } => write!(
                f,
                "{unauthenticated} connections are waiting to log in (max_startups)"
            ),
        }
    }
}

/// The unauthenticated connections, in total and by address.
#[derive(Debug)]
pub struct PreAuth {
    policy: PreAuthPolicy,
    total: usize,
    by_address: HashMap<IpAddr, usize>,
    refused_since_log: u64,
    last_log: Option<Instant>,
}

impl PreAuth {
    pub fn new(policy: PreAuthPolicy) -> PreAuth {
        PreAuth {
            policy,
            total: 0,
            by_address: HashMap::new(),
            refused_since_log: 0,
            last_log: None,
        }
    }

    pub fn policy(&self) -> PreAuthPolicy {
        self.policy
    }

    pub fn set_policy(&mut self, policy: PreAuthPolicy) {
        self.policy = policy;
    }

    /// Unauthenticated connections held now (all addresses).
    pub fn total(&self) -> usize {
        self.total
    }

    /// Lets a new connection from `ip` in, counted until [`PreAuth::release`],
    /// or refuses it. `roll` is a uniform random draw from 0 to 99.
    pub fn admit(&mut self, ip: IpAddr, roll: u32) -> Result<(), Refusal> {
        let mine = self.by_address.get(&ip).copied().unwrap_or(0);
        if mine >= self.policy.per_address {
            return Err(Refusal::PerAddress {
                limit: self.policy.per_address,
            });
        }
        if early_drop(self.policy.startups, self.total, roll) {
            return Err(Refusal::EarlyDrop {
                unauthenticated: self.total,
            });
        }
        self.total += 1;
        *self.by_address.entry(ip).or_default() += 1;
        Ok(())
    }

    /// A connection admitted from `ip` logged in or ended.
    pub fn release(&mut self, ip: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.by_address.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_address.remove(&ip);
            }
        }
    }

    /// Counts a refusal; returns how many to log now (0: stay quiet).
    pub fn refused(&mut self, now: Instant) -> u64 {
        self.refused_since_log += 1;
        if self
            .last_log
            .is_some_and(|t| now.saturating_duration_since(t) < REFUSAL_LOG_EVERY)
        {
            return 0;
        }
        self.last_log = Some(now);
        std::mem::take(&mut self.refused_since_log)
    }
}

/// OpenSSH's rule: below `start` never; at `full` or above always; in
/// between with probability `rate` % rising linearly to 100 %.
fn early_drop(m: MaxStartups, unauthenticated: usize, roll: u32) -> bool {
    if unauthenticated < m.start {
        return false;
    }
    if unauthenticated >= m.full {
        return true;
    }
    let span = (m.full - m.start) as u64;
    let above = (unauthenticated - m.start) as u64;
    let p = u64::from(m.rate) + (100 - u64::from(m.rate)) * above / span;
    u64::from(roll) < p
}

/// A uniform draw from 0 to 99 for [`PreAuth::admit`].
pub fn roll() -> u32 {
    use password_hash::rand_core::{OsRng, RngCore};
    OsRng.next_u32() % 100
}

/// Holds a connection's unauthenticated slot; dropping it (at login, or
/// when the connection ends) frees the slot.
pub struct PreAuthGuard {
    pub(super) preauth: Arc<std::sync::Mutex<PreAuth>>,
    pub(super) ip: IpAddr,
}

impl Drop for PreAuthGuard {
    fn drop(&mut self) {
        self.preauth.lock().unwrap().release(self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PreAuthPolicy {
        PreAuthPolicy {
            per_address: 3,
            startups: MaxStartups {
                start: 5,
                rate: 30,
                full: 10,
            },
            grace: Duration::from_secs(30),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_is_held_to_its_limit_and_others_still_get_in() {
        let mut p = PreAuth::new(policy());
        let a = ip("10.0.0.1");
        for _ in 0..3 {
            assert_eq!(p.admit(a, 0), Ok(()));
        }
        assert_eq!(p.admit(a, 99), Err(Refusal::PerAddress { limit: 3 }));
        assert_eq!(p.admit(ip("10.0.0.2"), 0), Ok(()), "another address");
        assert_eq!(p.total(), 4);
        p.release(a);
        assert_eq!(p.admit(a, 0), Ok(()), "a freed slot is usable again");
    }

    #[test]
    fn early_drop_follows_start_rate_full() {
        let m = policy().startups;
        assert!(!early_drop(m, 4, 0), "below start: never");
        // At start: rate % (30): rolls 0..29 drop, 30.. pass.
        assert!(early_drop(m, 5, 29));
        assert!(!early_drop(m, 5, 30));
        // Halfway (7.5 of 5..10 → 7 is 2/5): 30 + 70 * 2 / 5 = 58.
        assert!(early_drop(m, 7, 57));
        assert!(!early_drop(m, 7, 58));
        assert!(early_drop(m, 10, 99), "at full: always");
        assert!(early_drop(m, 50, 99));
    }

    #[test]
    fn admit_drops_early_over_start_whatever_the_address() {
        let mut p = PreAuth::new(policy());
        for i in 0..5 {
            assert_eq!(p.admit(ip(&format!("10.0.1.{i}")), 0), Ok(()));
        }
        assert_eq!(
            p.admit(ip("10.0.2.1"), 0),
            Err(Refusal::EarlyDrop { unauthenticated: 5 })
        );
        assert_eq!(p.admit(ip("10.0.2.1"), 99), Ok(()), "a lucky roll");
        assert_eq!(p.total(), 6);
    }

    #[test]
    fn refusals_are_logged_at_most_every_ten_seconds_with_their_count() {
        let mut p = PreAuth::new(policy());
        let t0 = Instant::now();
        assert_eq!(p.refused(t0), 1);
        assert_eq!(p.refused(t0 + Duration::from_secs(1)), 0);
        assert_eq!(p.refused(t0 + Duration::from_secs(2)), 0);
        assert_eq!(p.refused(t0 + Duration::from_secs(10)), 3);
    }
}
