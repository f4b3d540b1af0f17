//! Every enquiry the replica answers, refuses or holds for a call-back, kept durably with an
//! outbox entry in the same transaction, before any answer leaves (DESIGN sections 5 and 6).
//! The outbox is what the reporter sends to the primary; an enquiry stays in it until the
//! primary has acknowledged it.

use chrono::{DateTime, Utc};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// Every enquiry by reference, as JSON of [`Enquiry`].
pub(super) const ENQUIRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("enquiries");
/// Enquiries (by reference) not yet acknowledged by their primary, in the order recorded.
pub(super) const OUTBOX: TableDefinition<u64, &str> = TableDefinition::new("enquiry_outbox");
/// Answered enquiries by the child they found: (authority/record id, reference) to the unix
/// time of the enquiry, so an answer can say how often the child was asked about recently.
pub(super) const BY_CHILD: TableDefinition<(&str, &str), i64> =
    TableDefinition::new("enquiries_by_child");
/// The last enquiry number handed out, per day: references are `SITE-YYYYMMDD-NNNNNN`.
pub(super) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("enquiry_counters");

/// Enquiries removed by retention in one commit.
const PURGE_PER_COMMIT: usize = 500;

/// Only the time of a stored enquiry, read without building the rest.
#[derive(Deserialize)]
struct When {
    at: DateTime<Utc>,
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        authority: String::new(),
        message: e.to_string(),
    })
}

/// A fingerprint of a stored value, to tell whether it changed between two transactions.
fn digest(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// How the enquirer reached the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "path", rename_all = "kebab-case")]
pub enum EnquiryPath {
    /// A registered terminal of a listed organisation at the site.
    Terminal {
        terminal: String,
        organisation: String,
        operator: String,
        operator_role: String,
    },
    /// A phone enquiry taken by a duty worker and verified by calling the directory's number.
    Callback {
        duty_worker: String,
        enquirer: String,
        enquirer_role: String,
        organisation_id: String,
        number_given: String,
        callback_number: String,
    },
}

/// Where an enquiry stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum EnquiryState {
    /// Refused before any search (too little detail, rate limit, unknown organisation...).
    Refused { why: String },
    /// Waiting for the duty worker to call the directory's number back.
    AwaitingCallback { expires_at: DateTime<Utc> },
    /// The call-back failed, was abandoned or expired: nothing was released.
    CallbackFailed { outcome: String, at: DateTime<Utc> },
    /// Answered: what the enquirer was told.
    Answered {
        outcome: String,
        record_ids: Vec<String>,
        authorities: Vec<String>,
        advice: String,
    },
}

/// One enquiry, as recorded and reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enquiry {
    pub reference: String,
    pub at: DateTime<Utc>,
    pub site: String,
    pub path: EnquiryPath,
    /// Why the enquirer suspects significant harm.
    pub reason: String,
    /// What was searched, as given.
    pub searched: serde_json::Value,
    /// The query itself (hex of the encoded `ChildQuery`), for a search run after a call-back.
    #[serde(default)]
    pub query: String,
    pub state: EnquiryState,
    /// Set when the lookups around this one look like someone listing the register.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Every change of state, oldest first, so the record shows how it got here.
    pub history: Vec<(DateTime<Utc>, String)>,
}

impl Store {
    /// The next reference for `site` on the day of `at`.
    fn next_reference(
        txn: &redb::WriteTransaction,
        site: &str,
        at: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let day = at.format("%Y%m%d").to_string();
        let mut counters = txn.open_table(COUNTERS)?;
        let next = counters.get(day.as_str())?.map_or(0, |v| v.value()) + 1;
        counters.insert(day.as_str(), next)?;
        Ok(format!("{}-{day}-{next:06}", site.to_ascii_uppercase()))
    }

    /// Records a new enquiry and queues it for the primary, in one transaction; returns it with
    /// its reference. Nothing may be answered before this returns.
    pub fn record_enquiry(&self, enquiry: Enquiry) -> Result<Enquiry, StoreError> {
        let mut recorded = self.record_enquiries(vec![enquiry])?;
        Ok(recorded.remove(0))
    }

