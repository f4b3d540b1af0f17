//! `catchup`: a replica holding the current version goes offline, many children change at the
//! primary (an import that updates them), the replica restarts on the same data folder and is
//! timed until it holds the primary's head. Baselines: the same register sent as a full
//! snapshot over the same link to a fresh replica, and a full snapshot applied at that replica.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_proto::snapshot::{TrustedKeys, check_manifest, check_payload, sign_manifest};
use cpreg_replica::store::Store as ReplicaStore;
use cpreg_tests::replica::replica_config;
use cpreg_tests::{AUTHORITY, TestPrimary, today};
use indicatif::ProgressBar;

use crate::common::{
    REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES, fill, manifest_for, open_primary_store, peak_rss_mib,
    primary_key, round3, round6, scratch, sign_head,
};
use crate::propagation::{poll_until, start_replica};

const SEED: u64 = 23;
const SITE: &str = "catchup";

/// Starts a replica at `site` and times it until it holds `version`.
async fn sync_to(
    primary: &TestPrimary,
    site: &str,
    version: u64,
) -> (cpreg_tests::replica::TestReplica, f64) {
    let started = Instant::now();
    let replica = start_replica(&primary.pki, site, &primary.url).await;
    let stores: Vec<Arc<ReplicaStore>> = vec![replica.replica.store()];
    let seen = tokio::task::spawn_blocking(move || {
        poll_until(&stores, version, started, Duration::from_secs(600))
    })
    .await
    .expect("poller");
    let seconds = seen[0]
        .unwrap_or_else(|| panic!("replica {site} never reached version {version}"))
        .as_secs_f64();
    (replica, seconds)
}

/// Checks a signed version and applies it at `store`, as the intake does; seconds taken.
fn check_and_apply(
    store: &ReplicaStore,
    keys: &TrustedKeys,
    signed: &cpreg_proto::pb::SignedManifest,
    payload: &[u8],
) -> f64 {
    let now = cpreg_tests::now().timestamp() + 1;
    let started = Instant::now();
    let held = store.trusted_state(AUTHORITY).expect("held");
    let manifest = check_manifest(signed, keys, &held, now, REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES)
        .expect("manifest passes");
    check_payload(&manifest, payload).expect("payload passes");
    store
        .apply(AUTHORITY, &manifest, payload)
        .expect("version applies");
    started.elapsed().as_secs_f64()
}

