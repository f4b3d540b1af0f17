//! What keeps the register from being listed through lookups: hourly limits per operator,
//! terminal and site, enough for a busy night shift and too few to enumerate the register; and a
//! watch that reports runs of fruitless lookups, many operator names at one terminal, and
//! sweeps ([`sweep`]), which it also refuses for a while.
//!
//! An operator's name is free text typed at the terminal; the terminal is certain (its
//! certificate, or the duty console). So everything an operator is limited or watched for, the
//! terminal is too, whatever names are typed at it.

pub mod sweep;

use std::collections::{HashMap, VecDeque};
use std::fmt;

use chrono::{DateTime, Duration, Utc};
use cpreg_proto::pb;

pub use sweep::{Part, Swept};

/// Who asked, as the limits and the watch count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asker<'a> {
    /// The terminal's name: its certificate's holder, or the duty console.
    pub terminal: &'a str,
    /// The operator's name as typed (or the duty worker's, or the console account's).
    pub operator: &'a str,
}

impl fmt::Display for Asker<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.operator, self.terminal)
    }
}

/// Recent lookups by key (an operator, a terminal, or the whole site).
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

/// Keys the rate limiter holds before it drops those with nothing in the last hour: operator
/// names are free text, so someone typing new ones must not grow the map for ever.
const KEYS_BEFORE_FORGETTING: usize = 4_096;

impl RateLimiter {
    /// Counts a lookup against every key at once, or refuses it against the first key over its
    /// limit (a limit of 0 is no limit). A refused lookup is not counted.
    pub fn admit(&mut self, keys: &[(&str, u32)], now: DateTime<Utc>) -> Result<(), Limited> {
        let window = Duration::hours(1);
        for (key, limit) in keys {
            if *limit == 0 {
                continue;
            }
            // Looked up, not inserted: a refused lookup under a new name leaves nothing behind.
            let Some(times) = self.seen.get_mut(*key) else {
                continue;
            };
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
        if self.seen.len() > KEYS_BEFORE_FORGETTING {
            self.seen
                .retain(|_, times| times.back().is_some_and(|t| now - *t < window));
        }
        Ok(())
    }
}

/// Fruitless lookups (no record found, or refused) by one operator within
/// [`MISS_WINDOW_MINUTES`] that raise an alert: a clinician seldom asks about five children in
/// ten minutes and finds none of them, and someone guessing names and dates does little else.
pub const MISSES_FOR_ALERT: usize = 5;

/// Fruitless lookups at one terminal, by more than one operator name, within
/// [`MISS_WINDOW_MINUTES`] that raise an alert. Higher than one operator's, because a shared A&E
/// workstation serves several clinicians whose lookups mostly (rightly) find no record; low
/// enough that typing a new name before the fifth miss buys only three more.
pub const TERMINAL_MISSES_FOR_ALERT: usize = 8;

/// The window for misses.
pub const MISS_WINDOW_MINUTES: i64 = 10;

/// Different operator names at one terminal within [`NAMES_WINDOW_MINUTES`] that raise an
/// alert. A workstation changes hands at handover and between patients, two or three
/// clinicians in half an hour; five names is more like one person typing new ones to get round
/// the per-operator limit and alerts.
pub const OPERATOR_NAMES_FOR_ALERT: usize = 5;

/// The window for operator names.
pub const NAMES_WINDOW_MINUTES: i64 = 30;

/// Operator names listed in an alert; more are counted.
const NAMES_LISTED: usize = 6;

/// Watches lookups for the patterns of someone listing the register rather than asking about a
/// child, and says so in an alert that travels with the enquiry to the primary.
#[derive(Debug, Default)]
pub struct PatternWatch {
    /// Misses by each operator name at each terminal (terminal, operator).
    operator_misses: HashMap<(String, String), Run<()>>,
    /// Misses at each terminal, with the operator name each was made under.
    terminal_misses: HashMap<String, Run<String>>,
    /// When each operator name was last used at each terminal.
    names: HashMap<String, HashMap<String, DateTime<Utc>>>,
    /// Recent queries per terminal, and sweeps held.
    sweeps: sweep::Sweeps,
    /// Lookups noted since the maps were last cleared of idle keys.
    noted: usize,
}

impl PatternWatch {
    /// Notes one lookup by `asker`, answered or refused; returns an alert when the operator's
    /// misses, the terminal's misses or the operator names at the terminal reach their
    /// thresholds.
    pub fn note(&mut self, asker: Asker<'_>, missed: bool, now: DateTime<Utc>) -> Option<String> {
        self.forget_idle(now);
        let alerts = [
            self.note_name(asker, now),
            self.note_operator_miss(asker, missed, now),
            self.note_terminal_miss(asker, missed, now),
        ];
        joined(alerts)
    }

