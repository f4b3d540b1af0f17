//! The primary's notification outbox delivered to real receivers: an HTTPS webhook and an SMTP
//! server on loopback. What was queued reaches both, failures are retried with backoff until
//! they are not, a restart loses nothing, and nothing acknowledged is sent again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpreg::local::{LocalPrimary, prepare_primary};
use cpreg_primary::clock::FixedClock;
use cpreg_primary::config::{Notifications, SmtpConfig, SmtpTls, WebhookConfig};
use cpreg_primary::notify::{Delivery, message_id};
use cpreg_primary::store::{Notification, Sink, Store};
use cpreg_tests::receivers::{SmtpReceiver, WebhookReceiver};
use cpreg_tests::{TestPki, TestPrimary, now};
use serde_json::json;

/// Long enough for any delivery on a loaded machine; the retries themselves take under a second.
const WAIT: Duration = Duration::from_secs(15);
const DUTY_INBOX: &str = "duty@test-borough.example";
const LEAD_SOCIAL_WORKER: &str = "sam.okafor@test-borough.example";
const FROM: &str = "cpreg@test-borough.example";

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A loopback port nothing listens on: bound, read and released.
fn closed_port() -> u16 {
    std::net::TcpListener::bind(any_port())
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// What the primary tells a lead social worker about an enquiry, `minutes` after noon.
fn enquiry_notification(id: &str, minutes: i64) -> Notification {
    Notification {
        to: vec![format!("Sam Okafor <{LEAD_SOCIAL_WORKER}>")],
        payload: json!({ "record_id": "R1", "enquiry_reference": "ENQ-1", "site": "ae" }),
        ..Notification::new(
            id,
            "enquiry.lead_social_worker",
            now() + chrono::Duration::minutes(minutes),
            "Enquiry about Ada Moss (R1)",
            "A nurse at the A&E site asked about Ada Moss (R1) at 12:00.\nReason: injury.",
        )
    }
}

/// Both sinks on loopback, retrying after 0.1 to 0.2 s, then doubling up to a second.
fn sinks(pki: &TestPki, webhook: Option<&str>, smtp_port: Option<u16>) -> Notifications {
    Notifications {
        duty_inbox: DUTY_INBOX.into(),
        retry_base_seconds: 0.2,
        retry_cap_seconds: 1.0,
        webhook: webhook.map(|url| WebhookConfig {
            url: url.to_owned(),
            ca_file: Some(pki.path().join("pki").join("ca.pem")),
            allow_http: false,
            timeout_seconds: 5,
        }),
        smtp: smtp_port.map(|port| SmtpConfig {
            host: "127.0.0.1".into(),
            port: Some(port),
            from: format!("Test Borough register <{FROM}>"),
            tls: SmtpTls::None,
            ca_file: None,
            credentials_file: None,
            timeout_seconds: 5,
        }),
    }
}

async fn start(pki: TestPki, notifications: Notifications) -> TestPrimary {
    TestPrimary::start_configured(pki, any_port(), now(), move |config| {
        config.notifications = Some(notifications);
    })
    .await
}

/// Opens the register of a primary that is not running (creating it if new).
fn register(pki: &TestPki) -> Store {
    let config = prepare_primary(&pki.primary_dir(), &pki.ca, any_port()).expect("config");
    cpreg_primary::open_store(&config, Arc::new(FixedClock::new(now()))).expect("register")
}

/// Queues notifications into a stopped primary's register, as the code that causes them does.
fn queue(pki: &TestPki, notifications: Vec<Notification>) {
    let n = notifications.len();
    assert_eq!(
        register(pki)
            .queue_notifications(notifications)
            .expect("queued"),
        n
    );
}

fn held(pki: &TestPki, id: &str) -> Notification {
    register(pki)
        .notification(id)
        .expect("read")
        .expect("queued")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_notification_reaches_the_webhook_and_the_mailbox() {
    let pki = TestPki::new();
    let (url, webhook) = WebhookReceiver::start(Some(&pki.ca)).await;
    let (port, mailbox) = SmtpReceiver::start().await;
    let to_worker = enquiry_notification("enquiry:ENQ-1:lsw:R1", 0);
    let alert = Notification {
        payload: json!({ "record_id": "R7" }),
        ..Notification::new(
            "alert:R7:second_enquiry",
            "alert.second_enquiry",
            now(),
            "Second enquiry about a child without a plan",
            "Leo Hart (R7) has been asked about twice.",
        )
    };
    queue(&pki, vec![to_worker.clone(), alert]);
    let config = sinks(&pki, Some(&url), Some(port));
    let primary = start(pki, config).await;

    let posted = webhook.wait_for(2, WAIT).await;
    let request = posted
        .iter()
        .find(|r| r.header("Idempotency-Key") == Some("enquiry:ENQ-1:lsw:R1"))
        .expect("the enquiry's notification was posted with its id as idempotency key");
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/cpreg/notifications")
    );
    assert_eq!(request.header("Content-Type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "id": "enquiry:ENQ-1:lsw:R1",
            "kind": "enquiry.lead_social_worker",
            "created_at": "2026-11-22T12:00:00Z",
            "to": [format!("Sam Okafor <{LEAD_SOCIAL_WORKER}>")],
            "subject": "Enquiry about Ada Moss (R1)",
            "body": to_worker.body,
            "payload": { "record_id": "R1", "enquiry_reference": "ENQ-1", "site": "ae" },
        })
    );

    let mail = mailbox.wait_for(2, WAIT).await;
    let to_worker_mail = mail
        .iter()
        .find(|m| m.header("X-Cpreg-Notification").as_deref() == Some("enquiry:ENQ-1:lsw:R1"))
        .expect("the enquiry's e-mail");
    assert_eq!(to_worker_mail.from, FROM);
    assert_eq!(to_worker_mail.to, [LEAD_SOCIAL_WORKER]);
    assert_eq!(
        to_worker_mail.header("Subject").as_deref(),
        Some("Enquiry about Ada Moss (R1)")
    );
    assert_eq!(
        to_worker_mail.header("Message-ID"),
        Some(message_id("enquiry:ENQ-1:lsw:R1", "test-borough.example"))
    );
    assert!(
        to_worker_mail
            .body()
            .contains("asked about Ada Moss (R1) at 12:00"),
        "{}",
        to_worker_mail.data
    );
    let alert_mail = mail
        .iter()
        .find(|m| m.header("X-Cpreg-Notification").as_deref() == Some("alert:R7:second_enquiry"))
        .expect("the alert's e-mail");
    assert_eq!(
        alert_mail.to,
        [DUTY_INBOX],
        "naming nobody, it goes to the duty inbox"
    );

    let pki = primary.stop().await;
    let store = register(&pki);
    for id in ["enquiry:ENQ-1:lsw:R1", "alert:R7:second_enquiry"] {
        let n = store.notification(id).expect("read").expect("held");
        for sink in Sink::ALL {
            let delivery = n.delivery(sink);
            assert!(delivery.is_delivered(), "{id} at the {sink}");
            assert_eq!(delivery.attempts, 1, "{id} at the {sink}");
        }
    }
    assert_eq!(store.notification_backlog().expect("backlog"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_over_tls_to_a_relay_whose_ca_is_configured() {
    let pki = TestPki::new();
    let (port, mailbox) = SmtpReceiver::start_tls(&pki.ca).await;
    queue(&pki, vec![enquiry_notification("enquiry:ENQ-12:lsw:R1", 0)]);
    let mut config = sinks(&pki, None, Some(port));
    if let Some(smtp) = config.smtp.as_mut() {
        smtp.tls = SmtpTls::Tls;
        smtp.ca_file = Some(pki.path().join("pki").join("ca.pem"));
    }
    let primary = start(pki, config).await;
    let mail = mailbox.wait_for(1, WAIT).await;
    assert_eq!(
        mail[0].header("X-Cpreg-Notification").as_deref(),
        Some("enquiry:ENQ-12:lsw:R1")
    );
    primary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_answers_500_twice_takes_it_on_the_third_try_after_growing_waits() {
    let pki = TestPki::new();
    let (url, webhook) = WebhookReceiver::start(Some(&pki.ca)).await;
    webhook.answer_next(&[500, 500]);
    queue(&pki, vec![enquiry_notification("enquiry:ENQ-2:lsw:R1", 0)]);
    let config = sinks(&pki, Some(&url), None);
    let primary = start(pki, config).await;

    let tries = webhook.wait_for(3, WAIT).await;
    assert_eq!(
        tries.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    assert!(
        tries
            .iter()
            .all(|r| r.header("Idempotency-Key") == Some("enquiry:ENQ-2:lsw:R1")),
        "every try carries the same key"
    );
    // Base 0.2 s: the first wait is 0.1 to 0.2 s, the second 0.2 to 0.4 s.
    let first_wait = tries[1].received_at - tries[0].received_at;
    let second_wait = tries[2].received_at - tries[1].received_at;
    assert!(first_wait >= Duration::from_millis(100), "{first_wait:?}");
    assert!(second_wait >= Duration::from_millis(200), "{second_wait:?}");

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(webhook.requests().len(), 3, "nothing after it was taken");
    assert_eq!(webhook.accepted().len(), 1);
    let pki = primary.stop().await;
    let held = held(&pki, "enquiry:ENQ-2:lsw:R1");
    assert!(held.webhook.is_delivered());
    assert_eq!(held.webhook.attempts, 3);
    assert_eq!(held.webhook.next_attempt_at, None);
    let error = held.webhook.last_error.expect("the failures are kept");
    assert!(error.contains("500"), "{error}");
    assert_eq!(held.email.attempts, 0, "no e-mail sink is configured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_with_a_certificate_from_another_ca_gets_nothing() {
    let pki = TestPki::new();
    let impostor = TestPki::for_authority("elsewhere");
    let (url, webhook) = WebhookReceiver::start(Some(&impostor.ca)).await;
    queue(&pki, vec![enquiry_notification("enquiry:ENQ-13:lsw:R1", 0)]);
    let config = sinks(&pki, Some(&url), None);
    let primary = start(pki, config).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let pki = primary.stop().await;
    assert!(
        webhook.requests().is_empty(),
        "nothing crossed the handshake"
    );
    let held = held(&pki, "enquiry:ENQ-13:lsw:R1");
    assert!(!held.webhook.is_delivered());
    assert!(held.webhook.attempts >= 1);
    let error = held.webhook.last_error.expect("the refusal is kept");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_server_that_is_down_at_first_gets_the_mail_once_it_is_up() {
    let pki = TestPki::new();
    let port = closed_port();
    queue(&pki, vec![enquiry_notification("enquiry:ENQ-3:lsw:R1", 0)]);
    let config = sinks(&pki, None, Some(port));
    let primary = start(pki, config).await;

    // Attempts at about 0, 0.15, 0.45 and 1.2 s find nobody listening.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mailbox = SmtpReceiver::start_on(port).await;
    let mail = mailbox.wait_for(1, WAIT).await;
    assert_eq!(mail[0].to, [LEAD_SOCIAL_WORKER]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(mailbox.messages().len(), 1, "sent once");

    let pki = primary.stop().await;
    let held = held(&pki, "enquiry:ENQ-3:lsw:R1");
    assert!(held.email.is_delivered());
    assert!(held.email.attempts >= 2, "{:?}", held.email);
    assert!(held.email.last_error.is_some(), "the refusals are kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_queued_before_a_restart_are_delivered_after_it() {
    let pki = TestPki::new();
    queue(
        &pki,
        vec![
            enquiry_notification("enquiry:ENQ-4:lsw:R1", 0),
            enquiry_notification("enquiry:ENQ-5:lsw:R1", 1),
        ],
    );
    // Both sinks down: attempts fail and are recorded, nothing is dropped.
    let (dead_webhook, dead_smtp) = (closed_port(), closed_port());
    let config = sinks(
        &pki,
        Some(&format!("https://127.0.0.1:{dead_webhook}/cpreg")),
        Some(dead_smtp),
    );
    let primary = start(pki, config).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pki = primary.stop().await;
    {
        let store = register(&pki);
        assert_eq!(store.notification_backlog().expect("backlog"), 2);
        let held = store
            .notification("enquiry:ENQ-4:lsw:R1")
            .expect("read")
            .expect("held");
        assert!(held.webhook.attempts >= 1 && !held.webhook.is_delivered());
        assert!(held.email.attempts >= 1 && !held.email.is_delivered());
    }
    // One more while the primary is stopped.
    queue(&pki, vec![enquiry_notification("enquiry:ENQ-6:lsw:R1", 2)]);

    let (url, webhook) = WebhookReceiver::start(Some(&pki.ca)).await;
    let (port, mailbox) = SmtpReceiver::start().await;
    let config = sinks(&pki, Some(&url), Some(port));
    let primary = start(pki, config).await;
    let mut posted: Vec<_> = webhook
        .wait_for_accepted(3, WAIT)
        .await
        .iter()
        .map(|r| r.json()["id"].as_str().expect("id").to_owned())
        .collect();
    posted.sort();
    assert_eq!(
        posted,
        [
            "enquiry:ENQ-4:lsw:R1",
            "enquiry:ENQ-5:lsw:R1",
            "enquiry:ENQ-6:lsw:R1"
        ]
    );
    let mut mailed: Vec<_> = mailbox
        .wait_for(3, WAIT)
        .await
        .iter()
        .map(|m| m.header("X-Cpreg-Notification").expect("id"))
        .collect();
    mailed.sort();
    assert_eq!(mailed, posted);
    let pki = primary.stop().await;
    assert_eq!(register(&pki).notification_backlog().expect("backlog"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_acknowledged_is_delivered_again() {
    let pki = TestPki::new();
    let (url, webhook) = WebhookReceiver::start(Some(&pki.ca)).await;
    let (port, mailbox) = SmtpReceiver::start().await;
    queue(
        &pki,
        vec![
            enquiry_notification("enquiry:ENQ-7:lsw:R1", 0),
            enquiry_notification("enquiry:ENQ-8:lsw:R1", 1),
        ],
    );
    let config = sinks(&pki, Some(&url), Some(port));
    let primary = start(pki, config.clone()).await;
    webhook.wait_for_accepted(2, WAIT).await;
    mailbox.wait_for(2, WAIT).await;
    let pki = primary.stop().await;

    // A restart, and a new notification to show delivery ran again after it.
    queue(&pki, vec![enquiry_notification("enquiry:ENQ-9:lsw:R1", 2)]);
    let primary = start(pki, config).await;
    webhook.wait_for_accepted(3, WAIT).await;
    mailbox.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut posted: Vec<_> = webhook
        .requests()
        .iter()
        .map(|r| r.header("Idempotency-Key").expect("key").to_owned())
        .collect();
    posted.sort();
    assert_eq!(
        posted,
        [
            "enquiry:ENQ-7:lsw:R1",
            "enquiry:ENQ-8:lsw:R1",
            "enquiry:ENQ-9:lsw:R1"
        ],
        "each posted once"
    );
    let mut mailed: Vec<_> = mailbox
        .messages()
        .iter()
        .map(|m| m.header("X-Cpreg-Notification").expect("id"))
        .collect();
    mailed.sort();
    assert_eq!(mailed, posted, "each mailed once");
    let pki = primary.stop().await;
    let held = held(&pki, "enquiry:ENQ-7:lsw:R1");
    assert_eq!((held.webhook.attempts, held.email.attempts), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_queued_while_delivery_waits_goes_out_at_once() {
    let pki = TestPki::new();
    let (url, webhook) = WebhookReceiver::start(None).await;
    let mut config = sinks(&pki, Some(&url), None);
    if let Some(webhook) = config.webhook.as_mut() {
        webhook.allow_http = true;
        webhook.ca_file = None;
    }
    let store = Arc::new(register(&pki));
    let delivery = Delivery::start(store.clone(), Some(&config))
        .await
        .expect("delivery starts");
    // Let the first pass find nothing; the next poll is seconds away.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued_at = Instant::now();
    store
        .queue_notifications(vec![enquiry_notification("enquiry:ENQ-10:lsw:R1", 0)])
        .expect("queued");
    let posted = webhook.wait_for(1, WAIT).await;
    let took = posted[0].received_at - queued_at;
    assert!(
        took < Duration::from_secs(2),
        "woken by the commit, not the poll: {took:?}"
    );
    delivery.stop().await;
    assert!(
        store
            .notification("enquiry:ENQ-10:lsw:R1")
            .expect("read")
            .expect("held")
            .webhook
            .is_delivered()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_sink_notifications_stay_queued() {
    let pki = TestPki::new();
    queue(&pki, vec![enquiry_notification("enquiry:ENQ-11:lsw:R1", 0)]);
    let primary = TestPrimary::start_with(pki).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pki = primary.stop().await;
    let store = register(&pki);
    assert_eq!(store.notification_backlog().expect("backlog"), 1);
    let held = store
        .notification("enquiry:ENQ-11:lsw:R1")
        .expect("read")
        .expect("held");
    assert_eq!((held.webhook.attempts, held.email.attempts), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_refuses_a_plain_http_webhook_it_was_not_told_to_allow() {
    let pki = TestPki::new();
    let mut config = sinks(&pki, Some("http://127.0.0.1:9/cpreg"), None);
    if let Some(webhook) = config.webhook.as_mut() {
        webhook.ca_file = None;
    }
    let primary = LocalPrimary::start_configured(
        &pki.primary_dir(),
        &pki.ca,
        Arc::new(FixedClock::new(now())),
        any_port(),
        |c| c.notifications = Some(config),
    )
    .await
    .expect("listening");
    let err = primary.stop().await.expect_err("refused").to_string();
    assert!(err.contains("notifications.webhook.url"), "{err}");
}
