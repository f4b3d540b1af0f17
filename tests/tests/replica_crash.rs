//! A replica process killed with SIGKILL while it takes a full snapshot: after each kill its file
//! holds either nothing or a whole signed version (entries, count and state root agree), and once
//! restarted it catches up with the primary.
//!
//! The replica runs as a separate process: this test binary started again in "child" mode (see
//! `replica_child_process`), running the real `cpreg_replica::Replica` until it is killed.

use std::time::Duration;

use cpreg_proto::role::Role;
use cpreg_proto::snapshot::StateRoot;
use cpreg_tests::replica::{TestReplica, authority_entry, replica_config};
use cpreg_tests::replica_process::ReplicaProcess;
use cpreg_tests::{AUTHORITY, TestPrimary, synthetic_csv};
use indicatif::ProgressBar;

/// Child mode: runs a replica when this binary is started again by `ReplicaProcess`.
#[test]
fn replica_child_process() {
    cpreg_tests::replica_process::serve_if_child();
}

/// What a replica's file holds, checked for being one whole version.
fn check_whole(path: &std::path::Path) -> u64 {
    let store = cpreg_replica::store::Store::open(path)
        .expect("reopen (and repair) the killed replica's file");
    let held = store.trusted_state(AUTHORITY).expect("trusted state");
    let entries = store.entries(AUTHORITY).expect("entries");
    let mut root = StateRoot::default();
    for (key, value) in &entries {
        root.insert(key, value);
    }
    if held.version == 0 {
        assert!(entries.is_empty(), "entries without a trusted version");
    } else {
        assert_eq!(
            entries.len() as u64,
            held.entry_count,
            "entry count of version {}",
            held.version
        );
        assert_eq!(
            root.to_bytes(),
            held.state_root,
            "state root of version {}",
            held.version
        );
    }
    held.version
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_during_a_full_apply_holds_a_whole_version_and_catches_up() {
    let primary = TestPrimary::start().await;
    let (csv, _) = synthetic_csv(primary.pki.path(), "register.csv", 30_000, 21);
    cpreg::commands::import::import_file(
        &primary.profile(Role::Custodian),
        &csv,
        &ProgressBar::hidden(),
    )
    .await
    .expect("import");
    let (head, root, _) = primary.head().await;

    let config = replica_config(
        &primary.pki,
        "ae",
        vec![authority_entry(&primary.pki, "ae", &primary.url)],
    );
    let config_path = cpreg_tests::replica::site_dir(&primary.pki, "ae").join("replica.toml");
    let database = config.database_path();
    let mut seen = Vec::new();
    for delay_ms in [150u64, 400, 800, 1_500, 3_000] {
        let child = ReplicaProcess::spawn_unwatched(&config_path);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        child.kill_9();
        if database.exists() {
            let version = check_whole(&database);
            assert!(
                version == 0 || version == head,
                "a version the primary never published: {version}"
            );
            seen.push(version);
        }
    }
    eprintln!("versions held after each kill: {seen:?} (head {head})");
    assert!(!seen.is_empty(), "the replica never created its file");

    // Restarted for good, it reaches the primary's head with the signed state root.
    let replica = TestReplica::start_with(config).await;
    replica.wait_for(AUTHORITY, head).await;
    assert_eq!(replica.status(AUTHORITY).state_root, root);
    replica.replica.stop().await;
}
