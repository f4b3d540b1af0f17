//! Someone at a site trying to list the children on the register through its lookups, over
//! mutual TLS as a terminal would: typing new operator names at one terminal, walking dates of
//! birth for one name, or names for one date. Each is throttled or refused with what to do
//! instead, every refusal is on record, and the custodian hears of it at the primary. A
//! clinician correcting a typo or a swapped date is still answered.

use std::time::Duration;

use cpreg_proto::pb::{self, Category};
use cpreg_proto::role::Role;
use cpreg_replica::config::LookupConfig;
use cpreg_tests::replica::{TestReplica, terminal_profile};
use cpreg_tests::site::{ST_ELSEWHERE_AE, amelia_on_a_plan, child_query, lookup_replica, lookups};
use cpreg_tests::{TestPrimary, child_details, plan_start};
use tonic::Code;

/// A primary with Amelia Evans (born 2019-04-23) and Leo Walsh (born 2020-03-05) on plans and
/// the A&E department in the directory, and a replica at A&E serving lookups with its limits
/// set by `limits`.
async fn ae_site(limits: impl FnOnce(&mut LookupConfig)) -> (TestPrimary, TestReplica) {
    let primary = TestPrimary::start().await;
    amelia_on_a_plan(&primary, &[ST_ELSEWHERE_AE]).await;
    let mut leo = child_details("Leo", "Walsh", "2020-03-05");
    leo.nhs_number =
        cpreg_proto::ident::nhs_number_with_check_digit(401_023_213).expect("a valid NHS number");
    leo.home_address = "3 Birch Close, Croydon".into();
    leo.home_postcode = "CR0 2BB".into();
    let mut c = primary.client(Role::Custodian).await;
    c.create_child(pb::CreateChildRequest {
        record_id: "C2".into(),
        details: Some(leo),
    })
    .await
    .expect("child");
    c.start_plan(plan_start("C2", -10, 60, &[Category::Neglect]))
        .await
        .expect("plan");
    let replica = lookup_replica(&primary, "ae", |_, config| limits(lookups(config))).await;
    (primary, replica)
}

/// An A&E workstation's terminal profile at the replica.
fn workstation(
    primary: &TestPrimary,
    replica: &TestReplica,
    name: &str,
) -> cpreg::profile::Profile {
    let addr = replica.replica.lookup_addr().expect("lookups served");
    terminal_profile(&primary.pki, name, "ae", "st-elsewhere-ae", addr)
}

