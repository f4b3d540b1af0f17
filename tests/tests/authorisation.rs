//! Who may do what at the primary: every RPC of the register service and the custodian's
//! follow-up RPCs of the replication service tried with every role, and with certificates the
//! primary must not accept at all.

use std::time::{Duration, SystemTime};

use cpreg::pki::{DevCa, write_issued};
use cpreg::profile::Profile;
use cpreg_proto::pb;
use cpreg_proto::pb::register_client::RegisterClient;
use cpreg_proto::pb::replication_client::ReplicationClient;
use cpreg_proto::role::Role;
use cpreg_tests::authorisation::judged;
use cpreg_tests::{TestPrimary, child_details, day};
use futures::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Every RPC, with the roles meant to pass it.
const RPCS: &[(&str, &[Role])] = &[
    ("CreateChild", &[Role::Custodian]),
    ("UpdateChild", &[Role::Custodian]),
    ("GetChild", &[Role::Custodian, Role::Auditor]),
    ("ListChildren", &[Role::Custodian, Role::Auditor]),
    ("ChildHistory", &[Role::Custodian, Role::Auditor]),
    ("StartPlan", &[Role::Custodian]),
    ("ChangePlan", &[Role::Custodian]),
    ("RecordReview", &[Role::Custodian]),
    ("EndPlan", &[Role::Custodian]),
    ("AddPlanDocument", &[Role::Custodian]),
    ("PutOrganisation", &[Role::Custodian]),
    ("RemoveOrganisation", &[Role::Custodian]),
    ("ListOrganisations", &[Role::Custodian, Role::Auditor]),
    ("RequestHistoricRelease", &[Role::Custodian]),
    ("DecideHistoricRelease", &[Role::Custodian]),
    ("ListHistoricReleases", &[Role::Custodian, Role::Auditor]),
    ("ReleaseHistoricPlans", &[Role::Custodian]),
    ("Import", &[Role::Custodian]),
    ("ExportAudit", &[Role::Custodian, Role::Auditor]),
    (
        "GetAuthority",
        &[
            Role::Custodian,
            Role::Auditor,
            Role::Replica,
            Role::Terminal,
        ],
    ),
    ("ListContacts", &[Role::Custodian]),
    ("ListAlerts", &[Role::Custodian]),
    ("AcknowledgeAlert", &[Role::Custodian]),
];

/// A role's clients of both services.
struct Clients {
    register: RegisterClient<Channel>,
    replication: ReplicationClient<Channel>,
}

/// Makes one call of `rpc`; only the status matters.
async fn call(clients: &mut Clients, rpc: &str) -> Result<(), Status> {
    let id = || "AUTHZ-1".to_string();
    let c = &mut clients.register;
    let r = &mut clients.replication;
    match rpc {
        "CreateChild" => c
            .create_child(pb::CreateChildRequest {
                record_id: id(),
                details: Some(child_details("A", "B", &day(-100))),
            })
            .await
            .map(drop),
        "UpdateChild" => c
            .update_child(pb::UpdateChildRequest {
                record_id: id(),
                details: Some(child_details("A", "C", &day(-100))),
                expected_revision: 0,
            })
            .await
            .map(drop),
        "GetChild" => c
            .get_child(pb::GetChildRequest { record_id: id() })
            .await
            .map(drop),
        "ListChildren" => c
            .list_children(pb::ListChildrenRequest::default())
            .await
            .map(drop),
        "ChildHistory" => c
            .child_history(pb::GetChildRequest { record_id: id() })
            .await
            .map(drop),
        "StartPlan" => c
            .start_plan(cpreg_tests::plan_start(
                &id(),
                -1,
                30,
                &[pb::Category::Neglect],
            ))
            .await
            .map(drop),
        "ChangePlan" => c
            .change_plan(pb::ChangePlanRequest {
                record_id: id(),
                ..Default::default()
            })
            .await
            .map(drop),
        "RecordReview" => c
            .record_review(pb::RecordReviewRequest {
                record_id: id(),
                held_on: day(0),
                next_review_date: day(30),
            })
            .await
            .map(drop),
        "EndPlan" => c
            .end_plan(pb::EndPlanRequest {
                record_id: id(),
                end: None,
            })
            .await
            .map(drop),
        "AddPlanDocument" => c
            .add_plan_document(pb::AddPlanDocumentRequest {
                record_id: id(),
                ..Default::default()
            })
            .await
            .map(drop),
        "PutOrganisation" => c
            .put_organisation(pb::PutOrganisationRequest { organisation: None })
            .await
            .map(drop),
        "RemoveOrganisation" => c
            .remove_organisation(pb::RemoveOrganisationRequest {
                id: "nobody".into(),
            })
            .await
            .map(drop),
        "ListOrganisations" => c
            .list_organisations(pb::ListOrganisationsRequest {})
            .await
            .map(drop),
        "RequestHistoricRelease" => c
            .request_historic_release(pb::HistoricReleaseRequest::default())
            .await
            .map(drop),
        "DecideHistoricRelease" => c
            .decide_historic_release(pb::DecideHistoricReleaseRequest::default())
            .await
            .map(drop),
        "ListHistoricReleases" => c
            .list_historic_releases(pb::ListHistoricReleasesRequest {})
            .await
            .map(drop),
        "ReleaseHistoricPlans" => c
            .release_historic_plans(pb::ReleaseHistoricPlansRequest { id: "HR-1".into() })
            .await
            .map(drop),
        "Import" => {
            let chunks = futures::stream::iter([pb::ImportChunk {
                data: b"record_id,surname\n".to_vec(),
            }]);
            let mut acks = c.import(chunks).await?.into_inner();
            while let Some(ack) = acks.next().await {
                ack?;
            }
            Ok(())
        }
        "ExportAudit" => {
            let mut items = c
                .export_audit(pb::ExportAuditRequest {})
                .await?
                .into_inner();
            while let Some(item) = items.next().await {
                item?;
            }
            Ok(())
        }
        "GetAuthority" => c.get_authority(pb::GetAuthorityRequest {}).await.map(drop),
        "ListContacts" => r
            .list_contacts(pb::ListContactsRequest::default())
            .await
            .map(drop),
        "ListAlerts" => r
            .list_alerts(pb::ListAlertsRequest::default())
            .await
            .map(drop),
        "AcknowledgeAlert" => r
            .acknowledge_alert(pb::AcknowledgeAlertRequest {
                id: "refused:AUTHZ-1".into(),
                note: "Seen".into(),
            })
            .await
            .map(drop),
        other => panic!("no call for {other}"),
    }
}

