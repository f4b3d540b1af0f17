//! Where each authority's copy stands: the version held (from the store) and the state of the
//! link to its primary (kept in memory by the subscriber and the intake).

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use cpreg_proto::pb;
use cpreg_proto::snapshot::{IntakeError, TrustedState};
use serde::Serialize;

/// One authority's copy, as an operator or the primary sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthorityStatus {
    pub authority: String,
    /// The version held; 0 when nothing is.
    pub version: u64,
    /// When the primary last vouched for the version held (its manifest or a freshness
    /// statement): every answer says "register as of" this.
    pub as_of: Option<DateTime<Utc>>,
    /// Nothing held, or `as_of` is older than the staleness threshold.
    pub stale: bool,
    pub entry_count: u64,
    /// Hex of the held state root (empty when nothing is held).
    pub state_root: String,
    /// Whether a subscription to the primary is open now.
    pub connected: bool,
    /// The last refusal or failure, for the operator; kept after recovery.
    pub last_error: Option<String>,
    /// How many versions, statements or rotations were refused since start.
    pub rejected: u64,
    /// When the primary last sent anything.
    pub last_contact: Option<DateTime<Utc>>,
}

/// What the version held says, without the link: enough for `cpreg-replica status` offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldVersion {
    pub authority: String,
    pub version: u64,
    pub as_of: Option<DateTime<Utc>>,
    pub stale: bool,
    pub entry_count: u64,
    pub state_root: String,
}

impl HeldVersion {
    /// Judges staleness of `held` at `now`.
    pub fn new(
        authority: &str,
        held: &TrustedState,
        now: DateTime<Utc>,
        threshold: chrono::Duration,
    ) -> Self {
        let as_of = (held.version > 0)
            .then(|| DateTime::from_timestamp(held.issued_at, 0))
            .flatten();
        // Stale: nothing held, vouched for too long ago, or the last manifest has expired.
        let expired = held.version > 0 && now.timestamp() >= held.expires_at;
        let stale = expired || as_of.is_none_or(|t| now.signed_duration_since(t) > threshold);
        HeldVersion {
            authority: authority.to_owned(),
            version: held.version,
            as_of,
            stale,
            entry_count: held.entry_count,
            state_root: hex::encode(&held.state_root),
        }
    }

    /// The report sent to the primary with `ReportStatus`. `outbox_backlog` is how many
    /// enquiries wait in the replica's outbox, so the custodian sees one that is not getting
    /// through.
    pub fn to_report(&self, now: DateTime<Utc>, outbox_backlog: u64) -> pb::ReplicaStatus {
        pb::ReplicaStatus {
            site: String::new(),
            version: self.version,
            as_of: self.as_of.map_or(0, |t| t.timestamp()),
            stale: self.stale,
            outbox_backlog,
            last_contact: now.to_rfc3339(),
            state_root: self.state_root.clone(),
        }
    }
}

/// The link's side of [`AuthorityStatus`], shared by an authority's subscriber and intake.
#[derive(Debug, Default)]
pub struct LinkState(Mutex<Link>, std::sync::OnceLock<prometheus::Histogram>);

#[derive(Debug, Default, Clone)]
struct Link {
    connected: bool,
    last_error: Option<String>,
    rejected: u64,
    last_contact: Option<DateTime<Utc>>,
}

impl LinkState {
    fn with<T>(&self, f: impl FnOnce(&mut Link) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn set_connected(&self, connected: bool) {
        self.with(|l| l.connected = connected);
    }

    pub fn contact(&self, at: DateTime<Utc>) {
        self.with(|l| l.last_contact = Some(at));
    }

    /// Counts a refusal: something offered failed a check.
    pub fn refused(&self, error: &IntakeError) {
        self.with(|l| {
            l.rejected += 1;
            l.last_error = Some(error.to_string());
        });
    }

    /// Notes a failure that is not the primary's data: the link or the local store.
    pub fn failed(&self, message: String) {
        self.with(|l| l.last_error = Some(message));
    }

    /// Observes, from now on, how long each version takes to check and apply in `histogram`
    /// (the replica's `cpreg_replica_apply_seconds` for this authority).
    pub fn time_applies(&self, histogram: prometheus::Histogram) {
        let _ = self.1.set(histogram);
    }

    /// Notes how long a version took from its whole payload arriving to its commit.
    pub fn applied(&self, took: std::time::Duration) {
        if let Some(histogram) = self.1.get() {
            histogram.observe(took.as_secs_f64());
        }
    }

    pub fn rejected(&self) -> u64 {
        self.with(|l| l.rejected)
    }

    /// Joins the link's state to the version held.
    pub fn status(&self, held: HeldVersion) -> AuthorityStatus {
        let link = self.with(|l| l.clone());
        AuthorityStatus {
            authority: held.authority,
            version: held.version,
            as_of: held.as_of,
            stale: held.stale,
            entry_count: held.entry_count,
            state_root: held.state_root,
            connected: link.connected,
            last_error: link.last_error,
            rejected: link.rejected,
            last_contact: link.last_contact,
        }
    }
}