    /// Refuses a lookup by `asker` about `query` that makes or continues a sweep at the
    /// terminal, holding the lookups that continue it for `hold` (zero: no sweeps looked for).
    pub fn sweep(
        &mut self,
        asker: Asker<'_>,
        query: &pb::ChildQuery,
        hold: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), Swept> {
        self.sweeps.check(asker, query, hold, now)
    }

    fn note_name(&mut self, asker: Asker<'_>, now: DateTime<Utc>) -> Option<String> {
        let window = Duration::minutes(NAMES_WINDOW_MINUTES);
        let names = self.names.entry(asker.terminal.to_owned()).or_default();
        names.retain(|_, last| now - *last < window);
        let new = names.insert(asker.operator.to_owned(), now).is_none();
        (new && due(names.len(), OPERATOR_NAMES_FOR_ALERT)).then(|| {
            let mut typed: Vec<&str> = names.keys().map(String::as_str).collect();
            typed.sort_unstable();
            format!(
                "possible enumeration: {} operator names typed at terminal {} within {NAMES_WINDOW_MINUTES} minutes ({})",
                names.len(),
                asker.terminal,
                listed(&typed)
            )
        })
    }

    fn note_operator_miss(
        &mut self,
        asker: Asker<'_>,
        missed: bool,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let window = Duration::minutes(MISS_WINDOW_MINUTES);
        let key = (asker.terminal.to_owned(), asker.operator.to_owned());
        let run = self.operator_misses.entry(key).or_default();
        run.forget_before(now - window);
        if !missed {
            return None;
        }
        run.push(now, ());
        run.alert(MISSES_FOR_ALERT).then(|| {
            format!(
                "possible enumeration: {} lookups by {asker} in {MISS_WINDOW_MINUTES} minutes found no record or were refused",
                run.recent.len()
            )
        })
    }

    fn note_terminal_miss(
        &mut self,
        asker: Asker<'_>,
        missed: bool,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let window = Duration::minutes(MISS_WINDOW_MINUTES);
        let run = self
            .terminal_misses
            .entry(asker.terminal.to_owned())
            .or_default();
        run.forget_before(now - window);
        if !missed {
            return None;
        }
        run.push(now, asker.operator.to_owned());
        let operators = |run: &Run<String>| {
            let mut operators: Vec<String> = run.recent.iter().map(|(_, o)| o.clone()).collect();
            operators.sort_unstable();
            operators.dedup();
            operators
        };
        // One name alone is the operator's own run, alerted above.
        if operators(run).len() < 2 || !run.alert(TERMINAL_MISSES_FOR_ALERT) {
            return None;
        }
        let operators = operators(run);
        Some(format!(
            "possible enumeration: {} lookups at terminal {} in {MISS_WINDOW_MINUTES} minutes, under {} operator names ({}), found no record or were refused",
            run.recent.len(),
            asker.terminal,
            operators.len(),
            listed(&operators)
        ))
    }

