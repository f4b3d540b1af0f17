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
    let same_second = TrustedState {
        issued_at: 1_500,
        ..held(5)
    };
    assert!(check_manifest(&signed, &trusted(), &same_second, 2_000, 100).is_ok());
    let later = TrustedState {
        issued_at: 1_600,
        ..held(5)
    };
    assert_eq!(
        check_manifest(&signed, &trusted(), &later, 2_000, 100),
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

#[test]
fn a_chain_of_rotations_is_followed_from_the_original_key_and_a_break_is_named() {
    let first = sign_rotation("lambeth", &key(1), &key(2).verifying_key(), 5);
    let second = sign_rotation("lambeth", &key(2), &key(3).verifying_key(), 6);
    let chain = [first.clone(), second.clone()];
    let keys = TrustedKeys::follow("lambeth", key(1).verifying_key(), &chain).expect("chains");
    assert_eq!(
        keys.keys(),
        [1, 2, 3].map(|n| key(n).verifying_key()).as_slice()
    );
    // Out of order, the second cannot be verified yet: it is named.
    let err = TrustedKeys::follow(
        "lambeth",
        key(1).verifying_key(),
        &[second.clone(), first.clone()],
    )
    .expect_err("out of order");
    assert_eq!((err.index, err.error), (0, IntakeError::BadSignature));
    // A rotation for another authority is refused even when a trusted key signed it.
    let croydon = sign_rotation("croydon", &key(1), &key(4).verifying_key(), 5);
    assert!(matches!(
        TrustedKeys::follow("lambeth", key(1).verifying_key(), &[croydon]),
        Err(RotationRefused {
            error: IntakeError::WrongAuthority { .. },
            ..
        })
    ));
    // A site enrolled with the newest key recognises the rotation to it as history.
    let late = TrustedKeys::new("lambeth", vec![key(3).verifying_key()]);
    assert_eq!(late.already_trusted(&second), Some(key(3).verifying_key()));
    assert_eq!(late.already_trusted(&first), None);
}
