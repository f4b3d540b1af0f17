//! The link over real mutual TLS, against a scripted stand-in for a primary's Replication
//! service: subscribe from the version held, apply, report, drop and redial on a refusal, keep
//! serving when the primary is gone, and stop promptly. (End-to-end tests against the real
//! primary live in `tests/`.)

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::DateTime;
use cpreg_proto::pb;
use cpreg_proto::pb::replication_server::{Replication, ReplicationServer};
use futures::{Stream, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::sync::{oneshot, watch};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use super::{FIRST_BACKOFF, MAX_BACKOFF, backoff_after, jittered};
use crate::clock::FixedClock;
use crate::config::{AuthorityConfig, Config, TlsConfig};
use crate::store::{Enquiry, EnquiryPath, EnquiryState, Store};
use crate::test_primary::{T0, TestPrimary};
use crate::{AuthorityStatus, Replica};

/// What one subscription is answered with: these frames, then the stream ends or stays open.
struct Script {
    frames: Vec<pb::SnapshotFrame>,
    then_end: bool,
}

/// A primary's Replication service that plays scripts and records what replicas send.
#[derive(Clone)]
struct ScriptedPrimary {
    scripts: Arc<Mutex<VecDeque<Script>>>,
    /// Set to end every open subscription, as a primary shutting down does.
    going_away: Arc<watch::Sender<bool>>,
    subscriptions: Arc<Mutex<Vec<pb::SubscribeRequest>>>,
    reports: Arc<Mutex<Vec<pb::ReplicaStatus>>>,
    /// Set to refuse every enquiry reported, as a primary that cannot commit them does.
    refuse_enquiries: bool,
}

impl ScriptedPrimary {
    fn new(scripts: impl IntoIterator<Item = Script>) -> Self {
        ScriptedPrimary {
            scripts: Arc::new(Mutex::new(scripts.into_iter().collect())),
            going_away: Arc::new(watch::channel(false).0),
            subscriptions: Arc::default(),
            reports: Arc::default(),
            refuse_enquiries: false,
        }
    }
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<pb::SnapshotFrame, Status>> + Send>>;

#[tonic::async_trait]
impl Replication for ScriptedPrimary {
    type SubscribeStream = FrameStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<FrameStream>, Status> {
        self.subscriptions
            .lock()
            .expect("lock")
            .push(request.into_inner());
        // With no script left, the subscription stays open and quiet.
        let script = self.scripts.lock().expect("lock").pop_front();
        let script = script.unwrap_or(Script {
            frames: Vec::new(),
            then_end: false,
        });
        let frames = futures::stream::iter(script.frames.into_iter().map(Ok));
        let stream: FrameStream = if script.then_end {
            Box::pin(frames)
        } else {
            let mut going_away = self.going_away.subscribe();
            let end = futures::stream::once(async move {
                let _ = going_away.wait_for(|&gone| gone).await;
                Err(Status::unavailable("the primary is going away"))
            });
            Box::pin(frames.chain(end))
        };
        Ok(Response::new(stream))
    }

    async fn report_status(
        &self,
        request: Request<pb::ReplicaStatus>,
    ) -> Result<Response<pb::ReportStatusReply>, Status> {
        self.reports
            .lock()
            .expect("lock")
            .push(request.into_inner());
        Ok(Response::new(pb::ReportStatusReply {}))
    }

    async fn list_replicas(
        &self,
        _: Request<pb::ListReplicasRequest>,
    ) -> Result<Response<pb::ListReplicasReply>, Status> {
        Ok(Response::new(pb::ListReplicasReply::default()))
    }

    async fn report_enquiries(
        &self,
        request: Request<pb::ReportEnquiriesRequest>,
    ) -> Result<Response<pb::ReportEnquiriesReply>, Status> {
        if self.refuse_enquiries {
            return Err(Status::unavailable("the primary cannot take enquiries now"));
        }
        let committed = request
            .into_inner()
            .enquiries
            .into_iter()
            .map(|e| e.reference)
            .collect();
        Ok(Response::new(pb::ReportEnquiriesReply { committed }))
    }

    async fn list_enquiries(
        &self,
        _: Request<pb::ListEnquiriesRequest>,
    ) -> Result<Response<pb::ListEnquiriesReply>, Status> {
        Ok(Response::new(pb::ListEnquiriesReply::default()))
    }

    async fn list_contacts(
        &self,
        _: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsReply>, Status> {
        Ok(Response::new(pb::ListContactsReply::default()))
    }

    async fn list_alerts(
        &self,
        _: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsReply>, Status> {
        Ok(Response::new(pb::ListAlertsReply::default()))
    }

    async fn acknowledge_alert(
        &self,
        _: Request<pb::AcknowledgeAlertRequest>,
    ) -> Result<Response<pb::Alert>, Status> {
        Err(Status::unimplemented("a scripted primary has no alerts"))
    }
}

/// A CA, the primary's server certificate (for "localhost") and a replica's client certificate,
/// written under `dir`.
fn pki(dir: &std::path::Path) -> (Identity, Certificate, TlsConfig) {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::default();
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_pem = ca.self_signed(&ca_key).expect("CA").pem();
    let issuer = Issuer::from_params(&ca, &ca_key);
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
    let server_pem = server
        .signed_by(&server_key, &issuer)
        .expect("server cert")
        .pem();
    let client_key = KeyPair::generate().expect("client key");
    let mut client = CertificateParams::default();
    client
        .distinguished_name
        .push(DnType::CommonName, "ae replica");
    client
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "replica");
    client
        .distinguished_name
        .push(DnType::OrganizationName, "lambeth");
    client.distinguished_name.push(DnType::LocalityName, "ae");
    let client_pem = client
        .signed_by(&client_key, &issuer)
        .expect("client cert")
        .pem();
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write PEM");
        path
    };
    let tls = TlsConfig {
        cert: write("cert.pem", &client_pem),
        key: write("key.pem", &client_key.serialize_pem()),
        ca: write("ca.pem", &ca_pem),
    };
    (
        Identity::from_pem(server_pem, server_key.serialize_pem()),
        Certificate::from_pem(ca_pem),
        tls,
    )
}

/// Serves `primary` over mutual TLS on a free loopback port until the sender is used or dropped.
async fn serve(
    primary: ScriptedPrimary,
    identity: Identity,
    ca: Certificate,
) -> (String, oneshot::Sender<()>) {
    crate::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("https://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let tls = ServerTlsConfig::new().identity(identity).client_ca_root(ca);
    let mut server = Server::builder().tls_config(tls).expect("server TLS");
    tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = server
            .add_service(ReplicationServer::new(primary))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
    });
    (address, stop)
}

fn config(dir: &std::path::Path, primary: String, tls: TlsConfig) -> Config {
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    Config {
        site: "ae".into(),
        data_dir: dir.join("data"),
        staleness_threshold_hours: 24,
        max_snapshot_bytes: 1 << 20,
        freshness_check_seconds: None,
        authorities: vec![AuthorityConfig {
            id: "lambeth".into(),
            primary,
            server_name: "localhost".into(),
            public_keys: vec![hex::encode(key.as_bytes())],
            tls,
        }],
        lookups: None,
        delivered_retention_days: 30,
        console: None,
        metrics: None,
        log_format: Default::default(),
    }
}

/// Waits up to ten seconds for the first authority's status to satisfy `done`.
async fn until(replica: &Replica, done: impl Fn(&AuthorityStatus) -> bool) -> AuthorityStatus {
    for _ in 0..500 {
        let status = replica.status().remove(0);
        if done(&status) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("status never got there: {:?}", replica.status());
}

#[tokio::test]
async fn the_replica_follows_its_primary_redials_after_a_refusal_and_serves_when_cut_off() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (identity, ca, tls) = pki(dir.path());
    let mut register = TestPrimary::new("lambeth");
    register.add_children(3);
    let v1 = register.full();
    let v2 = register.delta(&[("child/C000001", b"moved to SE11")]);
    let mut forged = register.delta(&[("child/C000001", b"forged")]);
    forged.signed.signature[0] ^= 1;
    let primary = ScriptedPrimary::new([
        Script {
            frames: v1.frames(5),
            then_end: true,
        },
        Script {
            frames: [v2.frames(5), forged.frames(5)].concat(),
            then_end: false,
        },
    ]);
    let (address, stop_primary) = serve(primary.clone(), identity, ca).await;
    let clock = FixedClock::new(DateTime::from_timestamp(T0, 0).expect("time"));
    let replica = Replica::start(config(dir.path(), address, tls), Arc::new(clock))
        .await
        .expect("start");

    let status = until(&replica, |s| s.rejected == 1 && s.connected).await;
    assert_eq!(
        (status.version, status.entry_count, status.stale),
        (2, 3, false)
    );
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("signature")),
        "{status:?}"
    );
    let store = replica.store();
    assert_eq!(
        store.get("lambeth", "child/C000001").expect("get"),
        Some(b"moved to SE11".to_vec())
    );
    // Each subscription resumed from the version held then.
    let held: Vec<u64> = primary
        .subscriptions
        .lock()
        .expect("lock")
        .iter()
        .map(|s| s.have_version)
        .collect();
    assert_eq!(held, [0, 1, 2]);
    let reports = primary.reports.lock().expect("lock").clone();
    assert!(
        reports.iter().any(|r| r.version == 2
            && r.as_of == T0
            && r.state_root == status.state_root
            && !r.stale)
    );

    // The primary goes away: the copy held is still served.
    let _ = stop_primary.send(());
    let _ = primary.going_away.send(true);
    let status = until(&replica, |s| !s.connected).await;
    assert_eq!(status.version, 2);
    assert_eq!(
        store.get("lambeth", "child/C000001").expect("get"),
        Some(b"moved to SE11".to_vec())
    );
    tokio::time::timeout(Duration::from_secs(5), replica.stop())
        .await
        .expect("stops promptly");
}

