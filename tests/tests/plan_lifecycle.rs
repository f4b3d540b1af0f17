//! Scenarios of the plan lifecycle as the Safeguarding Unit runs it, against a real primary over
//! mTLS: start, review, change of category, each way a plan ends, and the rules that refuse a
//! step out of procedure.

use cpreg_proto::pb::{self, Category, EndReason};
use cpreg_proto::role::Role;
use cpreg_tests::{TestPrimary, child_details, day, plan_start};
use tonic::Code;

async fn child_with_plan(primary: &TestPrimary, record_id: &str) -> pb::ChildRecord {
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: record_id.into(),
        details: Some(child_details("Amelia", "Evans", &day(-3000))),
    })
    .await
    .expect("child added");
    c.start_plan(plan_start(record_id, -10, 60, &[Category::Neglect]))
        .await
        .expect("plan starts")
        .into_inner()
        .child
        .expect("child")
}

fn end(reason: EndReason, date: &str) -> pb::PlanEnd {
    pb::PlanEnd {
        reason: reason.into(),
        end_date: date.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn initial_conference_starts_a_plan_with_lead_social_worker_and_first_review() {
    let primary = TestPrimary::start().await;
    let child = child_with_plan(&primary, "C100").await;
    let plan = &child.plans[0];
    assert_eq!(plan.start_date, day(-10));
    assert_eq!(plan.categories, vec![i32::from(Category::Neglect)]);
    assert_eq!(
        plan.lead_social_worker.as_ref().expect("lsw").phone,
        "02079460123"
    );
    assert_eq!(plan.next_review_date, day(60));
    assert!(plan.end.is_none());
    assert_eq!(
        child.revision, 2,
        "creation and plan start are two revisions"
    );
}

#[tokio::test]
async fn first_review_later_than_three_months_is_refused_naming_the_rule() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: "C101".into(),
        details: Some(child_details("Leo", "Smith", &day(-2000))),
    })
    .await
    .expect("child added");
    let err = c
        .start_plan(plan_start("C101", -1, 100, &[Category::Physical]))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("within 3 months"),
        "{}",
        err.message()
    );
    let child = c
        .get_child(pb::GetChildRequest {
            record_id: "C101".into(),
        })
        .await
        .expect("get")
        .into_inner()
        .child
        .expect("child");
    assert!(child.plans.is_empty(), "a refused start changes nothing");
}

#[tokio::test]
async fn review_conference_sets_next_review_within_six_months() {
    let primary = TestPrimary::start().await;
    child_with_plan(&primary, "C102").await;
    let mut c = primary.client(Role::Custodian).await;
    let child = c
        .record_review(pb::RecordReviewRequest {
            record_id: "C102".into(),
            held_on: day(0),
            next_review_date: day(150),
        })
        .await
        .expect("review recorded")
        .into_inner()
        .child
        .expect("child");
    assert_eq!(child.plans[0].next_review_date, day(150));
    assert_eq!(child.plans[0].reviews.len(), 1);
}