    /// Records several new enquiries and their outbox entries in one transaction (one commit,
    /// one sync to disk), in the order given; returns them with their references.
    pub fn record_enquiries(&self, enquiries: Vec<Enquiry>) -> Result<Vec<Enquiry>, StoreError> {
        let txn = self.write()?;
        let mut recorded = Vec::with_capacity(enquiries.len());
        for mut enquiry in enquiries {
            enquiry.reference = Self::next_reference(&txn, &enquiry.site, enquiry.at)?;
            enquiry
                .history
                .push((enquiry.at, state_word(&enquiry.state)));
            write_and_queue(&txn, &enquiry)?;
            recorded.push(enquiry);
        }
        txn.commit()?;
        Ok(recorded)
    }

    /// Moves an enquiry to a new state (a call-back confirmed, failed or expired) and queues it
    /// again, so the primary hears how it ended.
    pub fn update_enquiry(
        &self,
        reference: &str,
        state: EnquiryState,
        at: DateTime<Utc>,
    ) -> Result<Option<Enquiry>, StoreError> {
        let txn = self.write()?;
        let found = {
            let table = txn.open_table(ENQUIRIES)?;
            let value = table.get(reference)?;
            value.map(|v| serde_json::from_slice::<Enquiry>(v.value()))
        };
        let Some(found) = found else {
            txn.abort()?;
            return Ok(None);
        };
        let mut enquiry = found.map_err(|e| StoreError::Corrupt {
            authority: String::new(),
            message: e.to_string(),
        })?;
        enquiry.history.push((at, state_word(&state)));
        enquiry.state = state;
        write_and_queue(&txn, &enquiry)?;
        txn.commit()?;
        Ok(Some(enquiry))
    }

