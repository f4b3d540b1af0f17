//! Key rotation: a new key is announced in a statement signed by the key it replaces, and a
//! replica (or an auditor) trusts only keys it can chain, statement by statement, to a key it
//! was enrolled with.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use prost::Message;

use super::{IntakeError, ROTATION_DOMAIN, key_id};
use crate::pb;

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

/// Decodes a rotation sent as bytes (`AuthorityReply.key_rotations`). Decoding the envelope
/// trusts nothing: [`TrustedKeys::accept_rotation`] verifies it before reading the statement.
pub fn decode_rotation(bytes: &[u8]) -> Result<pb::KeyRotation, IntakeError> {
    pb::KeyRotation::decode(bytes)
        .map_err(|_| IntakeError::Malformed("a key rotation does not decode"))
}

/// The keys a replica knows for one authority, in the order they came into force: those enrolled
/// in its configuration, then each announced by a rotation statement signed with the key then in
/// force. Only the newest (current) key is trusted to sign manifests and further rotations: a
/// rotation retires the key before it, so a key rotated away after a leak signs nothing more.
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

    /// Follows an authority's rotations, oldest first, from its original key. The keys come out
    /// in the order they came into force, as [`crate::audit::verify_chain`] takes them.
    pub fn follow(
        authority: &str,
        original: VerifyingKey,
        rotations: &[pb::KeyRotation],
    ) -> Result<TrustedKeys, RotationRefused> {
        let mut keys = TrustedKeys::new(authority, vec![original]);
        for (index, rotation) in rotations.iter().enumerate() {
            keys.accept_rotation(rotation)
                .map_err(|error| RotationRefused { index, error })?;
        }
        Ok(keys)
    }

    pub fn authority(&self) -> &str {
        &self.authority
    }

    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// The key in force: the only one that may sign a manifest or the next rotation.
    pub fn current(&self) -> Option<&VerifyingKey> {
        self.keys.last()
    }

    /// The key in force if `id` names it; a retired key is refused by name.
    pub(super) fn current_named(&self, id: &str) -> Result<&VerifyingKey, IntakeError> {
        match self.keys.iter().position(|k| key_id(k) == id) {
            Some(i) if i + 1 == self.keys.len() => Ok(&self.keys[i]),
            Some(_) => Err(IntakeError::RetiredKey {
                key_id: id.to_owned(),
            }),
            None => Err(IntakeError::UntrustedKey {
                authority: self.authority.clone(),
                key_id: id.to_owned(),
            }),
        }
    }

    /// The key a rotation announces, if it is one already trusted. Read without verifying the
    /// rotation, and so only to recognise one from before the key this replica was enrolled with
    /// (which it cannot verify and need not follow), never to trust anything.
    pub fn already_trusted(&self, rotation: &pb::KeyRotation) -> Option<VerifyingKey> {
        let statement = pb::RotationStatement::decode(rotation.statement.as_slice()).ok()?;
        self.keys
            .iter()
            .find(|k| k.as_bytes() == statement.new_public_key.as_slice())
            .copied()
    }

    /// Follows a rotation: verifies it against a trusted key, then trusts the new key.
    pub fn accept_rotation(
        &mut self,
        rotation: &pb::KeyRotation,
    ) -> Result<VerifyingKey, IntakeError> {
        let signature =
            Signature::from_slice(&rotation.signature).map_err(|_| IntakeError::BadSignature)?;
        let message = [ROTATION_DOMAIN, &rotation.statement].concat();
        // Verify before decoding, with the key in force only, strictly (no small-order keys,
        // no malleable signatures).
        let Some(signer) = self.current().copied() else {
            return Err(IntakeError::BadSignature);
        };
        if signer.verify_strict(&message, &signature).is_err() {
            let retired = self
                .keys
                .iter()
                .find(|k| k.verify_strict(&message, &signature).is_ok());
            return Err(match retired {
                Some(k) => IntakeError::RetiredKey { key_id: key_id(k) },
                None => IntakeError::BadSignature,
            });
        }
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
        if new.is_weak() {
            return Err(IntakeError::Malformed(
                "rotation's new key is a weak (small-order) key",
            ));
        }
        if key_id(&new) != statement.new_key_id {
            return Err(IntakeError::Malformed(
                "rotation's key id does not match its key",
            ));
        }
        if self.keys.iter().any(|k| key_id(k) == statement.new_key_id) {
            return Err(IntakeError::Malformed(
                "rotation announces a key already used: keys are never reused",
            ));
        }
        self.keys.push(new);
        Ok(new)
    }
}

/// A rotation as a frame: each subscription (and each snapshot file) starts with the authority's
/// rotations, oldest first, so a replica enrolled with an older key can follow the chain before
/// it meets a manifest signed by the newest key.
pub fn rotation_frame(rotation: pb::KeyRotation) -> pb::SnapshotFrame {
    pb::SnapshotFrame {
        frame: Some(pb::snapshot_frame::Frame::Rotation(rotation)),
    }
}

/// A rotation in a chain that does not follow from the keys before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "key rotation {index} (counting from 0, oldest first) does not chain to the keys before it: {error}"
)]
pub struct RotationRefused {
    pub index: usize,
    pub error: IntakeError,
}
