//! What follows an enquiry, end to end with real parts: a lookup at a site replica is reported
//! to the primary, which tells the child's lead social worker through a real HTTPS webhook
//! receiver and a real SMTP server; records a Contact for a child without a plan and raises one
//! alert at the second separate enquiry; tells the lead social worker of a child with a plan at
//! the same home; and raises an alert for the custodian when a lookup is refused.

use std::net::SocketAddr;
use std::time::Duration;

use cpreg_primary::config::{Notifications, SmtpConfig, SmtpTls, WebhookConfig};
use cpreg_primary::store::AlertFilter;
use cpreg_proto::pb::{self, Category};
use cpreg_proto::role::Role;
use cpreg_tests::receivers::{SmtpReceiver, WebhookReceiver, WebhookRequest};
use cpreg_tests::replica::{
    TestReplica, authority_entry, list_organisations, lookup_config, replica_config,
    terminal_profile,
};
use cpreg_tests::{
    AUTHORITY, LEAD_SOCIAL_WORKER_EMAIL, TestPki, TestPrimary, child_details, now, open_register,
    plan_start,
};

const WAIT: Duration = Duration::from_secs(20);
const DUTY_INBOX: &str = "duty@test-borough.example";
/// The lead social worker of Amelia's brother, who lives with her.
const BROTHERS_WORKER: &str = "lee.grant@social-care.example";

/// A primary that notifies a webhook and an SMTP server, with Amelia and her brother Noah on
/// plans at one home, the directory's A&E and EDT, and a replica serving lookups at each site.
struct World {
    primary: TestPrimary,
    webhook: WebhookReceiver,
    mail: SmtpReceiver,
    ae: TestReplica,
    edt: TestReplica,
}

impl World {
    async fn start() -> World {
        let pki = TestPki::new();
        let (url, webhook) = WebhookReceiver::start(Some(&pki.ca)).await;
        let (smtp_port, mail) = SmtpReceiver::start().await;
        let notifications = Notifications {
            duty_inbox: DUTY_INBOX.into(),
            retry_base_seconds: 0.2,
            retry_cap_seconds: 1.0,
            webhook: Some(WebhookConfig {
                url,
                ca_file: Some(pki.path().join("pki").join("ca.pem")),
                allow_http: false,
                timeout_seconds: 5,
            }),
            smtp: Some(SmtpConfig {
                host: "127.0.0.1".into(),
                port: Some(smtp_port),
                from: "Test Borough register <cpreg@test-borough.example>".into(),
                tls: SmtpTls::None,
                ca_file: None,
                credentials_file: None,
                timeout_seconds: 5,
            }),
        };
        let primary = TestPrimary::start_configured(
            pki,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            now(),
            move |config| config.notifications = Some(notifications),
        )
        .await;
        let mut c = primary.client(Role::Custodian).await;
        c.create_child(pb::CreateChildRequest {
            record_id: "C1".into(),
            details: Some(child_details("Amelia", "Evans", "2019-04-23")),
        })
        .await
        .expect("Amelia");
        c.start_plan(plan_start("C1", -10, 60, &[Category::Neglect]))
            .await
            .expect("Amelia's plan");
        c.create_child(pb::CreateChildRequest {
            record_id: "C2".into(),
            details: Some(pb::ChildDetails {
                nhs_number: "9434765803".into(),
                gender: pb::Gender::Male.into(),
                ..child_details("Noah", "Evans", "2016-02-11")
            }),
        })
        .await
        .expect("Noah");
        let mut noahs = plan_start("C2", -20, 50, &[Category::Emotional]);
        if let Some(lsw) = noahs.lead_social_worker.as_mut() {
            lsw.name = "Lee Grant".into();
            lsw.email = BROTHERS_WORKER.into();
        }
        c.start_plan(noahs).await.expect("Noah's plan");
        list_organisations(
            &mut c,
            &[
                ("st-elsewhere-ae", "St Elsewhere ED", "01632 960 100", "ae"),
                (
                    "demo-edt",
                    "Demo Emergency Duty Team",
                    "01632 960 200",
                    "edt",
                ),
            ],
        )
        .await;
        let head = primary.head().await.0;
        let mut replicas = Vec::new();
        for site in ["ae", "edt"] {
            let mut config = replica_config(
                &primary.pki,
                site,
                vec![authority_entry(&primary.pki, site, &primary.url)],
            );
            config.lookups = Some(lookup_config(&primary.pki, site));
            let replica = TestReplica::start_with(config).await;
            replica.wait_for(AUTHORITY, head).await;
            replicas.push(replica);
        }
        let edt = replicas.pop().expect("edt");
        let ae = replicas.pop().expect("ae");
        World {
            primary,
            webhook,
            mail,
            ae,
            edt,
        }
    }

