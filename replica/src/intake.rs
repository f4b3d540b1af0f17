//! Snapshot intake for one authority: takes the frames of a subscription (or of an imported
//! snapshot file, `crate::import`) one at a time, checks each version with
//! `cpreg_proto::snapshot` in the order of the attacks the checks stop, gathers its payload
//! within the size it declared, and applies it to the store only once every check has passed.
//! Nothing of a refused version is kept.

use std::sync::Arc;

use cpreg_proto::pb;
use cpreg_proto::pb::snapshot_frame::Frame;
use cpreg_proto::snapshot::{
    IntakeError, TrustedKeys, TrustedState, check_manifest, check_payload, key_id,
};
use ed25519_dalek::VerifyingKey;

use crate::clock::Clock;
use crate::status::LinkState;
use crate::store::{ApplyError, Store, StoreError};

/// Payload buffers grow as chunks arrive; this caps what a declared size reserves up front.
const MAX_RESERVE_BYTES: u64 = 16 * 1024 * 1024;

/// What a frame led to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// Part of a version is gathered; more chunks are due.
    Gathering,
    /// A full snapshot or delta was proved and committed.
    Applied(TrustedState),
    /// A freshness statement extended the version held.
    Refreshed(TrustedState),
    /// A key rotation was followed (or was already known).
    KeyTrusted { key_id: String },
    /// A key rotation no trusted key signed: not followed, and nothing it announces is trusted.
    /// Counted as a refusal but not fatal, because a rotation from before the key this replica
    /// was enrolled with looks the same, and the primary sends the whole chain to everyone.
    RotationNotFollowed(IntakeError),
}

/// Why a frame was not taken. After any of these the caller drops the stream: the primary will
/// resend from the version held.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame, or the version it belongs to, failed a check.
    #[error("refused: {0}")]
    Refused(#[from] IntakeError),
    /// The local store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl From<ApplyError> for FrameError {
    fn from(e: ApplyError) -> Self {
        match e {
            ApplyError::Refused(e) => FrameError::Refused(e),
            ApplyError::Store(e) => FrameError::Store(e),
        }
    }
}

/// A version whose manifest passed and whose payload is arriving.
#[derive(Debug)]
struct Pending {
    manifest: pb::Manifest,
    payload: Vec<u8>,
}

/// The intake state machine of one authority.
#[derive(Debug)]
pub struct Intake {
    authority: String,
    /// The keys in the configuration: every rotation is replayed from them.
    enrolled: Vec<VerifyingKey>,
    /// Enrolled keys plus rotations followed; kept in step with the store.
    keys: TrustedKeys,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    max_payload: u64,
    /// Where refusals are counted for the status.
    link: Arc<LinkState>,
    pending: Option<Pending>,
}

impl Intake {
    /// An intake for `authority`, trusting `enrolled` and the rotations already stored.
    pub async fn new(
        authority: &str,
        enrolled: Vec<VerifyingKey>,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        max_payload: u64,
        link: Arc<LinkState>,
    ) -> Result<Intake, StoreError> {
        let keys = {
            let (store, authority, enrolled) =
                (store.clone(), authority.to_owned(), enrolled.clone());
            blocking(move || store.trusted_keys(&authority, &enrolled)).await?
        };
        Ok(Intake {
            authority: authority.to_owned(),
            enrolled,
            keys,
            store,
            clock,
            max_payload,
            link,
            pending: None,
        })
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// What is held now.
    pub async fn held(&self) -> Result<TrustedState, StoreError> {
        let (store, authority) = (self.store.clone(), self.authority.clone());
        blocking(move || store.trusted_state(&authority)).await
    }

    /// Takes one frame. A refusal is logged and counted, and whatever was gathered of its version
    /// is dropped.
    pub async fn frame(&mut self, frame: pb::SnapshotFrame) -> Result<Progress, FrameError> {
        self.link.contact(self.clock.now());
        let result = self.take(frame).await;
        match &result {
            Ok(Progress::Applied(state)) => {
                tracing::info!(authority = %self.authority, version = state.version, entries = state.entry_count, "version applied");
            }
            Ok(Progress::RotationNotFollowed(error)) => {
                // Every subscription repeats the whole chain, and a replica enrolled after
                // several rotations cannot verify the early ones: not an alarm. A forged
                // rotation changes nothing, and what it would sign is refused and counted.
                tracing::debug!(authority = %self.authority, %error, "a key rotation not signed by the key in force was not followed");
            }
            Ok(_) => {}
            Err(FrameError::Refused(error)) => {
                self.pending = None;
                tracing::warn!(authority = %self.authority, %error, "snapshot refused");
                self.link.refused(error);
            }
            Err(FrameError::Store(error)) => {
                self.pending = None;
                tracing::error!(authority = %self.authority, %error, "snapshot not applied: store failed");
                self.link.failed(format!("store: {error}"));
            }
        }
        result
    }

    /// The input ended (a snapshot file was read to its end): a version still gathering is cut
    /// short, and is refused like any payload shorter than its manifest declares.
    pub fn end_of_input(&mut self) -> Result<(), FrameError> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let error = IntakeError::SizeMismatch {
            expected: pending.manifest.payload_size,
            got: pending.payload.len() as u64,
        };
        tracing::warn!(authority = %self.authority, %error, "the input ended inside a version's payload");
        self.link.refused(&error);
        Err(error.into())
    }

