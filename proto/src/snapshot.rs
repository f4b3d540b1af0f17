//! Signed snapshots: what the primary signs and the replica checks, byte for byte.
//!
//! A version of an authority's lookup projection travels as a [`pb::SignedManifest`] followed by
//! its payload, a sequence of length-delimited [`pb::Change`]s. The signature covers the exact
//! manifest bytes under [`MANIFEST_DOMAIN`]; the replica verifies it before decoding anything,
//! then checks the manifest against what it holds ([`check_manifest`]), then the payload against
//! the manifest ([`check_payload`]), and only then decodes the changes.
//!
//! The [`StateRoot`] summarises a whole register as the wrapping sum of one 512-bit hash per
//! entry, so adding, replacing or removing an entry updates it in constant time: a one-record
//! delta costs the same on a register of ten children or a million, and after applying anything
//! the replica can prove it holds exactly the entries the primary signed.
//!
//! The checks follow The Update Framework's list of attacks: arbitrary (forged) data, rollback,
//! freeze (expired metadata), mix-and-match (a delta on the wrong base), endless data, and
//! metadata from the wrong authority or an untrusted key.
//!
//! [`file`] lays the same frames out as a file, for a site with no link at all.

pub mod file;
mod rotation;

pub use rotation::{RotationRefused, TrustedKeys, decode_rotation, rotation_frame, sign_rotation};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use crate::pb;

/// Prefix of every signed manifest.
pub const MANIFEST_DOMAIN: &[u8] = b"cpreg-snapshot-manifest-v1\0";
/// Prefix of every key rotation statement.
pub const ROTATION_DOMAIN: &[u8] = b"cpreg-key-rotation-v1\0";
const ENTRY_DOMAIN: &[u8] = b"cpreg-state-entry-v1\0";

/// Largest key of an entry.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest value of an entry.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// How far ahead of the replica's clock a manifest's issue time may be.
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 300;

/// Largest encoded manifest.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024;

/// Entry keys: `child/<record id>`, `org/<organisation id>`, and the authority's own numbers.
pub const CHILD_PREFIX: &str = "child/";
pub const ORGANISATION_PREFIX: &str = "org/";
pub const AUTHORITY_KEY: &str = "authority";

/// A short, stable name for a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// SHA-256 of a payload.
pub fn payload_digest(payload: &[u8]) -> Vec<u8> {
    Sha256::digest(payload).to_vec()
}

/// The order-independent summary of a register's entries (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateRoot([u64; 8]);

impl StateRoot {
    fn lanes(key: &str, value: &[u8]) -> [u64; 8] {
        let mut h = Sha512::new();
        h.update(ENTRY_DOMAIN);
        h.update((key.len() as u32).to_le_bytes());
        h.update(key.as_bytes());
        h.update(value);
        let digest = h.finalize();
        let mut lanes = [0u64; 8];
        for (lane, bytes) in lanes.iter_mut().zip(digest.chunks_exact(8)) {
            *lane = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        }
        lanes
    }

    /// Counts an entry in.
    pub fn insert(&mut self, key: &str, value: &[u8]) {
        for (a, b) in self.0.iter_mut().zip(Self::lanes(key, value)) {
            *a = a.wrapping_add(b);
        }
    }

    /// Counts an entry out.
    pub fn remove(&mut self, key: &str, value: &[u8]) {
        for (a, b) in self.0.iter_mut().zip(Self::lanes(key, value)) {
            *a = a.wrapping_sub(b);
        }
    }

    pub fn to_bytes(self) -> Vec<u8> {
        self.0.iter().flat_map(|l| l.to_le_bytes()).collect()
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<StateRoot> {
        if bytes.len() != 64 {
            return None;
        }
        let mut lanes = [0u64; 8];
        for (lane, b) in lanes.iter_mut().zip(bytes.chunks_exact(8)) {
            *lane = u64::from_le_bytes(b.try_into().ok()?);
        }
        Some(StateRoot(lanes))
    }

    /// The first 16 hex digits, for people.
    pub fn short(self) -> String {
        hex::encode(&self.to_bytes()[..8])
    }
}

/// Encodes changes as a payload.
pub fn encode_changes<'a>(changes: impl IntoIterator<Item = &'a pb::Change>) -> Vec<u8> {
    let mut out = Vec::new();
    for change in changes {
        change
            .encode_length_delimited(&mut out)
            .expect("a Vec grows as needed");
    }
    out
}

