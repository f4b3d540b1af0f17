//! `cpreg admin audit verify`: fetches the audit chain and verifies it here, so a verifier need
//! not trust the server it checks. Checkpoints signed before a key rotation were signed by the
//! key it retired, so the verifier follows the authority's rotations from the original key (the
//! one pinned with `--key`, or the one the primary reports) and checks against the whole chain.

use cpreg_proto::audit::{ChainBreak, SignedCheckpoint, verify_chain};
use cpreg_proto::pb;
use cpreg_proto::snapshot::{TrustedKeys, decode_rotation};
use ed25519_dalek::VerifyingKey;
use futures::StreamExt;
use serde::Serialize;

use crate::output::{CliError, Output};
use crate::profile::Profile;

/// The outcome of a verification, as `--json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub intact: bool,
    pub entries: u64,
    pub checkpoints: u64,
    pub head_seq: Option<u64>,
    /// The key verification started from: the pinned one, or the original the primary reports.
    pub key_id: String,
    /// Every key trusted, in the order they came into force: `key_id`, then each key the
    /// authority's rotations announced.
    pub key_chain: Vec<String>,
    /// The first entry that was altered or removed.
    pub broken_at: Option<u64>,
    pub problem: Option<String>,
}

fn parse_key(hex_key: &str) -> Result<VerifyingKey, CliError> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            CliError::Invalid(
                "--key must be the authority's Ed25519 public key as 64 hex digits".into(),
            )
        })?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|e| CliError::Invalid(format!("--key is not a valid Ed25519 key: {e}")))
}

/// Fetches the chain from the primary and verifies it against the authority's key chain,
/// followed from the pinned key (which must be the authority's original key) or from the
/// original key the primary reports.
pub async fn check(profile: &Profile, pinned: Option<&str>) -> Result<Verdict, CliError> {
    let mut client = profile.register().await?;
    let authority = client
        .get_authority(pb::GetAuthorityRequest {})
        .await?
        .into_inner();
    let original = match pinned {
        Some(k) => parse_key(k)?,
        // A primary from before rotations existed reports only its key.
        None if authority.original_public_key.is_empty() => {
            parse_key(&hex::encode(&authority.public_key))?
        }
        None => parse_key(&hex::encode(&authority.original_public_key))?,
    };
    let keys = follow_rotations(&authority, original)?;
    let mut stream = client
        .export_audit(pb::ExportAuditRequest {})
        .await?
        .into_inner();
    let mut entries = Vec::new();
    let mut checkpoints = Vec::new();
    while let Some(item) = stream.next().await {
        match item?.item {
            Some(pb::audit_item::Item::Entry(e)) => entries.push((e.seq, e.bytes)),
            Some(pb::audit_item::Item::Checkpoint(c)) => checkpoints.push(SignedCheckpoint {
                bytes: c.bytes,
                signature: c.signature,
            }),
            None => {}
        }
    }
    let count = entries.len() as u64;
    let key_id = cpreg_primary::keys::key_id(&original);
    let key_chain = keys.iter().map(cpreg_primary::keys::key_id).collect();
    let verdict = match verify_chain(entries, &checkpoints, &keys) {
        Ok(report) => Verdict {
            intact: true,
            entries: report.entries,
            checkpoints: report.checkpoints,
            head_seq: report.head_seq,
            key_id,
            key_chain,
            broken_at: None,
            problem: None,
        },
        Err(broken) => Verdict {
            intact: false,
            entries: count,
            checkpoints: checkpoints.len() as u64,
            head_seq: None,
            key_id,
            key_chain,
            broken_at: match broken {
                ChainBreak::Altered { seq, .. }
                | ChainBreak::Removed { seq, .. }
                | ChainBreak::ForgedCheckpoint { seq }
                | ChainBreak::RetiredKey { seq }
                | ChainBreak::Unsigned { seq } => Some(seq),
                _ => None,
            },
            problem: Some(broken.to_string()),
        },
    };
    Ok(verdict)
}

/// The authority's keys in the order they came into force, each rotation verified by the key
/// before it, starting from `original`. A rotation that does not chain is a finding: either the
/// pinned key is not the authority's original key, or the primary's chain was tampered with.
fn follow_rotations(
    authority: &pb::AuthorityReply,
    original: VerifyingKey,
) -> Result<Vec<VerifyingKey>, CliError> {
    let rotations = authority
        .key_rotations
        .iter()
        .map(|bytes| decode_rotation(bytes))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| {
            CliError::Finding("the primary sent a key rotation that does not decode".into())
        })?;
    let keys = TrustedKeys::follow(&authority.authority_id, original, &rotations).map_err(|e| {
        CliError::Finding(format!(
            "{e}: pin the authority's original key with --key, as enrolled at the replicas"
        ))
    })?;
    Ok(keys.keys().to_vec())
}

pub async fn verify(profile: &Profile, pinned: Option<&str>, out: Output) -> Result<(), CliError> {
    let verdict = check(profile, pinned).await?;
    out.emit(&verdict, || match &verdict.problem {
        None => format!(
            "audit chain intact: {} entries, {} signed checkpoints",
            verdict.entries, verdict.checkpoints
        ),
        Some(p) => format!("audit chain BROKEN: {p}"),
    })?;
    match verdict.problem {
        None => Ok(()),
        Some(p) => Err(CliError::Finding(p)),
    }
}
