//! The store on its own: transactions that abort, deltas that do not scan, files kept private.

use super::*;
use crate::test_primary::{T0, TestPrimary};
use cpreg_proto::snapshot::sign_rotation;
use ed25519_dalek::SigningKey;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let store = Store::open(&dir.path().join("replica.redb")).expect("open store");
    (dir, store)
}

fn apply(store: &Store, s: &crate::test_primary::Snapshot) -> Result<TrustedState, ApplyError> {
    store.apply(&s.manifest.authority, &s.manifest, &s.payload)
}

#[test]
fn a_delta_costs_the_entries_it_changes_not_the_register() {
    let (_dir, store) = open();
    let mut primary = TestPrimary::new("lambeth");
    primary.add_children(50_000);
    apply(&store, &primary.full()).expect("full snapshot of 50,000 applies");
    // An entry slipped into the table behind the root's back. A delta that rescanned the
    // register to count entries or recompute the root would include it and fail its proof;
    // one that updates the held root per change never sees it.
    {
        let txn = store.write().expect("write");
        txn.open_table(ENTRIES)
            .expect("table")
            .insert(("lambeth", "child/unseen"), b"x".as_slice())
            .expect("insert");
        txn.commit().expect("commit");
    }
    let delta = primary.delta(&[("child/C000123", b"moved to SE1")]);
    let state = apply(&store, &delta).expect("delta applies from the held root alone");
    assert_eq!(state.version, 2);
    assert_eq!(state.entry_count, 50_000);
    assert_eq!(state.state_root, primary.root().to_bytes());
    assert_eq!(
        store.get("lambeth", "child/C000123").expect("get"),
        Some(b"moved to SE1".to_vec())
    );
    assert_eq!(store.trusted_state("lambeth").expect("state"), state);
}

#[test]
fn a_delta_whose_state_root_does_not_match_is_aborted_and_changes_nothing() {
    let (_dir, store) = open();
    let mut primary = TestPrimary::new("lambeth");
    primary.add_children(3);
    let held = apply(&store, &primary.full()).expect("full");
    let good = primary.delta(&[("child/C000001", b"new address"), ("child/C000002", b"")]);
    let mut manifest = good.manifest.clone();
    manifest.state_root[0] ^= 1;
    let forged_root = primary.sign(manifest, good.payload.clone());
    assert!(matches!(
        apply(&store, &forged_root),
        Err(ApplyError::Refused(IntakeError::StateRootMismatch))
    ));
    let mut counted = good.manifest.clone();
    counted.entry_count += 1;
    let miscounted = primary.sign(counted, good.payload.clone());
    assert!(matches!(
        apply(&store, &miscounted),
        Err(ApplyError::Refused(IntakeError::EntryCountMismatch { .. }))
    ));
    // Neither the changed entry nor the removed one moved: the transaction never committed.
    assert_eq!(store.trusted_state("lambeth").expect("state"), held);
    assert_eq!(
        store.get("lambeth", "child/C000001").expect("get"),
        Some(b"child 1".to_vec())
    );
    assert_eq!(
        store.get("lambeth", "child/C000002").expect("get"),
        Some(b"child 2".to_vec())
    );
}

#[test]
fn a_full_snapshot_replaces_its_own_authority_and_no_other() {
    let (_dir, store) = open();
    let mut lambeth = TestPrimary::new("lambeth");
    lambeth.add_children(3);
    let mut lambeth2 = TestPrimary::new("lambeth2");
    lambeth2.add_children(2);
    apply(&store, &lambeth.full()).expect("lambeth");
    apply(&store, &lambeth2.full()).expect("lambeth2, a prefix-sharing id");
    lambeth.entries.clear();
    lambeth.entries.insert("child/N1".into(), b"new".to_vec());
    let state = apply(&store, &lambeth.full()).expect("second full");
    assert_eq!(state.entry_count, 1);
    assert_eq!(
        store.entries("lambeth").expect("entries"),
        vec![("child/N1".to_owned(), b"new".to_vec())]
    );
    assert_eq!(store.entries("lambeth2").expect("entries").len(), 2);
    assert_eq!(store.entry_count("lambeth2").expect("count"), 2);
}

#[test]
fn a_rotation_is_stored_once_and_replayed_on_reopen() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("replica.redb");
    let old = SigningKey::from_bytes(&[7; 32]);
    let new = SigningKey::from_bytes(&[8; 32]);
    let enrolled = vec![old.verifying_key()];
    let rotation = sign_rotation("lambeth", &old, &new.verifying_key(), T0);
    {
        let store = Store::open(&path).expect("open");
        let keys = store
            .record_rotation("lambeth", &rotation, &enrolled)
            .expect("followed");
        assert_eq!(keys.keys().len(), 2);
        store
            .record_rotation("lambeth", &rotation, &enrolled)
            .expect("again, harmlessly");
        let stray = sign_rotation(
            "lambeth",
            &SigningKey::from_bytes(&[9; 32]),
            &SigningKey::from_bytes(&[12; 32]).verifying_key(),
            1,
        );
        assert!(matches!(
            store.record_rotation("lambeth", &stray, &enrolled),
            Err(ApplyError::Refused(IntakeError::BadSignature))
        ));
    }
    let store = Store::open(&path).expect("reopen");
    let keys = store.trusted_keys("lambeth", &enrolled).expect("keys");
    assert_eq!(
        keys.keys(),
        [old.verifying_key(), new.verifying_key()].as_slice()
    );
    assert_eq!(
        store
            .trusted_keys("croydon", &enrolled)
            .expect("keys")
            .keys()
            .len(),
        1
    );
}

#[cfg(unix)]
#[test]
fn the_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _store) = open();
    let mode = std::fs::metadata(dir.path().join("replica.redb"))
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_read_only_store_follows_the_serving_one() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("replica.redb");
    let store = Store::open(&path).expect("open");
    let reader = Store::open_read_only(&path).expect("read-only alongside the writer");
    assert_eq!(reader.trusted_state("lambeth").expect("state").version, 0);
    let mut primary = TestPrimary::new("lambeth");
    primary.add_children(1);
    apply(&store, &primary.full()).expect("full");
    assert_eq!(reader.trusted_state("lambeth").expect("state").version, 1);
    assert!(matches!(
        reader.apply("lambeth", &primary.full().manifest, &[]),
        Err(ApplyError::Store(StoreError::ReadOnly))
    ));
}