#[tokio::test]
async fn the_replica_tells_its_primary_how_many_enquiries_wait_in_its_outbox() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (identity, ca, tls) = pki(dir.path());
    let mut register = TestPrimary::new("lambeth");
    register.add_children(1);
    let primary = ScriptedPrimary {
        refuse_enquiries: true,
        ..ScriptedPrimary::new([Script {
            frames: register.full().frames(5),
            then_end: false,
        }])
    };
    let (address, _stop_primary) = serve(primary.clone(), identity, ca).await;
    let config = config(dir.path(), address, tls);
    let at = DateTime::from_timestamp(T0, 0).expect("time");
    {
        // Two refused lookups recorded before the replica starts; the primary will not take them.
        std::fs::create_dir_all(&config.data_dir).expect("data folder");
        let store = Store::open(&config.database_path()).expect("store");
        let refused = Enquiry {
            reference: String::new(),
            at,
            site: "ae".into(),
            path: EnquiryPath::Terminal {
                terminal: "A&E workstation 1".into(),
                organisation: "st-elsewhere-ae".into(),
                operator: "Dr A. Patel".into(),
                operator_role: "ED registrar".into(),
            },
            reason: "Unexplained bruising".into(),
            searched: serde_json::json!({ "surname": "Evans" }),
            query: String::new(),
            state: EnquiryState::Refused {
                why: "missing the date of birth".into(),
            },
            alert: None,
            history: Vec::new(),
        };
        store
            .record_enquiries(vec![refused.clone(), refused])
            .expect("recorded");
    }
    let clock = FixedClock::new(at);
    let replica = Replica::start(config, Arc::new(clock))
        .await
        .expect("start");

    until(&replica, |s| s.version == 1).await;
    let mut backlogs = Vec::new();
    for _ in 0..500 {
        backlogs = primary
            .reports
            .lock()
            .expect("lock")
            .iter()
            .map(|r| r.outbox_backlog)
            .collect();
        if backlogs.contains(&2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        backlogs.contains(&2),
        "the reports carry the outbox backlog: {backlogs:?}"
    );
    assert_eq!(replica.store().outbox_backlog().expect("backlog"), 2);
    let _ = primary.going_away.send(true);
    tokio::time::timeout(Duration::from_secs(5), replica.stop())
        .await
        .expect("stops promptly");
}

