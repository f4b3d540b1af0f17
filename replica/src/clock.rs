//! Where the replica gets the time from, so tests can move it to test expiry and staleness.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// The source of "now" for manifest expiry and staleness.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stays where it is set. Clones share the time, so a test keeps one clone and
/// hands another to the replica.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<Mutex<DateTime<Utc>>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        FixedClock(Arc::new(Mutex::new(at)))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
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

    #[test]
    fn clones_of_a_fixed_clock_move_together() {
        let clock = FixedClock::new(DateTime::from_timestamp(1_000, 0).expect("time"));
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        clock.advance(chrono::Duration::seconds(5));
        assert_eq!(shared.now().timestamp(), 1_005);
        clock.set(DateTime::from_timestamp(7, 0).expect("time"));
        assert_eq!(shared.now().timestamp(), 7);
    }
}
