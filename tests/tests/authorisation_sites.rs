//! Who may do what over the replication service at the primary and the lookup service at a site
//! replica: every RPC of both tried with every role's certificate, a terminal of another site,
//! and certificates the replica must not accept at all.

use std::time::{Duration, SystemTime};

use cpreg::pki::{DevCa, write_issued};
use cpreg::profile::Profile;
use cpreg_proto::pb;
use cpreg_proto::pb::lookup_client::LookupClient;
use cpreg_proto::pb::replication_client::ReplicationClient;
use cpreg_proto::role::Role;
use cpreg_tests::authorisation::judged;
use cpreg_tests::replica::{TestReplica, terminal_profile};
use cpreg_tests::site::{
    DEMO_EDT, ST_ELSEWHERE_AE, ae_terminal, child_query, lookup_site, registrar_lookup,
};
use cpreg_tests::{AUTHORITY, TestPrimary};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// The roles a client certificate of the authority's CA can carry.
const ROLES: [Role; 4] = [
    Role::Custodian,
    Role::Auditor,
    Role::Replica,
    Role::Terminal,
];

/// Every RPC of the replication service, with the roles meant to pass it. The lists of replicas
/// and of enquiries are read-only views the auditor shares (see `replication.proto`).
const REPLICATION_RPCS: &[(&str, &[Role])] = &[
    ("Subscribe", &[Role::Replica]),
    ("ReportStatus", &[Role::Replica]),
    ("ListReplicas", &[Role::Custodian, Role::Auditor]),
    ("ReportEnquiries", &[Role::Replica]),
    ("ListEnquiries", &[Role::Custodian, Role::Auditor]),
    ("ListContacts", &[Role::Custodian]),
    ("ListAlerts", &[Role::Custodian]),
    ("AcknowledgeAlert", &[Role::Custodian]),
];

/// Every RPC of the lookup service: only a terminal of the replica's own site passes.
const LOOKUP_RPCS: &[&str] = &["Lookup", "OpenEnquiry", "RecordCallback"];

/// Makes one call of replication `rpc`; only the status matters.
async fn call_replication(r: &mut ReplicationClient<Channel>, rpc: &str) -> Result<(), Status> {
    match rpc {
        // The feed never ends: being let in is the answer, the frames do not matter here.
        "Subscribe" => r.subscribe(pb::SubscribeRequest::default()).await.map(drop),
        "ReportStatus" => r
            .report_status(pb::ReplicaStatus::default())
            .await
            .map(drop),
        "ListReplicas" => r
            .list_replicas(pb::ListReplicasRequest::default())
            .await
            .map(drop),
        "ReportEnquiries" => r
            .report_enquiries(pb::ReportEnquiriesRequest::default())
            .await
            .map(drop),
        "ListEnquiries" => r
            .list_enquiries(pb::ListEnquiriesRequest::default())
            .await
            .map(drop),
        "ListContacts" => r
            .list_contacts(pb::ListContactsRequest::default())
            .await
            .map(drop),
        "ListAlerts" => r
            .list_alerts(pb::ListAlertsRequest::default())
            .await
            .map(drop),
        "AcknowledgeAlert" => r
            .acknowledge_alert(pb::AcknowledgeAlertRequest {
                id: "refused:AUTHZ-1".into(),
                note: "Seen".into(),
            })
            .await
            .map(drop),
        other => panic!("no call for {other}"),
    }
}

#[tokio::test]
async fn every_replication_rpc_is_refused_for_every_role_it_is_not_meant_for() {
    let primary = TestPrimary::start().await;
    let mut refusals = 0;
    for role in ROLES {
        let mut client = primary.profile(role).replication().await.expect("connect");
        for (rpc, allowed) in REPLICATION_RPCS {
            let result = call_replication(&mut client, rpc).await;
            if let Some(e) = judged(rpc, role, allowed.contains(&role), result) {
                assert!(
                    e.message().contains(rpc),
                    "the refusal names the RPC: {}",
                    e.message()
                );
                refusals += 1;
            }
        }
    }
    // The replica's three RPCs refused to the other three roles; the two shared views to the
    // replica and the terminal; the custodian's three follow-up RPCs to the other three roles.
    assert_eq!(refusals, 3 * 3 + 2 * 2 + 3 * 3);
}

/// A primary with one child on a plan and the directory, and a replica at `ae` serving lookups.
async fn site() -> (TestPrimary, TestReplica) {
    lookup_site("ae", &[ST_ELSEWHERE_AE, DEMO_EDT], |_, _| {}).await
}

fn replica_url(replica: &TestReplica) -> String {
    let addr = replica.replica.lookup_addr().expect("lookups served");
    format!("https://127.0.0.1:{}", addr.port())
}

/// A lookup client at the replica holding `profile`'s certificate, whatever its role.
async fn lookup_client(
    profile: &Profile,
    replica: &TestReplica,
) -> Result<LookupClient<Channel>, cpreg::profile::ProfileError> {
    Ok(LookupClient::new(
        profile.channel(&replica_url(replica)).await?,
    ))
}