#[tokio::test]
async fn a_replica_cut_off_from_the_start_still_starts_and_says_it_holds_nothing() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (_, _, tls) = pki(dir.path());
    // A port that was free a moment ago: nothing listens there.
    let address = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        format!("https://{}", listener.local_addr().expect("address"))
    };
    let clock = FixedClock::new(DateTime::from_timestamp(T0, 0).expect("time"));
    let replica = Replica::start(config(dir.path(), address, tls), Arc::new(clock))
        .await
        .expect("start");
    let status = until(&replica, |s| s.last_error.is_some()).await;
    assert_eq!(
        (
            status.version,
            status.stale,
            status.connected,
            status.rejected
        ),
        (0, true, false, 0)
    );
    assert!(status.as_of.is_none());
    tokio::time::timeout(Duration::from_secs(5), replica.stop())
        .await
        .expect("stops promptly");
}

#[tokio::test]
async fn a_missing_certificate_file_stops_the_replica_at_start() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let (_, _, mut tls) = pki(dir.path());
    tls.cert = dir.path().join("absent.pem");
    let clock = FixedClock::new(DateTime::from_timestamp(T0, 0).expect("time"));
    let config = config(dir.path(), "https://127.0.0.1:1".into(), tls);
    let error = Replica::start(config, Arc::new(clock))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("absent.pem"), "{error}");
}

#[test]
fn jitter_stays_within_half_and_all_of_the_backoff() {
    for ms in [100, 200, 30_000] {
        let backoff = Duration::from_millis(ms);
        let delay = jittered(backoff);
        assert!(
            delay >= backoff / 2 && delay <= backoff,
            "{delay:?} for {backoff:?}"
        );
    }
}

#[test]
fn after_primary_restarts_on_a_quiet_register_the_replica_redials_at_once_not_after_the_longest_wait()
 {
    // Sessions that failed at once back off, up to the longest wait...
    let mut backoff = FIRST_BACKOFF;
    for _ in 0..12 {
        backoff =
            (backoff_after(backoff, false, false, Duration::from_millis(5)) * 2).min(MAX_BACKOFF);
    }
    assert_eq!(backoff, MAX_BACKOFF);
    // ...but a session that was up for a minute with nothing to apply was a working link: its
    // loss (a restart of the primary) is redialled after the first, short wait.
    assert_eq!(
        backoff_after(backoff, false, false, Duration::from_secs(60)),
        FIRST_BACKOFF
    );
    assert_eq!(
        backoff_after(backoff, true, false, Duration::from_millis(5)),
        FIRST_BACKOFF
    );

    // A session that ended on a refused frame was no working link however long it lasted (a
    // large snapshot refused at the end): the backoff goes on growing.
    assert_eq!(
        backoff_after(MAX_BACKOFF, false, true, Duration::from_secs(60)),
        MAX_BACKOFF
    );
}
