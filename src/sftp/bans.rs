//! Brute-force protection: failed authentications counted per source
//! address; `after` failures within `window` ban the address for `ban_for`,
//! doubling on every repeat ban. Pure: the clock is passed in.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long a past ban is remembered for doubling the next one.
const REPEAT_MEMORY: Duration = Duration::from_secs(24 * 3600);
/// The longest ban, however often an address comes back.
const MAX_BAN: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanPolicy {
    /// Failures that trigger a ban; 0 disables banning.
    pub after: u32,
    pub window: Duration,
    pub ban_for: Duration,
}

impl BanPolicy {
    pub fn from_config(c: &crate::config::SftpConfig) -> BanPolicy {
        BanPolicy {
            after: c.ban_after,
            window: c.ban_window,
            ban_for: c.ban_for,
        }
    }
}

#[derive(Debug, Default)]
struct Entry {
    failures: VecDeque<Instant>,
    banned_until: Option<Instant>,
    /// Bans so far (for doubling), and when the last one ended.
    bans: u32,
    last_ban_end: Option<Instant>,
}

#[derive(Debug)]
pub struct Bans {
    policy: BanPolicy,
    entries: HashMap<IpAddr, Entry>,
    /// Failed authentications ever recorded, and bans started (metrics).
    failures_total: u64,
    bans_total: u64,
}

impl Bans {
    pub fn new(policy: BanPolicy) -> Bans {
        Bans {
            policy,
            entries: HashMap::new(),
            failures_total: 0,
            bans_total: 0,
        }
    }

    pub fn set_policy(&mut self, policy: BanPolicy) {
        self.policy = policy;
    }

    /// The remaining ban of `ip`, if it is banned at `now`.
    pub fn banned(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let until = self.entries.get(&ip)?.banned_until?;
        (until > now).then(|| until - now)
    }

