//! Lookups at a site replica over mutual TLS, as A&E and the EDT make them at night: a
//! registered terminal asks directly; a duty worker takes a phone enquiry and releases the
//! answer only after calling the organisation's verified number back. Every enquiry, answered
//! or refused, is on record before the answer leaves.

use cpreg_proto::pb::{self, Category};
use cpreg_proto::role::Role;
use cpreg_tests::replica::{TestReplica, terminal_profile};
use cpreg_tests::site::{
    DEMO_EDT, GP_OUT_OF_HOURS, ST_ELSEWHERE_AE, ae_terminal, child_query, lookup_site, lookups,
    registrar_lookup,
};
use cpreg_tests::{AUTHORITY, TestPrimary, child_details, plan_start};
use tonic::Code;

/// A primary with one child on a plan and the directory, and a replica at `site` serving lookups.
async fn site(site: &str) -> (TestPrimary, TestReplica) {
    site_limited(site, 60).await
}

async fn site_limited(site: &str, rate_limit_per_hour: u32) -> (TestPrimary, TestReplica) {
    lookup_site(
        site,
        &[ST_ELSEWHERE_AE, DEMO_EDT, GP_OUT_OF_HOURS],
        |_, config| lookups(config).rate_limit_per_hour = rate_limit_per_hour,
    )
    .await
}

/// The EDT duty desk's profile at the replica.
fn edt_duty(primary: &TestPrimary, replica: &TestReplica) -> cpreg::profile::Profile {
    let addr = replica.replica.lookup_addr().expect("lookups served");
    terminal_profile(&primary.pki, "EDT duty desk", "edt", "demo-edt", addr)
}

/// One lookup from `terminal`, as the A&E registrar makes it.
async fn ask(
    terminal: &cpreg::profile::Profile,
    child: pb::ChildQuery,
) -> Result<pb::LookupAnswer, tonic::Status> {
    let mut client = terminal.lookup().await.expect("connect");
    client
        .lookup(registrar_lookup(child))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ae_terminal_finds_a_child_with_a_plan_and_the_enquiry_is_recorded_first() {
    let (primary, replica) = site("ae").await;
    let terminal = ae_terminal(&primary, &replica);
    let answer = ask(&terminal, child_query("Amelia", "Evans", "2019-04-23"))
        .await
        .expect("answered");
    assert_eq!(
        answer.outcome,
        i32::from(pb::LookupOutcome::Match),
        "{answer:?}"
    );
    let found = &answer.candidates[0];
    assert_eq!(
        (found.record_id.as_str(), found.lead_social_worker.as_str()),
        ("C1", "Sam Okafor")
    );
    assert_eq!(found.edt_phone, "020 7946 0999");
    assert!(answer.advice.contains("Sam Okafor"), "{}", answer.advice);
    assert!(!answer.stale);
    let recorded = replica
        .replica
        .store()
        .enquiry(&answer.enquiry_reference)
        .expect("read")
        .expect("on record");
    assert!(matches!(
        recorded.state,
        cpreg_replica::store::EnquiryState::Answered { .. }
    ));
    assert_eq!(
        replica.replica.store().enquiries_recorded().expect("count"),
        1
    );
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_record_says_what_was_searched_and_never_that_the_child_is_safe() {
    let (primary, replica) = site("ae").await;
    let terminal = ae_terminal(&primary, &replica);
    let answer = ask(&terminal, child_query("Oscar", "Whitfield", "2018-02-02"))
        .await
        .expect("answered");
    assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::NoRecord));
    assert!(
        answer.advice.contains("Oscar Whitfield, born 2018-02-02"),
        "{}",
        answer.advice
    );
    assert!(
        answer.advice.contains("does not mean the child is safe"),
        "{}",
        answer.advice
    );
    assert!(!answer.as_of.is_empty());
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_with_too_little_detail_is_refused_naming_what_is_missing_and_recorded() {
    let (primary, replica) = site("ae").await;
    let terminal = ae_terminal(&primary, &replica);
    let err = ask(&terminal, child_query("Amelia", "Evans", ""))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("missing the date of birth"),
        "{}",
        err.message()
    );
    assert_eq!(
        replica.replica.store().enquiries_recorded().expect("count"),
        1,
        "the refusal is on record too"
    );
    replica.replica.stop().await;
}

