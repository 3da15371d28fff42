//! The scheduler's time (docs/behaviour.md#the-scheduler): when the next sweep is due. The
//! cron expression is read in UTC. The daemon sleeps on tokio's clock, so a
//! test that pauses time drives the schedule without waiting; [`Clock`]
//! turns tokio's clock into wall time for the cron arithmetic. This module
//! must never sweep or sleep itself.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Wall time that moves with tokio's (pausable) clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    wall: DateTime<Utc>,
    at: tokio::time::Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            wall: Utc::now(),
            at: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.at);
        self.wall + chrono::Duration::from_std(elapsed).unwrap_or_default()
    }
}

/// How long from `now` until the schedule's next tick (at least 1 ms, so a
/// tick at `now` itself is not taken twice).
pub fn until_next(schedule: &cron::Schedule, now: DateTime<Utc>) -> Option<Duration> {
    let next = schedule.after(&now).next()?;
    Some(
        (next - now)
            .to_std()
            .unwrap_or_default()
            .max(Duration::from_millis(1)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn every_five_minutes_means_the_next_multiple_of_five() {
        let s = cron::Schedule::from_str("0 */5 * * * *").unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-21T10:03:30Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(until_next(&s, now), Some(Duration::from_secs(90)));
        let at_tick = DateTime::parse_from_rfc3339("2026-11-21T10:05:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(until_next(&s, at_tick), Some(Duration::from_secs(300)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_clock_follows_paused_time() {
        let c = Clock::start();
        let a = c.now();
        tokio::time::advance(Duration::from_secs(300)).await;
        assert_eq!((c.now() - a).num_seconds(), 300);
    }
}