    pub fn enquiry(&self, reference: &str) -> Result<Option<Enquiry>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(ENQUIRIES)?;
        let value = table.get(reference)?;
        value
            .map(|v| serde_json::from_slice(v.value()))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                authority: String::new(),
                message: e.to_string(),
            })
    }

    /// The references of the answered enquiries at this site that found this child since
    /// `since`.
    pub fn recent_enquiries(
        &self,
        authority: &str,
        record_id: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(BY_CHILD)?;
        let child = format!("{authority}/{record_id}");
        let mut found = Vec::new();
        for row in table.range((child.as_str(), "")..=(child.as_str(), "\u{10ffff}"))? {
            let (key, at) = row?;
            if at.value() >= since.timestamp() {
                found.push(key.value().1.to_owned());
            }
        }
        Ok(found)
    }

    /// How many enquiries this replica has on record.
    pub fn enquiries_recorded(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        Ok(txn.open_table(ENQUIRIES)?.len()?)
    }

    /// How many enquiries this replica holds, by how they stand: `refused`,
    /// `awaiting-callback`, `callback-failed`, or the answer's outcome (`match`, `possible`,
    /// `no_record`). Read for the metrics; retention bounds how many there are.
    pub fn enquiries_by_outcome(
        &self,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let txn = self.read()?;
        let mut counts = std::collections::BTreeMap::new();
        for row in txn.open_table(ENQUIRIES)?.iter()? {
            let (_, value) = row?;
            let enquiry: Enquiry =
                serde_json::from_slice(value.value()).map_err(|e| StoreError::Corrupt {
                    authority: String::new(),
                    message: e.to_string(),
                })?;
            let outcome = match enquiry.state {
                EnquiryState::Refused { .. } => "refused".to_owned(),
                EnquiryState::AwaitingCallback { .. } => "awaiting-callback".to_owned(),
                EnquiryState::CallbackFailed { .. } => "callback-failed".to_owned(),
                EnquiryState::Answered { outcome, .. } => outcome,
            };
            *counts.entry(outcome).or_insert(0) += 1;
        }
        Ok(counts)
    }

    /// How many enquiries wait to reach their primary.
    pub fn outbox_backlog(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        Ok(txn.open_table(OUTBOX)?.len()?)
    }

    /// The oldest `limit` enquiries waiting for their primary, with their outbox positions.
    pub fn outbox(&self, limit: usize) -> Result<Vec<(u64, Enquiry)>, StoreError> {
        let txn = self.read()?;
        let outbox = txn.open_table(OUTBOX)?;
        let enquiries = txn.open_table(ENQUIRIES)?;
        let mut out = Vec::new();
        for row in outbox.iter()?.take(limit) {
            let (position, reference) = row?;
            if let Some(value) = enquiries.get(reference.value())? {
                let enquiry =
                    serde_json::from_slice(value.value()).map_err(|e| StoreError::Corrupt {
                        authority: String::new(),
                        message: e.to_string(),
                    })?;
                out.push((position.value(), enquiry));
            }
        }
        Ok(out)
    }

    /// Removes the enquiries recorded before `before` that have reached their primary (none
    /// still in the outbox is touched), with their index entries; returns how many went.
    ///
    /// The search for them reads a snapshot and holds no lock, and they go
    /// [`PURGE_PER_COMMIT`] at a time: lookups record their enquiries between the commits
    /// instead of waiting for a scan of every enquiry held. An enquiry changed since the search
    /// (a call-back answered, so queued again) is left for the next purge.
    pub fn purge_delivered(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let found = {
            let txn = self.read()?;
            let waiting: std::collections::HashSet<String> = txn
                .open_table(OUTBOX)?
                .iter()?
                .map(|row| row.map(|(_, r)| r.value().to_owned()))
                .collect::<Result<_, _>>()?;
            let mut found = Vec::new();
            for row in txn.open_table(ENQUIRIES)?.iter()? {
                let (reference, value) = row?;
                if waiting.contains(reference.value()) {
                    continue;
                }
                let When { at } = decode(value.value())?;
                if at < before {
                    found.push((reference.value().to_owned(), digest(value.value())));
                }
            }
            found
        };
        let mut removed = 0;
        for chunk in found.chunks(PURGE_PER_COMMIT) {
            let txn = self.write()?;
            {
                let mut enquiries = txn.open_table(ENQUIRIES)?;
                let mut by_child = txn.open_table(BY_CHILD)?;
                for (reference, seen) in chunk {
                    let enquiry: Enquiry = match enquiries.get(reference.as_str())? {
                        // Only enquiries rewrite their value (and queue it again) when they change.
                        Some(value) if digest(value.value()) == *seen => decode(value.value())?,
                        _ => continue,
                    };
                    enquiries.remove(reference.as_str())?;
                    if let EnquiryState::Answered {
                        record_ids,
                        authorities,
                        ..
                    } = &enquiry.state
                    {
                        for (authority, record_id) in authorities.iter().zip(record_ids) {
                            let child = format!("{authority}/{record_id}");
                            by_child.remove((child.as_str(), reference.as_str()))?;
                        }
                    }
                    removed += 1;
                }
            }
            txn.commit()?;
        }
        Ok(removed)
    }

    /// The primary acknowledged these outbox positions: they leave the outbox (the enquiries
    /// themselves stay, for the site's own record, until retention removes them).
    pub fn delivered(&self, positions: &[u64]) -> Result<(), StoreError> {
        let txn = self.write()?;
        {
            let mut outbox = txn.open_table(OUTBOX)?;
            for p in positions {
                outbox.remove(*p)?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

fn state_word(state: &EnquiryState) -> String {
    match state {
        EnquiryState::Refused { .. } => "refused",
        EnquiryState::AwaitingCallback { .. } => "awaiting call-back",
        EnquiryState::CallbackFailed { .. } => "call-back failed",
        EnquiryState::Answered { .. } => "answered",
    }
    .to_owned()
}

fn write_and_queue(txn: &redb::WriteTransaction, enquiry: &Enquiry) -> Result<(), StoreError> {
    if let EnquiryState::Answered {
        record_ids,
        authorities,
        ..
    } = &enquiry.state
    {
        let mut by_child = txn.open_table(BY_CHILD)?;
        for (authority, record_id) in authorities.iter().zip(record_ids) {
            let child = format!("{authority}/{record_id}");
            by_child.insert(
                (child.as_str(), enquiry.reference.as_str()),
                enquiry.at.timestamp(),
            )?;
        }
    }
    let bytes = serde_json::to_vec(enquiry).map_err(|e| StoreError::Corrupt {
        authority: String::new(),
        message: e.to_string(),
    })?;
    txn.open_table(ENQUIRIES)?
        .insert(enquiry.reference.as_str(), bytes.as_slice())?;
    let mut outbox = txn.open_table(OUTBOX)?;
    let next = outbox.last()?.map_or(0, |(k, _)| k.value() + 1);
    outbox.insert(next, enquiry.reference.as_str())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enquiry(at: DateTime<Utc>) -> Enquiry {
        Enquiry {
            reference: String::new(),
            at,
            site: "ae".into(),
            path: EnquiryPath::Terminal {
                terminal: "A&E workstation 1".into(),
                organisation: "st-elsewhere-ae".into(),
                operator: "Dr A. Patel".into(),
                operator_role: "ED registrar".into(),
            },
            reason: "Unexplained bruising".into(),
            searched: serde_json::json!({ "surname": "Evans" }),
            query: String::new(),
            alert: None,
            state: EnquiryState::Refused {
                why: "missing the date of birth".into(),
            },
            history: Vec::new(),
        }
    }

    #[test]
    fn retention_removes_old_delivered_enquiries_and_never_one_still_waiting() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("replica.redb")).expect("store");
        let now: DateTime<Utc> = "2026-11-22T03:00:00Z".parse().expect("time");
        let old = now - chrono::Duration::days(40);
        let recent = now - chrono::Duration::days(2);
        for at in [old, old, recent] {
            store.record_enquiry(enquiry(at)).expect("recorded");
        }
        // The first old one and the recent one reached the primary; the second old one did not.
        let waiting = store.outbox(10).expect("outbox");
        store
            .delivered(&[waiting[0].0, waiting[2].0])
            .expect("delivered");
        let removed = store
            .purge_delivered(now - chrono::Duration::days(30))
            .expect("purged");
        assert_eq!(removed, 1);
        assert!(
            store
                .enquiry(&waiting[0].1.reference)
                .expect("read")
                .is_none()
        );
        assert!(
            store
                .enquiry(&waiting[1].1.reference)
                .expect("read")
                .is_some()
        );
        assert!(
            store
                .enquiry(&waiting[2].1.reference)
                .expect("read")
                .is_some()
        );
        assert_eq!(store.outbox_backlog().expect("backlog"), 1);
    }

    #[test]
    fn retention_removes_thousands_in_several_commits_with_their_index_entries() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("replica.redb")).expect("store");
        let now: DateTime<Utc> = "2026-11-22T03:00:00Z".parse().expect("time");
        let old = now - chrono::Duration::days(40);
        let answered = |at| Enquiry {
            state: EnquiryState::Answered {
                outcome: "match".into(),
                record_ids: vec!["C1".into()],
                authorities: vec!["test-borough".into()],
                advice: String::new(),
            },
            ..enquiry(at)
        };
        let many = PURGE_PER_COMMIT * 2 + 3;
        store
            .record_enquiries((0..many).map(|_| answered(old)).collect())
            .expect("recorded");
        let kept = store.record_enquiry(answered(now)).expect("recorded");
        let positions: Vec<u64> = store
            .outbox(many + 1)
            .expect("outbox")
            .iter()
            .map(|(p, _)| *p)
            .collect();
        store.delivered(&positions).expect("delivered");
        let removed = store
            .purge_delivered(now - chrono::Duration::days(30))
            .expect("purged");
        assert_eq!(removed, many);
        assert_eq!(store.enquiries_recorded().expect("count"), 1);
        let indexed = store
            .recent_enquiries("test-borough", "C1", old - chrono::Duration::days(1))
            .expect("index");
        assert_eq!(indexed, vec![kept.reference]);
    }

    #[test]
    fn every_enquiry_gets_a_reference_and_waits_in_the_outbox_until_delivered() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("replica.redb")).expect("store");
        let at = DateTime::parse_from_rfc3339("2026-11-22T03:00:00Z")
            .expect("time")
            .to_utc();
        let first = store.record_enquiry(enquiry(at)).expect("recorded");
        let second = store.record_enquiry(enquiry(at)).expect("recorded");
        assert_eq!(
            (first.reference.as_str(), second.reference.as_str()),
            ("AE-20261122-000001", "AE-20261122-000002")
        );
        assert_eq!(store.outbox_backlog().expect("backlog"), 2);
        let waiting = store.outbox(10).expect("outbox");
        store.delivered(&[waiting[0].0]).expect("delivered");
        assert_eq!(store.outbox_backlog().expect("backlog"), 1);
        assert!(
            store.enquiry(&first.reference).expect("read").is_some(),
            "delivered enquiries stay on record"
        );
    }

    #[test]
    fn a_failed_callback_is_recorded_and_reported_again() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("replica.redb")).expect("store");
        let at = DateTime::parse_from_rfc3339("2026-11-22T03:00:00Z")
            .expect("time")
            .to_utc();
        let mut waiting = enquiry(at);
        waiting.state = EnquiryState::AwaitingCallback {
            expires_at: at + chrono::Duration::minutes(30),
        };
        let recorded = store.record_enquiry(waiting).expect("recorded");
        let failed = EnquiryState::CallbackFailed {
            outcome: "no-answer".into(),
            at,
        };
        let updated = store
            .update_enquiry(&recorded.reference, failed, at)
            .expect("update")
            .expect("found");
        assert_eq!(updated.history.len(), 2);
        assert_eq!(
            store.outbox_backlog().expect("backlog"),
            2,
            "the primary hears how it ended"
        );
        assert!(
            store
                .update_enquiry(
                    "AE-19990101-000001",
                    EnquiryState::Refused { why: String::new() },
                    at
                )
                .expect("update")
                .is_none()
        );
    }

    #[test]
    fn an_answer_counts_the_recent_enquiries_about_the_same_child() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(&dir.path().join("replica.redb")).expect("store");
        let at = DateTime::parse_from_rfc3339("2026-11-22T03:00:00Z")
            .expect("time")
            .to_utc();
        for days_ago in [1, 5, 40] {
            let mut e = enquiry(at - chrono::Duration::days(days_ago));
            e.state = EnquiryState::Answered {
                outcome: "match".into(),
                record_ids: vec!["C1".into()],
                authorities: vec!["lambeth".into()],
                advice: String::new(),
            };
            store.record_enquiry(e).expect("recorded");
        }
        let since = at - chrono::Duration::days(30);
        assert_eq!(
            store
                .recent_enquiries("lambeth", "C1", since)
                .expect("count")
                .len(),
            2
        );
        assert_eq!(
            store
                .recent_enquiries("lambeth", "C2", since)
                .expect("count")
                .len(),
            0
        );
    }

    #[test]
    fn enquiries_survive_a_restart() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("replica.redb");
        let at = DateTime::parse_from_rfc3339("2026-11-22T03:00:00Z")
            .expect("time")
            .to_utc();
        let reference = Store::open(&path)
            .expect("store")
            .record_enquiry(enquiry(at))
            .expect("recorded")
            .reference;
        let store = Store::open(&path).expect("reopen");
        assert!(store.enquiry(&reference).expect("read").is_some());
        assert_eq!(store.outbox_backlog().expect("backlog"), 1);
    }
}
