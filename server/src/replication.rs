//! The `cpreg.v1.Replication` service: pushes signed versions of the lookup projection to each
//! subscribed replica as soon as they commit, with freshness statements on a timer, and keeps
//! what each replica reports. Each subscription starts with the authority's key rotations, so a
//! replica enrolled with an older key follows the chain to the key that signs the manifests.
//! [`sign_version`] is also what the air-gap export (`crate::export`) signs with.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cpreg_proto::pb::{self, replication_server::Replication};
use cpreg_proto::role::Role;
use cpreg_proto::snapshot::{payload_digest, rotation_frame, sign_manifest, version_frames};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::auth::require;
use crate::config::Publishing;
use crate::store::{Alert, AlertFilter, Outgoing, ReceivedEnquiry, ReplicaReport, Store};

/// Payload bytes per chunk frame.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// The replication service over one store.
#[derive(Debug, Clone)]
pub struct ReplicationService {
    store: Arc<Store>,
    publishing: Publishing,
    /// Where each version's signing and sending time is observed, by kind.
    publish_seconds: prometheus::HistogramVec,
    /// Every subscriber's feeding task, so the primary can stop them all and close the store.
    feeds: Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

/// Stops every subscriber's feed when the primary shuts down.
#[derive(Debug)]
pub struct FeedsHandle {
    feeds: Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl FeedsHandle {
    /// Ends every feed and waits until each has let go of the store.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut feeds = std::mem::take(&mut *self.feeds.lock().unwrap_or_else(|p| p.into_inner()));
        while feeds.join_next().await.is_some() {}
    }
}

impl ReplicationService {
    pub fn new(
        store: Arc<Store>,
        publishing: Publishing,
        publish_seconds: prometheus::HistogramVec,
    ) -> (Self, FeedsHandle) {
        let feeds: Arc<std::sync::Mutex<tokio::task::JoinSet<()>>> = Arc::default();
        let (stop, stopping) = tokio::sync::watch::channel(false);
        (
            ReplicationService {
                store,
                publishing,
                publish_seconds,
                feeds: feeds.clone(),
                stopping,
            },
            FeedsHandle { feeds, stop },
        )
    }
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<pb::SnapshotFrame, Status>> + Send>>;
type Frames = mpsc::Sender<Result<pb::SnapshotFrame, Status>>;

/// The subscriber went away.
struct Gone;

/// A freshness statement as a frame.
fn manifest_frame(signed: pb::SignedManifest) -> pb::SnapshotFrame {
    pb::SnapshotFrame {
        frame: Some(pb::snapshot_frame::Frame::Manifest(signed)),
    }
}

fn base_manifest(
    store: &Store,
    publishing: &Publishing,
    version: u64,
    state_root: Vec<u8>,
    entry_count: u64,
) -> pb::Manifest {
    let now = store.clock().now().timestamp();
    pb::Manifest {
        authority: store.authority().to_owned(),
        version,
        issued_at: now,
        expires_at: now + publishing.manifest_lifetime_hours as i64 * 3600,
        key_id: cpreg_proto::snapshot::key_id(&store.verifying_key()),
        entry_count,
        state_root,
        ..Default::default()
    }
}

/// Signs a version with the key in force: a full snapshot when `out.base_version` is 0, else a
/// delta. The one place a version's manifest is made, so the feed and the air-gap export sign
/// alike.
pub fn sign_version(store: &Store, publishing: &Publishing, out: &Outgoing) -> pb::SignedManifest {
    let kind = if out.base_version == 0 {
        pb::ManifestKind::Full
    } else {
        pb::ManifestKind::Delta
    };
    let manifest = pb::Manifest {
        kind: kind.into(),
        base_version: out.base_version,
        payload_digest: payload_digest(&out.payload),
        payload_size: out.payload.len() as u64,
        ..base_manifest(
            store,
            publishing,
            out.head.version,
            out.head.root().to_bytes(),
            out.head.entry_count,
        )
    };
    sign_manifest(&manifest, store.signing_key())
}

/// Signs a version for one replica and sends it: the manifest, then the payload in chunks.
/// How long that took is observed in `publish_seconds`, by kind.
async fn send_version(
    frames: &Frames,
    store: &Store,
    publishing: &Publishing,
    out: Outgoing,
    publish_seconds: &prometheus::HistogramVec,
) -> Result<(), Gone> {
    let started = std::time::Instant::now();
    let kind = if out.base_version == 0 {
        "full"
    } else {
        "delta"
    };
    let signed = sign_version(store, publishing, &out);
    for frame in version_frames(signed, &out.payload, CHUNK_BYTES) {
        frames.send(Ok(frame)).await.map_err(|_| Gone)?;
    }
    publish_seconds
        .with_label_values(&[kind])
        .observe(started.elapsed().as_secs_f64());
    Ok(())
}

/// Sends every key rotation, oldest first. A replica skips those it already follows.
async fn send_rotations(frames: &Frames, store: &Arc<Store>) -> Result<(), Gone> {
    let rotations = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.rotations()).await
    };
    let rotations = match rotations {
        Ok(Ok(rotations)) => rotations,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot read the key rotations");
            let _ = frames
                .send(Err(Status::internal(
                    "the primary cannot read its key rotations",
                )))
                .await;
            return Err(Gone);
        }
        Err(e) => {
            tracing::error!(error = %e, "reading the key rotations failed");
            return Err(Gone);
        }
    };
    for rotation in rotations {
        frames
            .send(Ok(rotation_frame(rotation)))
            .await
            .map_err(|_| Gone)?;
    }
    Ok(())
}

