//! Snapshot payloads (`check_payload`, `decode_changes`) and the state root over what they carry.
//!
//! Properties: the payload a manifest describes passes `check_payload` and a one-byte change or a
//! byte more or less is refused; decoding stops at the first bad change and never yields a key or
//! value over the limits; changes that decode re-encode to changes that decode the same; the state
//! root of the entries, removed in any order, returns to empty.

#![no_main]

use cpreg_proto::pb;
use cpreg_proto::snapshot::{
    IntakeError, MAX_KEY_BYTES, MAX_VALUE_BYTES, StateRoot, check_payload, decode_changes,
    encode_changes, payload_digest,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|payload: &[u8]| {
    let manifest = pb::Manifest {
        kind: pb::ManifestKind::Full.into(),
        payload_digest: payload_digest(payload),
        payload_size: payload.len() as u64,
        ..Default::default()
    };
    assert_eq!(check_payload(&manifest, payload), Ok(()));
    if let Some((&first, rest)) = payload.split_first() {
        let mut changed = payload.to_vec();
        changed[0] = first ^ 0x80;
        assert_eq!(
            check_payload(&manifest, &changed),
            Err(IntakeError::DigestMismatch)
        );
        assert!(matches!(
            check_payload(&manifest, rest),
            Err(IntakeError::SizeMismatch { .. })
        ));
    }

    let mut changes = Vec::new();
    let mut failed = false;
    for result in decode_changes(payload) {
        assert!(!failed, "decoding went on after an error");
        match result {
            Ok(change) => {
                assert!(!change.key.is_empty() && change.key.len() <= MAX_KEY_BYTES);
                assert!(change.value.len() <= MAX_VALUE_BYTES);
                changes.push(change);
            }
            Err(e) => {
                assert!(matches!(e, IntakeError::Malformed(_)));
                failed = true;
            }
        }
    }
    let again: Vec<pb::Change> = decode_changes(&encode_changes(&changes))
        .collect::<Result<_, _>>()
        .expect("re-encoded changes decode");
    assert_eq!(again, changes);

    let mut root = StateRoot::default();
    for change in &changes {
        root.insert(&change.key, &change.value);
    }
    assert_eq!(StateRoot::from_bytes(&root.to_bytes()), Some(root));
    for change in changes
        .iter()
        .rev()
        .step_by(2)
        .chain(changes.iter().rev().skip(1).step_by(2))
    {
        root.remove(&change.key, &change.value);
    }
    assert_eq!(root, StateRoot::default());
});
