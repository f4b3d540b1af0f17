//! Signed-in sessions and sign-in lockouts, in memory only (a restart signs everyone out, which
//! is the safe way round). Times are monotonic: moving the wall clock neither ends nor extends
//! a session.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// No session outlives this, however busy: a shift.
const LONGEST_SESSION: Duration = Duration::from_secs(12 * 3600);
/// Sessions held at once, beyond which the oldest are ended.
const MOST_SESSIONS: usize = 1_000;

/// 256 random bits, hex: a session id or a form token.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The OS random source failing is not something a console can carry on without.
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    hex::encode(bytes)
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// One signed-in operator.
#[derive(Debug, Clone)]
pub struct Session {
    pub operator: String,
    pub role: String,
    /// Every form of the session carries this; a POST without it is refused.
    pub csrf: String,
    started: Instant,
    last_seen: Instant,
}

/// The sessions open now.
#[derive(Debug)]
pub struct Sessions {
    idle: Duration,
    open: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(idle: Duration) -> Self {
        Sessions {
            idle,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session and returns its id.
    pub fn open(&self, operator: &str, role: &str) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        self.sweep(&mut open, now);
        if open.len() >= MOST_SESSIONS
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
        {
            open.remove(&oldest);
        }
        open.insert(
            id.clone(),
            Session {
                operator: operator.to_owned(),
                role: role.to_owned(),
                csrf: random_token(),
                started: now,
                last_seen: now,
            },
        );
        id
    }

    /// The session with this id, if it is still open; using it keeps it open.
    pub fn touch(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        self.sweep(&mut open, now);
        let session = open.get_mut(id)?;
        session.last_seen = now;
        Some(session.clone())
    }

    pub fn close(&self, id: &str) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Ends every session of `operator` (an account removed).
    pub fn close_operator(&self, operator: &str) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, s| s.operator != operator);
    }

    fn sweep(&self, open: &mut HashMap<String, Session>, now: Instant) {
        open.retain(|_, s| {
            now.duration_since(s.last_seen) <= self.idle
                && now.duration_since(s.started) <= LONGEST_SESSION
        });
    }
}

/// Failed sign-ins counted against one account or one address.
#[derive(Debug, Default, Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// Why a sign-in was not even tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    /// How long until another attempt is allowed.
    pub remaining: Duration,
}

/// Locks an account, and the address the attempts came from, after repeated failures.
#[derive(Debug)]
pub struct Lockout {
    attempts: u32,
    period: Duration,
    failures: Mutex<HashMap<String, Failures>>,
}

impl Lockout {
    pub fn new(attempts: u32, period: Duration) -> Self {
        Lockout {
            attempts,
            period,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(operator: &str, address: IpAddr) -> [String; 2] {
        [format!("operator:{operator}"), format!("address:{address}")]
    }

    /// Refuses when the account or the address is locked now.
    pub fn check(&self, operator: &str, address: IpAddr) -> Result<(), Locked> {
        let now = Instant::now();
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let remaining = Self::keys(operator, address)
            .iter()
            .filter_map(|k| failures.get(k)?.locked_until)
            .filter(|until| *until > now)
            .map(|until| until - now)
            .max();
        match remaining {
            Some(remaining) => Err(Locked { remaining }),
            None => Ok(()),
        }
    }

    /// Counts a failure; returns how many attempts are left before a lock (0: locked now).
    pub fn failed(&self, operator: &str, address: IpAddr) -> u32 {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() > 10_000 {
            failures.retain(|_, f| f.locked_until.is_some_and(|u| u > now));
        }
        let mut left = self.attempts;
        for key in Self::keys(operator, address) {
            let entry = failures.entry(key).or_default();
            if entry.locked_until.is_some_and(|u| u <= now) {
                *entry = Failures::default();
            }
            entry.count += 1;
            if entry.count >= self.attempts {
                entry.locked_until = Some(now + self.period);
            }
            left = left.min(self.attempts.saturating_sub(entry.count));
        }
        left
    }

    /// A successful sign-in clears the account's and the address's count.
    pub fn succeeded(&self, operator: &str, address: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for key in Self::keys(operator, address) {
            failures.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_lock_the_account_and_the_address() {
        let lockout = Lockout::new(3, Duration::from_secs(60));
        let here: IpAddr = "192.0.2.7".parse().expect("ip");
        let there: IpAddr = "192.0.2.8".parse().expect("ip");
        assert_eq!(lockout.failed("duty", here), 2);
        assert_eq!(lockout.failed("duty", here), 1);
        assert!(lockout.check("duty", here).is_ok());
        assert_eq!(lockout.failed("duty", here), 0);
        assert!(lockout.check("duty", here).is_err());
        // The account is locked from anywhere, and the address for any account.
        assert!(lockout.check("duty", there).is_err());
        assert!(lockout.check("nurse", here).is_err());
        assert!(lockout.check("nurse", there).is_ok());
    }

    #[test]
    fn a_session_is_found_by_its_id_until_closed() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let id = sessions.open("duty", "EDT duty worker");
        assert_eq!(id.len(), 64);
        let session = sessions.touch(&id).expect("open");
        assert_eq!(session.operator, "duty");
        assert_eq!(session.csrf.len(), 64);
        assert!(sessions.touch("not-an-id").is_none());
        sessions.close(&id);
        assert!(sessions.touch(&id).is_none());
        assert!(same_token("abc", "abc") && !same_token("abc", "abd") && !same_token("a", "ab"));
    }

    #[test]
    fn an_idle_session_ends() {
        let sessions = Sessions::new(Duration::from_millis(1));
        let id = sessions.open("duty", "EDT duty worker");
        std::thread::sleep(Duration::from_millis(10));
        assert!(sessions.touch(&id).is_none());
    }
}
