//! Where the register gets the time from, so tests can set it.

use chrono::{DateTime, NaiveDate, Utc};
use std::sync::Mutex;

/// The source of "now" for every rule and record.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// Today's date in England, which is what dates on a record mean.
    fn today(&self) -> NaiveDate {
        local_date(self.now())
    }
}

/// The calendar date in England at an instant: between midnight and 1 a.m. in summer the UTC
/// date is still yesterday's, and a date of birth or conference "today" must not be refused as
/// in the future.
pub fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&chrono_tz::Europe::London).date_naive()
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stays where it is set: for tests and benchmarks.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        FixedClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn just_after_midnight_in_summer_is_already_today_in_england() {
        let at = Utc
            .with_ymd_and_hms(2026, 7, 1, 23, 30, 0)
            .single()
            .expect("time");
        assert_eq!(
            local_date(at),
            NaiveDate::from_ymd_opt(2026, 7, 2).expect("date")
        );
        let winter = Utc
            .with_ymd_and_hms(2026, 12, 1, 23, 30, 0)
            .single()
            .expect("time");
        assert_eq!(
            local_date(winter),
            NaiveDate::from_ymd_opt(2026, 12, 1).expect("date")
        );
    }
}