    /// Records a failed authentication. Returns the ban's length when this
    /// failure starts one.
    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        self.failures_total += 1;
        if self.entries.len() > 4096 {
            self.prune(now);
        }
        let policy = self.policy;
        if policy.after == 0 {
            return None;
        }
        let e = self.entries.entry(ip).or_default();
        if let Some(until) = e.banned_until {
            if until > now {
                return None; // already banned
            }
            e.banned_until = None;
            e.last_ban_end = Some(until);
        }
        if let Some(end) = e.last_ban_end {
            if now.saturating_duration_since(end) > REPEAT_MEMORY {
                e.bans = 0;
                e.last_ban_end = None;
            }
        }
        while let Some(&t) = e.failures.front() {
            if now.saturating_duration_since(t) >= policy.window {
                e.failures.pop_front();
            } else {
                break;
            }
        }
        e.failures.push_back(now);
        if e.failures.len() < policy.after as usize {
            return None;
        }
        e.failures.clear();
        let factor = 1u32 << e.bans.min(20);
        let length = policy.ban_for.saturating_mul(factor).min(MAX_BAN);
        e.bans += 1;
        e.banned_until = Some(now + length);
        self.bans_total += 1;
        Some(length)
    }

    /// A successful login forgets the address's failures (not its bans).
    pub fn record_success(&mut self, ip: IpAddr) {
        if let Some(e) = self.entries.get_mut(&ip) {
            e.failures.clear();
        }
    }

    /// Drops entries that carry nothing any more.
    pub fn prune(&mut self, now: Instant) {
        let window = self.policy.window;
        self.entries.retain(|_, e| {
            let banned = e.banned_until.is_some_and(|u| u > now);
            let recent_failure = e
                .failures
                .back()
                .is_some_and(|&t| now.saturating_duration_since(t) < window);
            let remembered = e
                .banned_until
                .or(e.last_ban_end)
                .is_some_and(|end| now.saturating_duration_since(end) <= REPEAT_MEMORY);
            banned || recent_failure || remembered
        });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Failed authentications recorded since start, by every door.
    pub fn failures_total(&self) -> u64 {
        self.failures_total
    }

    /// Bans started since start.
    pub fn bans_total(&self) -> u64 {
        self.bans_total
    }

    /// Addresses banned at `now`.
    pub fn banned_now(&self, now: Instant) -> usize {
        self.entries
            .values()
            .filter(|e| e.banned_until.is_some_and(|u| u > now))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BanPolicy {
        BanPolicy {
            after: 3,
            window: Duration::from_secs(60),
            ban_for: Duration::from_secs(100),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bans_after_n_failures_in_window_and_only_that_address() {
        let t0 = Instant::now();
        let mut b = Bans::new(policy());
        let a = ip("10.0.0.1");
        assert_eq!(b.record_failure(a, t0), None);
        assert_eq!(b.record_failure(a, t0 + Duration::from_secs(1)), None);
        assert_eq!(b.banned(a, t0 + Duration::from_secs(1)), None);
        assert_eq!(
            b.record_failure(a, t0 + Duration::from_secs(2)),
            Some(Duration::from_secs(100))
        );
        assert_eq!(
            b.banned(a, t0 + Duration::from_secs(2)),
            Some(Duration::from_secs(100))
        );
        assert_eq!(b.banned(ip("10.0.0.2"), t0), None);
        assert_eq!(b.banned(ip("::1"), t0 + Duration::from_secs(3)), None);
        // Expires.
        assert_eq!(b.banned(a, t0 + Duration::from_secs(102)), None);
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let t0 = Instant::now();
        let mut b = Bans::new(policy());
        let a = ip("10.0.0.1");
        assert_eq!(b.record_failure(a, t0), None);
        assert_eq!(b.record_failure(a, t0 + Duration::from_secs(30)), None);
        assert_eq!(b.record_failure(a, t0 + Duration::from_secs(61)), None);
        assert_eq!(b.banned(a, t0 + Duration::from_secs(61)), None);
        assert!(b.record_failure(a, t0 + Duration::from_secs(62)).is_some());
    }

    #[test]
    fn repeat_bans_double() {
        let t0 = Instant::now();
        let mut b = Bans::new(policy());
        let a = ip("192.0.2.7");
        let mut now = t0;
        let mut lengths = Vec::new();
        for _ in 0..3 {
            let mut got = None;
            for _ in 0..3 {
                now += Duration::from_secs(1);
                got = b.record_failure(a, now);
            }
            let len = got.expect("banned");
            lengths.push(len.as_secs());
            now += len + Duration::from_secs(1);
            assert_eq!(b.banned(a, now), None);
        }
        assert_eq!(lengths, vec![100, 200, 400]);
    }

    #[test]
    fn success_forgets_failures_and_zero_disables() {
        let t0 = Instant::now();
        let mut b = Bans::new(policy());
        let a = ip("10.0.0.1");
        b.record_failure(a, t0);
        b.record_failure(a, t0);
        b.record_success(a);
        assert_eq!(b.record_failure(a, t0), None);
        let mut off = Bans::new(BanPolicy {
            after: 0,
            ..policy()
        });
        for _ in 0..100 {
            assert_eq!(off.record_failure(a, t0), None);
        }
    }

    /// Bans `a` once at `now` (3 failures a second apart); returns the
    /// ban's length and moves `now` past its end.
    fn ban_once(b: &mut Bans, a: IpAddr, now: &mut Instant) -> Duration {
        let mut got = None;
        for _ in 0..3 {
            *now += Duration::from_secs(1);
            got = b.record_failure(a, *now);
        }
        let len = got.expect("three failures ban");
        *now += len;
        assert_eq!(b.banned(a, *now), None, "the ban is over at its end");
        len
    }

    /// The promise, spelled out (not the constant, which could drift).
    const HOURS_24: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn a_past_ban_is_remembered_for_24_hours_then_forgotten() {
        let mut b = Bans::new(policy());
        let a = ip("198.51.100.4");
        let mut now = Instant::now();
        assert_eq!(ban_once(&mut b, a, &mut now).as_secs(), 100);
        // Back 24 h after the ban ended (to the second): still doubled.
        now += HOURS_24 - Duration::from_secs(3);
        assert_eq!(ban_once(&mut b, a, &mut now).as_secs(), 200, "within 24 h");
        // Back more than 24 h after that ban ended: a first ban again.
        now += HOURS_24 + Duration::from_secs(1);
        assert_eq!(ban_once(&mut b, a, &mut now).as_secs(), 100, "after 24 h");
        // The forgotten history is gone from the table too.
        b.prune(now + HOURS_24 + Duration::from_secs(1));
        assert!(b.is_empty(), "an address 24 h past its last ban is pruned");
    }

    #[test]
    fn prune_keeps_an_address_whose_ban_is_still_remembered() {
        let mut b = Bans::new(policy());
        let a = ip("198.51.100.5");
        let mut now = Instant::now();
        ban_once(&mut b, a, &mut now);
        b.prune(now + HOURS_24 - Duration::from_secs(1));
        assert_eq!(b.len(), 1, "pruned within the 24 h memory");
        now += HOURS_24 - Duration::from_secs(10);
        assert_eq!(ban_once(&mut b, a, &mut now).as_secs(), 200);
    }

    #[test]
    fn bans_double_up_to_seven_days_and_stay_there() {
        let day = Duration::from_secs(24 * 3600);
        let mut b = Bans::new(BanPolicy {
            after: 3,
            window: Duration::from_secs(60),
            ban_for: day,
        });
        let a = ip("203.0.113.9");
        let mut now = Instant::now();
        let lengths: Vec<u64> = (0..6)
            .map(|_| ban_once(&mut b, a, &mut now).as_secs() / 3600)
            .collect();
        // 1, 2, 4 days, then 8 capped to 7, and 7 for every repeat after.
        assert_eq!(lengths, [24, 48, 96, 168, 168, 168], "hours");
    }

    #[test]
    fn prune_keeps_only_live_entries() {
        let t0 = Instant::now();
        let mut b = Bans::new(policy());
        b.record_failure(ip("10.0.0.1"), t0);
        b.prune(t0 + Duration::from_secs(61));
        assert!(b.is_empty());
    }
}
