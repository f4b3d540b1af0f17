//! Delivers the notification outbox ([`crate::store::Notification`]) to its sinks: a webhook over
//! HTTPS and e-mail over SMTP. Each configured sink has its own task, so a slow one never holds
//! up the other; each marks what it delivered and retries what it could not, with backoff, until
//! it is taken. The outbox lives in the register, so a restart picks up where delivery stopped.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::{InvalidSetting, Notifications, SmtpConfig, SmtpTls, WebhookConfig};
use crate::store::{Notification, Sink, Store, StoreError};

/// Without a wake from the store, each sink looks at the outbox at least this often.
const POLL: Duration = Duration::from_secs(5);
/// Notifications taken from the outbox per pass.
const BATCH: usize = 100;
/// The shortest wait between two passes, so an outbox that says something is due but yields
/// nothing can never spin a core.
const MIN_WAIT: Duration = Duration::from_millis(20);
/// How long a send in flight at shutdown may take to finish before it is abandoned: long enough
/// for a receiver that answers, short enough not to hold up a restart.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// The header that carries the notification id in every e-mail.
const NOTIFICATION_HEADER: &str = "X-Cpreg-Notification";

/// Why notification delivery could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// A setting that cannot be used.
    #[error(transparent)]
    Setting(#[from] InvalidSetting),
    /// A file named in the settings could not be read.
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        key: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The outbox could not be read or written.
    #[error("notification outbox: {0}")]
    Store(#[from] StoreError),
}

/// The delivery tasks of a running primary. Dropping it stops them without waiting;
/// [`Delivery::stop`] waits until they have let go of the register.
#[derive(Debug)]
pub struct Delivery {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Delivery {
    /// Starts one task per configured sink over `store`'s outbox. With no sink configured,
    /// notifications stay queued; that is logged once, here.
    pub async fn start(
        store: Arc<Store>,
        config: Option<&Notifications>,
    ) -> Result<Delivery, NotifyError> {
        Self::start_counted(store, config, None).await
    }

    /// As [`Delivery::start`], counting each failed attempt in `failures` by sink (the
    /// primary's `cpreg_primary_notification_failures_total`).
    pub async fn start_counted(
        store: Arc<Store>,
        config: Option<&Notifications>,
        failures: Option<prometheus::IntCounterVec>,
    ) -> Result<Delivery, NotifyError> {
        let mut transports = Vec::new();
        if let Some(config) = config {
            config.check()?;
            if let Some(webhook) = &config.webhook {
                transports.push(Transport::Webhook(Webhook::new(webhook)?));
            }
            if let Some(smtp) = &config.smtp {
                transports.push(Transport::Email(Box::new(Email::new(
                    smtp,
                    &config.duty_inbox,
                )?)));
            }
        }
        let sinks: Vec<Sink> = transports.iter().map(Transport::sink).collect();
        let backlog = {
            let store = store.clone();
            let sinks = sinks.clone();
            blocking(move || {
                store.record_notification_sinks(&sinks)?;
                store.notification_backlog()
            })
            .await?
        };
        if sinks.is_empty() {
            tracing::warn!(
                backlog,
                "no notification sink is configured ([notifications.webhook] or [notifications.smtp]): notifications stay queued until one is"
            );
        } else {
            tracing::info!(sinks = ?sinks, backlog, "delivering notifications");
        }
        let backoff = config.map_or(Backoff::default(), Backoff::from_config);
        let (stop, _) = watch::channel(false);
        let tasks = transports
            .into_iter()
            .map(|transport| {
                let worker = Worker {
                    wake: store.notification_waker(),
                    store: store.clone(),
                    transport,
                    backoff,
                    stop: stop.subscribe(),
                    failures: failures.clone(),
                };
                tokio::spawn(worker.run())
            })
            .collect();
        Ok(Delivery { stop, tasks })
    }

    /// Stops delivery between two notifications (a send in flight gets a moment to finish, and
    /// is abandoned and made again after a restart if it does not) and waits until every task
    /// has let go of the register.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a notification delivery task failed");
            }
        }
    }
}

