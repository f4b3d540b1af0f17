//! The register's storage: the only code that opens redb tables. It offers domain methods
//! (`create_child`, `start_plan`, `import_rows`, ...) and makes every change, its revision and its
//! audit entries one write transaction, so a crash leaves either all of a change or none of it.
//!
//! # Layout
//! - [`audit`]: appending to the hash chain and signing checkpoints inside a transaction.
//! - [`children`]: children's records, revisions and plans.
//! - [`directory`]: the organisation directory and historic-plan releases.
//! - [`publish`]: the lookup projection, its state root and the log of published versions.
//! - [`replicas`]: what each replica last reported.
//! - [`enquiries`]: the enquiries the replicas reported.
//! - [`follow_up`]: what each enquiry leads to: the lead social worker told, Contacts, alerts.
//! - [`rotations`]: the authority's key rotations, as signed, and the key chain they make.
//! - [`notifications`]: the notification outbox: what is owed to the webhook and to e-mail.

mod audit;
mod children;
mod directory;
mod enquiries;
mod follow_up;
mod notifications;
mod publish;
mod replicas;
mod rotations;

use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use redb::{Database, TableDefinition};

use crate::clock::Clock;
use crate::lifecycle::RuleError;

pub use audit::AuditChain;
pub use children::{ChildFilter, ImportOutcome};
pub use enquiries::ReceivedEnquiry;
pub use follow_up::{Acknowledgement, Alert, AlertFilter, ContactRecord};
pub use notifications::{Notification, NotificationFilter, Sink, SinkDelivery};
pub use publish::{Head, KEPT_VERSIONS, Outgoing};
pub use replicas::ReplicaReport;
pub use rotations::KeyInForce;

/// Current record of each child, by record id.
const CHILDREN: TableDefinition<&str, &[u8]> = TableDefinition::new("children");
/// Every revision of every child, by (record id, revision).
const REVISIONS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("revisions");
/// Plan documents by hex SHA-256 of their content.
const DOCUMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("plan_documents");
/// The organisation directory, by organisation id.
const ORGANISATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("organisations");
/// Historic-plan release requests, by id.
const RELEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("historic_releases");
/// The audit chain: exact entry bytes by sequence number.
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
/// Signed checkpoints of the audit chain, by the sequence number they cover: (bytes, signature).
const CHECKPOINTS: TableDefinition<u64, (&[u8], &[u8])> = TableDefinition::new("audit_checkpoints");

