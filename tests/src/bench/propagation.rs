//! `propagation`: a primary and three replicas in this process over mutual TLS on loopback;
//! changes made one at a time, each timed from its RPC returning to the new version being held
//! at every replica, against the round trip of a unary mTLS RPC measured in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_replica::store::Store as ReplicaStore;
use cpreg_tests::replica::{TestReplica, authority_entry, replica_config};
use cpreg_tests::{AUTHORITY, TestPki, TestPrimary};

use crate::common::{
    NodelayServer, REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES, fill, ms, p50, p99, peak_rss_mib, round3,
    round6, summary_ms,
};

/// How long the poller sleeps between looks at the replicas' stores.
pub const POLL_SLEEP: Duration = Duration::from_micros(50);
/// A change not visible everywhere by then is counted as lost.
const VISIBLE_LIMIT: Duration = Duration::from_secs(10);

/// A replica as the harness starts one, with the replica's default snapshot limit rather than
/// the harness's 64 MiB (so `--records` can go past ~200 000).
pub async fn start_replica(pki: &TestPki, site: &str, primary_url: &str) -> TestReplica {
    let mut config = replica_config(pki, site, vec![authority_entry(pki, site, primary_url)]);
    config.max_snapshot_bytes = REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES;
    TestReplica::start_with(config).await
}

/// The version held of the test authority, read from the store as `Replica::status` does.
pub fn held_version(store: &ReplicaStore) -> u64 {
    store
        .trusted_state(AUTHORITY)
        .map(|s| s.version)
        .unwrap_or_default()
}

/// Polls the stores from a blocking thread until each holds `target`; per store, the time from
/// `since` to the first look that saw it (None if never within the limit).
pub fn poll_until(
    stores: &[Arc<ReplicaStore>],
    target: u64,
    since: Instant,
    limit: Duration,
) -> Vec<Option<Duration>> {
    let mut seen: Vec<Option<Duration>> = vec![None; stores.len()];
    loop {
        for (slot, store) in seen.iter_mut().zip(stores) {
            if slot.is_none() && held_version(store) >= target {
                *slot = Some(since.elapsed());
            }
        }
        if seen.iter().all(Option::is_some) || since.elapsed() > limit {
            return seen;
        }
        std::thread::sleep(POLL_SLEEP);
    }
}

