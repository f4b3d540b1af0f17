//! Publishing the lookup projection. Every transaction that changes what replicas may see also
//! updates the projection table and its state root and appends a version to the change log, so
//! a committed change is a published version: there is no moment when the two disagree.
//!
//! Versions are signed when they are sent (`crate::replication`), because what a replica needs
//! depends on what it holds: one version, several merged into one delta, or the whole
//! projection.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use cpreg_proto::pb;
use cpreg_proto::snapshot::{StateRoot, decode_changes, encode_changes};
use prost::Message;
use redb::{
    ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};

use super::{CHILDREN, ORGANISATIONS, Store, StoreError, decode, decode_all};
use crate::projection;
use crate::record::{ChildRecord, Organisation};

/// The current projection: entry key to its encoded value.
const PROJECTION: TableDefinition<&str, &[u8]> = TableDefinition::new("projection");
/// The changes each version made, as a payload.
const VERSION_CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("version_changes");
/// The state root and entry count after each version (JSON of [`Head`]).
const VERSION_HEADS: TableDefinition<u64, &[u8]> = TableDefinition::new("version_heads");
/// Children whose projection changes with time alone, by the day to look again.
const DUE: TableDefinition<(&str, &str), ()> = TableDefinition::new("projection_due");

/// Versions kept in the change log; a replica further behind gets a full snapshot.
pub const KEPT_VERSIONS: u64 = 100_000;

/// The newest published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Head {
    pub version: u64,
    /// Hex of the [`StateRoot`] bytes.
    pub state_root: String,
    pub entry_count: u64,
}

impl Head {
    pub fn root(&self) -> StateRoot {
        hex::decode(&self.state_root)
            .ok()
            .and_then(|b| StateRoot::from_bytes(&b))
            .unwrap_or_default()
    }
}

/// What one transaction changes in the projection.
#[derive(Debug, Default)]
pub(super) struct Publication {
    /// Entry key to its new value; empty removes it.
    changes: BTreeMap<String, Vec<u8>>,
}

impl Publication {
    /// Stages a child's projection as of `today`.
    pub(super) fn child(
        &mut self,
        txn: &WriteTransaction,
        record: &ChildRecord,
        today: NaiveDate,
    ) -> Result<(), StoreError> {
        let (mut projected, recheck) = projection::child(record, today);
        if let Some(p) = projected.as_mut() {
            p.recent_enquiries = super::follow_up::recently_seen(txn, &record.record_id, today)?;
        }
        if let Some(day) = recheck {
            txn.open_table(DUE)?
                .insert((day.to_string().as_str(), record.record_id.as_str()), ())?;
        }
        self.changes.insert(
            projection::child_key(&record.record_id),
            projected.map(|p| p.encode_to_vec()).unwrap_or_default(),
        );
        Ok(())
    }

    pub(super) fn organisation(&mut self, id: &str, org: Option<&Organisation>) {
        let value = org
            .map(|o| projection::organisation(o).encode_to_vec())
            .unwrap_or_default();
        self.changes.insert(projection::organisation_key(id), value);
    }

    pub(super) fn put(&mut self, key: String, value: Vec<u8>) {
        self.changes.insert(key, value);
    }

    /// Applies the staged changes that differ from the projection; if any do, appends a version.
    pub(super) fn write(self, txn: &WriteTransaction) -> Result<Option<u64>, StoreError> {
        let mut head = read_head(txn)?;
        let mut root = head.root();
        let mut effective = Vec::new();
        {
            let mut table = txn.open_table(PROJECTION)?;
            for (key, value) in self.changes {
                let old = table.get(key.as_str())?.map(|v| v.value().to_vec());
                if old.as_deref().unwrap_or_default() == value.as_slice() {
                    continue;
                }
                if let Some(old) = &old {
                    root.remove(&key, old);
                    head.entry_count -= 1;
                    table.remove(key.as_str())?;
                }
                if !value.is_empty() {
                    root.insert(&key, &value);
                    head.entry_count += 1;
                    table.insert(key.as_str(), value.as_slice())?;
                }
                effective.push(pb::Change { key, value });
            }
        }
        if effective.is_empty() {
            return Ok(None);
        }
        head.version += 1;
        head.state_root = hex::encode(root.to_bytes());
        txn.open_table(VERSION_CHANGES)?
            .insert(head.version, encode_changes(&effective).as_slice())?;
        let mut heads = txn.open_table(VERSION_HEADS)?;
        heads.insert(head.version, serde_json::to_vec(&head)?.as_slice())?;
        if head.version > KEPT_VERSIONS {
            let old = head.version - KEPT_VERSIONS;
            heads.remove(old)?;
            txn.open_table(VERSION_CHANGES)?.remove(old)?;
        }
        Ok(Some(head.version))
    }
}