/// A lookup the A&E registrar would make, for the child on the register.
fn a_lookup() -> pb::LookupRequest {
    registrar_lookup(child_query("Amelia", "Evans", "2019-04-23"))
}

/// Makes one call of lookup `rpc`; only the status matters.
async fn call_lookup(c: &mut LookupClient<Channel>, rpc: &str) -> Result<(), Status> {
    match rpc {
        "Lookup" => c.lookup(a_lookup()).await.map(drop),
        "OpenEnquiry" => c
            .open_enquiry(pb::OpenEnquiryRequest::default())
            .await
            .map(drop),
        "RecordCallback" => c
            .record_callback(pb::RecordCallbackRequest {
                enquiry_reference: "AE-20261122-999999".into(),
                note: "Called back".into(),
                ..Default::default()
            })
            .await
            .map(drop),
        other => panic!("no call for {other}"),
    }
}

#[tokio::test]
async fn every_lookup_rpc_is_refused_for_all_but_a_terminal_of_the_site() {
    let (primary, replica) = site().await;
    let addr = replica.replica.lookup_addr().expect("lookups served");
    let mut holders: Vec<(String, Profile, bool)> = [Role::Custodian, Role::Auditor, Role::Replica]
        .into_iter()
        .map(|role| (role.to_string(), primary.profile(role), false))
        .collect();
    holders.push((
        "terminal of site ae".into(),
        ae_terminal(&primary, &replica),
        true,
    ));
    holders.push((
        "terminal of site edt".into(),
        terminal_profile(&primary.pki, "EDT duty desk", "edt", "demo-edt", addr),
        false,
    ));
    let mut refusals = 0;
    for (holder, profile, allowed) in &holders {
        let mut client = lookup_client(profile, &replica).await.expect("connect");
        for rpc in LOOKUP_RPCS {
            let result = call_lookup(&mut client, rpc).await;
            if judged(rpc, format!("the {holder}"), *allowed, result).is_some() {
                refusals += 1;
            }
        }
    }
    // Three RPCs refused to the custodian, the auditor, the replica and the other site's terminal.
    assert_eq!(refusals, 3 * 4);
}

/// The A&E terminal's profile (trusting the authority's CA, dialling the replica) holding a
/// certificate from `ca` instead, valid over `valid` or for 30 days.
fn foreign_terminal(
    primary: &TestPrimary,
    replica: &TestReplica,
    ca: &DevCa,
    name: &str,
    valid: Option<(SystemTime, SystemTime)>,
) -> Profile {
    let genuine = ae_terminal(primary, replica);
    let dir = primary.pki.path().join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    for file in ["ca.pem", "profile.toml"] {
        std::fs::copy(genuine.dir.join(file), dir.join(file)).expect("copy");
    }
    let issued = match valid {
        Some((from, to)) => ca.issue_client_valid(Role::Terminal, "Intruder", Some("ae"), from, to),
        None => ca.issue_terminal("Intruder", "ae", "st-elsewhere-ae", 30),
    }
    .expect("issue");
    write_issued(&issued, &dir.join("cert.pem"), &dir.join("key.pem")).expect("write");
    Profile::load(Some(&dir)).expect("profile")
}

/// The lookup the genuine terminal is answered is refused, at TLS, with `profile`'s certificate.
async fn refused_at_the_door(primary: &TestPrimary, replica: &TestReplica, profile: &Profile) {
    let mut genuine = lookup_client(&ae_terminal(primary, replica), replica)
        .await
        .expect("connect");
    genuine
        .lookup(a_lookup())
        .await
        .expect("the genuine terminal is answered");
    let result = match lookup_client(profile, replica).await {
        Err(_) => return,
        Ok(mut c) => c.lookup(a_lookup()).await,
    };
    let e = result.expect_err("a certificate the replica does not accept");
    // Turned away by TLS, before the service reads the certificate's names.
    assert_ne!(
        e.code(),
        Code::PermissionDenied,
        "the certificate got past TLS: {}",
        e.message()
    );
}

#[tokio::test]
async fn a_terminal_certificate_from_another_ca_is_refused_by_the_replica() {
    let (primary, replica) = site().await;
    let other = DevCa::create(AUTHORITY).expect("another CA with the same name");
    let intruder = foreign_terminal(&primary, &replica, &other, "intruder", None);
    refused_at_the_door(&primary, &replica, &intruder).await;
}

#[tokio::test]
async fn an_expired_terminal_certificate_is_refused_by_the_replica() {
    let (primary, replica) = site().await;
    let now = SystemTime::now();
    let expired = Some((
        now - Duration::from_secs(86_400 * 10),
        now - Duration::from_secs(86_400),
    ));
    let ca = &primary.pki.ca;
    let expired = foreign_terminal(&primary, &replica, ca, "expired", expired);
    refused_at_the_door(&primary, &replica, &expired).await;
}
