//! The replica's storage: the only code that opens redb tables. It holds each authority's entries,
//! the trusted state they were proved against, the key rotations followed, and every enquiry
//! with its outbox ([`enquiries`]). A version is
//! applied in one write transaction that is committed only once the register it produces matches
//! the signed state root, so readers see the last good version until the new one is proved.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use cpreg_proto::pb;
use cpreg_proto::snapshot::{IntakeError, StateRoot, TrustedKeys, TrustedState, decode_changes};
use ed25519_dalek::VerifyingKey;
use prost::Message;
use redb::{
    ConcurrencyMode, Database, ReadOnlyDatabase, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, WriteTransaction,
};

mod enquiries;

pub use enquiries::{Enquiry, EnquiryPath, EnquiryState};

/// Every authority's entries by (authority, entry key): the projection lookups will read.
const ENTRIES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("entries");
/// Per authority, the JSON of the [`TrustedState`] its entries were last proved against.
const TRUSTED: TableDefinition<&str, &[u8]> = TableDefinition::new("trusted_state");
/// Per authority, the key rotations followed, in order: (authority, sequence) to the encoded
/// `KeyRotation` exactly as signed, so trust is rebuilt by replaying the chain, never assumed.
const ROTATIONS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("key_rotations");

/// A failure of the database itself, not of what was offered to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb failed.
    #[error("database: {0}")]
    Database(#[from] redb::Error),
    /// The database file could not be created.
    #[error("creating {path}: {source}")]
    Create {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A stored trusted state does not decode: the file was altered or damaged.
    #[error("stored state of {authority} is damaged: {message}")]
    Corrupt { authority: String, message: String },
    /// The blocking task running a store operation panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(String),
    /// A change was asked of a store opened read-only.
    #[error("the store was opened read-only")]
    ReadOnly,
}

/// Why a version, freshness statement or rotation was not applied. Nothing of it was kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// What was offered fails a check: the transaction was aborted.
    #[error(transparent)]
    Refused(#[from] IntakeError),
    /// The database failed: the transaction was aborted.
    #[error(transparent)]
    Store(#[from] StoreError),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(e.into())
            }
        }
        impl From<$t> for ApplyError {
            fn from(e: $t) -> Self {
                ApplyError::Store(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// How the file is held: by the serving process, or read-only by `cpreg-replica status`.
enum Handle {
    ReadWrite(Database),
    ReadOnly(ReadOnlyDatabase),
}

/// The replica's database.
pub struct Store {
    db: Handle,
    /// Bumped after every commit that changes what is held of a register (a version applied,
    /// freshness confirmed, a key rotation followed): readers that keep what they read in
    /// memory, like the lookups, know from it when to read again.
    changes: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.db {
            Handle::ReadWrite(_) => "read-write",
            Handle::ReadOnly(_) => "read-only",
        };
        f.debug_struct("Store")
            .field("mode", &mode)
            .finish_non_exhaustive()
    }
}

/// Single-writer mode lets `cpreg-replica status` open the file read-only while the replica
/// serves, and see its commits.
fn builder() -> redb::Builder {
    let mut builder = Database::builder();
    builder.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    builder
}

impl Store {
    /// Opens (or creates, mode 0600) the database and makes every table, so readers never find
    /// one absent.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        create_private_file(path).map_err(|source| StoreError::Create {
            path: path.to_owned(),
            source,
        })?;
        let db = builder().create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(ENTRIES)?;
        txn.open_table(TRUSTED)?;
        txn.open_table(ROTATIONS)?;
        txn.open_table(enquiries::ENQUIRIES)?;
        txn.open_table(enquiries::OUTBOX)?;
        txn.open_table(enquiries::COUNTERS)?;
        txn.open_table(enquiries::BY_CHILD)?;
        txn.commit()?;
        Ok(Store {
            db: Handle::ReadWrite(db),
            changes: AtomicU64::new(0),
        })
    }

    /// Opens an existing database for reading only, alongside a serving replica.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            db: Handle::ReadOnly(builder().open_read_only(path)?),
            changes: AtomicU64::new(0),
        })
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(match &self.db {
            Handle::ReadWrite(db) => db.begin_read()?,
            Handle::ReadOnly(db) => db.begin_read()?,
        })
    }

    fn write(&self) -> Result<WriteTransaction, StoreError> {
        match &self.db {
            Handle::ReadWrite(db) => Ok(db.begin_write()?),
            Handle::ReadOnly(_) => Err(StoreError::ReadOnly),
        }
    }

    /// How many times this process has changed what is held of the registers since it opened
    /// the store.
    /// Read it before reading what is held: a copy read afterwards is at least that new.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// What is held of `authority`; the default (version 0, nothing) when nothing is.
    pub fn trusted_state(&self, authority: &str) -> Result<TrustedState, StoreError> {
        let txn = self.read()?;
        read_trusted(&txn.open_table(TRUSTED)?, authority)
    }

    /// The keys trusted for `authority`: the enrolled ones and those its stored rotations chain
    /// to, replayed in order. A stored rotation that no longer chains (the enrolled keys were
    /// changed) is skipped and logged.
    pub fn trusted_keys(
        &self,
        authority: &str,
        enrolled: &[VerifyingKey],
    ) -> Result<TrustedKeys, StoreError> {
        let mut keys = TrustedKeys::new(authority, enrolled.to_vec());
        let txn = self.read()?;
        replay_rotations(&txn.open_table(ROTATIONS)?, &mut keys)?;
        Ok(keys)
    }

    /// Follows a key rotation: verifies it against the keys trusted now and, if it announces a
    /// new key, stores it exactly as signed. Returns the keys trusted afterwards.
    pub fn record_rotation(
        &self,
        authority: &str,
        rotation: &pb::KeyRotation,
        enrolled: &[VerifyingKey],
    ) -> Result<TrustedKeys, ApplyError> {
        let txn = self.write()?;
        let mut keys = TrustedKeys::new(authority, enrolled.to_vec());
        {
            let mut table = txn.open_table(ROTATIONS)?;
            replay_rotations(&table, &mut keys)?;
            if keys.already_trusted(rotation).is_some() {
                // Followed before (every subscription repeats the chain): nothing to store.
                drop(table);
                txn.abort()?;
                return Ok(keys);
            }
            let before = keys.keys().len();
            keys.accept_rotation(rotation)?;
            if keys.keys().len() > before {
                let last = table
                    .range((authority, 0)..=(authority, u64::MAX))?
                    .next_back()
                    .transpose()?
                    .map(|(k, _)| k.value().1);
                let next = last.map_or(0, |n| n + 1);
                table.insert((authority, next), rotation.encode_to_vec().as_slice())?;
            }
        }
        txn.commit()?;
        self.changed();
        Ok(keys)
    }

    /// Applies a checked full snapshot or delta whose payload has passed `check_payload`, in one
    /// write transaction committed only if the result matches the signed entry count and state
    /// root. A delta costs one B-tree operation per change: the root is updated from the held
    /// one, never recomputed, so its cost does not grow with the register.
    pub fn apply(
        &self,
        authority: &str,
        manifest: &pb::Manifest,
        payload: &[u8],
    ) -> Result<TrustedState, ApplyError> {
        let txn = self.write()?;
        let held = read_trusted(&txn.open_table(TRUSTED)?, authority)?;
        // The checks of `check_manifest` that depend on what is held, again inside the
        // transaction, so an apply can never land on a state it was not checked against.
        if manifest.authority != authority {
            return Err(IntakeError::WrongAuthority {
                expected: authority.to_owned(),
                got: manifest.authority.clone(),
            }
            .into());
        }
        if manifest.version <= held.version {
            return Err(IntakeError::Rollback {
                held: held.version,
                offered: manifest.version,
            }
            .into());
        }
        let (root, count) = {
            let mut entries = txn.open_table(ENTRIES)?;
            let (mut root, mut count) = match pb::ManifestKind::try_from(manifest.kind) {
                Ok(pb::ManifestKind::Full) => {
                    let next = format!("{authority}\0");
                    entries.retain_in((authority, "")..(next.as_str(), ""), |_, _| false)?;
                    (StateRoot::default(), 0u64)
                }
                Ok(pb::ManifestKind::Delta) => {
                    if manifest.base_version != held.version {
                        return Err(IntakeError::WrongBase {
                            held: held.version,
                            base: manifest.base_version,
                        }
                        .into());
                    }
                    (held_root(authority, &held)?, held.entry_count)
                }
                _ => {
                    return Err(IntakeError::Malformed(
                        "only a full snapshot or a delta carries changes",
                    )
                    .into());
                }
            };
            for change in decode_changes(payload) {
                let change = change?;
                let key = (authority, change.key.as_str());
                let old = if change.value.is_empty() {
                    entries.remove(key)?
                } else {
                    root.insert(&change.key, &change.value);
                    count += 1;
                    entries.insert(key, change.value.as_slice())?
                };
                if let Some(old) = old {
                    root.remove(&change.key, old.value());
                    // Saturating: a damaged store must fail the count check, not panic.
                    count = count.saturating_sub(1);
                }
            }
            (root, count)
        };
        if count != manifest.entry_count {
            return Err(IntakeError::EntryCountMismatch {
                expected: manifest.entry_count,
                got: count,
            }
            .into());
        }
        if root.to_bytes() != manifest.state_root {
            return Err(IntakeError::StateRootMismatch.into());
        }
        let state = TrustedState {
            version: manifest.version,
            state_root: manifest.state_root.clone(),
            entry_count: count,
            issued_at: manifest.issued_at,
            expires_at: manifest.expires_at,
        };
        write_trusted(&txn, authority, &state)?;
        txn.commit()?;
        self.changed();
        Ok(state)
    }

    /// Records a checked freshness statement: the version held is vouched for until a later time.
    pub fn apply_freshness(
        &self,
        authority: &str,
        manifest: &pb::Manifest,
    ) -> Result<TrustedState, ApplyError> {
        let txn = self.write()?;
        let held = read_trusted(&txn.open_table(TRUSTED)?, authority)?;
        if manifest.version != held.version || manifest.state_root != held.state_root {
            return Err(IntakeError::FreshnessForOtherVersion {
                held: held.version,
                offered: manifest.version,
            }
            .into());
        }
        if manifest.issued_at < held.issued_at {
            return Err(IntakeError::FreshnessReplayed.into());
        }
        let state = TrustedState {
            issued_at: manifest.issued_at,
            expires_at: manifest.expires_at,
            ..held
        };
        write_trusted(&txn, authority, &state)?;
        txn.commit()?;
        self.changed();
        Ok(state)
    }

    /// One entry's value in the last good version.
    pub fn get(&self, authority: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(ENTRIES)?;
        Ok(table.get((authority, key))?.map(|v| v.value().to_vec()))
    }

    /// Every entry of `authority` in the last good version, in key order.
    pub fn entries(&self, authority: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(ENTRIES)?;
        let next = format!("{authority}\0");
        table
            .range((authority, "")..(next.as_str(), ""))?
            .map(|item| {
                let (k, v) = item?;
                Ok((k.value().1.to_owned(), v.value().to_vec()))
            })
            .collect()
    }

    /// How many entries of `authority` are held (as proved at the last apply).
    pub fn entry_count(&self, authority: &str) -> Result<u64, StoreError> {
        Ok(self.trusted_state(authority)?.entry_count)
    }
}