/// Vouches that the version a replica holds is still the newest.
async fn send_freshness(
    frames: &Frames,
    store: &Store,
    publishing: &Publishing,
    version: u64,
    state_root: &[u8],
    entry_count: u64,
) -> Result<(), Gone> {
    let manifest = pb::Manifest {
        kind: pb::ManifestKind::Freshness.into(),
        ..base_manifest(store, publishing, version, state_root.to_vec(), entry_count)
    };
    frames
        .send(Ok(manifest_frame(sign_manifest(
            &manifest,
            store.signing_key(),
        ))))
        .await
        .map_err(|_| Gone)
}

/// Feeds one subscriber until it goes away: the key rotations, what it lacks now, then each new
/// version as it commits (versions that commit while one is being sent are merged into the next
/// delta), and a freshness statement on every tick.
async fn feed(
    store: Arc<Store>,
    publishing: Publishing,
    request: pb::SubscribeRequest,
    frames: Frames,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    publish_seconds: prometheus::HistogramVec,
) -> Result<(), Gone> {
    let mut versions = store.subscribe_versions();
    let mut have_version = request.have_version;
    let mut have_root = request.have_state_root;
    let mut have_count = 0;
    let mut ticker = tokio::time::interval(Duration::from_secs(
        publishing.freshness_interval_seconds.max(1),
    ));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    send_rotations(&frames, &store).await?;
    let mut first = true;
    loop {
        versions.borrow_and_update();
        let lookup = {
            let store = store.clone();
            let root = have_root.clone();
            tokio::task::spawn_blocking(move || store.outgoing(have_version, &root)).await
        };
        match lookup {
            Ok(Ok(Some(out))) => {
                have_version = out.head.version;
                have_root = out.head.root().to_bytes();
                have_count = out.head.entry_count;
                send_version(&frames, &store, &publishing, out, &publish_seconds).await?;
            }
            Ok(Ok(None)) if first && have_version > 0 => {
                have_count = store.head().map(|h| h.entry_count).unwrap_or_default();
                send_freshness(
                    &frames,
                    &store,
                    &publishing,
                    have_version,
                    &have_root,
                    have_count,
                )
                .await?;
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the published versions");
                let _ = frames
                    .send(Err(Status::internal(
                        "the primary cannot read its published versions",
                    )))
                    .await;
                return Err(Gone);
            }
            Err(e) => {
                tracing::error!(error = %e, "publishing task failed");
                return Err(Gone);
            }
        }
        first = false;
        tokio::select! {
            changed = versions.changed() => {
                if changed.is_err() {
                    return Err(Gone);
                }
            }
            _ = ticker.tick() => {
                if have_version > 0 {
                    send_freshness(&frames, &store, &publishing, have_version, &have_root, have_count).await?;
                }
            }
            _ = frames.closed() => return Err(Gone),
            _ = stopping.changed() => return Err(Gone),
        }
    }
}

/// Rows a listing returns when the request names no limit.
const DEFAULT_LIST_LIMIT: usize = 100;