#[tokio::test]
async fn review_beyond_six_months_is_refused() {
    let primary = TestPrimary::start().await;
    child_with_plan(&primary, "C103").await;
    let mut c = primary.client(Role::Custodian).await;
    let err = c
        .record_review(pb::RecordReviewRequest {
            record_id: "C103".into(),
            held_on: day(0),
            next_review_date: day(200),
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("at most 6 months apart"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn change_of_category_to_several_is_recorded_as_a_new_revision() {
    let primary = TestPrimary::start().await;
    child_with_plan(&primary, "C104").await;
    let mut c = primary.client(Role::Custodian).await;
    let reply = c
        .change_plan(pb::ChangePlanRequest {
            record_id: "C104".into(),
            categories: vec![Category::Emotional.into(), Category::Neglect.into()],
            ..Default::default()
        })
        .await
        .expect("changed")
        .into_inner();
    assert!(reply.changed);
    let child = reply.child.expect("child");
    assert_eq!(child.plans[0].categories.len(), 2);
    let history = c
        .child_history(pb::GetChildRequest {
            record_id: "C104".into(),
        })
        .await
        .expect("history")
        .into_inner();
    let last = history.revisions.last().expect("revision");
    assert_eq!(last.action, "plan.change");
    assert!(
        last.changed.iter().any(|p| p.contains("categories")),
        "{:?}",
        last.changed
    );
    assert_eq!(last.by, "custodian:Test custodian");
    // The first revision still holds the record as it was: history, not overwrite.
    assert!(
        history.revisions[0]
            .record
            .as_ref()
            .expect("record")
            .plans
            .is_empty()
    );
}

#[tokio::test]
async fn plan_ends_at_review_conference_when_no_longer_at_risk() {
    let primary = TestPrimary::start().await;
    child_with_plan(&primary, "C105").await;
    let mut c = primary.client(Role::Custodian).await;
    let child = c
        .end_plan(pb::EndPlanRequest {
            record_id: "C105".into(),
            end: Some(end(EndReason::NoLongerAtRisk, &day(0))),
        })
        .await
        .expect("ended")
        .into_inner()
        .child
        .expect("child");
    let ended = child.plans[0].end.as_ref().expect("end recorded");
    assert_eq!(ended.end_date, day(0));
    assert_eq!(ended.reason, i32::from(EndReason::NoLongerAtRisk));
}

#[tokio::test]
async fn plan_ends_for_death_or_leaving_the_uk() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    for (id, reason) in [("C106", EndReason::Died), ("C107", EndReason::LeftUk)] {
        child_with_plan(&primary, id).await;
        c.end_plan(pb::EndPlanRequest {
            record_id: id.into(),
            end: Some(end(reason, &day(-1))),
        })
        .await
        .expect("ended");
    }
}

#[tokio::test]
async fn transfer_out_is_refused_without_the_transfer_in_conference_date() {
    let primary = TestPrimary::start().await;
    child_with_plan(&primary, "C108").await;
    let mut c = primary.client(Role::Custodian).await;
    let mut request = end(EndReason::Transferred, &day(0));
    request.receiving_authority = "Lambeth".into();
    let err = c
        .end_plan(pb::EndPlanRequest {
            record_id: "C108".into(),
            end: Some(request.clone()),
        })
        .await
        .expect_err("refused without conference");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("transfer-in conference"),
        "{}",
        err.message()
    );

    // Ending before the receiving authority's conference is refused too.
    request.transfer_in_conference_date = day(0);
    request.end_date = day(-1);
    let err = c
        .end_plan(pb::EndPlanRequest {
            record_id: "C108".into(),
            end: Some(request.clone()),
        })
        .await
        .expect_err("too early");
    assert!(err.message().contains("only after"), "{}", err.message());

    request.end_date = day(0);
    let child = c
        .end_plan(pb::EndPlanRequest {
            record_id: "C108".into(),
            end: Some(request),
        })
        .await
        .expect("transferred");
    let ended = child.into_inner().child.expect("child").plans[0]
        .end
        .clone()
        .expect("end");
    assert_eq!(ended.receiving_authority, "Lambeth");
}

#[tokio::test]
async fn plan_ends_by_letter_within_ten_working_days_of_becoming_looked_after() {
    let primary = TestPrimary::start().await;
    child_with_plan(&primary, "C109").await;
    let mut c = primary.client(Role::Custodian).await;
    // 2026-11-02 is a Monday; 2026-11-17 is eleven working days later.
    let mut request = pb::PlanEnd {
        reason: EndReason::LookedAfter.into(),
        end_date: "2026-11-17".into(),
        looked_after_from: "2026-11-02".into(),
        letter_date: "2026-11-17".into(),
        ..Default::default()
    };
    let err = c
        .end_plan(pb::EndPlanRequest {
            record_id: "C109".into(),
            end: Some(request.clone()),
        })
        .await
        .expect_err("late letter");
    assert!(
        err.message().contains("within 10 working days"),
        "{}",
        err.message()
    );
    request.letter_date = "2026-11-16".into();
    request.end_date = "2026-11-16".into();
    c.end_plan(pb::EndPlanRequest {
        record_id: "C109".into(),
        end: Some(request),
    })
    .await
    .expect("ended by letter");
}

#[tokio::test]
async fn plan_ends_by_letter_only_after_the_agreed_notice_period() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: "C110".into(),
        details: Some(child_details("Noah", "Khan", &day(-4000))),
    })
    .await
    .expect("child");
    let mut start = plan_start("C110", -40, 40, &[Category::Emotional]);
    start.notice_period_days = 28;
    c.start_plan(start).await.expect("plan with notice period");
    let mut request = pb::PlanEnd {
        reason: EndReason::LetterAfterNotice.into(),
        end_date: day(-5),
        letter_date: day(-20),
        ..Default::default()
    };
    let err = c
        .end_plan(pb::EndPlanRequest {
            record_id: "C110".into(),
            end: Some(request.clone()),
        })
        .await
        .expect_err("notice not served");
    assert!(err.message().contains("notice period"), "{}", err.message());
    request.letter_date = day(-35);
    c.end_plan(pb::EndPlanRequest {
        record_id: "C110".into(),
        end: Some(request),
    })
    .await
    .expect("ended after notice");
}

