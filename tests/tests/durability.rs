//! Nothing is lost and nothing half-written: the register survives a restart, and a primary
//! killed with SIGKILL in the middle of an import leaves a register that is consistent and whose
//! audit chain verifies; importing the file again finishes the job.

use cpreg::commands::import::import_file;
use cpreg::profile::{Profile, ProfileFile};
use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_tests::{PrimaryProcess, TestPrimary, child_details, day, plan_start, synthetic_csv};
use futures::StreamExt;
use indicatif::ProgressBar;

const PRIMARY_EXE: &str = env!("CARGO_BIN_EXE_cpreg-primary-under-test");

#[tokio::test]
async fn the_register_is_all_there_after_a_restart() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: "R1".into(),
        details: Some(child_details("Ava", "Green", &day(-900))),
    })
    .await
    .expect("child");
    c.start_plan(plan_start("R1", -5, 40, &[pb::Category::Neglect]))
        .await
        .expect("plan");
    drop(c);
    let before = cpreg::commands::audit::check(&primary.profile(Role::Auditor), None)
        .await
        .expect("verify");

    let pki = primary.stop().await;
    let primary = TestPrimary::start_with(pki).await;
    let mut c = primary.client(Role::Custodian).await;
    let child = c
        .get_child(pb::GetChildRequest {
            record_id: "R1".into(),
        })
        .await
        .expect("still there")
        .into_inner()
        .child
        .expect("child");
    assert_eq!((child.revision, child.plans.len()), (2, 1));
    let after = cpreg::commands::audit::check(&primary.profile(Role::Auditor), None)
        .await
        .expect("verify");
    assert!(after.intact);
    assert_eq!(after.entries, before.entries);
}

/// A profile for the process primary at `url`.
fn custodian_for(primary_dir_profile: &Profile, url: &str) -> Profile {
    let mut file: ProfileFile = primary_dir_profile.file.clone();
    file.primary = url.to_owned();
    Profile::write(&primary_dir_profile.dir, &file).expect("rewrite profile");
    Profile::load(Some(&primary_dir_profile.dir)).expect("profile")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_mid_import_leaves_a_consistent_register_and_the_import_can_finish() {
    let pki = cpreg_tests::TestPki::new();
    let (path, children) = synthetic_csv(pki.path(), "register.csv", 20_000, 11);
    let process = PrimaryProcess::spawn(PRIMARY_EXE, &pki);
    let custodian = custodian_for(&pki.profile(Role::Custodian, &process.url), &process.url);

    // Stream the file and kill the primary once a few thousand rows are acknowledged.
    let mut client = custodian.register().await.expect("connect");
    let bytes = std::fs::read(&path).expect("csv");
    let chunks: Vec<pb::ImportChunk> = bytes
        .chunks(64 * 1024)
        .map(|c| pb::ImportChunk { data: c.to_vec() })
        .collect();
    let mut acks = client
        .import(futures::stream::iter(chunks))
        .await
        .expect("import starts")
        .into_inner();
    let mut acknowledged = 0u64;
    while let Some(ack) = acks.next().await {
        if ack.is_ok() {
            acknowledged += 1;
        }
        if acknowledged == 3_000 {
            break;
        }
    }
    process.kill_9();
    drop(acks);
    assert_eq!(acknowledged, 3_000);

    // Reopen over the same files.
    let primary = TestPrimary::start_with(pki).await;
    let audit = cpreg::commands::audit::check(&primary.profile(Role::Auditor), None)
        .await
        .expect("verify");
    assert!(
        audit.intact,
        "audit chain after SIGKILL: {:?}",
        audit.problem
    );
    let mut c = primary.client(Role::Custodian).await;
    let stored = c
        .list_children(pb::ListChildrenRequest {
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .total;
    assert!(
        stored >= acknowledged,
        "every acknowledged row is stored ({stored} < {acknowledged})"
    );
    assert!(stored < 20_000, "the kill came before the end ({stored})");
    assert_eq!(stored % 500, 0, "whole batches only: {stored}");
    // One audit entry per stored child: no record without its entry, no entry without its record.
    assert_eq!(audit.entries, stored);

    let report = import_file(
        &primary.profile(Role::Custodian),
        &path,
        &ProgressBar::hidden(),
    )
    .await
    .expect("import again");
    assert_eq!(report.unchanged, stored);
    assert_eq!(report.accepted, 20_000 - stored);
    assert_eq!(report.rejected, 0);
    let last = &children[19_999];
    c.get_child(pb::GetChildRequest {
        record_id: last.record_id.clone(),
    })
    .await
    .expect("the last row is there now");
}

#[tokio::test]
async fn a_register_whose_signing_key_is_missing_refuses_to_start() {
    let primary = TestPrimary::start().await;
    let pki = primary.stop().await;
    std::fs::remove_file(pki.primary_dir().join("data").join("signing.key")).expect("remove key");
    let config = cpreg_primary::config::Config::load(&pki.primary_dir().join("primary.toml"))
        .expect("config");
    let err = cpreg_primary::open_store(
        &config,
        std::sync::Arc::new(cpreg_primary::clock::SystemClock),
    )
    .expect_err("refused");
    assert!(err.to_string().contains("restore the key"), "{err}");
}
