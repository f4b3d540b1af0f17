//! Scenarios of importing the case-management system's CSV export through the real streaming
//! RPC: a large file, the same file again, and a file with bad rows among good ones.

use cpreg::commands::import::{ImportReport, import_file};
use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_tests::{TestPrimary, synthetic_csv};
use indicatif::ProgressBar;

async fn import(primary: &TestPrimary, path: &std::path::Path) -> ImportReport {
    import_file(
        &primary.profile(Role::Custodian),
        path,
        &ProgressBar::hidden(),
    )
    .await
    .expect("import runs")
}

async fn audit_entries(primary: &TestPrimary) -> u64 {
    cpreg::commands::audit::check(&primary.profile(Role::Auditor), None)
        .await
        .expect("verify")
        .entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_rows_are_accepted_and_the_same_file_again_changes_nothing() {
    let primary = TestPrimary::start().await;
    let (path, children) = synthetic_csv(primary.pki.path(), "register.csv", 20_000, 7);

    let first = import(&primary, &path).await;
    assert_eq!(
        (
            first.accepted,
            first.updated,
            first.unchanged,
            first.rejected
        ),
        (20_000, 0, 0, 0),
        "{:?}",
        first.rows.iter().find(|r| !r.reason.is_empty())
    );
    assert_eq!(first.rows.len(), 20_000, "one acknowledgement per row");
    assert!(
        first.rows.windows(2).all(|w| w[0].line < w[1].line),
        "acknowledged in file order"
    );
    let entries_after_first = audit_entries(&primary).await;
    let db_size = std::fs::metadata(primary.database_path())
        .expect("db")
        .len();

    let again = import(&primary, &path).await;
    assert_eq!(
        (
            again.accepted,
            again.updated,
            again.unchanged,
            again.rejected
        ),
        (0, 0, 20_000, 0)
    );
    assert_eq!(
        audit_entries(&primary).await,
        entries_after_first,
        "nothing written to the audit chain"
    );
    assert_eq!(
        std::fs::metadata(primary.database_path())
            .expect("db")
            .len(),
        db_size,
        "the register file did not grow"
    );

    let mut c = primary.client(Role::Custodian).await;
    let sample = &children[12_345];
    let child = c
        .get_child(pb::GetChildRequest {
            record_id: sample.record_id.clone(),
        })
        .await
        .expect("stored")
        .into_inner()
        .child
        .expect("child");
    assert_eq!(child.revision, 1);
    assert_eq!(child.details.expect("details").surname, sample.surname);
}

#[tokio::test]
async fn bad_rows_are_rejected_with_line_and_reason_and_good_rows_stored() {
    let primary = TestPrimary::start().await;
    let csv = "\
record_id,given_names,surname,date_of_birth,gender,nhs_number,postcode,category,plan_start_date,lead_social_worker,lead_social_worker_phone,next_review_date
G1,Amelia,Evans,2019-04-23,female,9434765919,CR0 1AA,neglect,2026-10-01,Sam Okafor,020 7946 0123,2026-12-20
B1,Oliver,Smith,2018-01-01,male,9434765918,CR0 1AA,,,,,
B2,Isla,Jones,2017-05-05,female,,CR0 1AB,abuse,2026-10-01,Sam Okafor,020 7946 0123,2026-12-20
B3,Leo,Brown,2027-01-01,male,,CR0 1AC,,,,,
B4,Ava,,2016-02-02,female,,CR0 1AD,,,,,
B5,\"Noah,Khan,2015-03-03,male,,CR0 1AE,,,,,
G2,Zoë,Ahmed-Khan,2020-06-30,female,,SE25 4XY,emotional;physical,2026-11-01,Sam Okafor,020 7946 0123,2027-01-31
";
    let path = primary.pki.path().join("bad.csv");
    std::fs::write(&path, csv).expect("write");
    let report = import(&primary, &path).await;
    assert_eq!((report.accepted, report.rejected), (2, 5));
    let rejected: Vec<(u64, &str, &str)> = report
        .rows
        .iter()
        .filter(|r| r.outcome == i32::from(pb::RowOutcome::Rejected))
        .map(|r| (r.line, r.record_id.as_str(), r.reason.as_str()))
        .collect();
    let expect = [
        (3, "B1", "check digit"),
        (4, "B2", "unknown category \"abuse\""),
        (5, "B3", "in the future"),
        (6, "B4", "surname is empty"),
        (7, "", "quote is never closed"),
    ];
    assert_eq!(rejected.len(), expect.len(), "{rejected:?}");
    for ((line, id, reason), (want_line, want_id, want_reason)) in rejected.iter().zip(expect) {
        assert_eq!((*line, *id), (want_line, want_id));
        assert!(reason.contains(want_reason), "line {line}: {reason}");
    }
    let mut c = primary.client(Role::Custodian).await;
    let list = c
        .list_children(pb::ListChildrenRequest::default())
        .await
        .expect("list")
        .into_inner();
    let mut ids: Vec<String> = list.children.iter().map(|c| c.record_id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["G1", "G2"]);
    let g2 = c
        .get_child(pb::GetChildRequest {
            record_id: "G2".into(),
        })
        .await
        .expect("G2")
        .into_inner()
        .child
        .expect("child");
    assert_eq!(g2.details.expect("details").given_names, "Zoë");
    assert_eq!(g2.plans[0].categories.len(), 2);
}

#[tokio::test]
async fn a_changed_row_updates_only_that_child_as_a_new_revision() {
    let primary = TestPrimary::start().await;
    let header = "record_id,given_names,surname,date_of_birth,postcode\n";
    let path = primary.pki.path().join("a.csv");
    std::fs::write(
        &path,
        format!("{header}A1,Amelia,Evans,2019-04-23,CR0 1AA\nA2,Leo,Evans,2020-04-23,CR0 1AA\n"),
    )
    .expect("write");
    import(&primary, &path).await;
    std::fs::write(
        &path,
        format!(
            "{header}A1,Amelia,Evans-Hughes,2019-04-23,CR0 1AA\nA2,Leo,Evans,2020-04-23,CR0 1AA\n"
        ),
    )
    .expect("write");
    let report = import(&primary, &path).await;
    assert_eq!(
        (report.accepted, report.updated, report.unchanged),
        (0, 1, 1)
    );
    let mut c = primary.client(Role::Custodian).await;
    let history = c
        .child_history(pb::GetChildRequest {
            record_id: "A1".into(),
        })
        .await
        .expect("history")
        .into_inner();
    assert_eq!(history.revisions.len(), 2);
    assert_eq!(history.revisions[1].changed, ["details.surname"]);
}

#[tokio::test]
async fn a_file_without_record_id_is_refused_whole_naming_the_columns() {
    let primary = TestPrimary::start().await;
    let path = primary.pki.path().join("nohdr.csv");
    std::fs::write(&path, "id,surname\n1,Smith\n").expect("write");
    let err = import_file(
        &primary.profile(Role::Custodian),
        &path,
        &ProgressBar::hidden(),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("record_id"), "{err}");
}

#[tokio::test]
async fn a_record_id_the_register_could_not_reach_again_is_rejected() {
    let primary = TestPrimary::start().await;
    let path = primary.pki.path().join("ids.csv");
    std::fs::write(
        &path,
        "record_id,surname,date_of_birth\nCS 12#x,Smith,2019-01-01\nC-12,Jones,2019-01-01\n",
    )
    .expect("write");
    let report = import(&primary, &path).await;
    assert_eq!((report.accepted, report.rejected), (1, 1));
    assert!(
        report.rows[0].reason.contains("record_id"),
        "{}",
        report.rows[0].reason
    );
}

#[tokio::test]
async fn a_renamed_column_is_reported_and_a_repeated_one_refuses_the_file() {
    let primary = TestPrimary::start().await;
    let path = primary.pki.path().join("cols.csv");
    std::fs::write(
        &path,
        "record_id,surname,date_of_birth,aliases\nA1,Smith,2019-01-01,Smithy\n",
    )
    .expect("write");
    let report = import(&primary, &path).await;
    assert_eq!(report.ignored_columns, ["aliases"]);
    std::fs::write(&path, "record_id,surname,surname\nA1,Smith,Smyth\n").expect("write");
    let err = import_file(
        &primary.profile(Role::Custodian),
        &path,
        &ProgressBar::hidden(),
    )
    .await
    .expect_err("refused");
    assert!(err.to_string().contains("\"surname\" twice"), "{err}");
}
