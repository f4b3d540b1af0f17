//! Enquiries reported by the replicas, kept against the children they found (DESIGN section 6).
//! The reference is the idempotency key: a repeat of the same report changes nothing, and a
//! later state of the same enquiry (a call-back confirmed) replaces the earlier one.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::follow_up::FollowUp;
use super::{Recorder, Store, StoreError, decode, decode_all, encode};

/// Every enquiry received, by reference.
pub(super) const ENQUIRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("enquiries");

/// An enquiry as the primary keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedEnquiry {
    pub reference: String,
    /// The site whose replica reported it (from its certificate).
    pub site: String,
    pub state: String,
    /// "authority/record id" of each child it found.
    pub children: Vec<String>,
    pub received_at: chrono::DateTime<chrono::Utc>,
    /// The replica's record of the enquiry, as it sent it.
    pub record: serde_json::Value,
    /// The replica's alert: the lookups around this one look like someone listing the register.
    #[serde(default)]
    pub alert: Option<String>,
}

impl Store {
    /// Commits a batch of reported enquiries; returns the references now held. Each new or
    /// changed enquiry is an audit entry; a repeat writes nothing.
    pub fn receive_enquiries(
        &self,
        actor: &str,
        reports: Vec<ReceivedEnquiry>,
    ) -> Result<Vec<String>, StoreError> {
        let now = self.clock.now();
        let txn = self.db.begin_write()?;
        let mut recorder = Recorder::new(actor, now);
        let mut committed = Vec::with_capacity(reports.len());
        let mut queued = false;
        for report in reports {
            let held: Option<ReceivedEnquiry> = txn
                .open_table(ENQUIRIES)?
                .get(report.reference.as_str())?
                .map(|v| decode(v.value()))
                .transpose()?;
            let unchanged = held
                .as_ref()
                .is_some_and(|h| h.state == report.state && h.record == report.record);
            if !unchanged {
                txn.open_table(ENQUIRIES)?
                    .insert(report.reference.as_str(), encode(&report)?.as_slice())?;
                recorder.audit.push(
                    "enquiry.received",
                    &report.reference,
                    serde_json::json!({ "site": report.site, "state": report.state, "children": report.children }),
                );
                // An alert the replica raised is new only once; a state only once too.
                let alert = report
                    .alert
                    .as_deref()
                    .filter(|_| held.as_ref().is_none_or(|h| h.alert.is_none()));
                if let Some(alert) = alert {
                    tracing::warn!(site = %report.site, reference = %report.reference, %alert, "enumeration alert");
                }
                let mut follow_up = FollowUp {
                    txn: &txn,
                    recorder: &mut recorder,
                    now,
                    authority: &self.authority,
                    queued: false,
                };
                follow_up.act(
                    &report,
                    alert,
                    held.as_ref().is_none_or(|h| h.state != report.state),
                )?;
                queued |= follow_up.queued;
            }
            committed.push(report.reference);
        }
        recorder.commit(self, txn)?;
        if queued {
            self.announce_notifications();
        }
        Ok(committed)
    }

    /// How many enquiries are held by (state, outcome): for metrics, read at every scrape, so
    /// only those two fields of each are decoded.
    pub fn enquiry_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<(String, String), u64>, StoreError> {
        #[derive(Deserialize)]
        struct Counted {
            state: String,
            record: CountedRecord,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct CountedRecord {
            state: CountedState,
        }
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct CountedState {
            outcome: String,
        }
        let txn = self.db.begin_read()?;
        let mut counts = std::collections::BTreeMap::new();
        for row in txn.open_table(ENQUIRIES)?.iter()? {
            let counted: Counted = decode(row?.1.value())?;
            *counts
                .entry((counted.state, counted.record.state.outcome))
                .or_insert(0) += 1;
        }
        Ok(counts)
    }

    /// Enquiries received, newest first; only those about `record_id` when given.
    pub fn enquiries(
        &self,
        record_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ReceivedEnquiry>, StoreError> {
        let txn = self.db.begin_read()?;
        let mut all: Vec<ReceivedEnquiry> = decode_all(&txn.open_table(ENQUIRIES)?)?;
        if let Some(id) = record_id {
            all.retain(|e| e.children.iter().any(|c| c.rsplit('/').next() == Some(id)));
        }
        all.sort_by(|a, b| {
            b.received_at
                .cmp(&a.received_at)
                .then(b.reference.cmp(&a.reference))
        });
        if limit > 0 {
            all.truncate(limit);
        }
        Ok(all)
    }
}