pub async fn propagation(
    records: usize,
    changes: usize,
    listener_nodelay: bool,
) -> serde_json::Value {
    let (primary, nodelay_server) = if listener_nodelay {
        let (primary, server) = NodelayServer::start(TestPki::new()).await;
        (primary, Some(server))
    } else {
        (TestPrimary::start().await, None)
    };
    let filled = fill(&primary, records, 11).await;
    let sites = ["prop-1", "prop-2", "prop-3"];
    let started = Instant::now();
    let mut replicas = Vec::new();
    for site in sites {
        replicas.push(start_replica(&primary.pki, site, &primary.url).await);
    }
    let stores: Vec<Arc<ReplicaStore>> = replicas.iter().map(|r| r.replica.store()).collect();
    let (mut version, _, _) = primary.head().await;
    let synced = {
        let stores = stores.clone();
        tokio::task::spawn_blocking(move || {
            poll_until(&stores, version, started, Duration::from_secs(600))
        })
        .await
        .expect("poller")
    };
    assert!(
        synced.iter().all(Option::is_some),
        "replicas never caught up"
    );
    let initial_sync_seconds = started.elapsed().as_secs_f64();

    // Baseline: a unary mTLS round trip on an established channel.
    let mut auditor = primary.client(Role::Auditor).await;
    let mut rtt = Vec::new();
    for i in 0..changes + 20 {
        let started = Instant::now();
        auditor
            .get_authority(pb::GetAuthorityRequest {})
            .await
            .expect("authority");
        if i >= 20 {
            rtt.push(ms(started.elapsed()));
        }
    }

    // The children whose plans the changes touch.
    let mut custodian = primary.client(Role::Custodian).await;
    let ids: Vec<String> = custodian
        .list_children(pb::ListChildrenRequest {
            with_active_plan: true,
            limit: changes.min(10_000) as u32,
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

    eprintln!("cpreg-bench: {changes} changes, one at a time");
    let (mut rpc_ms, mut all_ms, mut first_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_replica: Vec<Vec<f64>> = vec![Vec::new(); stores.len()];
    let (mut unchanged, mut lost, mut extra_versions) = (0u64, 0u64, 0u64);
    for i in 0..changes {
        let request = pb::ChangePlanRequest {
            record_id: ids[i % ids.len()].clone(),
            lead_social_worker: Some(pb::Contact {
                name: format!("Bench Worker {i}"),
                address: String::new(),
                phone: format!("020 7946 0{:03}", i % 1000),
                email: String::new(),
            }),
            ..Default::default()
        };
        let target = version + 1;
        let started = Instant::now();
        let reply = custodian
            .change_plan(request)
            .await
            .expect("change plan")
            .into_inner();
        let returned = Instant::now();
        rpc_ms.push(ms(returned - started));
        if !reply.changed {
            unchanged += 1;
            continue;
        }
        let seen = {
            let stores = stores.clone();
            tokio::task::spawn_blocking(move || {
                poll_until(&stores, target, returned, VISIBLE_LIMIT)
            })
            .await
            .expect("poller")
        };
        if seen.iter().any(Option::is_none) {
            lost += 1;
        } else {
            let times: Vec<f64> = seen.iter().map(|d| ms(d.unwrap_or_default())).collect();
            all_ms.push(times.iter().copied().fold(f64::MIN, f64::max));
            first_ms.push(times.iter().copied().fold(f64::MAX, f64::min));
            for (samples, t) in per_replica.iter_mut().zip(times) {
                samples.push(t);
            }
        }
        // Untimed: the version the change actually made (in case anything else published).
        let (head, _, _) = primary.head().await;
        if head != target {
            extra_versions += 1;
        }
        version = head;
    }

    for replica in replicas {
        replica.replica.stop().await;
    }
    if let Some(server) = nodelay_server {
        server.stop().await;
    }
    let _pki = primary.stop().await;

    let (p50_all, p99_all) = (p50(&all_ms), p99(&all_ms));
    serde_json::json!({
        "scenario": "propagation",
        "records": records,
        "filled": filled.json(),
        "replicas": sites.len(),
        "primary": if listener_nodelay {
            "cpreg_primary::run on a listener with TCP_NODELAY set (diagnostic, --listener-nodelay)"
        } else {
            "the harness's TestPrimary (LocalPrimary, as the demo runs it)"
        },
        "initial_full_sync_seconds_from_first_replica_start": round6(initial_sync_seconds),
        "changes": changes,
        "what": "ChangePlan (lead social worker name and phone, both projected) over mTLS, one at a time; each timed from the RPC returning until all 3 replicas' stores hold the new version (trusted_state, what Replica::status reads), polled from a blocking thread every ~50 µs",
        "poll_sleep_us": POLL_SLEEP.as_micros() as u64,
        "visible_at_all_replicas": summary_ms(&all_ms),
        "share_of_changes_over_20ms": round3(all_ms.iter().filter(|t| **t > 20.0).count() as f64 / all_ms.len().max(1) as f64),
        "visible_at_first_replica": summary_ms(&first_ms),
        "per_replica_p50_ms": per_replica.iter().map(|s| round3(p50(s))).collect::<Vec<_>>(),
        "change_rpc": summary_ms(&rpc_ms),
        "unchanged": unchanged,
        "not_visible_within_10s": lost,
        "changes_that_made_other_than_one_version": extra_versions,
        "goal": {
            "p50_ms": 200.0, "p99_ms": 1000.0,
            "p50_met": p50_all < 200.0, "p99_met": p99_all < 1000.0,
        },
        "baseline": {
            "what": "GetAuthority unary round trip over mTLS on an established channel, same primary, same run (20 warm-up calls dropped)",
            "rtt": summary_ms(&rtt),
        },
        "ratios": {
            "p50_visible_to_p50_rtt": round3(p50_all / p50(&rtt)),
            "p99_visible_to_p99_rtt": round3(p99_all / p99(&rtt)),
        },
        "peak_rss_mib": peak_rss_mib(),
    })
}
