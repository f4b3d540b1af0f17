//! `delta`: one-record deltas applied one after another at a replica store holding the whole
//! register, each signed with a manifest on the version held and a state root kept with
//! `StateRoot`, against bare one-row redb write transactions on a file of the same entries.

use std::time::Instant;

use cpreg_proto::pb;
use cpreg_proto::snapshot::{
    CHILD_PREFIX, TrustedKeys, check_manifest, check_payload, decode_changes, encode_changes,
    sign_manifest,
};
use cpreg_replica::store::Store as ReplicaStore;
use cpreg_tests::{AUTHORITY, TestPrimary};
use prost::Message;

use crate::common::{
    REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES, bare_insert, bare_one_row_writes, fill, manifest_for, ms,
    open_primary_store, p50, p99, peak_rss_mib, primary_key, round3, round6, scratch, sign_head,
    summary_ms,
};

pub async fn delta(records: usize, deltas: usize) -> serde_json::Value {
    let primary = TestPrimary::start().await;
    let filled = fill(&primary, records, 7).await;
    let pki = primary.stop().await;

    // Setup: the full snapshot applied at a fresh replica store.
    let store = open_primary_store(&pki);
    let key = primary_key(&pki);
    let out = store
        .outgoing(0, &[])
        .expect("read the projection")
        .expect("a published version");
    drop(store);
    let dir = scratch(&pki, "delta");
    let replica = ReplicaStore::open(&dir.join("replica.redb")).expect("replica store");
    let keys = TrustedKeys::new(AUTHORITY, vec![key.verifying_key()]);
    let now = cpreg_tests::now().timestamp() + 1;
    eprintln!("cpreg-bench: applying the full snapshot at the replica (setup)");
    let started = Instant::now();
    let full = sign_head(&key, &out.head, 0, &out.payload);
    let manifest = check_manifest(
        &full,
        &keys,
        &replica.trusted_state(AUTHORITY).expect("held"),
        now,
        REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES,
    )
    .expect("full manifest passes");
    check_payload(&manifest, &out.payload).expect("payload passes");
    let mut held = replica
        .apply(AUTHORITY, &manifest, &out.payload)
        .expect("full snapshot applies");
    let full_apply_seconds = started.elapsed().as_secs_f64();

    // The children the deltas change, spread over the register.
    let stride = (held.entry_count as usize / deltas.max(1)).max(1);
    let mut targets: Vec<(String, Vec<u8>)> = decode_changes(&out.payload)
        .map(|c| c.expect("change"))
        .filter(|c| c.key.starts_with(CHILD_PREFIX))
        .step_by(stride)
        .take(deltas)
        .map(|c| (c.key, c.value))
        .collect();
    assert!(!targets.is_empty(), "no children in the projection");

    // The bare baseline file: the same entries, in a file of their own.
    eprintln!("cpreg-bench: bare baseline file (setup)");
    let (bare_db, bare_insert_seconds) = bare_insert(&dir.join("bare.redb"), &out.payload);
    let payload_bytes = out.payload.len();
    drop(out);

    eprintln!("cpreg-bench: {deltas} one-record deltas");
    let mut root = cpreg_proto::snapshot::StateRoot::from_bytes(&held.state_root).expect("root");
    let (mut build_ms, mut apply_ms, mut total_ms, mut delta_bytes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..deltas {
        let slot = i % targets.len();
        let (entry_key, old) = targets[slot].clone();

        // At the primary: the changed projection, its payload, the root and the signature.
        let started = Instant::now();
        let mut child = pb::ProjectedChild::decode(old.as_slice()).expect("projected child");
        let mut n = i;
        loop {
            child.lead_social_worker_phone = format!("020 7946 0{:03}", n % 1000);
            if child.encode_to_vec() != old {
                break;
            }
            n += 1;
        }
        let new = child.encode_to_vec();
        let mut next_root = root;
        next_root.remove(&entry_key, &old);
        next_root.insert(&entry_key, &new);
        let payload = encode_changes(&[pb::Change {
            key: entry_key.clone(),
            value: new.clone(),
        }]);
        let manifest = manifest_for(
            &key,
            held.version + 1,
            held.version,
            next_root,
            held.entry_count,
            &payload,
        );
        let signed = sign_manifest(&manifest, &key);
        build_ms.push(ms(started.elapsed()));
        delta_bytes.push(payload.len() as f64);

        // At the replica, as the intake does: read what is held, check, apply.
        let started = Instant::now();
        let state = replica.trusted_state(AUTHORITY).expect("held");
        let manifest = check_manifest(
            &signed,
            &keys,
            &state,
            now,
            REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES,
        )
        .expect("delta manifest passes");
        check_payload(&manifest, &payload).expect("delta payload passes");
        let apply_started = Instant::now();
        held = replica
            .apply(AUTHORITY, &manifest, &payload)
            .expect("delta applies");
        apply_ms.push(ms(apply_started.elapsed()));
        total_ms.push(ms(started.elapsed()));
        root = next_root;
        targets[slot].1 = new;
    }
    assert_eq!(
        replica.get(AUTHORITY, &targets[0].0).expect("read"),
        Some(targets[0].1.clone())
    );

    eprintln!("cpreg-bench: bare one-row write transactions");
    let bare = bare_one_row_writes(&bare_db, deltas);
    drop(bare_db);
    drop(replica);

    serde_json::json!({
        "scenario": "delta",
        "records": records,
        "filled": filled.json(),
        "setup": {
            "full_payload_bytes": payload_bytes,
            "full_snapshot_check_and_apply_seconds": round6(full_apply_seconds),
            "replica_entries": held.entry_count,
            "bare_file_insert_seconds": round6(bare_insert_seconds),
        },
        "deltas": deltas,
        "delta_payload_bytes_mean": (delta_bytes.iter().sum::<f64>() / delta_bytes.len().max(1) as f64).round(),
        "what": "each delta changes one child's lead social worker phone; primary side = projection re-encoded, StateRoot updated, payload encoded, manifest digested and signed; replica side = trusted_state read + check_manifest + check_payload + Store::apply (one write transaction, default durability)",
        "primary_build_and_sign": summary_ms(&build_ms),
        "replica_apply_only": summary_ms(&apply_ms),
        "replica_check_and_apply": summary_ms(&total_ms),
        "baseline": {
            "what": "bare redb one-row write transaction (insert + commit, default durability) on a file holding the same entries, same folder, same process",
            "one_row_write": summary_ms(&bare),
        },
        "ratios": {
            "p50_check_and_apply_to_bare": round3(p50(&total_ms) / p50(&bare)),
            "p99_check_and_apply_to_bare": round3(p99(&total_ms) / p99(&bare)),
        },
        "peak_rss_mib": peak_rss_mib(),
    })
}
