//! A site with no link at all gets the register on a file: the primary exports its signed
//! snapshot encrypted for that site (`cpreg-primary export`), someone carries it over, and the
//! replica imports it through the same checks a subscription gets. A file cut short, meant for
//! another site, or older than what is held is refused, and the last good version is served.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cpreg_primary::clock::FixedClock;
use cpreg_primary::config::Config;
use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_proto::snapshot::IntakeError;
use cpreg_replica::ReplicaError;
use cpreg_replica::import::{ImportError, generate_identity};
use cpreg_tests::replica::{TestReplica, authority_entry, replica_config, site_dir};
use cpreg_tests::{
    AUTHORITY, TestPki, TestPrimary, child_details, day, now, plan_start, synthetic_csv,
};

const PRIMARY_EXE: &str = env!("CARGO_BIN_EXE_cpreg-primary-under-test");

/// No primary listens here: the site has no link.
const NO_LINK: &str = "https://127.0.0.1:1";

/// A replica at `site` that cannot reach any primary, and its identity file and recipient.
async fn island(pki: &TestPki, site: &str) -> (TestReplica, PathBuf, String) {
    let config = replica_config(pki, site, vec![authority_entry(pki, site, NO_LINK)]);
    let replica = TestReplica::start_with(config).await;
    let identity = site_dir(pki, site).join("site.key");
    let recipient = generate_identity(&identity).expect("identity");
    (replica, identity, recipient)
}

async fn add_children(primary: &TestPrimary, ids: &[&str]) {
    let mut c = primary.client(Role::Custodian).await;
    for id in ids {
        c.create_child(pb::CreateChildRequest {
            record_id: (*id).into(),
            details: Some(child_details("Rae", "Quinn", &day(-1500))),
        })
        .await
        .expect("child");
        c.start_plan(plan_start(id, -3, 40, &[pb::Category::Physical]))
            .await
            .expect("plan");
    }
}

/// Stops the primary, exports its current version for `recipient` to `name` in the test folder,
/// and starts it again.
async fn export(primary: TestPrimary, recipient: &str, name: &str) -> (TestPrimary, PathBuf) {
    let pki = primary.stop().await;
    let config = Config::load(&pki.primary_dir().join("primary.toml")).expect("config");
    let out = pki.path().join(name);
    let clock = Arc::new(FixedClock::new(now()));
    cpreg_primary::export::export_snapshot(&config, clock, recipient, &out).expect("export");
    (TestPrimary::start_with(pki).await, out)
}

