//! `cpreg admin audit verify`: fetches the audit chain and verifies it here, so a verifier need
//! not trust the server it checks.

use cpreg_proto::audit::{ChainBreak, SignedCheckpoint, verify_chain};
use cpreg_proto::pb;
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
    pub key_id: String,
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

/// Fetches the chain from the primary and verifies it against the pinned key, or the key the
/// primary reports.
pub async fn check(profile: &Profile, pinned: Option<&str>) -> Result<Verdict, CliError> {
    let mut client = profile.register().await?;
    let key = match pinned {
        Some(k) => parse_key(k)?,
        None => parse_key(&hex::encode(
            client
                .get_authority(pb::GetAuthorityRequest {})
                .await?
                .into_inner()
                .public_key,
        ))?,
    };
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
    let key_id = cpreg_primary::keys::key_id(&key);
    let verdict = match verify_chain(entries, &checkpoints, &key) {
        Ok(report) => Verdict {
            intact: true,
            entries: report.entries,
            checkpoints: report.checkpoints,
            head_seq: report.head_seq,
            key_id,
            broken_at: None,
            problem: None,
        },
        Err(broken) => Verdict {
            intact: false,
            entries: count,
            checkpoints: checkpoints.len() as u64,
            head_seq: None,
            key_id,
            broken_at: match broken {
                ChainBreak::Altered { seq, .. }
                | ChainBreak::Removed { seq, .. }
                | ChainBreak::ForgedCheckpoint { seq }
                | ChainBreak::Unsigned { seq } => Some(seq),
                _ => None,
            },
            problem: Some(broken.to_string()),
        },
    };
    Ok(verdict)
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
