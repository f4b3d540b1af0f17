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

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
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

/// Announces `new` as the authority's key, signed by the key it replaces.
pub fn sign_rotation(
    authority: &str,
    old: &SigningKey,
    new: &VerifyingKey,
    issued_at: i64,
) -> pb::KeyRotation {
    let statement = pb::RotationStatement {
        authority: authority.to_owned(),
        old_key_id: key_id(&old.verifying_key()),
        new_key_id: key_id(new),
        new_public_key: new.as_bytes().to_vec(),
        issued_at,
    }
    .encode_to_vec();
    let signature = old
        .sign(&[ROTATION_DOMAIN, &statement].concat())
        .to_bytes()
        .to_vec();
    pb::KeyRotation {
        statement,
        signature,
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
    #[error("a freshness statement no newer than the last one (replay)")]
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

/// The keys a replica trusts for one authority: those enrolled in its configuration, and those
/// announced by a rotation statement signed with a key already trusted.
#[derive(Debug, Clone)]
pub struct TrustedKeys {
    authority: String,
    keys: Vec<VerifyingKey>,
}

impl TrustedKeys {
    pub fn new(authority: &str, enrolled: Vec<VerifyingKey>) -> Self {
        TrustedKeys {
            authority: authority.to_owned(),
            keys: enrolled,
        }
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    fn find(&self, id: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| key_id(k) == id)
    }

    /// Follows a rotation: verifies it against a trusted key, then trusts the new key.
    pub fn accept_rotation(
        &mut self,
        rotation: &pb::KeyRotation,
    ) -> Result<VerifyingKey, IntakeError> {
        let signature =
            Signature::from_slice(&rotation.signature).map_err(|_| IntakeError::BadSignature)?;
        let message = [ROTATION_DOMAIN, &rotation.statement].concat();
        // Verify before decoding: try each trusted key (there are few).
        let signer = self
            .keys
            .iter()
            .find(|k| k.verify(&message, &signature).is_ok());
        let Some(signer) = signer.copied() else {
            return Err(IntakeError::BadSignature);
        };
        let statement = pb::RotationStatement::decode(rotation.statement.as_slice())
            .map_err(|_| IntakeError::Malformed("rotation statement does not decode"))?;
        if statement.authority != self.authority {
            return Err(IntakeError::WrongAuthority {
                expected: self.authority.clone(),
                got: statement.authority,
            });
        }
        if statement.old_key_id != key_id(&signer) {
            return Err(IntakeError::Malformed(
                "rotation statement names another old key",
            ));
        }
        let bytes: [u8; 32] = statement
            .new_public_key
            .as_slice()
            .try_into()
            .map_err(|_| IntakeError::Malformed("rotation's new key is not 32 bytes"))?;
        let new = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| IntakeError::Malformed("rotation's new key is not a valid key"))?;
        if key_id(&new) != statement.new_key_id {
            return Err(IntakeError::Malformed(
                "rotation's key id does not match its key",
            ));
        }
        if self.find(&statement.new_key_id).is_none() {
            self.keys.push(new);
        }
        Ok(new)
    }
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
    // 2. Arbitrary data: the signature, by a trusted key, over the exact bytes, before decoding.
    let key = keys
        .find(&signed.key_id)
        .ok_or_else(|| IntakeError::UntrustedKey {
            authority: keys.authority.clone(),
            key_id: signed.key_id.clone(),
        })?;
    let signature =
        Signature::from_slice(&signed.signature).map_err(|_| IntakeError::BadSignature)?;
    key.verify(&[MANIFEST_DOMAIN, &signed.manifest].concat(), &signature)
        .map_err(|_| IntakeError::BadSignature)?;
    let manifest = pb::Manifest::decode(signed.manifest.as_slice())
        .map_err(|_| IntakeError::Malformed("manifest does not decode"))?;
    // 3. Wrong authority: a manifest validly signed for another register.
    if manifest.authority != keys.authority {
        return Err(IntakeError::WrongAuthority {
            expected: keys.authority.clone(),
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
    // 4. Freeze: an expired manifest is refused, however well signed.
    if manifest.expires_at <= now {
        return Err(IntakeError::Expired {
            expires_at: manifest.expires_at,
            now,
        });
    }
    match pb::ManifestKind::try_from(manifest.kind) {
        Ok(pb::ManifestKind::Freshness) => {
            // 5a. A freshness statement vouches for the version held, and must be newer than the
            // last one.
            if manifest.version != held.version || manifest.state_root != held.state_root {
                return Err(IntakeError::FreshnessForOtherVersion {
                    held: held.version,
                    offered: manifest.version,
                });
            }
            if manifest.issued_at <= held.issued_at {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    fn manifest(version: u64, kind: pb::ManifestKind, base: u64, payload: &[u8]) -> pb::Manifest {
        pb::Manifest {
            authority: "lambeth".into(),
            version,
            issued_at: 1_000 + version as i64,
            expires_at: 10_000,
            key_id: key_id(&key(1).verifying_key()),
            kind: kind.into(),
            base_version: base,
            payload_digest: payload_digest(payload),
            payload_size: payload.len() as u64,
            entry_count: 1,
            state_root: StateRoot::default().to_bytes(),
        }
    }

    fn trusted() -> TrustedKeys {
        TrustedKeys::new("lambeth", vec![key(1).verifying_key()])
    }

    fn held(version: u64) -> TrustedState {
        TrustedState {
            version,
            state_root: StateRoot::default().to_bytes(),
            entry_count: 1,
            issued_at: 1_000,
            expires_at: 10_000,
        }
    }

    #[test]
    fn state_root_does_not_depend_on_order_and_removal_undoes_insertion() {
        let mut a = StateRoot::default();
        a.insert("child/1", b"x");
        a.insert("child/2", b"y");
        let mut b = StateRoot::default();
        b.insert("child/2", b"y");
        b.insert("child/1", b"x");
        assert_eq!(a, b);
        b.remove("child/2", b"y");
        b.remove("child/1", b"x");
        assert_eq!(b, StateRoot::default());
        assert_eq!(StateRoot::from_bytes(&a.to_bytes()), Some(a));
    }

    #[test]
    fn the_key_length_is_part_of_the_entry_hash() {
        let mut a = StateRoot::default();
        a.insert("ab", b"c");
        let mut b = StateRoot::default();
        b.insert("a", b"bc");
        assert_ne!(a, b);
    }

    #[test]
    fn changes_round_trip_and_oversize_values_are_refused() {
        let changes = vec![
            pb::Change {
                key: "child/1".into(),
                value: b"v".to_vec(),
            },
            pb::Change {
                key: "child/2".into(),
                value: Vec::new(),
            },
        ];
        let payload = encode_changes(&changes);
        let back: Vec<_> = decode_changes(&payload)
            .collect::<Result<_, _>>()
            .expect("decodes");
        assert_eq!(back, changes);
        let huge = encode_changes(&[pb::Change {
            key: "k".into(),
            value: vec![0; MAX_VALUE_BYTES + 1],
        }]);
        assert!(decode_changes(&huge).any(|c| c.is_err()));
        assert!(decode_changes(&payload[..payload.len() - 1]).any(|c| c.is_err()));
    }

    #[test]
    fn a_good_delta_passes_every_check() {
        let signed = sign_manifest(&manifest(6, pb::ManifestKind::Delta, 5, b"p"), &key(1));
        let m = check_manifest(&signed, &trusted(), &held(5), 2_000, 1 << 20).expect("passes");
        assert!(check_payload(&m, b"p").is_ok());
        assert_eq!(check_payload(&m, b"q"), Err(IntakeError::DigestMismatch));
    }

    #[test]
    fn each_attack_is_named() {
        let ok = manifest(6, pb::ManifestKind::Delta, 5, b"p");
        let check = |m: &pb::Manifest, k: &SigningKey, h: &TrustedState| {
            check_manifest(&sign_manifest(m, k), &trusted(), h, 2_000, 100)
        };
        assert!(matches!(
            check(&ok, &key(2), &held(5)),
            Err(IntakeError::UntrustedKey { .. })
        ));
        assert_eq!(
            check(&ok, &key(1), &held(6)),
            Err(IntakeError::Rollback {
                held: 6,
                offered: 6
            })
        );
        assert_eq!(
            check(
                &manifest(6, pb::ManifestKind::Delta, 4, b"p"),
                &key(1),
                &held(5)
            ),
            Err(IntakeError::WrongBase { held: 5, base: 4 })
        );
        let expired = pb::Manifest {
            expires_at: 1_999,
            ..ok.clone()
        };
        assert!(matches!(
            check(&expired, &key(1), &held(5)),
            Err(IntakeError::Expired { .. })
        ));
        let other = pb::Manifest {
            authority: "croydon".into(),
            ..ok.clone()
        };
        assert!(matches!(
            check(&other, &key(1), &held(5)),
            Err(IntakeError::WrongAuthority { .. })
        ));
        let big = pb::Manifest {
            payload_size: 101,
            ..ok.clone()
        };
        assert!(matches!(
            check(&big, &key(1), &held(5)),
            Err(IntakeError::Oversize { .. })
        ));
        let mut forged = sign_manifest(&ok, &key(1));
        forged.manifest[3] ^= 1;
        assert_eq!(
            check_manifest(&forged, &trusted(), &held(5), 2_000, 100),
            Err(IntakeError::BadSignature)
        );
    }

    #[test]
    fn freshness_extends_the_version_held_once() {
        let fresh = pb::Manifest {
            payload_size: 0,
            payload_digest: Vec::new(),
            issued_at: 1_500,
            ..manifest(5, pb::ManifestKind::Freshness, 0, b"")
        };
        let signed = sign_manifest(&fresh, &key(1));
        assert!(check_manifest(&signed, &trusted(), &held(5), 2_000, 100).is_ok());
        let after = TrustedState {
            issued_at: 1_500,
            ..held(5)
        };
        assert_eq!(
            check_manifest(&signed, &trusted(), &after, 2_000, 100),
            Err(IntakeError::FreshnessReplayed)
        );
    }

    #[test]
    fn a_rotation_signed_by_the_old_key_is_followed_and_a_stray_one_is_not() {
        let mut keys = trusted();
        let stray = sign_rotation("lambeth", &key(3), &key(4).verifying_key(), 5);
        assert_eq!(keys.accept_rotation(&stray), Err(IntakeError::BadSignature));
        let rotation = sign_rotation("lambeth", &key(1), &key(2).verifying_key(), 5);
        keys.accept_rotation(&rotation).expect("chained");
        let m = manifest(6, pb::ManifestKind::Delta, 5, b"p");
        let m = pb::Manifest {
            key_id: key_id(&key(2).verifying_key()),
            ..m
        };
        assert!(check_manifest(&sign_manifest(&m, &key(2)), &keys, &held(5), 2_000, 100).is_ok());
    }
}