/// Names are compared with one another for sweeps, kept by the limits, recorded and reported:
/// a name of thousands of letters must cost no more than a real one, anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_with_names_thousands_of_letters_long_are_refused_cut_short_on_record_and_the_site_keeps_answering()
 {
    let (primary, replica) = site("ae").await;
    let terminal = ae_terminal(&primary, &replica);
    for i in 0..12 {
        let mut client = terminal.lookup().await.expect("connect");
        let mut long = registrar_lookup(child_query(&"É".repeat(15_000), "Evans", "2019-04-23"));
        long.operator_name = format!("{i}{}", "x".repeat(20_000));
        let err = client.lookup(long).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert!(
            err.message().contains("longer than 100 characters"),
            "{}",
            err.message()
        );
    }
    let answer = ask(&terminal, child_query("Amelia", "Evans", "2019-04-23"))
        .await
        .expect("answered");
    assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::Match));
    let store = replica.replica.store();
    let recorded = store.outbox(100).expect("outbox");
    assert_eq!(recorded.len(), 13, "every refusal is on record");
    for (_, enquiry) in &recorded {
        let size = serde_json::to_vec(enquiry).expect("json").len();
        assert!(size < 8 * 1024, "an enquiry of {size} bytes on record");
    }
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_of_an_organisation_not_in_the_directory_is_refused() {
    let (primary, replica) = site("ae").await;
    let addr = replica.replica.lookup_addr().expect("addr");
    let unknown = terminal_profile(&primary.pki, "Kiosk", "ae", "unlisted-clinic", addr);
    let err = ask(&unknown, child_query("Amelia", "Evans", "2019-04-23"))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("not in the directory"),
        "{}",
        err.message()
    );
    // A terminal of another site is refused as well.
    let elsewhere = terminal_profile(&primary.pki, "EDT desk", "edt", "demo-edt", addr);
    let err = ask(&elsewhere, child_query("Amelia", "Evans", "2019-04-23"))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::PermissionDenied);
    replica.replica.stop().await;
}

/// What a lookup reads of the copy held (the children, the directory, the authority's numbers)
/// is kept between lookups; each new version must show in the very next lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_started_and_an_organisation_delisted_show_in_the_next_lookup() {
    let (primary, replica) = site("ae").await;
    let terminal = ae_terminal(&primary, &replica);
    let noah = || child_query("Noah", "Evans", "2021-02-14");
    let before = ask(&terminal, noah()).await.expect("answered");
    assert_eq!(before.outcome, i32::from(pb::LookupOutcome::NoRecord));

    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: "C2".into(),
        details: Some(child_details("Noah", "Evans", "2021-02-14")),
    })
    .await
    .expect("child");
    c.start_plan(plan_start("C2", -1, 60, &[Category::Emotional]))
        .await
        .expect("plan");
    replica.wait_for(AUTHORITY, primary.head().await.0).await;
    let after = ask(&terminal, noah()).await.expect("answered");
    assert_eq!(
        after.outcome,
        i32::from(pb::LookupOutcome::Match),
        "{after:?}"
    );
    assert_eq!(after.candidates[0].record_id, "C2");

    c.remove_organisation(pb::RemoveOrganisationRequest {
        id: "st-elsewhere-ae".into(),
    })
    .await
    .expect("delisted");
    replica.wait_for(AUTHORITY, primary.head().await.0).await;
    let err = ask(&terminal, noah()).await.expect_err("refused");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(
        err.message().contains("not in the directory"),
        "{}",
        err.message()
    );
    replica.replica.stop().await;
}