fn read_head(txn: &WriteTransaction) -> Result<Head, StoreError> {
    let heads = txn.open_table(VERSION_HEADS)?;
    let last = heads.last()?;
    match last {
        Some((_, v)) => decode(v.value()),
        None => Ok(Head {
            state_root: hex::encode(StateRoot::default().to_bytes()),
            ..Head::default()
        }),
    }
}

/// A version's payload for a replica: the merged changes since its version, or everything.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub head: Head,
    /// 0 for a full snapshot.
    pub base_version: u64,
    pub payload: Vec<u8>,
}

impl Store {
    pub(super) fn open_publish_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
        txn.open_table(PROJECTION)?;
        txn.open_table(VERSION_CHANGES)?;
        txn.open_table(VERSION_HEADS)?;
        txn.open_table(DUE)?;
        Ok(())
    }

    /// Tells subscribers a new version committed.
    pub(super) fn announce(&self, version: Option<u64>) {
        if let Some(v) = version {
            self.published.send_replace(v);
        }
    }

    /// A receiver that wakes on each new version.
    pub fn subscribe_versions(&self) -> tokio::sync::watch::Receiver<u64> {
        self.published.subscribe()
    }

    /// The newest published version.
    pub fn head(&self) -> Result<Head, StoreError> {
        let txn = self.db.begin_read()?;
        let heads = txn.open_table(VERSION_HEADS)?;
        let last = heads.last()?;
        match last {
            Some((_, v)) => decode(v.value()),
            None => Ok(Head {
                state_root: hex::encode(StateRoot::default().to_bytes()),
                ..Head::default()
            }),
        }
    }

    /// What a replica holding `have` (version and state root) needs to reach the newest version:
    /// `None` if it already has it; a delta when its version is in the log with the same root;
    /// otherwise the whole projection. Read in one transaction, so it is consistent.
    pub fn outgoing(
        &self,
        have_version: u64,
        have_root: &[u8],
    ) -> Result<Option<Outgoing>, StoreError> {
        let txn = self.db.begin_read()?;
        let heads = txn.open_table(VERSION_HEADS)?;
        let head: Head = match heads.last()? {
            Some((_, v)) => decode(v.value())?,
            None => return Ok(None),
        };
        let known_base = if have_version == 0 {
            None
        } else {
            heads
                .get(have_version)?
                .map(|v| decode::<Head>(v.value()))
                .transpose()?
        };
        let base_matches = known_base
            .is_some_and(|b| hex::decode(&b.state_root).ok().as_deref() == Some(have_root));
        if base_matches && have_version == head.version {
            return Ok(None);
        }
        if base_matches {
            let changes = txn.open_table(VERSION_CHANGES)?;
            let mut merged: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for row in changes.range(have_version + 1..=head.version)? {
                let (_, payload) = row?;
                for change in decode_changes(payload.value()) {
                    let change =
                        change.map_err(|e| StoreError::Invalid(format!("change log: {e}")))?;
                    merged.insert(change.key, change.value);
                }
            }
            let changes: Vec<pb::Change> = merged
                .into_iter()
                .map(|(key, value)| pb::Change { key, value })
                .collect();
            return Ok(Some(Outgoing {
                head,
                base_version: have_version,
                payload: encode_changes(&changes),
            }));
        }
        let projection = txn.open_table(PROJECTION)?;
        let mut payload = Vec::with_capacity(projection.len()? as usize * 256);
        for row in projection.iter()? {
            let (k, v) = row?;
            pb::Change {
                key: k.value().to_owned(),
                value: v.value().to_vec(),
            }
            .encode_length_delimited(&mut payload)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        }
        Ok(Some(Outgoing {
            head,
            base_version: 0,
            payload,
        }))
    }

    /// Re-projects the children whose projection time alone has changed (an ended plan past
    /// 365 days, an unborn child's plan 28 days past the due date). Run daily and at start.
    pub fn reproject_due(&self) -> Result<Option<u64>, StoreError> {
        let today = self.clock.today();
        let txn = self.db.begin_write()?;
        let due: Vec<(String, String)> = {
            let mut table = txn.open_table(DUE)?;
            let today = today.to_string();
            table
                .extract_from_if(..=(today.as_str(), "\u{10ffff}"), |_, _| true)?
                .map(|row| {
                    row.map(|(k, _)| {
                        let (day, id) = k.value();
                        (day.to_owned(), id.to_owned())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        let mut publication = Publication::default();
        for (_, record_id) in &due {
            let record: Option<ChildRecord> = {
                let table = txn.open_table(CHILDREN)?;
                let found = table.get(record_id.as_str())?;
                found.map(|v| decode(v.value())).transpose()?
            };
            if let Some(record) = record {
                publication.child(&txn, &record, today)?;
            }
        }
        let version = publication.write(&txn)?;
        txn.commit()?;
        self.announce(version);
        Ok(version)
    }

    /// Publishes the current projection as a version above `above`, for a register restored
    /// from a backup while replicas hold versions it never had (they refuse anything older as a
    /// rollback). The new version changes no entry; replicas whose version the log does not know
    /// get it as a full snapshot. Returns the version now current.
    pub fn publish_above(&self, above: u64) -> Result<u64, StoreError> {
        let txn = self.db.begin_write()?;
        let mut head = read_head(&txn)?;
        if above < head.version {
            txn.abort()?;
            return Ok(head.version);
        }
        head.version = above + 1;
        txn.open_table(VERSION_CHANGES)?
            .insert(head.version, [].as_slice())?;
        txn.open_table(VERSION_HEADS)?
            .insert(head.version, serde_json::to_vec(&head)?.as_slice())?;
        txn.commit()?;
        self.announce(Some(head.version));
        Ok(head.version)
    }

    /// Publishes the authority's own numbers, if they changed.
    pub fn publish_authority_info(
        &self,
        info: &pb::AuthorityInfo,
    ) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_write()?;
        let mut publication = Publication::default();
        publication.put(projection::authority_key(), info.encode_to_vec());
        let version = publication.write(&txn)?;
        txn.commit()?;
        self.announce(version);
        Ok(version)
    }

    /// Rebuilds the projection from every record and organisation (used when the projection
    /// tables are new, e.g. on a register created before publishing existed).
    pub fn republish_all(&self) -> Result<Option<u64>, StoreError> {
        let today = self.clock.today();
        let txn = self.db.begin_write()?;
        let mut publication = Publication::default();
        let records: Vec<ChildRecord> = decode_all(&txn.open_table(CHILDREN)?)?;
        for record in &records {
            publication.child(&txn, record, today)?;
        }
        let orgs: Vec<Organisation> = decode_all(&txn.open_table(ORGANISATIONS)?)?;
        for org in &orgs {
            publication.organisation(&org.id, Some(org));
        }
        let version = publication.write(&txn)?;
        txn.commit()?;
        self.announce(version);
        Ok(version)
    }

    /// Every entry of the published projection (for tests and the air-gap export).
    pub fn projection_entries(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read()?;
        txn.open_table(PROJECTION)?
            .iter()?
            .map(|row| {
                row.map(|(k, v)| (k.value().to_owned(), v.value().to_vec()))
                    .map_err(StoreError::from)
            })
            .collect()
    }
}
