//! The authority replaces its signing key (`cpreg-primary rotate-key`, with the server stopped):
//! replicas enrolled with the original key follow the chain to the new one, a replica enrolled
//! with a key outside the chain takes nothing, and the audit chain, whose older checkpoints the
//! old key signed, still verifies.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_tests::replica::{TestReplica, authority_entry, primary_public_key, replica_config};
use cpreg_tests::{AUTHORITY, TestPki, TestPrimary, child_details, day, plan_start};
use ed25519_dalek::SigningKey;

const PRIMARY_EXE: &str = env!("CARGO_BIN_EXE_cpreg-primary-under-test");

/// Puts a child on a plan: a change that is audited and published.
async fn add_child(primary: &TestPrimary, record_id: &str) {
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: record_id.into(),
        details: Some(child_details("Noor", "Baker", &day(-1200))),
    })
    .await
    .expect("child");
    c.start_plan(plan_start(record_id, -2, 40, &[pb::Category::Neglect]))
        .await
        .expect("plan");
}

/// Runs `cpreg-primary rotate-key` on the stopped primary; returns its output.
fn rotate_key(pki: &TestPki) -> String {
    let output = Command::new(PRIMARY_EXE)
        .arg("rotate-key")
        .arg("--config")
        .arg(pki.primary_dir().join("primary.toml"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run rotate-key");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "rotate-key failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// An offline command of the primary: (success, stdout and stderr).
fn offline(args: &[&str], pki: &TestPki) -> (bool, String) {
    let output = Command::new(PRIMARY_EXE)
        .args(args)
        .arg("--config")
        .arg(pki.primary_dir().join("primary.toml"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run cpreg-primary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_enrolled_with_the_original_key_follow_the_rotation() {
    let primary = TestPrimary::start().await;
    add_child(&primary, "K1").await;
    let addr = primary.primary.as_ref().expect("running").addr;
    let original = primary_public_key(&primary.pki);
    let ae = TestReplica::start(&primary.pki, "ae", &primary.url).await;
    ae.wait_for(AUTHORITY, primary.head().await.0).await;

    let pki = primary.stop().await;
    let (running, text) = offline(&["rotate-key"], &pki);
    assert!(running, "{text}");
    assert!(
        text.contains("new key") && text.contains("retired"),
        "{text}"
    );
    let data = pki.primary_dir().join("data");
    let retired: Vec<_> = std::fs::read_dir(&data)
        .expect("data folder")
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("signing.key.retired-")
        })
        .collect();
    assert_eq!(retired.len(), 1, "the old key is kept");
    for file in [retired[0].path(), data.join("signing.key")] {
        let mode = std::fs::metadata(&file).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    assert_ne!(primary_public_key(&pki), original, "a new key is in force");

    let primary = TestPrimary::restart_on(pki, addr).await;
    add_child(&primary, "K2").await;
    let (version, root, count) = primary.head().await;
    ae.wait_for(AUTHORITY, version).await;
    let status = ae.status(AUTHORITY);
    assert_eq!(
        (status.state_root.as_str(), status.entry_count),
        (root.as_str(), count)
    );
    assert_eq!(status.rejected, 0, "{status:?}");
    let enrolled = ed25519_dalek::VerifyingKey::from_bytes(
        &hex::decode(&original)
            .expect("hex")
            .try_into()
            .expect("32 bytes"),
    )
    .expect("key");
    let followed = ae
        .replica
        .store()
        .trusted_keys(AUTHORITY, &[enrolled])
        .expect("keys");
    assert_eq!(
        followed.keys().len(),
        2,
        "the rotation was followed and kept"
    );

    // A site enrolled with the original key after the rotation, and one enrolled with the new
    // key only: both get the whole projection.
    let mut edt = authority_entry(&primary.pki, "edt", &primary.url);
    edt.public_keys = vec![original.clone()];
    let edt = TestReplica::start_with(replica_config(&primary.pki, "edt", vec![edt])).await;
    let cait = TestReplica::start(&primary.pki, "cait", &primary.url).await;
    for site in [&edt, &cait] {
        site.wait_for(AUTHORITY, version).await;
        let status = site.status(AUTHORITY);
        assert_eq!(
            (status.state_root.as_str(), status.rejected),
            (root.as_str(), 0)
        );
    }
    ae.replica.stop().await;
    edt.replica.stop().await;
    cait.replica.stop().await;
    primary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_enrolled_with_a_key_outside_the_chain_takes_nothing() {
    let primary = TestPrimary::start().await;
    add_child(&primary, "S1").await;
    let pki = primary.stop().await;
    rotate_key(&pki);
    let primary = TestPrimary::start_with(pki).await;
    let mut entry = authority_entry(&primary.pki, "ae", &primary.url);
    let stranger = SigningKey::from_bytes(&[42; 32]).verifying_key();
    entry.public_keys = vec![hex::encode(stranger.as_bytes())];
    let replica = TestReplica::start_with(replica_config(&primary.pki, "ae", vec![entry])).await;
    for _ in 0..200 {
        if replica.status(AUTHORITY).rejected >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = replica.status(AUTHORITY);
    assert!(status.rejected >= 2, "{status:?}");
    assert_eq!(status.version, 0, "{status:?}");
    assert!(
        replica
            .replica
            .store()
            .entries(AUTHORITY)
            .expect("entries")
            .is_empty()
    );
    replica.replica.stop().await;
    primary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_verifies_across_a_rotation() {
    let primary = TestPrimary::start().await;
    add_child(&primary, "A1").await;
    let original = primary_public_key(&primary.pki);
    let pki = primary.stop().await;
    rotate_key(&pki);
    let new = primary_public_key(&pki);
    let primary = TestPrimary::start_with(pki).await;
    add_child(&primary, "A2").await;

    let auditor = primary.profile(Role::Auditor);
    let reported = cpreg::commands::audit::check(&auditor, None)
        .await
        .expect("verify");
    assert!(reported.intact, "{:?}", reported.problem);
    assert_eq!((reported.entries, reported.key_chain.len()), (4, 2));
    let pinned = cpreg::commands::audit::check(&auditor, Some(&original))
        .await
        .expect("verify");
    assert!(pinned.intact, "{:?}", pinned.problem);
    // Pinning the newest key cannot vouch for what the old key signed: the verifier says which
    // key to pin.
    let err = cpreg::commands::audit::check(&auditor, Some(&new))
        .await
        .expect_err("the rotation does not chain from the newest key")
        .to_string();
    assert!(err.contains("original key"), "{err}");

    let pki = primary.stop().await;
    let (intact, text) = offline(&["audit-verify"], &pki);
    assert!(intact && text.contains("audit chain intact"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_key_refuses_while_the_primary_is_running() {
    let primary = TestPrimary::start().await;
    let before = primary_public_key(&primary.pki);
    let (rotated, text) = offline(&["rotate-key"], &primary.pki);
    assert!(!rotated, "{text}");
    assert!(text.contains("stop it"), "{text}");
    assert_eq!(primary_public_key(&primary.pki), before);
    primary.stop().await;
}
