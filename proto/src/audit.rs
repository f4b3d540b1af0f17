//! The audit chain: what each entry's bytes are, how entries link, how checkpoints are signed, and
//! how a reader verifies the whole chain and names the first entry that was altered or removed.
//!
//! Each entry is a JSON document that includes the hash of the entry before it; the hash covers
//! the exact stored bytes under a domain-separation prefix. After every committed change the
//! primary signs a checkpoint (authority, sequence number and hash of the newest entry) with its
//! Ed25519 key, so removing entries from the end is caught as well as editing them.
//!
//! The authority's key may have been rotated since (`snapshot::TrustedKeys`): a verifier follows
//! the rotations from the original key and checks each checkpoint against the key chain.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const ENTRY_DOMAIN: &[u8] = b"cpreg-audit-entry-v1\0";
const CHECKPOINT_DOMAIN: &[u8] = b"cpreg-audit-checkpoint-v1\0";

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry, as stored: who did what to which subject, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub at: String,
    /// The certificate subject that made the change ("custodian: Jo Bloggs").
    pub actor: String,
    /// What was done, e.g. `child.create`, `plan.end`, `import.row`.
    pub action: String,
    /// What it was done to, e.g. a record id or an organisation id.
    pub subject: String,
    /// The change itself, for a reader.
    pub detail: serde_json::Value,
    /// Hex SHA-256 of the previous entry's bytes ([`GENESIS`] for the first).
    pub prev: String,
}

impl AuditRecord {
    /// The exact bytes stored and hashed.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an audit record always serialises")
    }
}

/// Hex SHA-256 of an entry's stored bytes, under the entry domain prefix.
pub fn entry_hash(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(ENTRY_DOMAIN);
    h.update(bytes);
    hex::encode(h.finalize())
}

/// A signed statement of the chain's head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub authority: String,
    pub seq: u64,
    pub hash: String,
    pub at: String,
}

/// A checkpoint's exact bytes with the signature over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub bytes: Vec<u8>,
    pub signature: Vec<u8>,
}

impl SignedCheckpoint {
    /// Serialises and signs a checkpoint.
    pub fn sign(checkpoint: &Checkpoint, key: &SigningKey) -> Self {
        let bytes = serde_json::to_vec(checkpoint).expect("a checkpoint always serialises");
        let signature = key.sign(&signed_message(&bytes)).to_bytes().to_vec();
        SignedCheckpoint { bytes, signature }
    }

    /// Verifies the signature first, then decodes.
    pub fn verify(&self, key: &VerifyingKey) -> Option<Checkpoint> {
        let signature = Signature::from_slice(&self.signature).ok()?;
        key.verify_strict(&signed_message(&self.bytes), &signature)
            .ok()?;
        serde_json::from_slice(&self.bytes).ok()
    }
}

fn signed_message(bytes: &[u8]) -> Vec<u8> {
    [CHECKPOINT_DOMAIN, bytes].concat()
}

/// Where a chain stops being what was signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainBreak {
    /// An entry's contents differ from what was chained and signed.
    #[error("audit entry {seq} was altered: {why}")]
    Altered { seq: u64, why: &'static str },
    /// An entry that the chain or a checkpoint says exists is not there.
    #[error("audit entry {seq} was removed: {why}")]
    Removed { seq: u64, why: &'static str },
    /// A checkpoint whose signature does not verify against any of the authority's keys.
    #[error(
        "audit checkpoint at entry {seq} is not signed by the authority's key (nor by a key its rotations chain to)"
    )]
    ForgedCheckpoint { seq: u64 },
    /// A checkpoint signed by a key after a later key had already signed an earlier checkpoint:
    /// made with a retired (perhaps stolen) key.
    #[error("audit checkpoint at entry {seq} is signed by a key the authority had already retired")]
    RetiredKey { seq: u64 },
    /// No checkpoint at all while entries exist.
    #[error("the audit chain has {entries} entries but no signed checkpoint")]
    NoCheckpoint { entries: u64 },
    /// Entries after the newest signed checkpoint: appended, or their checkpoint removed.
    #[error(
        "audit entries from {seq} on are not covered by a signed checkpoint: appended or altered after the last one, or its checkpoint was removed"
    )]
    Unsigned { seq: u64 },
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub entries: u64,
    pub checkpoints: u64,
    pub head_seq: Option<u64>,
    pub head_hash: Option<String>,
}