/// One lookup from `terminal` by `operator`.
async fn ask(
    terminal: &cpreg::profile::Profile,
    operator: &str,
    query: pb::ChildQuery,
) -> Result<pb::LookupAnswer, tonic::Status> {
    let mut client = terminal.lookup().await.expect("connect");
    client
        .lookup(pb::LookupRequest {
            child: Some(query),
            operator_name: operator.into(),
            operator_role: "ED registrar".into(),
            reason: "Unexplained bruising on a toddler".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn recorded(replica: &TestReplica) -> u64 {
    replica.replica.store().enquiries_recorded().expect("count")
}

/// Waits until the primary holds `count` enquiries from the replica; returns them.
async fn all_at_primary(primary: &TestPrimary, count: usize) -> Vec<pb::ReceivedEnquiry> {
    let mut received = Vec::new();
    for _ in 0..200 {
        received = primary.enquiries().await;
        if received.len() >= count {
            return received;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the primary holds {} enquiries, not {count}",
        received.len()
    );
}

/// The alerts among them that say `words`.
fn alerts_saying(received: &[pb::ReceivedEnquiry], words: &str) -> Vec<String> {
    received
        .iter()
        .filter(|e| e.alert.contains(words))
        .map(|e| e.alert.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_terminal_rotating_operator_names_is_throttled_and_reported() {
    let (primary, replica) = ae_site(|lookups| {
        lookups.rate_limit_per_hour = 3;
        lookups.terminal_rate_limit_per_hour = 5;
    })
    .await;
    let terminal = workstation(&primary, &replica, "A&E workstation 1");
    // A new name for every lookup, each about a different child: no operator comes near their
    // own limit of three.
    let names = ["Dr Adams", "Dr Baker", "Dr Clark", "Dr Davies", "Dr Ellis"];
    let children = [
        child_query("Oscar", "Whitfield", "2018-02-02"),
        child_query("Priya", "Shah", "2021-07-14"),
        child_query("Tom", "Nowak", "2015-10-30"),
        child_query("Grace", "Adeyemi", "2017-01-09"),
        child_query("Ruby", "Clarke", "2020-12-01"),
    ];
    for (name, query) in names.into_iter().zip(children) {
        ask(&terminal, name, query)
            .await
            .expect("within the terminal's limit");
    }
    let err = ask(
        &terminal,
        "Dr Foster",
        child_query("Amelia", "Evans", "2019-04-23"),
    )
    .await
    .expect_err("a sixth name is still the same terminal");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message()
            .contains("5 lookups an hour is the limit for this terminal")
            && err.message().contains("Emergency Duty Team")
            && err.message().contains("recorded)"),
        "{}",
        err.message()
    );
    // Another workstation at the site is not held back by this one.
    let other = workstation(&primary, &replica, "A&E workstation 2");
    let answer = ask(
        &other,
        "Dr Foster",
        child_query("Amelia", "Evans", "2019-04-23"),
    )
    .await
    .expect("another terminal");
    assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::Match));
    assert_eq!(recorded(&replica), 7, "the refusal is on record too");

    let received = all_at_primary(&primary, 7).await;
    let alerts = alerts_saying(
        &received,
        "5 operator names typed at terminal A&E workstation 1",
    );
    assert_eq!(alerts.len(), 1, "the fifth name raises it: {received:?}");
    assert!(
        alerts[0].contains("Dr Adams") && alerts[0].contains("Dr Ellis"),
        "{}",
        alerts[0]
    );
    let refused = received.iter().filter(|e| e.state == "refused").count();
    assert_eq!(refused, 1);
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fruitless_lookups_spread_over_operator_names_at_one_terminal_raise_an_alert() {
    let (primary, replica) = ae_site(|_| {}).await;
    let terminal = workstation(&primary, &replica, "A&E workstation 1");
    // Four names, two guesses each: none reaches the five misses of one operator's alert.
    let guesses = [
        ("Dr Adams", child_query("Jack", "Adams", "2016-01-01")),
        ("Dr Baker", child_query("Olivia", "Baker", "2017-02-02")),
        ("Dr Clark", child_query("Noah", "Clark", "2018-03-03")),
        ("Dr Davies", child_query("Isla", "Davies", "2014-04-04")),
        ("Dr Adams", child_query("Harry", "Ellis", "2015-05-05")),
        ("Dr Baker", child_query("Ava", "Fisher", "2013-06-06")),
        ("Dr Clark", child_query("George", "Green", "2012-07-07")),
        ("Dr Davies", child_query("Mia", "Hughes", "2011-08-08")),
    ];
    for (name, query) in guesses {
        let answer = ask(&terminal, name, query).await.expect("answered");
        assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::NoRecord));
    }
    let received = all_at_primary(&primary, 8).await;
    let alerts = alerts_saying(&received, "8 lookups at terminal A&E workstation 1");
    assert_eq!(alerts.len(), 1, "the eighth miss raises it: {received:?}");
    assert!(
        alerts[0].contains("under 4 operator names"),
        "{}",
        alerts[0]
    );
    assert!(
        alerts_saying(&received, "lookups by").is_empty(),
        "no one operator's run: {received:?}"
    );
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walking_dates_of_birth_for_one_name_is_refused_and_reported() {
    let (primary, replica) = ae_site(|_| {}).await;
    let terminal = workstation(&primary, &replica, "A&E workstation 1");
    // A week at a time, under two names: each answer says whether an Amelia Evans was born
    // within a few days of it.
    let walk = [
        "2019-03-05",
        "2019-03-12",
        "2019-03-19",
        "2019-03-26",
        "2019-04-02",
    ];
    for (i, dob) in walk.into_iter().enumerate() {
        let name = if i % 2 == 0 { "Dr Adams" } else { "Dr Baker" };
        ask(&terminal, name, child_query("Amelia", "Evans", dob))
            .await
            .expect("five dates are answered");
    }
    let err = ask(
        &terminal,
        "Dr Adams",
        child_query("Amelia", "Evans", "2019-04-09"),
    )
    .await
    .expect_err("the sixth date of birth is refused");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("differ only in the date of birth")
            && err.message().contains("call the Emergency Duty Team")
            && err.message().contains("recorded)"),
        "{}",
        err.message()
    );
    // The walk goes no further, under another name or with the surname misspelt: the date that
    // would have found Amelia is refused too.
    let err = ask(
        &terminal,
        "Dr Clark",
        child_query("Amelia", "Evens", "2019-04-23"),
    )
    .await
    .expect_err("held");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("continues a run"),
        "{}",
        err.message()
    );
    // Other children are still answered from the terminal.
    let answer = ask(
        &terminal,
        "Dr Clark",
        child_query("Leo", "Walsh", "2020-03-05"),
    )
    .await
    .expect("another child");
    assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::Match));
    assert_eq!(recorded(&replica), 8, "every refusal is on record");

    let received = all_at_primary(&primary, 8).await;
    let alerts = alerts_saying(&received, "differ only in the date of birth");
    assert_eq!(alerts.len(), 1, "one alert for the walk: {received:?}");
    assert!(
        alerts[0].starts_with("possible enumeration")
            && alerts[0].contains("terminal A&E workstation 1")
            && alerts[0].contains("Dr Adams, Dr Baker"),
        "{}",
        alerts[0]
    );

    // An hour on, the hold is over.
    replica.clock.advance(chrono::Duration::minutes(61));
    let answer = ask(
        &terminal,
        "Dr Clark",
        child_query("Amelia", "Evans", "2019-04-23"),
    )
    .await
    .expect("the hold is lifted");
    assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::Match));
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_surname_after_surname_for_one_date_of_birth_is_refused_and_reported() {
    let (primary, replica) = ae_site(|_| {}).await;
    let terminal = workstation(&primary, &replica, "A&E workstation 1");
    for surname in ["Ada*", "Bak*", "Cla*", "Dav*", "Ell*"] {
        let answer = ask(
            &terminal,
            "Dr Adams",
            child_query("Amelia", surname, "2019-04-23"),
        )
        .await
        .expect("five answered");
        assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::NoRecord));
    }
    // The sixth guess would have found Amelia Evans.
    let err = ask(
        &terminal,
        "Dr Adams",
        child_query("Amelia", "Eva*", "2019-04-23"),
    )
    .await
    .expect_err("refused");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("differ only in the child's name"),
        "{}",
        err.message()
    );
    assert_eq!(recorded(&replica), 6);
    let received = all_at_primary(&primary, 6).await;
    let refused: Vec<_> = received.iter().filter(|e| e.state == "refused").collect();
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0].alert.contains("differ only in the child's name"),
        "the refusal carries the alert: {:?}",
        refused[0]
    );
    replica.replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_correcting_a_typo_and_a_swapped_date_is_still_answered() {
    let (primary, replica) = ae_site(|_| {}).await;
    let terminal = workstation(&primary, &replica, "A&E workstation 1");
    // Leo Walsh was born on 5 March 2020; the registrar has it from a parent in a hurry.
    let tries = [
        child_query("Leo", "Wlash", "2020-05-03"),
        child_query("Leo", "Walsh", "2020-05-03"),
        child_query("Leo", "Walsh", "2020-03-05"),
        child_query("Leon", "Walsh", "2020-03-05"),
        child_query("Leo", "Walsh", "2020-03-06"),
        child_query("Leo", "Walsh", "2019-03-05"),
        child_query("Leo", "Walsh", "2020-03-05"),
        child_query("Leo", "Walsh", "2020-03-05"),
    ];
    let count = tries.len();
    for (i, query) in tries.into_iter().enumerate() {
        let answer = ask(&terminal, "Dr Asha Patel", query)
            .await
            .unwrap_or_else(|e| panic!("try {i} refused: {e}"));
        assert!(
            answer.candidates.iter().any(|c| c.record_id == "C2"),
            "try {i} finds Leo: {answer:?}"
        );
    }
    // Shift change at the workstation: the next registrar asks about another child.
    ask(
        &terminal,
        "Dr Ben Carter",
        child_query("Amelia", "Evans", "2019-04-23"),
    )
    .await
    .expect("answered");
    let received = all_at_primary(&primary, count + 1).await;
    let alerted: Vec<_> = received.iter().filter(|e| !e.alert.is_empty()).collect();
    assert!(alerted.is_empty(), "no alert for genuine use: {alerted:?}");
    replica.replica.stop().await;
}