#[tokio::test]
async fn plan_ends_on_reaching_eighteen_not_before() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    // Turns 18 in five days.
    let dob = (cpreg_tests::today() + chrono::Duration::days(5) - chrono::Months::new(18 * 12))
        .to_string();
    c.create_child(pb::CreateChildRequest {
        record_id: "C111".into(),
        details: Some(child_details("Mia", "Brown", &dob)),
    })
    .await
    .expect("child");
    c.start_plan(plan_start("C111", -20, 30, &[Category::Sexual]))
        .await
        .expect("plan");
    let err = c
        .end_plan(pb::EndPlanRequest {
            record_id: "C111".into(),
            end: Some(end(EndReason::Reached18, &day(0))),
        })
        .await
        .expect_err("not yet 18");
    assert!(err.message().contains("18th birthday"), "{}", err.message());
}

#[tokio::test]
async fn unborn_child_is_identified_through_the_mother_and_can_have_a_plan() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    let details = pb::ChildDetails {
        unborn: Some(pb::Unborn {
            expected_delivery_date: day(60),
            mother_given_names: "Grace".into(),
            mother_surname: "Adeyemi".into(),
            mother_date_of_birth: "2001-03-14".into(),
            mother_nhs_number: "4010232137".into(),
        }),
        ..Default::default()
    };
    let child = c
        .create_child(pb::CreateChildRequest {
            record_id: "U1".into(),
            details: Some(details),
        })
        .await
        .expect("unborn added");
    assert_eq!(
        child
            .into_inner()
            .child
            .expect("child")
            .details
            .expect("details")
            .surname,
        "Adeyemi"
    );
    c.start_plan(plan_start("U1", -3, 50, &[Category::Neglect]))
        .await
        .expect("pre-birth plan");
    let list = c
        .list_children(pb::ListChildrenRequest {
            with_active_plan: true,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.children[0].plan_status, "unborn");
}

#[tokio::test]
async fn bad_identifiers_are_refused_with_what_to_send_and_change_nothing() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    let cases = [
        (
            pb::ChildDetails {
                nhs_number: "9434765918".into(),
                ..child_details("A", "B", &day(-100))
            },
            "check digit",
        ),
        (
            pb::ChildDetails {
                home_postcode: "NOT A CODE".into(),
                ..child_details("A", "B", &day(-100))
            },
            "postcode",
        ),
        (child_details("A", "B", &day(3)), "in the future"),
        (child_details("A", "B", "2000-01-01"), "18 or over"),
        (child_details("A", "", &day(-100)), "surname is required"),
        (child_details("A", "B", "01/02/2020"), "YYYY-MM-DD"),
    ];
    for (details, expect) in cases {
        let err = c
            .create_child(pb::CreateChildRequest {
                record_id: "BAD1".into(),
                details: Some(details),
            })
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message().contains(expect),
            "{expect}: {}",
            err.message()
        );
    }
    let list = c
        .list_children(pb::ListChildrenRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.total, 0);
}