/// Decodes a payload's changes one by one, refusing oversize keys and values.
pub fn decode_changes(
    payload: &[u8],
) -> impl Iterator<Item = Result<pb::Change, IntakeError>> + '_ {
    let mut rest = payload;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let result = pb::Change::decode_length_delimited(&mut rest)
            .map_err(|_| IntakeError::Malformed("a change in the payload does not decode"))
            .and_then(|c| {
                if c.key.is_empty() || c.key.len() > MAX_KEY_BYTES {
                    Err(IntakeError::Malformed(
                        "a change's key is empty or too long",
                    ))
                } else if c.value.len() > MAX_VALUE_BYTES {
                    Err(IntakeError::Malformed("a change's value is too long"))
                } else {
                    Ok(c)
                }
            });
        if result.is_err() {
            rest = &[];
        }
        Some(result)
    })
}

/// Signs a manifest as the authority.
pub fn sign_manifest(manifest: &pb::Manifest, key: &SigningKey) -> pb::SignedManifest {
    let bytes = manifest.encode_to_vec();
    let signature = key.sign(&[MANIFEST_DOMAIN, &bytes].concat());
    pb::SignedManifest {
        key_id: key_id(&key.verifying_key()),
        manifest: bytes,
        signature: signature.to_bytes().to_vec(),
    }
}

/// Why a snapshot, delta, freshness statement or rotation was refused. Nothing of it was kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntakeError {
    #[error(
        "signed by key {key_id:?}, which is not a trusted key of {authority} (not enrolled, nor chained to an enrolled key)"
    )]
    UntrustedKey { authority: String, key_id: String },
    #[error("the signature does not verify")]
    BadSignature,
    #[error(
        "issued at {issued_at}, ahead of this replica's clock ({now}) by more than the allowed skew: check the primary's or the replica's clock"
    )]
    IssuedInFuture { issued_at: i64, now: i64 },
    #[error("signed by key {key_id:?}, which a rotation has retired")]
    RetiredKey { key_id: String },
    #[error("malformed: {0}")]
    Malformed(&'static str),
    #[error("for authority {got:?}, but this stream is for {expected:?}")]
    WrongAuthority { expected: String, got: String },
    #[error("version {offered} is not newer than the version held, {held} (rollback or replay)")]
    Rollback { held: u64, offered: u64 },
    #[error("expired at {expires_at} (now {now}): a frozen or replayed manifest")]
    Expired { expires_at: i64, now: i64 },
    #[error("a delta on version {base}, but the version held is {held} (mix-and-match)")]
    WrongBase { held: u64, base: u64 },
    #[error("a freshness statement for version {offered}, but the version held is {held}")]
    FreshnessForOtherVersion { held: u64, offered: u64 },
    #[error("a freshness statement older than the last one (replay)")]
    FreshnessReplayed,
    #[error("payload of {size} bytes is over the limit of {limit}")]
    Oversize { size: u64, limit: u64 },
    #[error("payload of {got} bytes where the manifest says {expected}")]
    SizeMismatch { expected: u64, got: u64 },
    #[error("payload digest does not match the manifest")]
    DigestMismatch,
    #[error("after applying, the register's state root is not the one signed")]
    StateRootMismatch,
    #[error("after applying, the register holds {got} entries where the manifest says {expected}")]
    EntryCountMismatch { expected: u64, got: u64 },
}

/// What a replica holds of one authority, as far as intake is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TrustedState {
    pub version: u64,
    /// [`StateRoot::to_bytes`] of what is held.
    pub state_root: Vec<u8>,
    pub entry_count: u64,
    /// When the primary last vouched for this version (manifest or freshness statement).
    pub issued_at: i64,
    pub expires_at: i64,
}

