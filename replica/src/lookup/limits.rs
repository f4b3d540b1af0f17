//! Rate limits on lookups, per operator and per site, over a sliding hour: enough for a busy
//! night shift, too few to enumerate the register.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};

/// Recent lookups by key (an operator, or the whole site).
#[derive(Debug, Default)]
pub struct RateLimiter {
    seen: HashMap<String, VecDeque<DateTime<Utc>>>,
}

/// A lookup over a limit: who hit it, and when they may ask again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    pub key: String,
    pub limit: u32,
    pub retry_after: DateTime<Utc>,
}

impl RateLimiter {
    /// Counts a lookup against every key at once, or refuses it against the first key over its
    /// limit (a limit of 0 is no limit). A refused lookup is not counted.
    pub fn admit(&mut self, keys: &[(&str, u32)], now: DateTime<Utc>) -> Result<(), Limited> {
        let window = Duration::hours(1);
        for (key, limit) in keys {
            if *limit == 0 {
                continue;
            }
            let times = self.seen.entry((*key).to_owned()).or_default();
            while times.front().is_some_and(|t| now - *t >= window) {
                times.pop_front();
            }
            if times.len() as u32 >= *limit {
                let oldest = times.front().copied().unwrap_or(now);
                return Err(Limited {
                    key: (*key).to_owned(),
                    limit: *limit,
                    retry_after: oldest + window,
                });
            }
        }
        for (key, limit) in keys {
            if *limit > 0 {
                self.seen
                    .entry((*key).to_owned())
                    .or_default()
                    .push_back(now);
            }
        }
        Ok(())
    }
}

/// Lookups that found nothing or were refused, per operator, over ten minutes: a run of them
/// looks like someone trying to list the register rather than asking about one child.
#[derive(Debug, Default)]
pub struct PatternWatch {
    misses: HashMap<String, VecDeque<DateTime<Utc>>>,
}

/// Misses in the window that raise an alert.
pub const MISSES_FOR_ALERT: usize = 5;

impl PatternWatch {
    /// Notes one lookup; returns an alert when the operator's misses reach the threshold.
    pub fn note(&mut self, operator: &str, missed: bool, now: DateTime<Utc>) -> Option<String> {
        let window = Duration::minutes(10);
        let times = self.misses.entry(operator.to_owned()).or_default();
        while times.front().is_some_and(|t| now - *t >= window) {
            times.pop_front();
        }
        if !missed {
            return None;
        }
        times.push_back(now);
        (times.len() >= MISSES_FOR_ALERT).then(|| {
            format!(
                "possible enumeration: {} lookups by {operator} in 10 minutes found no record or were refused",
                times.len()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operator_over_the_hourly_limit_waits_and_others_do_not() {
        let mut limiter = RateLimiter::default();
        let t0 = DateTime::parse_from_rfc3339("2026-11-22T03:00:00Z")
            .expect("time")
            .to_utc();
        for i in 0..3 {
            limiter
                .admit(&[("op:a", 3), ("site", 100)], t0 + Duration::minutes(i))
                .expect("within the limit");
        }
        let refused = limiter
            .admit(&[("op:a", 3), ("site", 100)], t0 + Duration::minutes(5))
            .expect_err("over");
        assert_eq!(refused.retry_after, t0 + Duration::hours(1));
        limiter
            .admit(&[("op:b", 3), ("site", 100)], t0 + Duration::minutes(5))
            .expect("another operator");
        limiter
            .admit(&[("op:a", 3), ("site", 100)], t0 + Duration::minutes(61))
            .expect("an hour on");
        limiter
            .admit(&[("op:c", 0), ("site", 0)], t0)
            .expect("0 lifts the limit");
    }

    #[test]
    fn a_run_of_misses_by_one_operator_raises_an_alert() {
        let mut watch = PatternWatch::default();
        let t0 = DateTime::parse_from_rfc3339("2026-11-22T03:00:00Z")
            .expect("time")
            .to_utc();
        for i in 0..4 {
            assert_eq!(watch.note("op:a", true, t0 + Duration::minutes(i)), None);
        }
        assert!(
            watch.note("op:b", true, t0).is_none(),
            "another operator's misses are their own"
        );
        assert!(
            watch
                .note("op:a", true, t0 + Duration::minutes(5))
                .is_some()
        );
        assert!(
            watch
                .note("op:a", true, t0 + Duration::minutes(30))
                .is_none(),
            "an old run is forgotten"
        );
    }
}
