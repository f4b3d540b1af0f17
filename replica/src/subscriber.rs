//! One authority's link to its primary: dial out over mutual TLS, subscribe from the version
//! held, feed every frame to the intake, report where the copy stands, and on any failure or
//! refusal drop the stream and dial again with backoff. The copy held keeps being served
//! throughout; the link only ever replaces it with a version proved whole.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cpreg_proto::pb;
use cpreg_proto::pb::replication_client::ReplicationClient;
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::ReplicaError;
use crate::clock::Clock;
use crate::config::AuthorityConfig;
use crate::intake::{Intake, Progress};
use crate::status::{HeldVersion, LinkState};
use crate::store::Store;

/// The first wait before redialling; doubled after each failed session.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait before redialling.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A session up this long was a working link, even on a quiet register with nothing to apply:
/// losing it (the primary restarted, say) starts the backoff afresh.
const STEADY_SESSION: Duration = Duration::from_secs(10);
/// How often the replica reports its status while connected, besides after each apply.
const REPORT_EVERY: Duration = Duration::from_secs(30);
/// A status report is best effort: it never holds up the stream for longer than this.
const REPORT_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings find a half-open connection that TCP alone would not notice for hours.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame accepted from a primary; a chunk must be smaller than this.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The mutual-TLS endpoint of an authority's primary, built from the configured files so a
/// missing or unreadable file stops the replica at start rather than in a retry loop.
pub(crate) fn endpoint(authority: &AuthorityConfig) -> Result<Endpoint, ReplicaError> {
    let read = |what: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| ReplicaError::Read {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(
            "CA certificate",
            &authority.tls.ca,
        )?))
        .identity(Identity::from_pem(
            read("client certificate", &authority.tls.cert)?,
            read("client key", &authority.tls.key)?,
        ))
        .domain_name(authority.server_name.clone());
    let bad = |e: tonic::transport::Error| ReplicaError::Primary {
        authority: authority.id.clone(),
        message: format!("{}: {e}", authority.primary),
    };
    Ok(Endpoint::from_shared(authority.primary.clone())
        .map_err(bad)?
        .tls_config(tls)
        .map_err(bad)?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true))
}

/// How a session with the primary ended.
enum Ended {
    Shutdown,
    /// The stream failed, ended or was dropped after a refusal.
    Lost {
        /// Whether the session applied anything, which resets the backoff.
        applied: bool,
        /// Whether it ended on a frame the intake refused: then however long it was up (a
        /// large snapshot refused at the end), it was no working link.
        refused: bool,
        /// How long it was subscribed.
        up: Duration,
    },
}