#[tokio::test]
async fn every_rpc_is_refused_for_every_role_it_is_not_meant_for() {
    let primary = TestPrimary::start().await;
    let roles = [
        Role::Custodian,
        Role::Auditor,
        Role::Replica,
        Role::Terminal,
    ];
    let mut refusals = 0;
    for role in roles {
        let profile = primary.profile(role);
        let mut client = Clients {
            register: profile.register().await.expect("connect"),
            replication: profile.replication().await.expect("connect"),
        };
        for (rpc, allowed) in RPCS {
            let result = call(&mut client, rpc).await;
            if let Some(e) = judged(rpc, role, allowed.contains(&role), result) {
                assert!(
                    e.message().contains(rpc),
                    "the refusal names the RPC: {}",
                    e.message()
                );
                refusals += 1;
            }
        }
    }
    // Auditors are refused the 13 changes and the 3 follow-up RPCs; replicas and terminals
    // everything but GetAuthority.
    assert_eq!(refusals, (13 + 3) + 22 + 22);
}

/// A profile that trusts the primary's CA but holds a certificate from `ca` instead.
fn foreign_profile(
    primary: &TestPrimary,
    ca: &DevCa,
    name: &str,
    valid: Option<(SystemTime, SystemTime)>,
) -> Profile {
    let profile = primary.profile(Role::Custodian);
    let dir = primary.pki.path().join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    for file in ["ca.pem", "profile.toml"] {
        std::fs::copy(profile.dir.join(file), dir.join(file)).expect("copy");
    }
    let issued = match valid {
        Some((from, to)) => ca.issue_client_valid(Role::Custodian, "Intruder", None, from, to),
        None => ca.issue_client(Role::Custodian, "Intruder", None, 30),
    }
    .expect("issue");
    write_issued(&issued, &dir.join("cert.pem"), &dir.join("key.pem")).expect("write");
    Profile::load(Some(&dir)).expect("profile")
}

async fn refused_at_the_door(profile: &Profile) {
    let result = match profile.register().await {
        Err(_) => return,
        Ok(mut c) => c.list_children(pb::ListChildrenRequest::default()).await,
    };
    let e = result.expect_err("a certificate the primary does not accept");
    assert_ne!(e.code(), Code::Ok);
}

#[tokio::test]
async fn a_custodian_certificate_from_another_ca_is_refused() {
    let primary = TestPrimary::start().await;
    let other = DevCa::create(cpreg_tests::AUTHORITY).expect("another CA with the same name");
    refused_at_the_door(&foreign_profile(&primary, &other, "intruder", None)).await;
}

#[tokio::test]
async fn an_expired_custodian_certificate_is_refused() {
    let primary = TestPrimary::start().await;
    let now = SystemTime::now();
    let expired = Some((
        now - Duration::from_secs(86_400 * 10),
        now - Duration::from_secs(86_400),
    ));
    refused_at_the_door(&foreign_profile(
        &primary,
        &primary.pki.ca,
        "expired",
        expired,
    ))
    .await;
}
