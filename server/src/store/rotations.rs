//! The authority's key rotations: each statement exactly as the retiring key signed it, with that
//! key's public half, so the primary can send the chain to every replica and a verifier can
//! follow it from the original key (DESIGN section 4, key rotation).

use cpreg_proto::pb;
use cpreg_proto::snapshot::{TrustedKeys, key_id};
use ed25519_dalek::VerifyingKey;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{Store, StoreError};

/// A stored rotation: (the retiring public key, the encoded `RotationStatement`, the signature
/// over it).
type RotationRow = (&'static [u8], &'static [u8], &'static [u8]);

/// Every rotation by sequence (0 = the first).
pub(super) const ROTATIONS: TableDefinition<u64, RotationRow> =
    TableDefinition::new("key_rotations");

/// What the stored chain says of the key the store was opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyInForce {
    /// The newest key of the chain (or there has been no rotation).
    Current,
    /// The key the newest rotation retires: `rotate-key` stored its statement but did not get to
    /// swap the key files. Safe (replicas trust both), and finished by running it again.
    InterruptedRotation { announced: String },
}

struct StoredRotation {
    retiring: Vec<u8>,
    rotation: pb::KeyRotation,
}

/// Every stored rotation, oldest first.
fn stored(table: &impl ReadableTable<u64, RotationRow>) -> Result<Vec<StoredRotation>, StoreError> {
    table
        .iter()?
        .map(|row| {
            let (_, v) = row?;
            let (retiring, statement, signature) = v.value();
            Ok(StoredRotation {
                retiring: retiring.to_vec(),
                rotation: pb::KeyRotation {
                    statement: statement.to_vec(),
                    signature: signature.to_vec(),
                },
            })
        })
        .collect()
}

impl Store {
    /// Stores a rotation signed by the key in force (the store's), in a transaction of its own.
    /// Refused, with nothing written, unless it verifies against that key and names this
    /// authority, so a rotation the replicas would refuse is never sent to them.
    pub fn record_rotation(&self, rotation: &pb::KeyRotation) -> Result<(), StoreError> {
        let in_force = self.verifying_key();
        TrustedKeys::new(&self.authority, vec![in_force])
            .accept_rotation(rotation)
            .map_err(|e| {
                StoreError::Invalid(format!(
                    "key rotation not signed by the key in force ({}): {e}",
                    key_id(&in_force)
                ))
            })?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(ROTATIONS)?;
            let next = table.last()?.map_or(0, |(k, _)| k.value() + 1);
            table.insert(
                next,
                (
                    in_force.as_bytes().as_slice(),
                    rotation.statement.as_slice(),
                    rotation.signature.as_slice(),
                ),
            )?;
        }
        txn.commit()?;
        Ok(())
    }

    fn stored_rotations(&self) -> Result<Vec<StoredRotation>, StoreError> {
        let txn = self.db.begin_read()?;
        stored(&txn.open_table(ROTATIONS)?)
    }

    /// Every rotation, oldest first, exactly as signed.
    pub fn rotations(&self) -> Result<Vec<pb::KeyRotation>, StoreError> {
        Ok(self
            .stored_rotations()?
            .into_iter()
            .map(|r| r.rotation)
            .collect())
    }

    /// The key the authority started with: the one the first rotation retired, or the key in
    /// force if there has been none.
    pub fn original_key(&self) -> Result<VerifyingKey, StoreError> {
        match self.stored_rotations()?.first() {
            None => Ok(self.verifying_key()),
            Some(first) => decode_key(&first.retiring),
        }
    }

    /// The authority's keys in the order they came into force, followed from the original key
    /// exactly as a replica or an auditor follows them. A stored rotation that does not chain
    /// means the register file was altered.
    pub fn key_chain(&self) -> Result<Vec<VerifyingKey>, StoreError> {
        Ok(self.chain_of(&self.stored_rotations()?)?.keys().to_vec())
    }

    fn chain_of(&self, rows: &[StoredRotation]) -> Result<TrustedKeys, StoreError> {
        let original = match rows.first() {
            None => self.verifying_key(),
            Some(first) => decode_key(&first.retiring)?,
        };
        let rotations: Vec<pb::KeyRotation> = rows.iter().map(|r| r.rotation.clone()).collect();
        TrustedKeys::follow(&self.authority, original, &rotations)
            .map_err(|e| StoreError::Invalid(format!("the stored key chain is broken: {e}")))
    }

    /// Where the key the store was opened with stands in the chain. A key that is neither the
    /// newest nor the one an unfinished rotation retires would sign what no replica and no
    /// auditor can verify, so it is refused.
    pub fn key_in_force(&self) -> Result<KeyInForce, StoreError> {
        let rows = self.stored_rotations()?;
        let chain = self.chain_of(&rows)?;
        let in_force = self.verifying_key();
        let newest = chain.keys().last().copied().unwrap_or(in_force);
        if newest == in_force {
            return Ok(KeyInForce::Current);
        }
        let retired_last = rows.last().map(|r| decode_key(&r.retiring)).transpose()?;
        if retired_last == Some(in_force) {
            return Ok(KeyInForce::InterruptedRotation {
                announced: key_id(&newest),
            });
        }
        Err(StoreError::Invalid(format!(
            "the signing key {} is not the authority's current key {}: restore signing.key from the backup taken with the register (a retired key is kept as signing.key.retired-<key id>)",
            key_id(&in_force),
            key_id(&newest)
        )))
    }
}

fn decode_key(bytes: &[u8]) -> Result<VerifyingKey, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Invalid("a stored retired key is not 32 bytes".into()))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| StoreError::Invalid("a stored retired key is not a valid key".into()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cpreg_proto::snapshot::sign_rotation;
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::clock::SystemClock;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn open(dir: &tempfile::TempDir, with: u8) -> Result<Store, StoreError> {
        Store::open(
            &dir.path().join("register.redb"),
            "lambeth",
            key(with),
            Arc::new(SystemClock),
        )
    }

    #[test]
    fn the_chain_grows_from_the_original_key_and_only_the_key_in_force_may_extend_it() {
        let dir = tempfile::tempdir().expect("folder");
        let store = open(&dir, 1).expect("open");
        assert_eq!(store.key_chain().expect("chain"), [key(1).verifying_key()]);
        let stray = sign_rotation("lambeth", &key(9), &key(2).verifying_key(), 5);
        assert!(
            store.record_rotation(&stray).is_err(),
            "not the key in force"
        );
        let croydon = sign_rotation("croydon", &key(1), &key(2).verifying_key(), 5);
        assert!(
            store.record_rotation(&croydon).is_err(),
            "another authority"
        );
        let rotation = sign_rotation("lambeth", &key(1), &key(2).verifying_key(), 5);
        store.record_rotation(&rotation).expect("recorded");
        assert_eq!(store.rotations().expect("rotations"), [rotation]);
        assert_eq!(
            store.original_key().expect("original"),
            key(1).verifying_key()
        );
        // Opened with the old key, the rotation is stored but not swapped in: allowed, noted.
        assert_eq!(
            store.key_in_force().expect("in force"),
            KeyInForce::InterruptedRotation {
                announced: key_id(&key(2).verifying_key())
            }
        );
        drop(store);
        let store = open(&dir, 2).expect("reopen with the new key");
        assert_eq!(store.key_in_force().expect("in force"), KeyInForce::Current);
        assert_eq!(
            store.key_chain().expect("chain"),
            [key(1).verifying_key(), key(2).verifying_key()]
        );
        drop(store);
        let err = open(&dir, 3).expect_err("a key outside the chain");
        assert!(err.to_string().contains("restore signing.key"), "{err}");
    }
}