/// The task that keeps one authority's copy up to date.
pub(crate) struct Subscriber {
    pub(crate) endpoint: Endpoint,
    pub(crate) intake: Intake,
    /// The replica's store, for the enquiry outbox backlog each status report carries.
    pub(crate) store: Arc<Store>,
    pub(crate) link: Arc<LinkState>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) staleness_threshold: chrono::Duration,
    /// With `freshness_check_seconds`: a stream silent this long is taken as dead.
    pub(crate) idle_limit: Option<Duration>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Subscriber {
    /// Runs until shutdown is signalled.
    pub(crate) async fn run(mut self) {
        let mut shutdown = self.shutdown.clone();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let ended = self.session(&mut shutdown).await;
            self.link.set_connected(false);
            self.intake.abandon();
            match ended {
                Ended::Shutdown => break,
                Ended::Lost {
                    applied,
                    refused,
                    up,
                } => backoff = backoff_after(backoff, applied, refused, up),
            }
            let delay = jittered(backoff);
            tracing::debug!(authority = %self.intake.authority(), ?delay, "redialling after a pause");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = wait_for_shutdown(&mut shutdown) => break,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        tracing::debug!(authority = %self.intake.authority(), "subscriber stopped");
    }

    async fn connect(
        &self,
    ) -> Result<
        (
            ReplicationClient<Channel>,
            tonic::Streaming<pb::SnapshotFrame>,
        ),
        String,
    > {
        let channel = self
            .endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect: {}", error_chain(&e)))?;
        let mut client = ReplicationClient::new(channel).max_decoding_message_size(MAX_FRAME_BYTES);
        let held = self.intake.held().await.map_err(|e| e.to_string())?;
        let request = pb::SubscribeRequest {
            have_version: held.version,
            have_state_root: held.state_root,
        };
        let stream = client
            .subscribe(request)
            .await
            .map_err(|s| format!("subscribe refused: {s}"))?;
        Ok((client, stream.into_inner()))
    }

    async fn session(&mut self, shutdown: &mut watch::Receiver<bool>) -> Ended {
        let authority = self.intake.authority().to_owned();
        let connected = tokio::select! {
            connected = self.connect() => connected,
            _ = wait_for_shutdown(shutdown) => return Ended::Shutdown,
        };
        let (mut client, mut stream) = match connected {
            Ok(pair) => pair,
            Err(message) => {
                tracing::warn!(%authority, error = %message, "primary unreachable; serving the copy held");
                self.link.failed(message);
                return Ended::Lost {
                    applied: false,
                    refused: false,
                    up: Duration::ZERO,
                };
            }
        };
        self.link.set_connected(true);
        let subscribed = Instant::now();
        let lost = |applied, refused| Ended::Lost {
            applied,
            refused,
            up: subscribed.elapsed(),
        };
        tracing::info!(%authority, "subscribed to the primary");
        self.report(&mut client).await;
        let mut reports = tokio::time::interval_at(Instant::now() + REPORT_EVERY, REPORT_EVERY);
        let mut last_frame = Instant::now();
        let mut applied = false;
        loop {
            let idle_deadline = self.idle_limit.map(|limit| last_frame + limit);
            let idle = async move {
                match idle_deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = wait_for_shutdown(shutdown) => return Ended::Shutdown,
                _ = reports.tick() => self.report(&mut client).await,
                _ = idle => {
                    tracing::warn!(%authority, "no frame from the primary within freshness_check_seconds; redialling");
                    self.link.failed("no frame from the primary within freshness_check_seconds".into());
                    return lost(applied, false);
                }
                message = stream.message() => {
                    last_frame = Instant::now();
                    match message {
                        Ok(Some(frame)) => match self.intake.frame(frame).await {
                            Ok(Progress::Applied(_) | Progress::Refreshed(_)) => {
                                applied = true;
                                self.report(&mut client).await;
                            }
                            Ok(_) => {}
                            // Logged and counted by the intake; the primary resends from the
                            // version held on the next subscription.
                            Err(_) => return lost(applied, true),
                        },
                        Ok(None) => {
                            tracing::info!(%authority, "the primary ended the subscription");
                            return lost(applied, false);
                        }
                        Err(status) => {
                            tracing::warn!(%authority, %status, "subscription lost; serving the copy held");
                            self.link.failed(format!("link: {status}"));
                            return lost(applied, false);
                        }
                    }
                }
            }
        }
    }

    /// Tells the primary where this copy stands; failures are logged and otherwise ignored.
    async fn report(&self, client: &mut ReplicationClient<Channel>) {
        let authority = self.intake.authority();
        let held = match self.intake.held().await {
            Ok(held) => held,
            Err(error) => {
                tracing::warn!(%authority, %error, "cannot read the version held for the status report");
                return;
            }
        };
        let backlog = {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.outbox_backlog()).await
        };
        let backlog = match backlog {
            Ok(Ok(backlog)) => backlog,
            Ok(Err(error)) => {
                tracing::warn!(%authority, %error, "cannot count the enquiry outbox for the status report");
                return;
            }
            Err(error) => {
                tracing::warn!(%authority, %error, "counting the enquiry outbox failed");
                return;
            }
        };
        let now = self.clock.now();
        let report = HeldVersion::new(authority, &held, now, self.staleness_threshold)
            .to_report(now, backlog);
        match tokio::time::timeout(REPORT_TIMEOUT, client.report_status(report)).await {
            Ok(Ok(_)) => {}
            Ok(Err(status)) => tracing::warn!(%authority, %status, "status report refused"),
            Err(_) => tracing::warn!(%authority, "status report timed out"),
        }
    }
}

/// The backoff to wait (before jitter) after a lost session: afresh after a session that applied
/// something, or that was subscribed for [`STEADY_SESSION`] (`up`) and not ended by a frame the
/// intake `refused`; otherwise the one that led to it, doubled for the next attempt by the caller.
fn backoff_after(backoff: Duration, applied: bool, refused: bool, up: Duration) -> Duration {
    if applied || (!refused && up >= STEADY_SESSION) {
        FIRST_BACKOFF
    } else {
        backoff
    }
}

/// Resolves once shutdown is signalled (or its sender is gone).
async fn wait_for_shutdown(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

/// Between half and all of `backoff`, so replicas cut off together do not redial together. The
/// clock's nanoseconds are random enough for that.
fn jittered(backoff: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let half = backoff / 2;
    let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_nanos(u64::from(nanos) % spread)
}

/// A transport error with its causes, which carry the useful part ("connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some layers repeat their cause in their own message.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