/// How long to wait before trying a sink again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(15 * 60),
        }
    }
}

impl Backoff {
    fn from_config(config: &Notifications) -> Backoff {
        Backoff {
            base: Duration::from_secs_f64(config.retry_base_seconds),
            cap: Duration::from_secs_f64(config.retry_cap_seconds),
        }
    }

    /// The wait after the `failures`-th failed attempt: the base doubled for each failure before
    /// it, capped, then drawn at random from its upper half so that notifications that failed
    /// together (a sink that was down) do not all come back at once.
    pub fn delay(&self, failures: u32) -> Duration {
        let doubling = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let full = self.base.saturating_mul(doubling).min(self.cap);
        let half = full / 2;
        half + half.mul_f64(unit_random())
    }
}

/// A number in [0, 1) from the system's random source (0.5 if it fails: jitter is a nicety).
fn unit_random() -> f64 {
    match getrandom::u64() {
        Ok(bits) => (bits >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

/// One sink's delivery loop.
struct Worker {
    store: Arc<Store>,
    transport: Transport,
    backoff: Backoff,
    /// Poked by the store when a commit queued something.
    wake: Arc<Notify>,
    stop: watch::Receiver<bool>,
    /// Failed attempts, by sink, for the metrics.
    failures: Option<prometheus::IntCounterVec>,
}

impl Worker {
    async fn run(mut self) {
        let sink = self.transport.sink();
        loop {
            let more = match self.pass().await {
                Ok(Some(more)) => more,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(%sink, error = %e, "reading the notification outbox failed");
                    false
                }
            };
            if more {
                continue;
            }
            let wait = match self.next_attempt().await {
                Ok(Some(at)) => (at - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .clamp(MIN_WAIT, POLL),
                Ok(None) => POLL,
                Err(e) => {
                    tracing::error!(%sink, error = %e, "reading the notification outbox failed");
                    POLL
                }
            };
            tokio::select! {
                _ = self.stop.wait_for(|stopped| *stopped) => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Tries everything due once. `Some(true)` when more may be due at once, `None` when told to
    /// stop. A send in flight at the stop gets [`STOP_GRACE`] to finish; the recording of an
    /// outcome is never cut short.
    async fn pass(&mut self) -> Result<Option<bool>, StoreError> {
        let sink = self.transport.sink();
        let due = {
            let store = self.store.clone();
            blocking(move || store.due_notifications(sink, Utc::now(), BATCH)).await?
        };
        for notification in &due {
            if *self.stop.borrow() {
                return Ok(None);
            }
            let sending = self.transport.deliver(notification);
            tokio::pin!(sending);
            let finished = tokio::select! {
                outcome = &mut sending => Some(outcome),
                _ = self.stop.wait_for(|stopped| *stopped) => None,
            };
            let outcome = match finished {
                Some(outcome) => outcome,
                None => match tokio::time::timeout(STOP_GRACE, &mut sending).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        tracing::info!(%sink, id = %notification.id, "shutting down: a send in flight is abandoned and made again after the restart");
                        return Ok(None);
                    }
                },
            };
            self.record(notification, outcome).await?;
        }
        Ok(Some(due.len() == BATCH))
    }

    async fn record(
        &self,
        notification: &Notification,
        outcome: Result<(), String>,
    ) -> Result<(), StoreError> {
        let sink = self.transport.sink();
        let store = self.store.clone();
        let id = notification.id.clone();
        let now = Utc::now();
        match outcome {
            Ok(()) => {
                tracing::info!(%sink, id = %notification.id, kind = %notification.kind, "notification delivered");
                blocking(move || store.notification_delivered(&id, sink, now)).await?;
            }
            Err(error) => {
                if let Some(counter) = &self.failures {
                    counter.with_label_values(&[sink.as_str()]).inc();
                }
                let failures = notification.delivery(sink).attempts + 1;
                let wait = self.backoff.delay(failures);
                // The cap is at most a day (see the config's check), so this always converts.
                let next = now
                    + chrono::Duration::from_std(wait)
                        .unwrap_or_else(|_| chrono::Duration::days(1));
                tracing::warn!(%sink, id = %notification.id, failures, retry_in = ?wait, %error, "notification not delivered");
                blocking(move || store.notification_failed(&id, sink, &error, next)).await?;
            }
        }
        Ok(())
    }

    async fn next_attempt(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let store = self.store.clone();
        let sink = self.transport.sink();
        blocking(move || store.next_notification_attempt(sink)).await
    }
}

/// Runs a store call on the blocking pool.
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| StoreError::Invalid(format!("outbox task failed: {e}")))?
}

enum Transport {
    Webhook(Webhook),
    /// Boxed: the SMTP transport is several times the size of the HTTP client.
    Email(Box<Email>),
}

impl Transport {
    fn sink(&self) -> Sink {
        match self {
            Transport::Webhook(_) => Sink::Webhook,
            Transport::Email(_) => Sink::Email,
        }
    }

    /// Sends one notification; the error says why in words for the log and the outbox.
    async fn deliver(&self, notification: &Notification) -> Result<(), String> {
        match self {
            Transport::Webhook(webhook) => webhook.deliver(notification).await,
            Transport::Email(email) => email.deliver(notification).await,
        }
    }
}

/// What the webhook receives: the notification without its delivery state.
#[derive(Serialize)]
struct WebhookBody<'a> {
    id: &'a str,
    kind: &'a str,
    created_at: DateTime<Utc>,
    to: &'a [String],
    subject: &'a str,
    body: &'a str,
    payload: &'a serde_json::Value,
}

struct Webhook {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl Webhook {
    fn new(config: &WebhookConfig) -> Result<Webhook, NotifyError> {
        crate::install_crypto_provider();
        let url = reqwest::Url::parse(&config.url).map_err(|e| InvalidSetting {
            key: "notifications.webhook.url",
            message: e.to_string(),
        })?;
        let timeout = Duration::from_secs(config.timeout_seconds);
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect is an answer that did not take the notification; following it would
            // send the record somewhere the configuration does not name.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!config.allow_http)
            .user_agent(concat!("cpreg-primary/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            const KEY: &str = "notifications.webhook.ca_file";
            let pem = std::fs::read(path).map_err(|source| NotifyError::Read {
                key: KEY,
                path: path.clone(),
                source,
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| InvalidSetting {
                    key: KEY,
                    message: format!("{}: {e}", path.display()),
                })?;
            if certs.is_empty() {
                return Err(InvalidSetting {
                    key: KEY,
                    message: format!("{} holds no PEM certificate", path.display()),
                }
                .into());
            }
            builder = builder.tls_certs_only(certs);
        }
        let client = builder.build().map_err(|e| InvalidSetting {
            key: "notifications.webhook",
            message: format!("cannot make an HTTPS client: {}", describe(&e)),
        })?;
        Ok(Webhook { client, url })
    }

    async fn deliver(&self, notification: &Notification) -> Result<(), String> {
        let body = WebhookBody {
            id: &notification.id,
            kind: &notification.kind,
            created_at: notification.created_at,
            to: &notification.to,
            subject: &notification.subject,
            body: &notification.body,
            payload: &notification.payload,
        };
        let response = self
            .client
            .post(self.url.clone())
            .header("Idempotency-Key", &notification.id)
            .json(&body)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered {status}"))
        }
    }
}

struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    duty_inbox: Mailbox,
    /// The right-hand side of every Message-ID: the sender's domain.
    message_id_domain: String,
}

impl Email {
    fn new(config: &SmtpConfig, duty_inbox: &str) -> Result<Email, NotifyError> {
        crate::install_crypto_provider();
        let mailbox = |key: &'static str, text: &str| {
            text.parse::<Mailbox>().map_err(|e| InvalidSetting {
                key,
                message: format!("{text:?} is not an e-mail address: {e}"),
            })
        };
        let from = mailbox("notifications.smtp.from", &config.from)?;
        let duty_inbox = mailbox("notifications.duty_inbox", duty_inbox)?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port())
            .timeout(Some(Duration::from_secs(config.timeout_seconds)));
        if config.tls != SmtpTls::None {
            let mut params = TlsParameters::builder(config.host.clone());
            if let Some(path) = &config.ca_file {
                const KEY: &str = "notifications.smtp.ca_file";
                let pem = std::fs::read(path).map_err(|source| NotifyError::Read {
                    key: KEY,
                    path: path.clone(),
                    source,
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| InvalidSetting {
                    key: KEY,
                    message: format!("{}: {e}", path.display()),
                })?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build().map_err(|e| InvalidSetting {
                key: "notifications.smtp.tls",
                message: format!("cannot set up TLS to {}: {e}", config.host),
            })?;
            builder = builder.tls(match config.tls {
                SmtpTls::Starttls => Tls::Required(params),
                _ => Tls::Wrapper(params),
            });
        }
        if let Some(path) = &config.credentials_file {
            builder = builder.credentials(read_credentials(path)?);
            if config.tls == SmtpTls::None {
                tracing::warn!(
                    host = %config.host,
                    "notifications.smtp: credentials are configured with tls = \"none\": the password may cross the network in clear"
                );
            }
        }
        Ok(Email {
            transport: builder.build(),
            message_id_domain: from.email.domain().to_owned(),
            from,
            duty_inbox,
        })
    }

    /// The recipients: those the notification names, the duty inbox when it names none. A
    /// recipient that is not an address is replaced by the duty inbox, so a person still reads it.
    fn recipients(&self, notification: &Notification) -> Vec<Mailbox> {
        let mut recipients: Vec<Mailbox> = Vec::new();
        for text in &notification.to {
            let mailbox = match text.parse::<Mailbox>() {
                Ok(mailbox) => mailbox,
                Err(e) => {
                    tracing::error!(id = %notification.id, recipient = %text, error = %e, "a notification's recipient is not an e-mail address: sending it to the duty inbox");
                    self.duty_inbox.clone()
                }
            };
            if !recipients.iter().any(|r| r.email == mailbox.email) {
                recipients.push(mailbox);
            }
        }
        if recipients.is_empty() {
            recipients.push(self.duty_inbox.clone());
        }
        recipients
    }

    fn message(&self, notification: &Notification) -> Result<Message, String> {
        let mut builder = Message::builder()
            .message_id(Some(message_id(&notification.id, &self.message_id_domain)))
            .from(self.from.clone())
            .subject(notification.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(NOTIFICATION_HEADER),
                notification.id.clone(),
            ))
            // RFC 3834: out-of-office replies must not answer it.
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ));
        for recipient in self.recipients(notification) {
            builder = builder.to(recipient);
        }
        builder
            .body(notification.body.clone())
            .map_err(|e| format!("cannot make the e-mail: {e}"))
    }

    async fn deliver(&self, notification: &Notification) -> Result<(), String> {
        let message = self.message(notification)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| describe(&e))
    }
}