pub async fn catchup(records: usize, changed: usize, one_version_each: bool) -> serde_json::Value {
    let changed = changed.min(records);
    let primary = TestPrimary::start().await;
    let filled = fill(&primary, records, SEED).await;
    let (v1, _, _) = primary.head().await;

    // The replica gets the register, then goes offline.
    let (replica, first_sync_seconds) = sync_to(&primary, SITE, v1).await;
    let have = replica
        .replica
        .store()
        .trusted_state(AUTHORITY)
        .expect("held");
    replica.replica.stop().await;
    let db_path = replica_config(&primary.pki, SITE, vec![]).database_path();
    let dir = scratch(&primary.pki, "catchup");
    let before = dir.join("before.redb");
    std::fs::copy(&db_path, &before).expect("copy the offline replica's file");

    let started = Instant::now();
    let (how, update) = if one_version_each {
        // One ChangePlan RPC per change: one version each in the change log.
        let mut custodian = primary.client(Role::Custodian).await;
        let ids: Vec<String> = custodian
            .list_children(pb::ListChildrenRequest {
                with_active_plan: true,
                limit: changed as u32,
                ..Default::default()
            })
            .await
            .expect("list children")
            .into_inner()
            .children
            .into_iter()
            .map(|c| c.record_id)
            .collect();
        assert!(!ids.is_empty(), "no child with an active plan");
        let mut made = 0u64;
        for i in 0..changed {
            let reply = custodian
                .change_plan(pb::ChangePlanRequest {
                    record_id: ids[i % ids.len()].clone(),
                    lead_social_worker: Some(pb::Contact {
                        name: format!("Catch-up Worker {i}"),
                        address: String::new(),
                        phone: format!("020 7946 0{:03}", i % 1000),
                        email: String::new(),
                    }),
                    ..Default::default()
                })
                .await
                .expect("change plan")
                .into_inner();
            made += u64::from(reply.changed);
        }
        (
            "one ChangePlan RPC per change (lead social worker name and phone), one version each",
            serde_json::json!({ "changed": made, "distinct_children": ids.len() }),
        )
    } else {
        // The same rows with a new lead social worker phone, imported through the real import
        // (one version per 500-row batch). Only children with a plan: a row without plan
        // columns cannot take a phone alone.
        let mut children: Vec<_> = cpreg::synthetic::Generator::new(SEED, today())
            .children(records)
            .into_iter()
            .filter(|c| !c.lead_social_worker.is_empty())
            .take(changed)
            .collect();
        for (i, child) in children.iter_mut().enumerate() {
            let phone = format!("020 7946 0{:03}", i % 1000);
            child.lead_social_worker_phone = if child.lead_social_worker_phone == phone {
                format!("07700 900{:03}", i % 1000)
            } else {
                phone
            };
        }
        let csv = dir.join("update.csv");
        cpreg::synthetic::write_csv(
            std::io::BufWriter::new(std::fs::File::create(&csv).expect("csv")),
            &children,
        )
        .expect("write csv");
        drop(children);
        let profile = primary.profile(Role::Custodian);
        let report = cpreg::commands::import::import_file(&profile, &csv, &ProgressBar::hidden())
            .await
            .expect("update import");
        (
            "an import of the same rows with a new lead social worker phone (500 rows per version)",
            serde_json::json!({
                "updated": report.updated,
                "unchanged": report.unchanged,
                "rejected": report.rejected,
            }),
        )
    };
    let update_seconds = started.elapsed().as_secs_f64();
    let (v2, _, _) = primary.head().await;

    // The replica comes back on the same folder.
    eprintln!("cpreg-bench: replica restarts {} versions behind", v2 - v1);
    let (replica, catchup_seconds) = sync_to(&primary, SITE, v2).await;
    replica.replica.stop().await;

    // Baseline over the same link: a fresh replica takes the whole register as a full snapshot.
    let (fresh, fresh_full_sync_seconds) = sync_to(&primary, "catchup-fresh", v2).await;
    fresh.replica.stop().await;
    let pki = primary.stop().await;

    // Offline, what the link carried: the merged delta and the full snapshot, rebuilt from the
    // primary's register, and each applied at a copy of the replica as it was.
    let store = open_primary_store(&pki);
    let key = primary_key(&pki);
    let keys = TrustedKeys::new(AUTHORITY, vec![key.verifying_key()]);
    let started = Instant::now();
    let delta = store
        .outgoing(have.version, &have.state_root)
        .expect("outgoing")
        .expect("a delta");
    let delta_build_seconds = started.elapsed().as_secs_f64();
    assert_eq!(
        delta.base_version, have.version,
        "a delta, not a full snapshot"
    );
    let started = Instant::now();
    let full = store
        .outgoing(0, &[])
        .expect("outgoing")
        .expect("a full snapshot");
    let full_build_seconds = started.elapsed().as_secs_f64();
    drop(store);

    let started = Instant::now();
    let delta_signed = sign_head(&key, &delta.head, delta.base_version, &delta.payload);
    let delta_sign_seconds = started.elapsed().as_secs_f64();
    let offline = ReplicaStore::open(&before).expect("copy of the offline replica");
    let delta_apply_seconds = check_and_apply(&offline, &keys, &delta_signed, &delta.payload);
    drop(offline);

    // The full snapshot applied at the replica itself (it holds the head, so the manifest is
    // for the next version number; the content is the same register).
    let replica_store = ReplicaStore::open(&db_path).expect("the replica's file");
    let full_manifest = manifest_for(
        &key,
        full.head.version + 1,
        0,
        full.head.root(),
        full.head.entry_count,
        &full.payload,
    );
    let full_signed = sign_manifest(&full_manifest, &key);
    let full_apply_seconds = check_and_apply(&replica_store, &keys, &full_signed, &full.payload);
    drop(replica_store);

    serde_json::json!({
        "scenario": "catchup",
        "records": records,
        "filled": filled.json(),
        "changed_while_offline": changed,
        "changes_made_by": how,
        "changes_outcome": update,
        "changes_seconds": round6(update_seconds),
        "versions_behind": v2 - v1,
        "entry_count": full.head.entry_count,
        "catchup_seconds": round6(catchup_seconds),
        "what": "from Replica::start on the same data folder (configured as the harness does, but with the replica's default 1 GiB snapshot limit) to its store holding the primary's head, over mTLS on loopback",
        "merged_delta_payload_bytes": delta.payload.len(),
        "merged_delta_entries": cpreg_proto::snapshot::decode_changes(&delta.payload).count(),
        "goal": { "catchup_seconds": 3.0, "met": catchup_seconds < 3.0 },
        "breakdown_offline": {
            "primary_outgoing_merged_delta_seconds": round6(delta_build_seconds),
            "primary_digest_and_sign_seconds": round6(delta_sign_seconds),
            "replica_check_and_apply_delta_seconds": round6(delta_apply_seconds),
            "rest_is_connect_subscribe_transfer_and_poll_seconds": round6(catchup_seconds - delta_build_seconds - delta_sign_seconds - delta_apply_seconds),
        },
        "initial_full_sync_seconds": round6(first_sync_seconds),
        "baseline": {
            "what": "the same register as a FULL snapshot: (a) over the same link to a fresh replica, end to end; (b) check_manifest + check_payload + Store::apply of the full payload at that replica's own file, offline",
            "full_payload_bytes": full.payload.len(),
            "full_snapshot_fresh_replica_seconds": round6(fresh_full_sync_seconds),
            "primary_outgoing_full_seconds": round6(full_build_seconds),
            "full_snapshot_apply_at_replica_seconds": round6(full_apply_seconds),
        },
        "ratios": {
            "catchup_to_fresh_full_sync": round3(catchup_seconds / fresh_full_sync_seconds),
            "catchup_to_full_apply_at_replica": round3(catchup_seconds / full_apply_seconds),
            "delta_bytes_to_full_bytes": round3(delta.payload.len() as f64 / full.payload.len() as f64),
        },
        "peak_rss_mib": peak_rss_mib(),
    })
}
