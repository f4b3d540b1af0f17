//! What the custodian monitors, through the `cpreg admin` commands against a real primary: the
//! Contacts recorded for children without a plan, the alerts raised, acknowledging an alert with
//! a note of what was done, and each replica's enquiry outbox backlog.

use clap::Parser;
use cpreg::cli::{AlertsFilter, Cli};
use cpreg::commands::follow_up::{
    acknowledge_alert, alerts_text, contacts_text, list_alerts, list_contacts,
};
use cpreg::commands::replicas::replicas_text;
use cpreg::output::CliError;
use cpreg::profile::Profile;
use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_tests::TestPrimary;
use tonic::Code;

const REFUSED: &str = "AE-20261122-000001";
const FIRST_ASKED: &str = "AE-20261122-000002";
const ASKED_AGAIN: &str = "AE-20261122-000003";

/// The replica's record of an enquiry at A&E, as it reports it.
fn record(reference: &str, at: &str, state: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "reference": reference,
        "at": at,
        "site": "ae",
        "path": {
            "path": "terminal",
            "terminal": "A&E workstation 1",
            "organisation": "st-elsewhere-ae",
            "operator": "Dr A. Patel",
            "operator_role": "ED registrar",
        },
        "reason": "Unexplained bruising",
        "searched": { "given_names": "Mia", "surname": "Evans", "date_of_birth": "2019-04-02" },
        "state": state,
        "history": [],
    }))
    .expect("JSON")
}

/// An answer that found no child on the register.
fn no_record() -> serde_json::Value {
    serde_json::json!({
        "state": "answered",
        "outcome": "no_record",
        "record_ids": [],
        "authorities": [],
        "advice": "No plan found: follow your local safeguarding procedure.",
    })
}

/// The A&E replica reports a refused lookup, then two separate lookups about the same child who
/// is not on the register.
async fn report_enquiries(primary: &TestPrimary) {
    let report =
        |reference: &str, at: &str, state: &str, answer: serde_json::Value| pb::EnquiryReport {
            reference: reference.into(),
            record: record(reference, at, answer),
            state: state.into(),
            children: Vec::new(),
            alert: String::new(),
        };
    let refused = serde_json::json!({ "state": "refused", "why": "missing the date of birth" });
    let committed = primary
        .profile(Role::Replica)
        .replication()
        .await
        .expect("connect")
        .report_enquiries(pb::ReportEnquiriesRequest {
            enquiries: vec![
                report(REFUSED, "2026-11-22T02:00:00Z", "refused", refused),
                report(FIRST_ASKED, "2026-11-22T03:00:00Z", "answered", no_record()),
                report(ASKED_AGAIN, "2026-11-22T04:00:00Z", "answered", no_record()),
            ],
        })
        .await
        .expect("reported")
        .into_inner()
        .committed;
    assert_eq!(committed.len(), 3);
}

/// Runs a `cpreg` command line as the custodian.
async fn cpreg(custodian: &Profile, args: &[&str]) -> Result<(), CliError> {
    let profile = custodian.dir.to_string_lossy().into_owned();
    let line = ["cpreg", "--profile", profile.as_str(), "--json"]
        .into_iter()
        .chain(args.iter().copied());
    cpreg::cli::run(Cli::try_parse_from(line).expect("a valid command line")).await
}

fn all_alerts() -> AlertsFilter {
    AlertsFilter {
        kind: None,
        unacknowledged: false,
        limit: 50,
    }
}

#[tokio::test]
async fn enquiries_about_a_child_without_a_plan_become_contacts_the_custodian_can_list() {
    let primary = TestPrimary::start().await;
    report_enquiries(&primary).await;
    let custodian = primary.profile(Role::Custodian);

    cpreg(&custodian, &["admin", "contacts"])
        .await
        .expect("admin contacts");
    let contacts = list_contacts(&custodian, None, 50).await.expect("contacts");
    let references: Vec<&str> = contacts
        .contacts
        .iter()
        .map(|c| c.reference.as_str())
        .collect();
    assert_eq!(references, [ASKED_AGAIN, FIRST_ASKED], "newest first");
    let newest = &contacts.contacts[0];
    assert_eq!(newest.at, "2026-11-22T04:00:00Z");
    assert_eq!(newest.site, "ae");
    assert!(newest.enquirer.contains("Dr A. Patel"), "{newest:?}");
    assert!(newest.searched.contains("Mia Evans"), "{newest:?}");
    assert!(newest.advice.contains("local safeguarding"), "{newest:?}");
    assert_eq!(newest.record_id, "", "the child is not on the register");

    let json = serde_json::to_value(&contacts).expect("JSON");
    assert_eq!(json["contacts"][1]["reference"], FIRST_ASKED);
    assert_eq!(json["contacts"][1]["reason"], "Unexplained bruising");
    let text = contacts_text(&contacts);
    assert!(text.starts_with("2 contact(s)"), "{text}");
    assert!(text.contains("no record on the register"), "{text}");

    let limited = list_contacts(&custodian, None, 1).await.expect("contacts");
    assert_eq!(limited.contacts.len(), 1);
    let about_a_record = list_contacts(&custodian, Some("C000001".into()), 50)
        .await
        .expect("contacts");
    assert!(about_a_record.contacts.is_empty());
}