    /// The input failed (a snapshot file that cannot be read on): whatever was gathered is
    /// dropped, and the failure shown in the status.
    pub fn input_failed(&mut self, message: String) {
        self.pending = None;
        tracing::warn!(authority = %self.authority, error = %message, "input failed; nothing of it was applied");
        self.link.failed(message);
    }

    /// The link dropped: whatever was gathered of an unfinished version is dropped with it.
    pub fn abandon(&mut self) {
        if let Some(pending) = self.pending.take() {
            tracing::info!(
                authority = %self.authority,
                version = pending.manifest.version,
                gathered = pending.payload.len(),
                "link lost mid-payload; the version will be fetched again"
            );
        }
    }

    async fn take(&mut self, frame: pb::SnapshotFrame) -> Result<Progress, FrameError> {
        match frame.frame {
            None => Err(IntakeError::Malformed("an empty frame").into()),
            Some(Frame::Rotation(rotation)) => {
                if self.pending.is_some() {
                    return Err(IntakeError::Malformed(
                        "a key rotation arrived in the middle of a payload",
                    )
                    .into());
                }
                self.rotate(rotation).await
            }
            Some(Frame::Manifest(signed)) => {
                // A new manifest before the last payload was complete: that payload was short.
                if let Some(p) = self.pending.take() {
                    return Err(IntakeError::SizeMismatch {
                        expected: p.manifest.payload_size,
                        got: p.payload.len() as u64,
                    }
                    .into());
                }
                self.begin(signed).await
            }
            Some(Frame::Chunk(bytes)) => {
                let Some(pending) = self.pending.as_mut() else {
                    return Err(IntakeError::Malformed(
                        "a chunk arrived with no manifest before it",
                    )
                    .into());
                };
                // Endless data: refused as soon as the bytes would pass the declared size.
                let got = pending.payload.len() as u64 + bytes.len() as u64;
                if got > pending.manifest.payload_size {
                    return Err(IntakeError::SizeMismatch {
                        expected: pending.manifest.payload_size,
                        got,
                    }
                    .into());
                }
                pending.payload.extend_from_slice(&bytes);
                if got < pending.manifest.payload_size {
                    return Ok(Progress::Gathering);
                }
                match self.pending.take() {
                    Some(Pending { manifest, payload }) => self.finish(manifest, payload).await,
                    None => Ok(Progress::Gathering),
                }
            }
        }
    }

    /// Checks a manifest against the keys and the state held; a freshness statement is recorded
    /// at once, a version waits for its payload.
    async fn begin(&mut self, signed: pb::SignedManifest) -> Result<Progress, FrameError> {
        let held = self.held().await?;
        let now = self.clock.now().timestamp();
        let manifest = check_manifest(&signed, &self.keys, &held, now, self.max_payload)?;
        if manifest.kind == i32::from(pb::ManifestKind::Freshness) {
            let (store, authority) = (self.store.clone(), self.authority.clone());
            let state = blocking(move || store.apply_freshness(&authority, &manifest)).await?;
            return Ok(Progress::Refreshed(state));
        }
        if manifest.payload_size == 0 {
            return self.finish(manifest, Vec::new()).await;
        }
        let reserve = manifest.payload_size.min(MAX_RESERVE_BYTES) as usize;
        self.pending = Some(Pending {
            manifest,
            payload: Vec::with_capacity(reserve),
        });
        Ok(Progress::Gathering)
    }

    /// Checks the whole payload against the manifest, then applies it off the async runtime.
    async fn finish(
        &mut self,
        manifest: pb::Manifest,
        payload: Vec<u8>,
    ) -> Result<Progress, FrameError> {
        let started = std::time::Instant::now();
        check_payload(&manifest, &payload)?;
        let (store, authority) = (self.store.clone(), self.authority.clone());
        let state = blocking(move || store.apply(&authority, &manifest, &payload)).await?;
        self.link.applied(started.elapsed());
        Ok(Progress::Applied(state))
    }

    /// Follows a key rotation and persists it; one that repeats a rotation already followed
    /// changes nothing. One that no trusted key signed is not followed (see
    /// [`Progress::RotationNotFollowed`]); if it announces a key already trusted, it is the
    /// rotation to the key this replica was enrolled with, and is skipped without a word.
    async fn rotate(&mut self, rotation: pb::KeyRotation) -> Result<Progress, FrameError> {
        // Checked here first so a bad rotation costs no write transaction.
        let new_key = match self.keys.clone().accept_rotation(&rotation) {
            Ok(key) => key,
            Err(error @ (IntakeError::BadSignature | IntakeError::RetiredKey { .. })) => {
                return Ok(match self.keys.already_trusted(&rotation) {
                    Some(key) => Progress::KeyTrusted {
                        key_id: key_id(&key),
                    },
                    None => Progress::RotationNotFollowed(error),
                });
            }
            Err(error) => return Err(error.into()),
        };
        let key_id = key_id(&new_key);
        if self.keys.keys().contains(&new_key) {
            return Ok(Progress::KeyTrusted { key_id });
        }
        let (store, authority, enrolled) = (
            self.store.clone(),
            self.authority.clone(),
            self.enrolled.clone(),
        );
        self.keys =
            blocking(move || store.record_rotation(&authority, &rotation, &enrolled)).await?;
        tracing::info!(authority = %self.authority, %key_id, "key rotation followed");
        Ok(Progress::KeyTrusted { key_id })
    }
}

/// Runs store work on the blocking pool. A panic there becomes a store error rather than
/// taking the subscriber down.
async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(StoreError::Task(e.to_string()).into()),
    }
}

#[cfg(test)]
mod tests;