fn phone_enquiry() -> pb::OpenEnquiryRequest {
    pb::OpenEnquiryRequest {
        child: Some(child_query("Amelia", "Evans", "2019-04-23")),
        enquirer_name: "Dr Lee".into(),
        enquirer_role: "GP".into(),
        organisation_id: "gp-ooh".into(),
        number_given: "07700 900123".into(),
        reason: "Child seen with burns".into(),
        duty_worker: "Sam (EDT)".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_call_back_releases_the_answer_to_the_directory_number_only() {
    let (primary, replica) = site("edt").await;
    let duty = edt_duty(&primary, &replica);
    let mut client = duty.lookup().await.expect("connect");
    let ticket = client
        .open_enquiry(phone_enquiry())
        .await
        .expect("opened")
        .into_inner();
    assert_eq!(
        ticket.callback_number, "01632960400",
        "the directory's number, not the caller's"
    );
    let answer = client
        .record_callback(pb::RecordCallbackRequest {
            enquiry_reference: ticket.enquiry_reference.clone(),
            outcome: pb::CallbackOutcome::Confirmed.into(),
            note: String::new(),
        })
        .await
        .expect("released")
        .into_inner();
    assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::Match));
    assert_eq!(answer.enquiry_reference, ticket.enquiry_reference);
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_or_expired_call_back_releases_nothing_and_is_recorded() {
    let (primary, replica) = site("edt").await;
    let duty = edt_duty(&primary, &replica);
    let mut client = duty.lookup().await.expect("connect");

    let ticket = client
        .open_enquiry(phone_enquiry())
        .await
        .expect("opened")
        .into_inner();
    let err = client
        .record_callback(pb::RecordCallbackRequest {
            enquiry_reference: ticket.enquiry_reference.clone(),
            outcome: pb::CallbackOutcome::NotConfirmed.into(),
            note: "switchboard had no such doctor".into(),
        })
        .await
        .expect_err("nothing released");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let recorded = replica
        .replica
        .store()
        .enquiry(&ticket.enquiry_reference)
        .expect("read")
        .expect("on record");
    assert!(matches!(
        recorded.state,
        cpreg_replica::store::EnquiryState::CallbackFailed { .. }
    ));

    let ticket = client
        .open_enquiry(phone_enquiry())
        .await
        .expect("opened")
        .into_inner();
    replica.clock.advance(chrono::Duration::minutes(31));
    let err = client
        .record_callback(pb::RecordCallbackRequest {
            enquiry_reference: ticket.enquiry_reference.clone(),
            outcome: pb::CallbackOutcome::Confirmed.into(),
            note: String::new(),
        })
        .await
        .expect_err("expired");
    assert!(err.message().contains("expired"), "{}", err.message());

    let mut wrong = phone_enquiry();
    wrong.organisation_id = "no-such-org".into();
    let err = client
        .open_enquiry(wrong)
        .await
        .expect_err("unknown organisation");
    assert_eq!(err.code(), Code::NotFound);
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_asked_about_again_shows_the_earlier_enquiries_as_a_warning() {
    let (primary, replica) = site("ae").await;
    let terminal = ae_terminal(&primary, &replica);
    let mut client = terminal.lookup().await.expect("connect");
    client
        .lookup(registrar_lookup(child_query(
            "Amelia",
            "Evans",
            "2019-04-23",
        )))
        .await
        .expect("first");
    let again = client
        .lookup(registrar_lookup(child_query(
            "Amelia",
            "Evans",
            "2019-04-23",
        )))
        .await
        .expect("second")
        .into_inner();
    assert_eq!(again.candidates[0].recent_enquiries, 1);
    assert!(
        again.advice.contains("repeated attendance"),
        "{}",
        again.advice
    );
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_lookups_from_one_operator_are_throttled_and_every_refusal_recorded() {
    let (primary, replica) = site_limited("ae", 3).await;
    let terminal = ae_terminal(&primary, &replica);
    let mut client = terminal.lookup().await.expect("connect");
    for surname in ["Evans", "Evanson", "Evanston"] {
        client
            .lookup(registrar_lookup(child_query(
                "Amelia",
                surname,
                "2019-04-23",
            )))
            .await
            .expect("within the limit");
    }
    let err = client
        .lookup(registrar_lookup(child_query(
            "Amelia",
            "Evens",
            "2019-04-23",
        )))
        .await
        .expect_err("throttled");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("3 lookups an hour"),
        "{}",
        err.message()
    );
    // Partial names and short wildcards never reach the search at all.
    let err = client
        .lookup(registrar_lookup(child_query("Am*", "Evans", "2019-04-23")))
        .await
        .expect_err("wildcard");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        replica.replica.store().enquiries_recorded().expect("count"),
        5,
        "every refusal is on record"
    );
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enquiry_made_at_the_replica_reaches_the_primary_once_and_leaves_the_outbox() {
    let (primary, replica) = site("edt").await;
    let duty = edt_duty(&primary, &replica);
    let mut client = duty.lookup().await.expect("connect");
    let ticket = client
        .open_enquiry(phone_enquiry())
        .await
        .expect("opened")
        .into_inner();
    client
        .record_callback(pb::RecordCallbackRequest {
            enquiry_reference: ticket.enquiry_reference.clone(),
            outcome: pb::CallbackOutcome::Confirmed.into(),
            note: String::new(),
        })
        .await
        .expect("released");
    let mut received = Vec::new();
    for _ in 0..200 {
        received = primary.enquiries().await;
        if received.iter().any(|e| e.state == "answered")
            && replica.replica.store().outbox_backlog().expect("backlog") == 0
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        received.len(),
        1,
        "one enquiry, however often its states were sent: {received:?}"
    );
    let enquiry = &received[0];
    assert_eq!(
        (
            enquiry.reference.as_str(),
            enquiry.site.as_str(),
            enquiry.state.as_str()
        ),
        (ticket.enquiry_reference.as_str(), "edt", "answered")
    );
    assert_eq!(enquiry.children, [format!("{AUTHORITY}/C1")]);
    assert!(
        enquiry.record.contains("Dr Lee"),
        "who asked travels with it"
    );
    assert_eq!(
        replica.replica.store().outbox_backlog().expect("backlog"),
        0
    );
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_fishing_for_children_raises_an_alert_that_reaches_the_primary() {
    let (primary, replica) = site("ae").await;
    let terminal = ae_terminal(&primary, &replica);
    let mut client = terminal.lookup().await.expect("connect");
    for surname in ["Adams", "Baker", "Clark", "Davies", "Ellis"] {
        let answer = client
            .lookup(registrar_lookup(child_query("Jack", surname, "2016-01-01")))
            .await
            .expect("answered")
            .into_inner();
        assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::NoRecord));
    }
    let mut alerted = Vec::new();
    for _ in 0..200 {
        alerted = primary
            .enquiries()
            .await
            .into_iter()
            .filter(|e| !e.alert.is_empty())
            .collect();
        if !alerted.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(alerted.len(), 1, "the fifth miss in ten minutes raises it");
    assert!(
        alerted[0].alert.contains("possible enumeration"),
        "{}",
        alerted[0].alert
    );
    replica.replica.stop().await;
}
