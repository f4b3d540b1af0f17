//! What each replica last reported: its version, as-of time and backlog, for the custodian.

use redb::{ReadableDatabase, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, decode_all, encode};

/// Each replica's last report, by site.
pub(super) const REPLICAS: TableDefinition<&str, &[u8]> = TableDefinition::new("replicas");

/// A replica's last report, and when it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaReport {
    pub site: String,
    pub version: u64,
    /// Unix seconds: when the primary last vouched for the version the replica holds.
    pub as_of: i64,
    pub stale: bool,
    pub outbox_backlog: u64,
    pub state_root: String,
    pub last_contact: chrono::DateTime<chrono::Utc>,
}

impl Store {
    /// Records a replica's report. Not audited: it changes nothing in the register.
    pub fn record_replica_report(&self, report: &ReplicaReport) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(REPLICAS)?
            .insert(report.site.as_str(), encode(report)?.as_slice())?;
        txn.commit()?;
        Ok(())
    }

    pub fn replica_reports(&self) -> Result<Vec<ReplicaReport>, StoreError> {
        let txn = self.db.begin_read()?;
        decode_all(&txn.open_table(REPLICAS)?)
    }
}
