//! Replicas follow the primary over mTLS: a full snapshot first, then each change as it commits,
//! and they keep answering from the last good version when the primary is gone.

use cpreg_proto::pb::{self, Category};
use cpreg_proto::role::Role;
use cpreg_proto::snapshot::{AUTHORITY_KEY, CHILD_PREFIX};
use cpreg_tests::replica::TestReplica;
use cpreg_tests::{
    AUTHORITY, TestPrimary, child_details, day, ended_at_review, plan_start, synthetic_csv,
};
use indicatif::ProgressBar;
use prost::Message;

async fn import(primary: &TestPrimary, n: usize) {
    import_seeded(primary, n, 3).await;
}

async fn import_seeded(primary: &TestPrimary, n: usize, seed: u64) {
    let (path, _) = synthetic_csv(primary.pki.path(), "register.csv", n, seed);
    cpreg::commands::import::import_file(
        &primary.profile(Role::Custodian),
        &path,
        &ProgressBar::hidden(),
    )
    .await
    .expect("import");
}

fn projected(replica: &TestReplica, record_id: &str) -> Option<pb::ProjectedChild> {
    replica
        .entry(AUTHORITY, &format!("{CHILD_PREFIX}{record_id}"))
        .map(|bytes| pb::ProjectedChild::decode(bytes.as_slice()).expect("decodes"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_replica_gets_the_whole_projection_then_each_change_as_it_commits() {
    let primary = TestPrimary::start().await;
    import(&primary, 300).await;
    let replica = TestReplica::start(&primary.pki, "ae", &primary.url).await;
    let (version, root, count) = primary.head().await;
    replica.wait_for(AUTHORITY, version).await;
    let status = replica.status(AUTHORITY);
    assert_eq!(
        (
            status.version,
            status.state_root.as_str(),
            status.entry_count
        ),
        (version, root.as_str(), count)
    );
    assert!(!status.stale);
    assert!(
        replica.entry(AUTHORITY, AUTHORITY_KEY).is_some(),
        "the authority's numbers travel too"
    );

    // A change at the primary reaches the replica as a delta.
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: "NEW1".into(),
        details: Some(child_details("Esme", "Lowe", &day(-1500))),
    })
    .await
    .expect("child");
    c.start_plan(plan_start("NEW1", -2, 40, &[Category::Neglect]))
        .await
        .expect("plan");
    let (version, root, _) = primary.head().await;
    replica.wait_for(AUTHORITY, version).await;
    assert_eq!(replica.status(AUTHORITY).state_root, root);
    let child = projected(&replica, "NEW1").expect("projected");
    assert_eq!(
        (child.surname.as_str(), child.plan_status.as_str()),
        ("Lowe", "active")
    );
    assert_eq!(child.lead_social_worker_phone, "02079460123");
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projection_carries_no_household_adults_or_offences() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    let mut details = child_details("Ivy", "Hart", &day(-2500));
    details.household_adults = vec![pb::Person {
        full_name: "Dean Price".into(),
        relationship: "mother's partner".into(),
        offences: vec!["Assault occasioning actual bodily harm".into()],
        ..Default::default()
    }];
    c.create_child(pb::CreateChildRequest {
        record_id: "P1".into(),
        details: Some(details),
    })
    .await
    .expect("child");
    c.start_plan(plan_start("P1", -2, 40, &[Category::Physical]))
        .await
        .expect("plan");
    let replica = TestReplica::start(&primary.pki, "ae", &primary.url).await;
    replica.wait_for(AUTHORITY, primary.head().await.0).await;
    for (key, value) in replica.replica.store().entries(AUTHORITY).expect("entries") {
        let text = String::from_utf8_lossy(&value);
        assert!(
            !text.contains("Dean Price") && !text.contains("Assault"),
            "{key} leaks household details"
        );
    }
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_without_a_plan_is_not_in_the_projection_and_an_ended_plan_is() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: "N1".into(),
        details: Some(child_details("Ada", "Moss", &day(-900))),
    })
    .await
    .expect("child");
    c.create_child(pb::CreateChildRequest {
        record_id: "E1".into(),
        details: Some(child_details("Eli", "Moss", &day(-900))),
    })
    .await
    .expect("child");
    c.start_plan(plan_start("E1", -30, 40, &[Category::Emotional]))
        .await
        .expect("plan");
    c.end_plan(ended_at_review("E1", -1)).await.expect("ended");
    let replica = TestReplica::start(&primary.pki, "edt", &primary.url).await;
    replica.wait_for(AUTHORITY, primary.head().await.0).await;
    assert!(projected(&replica, "N1").is_none());
    let ended = projected(&replica, "E1").expect("ended plans stay for 365 days");
    assert_eq!(
        (ended.plan_status.as_str(), ended.plan_end_date.as_str()),
        ("ended", day(-1).as_str())
    );
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_keep_answering_while_the_primary_is_down_are_marked_stale_and_catch_up() {
    let primary = TestPrimary::start().await;
    import(&primary, 100).await;
    let addr = primary.primary.as_ref().expect("running").addr;
    let replica = TestReplica::start(&primary.pki, "cait", &primary.url).await;
    let (version, root, _) = primary.head().await;
    replica.wait_for(AUTHORITY, version).await;

    let pki = primary.stop().await;
    // A day and an hour later with no word from the primary: still answering, marked stale.
    replica.clock.advance(chrono::Duration::hours(25));
    let status = replica.status(AUTHORITY);
    assert!(status.stale, "{status:?}");
    assert_eq!(
        (status.version, status.state_root.as_str()),
        (version, root.as_str())
    );
    assert!(
        projected(&replica, "C0000001").is_some(),
        "the last good version is still served"
    );

    // The primary comes back on the same address with changes made meanwhile.
    let primary = TestPrimary::restart_on(pki, addr).await;
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: "BACK1".into(),
        details: Some(child_details("Jay", "Cole", &day(-700))),
    })
    .await
    .expect("child");
    c.start_plan(plan_start("BACK1", -1, 40, &[Category::Neglect]))
        .await
        .expect("plan");
    let (version, root, _) = primary.head().await;
    replica.wait_for(AUTHORITY, version).await;
    let status = replica.status(AUTHORITY);
    assert_eq!(status.state_root, root);
    assert!(projected(&replica, "BACK1").is_some());
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_custodian_sees_each_replica_version_and_last_contact() {
    let primary = TestPrimary::start().await;
    import(&primary, 50).await;
    let ae = TestReplica::start(&primary.pki, "ae", &primary.url).await;
    let edt = TestReplica::start(&primary.pki, "edt", &primary.url).await;
    let (version, _, _) = primary.head().await;
    ae.wait_for(AUTHORITY, version).await;
    edt.wait_for(AUTHORITY, version).await;
    let mut reports = Vec::new();
    for _ in 0..100 {
        reports = primary
            .profile(Role::Custodian)
            .replication()
            .await
            .expect("connect")
            .list_replicas(pb::ListReplicasRequest {})
            .await
            .expect("list")
            .into_inner()
            .replicas;
        if reports.len() == 2 && reports.iter().all(|r| r.version == version) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut sites: Vec<&str> = reports.iter().map(|r| r.site.as_str()).collect();
    sites.sort();
    assert_eq!(sites, ["ae", "edt"]);
    assert!(
        reports
            .iter()
            .all(|r| r.version == version && !r.stale && !r.last_contact.is_empty()),
        "{reports:?}"
    );
    ae.replica.stop().await;
    edt.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_london_ae_holds_two_boroughs_side_by_side() {
    use cpreg_tests::replica::{authority_entry, replica_config};
    let ours = TestPrimary::start().await;
    let theirs =
        TestPrimary::start_with(cpreg_tests::TestPki::for_authority("neighbour-borough")).await;
    import(&ours, 40).await;
    import_seeded(&theirs, 60, 4).await;
    let config = replica_config(
        &ours.pki,
        "ae",
        vec![
            authority_entry(&ours.pki, "ae", &ours.url),
            authority_entry(&theirs.pki, "ae", &theirs.url),
        ],
    );
    let replica = TestReplica::start_with(config).await;
    let (ours_version, ours_root, _) = ours.head().await;
    let (theirs_version, theirs_root, _) = theirs.head().await;
    replica.wait_for(AUTHORITY, ours_version).await;
    replica.wait_for("neighbour-borough", theirs_version).await;
    assert_eq!(replica.status(AUTHORITY).state_root, ours_root);
    assert_eq!(replica.status("neighbour-borough").state_root, theirs_root);
    // The same record id in each borough is two different children, each under its authority.
    let here = replica.entry(AUTHORITY, "child/C0000001").expect("ours");
    let there = replica
        .entry("neighbour-borough", "child/C0000001")
        .expect("theirs");
    assert_ne!(here, there);
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_plan_leaves_the_replicas_after_365_days_and_an_unborn_plan_28_days_after_the_due_date()
 {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: "OLD1".into(),
        details: Some(child_details("Ray", "Dunn", &day(-2000))),
    })
    .await
    .expect("child");
    c.start_plan(plan_start("OLD1", -60, 20, &[Category::Neglect]))
        .await
        .expect("plan");
    c.end_plan(ended_at_review("OLD1", 0))
        .await
        .expect("ended today");
    let unborn = pb::ChildDetails {
        unborn: Some(pb::Unborn {
            expected_delivery_date: day(30),
            mother_given_names: "Lena".into(),
            mother_surname: "Dunn".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    c.create_child(pb::CreateChildRequest {
        record_id: "UNB1".into(),
        details: Some(unborn),
    })
    .await
    .expect("unborn");
    c.start_plan(plan_start("UNB1", -1, 40, &[Category::Neglect]))
        .await
        .expect("pre-birth plan");
    let addr = primary.primary.as_ref().expect("running").addr;
    let replica = TestReplica::start(&primary.pki, "ae", &primary.url).await;
    replica.wait_for(AUTHORITY, primary.head().await.0).await;
    assert!(projected(&replica, "OLD1").is_some() && projected(&replica, "UNB1").is_some());

    // 59 days on: the unborn child's plan is 29 days past the due date and leaves; the ended
    // plan (59 days old) stays.
    let pki = primary.stop().await;
    replica
        .clock
        .set(cpreg_tests::now() + chrono::Duration::days(59));
    let primary =
        TestPrimary::restart_on_at(pki, addr, cpreg_tests::now() + chrono::Duration::days(59))
            .await;
    replica.wait_for(AUTHORITY, primary.head().await.0).await;
    assert!(
        projected(&replica, "UNB1").is_none(),
        "unborn plan kept past 28 days after the due date"
    );
    assert!(projected(&replica, "OLD1").is_some());

    // 366 days after the end, the ended plan leaves too.
    let pki = primary.stop().await;
    replica
        .clock
        .set(cpreg_tests::now() + chrono::Duration::days(366));
    let primary =
        TestPrimary::restart_on_at(pki, addr, cpreg_tests::now() + chrono::Duration::days(366))
            .await;
    replica.wait_for(AUTHORITY, primary.head().await.0).await;
    assert!(
        projected(&replica, "OLD1").is_none(),
        "ended plan kept past 365 days"
    );
    replica.replica.stop().await;
    primary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_restored_from_a_backup_is_published_above_what_replicas_hold() {
    let primary = TestPrimary::start().await;
    import(&primary, 30).await;
    let addr = primary.primary.as_ref().expect("running").addr;
    let replica = TestReplica::start(&primary.pki, "ae", &primary.url).await;
    replica.wait_for(AUTHORITY, primary.head().await.0).await;

    // Back up the stopped register, then carry on with changes the backup will not have.
    let pki = primary.stop().await;
    let data = pki.primary_dir().join("data");
    let backup = pki.path().join("backup");
    std::fs::create_dir_all(&backup).expect("backup dir");
    for file in ["register.redb", "signing.key"] {
        std::fs::copy(data.join(file), backup.join(file)).expect("back up");
    }
    let primary = TestPrimary::restart_on(pki, addr).await;
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: "LOST1".into(),
        details: Some(child_details("Tia", "Ford", &day(-600))),
    })
    .await
    .expect("child");
    c.start_plan(plan_start("LOST1", -1, 40, &[Category::Neglect]))
        .await
        .expect("plan");
    drop(c);
    let ahead = primary.head().await.0;
    replica.wait_for(AUTHORITY, ahead).await;

    // Restore the backup: the replica holds a version the register never had, and refuses the
    // older one as a rollback, keeping what it holds.
    let pki = primary.stop().await;
    for file in ["register.redb", "signing.key"] {
        std::fs::copy(backup.join(file), data.join(file)).expect("restore");
    }
    let primary = TestPrimary::restart_on(pki, addr).await;
    assert!(primary.head().await.0 < ahead);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(replica.version(), ahead);

    // The custodian publishes the restored register above it; the replica takes it whole.
    let pki = primary.stop().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cpreg-primary-under-test"))
        .args(["restored", "--above", &ahead.to_string(), "--config"])
        .arg(pki.primary_dir().join("primary.toml"))
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let primary = TestPrimary::restart_on(pki, addr).await;
    let (version, root, _) = primary.head().await;
    assert_eq!(version, ahead + 1);
    replica.wait_for(AUTHORITY, version).await;
    assert_eq!(replica.status(AUTHORITY).state_root, root);
    assert!(
        projected(&replica, "LOST1").is_none(),
        "what the backup never had is gone from the replica too"
    );
    replica.replica.stop().await;
    primary.stop().await;
}