fn read_trusted(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    authority: &str,
) -> Result<TrustedState, StoreError> {
    match table.get(authority)? {
        None => Ok(TrustedState::default()),
        Some(bytes) => serde_json::from_slice(bytes.value()).map_err(|e| StoreError::Corrupt {
            authority: authority.to_owned(),
            message: e.to_string(),
        }),
    }
}

fn write_trusted(
    txn: &WriteTransaction,
    authority: &str,
    state: &TrustedState,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(state).map_err(|e| StoreError::Corrupt {
        authority: authority.to_owned(),
        message: e.to_string(),
    })?;
    txn.open_table(TRUSTED)?
        .insert(authority, bytes.as_slice())?;
    Ok(())
}

/// The root of what is held: empty for nothing held.
fn held_root(authority: &str, held: &TrustedState) -> Result<StateRoot, StoreError> {
    if held.state_root.is_empty() {
        return Ok(StateRoot::default());
    }
    StateRoot::from_bytes(&held.state_root).ok_or_else(|| StoreError::Corrupt {
        authority: authority.to_owned(),
        message: "state root is not 64 bytes".into(),
    })
}

fn replay_rotations(
    table: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    keys: &mut TrustedKeys,
) -> Result<(), StoreError> {
    let authority = keys.authority().to_owned();
    for item in table.range((authority.as_str(), 0)..=(authority.as_str(), u64::MAX))? {
        let (_, bytes) = item?;
        let followed = pb::KeyRotation::decode(bytes.value())
            .map_err(|_| IntakeError::Malformed("stored rotation does not decode"))
            .and_then(|rotation| keys.accept_rotation(&rotation));
        if let Err(e) = followed {
            tracing::warn!(%authority, error = %e, "a stored key rotation no longer chains to the enrolled keys; skipped");
        }
    }
    Ok(())
}

/// Creates the file with mode 0600 if it does not exist, so redb never creates it world-readable.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map(drop)
}

#[cfg(test)]
mod tests;