/// Checks a signed manifest against the trusted keys and the state held, in the order of the
/// attacks they stop. Returns the decoded manifest; nothing has been changed.
pub fn check_manifest(
    signed: &pb::SignedManifest,
    keys: &TrustedKeys,
    held: &TrustedState,
    now: i64,
    max_payload: u64,
) -> Result<pb::Manifest, IntakeError> {
    // 1. Size first, so an endless manifest costs nothing.
    if signed.manifest.len() > MAX_MANIFEST_BYTES {
        return Err(IntakeError::Malformed("manifest is too long"));
    }
    // 2. Arbitrary data: the signature, by the key in force (not a retired one), over the exact
    // bytes, before decoding; strict verification refuses small-order keys and malleable
    // signatures.
    let key = keys.current_named(&signed.key_id)?;
    let signature =
        Signature::from_slice(&signed.signature).map_err(|_| IntakeError::BadSignature)?;
    key.verify_strict(&[MANIFEST_DOMAIN, &signed.manifest].concat(), &signature)
        .map_err(|_| IntakeError::BadSignature)?;
    let manifest = pb::Manifest::decode(signed.manifest.as_slice())
        .map_err(|_| IntakeError::Malformed("manifest does not decode"))?;
    // 3. Wrong authority: a manifest validly signed for another register.
    if manifest.authority != keys.authority() {
        return Err(IntakeError::WrongAuthority {
            expected: keys.authority().to_owned(),
            got: manifest.authority,
        });
    }
    if manifest.key_id != signed.key_id {
        return Err(IntakeError::Malformed(
            "the signed key id differs from the envelope's",
        ));
    }
    if StateRoot::from_bytes(&manifest.state_root).is_none() {
        return Err(IntakeError::Malformed("state root is not 64 bytes"));
    }
    // 4a. A manifest from the future would keep a copy looking fresh (and make every later
    // freshness statement look like a replay) until that time: refuse it beyond clock skew.
    if manifest.issued_at > now + MAX_CLOCK_SKEW_SECONDS {
        return Err(IntakeError::IssuedInFuture {
            issued_at: manifest.issued_at,
            now,
        });
    }
    // 4b. Freeze: an expired manifest is refused, however well signed.
    if manifest.expires_at <= now {
        return Err(IntakeError::Expired {
            expires_at: manifest.expires_at,
            now,
        });
    }
    match pb::ManifestKind::try_from(manifest.kind) {
        Ok(pb::ManifestKind::Freshness) => {
            // 5a. A freshness statement vouches for the version held, and may not be older than
            // the last one. One issued in the same second as the last (a replica that reconnects
            // at once) vouches for nothing new and is harmless.
            if manifest.version != held.version || manifest.state_root != held.state_root {
                return Err(IntakeError::FreshnessForOtherVersion {
                    held: held.version,
                    offered: manifest.version,
                });
            }
            if manifest.issued_at < held.issued_at {
                return Err(IntakeError::FreshnessReplayed);
            }
            if manifest.payload_size != 0 {
                return Err(IntakeError::Malformed(
                    "a freshness statement carries no payload",
                ));
            }
        }
        Ok(kind @ (pb::ManifestKind::Full | pb::ManifestKind::Delta)) => {
            // 5b. Rollback and replay: strictly newer versions only.
            if manifest.version <= held.version {
                return Err(IntakeError::Rollback {
                    held: held.version,
                    offered: manifest.version,
                });
            }
            // 6. Mix-and-match: a delta applies only to the version it was made from.
            if kind == pb::ManifestKind::Delta && manifest.base_version != held.version {
                return Err(IntakeError::WrongBase {
                    held: held.version,
                    base: manifest.base_version,
                });
            }
            // 7. Endless data: the declared size within the limit (the stream is held to it).
            if manifest.payload_size > max_payload {
                return Err(IntakeError::Oversize {
                    size: manifest.payload_size,
                    limit: max_payload,
                });
            }
            if manifest.payload_digest.len() != 32 {
                return Err(IntakeError::Malformed("payload digest is not 32 bytes"));
            }
        }
        _ => return Err(IntakeError::Malformed("unknown manifest kind")),
    }
    Ok(manifest)
}

/// 8. The payload is exactly what the manifest signed.
pub fn check_payload(manifest: &pb::Manifest, payload: &[u8]) -> Result<(), IntakeError> {
    if payload.len() as u64 != manifest.payload_size {
        return Err(IntakeError::SizeMismatch {
            expected: manifest.payload_size,
            got: payload.len() as u64,
        });
    }
    if payload_digest(payload) != manifest.payload_digest {
        return Err(IntakeError::DigestMismatch);
    }
    Ok(())
}

/// The frames of one version as a subscription or a snapshot file carries them: the signed
/// manifest, then the payload in chunks of at most `chunk_bytes`. Lazy, so a large payload is
/// copied one chunk at a time.
pub fn version_frames(
    signed: pb::SignedManifest,
    payload: &[u8],
    chunk_bytes: usize,
) -> impl Iterator<Item = pb::SnapshotFrame> + '_ {
    let manifest = pb::SnapshotFrame {
        frame: Some(pb::snapshot_frame::Frame::Manifest(signed)),
    };
    std::iter::once(manifest).chain(payload.chunks(chunk_bytes.max(1)).map(|chunk| {
        pb::SnapshotFrame {
            frame: Some(pb::snapshot_frame::Frame::Chunk(chunk.to_vec())),
        }
    }))
}

#[cfg(test)]
mod tests;