/// A failed store operation. Each message says what went wrong in terms a custodian can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No child with that record id.
    #[error("no child with record id {0:?}")]
    NoSuchChild(String),
    /// A child with that record id is already on the register.
    #[error("a child with record id {0:?} is already on the register; use update to change it")]
    ChildExists(String),
    /// The change was based on an older revision than the current one.
    #[error(
        "record {record_id} is at revision {current}, not {expected}: reload it and apply the change again"
    )]
    StaleRevision {
        record_id: String,
        expected: u32,
        current: u32,
    },
    /// A rule of the procedures was broken.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// A field was missing or malformed.
    #[error("{0}")]
    Invalid(String),
    /// No organisation with that id.
    #[error("no organisation with id {0:?}")]
    NoSuchOrganisation(String),
    /// No historic release request with that id.
    #[error("no historic release request with id {0:?}")]
    NoSuchRelease(String),
    /// The request has not been approved by the custodian.
    #[error(
        "historic release {id} is {status}: plans are released only once the custodian approves it"
    )]
    NotApproved { id: String, status: &'static str },
    /// The request was already decided.
    #[error("historic release {0} has already been decided")]
    AlreadyDecided(String),
    /// The database failed (see [`StoreError::is_in_use`] for the commonest case).
    #[error("database: {0}")]
    Database(#[from] redb::Error),
    /// A stored value could not be encoded or decoded.
    #[error("stored value: {0}")]
    Encoding(#[from] serde_json::Error),
}

impl StoreError {
    /// The register file is held by another process: a running `cpreg-primary`. Offline commands
    /// (`rotate-key`, `export`, `audit-verify`) say so in words rather than redb's.
    pub fn is_in_use(&self) -> bool {
        matches!(self, StoreError::Database(redb::Error::DatabaseAlreadyOpen))
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(e.into())
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

/// The register on disk.
#[derive(Debug)]
pub struct Store {
    db: Database,
    /// Signs audit checkpoints and snapshot manifests as the authority: the newest key of the
    /// chain in [`rotations`].
    key: SigningKey,
    authority: String,
    clock: Arc<dyn Clock>,
    /// The newest published version, for subscribers to wait on.
    published: tokio::sync::watch::Sender<u64>,
    /// The delivery tasks waiting for notifications, woken after a commit that queued some.
    delivery_wakers: std::sync::Mutex<Vec<std::sync::Weak<tokio::sync::Notify>>>,
}

impl Store {
    /// Opens (or creates) the register file, making every table so readers never find one absent.
    /// Refuses a signing key the stored key chain does not end with (see
    /// [`Store::key_in_force`]), and warns of a key rotation that was stored but not finished.
    pub fn open(
        path: &Path,
        authority: &str,
        key: SigningKey,
        clock: Arc<dyn Clock>,
    ) -> Result<Store, StoreError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(CHILDREN)?;
        txn.open_table(REVISIONS)?;
        txn.open_table(DOCUMENTS)?;
        txn.open_table(ORGANISATIONS)?;
        txn.open_table(RELEASES)?;
        txn.open_table(AUDIT)?;
        txn.open_table(CHECKPOINTS)?;
        Store::open_publish_tables(&txn)?;
        txn.open_table(replicas::REPLICAS)?;
        txn.open_table(enquiries::ENQUIRIES)?;
        txn.open_table(follow_up::CONTACTS)?;
        txn.open_table(follow_up::SUBJECTS)?;
        txn.open_table(follow_up::ALERTS)?;
        txn.open_table(follow_up::HOMES)?;
        txn.open_table(follow_up::SEEN)?;
        txn.open_table(rotations::ROTATIONS)?;
        txn.commit()?;
        let (published, _) = tokio::sync::watch::channel(0);
        let store = Store {
            db,
            key,
            authority: authority.to_owned(),
            clock,
            published,
            delivery_wakers: std::sync::Mutex::default(),
        };
        store.published.send_replace(store.head()?.version);
        if store.head()?.version == 0 && store.count_children()? > 0 {
            // A register kept before it published anything: project it all once.
            store.republish_all()?;
        }
        if let KeyInForce::InterruptedRotation { announced } = store.key_in_force()? {
            tracing::warn!(
                %announced,
                "a key rotation was recorded but its key files were not swapped: still signing with the retired key; run `cpreg-primary rotate-key` again to finish it"
            );
        }
        Ok(store)
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Signs as the authority (snapshot manifests).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

/// What a write transaction records besides its own tables: the audit entries of the change and
/// what it changes in the published projection. [`Recorder::commit`] writes both and commits.
pub(super) struct Recorder {
    audit: audit::AuditBatch,
    publication: publish::Publication,
}

impl Recorder {
    pub(super) fn new(actor: &str, now: chrono::DateTime<chrono::Utc>) -> Self {
        Recorder {
            audit: audit::AuditBatch::new(actor, now),
            publication: publish::Publication::default(),
        }
    }

    /// Writes the audit entries and the new version (if the projection changed), commits, and
    /// wakes the subscribers. A transaction that recorded nothing is aborted: it wrote nothing.
    pub(super) fn commit(
        self,
        store: &Store,
        txn: redb::WriteTransaction,
    ) -> Result<(), StoreError> {
        if self.audit.is_empty() {
            txn.abort()?;
            return Ok(());
        }
        self.audit.write(store, &txn)?;
        let version = self.publication.write(&txn)?;
        txn.commit()?;
        store.announce(version);
        Ok(())
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(value)?)
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Every value of a table, decoded, in key order.
fn decode_all<K, T>(
    table: &impl redb::ReadableTable<K, &'static [u8]>,
) -> Result<Vec<T>, StoreError>
where
    K: redb::Key + 'static,
    T: serde::de::DeserializeOwned,
{
    table.iter()?.map(|row| decode(row?.1.value())).collect()
}