#[tokio::test]
async fn the_custodian_acknowledges_a_refused_lookup_alert_with_a_note() {
    let primary = TestPrimary::start().await;
    report_enquiries(&primary).await;
    let custodian = primary.profile(Role::Custodian);

    let alerts = list_alerts(&custodian, &all_alerts())
        .await
        .expect("alerts");
    let mut kinds: Vec<&str> = alerts.alerts.iter().map(|a| a.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["refused", "second-enquiry"]);
    let refused_id = format!("refused:{REFUSED}");
    let refused = list_alerts(
        &custodian,
        &AlertsFilter {
            kind: Some("refused".into()),
            ..all_alerts()
        },
    )
    .await
    .expect("alerts");
    assert_eq!(refused.alerts.len(), 1);
    assert_eq!(refused.alerts[0].id, refused_id);
    assert_eq!(refused.alerts[0].references, [REFUSED]);
    assert!(
        refused.alerts[0]
            .message
            .contains("missing the date of birth")
    );
    assert_eq!(refused.alerts[0].acknowledged_by, "");
    assert!(alerts_text(&refused).contains("UNACKNOWLEDGED"));

    // An acknowledgement says what was done: the command line will not send one without.
    let without_note =
        Cli::try_parse_from(["cpreg", "admin", "alerts", "ack", refused_id.as_str()])
            .expect_err("--note is required");
    assert_eq!(
        without_note.kind(),
        clap::error::ErrorKind::MissingRequiredArgument
    );
    let empty = acknowledge_alert(&custodian, &refused_id, "  ")
        .await
        .expect_err("an empty note");
    assert_eq!(empty.exit_code(), 2, "{empty}");

    let note = "Rang St Elsewhere ED: a locum without the child's details; advised";
    cpreg(
        &custodian,
        &[
            "admin",
            "alerts",
            "ack",
            refused_id.as_str(),
            "--note",
            note,
        ],
    )
    .await
    .expect("admin alerts ack");

    let open = list_alerts(
        &custodian,
        &AlertsFilter {
            unacknowledged: true,
            ..all_alerts()
        },
    )
    .await
    .expect("alerts");
    let open: Vec<&str> = open.alerts.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(open, ["second-enquiry"]);
    let seen = list_alerts(
        &custodian,
        &AlertsFilter {
            kind: Some("refused".into()),
            ..all_alerts()
        },
    )
    .await
    .expect("alerts");
    let seen = &seen.alerts[0];
    assert_eq!(seen.acknowledged_by, "custodian:Test custodian");
    assert_eq!(seen.acknowledged_at, "2026-11-22T12:00:00Z");
    assert_eq!(seen.acknowledgement_note, note);
    let json = serde_json::to_value(seen).expect("JSON");
    assert_eq!(json["acknowledgement_note"], note);

    let again = acknowledge_alert(&custodian, &refused_id, "again")
        .await
        .expect_err("already acknowledged");
    assert!(again.to_string().contains("was acknowledged by"), "{again}");
    let unknown = acknowledge_alert(&custodian, "refused:AE-19990101-000001", "seen")
        .await
        .expect_err("no such alert");
    let CliError::Refused(status) = &unknown else {
        panic!("refused by the primary: {unknown}");
    };
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("cpreg admin alerts"),
        "says how to find the id: {}",
        status.message()
    );
}

#[tokio::test]
async fn a_replica_s_outbox_backlog_is_shown_by_admin_replicas() {
    let primary = TestPrimary::start().await;
    primary
        .profile(Role::Replica)
        .replication()
        .await
        .expect("connect")
        .report_status(pb::ReplicaStatus {
            version: 0,
            stale: true,
            outbox_backlog: 3,
            ..Default::default()
        })
        .await
        .expect("status reported");
    let custodian = primary.profile(Role::Custodian);

    cpreg(&custodian, &["admin", "replicas"])
        .await
        .expect("admin replicas");
    let reply = custodian
        .replication()
        .await
        .expect("connect")
        .list_replicas(pb::ListReplicasRequest {})
        .await
        .expect("replicas")
        .into_inner();
    let json = serde_json::to_value(&reply).expect("JSON");
    assert_eq!(json["replicas"][0]["site"], "ae");
    assert_eq!(json["replicas"][0]["outbox_backlog"], 3);
    let text = replicas_text(&reply, 0);
    assert!(text.contains("outbox 3"), "{text}");
}
