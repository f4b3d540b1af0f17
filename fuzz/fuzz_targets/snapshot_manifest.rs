//! Signed manifests as a replica receives them (`cpreg_proto::snapshot::check_manifest`).
//!
//! The first byte picks the version the replica holds and whether the rest is a whole
//! `SignedManifest` envelope (forged, or mutated from a real one) or the manifest bytes alone,
//! which the target signs with the enrolled key so the fuzzer reaches the checks after the
//! signature. Properties: a manifest that passes decodes to exactly what was signed and meets
//! every check it passed; any change to its signature or its bytes is refused.

#![no_main]

use cpreg_proto::pb;
use cpreg_proto::snapshot::{
    IntakeError, MANIFEST_DOMAIN, MAX_CLOCK_SKEW_SECONDS, MAX_MANIFEST_BYTES, StateRoot,
    TrustedKeys, TrustedState, check_manifest, key_id,
};
use ed25519_dalek::{Signer, SigningKey};
use libfuzzer_sys::fuzz_target;
use prost::Message;

const NOW: i64 = 5_000;
const MAX_PAYLOAD: u64 = 1 << 20;

/// The key the proto unit tests sign with (`snapshot/tests.rs`), so their manifests are seeds.
fn enrolled() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
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

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let key = enrolled();
    let keys = TrustedKeys::new("lambeth", vec![key.verifying_key()]);
    let held = held(u64::from(selector & 0x03));
    let signed = if selector & 0x80 == 0 {
        pb::SignedManifest {
            key_id: key_id(&key.verifying_key()),
            manifest: rest.to_vec(),
            signature: key
                .sign(&[MANIFEST_DOMAIN, rest].concat())
                .to_bytes()
                .to_vec(),
        }
    } else {
        match pb::SignedManifest::decode(rest) {
            Ok(signed) => signed,
            Err(_) => return,
        }
    };

    let result = check_manifest(&signed, &keys, &held, NOW, MAX_PAYLOAD);
    if signed.manifest.len() > MAX_MANIFEST_BYTES {
        assert_eq!(
            result,
            Err(IntakeError::Malformed("manifest is too long")),
            "an oversize manifest is refused before anything else"
        );
        return;
    }
    let Ok(manifest) = result else {
        return;
    };

    // A manifest that verifies decodes, to exactly what was signed.
    let decoded =
        pb::Manifest::decode(signed.manifest.as_slice()).expect("verified manifest decodes");
    assert_eq!(decoded, manifest);
    assert_eq!(manifest.authority, "lambeth");
    assert_eq!(manifest.key_id, signed.key_id);
    assert!(StateRoot::from_bytes(&manifest.state_root).is_some());
    assert!(manifest.expires_at > NOW, "an expired manifest passed");
    assert!(manifest.issued_at <= NOW + MAX_CLOCK_SKEW_SECONDS);
    match pb::ManifestKind::try_from(manifest.kind) {
        Ok(pb::ManifestKind::Full) | Ok(pb::ManifestKind::Delta) => {
            assert!(manifest.version > held.version, "a rollback passed");
            assert!(manifest.payload_size <= MAX_PAYLOAD);
            assert_eq!(manifest.payload_digest.len(), 32);
            if manifest.kind == pb::ManifestKind::Delta as i32 {
                assert_eq!(manifest.base_version, held.version, "mix-and-match passed");
            }
        }
        Ok(pb::ManifestKind::Freshness) => {
            assert_eq!(manifest.version, held.version);
            assert_eq!(manifest.payload_size, 0);
        }
        other => panic!("a manifest of kind {other:?} passed"),
    }

    // Any change to the signature or to the signed bytes is refused.
    let bit = usize::from(selector) % (signed.signature.len() * 8).max(1);
    let mut forged = signed.clone();
    forged.signature[bit / 8] ^= 1 << (bit % 8);
    assert_eq!(
        check_manifest(&forged, &keys, &held, NOW, MAX_PAYLOAD),
        Err(IntakeError::BadSignature)
    );
    if !signed.manifest.is_empty() {
        let mut tampered = signed.clone();
        let at = usize::from(selector) % tampered.manifest.len();
        tampered.manifest[at] ^= 0x01;
        assert_eq!(
            check_manifest(&tampered, &keys, &held, NOW, MAX_PAYLOAD),
            Err(IntakeError::BadSignature)
        );
    }
    // The same manifest under a key the replica does not trust is refused.
    let stranger = TrustedKeys::new(
        "lambeth",
        vec![SigningKey::from_bytes(&[2; 32]).verifying_key()],
    );
    assert!(matches!(
        check_manifest(&signed, &stranger, &held, NOW, MAX_PAYLOAD),
        Err(IntakeError::UntrustedKey { .. })
    ));
});