/// The kinds of alert the follow-up raises (see `crate::store::Alert`), for checking a filter.
const ALERT_KINDS: &[&str] = &["second-enquiry", "refused", "enumeration"];

/// The rows a listing asked for; 0 asks for the default.
fn list_limit(requested: u32) -> usize {
    if requested == 0 {
        DEFAULT_LIST_LIMIT
    } else {
        requested as usize
    }
}

/// A time as the wire spells it: RFC 3339 in UTC, to the second.
fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// An alert as the wire carries it; the acknowledgement fields stay empty until one is made.
fn alert_to(alert: Alert) -> pb::Alert {
    let (acknowledged_by, acknowledged_at, acknowledgement_note) = match alert.acknowledged {
        Some(done) => (done.by, rfc3339(done.at), done.note),
        None => Default::default(),
    };
    pb::Alert {
        id: alert.id,
        kind: alert.kind,
        raised_at: rfc3339(alert.raised_at),
        references: alert.references,
        message: alert.message,
        acknowledged_by,
        acknowledged_at,
        acknowledgement_note,
    }
}

#[tonic::async_trait]
impl Replication for ReplicationService {
    type SubscribeStream = FrameStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let caller = require(
            &request,
            self.store.authority(),
            &[Role::Replica],
            "Subscribe",
        )?;
        let request = request.into_inner();
        tracing::info!(replica = %caller.label(), site = ?caller.site, from = request.have_version, "replica subscribed");
        let (frames, rx) = mpsc::channel(8);
        let feed = feed(
            self.store.clone(),
            self.publishing.clone(),
            request,
            frames,
            self.stopping.clone(),
            self.publish_seconds.clone(),
        );
        let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        // A finished feed stays in the set until joined: reap them so reconnects do not pile up.
        while feeds.try_join_next().is_some() {}
        feeds.spawn(async move {
            let _ = feed.await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn report_status(
        &self,
        request: Request<pb::ReplicaStatus>,
    ) -> Result<Response<pb::ReportStatusReply>, Status> {
        let caller = require(
            &request,
            self.store.authority(),
            &[Role::Replica],
            "ReportStatus",
        )?;
        let status = request.into_inner();
        let report = ReplicaReport {
            site: caller.site.clone().unwrap_or_else(|| caller.name.clone()),
            version: status.version,
            as_of: status.as_of,
            stale: status.stale,
            outbox_backlog: status.outbox_backlog,
            state_root: status.state_root,
            last_contact: self.store.clock().now(),
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.record_replica_report(&report))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(pb::ReportStatusReply {}))
    }

    async fn list_replicas(
        &self,
        request: Request<pb::ListReplicasRequest>,
    ) -> Result<Response<pb::ListReplicasReply>, Status> {
        require(
            &request,
            self.store.authority(),
            &[Role::Custodian, Role::Auditor],
            "ListReplicas",
        )?;
        let store = self.store.clone();
        let reports = tokio::task::spawn_blocking(move || store.replica_reports())
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(pb::ListReplicasReply {
            replicas: reports
                .into_iter()
                .map(|r| pb::ReplicaStatus {
                    site: r.site,
                    version: r.version,
                    as_of: r.as_of,
                    stale: r.stale,
                    outbox_backlog: r.outbox_backlog,
                    last_contact: rfc3339(r.last_contact),
                    state_root: r.state_root,
                })
                .collect(),
        }))
    }

