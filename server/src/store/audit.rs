//! Appends to the audit chain inside the write transaction of the change it records, and signs a
//! checkpoint of the new head before that transaction commits.

use cpreg_proto::audit::{AuditRecord, Checkpoint, GENESIS, SignedCheckpoint, entry_hash};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};

use super::{AUDIT, CHECKPOINTS, Store, StoreError};

/// The audit entries of one transaction.
pub(super) struct AuditBatch {
    actor: String,
    at: String,
    entries: Vec<(String, String, serde_json::Value)>,
}

impl AuditBatch {
    pub(super) fn new(actor: &str, at: chrono::DateTime<chrono::Utc>) -> Self {
        AuditBatch {
            actor: actor.to_owned(),
            at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            entries: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, action: &str, subject: &str, detail: serde_json::Value) {
        self.entries
            .push((action.to_owned(), subject.to_owned(), detail));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Writes the entries after the chain's head and a signed checkpoint of the new head.
    pub(super) fn write(self, store: &Store, txn: &WriteTransaction) -> Result<(), StoreError> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let mut table = txn.open_table(AUDIT)?;
        let (mut seq, mut prev) = match table.last()? {
            Some((k, v)) => (k.value() + 1, entry_hash(v.value())),
            None => (0, GENESIS.to_owned()),
        };
        for (action, subject, detail) in self.entries {
            let bytes = AuditRecord {
                seq,
                at: self.at.clone(),
                actor: self.actor.clone(),
                action,
                subject,
                detail,
                prev,
            }
            .to_bytes();
            prev = entry_hash(&bytes);
            table.insert(seq, bytes.as_slice())?;
            seq += 1;
        }
        let checkpoint = Checkpoint {
            authority: store.authority.clone(),
            seq: seq - 1,
            hash: prev,
            at: self.at,
        };
        let signed = SignedCheckpoint::sign(&checkpoint, &store.key);
        txn.open_table(CHECKPOINTS)?.insert(
            seq - 1,
            (signed.bytes.as_slice(), signed.signature.as_slice()),
        )?;
        Ok(())
    }
}

/// The audit chain as stored: entries' exact bytes by sequence number, and the checkpoints.
#[derive(Debug, Clone, Default)]
pub struct AuditChain {
    pub entries: Vec<(u64, Vec<u8>)>,
    pub checkpoints: Vec<SignedCheckpoint>,
}

impl Store {
    /// The whole chain and its checkpoints, as stored, for a verifier.
    pub fn audit_chain(&self) -> Result<AuditChain, StoreError> {
        let txn = self.db.begin_read()?;
        let entries = txn
            .open_table(AUDIT)?
            .iter()?
            .map(|row| row.map(|(k, v)| (k.value(), v.value().to_vec())))
            .collect::<Result<Vec<_>, _>>()?;
        let checkpoints = txn
            .open_table(CHECKPOINTS)?
            .iter()?
            .map(|row| {
                row.map(|(_, v)| {
                    let (bytes, signature) = v.value();
                    SignedCheckpoint {
                        bytes: bytes.to_vec(),
                        signature: signature.to_vec(),
                    }
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AuditChain {
            entries,
            checkpoints,
        })
    }

    /// Verifies the chain against this authority's keys: the original one and each key its
    /// rotations announced, since checkpoints before a rotation were signed by the key it retired.
    pub fn verify_audit(
        &self,
    ) -> Result<Result<cpreg_proto::audit::ChainReport, cpreg_proto::audit::ChainBreak>, StoreError>
    {
        let chain = self.audit_chain()?;
        Ok(cpreg_proto::audit::verify_chain(
            chain.entries,
            &chain.checkpoints,
            &self.key_chain()?,
        ))
    }
}