#[tokio::test]
async fn a_second_plan_cannot_start_while_one_is_active() {
    let primary = TestPrimary::start().await;
    child_with_plan(&primary, "C112").await;
    let mut c = primary.client(Role::Custodian).await;
    let err = c
        .start_plan(plan_start("C112", 0, 30, &[Category::Physical]))
        .await
        .expect_err("refused");
    assert!(
        err.message().contains("already has an active plan"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn plan_document_after_core_group_is_kept_with_its_digest() {
    let primary = TestPrimary::start().await;
    child_with_plan(&primary, "C113").await;
    let mut c = primary.client(Role::Custodian).await;
    let child = c
        .add_plan_document(pb::AddPlanDocumentRequest {
            record_id: "C113".into(),
            core_group_date: day(-2),
            file_name: "core-group-plan.pdf".into(),
            content: b"%PDF-1.7 plan".to_vec(),
        })
        .await
        .expect("kept")
        .into_inner()
        .child
        .expect("child");
    let doc = &child.plans[0].documents[0];
    assert_eq!(doc.size, 13);
    assert_eq!(doc.sha256.len(), 64);
}

#[tokio::test]
async fn a_new_plan_cannot_start_before_the_previous_one_ended() {
    let primary = TestPrimary::start().await;
    child_with_plan(&primary, "C114").await;
    let mut c = primary.client(Role::Custodian).await;
    c.end_plan(pb::EndPlanRequest {
        record_id: "C114".into(),
        end: Some(end(EndReason::NoLongerAtRisk, &day(-2))),
    })
    .await
    .expect("ended");
    let err = c
        .start_plan(plan_start("C114", -5, 30, &[Category::Physical]))
        .await
        .expect_err("overlaps");
    assert!(
        err.message()
            .contains("before the child's previous plan ended"),
        "{}",
        err.message()
    );
    c.start_plan(plan_start("C114", -1, 30, &[Category::Physical]))
        .await
        .expect("second plan");
}

#[tokio::test]
async fn the_same_review_sent_twice_is_recorded_once() {
    let primary = TestPrimary::start().await;
    child_with_plan(&primary, "C115").await;
    let mut c = primary.client(Role::Custodian).await;
    let review = pb::RecordReviewRequest {
        record_id: "C115".into(),
        held_on: day(0),
        next_review_date: day(150),
    };
    assert!(
        c.record_review(review.clone())
            .await
            .expect("first")
            .into_inner()
            .changed
    );
    let again = c.record_review(review).await.expect("retry").into_inner();
    assert!(!again.changed);
    assert_eq!(again.child.expect("child").plans[0].reviews.len(), 1);
}

#[tokio::test]
async fn a_young_person_who_turned_18_with_a_plan_open_can_still_have_details_corrected() {
    let primary = TestPrimary::start().await;
    let mut c = primary.client(Role::Custodian).await;
    // Turns 18 tomorrow: added today, corrected after the birthday.
    let dob = (cpreg_tests::today() + chrono::Duration::days(1) - chrono::Months::new(18 * 12))
        .to_string();
    c.create_child(pb::CreateChildRequest {
        record_id: "C116".into(),
        details: Some(child_details("Kai", "Reid", &dob)),
    })
    .await
    .expect("child");
    primary
        .clock
        .set(cpreg_tests::now() + chrono::Duration::days(3));
    let mut details = child_details("Kai", "Reid", &dob);
    details.home_address = "2 New Street".into();
    c.update_child(pb::UpdateChildRequest {
        record_id: "C116".into(),
        details: Some(details),
        expected_revision: 0,
    })
    .await
    .expect("corrected after 18");
}
