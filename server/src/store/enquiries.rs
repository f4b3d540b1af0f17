//! Enquiries reported by the replicas, kept against the children they found (DESIGN section 6).
//! The reference is the idempotency key: a repeat of the same report changes nothing, and a
//! later state of the same enquiry (a call-back confirmed) replaces the earlier one.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

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
        {
            let mut table = txn.open_table(ENQUIRIES)?;
            for report in reports {
                let held: Option<ReceivedEnquiry> = table
                    .get(report.reference.as_str())?
                    .map(|v| decode(v.value()))
                    .transpose()?;
                let unchanged = held
                    .as_ref()
                    .is_some_and(|h| h.state == report.state && h.record == report.record);
                if !unchanged {
                    if let Some(alert) = report
                        .alert
                        .as_ref()
                        .filter(|_| held.as_ref().is_none_or(|h| h.alert.is_none()))
                    {
                        // For the custodian: someone may be trying to list the register.
                        recorder.audit.push(
                            "alert.enumeration",
                            &report.reference,
                            serde_json::json!({ "site": report.site, "alert": alert }),
                        );
                        tracing::warn!(site = %report.site, reference = %report.reference, %alert, "enumeration alert");
                    }
                    table.insert(report.reference.as_str(), encode(&report)?.as_slice())?;
                    recorder.audit.push(
                        "enquiry.received",
                        &report.reference,
                        serde_json::json!({ "site": report.site, "state": report.state, "children": report.children }),
                    );
                }
                committed.push(report.reference);
            }
        }
        recorder.commit(self, txn)?;
        Ok(committed)
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
