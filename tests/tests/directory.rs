//! The organisation directory the call-back path relies on, and another authority's request for
//! a child's historic plans, released only with the custodian's approval.

use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_tests::{TestPrimary, child_details, day, ended_at_review, plan_start};
use tonic::Code;

fn ae(number: &str) -> pb::Organisation {
    pb::Organisation {
        id: "st-elsewhere-ae".into(),
        name: "St Elsewhere Emergency Department".into(),
        kind: pb::OrganisationKind::EmergencyDepartment.into(),
        callback_number: number.into(),
        site: "ae".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn custodian_records_an_organisation_with_its_verified_call_back_number() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    let reply = c
        .put_organisation(pb::PutOrganisationRequest {
            organisation: Some(ae("01632 960 100")),
        })
        .await
        .expect("saved")
        .into_inner();
    let org = reply.organisation.expect("org");
    assert!(reply.changed);
    assert_eq!(org.callback_number, "01632960100");
    assert_eq!(org.verified_by, "custodian:Test custodian");
    assert_eq!(org.verified_on, day(0));

    let again = c
        .put_organisation(pb::PutOrganisationRequest {
            organisation: Some(ae("01632960100")),
        })
        .await
        .expect("same")
        .into_inner();
    assert!(!again.changed, "the same details again change nothing");

    let err = c
        .put_organisation(pb::PutOrganisationRequest {
            organisation: Some(ae("ring the switchboard")),
        })
        .await
        .expect_err("bad number");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("not a UK number"),
        "{}",
        err.message()
    );

    let mut auditor = primary.client(Role::Auditor).await;
    let list = auditor
        .list_organisations(pb::ListOrganisationsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.organisations.len(), 1);
    c.remove_organisation(pb::RemoveOrganisationRequest {
        id: "st-elsewhere-ae".into(),
    })
    .await
    .expect("removed");
    let err = c
        .remove_organisation(pb::RemoveOrganisationRequest {
            id: "st-elsewhere-ae".into(),
        })
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn historic_plans_are_released_to_another_authority_only_after_approval() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: "H1".into(),
        details: Some(child_details("Ruby", "Hill", &day(-3000))),
    })
    .await
    .expect("child");
    c.start_plan(plan_start("H1", -60, 20, &[pb::Category::Physical]))
        .await
        .expect("plan");
    c.end_plan(ended_at_review("H1", -1)).await.expect("ended");

    let err = c
        .request_historic_release(pb::HistoricReleaseRequest {
            record_id: "H1".into(),
            requesting_authority: "Lambeth".into(),
            requester: "J. Doe, Lambeth MASH".into(),
            reason: String::new(),
        })
        .await
        .expect_err("a reason is required");
    assert!(err.message().contains("reason"), "{}", err.message());

    let release = c
        .request_historic_release(pb::HistoricReleaseRequest {
            record_id: "H1".into(),
            requesting_authority: "Lambeth".into(),
            requester: "J. Doe, Lambeth MASH".into(),
            reason: "Single Assessment after the family moved to Lambeth".into(),
        })
        .await
        .expect("recorded")
        .into_inner()
        .release
        .expect("release");
    assert_eq!(release.status, i32::from(pb::ReleaseStatus::Pending));

    let err = c
        .release_historic_plans(pb::ReleaseHistoricPlansRequest {
            id: release.id.clone(),
        })
        .await
        .expect_err("not yet approved");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("pending"), "{}", err.message());

    c.decide_historic_release(pb::DecideHistoricReleaseRequest {
        id: release.id.clone(),
        approve: true,
        note: "Agreed by unit manager".into(),
    })
    .await
    .expect("approved");
    let released = c
        .release_historic_plans(pb::ReleaseHistoricPlansRequest {
            id: release.id.clone(),
        })
        .await
        .expect("released")
        .into_inner();
    assert_eq!(released.ended_plans.len(), 1);
    assert_eq!(released.child_name, "Ruby Hill");

    let err = c
        .decide_historic_release(pb::DecideHistoricReleaseRequest {
            id: release.id,
            approve: false,
            note: String::new(),
        })
        .await
        .expect_err("decided once");
    assert!(
        err.message().contains("already been decided"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn a_refused_request_releases_nothing() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: "H2".into(),
        details: Some(child_details("Finn", "Hill", &day(-3000))),
    })
    .await
    .expect("child");
    let release = c
        .request_historic_release(pb::HistoricReleaseRequest {
            record_id: "H2".into(),
            requesting_authority: "Bromley".into(),
            requester: "Duty SW".into(),
            reason: "Routine check".into(),
        })
        .await
        .expect("recorded")
        .into_inner()
        .release
        .expect("release");
    c.decide_historic_release(pb::DecideHistoricReleaseRequest {
        id: release.id.clone(),
        approve: false,
        note: "Routine checks are not formal checks".into(),
    })
    .await
    .expect("refused");
    let err = c
        .release_historic_plans(pb::ReleaseHistoricPlansRequest { id: release.id })
        .await
        .expect_err("refused");
    assert!(err.message().contains("refused"), "{}", err.message());
}