    /// Now and then, drops terminals and operators with nothing recent, so that names typed
    /// once are not kept for ever.
    fn forget_idle(&mut self, now: DateTime<Utc>) {
        self.noted += 1;
        if self.noted < 1_000 {
            return;
        }
        self.noted = 0;
        let misses = Duration::minutes(MISS_WINDOW_MINUTES);
        let names = Duration::minutes(NAMES_WINDOW_MINUTES);
        self.operator_misses
            .retain(|_, run| run.last().is_some_and(|t| now - t < misses));
        self.terminal_misses
            .retain(|_, run| run.last().is_some_and(|t| now - t < misses));
        self.names.retain(|_, typed| {
            typed.retain(|_, last| now - *last < names);
            !typed.is_empty()
        });
        self.sweeps.forget_before(now);
    }
}

/// An alert a refusal carries to its enquiry: set as the refusal's source, which is never sent
/// to the terminal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Alert(pub String);

impl Alert {
    /// The alert `status` carries, if any.
    pub fn carried_by(status: &tonic::Status) -> Option<String> {
        std::error::Error::source(status)
            .and_then(|source| source.downcast_ref::<Alert>())
            .map(|alert| alert.0.clone())
    }
}

/// Alerts raised together, as one.
pub fn joined(alerts: impl IntoIterator<Item = Option<String>>) -> Option<String> {
    let alerts: Vec<String> = alerts.into_iter().flatten().collect();
    (!alerts.is_empty()).then(|| alerts.join("; "))
}

/// "Dr A, Dr B and 3 more".
fn listed<S: AsRef<str>>(names: &[S]) -> String {
    let shown: Vec<&str> = names.iter().take(NAMES_LISTED).map(AsRef::as_ref).collect();
    match names.len().saturating_sub(NAMES_LISTED) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// Whether `count` is due an alert: at `threshold`, then at every further `threshold`, so that
/// something that goes on is reported as it goes without an alert for every lookup (each
/// becomes an alert for the custodian at the primary).
fn due(count: usize, threshold: usize) -> bool {
    count >= threshold && (count - threshold).is_multiple_of(threshold)
}

/// Misses within a sliding window, and the run they belong to: every miss since the window was
/// last empty. A run is alerted when the window first holds `threshold` misses, then at every
/// further `threshold` misses of the run, even if the window never holds that many again (a
/// steady nine in ten minutes is reported every five, not once).
#[derive(Debug)]
struct Run<T> {
    recent: VecDeque<(DateTime<Utc>, T)>,
    length: usize,
    /// The run's length at its last alert.
    alerted_at: Option<usize>,
}

impl<T> Default for Run<T> {
    fn default() -> Self {
        Run {
            recent: VecDeque::new(),
            length: 0,
            alerted_at: None,
        }
    }
}

impl<T> Run<T> {
    fn forget_before(&mut self, start: DateTime<Utc>) {
        while self.recent.front().is_some_and(|(t, _)| *t <= start) {
            self.recent.pop_front();
        }
        if self.recent.is_empty() {
            self.length = 0;
            self.alerted_at = None;
        }
    }

    fn push(&mut self, at: DateTime<Utc>, item: T) {
        self.recent.push_back((at, item));
        self.length += 1;
    }

    fn last(&self) -> Option<DateTime<Utc>> {
        self.recent.back().map(|(t, _)| *t)
    }

    /// Whether this miss is due an alert; if so, it is counted as alerted.
    fn alert(&mut self, threshold: usize) -> bool {
        let due = self.recent.len() >= threshold
            && self
                .alerted_at
                .is_none_or(|at| self.length >= at + threshold);
        if due {
            self.alerted_at = Some(self.length);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T03:00:00Z")
            .expect("time")
            .to_utc()
    }

    fn at<'a>(terminal: &'a str, operator: &'a str) -> Asker<'a> {
        Asker { terminal, operator }
    }

    #[test]
    fn an_operator_over_the_hourly_limit_waits_and_others_do_not() {
        let mut limiter = RateLimiter::default();
        for i in 0..3 {
            limiter
                .admit(&[("op:a", 3), ("site", 100)], t0() + Duration::minutes(i))
                .expect("within the limit");
        }
        let refused = limiter
            .admit(&[("op:a", 3), ("site", 100)], t0() + Duration::minutes(5))
            .expect_err("over");
        assert_eq!(refused.retry_after, t0() + Duration::hours(1));
        limiter
            .admit(&[("op:b", 3), ("site", 100)], t0() + Duration::minutes(5))
            .expect("another operator");
        limiter
            .admit(&[("op:a", 3), ("site", 100)], t0() + Duration::minutes(61))
            .expect("an hour on");
        limiter
            .admit(&[("op:c", 0), ("site", 0)], t0())
            .expect("0 lifts the limit");
    }

    #[test]
    fn new_operator_names_at_one_terminal_stop_at_the_terminal_limit() {
        let mut limiter = RateLimiter::default();
        let limits = |operator: &'static str| [(operator, 60), ("terminal:ws1", 4), ("site", 100)];
        for (i, operator) in ["op:a", "op:b", "op:c", "op:d"].into_iter().enumerate() {
            limiter
                .admit(&limits(operator), t0() + Duration::minutes(i as i64))
                .expect("within the terminal's limit");
        }
        let refused = limiter
            .admit(&limits("op:e"), t0() + Duration::minutes(5))
            .expect_err("a fifth name is still the same terminal");
        assert_eq!(refused.key, "terminal:ws1");
        limiter
            .admit(
                &[("op:e", 60), ("terminal:ws2", 4), ("site", 100)],
                t0() + Duration::minutes(5),
            )
            .expect("another terminal");
    }

    #[test]
    fn a_run_of_misses_by_one_operator_raises_an_alert() {
        let mut watch = PatternWatch::default();
        for i in 0..4 {
            assert_eq!(
                watch.note(at("ws1", "a"), true, t0() + Duration::minutes(i)),
                None
            );
        }
        assert!(
            watch.note(at("ws1", "b"), true, t0()).is_none(),
            "another operator's misses are their own"
        );
        let alert = watch
            .note(at("ws1", "a"), true, t0() + Duration::minutes(5))
            .expect("fifth miss");
        assert!(alert.contains("5 lookups by a at ws1"), "{alert}");
        // A run that goes on is reported at every fifth miss, not at each (a's seventh is also
        // the terminal's eighth, under two names: that alert is the terminal's own).
        let more: Vec<bool> = (6..=15)
            .map(|i| {
                watch
                    .note(at("ws1", "a"), true, t0() + Duration::seconds(300 + i))
                    .is_some()
            })
            .collect();
        assert_eq!(
            more,
            [
                false, true, false, false, true, false, false, false, false, true
            ]
        );
        assert!(
            watch
                .note(at("ws1", "a"), true, t0() + Duration::minutes(30))
                .is_none(),
            "an old run is forgotten"
        );
    }

    #[test]
    fn a_steady_run_of_misses_below_two_windows_worth_is_reported_every_fifth_miss() {
        let mut watch = PatternWatch::default();
        // One miss every 70 s for 35 minutes: never ten in a window, 30 misses in the run.
        let alerted: Vec<usize> = (1..=30)
            .filter(|&i| {
                watch
                    .note(
                        at("ws1", "a"),
                        true,
                        t0() + Duration::seconds(70 * i as i64),
                    )
                    .is_some()
            })
            .collect();
        assert_eq!(alerted, [5, 10, 15, 20, 25, 30]);
    }

    #[test]
    fn misses_under_several_names_at_one_terminal_raise_an_alert() {
        let mut watch = PatternWatch::default();
        // Four names, two misses each: no operator reaches five, the terminal reaches eight.
        let mut alerts = Vec::new();
        for i in 0..8 {
            let name = ["a", "b", "c", "d"][i % 4];
            alerts.push(watch.note(at("ws1", name), true, t0() + Duration::seconds(i as i64)));
        }
        assert!(alerts[..7].iter().all(Option::is_none), "{alerts:?}");
        let alert = alerts[7].as_deref().expect("eighth miss at the terminal");
        assert!(
            alert.contains("8 lookups at terminal ws1") && alert.contains("under 4 operator names"),
            "{alert}"
        );
        // Answered lookups are no misses, and another terminal's are its own.
        let mut other = PatternWatch::default();
        for i in 0..8 {
            let name = ["a", "b", "c", "d"][i % 4];
            assert!(other.note(at("ws2", name), false, t0()).is_none());
        }
    }

    #[test]
    fn many_operator_names_at_one_terminal_raise_an_alert() {
        let mut watch = PatternWatch::default();
        for (i, name) in ["a", "b", "c", "d"].into_iter().enumerate() {
            let minute = Duration::minutes(i as i64);
            assert!(watch.note(at("ws1", name), false, t0() + minute).is_none());
            assert!(
                watch.note(at("ws1", name), false, t0() + minute).is_none(),
                "a name used again is not new"
            );
        }
        assert!(watch.note(at("ws2", "e"), false, t0()).is_none());
        let alert = watch
            .note(at("ws1", "e"), false, t0() + Duration::minutes(5))
            .expect("a fifth name in half an hour");
        assert!(
            alert.contains("5 operator names typed at terminal ws1")
                && alert.contains("a, b, c, d, e"),
            "{alert}"
        );
        assert!(
            watch
                .note(at("ws1", "f"), false, t0() + Duration::minutes(45))
                .is_none(),
            "names from more than half an hour ago are forgotten"
        );
    }

    #[test]
    fn a_refusal_carries_its_alert_and_alerts_are_joined() {
        let mut status = tonic::Status::resource_exhausted("refused");
        assert_eq!(Alert::carried_by(&status), None);
        status.set_source(std::sync::Arc::new(Alert("a sweep".into())));
        assert_eq!(Alert::carried_by(&status).as_deref(), Some("a sweep"));
        assert_eq!(
            joined([None, Some("one".into()), Some("two".into())]).as_deref(),
            Some("one; two")
        );
        assert_eq!(joined([None, None]), None);
        assert_eq!(listed(&["a"; 8]), "a, a, a, a, a, a and 2 more");
    }
}