async fn import(
    site: &TestReplica,
    identity: &Path,
    file: &Path,
) -> Result<cpreg_replica::TrustedState, ReplicaError> {
    site.replica.import_file(AUTHORITY, identity, file).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_with_no_link_imports_the_export_and_holds_what_the_primary_signed() {
    let primary = TestPrimary::start().await;
    add_children(&primary, &["I1", "I2", "I3"]).await;
    let (site, identity, recipient) = island(&primary.pki, "island").await;
    let (version, root, count) = primary.head().await;
    let (primary, file) = export(primary, &recipient, "island.cpreg").await;
    let mode = std::fs::metadata(&file).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let held = import(&site, &identity, &file).await.expect("imported");
    assert_eq!(held.version, version);
    let status = site.status(AUTHORITY);
    assert_eq!(
        (
            status.version,
            status.state_root.as_str(),
            status.entry_count
        ),
        (version, root.as_str(), count)
    );
    assert!(!status.connected && !status.stale, "{status:?}");
    site.replica.stop().await;
    primary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_file_is_refused_and_the_last_good_version_is_still_served() {
    let primary = TestPrimary::start().await;
    add_children(&primary, &["T1", "T2"]).await;
    let (site, identity, recipient) = island(&primary.pki, "island").await;
    let (primary, first) = export(primary, &recipient, "v1.cpreg").await;
    let good = import(&site, &identity, &first).await.expect("first");
    add_children(&primary, &["T3"]).await;
    // Enough children that the file spans several encrypted chunks.
    let (csv, _) = synthetic_csv(primary.pki.path(), "register.csv", 1500, 7);
    cpreg::commands::import::import_file(
        &primary.profile(Role::Custodian),
        &csv,
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .expect("import");
    let (primary, second) = export(primary, &recipient, "v2.cpreg").await;

    let whole = std::fs::read(&second).expect("read");
    assert!(whole.len() > 3 * 64 * 1024, "{} bytes", whole.len());
    let cut_file = primary.pki.path().join("cut.cpreg");
    let chunk = 64 * 1024 + 16;
    for cut in [
        1,
        100,
        chunk,
        whole.len() / 2,
        3 * chunk,
        whole.len() - 40,
        whole.len() - 1,
    ] {
        std::fs::write(&cut_file, &whole[..cut]).expect("write");
        let refused = import(&site, &identity, &cut_file).await;
        assert!(refused.is_err(), "cut at {cut}: {refused:?}");
        let status = site.status(AUTHORITY);
        assert_eq!(
            (status.version, &status.state_root),
            (good.version, &hex::encode(&good.state_root)),
            "cut at {cut}"
        );
    }
    assert!(site.entry(AUTHORITY, "child/T1").is_some(), "still served");
    assert!(site.entry(AUTHORITY, "child/T3").is_none());
    // The whole file still goes in.
    let held = import(&site, &identity, &second).await.expect("whole");
    assert_eq!(held.version, primary.head().await.0);
    site.replica.stop().await;
    primary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_encrypted_for_another_site_is_refused() {
    let primary = TestPrimary::start().await;
    add_children(&primary, &["O1"]).await;
    let (site, identity, _) = island(&primary.pki, "island").await;
    let elsewhere = primary.pki.path().join("elsewhere.key");
    let theirs = generate_identity(&elsewhere).expect("other identity");
    let (primary, file) = export(primary, &theirs, "theirs.cpreg").await;
    let refused = import(&site, &identity, &file).await;
    assert!(
        matches!(
            refused,
            Err(ReplicaError::Import(ImportError::NotForThisSite))
        ),
        "{refused:?}"
    );
    assert_eq!(site.version(), 0);
    site.replica.stop().await;
    primary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_older_than_the_version_held_is_refused_as_a_rollback() {
    let primary = TestPrimary::start().await;
    add_children(&primary, &["R1"]).await;
    let (site, identity, recipient) = island(&primary.pki, "island").await;
    let (primary, older) = export(primary, &recipient, "old.cpreg").await;
    add_children(&primary, &["R2"]).await;
    let (primary, newer) = export(primary, &recipient, "new.cpreg").await;
    let held = import(&site, &identity, &newer).await.expect("newer");
    let refused = import(&site, &identity, &older).await;
    assert!(
        matches!(
            refused,
            Err(ReplicaError::Import(ImportError::Refused(
                IntakeError::Rollback { .. }
            )))
        ),
        "{refused:?}"
    );
    let status = site.status(AUTHORITY);
    assert_eq!(status.version, held.version);
    assert!(status.rejected > 0, "counted like any refusal");
    site.replica.stop().await;
    primary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_command_writes_a_private_file_only_with_the_server_stopped() {
    let primary = TestPrimary::start().await;
    add_children(&primary, &["E1"]).await;
    let (site, identity, recipient) = island(&primary.pki, "island").await;
    let out = primary.pki.path().join("cli.cpreg");
    let run = |recipient: &str, pki: &TestPki| {
        let output = Command::new(PRIMARY_EXE)
            .arg("export")
            .arg("--config")
            .arg(pki.primary_dir().join("primary.toml"))
            .args(["--recipient", recipient, "--out"])
            .arg(&out)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run export");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let (written, text) = run(&recipient, &primary.pki);
    assert!(!written && text.contains("stop it"), "{text}");
    let (version, root, _) = primary.head().await;
    let pki = primary.stop().await;
    let (written, text) = run("age1notarecipient", &pki);
    assert!(!written && text.contains("age1"), "{text}");
    let (written, text) = run(&recipient, &pki);
    assert!(
        written && text.contains(&format!("version {version}")),
        "{text}"
    );
    let mode = std::fs::metadata(&out).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (written, text) = run(&recipient, &pki);
    assert!(!written && text.contains("already exists"), "{text}");

    // `cpreg-replica import` opens the site's store itself, so the replica must be stopped.
    let config = site.replica.config().clone();
    let offline = |file: PathBuf| {
        let (config, identity) = (config.clone(), identity.clone());
        async move {
            // Signed on the machine's clock: the site reads it on the same clock.
            let clock = Arc::new(cpreg_replica::SystemClock);
            cpreg_replica::import_offline(&config, AUTHORITY, &identity, &file, clock).await
        }
    };
    let busy = offline(out.clone()).await;
    assert!(matches!(busy, Err(ReplicaError::InUse { .. })), "{busy:?}");
    site.replica.stop().await;
    let held = offline(out).await.expect("imported");
    assert_eq!(
        (held.version, hex::encode(&held.state_root)),
        (version, root)
    );
}