    async fn report_enquiries(
        &self,
        request: Request<pb::ReportEnquiriesRequest>,
    ) -> Result<Response<pb::ReportEnquiriesReply>, Status> {
        let caller = require(
            &request,
            self.store.authority(),
            &[Role::Replica],
            "ReportEnquiries",
        )?;
        let site = caller.site.clone().unwrap_or_else(|| caller.name.clone());
        let received_at = self.store.clock().now();
        let reports = request
            .into_inner()
            .enquiries
            .into_iter()
            .map(|e| {
                if e.reference.trim().is_empty() {
                    return Err(Status::invalid_argument(
                        "every enquiry needs its reference",
                    ));
                }
                let record = serde_json::from_slice(&e.record).map_err(|err| {
                    Status::invalid_argument(format!(
                        "enquiry {}: the record is not JSON: {err}",
                        e.reference
                    ))
                })?;
                let alert = (!e.alert.trim().is_empty()).then(|| e.alert.trim().to_owned());
                Ok(ReceivedEnquiry {
                    reference: e.reference,
                    site: site.clone(),
                    state: e.state,
                    children: e.children,
                    received_at,
                    record,
                    alert,
                })
            })
            .collect::<Result<Vec<_>, Status>>()?;
        let store = self.store.clone();
        let actor = caller.label();
        let committed =
            tokio::task::spawn_blocking(move || store.receive_enquiries(&actor, reports))
                .await
                .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(pb::ReportEnquiriesReply { committed }))
    }

    async fn list_enquiries(
        &self,
        request: Request<pb::ListEnquiriesRequest>,
    ) -> Result<Response<pb::ListEnquiriesReply>, Status> {
        require(
            &request,
            self.store.authority(),
            &[Role::Custodian, Role::Auditor],
            "ListEnquiries",
        )?;
        let req = request.into_inner();
        let store = self.store.clone();
        let found = tokio::task::spawn_blocking(move || {
            let id = (!req.record_id.trim().is_empty()).then(|| req.record_id.trim().to_owned());
            store.enquiries(id.as_deref(), list_limit(req.limit))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(pb::ListEnquiriesReply {
            enquiries: found
                .into_iter()
                .map(|e| pb::ReceivedEnquiry {
                    reference: e.reference,
                    site: e.site,
                    state: e.state,
                    children: e.children,
                    received_at: rfc3339(e.received_at),
                    record: e.record.to_string(),
                    alert: e.alert.unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn list_contacts(
        &self,
        request: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsReply>, Status> {
        require(
            &request,
            self.store.authority(),
            &[Role::Custodian],
            "ListContacts",
        )?;
        let req = request.into_inner();
        let store = self.store.clone();
        let found = tokio::task::spawn_blocking(move || {
            let id = (!req.record_id.trim().is_empty()).then(|| req.record_id.trim().to_owned());
            store.contacts(id.as_deref(), list_limit(req.limit))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(pb::ListContactsReply {
            contacts: found
                .into_iter()
                .map(|c| pb::ContactRecord {
                    reference: c.reference,
                    at: rfc3339(c.at),
                    recorded_at: rfc3339(c.recorded_at),
                    site: c.site,
                    enquirer: c.enquirer,
                    reason: c.reason,
                    searched: c.searched,
                    record_id: c.record_id.unwrap_or_default(),
                    advice: c.advice,
                    subject: c.subject,
                })
                .collect(),
        }))
    }

    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsReply>, Status> {
        require(
            &request,
            self.store.authority(),
            &[Role::Custodian],
            "ListAlerts",
        )?;
        let req = request.into_inner();
        let kind = req.kind.trim();
        if !kind.is_empty() && !ALERT_KINDS.contains(&kind) {
            return Err(Status::invalid_argument(format!(
                "unknown alert kind {kind:?}: use {}, or none for all",
                ALERT_KINDS.join(", ")
            )));
        }
        let filter = AlertFilter {
            kind: (!kind.is_empty()).then(|| kind.to_owned()),
            unacknowledged: req.unacknowledged_only,
            limit: list_limit(req.limit),
        };
        let store = self.store.clone();
        let found = tokio::task::spawn_blocking(move || store.alerts(&filter))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(pb::ListAlertsReply {
            alerts: found.into_iter().map(alert_to).collect(),
        }))
    }

    async fn acknowledge_alert(
        &self,
        request: Request<pb::AcknowledgeAlertRequest>,
    ) -> Result<Response<pb::Alert>, Status> {
        let caller = require(
            &request,
            self.store.authority(),
            &[Role::Custodian],
            "AcknowledgeAlert",
        )?;
        let req = request.into_inner();
        let id = req.id.trim().to_owned();
        if id.is_empty() {
            return Err(Status::invalid_argument(
                "id of the alert is required, like refused:AE-20261122-000001; list them with `cpreg admin alerts`",
            ));
        }
        if req.note.trim().is_empty() {
            return Err(Status::invalid_argument(
                "a note saying what was done about the alert is required",
            ));
        }
        let store = self.store.clone();
        let actor = caller.label();
        let alert =
            tokio::task::spawn_blocking(move || store.acknowledge_alert(&actor, &id, &req.note))
                .await
                .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(alert_to(alert)))
    }
}