    /// A lookup from the terminal of `organisation` at `replica`'s site.
    async fn ask(
        &self,
        replica: &TestReplica,
        organisation: &str,
        child: pb::ChildQuery,
    ) -> Result<pb::LookupAnswer, tonic::Status> {
        let site = replica.replica.config().site.clone();
        let addr = replica.replica.lookup_addr().expect("lookups served");
        let terminal = terminal_profile(
            &self.primary.pki,
            &format!("{site} terminal"),
            &site,
            organisation,
            addr,
        );
        let mut client = terminal.lookup().await.expect("connect");
        client
            .lookup(pb::LookupRequest {
                child: Some(child),
                operator_name: "Dr Asha Patel".into(),
                operator_role: "ED registrar".into(),
                reason: "Unexplained bruising on a toddler".into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Webhook notifications of `kind` received so far.
    fn received(&self, kind: &str) -> Vec<WebhookRequest> {
        self.webhook
            .requests()
            .into_iter()
            .filter(|r| r.status / 100 == 2 && r.json()["kind"] == kind)
            .collect()
    }

    /// Waits until `n` webhook notifications of `kind` have arrived.
    async fn wait_for(&self, kind: &str, n: usize) -> Vec<WebhookRequest> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self.received(kind);
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} {kind} notifications expected, {} arrived: {:?}",
                got.len(),
                self.webhook
                    .requests()
                    .iter()
                    .map(|r| r.json()["kind"].clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until an e-mail to `address` saying `words` has arrived, and returns its text
    /// (soft line breaks undone).
    async fn mail_to(&self, address: &str, words: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(text) = self
                .mail
                .messages()
                .into_iter()
                .filter(|m| m.to.iter().any(|t| t.contains(address)))
                .map(|m| m.body().replace("=\r\n", "").replace("=\n", ""))
                .find(|text| text.contains(words))
            {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no e-mail to {address} saying {words:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops everything and opens the primary's register (kept with its folder).
    async fn stop(self) -> (cpreg_primary::store::Store, TestPki) {
        self.ae.replica.stop().await;
        self.edt.replica.stop().await;
        let pki = self.primary.stop().await;
        (open_register(&pki), pki)
    }
}

fn query(given: &str, surname: &str, dob: &str) -> pb::ChildQuery {
    pb::ChildQuery {
        given_names: given.into(),
        surname: surname.into(),
        date_of_birth: dob.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_at_a_and_e_reaches_the_lead_social_worker_by_webhook_and_by_email() {
    let world = World::start().await;
    let answer = world
        .ask(
            &world.ae,
            "st-elsewhere-ae",
            query("Amelia", "Evans", "2019-04-23"),
        )
        .await
        .expect("answered");
    assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::Match));

    let told = world.wait_for("enquiry.lead_social_worker", 1).await;
    let note = told[0].json();
    assert_eq!(note["payload"]["reference"], answer.enquiry_reference);
    assert_eq!(note["payload"]["record_id"], "C1");
    assert_eq!(note["payload"]["site"], "ae");
    assert_eq!(note["to"][0], LEAD_SOCIAL_WORKER_EMAIL);
    assert_eq!(
        told[0].header("idempotency-key"),
        note["id"].as_str(),
        "the webhook gets the notification id as its idempotency key"
    );

    let body = world
        .mail_to(LEAD_SOCIAL_WORKER_EMAIL, &answer.enquiry_reference)
        .await;
    for words in [
        "Dr Asha Patel (ED registrar)",
        "st-elsewhere-ae",
        "Site: ae",
        "Unexplained bruising on a toddler",
        "Outcome: match",
        answer.enquiry_reference.as_str(),
    ] {
        assert!(body.contains(words), "the e-mail says {words:?}:\n{body}");
    }
    let (store, _pki) = world.stop().await;
    assert_eq!(store.contacts(None, 0).expect("contacts").len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enquiry_about_amelia_tells_the_social_worker_of_her_brother_at_the_same_home() {
    let world = World::start().await;
    let answer = world
        .ask(
            &world.ae,
            "st-elsewhere-ae",
            query("Amelia", "Evans", "2019-04-23"),
        )
        .await
        .expect("answered");

    let told = world.wait_for("enquiry.same_address", 1).await;
    let note = told[0].json();
    assert_eq!(note["payload"]["reference"], answer.enquiry_reference);
    assert_eq!(note["payload"]["record_id"], "C2", "Noah's worker is told");
    assert_eq!(note["payload"]["asked_about"], "C1");
    assert_eq!(note["to"][0], BROTHERS_WORKER);
    // The e-mail names the child asked about.
    world.mail_to(BROTHERS_WORKER, "Amelia Evans").await;
    // Amelia's own worker is told once, about Amelia, not as a same-address notice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(world.received("enquiry.lead_social_worker").len(), 1);
    assert_eq!(world.received("enquiry.same_address").len(), 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_enquiry_from_another_site_about_a_child_without_a_plan_raises_exactly_one_alert()
{
    let world = World::start().await;
    let absent = || query("Mia", "Holloway", "2020-01-05");
    let first = world
        .ask(&world.ae, "st-elsewhere-ae", absent())
        .await
        .expect("answered");
    assert_eq!(first.outcome, i32::from(pb::LookupOutcome::NoRecord));
    world.wait_for("contact.created", 1).await;
    assert!(world.received("alert.second-enquiry").is_empty());

    let second = world
        .ask(&world.edt, "demo-edt", absent())
        .await
        .expect("answered");
    let alerts = world.wait_for("alert.second-enquiry", 1).await;
    let alert = alerts[0].json();
    assert_eq!(alert["to"], serde_json::json!([]), "to the duty inbox");
    let references = alert["payload"]["references"].clone();
    assert_eq!(
        references,
        serde_json::json!([first.enquiry_reference, second.enquiry_reference])
    );
    world.mail_to(DUTY_INBOX, "Section 47").await;

    // A third enquiry is recorded as a Contact but raises no second alert.
    world
        .ask(&world.ae, "st-elsewhere-ae", absent())
        .await
        .expect("answered");
    world.wait_for("contact.created", 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(world.received("alert.second-enquiry").len(), 1);

    let (store, _pki) = world.stop().await;
    let contacts = store.contacts(None, 0).expect("contacts");
    assert_eq!(contacts.len(), 3);
    assert!(contacts.iter().all(|c| c.record_id.is_none()));
    assert!(
        contacts[0].advice.contains("No record"),
        "the Contact keeps the advice given: {}",
        contacts[0].advice
    );
    let alerts = store
        .alerts(&AlertFilter {
            kind: Some("second-enquiry".into()),
            ..Default::default()
        })
        .expect("alerts");
    assert_eq!(alerts.len(), 1);

    // Retention: Contacts go once they are older than the authority keeps them, not before.
    let day = chrono::Duration::days(1);
    assert_eq!(store.purge_contacts(now() - day).expect("purge"), 0);
    assert_eq!(store.purge_contacts(now() + day).expect("purge"), 3);
    assert!(store.contacts(None, 0).expect("contacts").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_refused_for_too_little_detail_raises_an_alert_for_the_custodian() {
    let world = World::start().await;
    let refused = world
        .ask(
            &world.ae,
            "st-elsewhere-ae",
            pb::ChildQuery {
                surname: "Evans".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    let alerts = world.wait_for("alert.refused", 1).await;
    assert!(
        alerts[0].json()["body"]
            .as_str()
            .unwrap_or_default()
            .contains("Dr Asha Patel"),
        "the alert names the operator"
    );
    let (store, _pki) = world.stop().await;
    let alerts = store
        .alerts(&AlertFilter {
            unacknowledged: true,
            ..Default::default()
        })
        .expect("alerts");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, "refused");
    let seen = store
        .acknowledge_alert(
            "custodian",
            &alerts[0].id,
            "Spoke to the ED: a new registrar",
        )
        .expect("acknowledged");
    assert!(seen.acknowledged.is_some());
    assert!(
        store
            .acknowledge_alert("custodian", &alerts[0].id, "again")
            .is_err(),
        "an alert is acknowledged once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edt_sees_that_a_and_e_asked_about_amelia_earlier_tonight() {
    let world = World::start().await;
    let amelia = || query("Amelia", "Evans", "2019-04-23");
    world
        .ask(&world.ae, "st-elsewhere-ae", amelia())
        .await
        .expect("answered at A&E");
    // Once the primary has the A&E enquiry, it publishes it with Amelia's record.
    world.wait_for("enquiry.lead_social_worker", 1).await;
    world
        .edt
        .wait_for(AUTHORITY, world.primary.head().await.0)
        .await;

    let first = world
        .ask(&world.edt, "demo-edt", amelia())
        .await
        .expect("answered at the EDT");
    assert_eq!(first.candidates[0].recent_enquiries, 1);
    assert_eq!(first.candidates[0].recent_sites, 1);
    let second = world
        .ask(&world.edt, "demo-edt", amelia())
        .await
        .expect("answered at the EDT again");
    let seen = &second.candidates[0];
    assert_eq!(
        (seen.recent_enquiries, seen.recent_sites),
        (2, 2),
        "A&E's enquiry (from the snapshot) and the EDT's own (not yet reported back)"
    );
    assert!(
        second.advice.contains("2 time(s)") && second.advice.contains("2 site(s)"),
        "{}",
        second.advice
    );
    world.stop().await;
}
