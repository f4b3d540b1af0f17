//! Someone with access to the primary's disk edits or deletes audit entries in the redb file;
//! `audit verify` (over gRPC, and offline from the command line) names the first entry touched.

use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_tests::{TestPki, TestPrimary, child_details, day, plan_start};
use redb::{ReadableDatabase, TableDefinition};

/// The audit table as an attacker with the file would find it.
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// A register with a few dozen audited changes, stopped.
async fn stopped_register() -> (TestPki, std::path::PathBuf) {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    for i in 0..12 {
        let id = format!("T{i}");
        c.create_child(pb::CreateChildRequest {
            record_id: id.clone(),
            details: Some(child_details("Ella", "Ward", &day(-800 - i))),
        })
        .await
        .expect("child");
        c.start_plan(plan_start(&id, -3, 50, &[pb::Category::Emotional]))
            .await
            .expect("plan");
    }
    let db = primary.database_path();
    (primary.stop().await, db)
}

fn tamper(db: &std::path::Path, change: impl FnOnce(&mut redb::Table<u64, &[u8]>)) {
    let db = redb::Database::open(db).expect("open the file directly");
    let txn = db.begin_write().expect("write");
    {
        let mut table = txn.open_table(AUDIT).expect("audit table");
        change(&mut table);
    }
    txn.commit().expect("commit");
}

fn entry(db: &std::path::Path, seq: u64) -> Vec<u8> {
    let db = redb::Database::open(db).expect("open");
    let txn = db.begin_read().expect("read");
    let table = txn.open_table(AUDIT).expect("audit table");
    let found = table.get(seq).expect("get").expect("entry exists");
    found.value().to_vec()
}

async fn verdict(pki: TestPki) -> cpreg::commands::audit::Verdict {
    let primary = TestPrimary::start_with(pki).await;
    let verdict = cpreg::commands::audit::check(&primary.profile(Role::Auditor), None)
        .await
        .expect("verify runs");
    primary.stop().await;
    verdict
}

#[tokio::test]
async fn an_untouched_chain_verifies() {
    let (pki, _) = stopped_register().await;
    let v = verdict(pki).await;
    assert!(v.intact, "{:?}", v.problem);
    assert_eq!(v.entries, 24);
}

#[tokio::test]
async fn editing_an_audit_entry_in_the_file_is_named() {
    let (pki, db) = stopped_register().await;
    let original = String::from_utf8(entry(&db, 9)).expect("json");
    let forged = original.replace("custodian:Test custodian", "custodian:Someone Else");
    assert_ne!(original, forged);
    tamper(&db, |t| {
        t.insert(9, forged.as_bytes()).expect("overwrite");
    });
    let v = verdict(pki).await;
    assert!(!v.intact);
    assert_eq!(v.broken_at, Some(9), "{:?}", v.problem);
    assert!(v.problem.expect("problem").contains("altered"));
}

#[tokio::test]
async fn deleting_an_audit_entry_in_the_file_is_named() {
    let (pki, db) = stopped_register().await;
    tamper(&db, |t| {
        t.remove(5).expect("remove");
    });
    let v = verdict(pki).await;
    assert_eq!(v.broken_at, Some(5), "{:?}", v.problem);
    assert!(v.problem.expect("problem").contains("removed"));
}

#[tokio::test]
async fn deleting_the_newest_audit_entry_is_caught_by_the_signed_checkpoint() {
    let (pki, db) = stopped_register().await;
    tamper(&db, |t| {
        t.remove(23).expect("remove");
    });
    let v = verdict(pki).await;
    assert_eq!(v.broken_at, Some(23), "{:?}", v.problem);
}

#[tokio::test]
async fn the_offline_audit_check_names_the_edited_entry_and_exits_non_zero() {
    let (pki, db) = stopped_register().await;
    let original = String::from_utf8(entry(&db, 3)).expect("json");
    let forged = original.replace("plan.start", "plan.ended");
    assert_ne!(original, forged);
    tamper(&db, |t| {
        t.insert(3, forged.as_bytes()).expect("overwrite");
    });
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_cpreg-primary-under-test"))
        .args(["audit-verify", "--config"])
        .arg(pki.primary_dir().join("primary.toml"))
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("audit entry 3 was altered"), "{stdout}");
}

/// The checkpoints as an attacker with the file would find them.
const CHECKPOINTS: TableDefinition<u64, (&[u8], &[u8])> = TableDefinition::new("audit_checkpoints");

#[tokio::test]
async fn editing_the_newest_entry_and_deleting_its_checkpoint_is_caught() {
    let (pki, db) = stopped_register().await;
    let original = String::from_utf8(entry(&db, 23)).expect("json");
    let forged = original.replace("custodian:Test custodian", "custodian:Someone Else");
    tamper(&db, |t| {
        t.insert(23, forged.as_bytes()).expect("overwrite");
    });
    {
        let file = redb::Database::open(&db).expect("open");
        let txn = file.begin_write().expect("write");
        txn.open_table(CHECKPOINTS)
            .expect("checkpoints")
            .remove(23)
            .expect("remove");
        txn.commit().expect("commit");
    }
    let v = verdict(pki).await;
    assert_eq!(v.broken_at, Some(23), "{:?}", v.problem);
    assert!(
        v.problem
            .expect("problem")
            .contains("not covered by a signed checkpoint")
    );
}

#[tokio::test]
async fn an_entry_appended_to_the_file_without_the_key_is_caught() {
    let (pki, db) = stopped_register().await;
    let last = entry(&db, 23);
    let mut forged: cpreg_proto::audit::AuditRecord =
        serde_json::from_slice(&last).expect("record");
    forged.seq = 24;
    forged.action = "plan.end".into();
    forged.prev = cpreg_proto::audit::entry_hash(&last);
    tamper(&db, |t| {
        t.insert(24, forged.to_bytes().as_slice()).expect("append");
    });
    let v = verdict(pki).await;
    assert_eq!(v.broken_at, Some(24), "{:?}", v.problem);
}