/// The Message-ID of a notification's e-mail: the same for every attempt, so a mail client
/// shows a message sent twice (an attempt abandoned at shutdown) once.
pub fn message_id(notification_id: &str, domain: &str) -> String {
    let digest = Sha256::digest(notification_id.as_bytes());
    format!("<cpreg.{}@{domain}>", hex::encode(&digest[..16]))
}

/// Reads a credentials file: the user name on the first line, the password on the second.
fn read_credentials(path: &std::path::Path) -> Result<Credentials, NotifyError> {
    const KEY: &str = "notifications.smtp.credentials_file";
    let text = std::fs::read_to_string(path).map_err(|source| NotifyError::Read {
        key: KEY,
        path: path.to_owned(),
        source,
    })?;
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(user), Some(password)) if !user.is_empty() && !password.is_empty() => {
            Ok(Credentials::new(user.to_owned(), password.to_owned()))
        }
        _ => Err(InvalidSetting {
            key: KEY,
            message: format!(
                "{} must hold the user name on its first line and the password on its second",
                path.display()
            ),
        }
        .into()),
    }
}

/// An error with its causes, which for TLS and connection failures say what actually happened.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let words = cause.to_string();
        if !text.contains(&words) {
            text.push_str(": ");
            text.push_str(&words);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(duty_inbox: &str) -> Email {
        let config = SmtpConfig {
            host: "127.0.0.1".into(),
            port: Some(2525),
            from: "Register <cpreg@lambeth.example>".into(),
            tls: SmtpTls::None,
            ca_file: None,
            credentials_file: None,
            timeout_seconds: 5,
        };
        Email::new(&config, duty_inbox).expect("e-mail sink")
    }

    #[test]
    fn each_retry_waits_about_twice_as_long_up_to_the_cap() {
        let backoff = Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(15 * 60),
        };
        for (failures, full) in [(1, 1), (2, 2), (3, 4), (4, 8), (11, 900), (40, 900)] {
            let full = Duration::from_secs(full);
            for _ in 0..20 {
                let wait = backoff.delay(failures);
                assert!(
                    wait >= full / 2 && wait <= full,
                    "failure {failures}: {wait:?} outside [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
        let spread: std::collections::BTreeSet<_> = (0..20).map(|_| backoff.delay(5)).collect();
        assert!(spread.len() > 1, "jittered");
    }

    #[test]
    fn an_email_goes_to_those_named_or_else_to_the_duty_inbox() {
        let email = email("Duty Team <duty@lambeth.example>");
        let mut notification =
            Notification::new("alert:R1", "alert.custodian", Utc::now(), "Alert", "Text");
        let to = |n: &Notification| {
            email
                .recipients(n)
                .into_iter()
                .map(|m| m.email.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(to(&notification), ["duty@lambeth.example"]);
        notification.to = vec![
            "Sam Okafor <sam@lambeth.example>".into(),
            "sam@lambeth.example".into(),
            "not an address".into(),
        ];
        assert_eq!(
            to(&notification),
            ["sam@lambeth.example", "duty@lambeth.example"]
        );
    }

    #[test]
    fn an_email_carries_its_notification_id_and_a_stable_message_id() {
        let email = email("duty@lambeth.example");
        let notification = Notification::new(
            "enquiry:E1:lsw:R1",
            "enquiry.lead_social_worker",
            Utc::now(),
            "Enquiry about Ada Moss",
            "An A&E nurse asked about Ada Moss.",
        );
        let text = String::from_utf8(email.message(&notification).expect("message").formatted())
            .expect("text");
        let id = message_id("enquiry:E1:lsw:R1", "lambeth.example");
        assert_eq!(id, message_id("enquiry:E1:lsw:R1", "lambeth.example"));
        assert_ne!(id, message_id("enquiry:E2:lsw:R1", "lambeth.example"));
        assert!(text.contains(&format!("Message-ID: {id}\r\n")), "{text}");
        assert!(
            text.contains("X-Cpreg-Notification: enquiry:E1:lsw:R1\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Auto-Submitted: auto-generated\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Subject: Enquiry about Ada Moss\r\n"),
            "{text}"
        );
    }

    #[test]
    fn a_credentials_file_needs_a_user_and_a_password_and_is_named_when_wrong() {
        let dir = tempfile::tempdir().expect("folder");
        let path = dir.path().join("smtp-credentials");
        std::fs::write(&path, "cpreg\n").expect("write");
        let err = read_credentials(&path)
            .expect_err("no password")
            .to_string();
        assert!(err.contains("notifications.smtp.credentials_file"), "{err}");
        std::fs::write(&path, "cpreg\nsecret\n").expect("write");
        read_credentials(&path).expect("read");
        let err = read_credentials(&dir.path().join("missing"))
            .expect_err("missing")
            .to_string();
        assert!(
            err.contains("notifications.smtp.credentials_file") && err.contains("missing"),
            "{err}"
        );
    }
}