/// Verifies a chain read in key order. `entries` yields `(stored key, bytes)`; `checkpoints`
/// are every stored checkpoint; `keys` are the authority's keys in the order they came into
/// force (the original key, then each key its rotations announced, as
/// `snapshot::TrustedKeys::follow` gives them). Names the first entry that was altered or
/// removed.
pub fn verify_chain<I>(
    entries: I,
    checkpoints: &[SignedCheckpoint],
    keys: &[VerifyingKey],
) -> Result<ChainReport, ChainBreak>
where
    I: IntoIterator<Item = (u64, Vec<u8>)>,
{
    // Sequence number to (hash, index in `keys` of the key that signed it).
    let mut signed = std::collections::BTreeMap::new();
    for cp in checkpoints {
        let verified = keys
            .iter()
            .enumerate()
            .find_map(|(index, key)| cp.verify(key).map(|c| (index, c)));
        let Some((index, decoded)) = verified else {
            let seq = serde_json::from_slice::<Checkpoint>(&cp.bytes)
                .map(|c| c.seq)
                .unwrap_or(0);
            return Err(ChainBreak::ForgedCheckpoint { seq });
        };
        signed.insert(decoded.seq, (decoded.hash, index));
    }
    // A key signs until the rotation that retires it: along the chain, the signing key only ever
    // moves forward.
    let mut newest_key = 0;
    for (&seq, &(_, index)) in &signed {
        if index < newest_key {
            return Err(ChainBreak::RetiredKey { seq });
        }
        newest_key = index;
    }
    let signed: std::collections::BTreeMap<u64, String> = signed
        .into_iter()
        .map(|(seq, (hash, _))| (seq, hash))
        .collect();

    let mut expected_seq = 0u64;
    let mut prev_hash = GENESIS.to_owned();
    for (key_seq, bytes) in entries {
        if key_seq != expected_seq {
            return Err(ChainBreak::Removed {
                seq: expected_seq,
                why: "the sequence jumps over it",
            });
        }
        let Ok(record) = serde_json::from_slice::<AuditRecord>(&bytes) else {
            return Err(ChainBreak::Altered {
                seq: key_seq,
                why: "its bytes no longer decode",
            });
        };
        if record.seq != key_seq {
            return Err(ChainBreak::Altered {
                seq: key_seq,
                why: "its sequence number was changed",
            });
        }
        if record.prev != prev_hash {
            // Either the previous entry's contents or this entry's link was changed. A signed
            // checkpoint on the previous entry's hash tells which.
            let previous_is_signed =
                key_seq > 0 && signed.get(&(key_seq - 1)).is_some_and(|h| *h == prev_hash);
            return Err(if key_seq == 0 || previous_is_signed {
                ChainBreak::Altered {
                    seq: key_seq,
                    why: "its link to the entry before was changed",
                }
            } else {
                ChainBreak::Altered {
                    seq: key_seq - 1,
                    why: "its contents no longer match the link held by the next entry",
                }
            });
        }
        let hash = entry_hash(&bytes);
        if let Some(signed_hash) = signed.get(&key_seq)
            && *signed_hash != hash
        {
            return Err(ChainBreak::Altered {
                seq: key_seq,
                why: "its contents no longer match the signed checkpoint",
            });
        }
        prev_hash = hash;
        expected_seq += 1;
    }

    let entries = expected_seq;
    // Every commit signs a checkpoint of the head, so the newest checkpoint covers the newest
    // entry exactly: one beyond the end means entries were removed, one short of it means
    // entries were appended (or edited and their checkpoint deleted) without the key.
    match signed.last_key_value() {
        Some((&last, _)) if last >= entries => {
            return Err(ChainBreak::Removed {
                seq: entries,
                why: "a signed checkpoint covers it but the chain ends before it",
            });
        }
        Some((&last, _)) if last + 1 < entries => {
            return Err(ChainBreak::Unsigned { seq: last + 1 });
        }
        None if entries > 0 => return Err(ChainBreak::NoCheckpoint { entries }),
        _ => {}
    }
    Ok(ChainReport {
        entries,
        checkpoints: signed.len() as u64,
        head_seq: entries.checked_sub(1),
        head_hash: (entries > 0).then_some(prev_hash),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64, key: &SigningKey) -> (Vec<(u64, Vec<u8>)>, Vec<SignedCheckpoint>) {
        let mut prev = GENESIS.to_owned();
        let mut entries = Vec::new();
        let mut checkpoints = Vec::new();
        for seq in 0..n {
            let bytes = AuditRecord {
                seq,
                at: "2026-11-22T03:00:00Z".into(),
                actor: "custodian: Test".into(),
                action: "child.create".into(),
                subject: format!("C{seq}"),
                detail: serde_json::json!({ "n": seq }),
                prev: prev.clone(),
            }
            .to_bytes();
            prev = entry_hash(&bytes);
            entries.push((seq, bytes));
            if seq % 3 == 2 || seq == n - 1 {
                let cp = Checkpoint {
                    authority: "test".into(),
                    seq,
                    hash: prev.clone(),
                    at: "2026-11-22T03:00:00Z".into(),
                };
                checkpoints.push(SignedCheckpoint::sign(&cp, key));
            }
        }
        (entries, checkpoints)
    }

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (entries, cps) = chain(10, &key());
        let report = verify_chain(entries, &cps, &[key().verifying_key()]).expect("verifies");
        assert_eq!(report.entries, 10);
        assert_eq!(report.head_seq, Some(9));
    }

    #[test]
    fn editing_an_entry_names_it() {
        for victim in [0usize, 4, 9] {
            let (mut entries, cps) = chain(10, &key());
            let text = String::from_utf8(entries[victim].1.clone()).expect("utf8");
            entries[victim].1 = text.replace("child.create", "child.delete").into_bytes();
            let err = verify_chain(entries, &cps, &[key().verifying_key()]).expect_err("breaks");
            assert!(
                matches!(err, ChainBreak::Altered { seq, .. } if seq == victim as u64),
                "{victim}: {err}"
            );
        }
    }

    #[test]
    fn removing_an_entry_names_it() {
        for victim in [0usize, 5, 9] {
            let (mut entries, cps) = chain(10, &key());
            entries.remove(victim);
            let err = verify_chain(entries, &cps, &[key().verifying_key()]).expect_err("breaks");
            assert_eq!(
                match err {
                    ChainBreak::Removed { seq, .. } => seq,
                    other => panic!("{victim}: {other}"),
                },
                victim as u64
            );
        }
    }

    #[test]
    fn an_entry_appended_without_the_key_is_caught() {
        let (mut entries, cps) = chain(6, &key());
        let prev = entry_hash(&entries[5].1);
        let forged = AuditRecord {
            seq: 6,
            at: "2026-11-22T04:00:00Z".into(),
            actor: "custodian:Someone".into(),
            action: "plan.end".into(),
            subject: "C1".into(),
            detail: serde_json::json!({}),
            prev,
        };
        entries.push((6, forged.to_bytes()));
        let err = verify_chain(entries, &cps, &[key().verifying_key()]).expect_err("unsigned");
        assert_eq!(err, ChainBreak::Unsigned { seq: 6 });
    }

    #[test]
    fn a_checkpoint_signed_by_another_key_is_refused() {
        let (entries, mut cps) = chain(4, &key());
        cps.push(SignedCheckpoint::sign(
            &Checkpoint {
                authority: "test".into(),
                seq: 3,
                hash: "ab".into(),
                at: String::new(),
            },
            &SigningKey::from_bytes(&[9; 32]),
        ));
        let err = verify_chain(entries, &cps, &[key().verifying_key()]).expect_err("forged");
        assert_eq!(err, ChainBreak::ForgedCheckpoint { seq: 3 });
    }

    #[test]
    fn checkpoints_signed_before_and_after_a_rotation_verify_with_the_key_chain() {
        let new = SigningKey::from_bytes(&[8; 32]);
        let (entries, mut cps) = chain(10, &key());
        // The last two checkpoints were signed after the key was rotated.
        let n = cps.len();
        for cp in &mut cps[n - 2..] {
            let checkpoint: Checkpoint = serde_json::from_slice(&cp.bytes).expect("decodes");
            *cp = SignedCheckpoint::sign(&checkpoint, &new);
        }
        let keys = [key().verifying_key(), new.verifying_key()];
        let report = verify_chain(entries.clone(), &cps, &keys).expect("verifies");
        assert_eq!(report.entries, 10);
        // Without the new key, the newer checkpoints look forged.
        assert!(matches!(
            verify_chain(entries.clone(), &cps, &keys[..1]),
            Err(ChainBreak::ForgedCheckpoint { .. })
        ));
        // A checkpoint signed with the retired key after the new one took over is refused.
        let last: Checkpoint = serde_json::from_slice(&cps[n - 1].bytes).expect("decodes");
        cps[n - 1] = SignedCheckpoint::sign(&last, &key());
        assert_eq!(
            verify_chain(entries, &cps, &keys),
            Err(ChainBreak::RetiredKey { seq: last.seq })
        );
    }
}
