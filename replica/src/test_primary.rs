//! A stand-in for an authority's primary in unit tests: it keeps a register in memory and signs
//! full snapshots, deltas and freshness statements over it with `cpreg_proto::snapshot`, exactly
//! as the real primary must.

use std::collections::BTreeMap;

use cpreg_proto::pb;
use cpreg_proto::snapshot::{StateRoot, encode_changes, key_id, payload_digest, sign_manifest};
use ed25519_dalek::SigningKey;

/// The tests' time: 2026-11-22 12:00 UTC.
pub(crate) const T0: i64 = 1_795_348_800;
/// How long a manifest stays valid.
pub(crate) const VALID_FOR: i64 = 7 * 24 * 3600;

/// One version as it travels: the signed manifest, what it says, and its payload.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub signed: pb::SignedManifest,
    pub manifest: pb::Manifest,
    pub payload: Vec<u8>,
}

impl Snapshot {
    /// The frames a subscription carries for this version, in chunks of `chunk` bytes.
    pub fn frames(&self, chunk: usize) -> Vec<pb::SnapshotFrame> {
        use pb::snapshot_frame::Frame;
        let mut frames = vec![pb::SnapshotFrame {
            frame: Some(Frame::Manifest(self.signed.clone())),
        }];
        frames.extend(self.payload.chunks(chunk).map(|c| pb::SnapshotFrame {
            frame: Some(Frame::Chunk(c.to_vec())),
        }));
        frames
    }
}

/// An authority's register and signing key.
pub(crate) struct TestPrimary {
    pub authority: String,
    pub key: SigningKey,
    pub entries: BTreeMap<String, Vec<u8>>,
    pub version: u64,
    pub now: i64,
}

impl TestPrimary {
    pub fn new(authority: &str) -> Self {
        TestPrimary {
            authority: authority.to_owned(),
            key: SigningKey::from_bytes(&[7; 32]),
            entries: BTreeMap::new(),
            version: 0,
            now: T0,
        }
    }

    /// The root of the whole register, computed from scratch.
    pub fn root(&self) -> StateRoot {
        let mut root = StateRoot::default();
        for (k, v) in &self.entries {
            root.insert(k, v);
        }
        root
    }

    /// A manifest over the register as it stands, for `payload`.
    pub fn manifest(
        &self,
        kind: pb::ManifestKind,
        base_version: u64,
        payload: &[u8],
    ) -> pb::Manifest {
        pb::Manifest {
            authority: self.authority.clone(),
            version: self.version,
            issued_at: self.now,
            expires_at: self.now + VALID_FOR,
            key_id: key_id(&self.key.verifying_key()),
            kind: kind.into(),
            base_version,
            payload_digest: payload_digest(payload),
            payload_size: payload.len() as u64,
            entry_count: self.entries.len() as u64,
            state_root: self.root().to_bytes(),
        }
    }

    /// Signs `manifest` with the current key.
    pub fn sign(&self, manifest: pb::Manifest, payload: Vec<u8>) -> Snapshot {
        Snapshot {
            signed: sign_manifest(&manifest, &self.key),
            manifest,
            payload,
        }
    }

    /// Puts `n` children on the register without publishing.
    pub fn add_children(&mut self, n: usize) {
        for i in 0..n {
            self.entries
                .insert(format!("child/C{i:06}"), format!("child {i}").into_bytes());
        }
    }

    /// The next version as a full snapshot.
    pub fn full(&mut self) -> Snapshot {
        self.version += 1;
        let changes: Vec<_> = self
            .entries
            .iter()
            .map(|(k, v)| pb::Change {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        let payload = encode_changes(&changes);
        self.sign(self.manifest(pb::ManifestKind::Full, 0, &payload), payload)
    }

    /// The next version as a delta: each change sets a value, or removes the entry when empty.
    pub fn delta(&mut self, changes: &[(&str, &[u8])]) -> Snapshot {
        let base = self.version;
        self.version += 1;
        let changes: Vec<_> = changes
            .iter()
            .map(|(k, v)| pb::Change {
                key: (*k).to_owned(),
                value: v.to_vec(),
            })
            .collect();
        for change in &changes {
            if change.value.is_empty() {
                self.entries.remove(&change.key);
            } else {
                self.entries
                    .insert(change.key.clone(), change.value.clone());
            }
        }
        let payload = encode_changes(&changes);
        self.sign(
            self.manifest(pb::ManifestKind::Delta, base, &payload),
            payload,
        )
    }

    /// A freshness statement for the current version, issued `later` seconds after the last.
    pub fn freshness(&mut self, later: i64) -> Snapshot {
        self.now += later;
        let mut manifest = self.manifest(pb::ManifestKind::Freshness, 0, &[]);
        manifest.payload_digest = Vec::new();
        self.sign(manifest, Vec::new())
    }
}
