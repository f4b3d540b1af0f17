//! What an operator's monitoring sees of running servers: Prometheus metrics scraped over plain
//! HTTP from the `[metrics]` listener, gRPC health and reflection over the same mutual TLS as
//! everything else. A primary and an A&E replica run with metrics on; a terminal makes one lookup
//! that finds a child and one that is refused; the figures must say exactly that.

use std::collections::BTreeMap;
use std::time::Duration;

use cpreg_primary::config::{MetricsConfig, Notifications, WebhookConfig};
use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_tests::replica::{TestReplica, authority_entry, replica_config};
use cpreg_tests::site::{
    ST_ELSEWHERE_AE, ae_terminal, amelia_on_a_plan, child_query, lookup_replica, registrar_lookup,
};
use cpreg_tests::{AUTHORITY, TestPki, TestPrimary, free_loopback_addr, now};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// One series of a scrape: its labels and value.
#[derive(Debug)]
struct Sample {
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Scrapes `http://addr/metrics` as Prometheus would, and reads the text format.
async fn scrape(addr: std::net::SocketAddr) -> BTreeMap<String, Vec<Sample>> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the metrics listener accepts");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: prometheus\r\nConnection: close\r\n\r\n")
        .await
        .expect("request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response read");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers and body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4")
    );
    let mut series: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name_and_labels, value) = line.rsplit_once(' ').expect("a value");
        let (name, labels) = match name_and_labels.split_once('{') {
            Some((name, rest)) => {
                let labels = rest
                    .trim_end_matches('}')
                    .split("\",")
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').expect("label=value");
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name, labels)
            }
            None => (name_and_labels, BTreeMap::new()),
        };
        series.entry(name.to_owned()).or_default().push(Sample {
            labels,
            value: value.parse().expect("a number"),
        });
    }
    series
}

/// The value of `name` with (at least) these labels, if the scrape has it.
fn value(
    scraped: &BTreeMap<String, Vec<Sample>>,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    scraped.get(name)?.iter().find_map(|s| {
        labels
            .iter()
            .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            .then_some(s.value)
    })
}

fn must(scraped: &BTreeMap<String, Vec<Sample>>, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(scraped, name, labels).unwrap_or_else(|| {
        panic!(
            "no {name} {labels:?} in the scrape: {:?}",
            scraped.get(name)
        )
    })
}

async fn serving(channel: tonic::transport::Channel, service: &str) -> ServingStatus {
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("health of {service:?}: {e}"))
        .into_inner()
        .status;
    ServingStatus::try_from(status).expect("a known status")
}

async fn listed_services(channel: tonic::transport::Channel) -> Vec<String> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection answers")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("a reflection message")
        .expect("one answer");
    match answer.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
            names.sort();
            names
        }
        other => panic!("not a list of services: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_health_and_reflection_describe_running_servers() {
    // A webhook nobody listens on: every delivery attempt fails and is counted.
    let dead_webhook = free_loopback_addr();
    let primary_metrics = free_loopback_addr();
    let primary = TestPrimary::start_configured(
        TestPki::new(),
        "127.0.0.1:0".parse().expect("addr"),
        now(),
        |config| {
            config.metrics = Some(MetricsConfig {
                listen: primary_metrics,
            });
            config.notifications = Some(Notifications {
                duty_inbox: "duty@test-borough.example".into(),
                retry_base_seconds: 0.1,
                retry_cap_seconds: 0.5,
                webhook: Some(WebhookConfig {
                    url: format!("http://{dead_webhook}/hook"),
                    ca_file: None,
                    allow_http: true,
                    timeout_seconds: 2,
                }),
                smtp: None,
            });
        },
    )
    .await;
    amelia_on_a_plan(&primary, &[ST_ELSEWHERE_AE]).await;
    let (head, _, entries) = primary.head().await;
    let replica = lookup_replica(&primary, "ae", |_, config| {
        config.metrics = Some(cpreg_replica::config::MetricsConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
        });
    })
    .await;
    let replica_metrics = replica.replica.metrics_addr().expect("metrics served");
    let lookup_addr = replica.replica.lookup_addr().expect("lookups served");
    let terminal = ae_terminal(&primary, &replica);

    let mut lookups = terminal.lookup().await.expect("connect");
    let ask = |given: &str, dob: &str| registrar_lookup(child_query(given, "Evans", dob));
    let answer = lookups
        .lookup(ask("Amelia", "2019-04-23"))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::Match));
    let refused = lookups.lookup(ask("Amelia", "")).await;
    assert!(refused.is_err(), "too little to search: {refused:?}");

    // The replica: what it holds, how it got it, and what it was asked.
    let scraped = scrape(replica_metrics).await;
    let authority = [("authority", AUTHORITY)];
    assert_eq!(
        must(&scraped, "cpreg_replica_snapshot_version", &authority),
        head as f64
    );
    assert_eq!(
        must(&scraped, "cpreg_replica_snapshot_age_seconds", &authority),
        0.0
    );
    assert_eq!(must(&scraped, "cpreg_replica_stale", &authority), 0.0);
    assert_eq!(
        must(&scraped, "cpreg_replica_snapshot_entries", &authority),
        entries as f64
    );
    assert_eq!(
        must(&scraped, "cpreg_replica_refused_since_start", &authority),
        0.0
    );
    assert!(must(&scraped, "cpreg_replica_apply_seconds_count", &authority) >= 1.0);
    assert_eq!(
        must(&scraped, "cpreg_replica_enquiries", &[("outcome", "match")]),
        1.0
    );
    assert_eq!(
        must(
            &scraped,
            "cpreg_replica_enquiries",
            &[("outcome", "refused")]
        ),
        1.0
    );
    assert_eq!(
        must(
            &scraped,
            "cpreg_replica_enquiries",
            &[("outcome", "no_record")]
        ),
        0.0
    );
    assert!(scraped.contains_key("cpreg_replica_enquiry_backlog"));
    assert!(scraped.contains_key("cpreg_replica_connected"));

    // The primary: once the reporter has delivered both enquiries and the webhook has failed.
    let mut scraped = scrape(primary_metrics).await;
    for _ in 0..200 {
        let delivered = value(&scraped, "cpreg_primary_enquiries", &[("outcome", "match")])
            == Some(1.0)
            && value(&scraped, "cpreg_primary_enquiries", &[("state", "refused")]) == Some(1.0);
        let failed = value(
            &scraped,
            "cpreg_primary_notification_failures_total",
            &[("sink", "webhook")],
        )
        .is_some_and(|n| n >= 1.0);
        // The enquiry is published with the child, so the version moves on; the replica
        // takes it and reports it.
        let published = value(&scraped, "cpreg_primary_published_version", &[]);
        let reported = published.is_some_and(|v| v > head as f64)
            && value(&scraped, "cpreg_primary_replica_version", &[("site", "ae")]) == published;
        if delivered && failed && reported {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        scraped = scrape(primary_metrics).await;
    }
    let published = must(&scraped, "cpreg_primary_published_version", &[]);
    assert!(
        published > head as f64,
        "the enquiry published with the child"
    );
    assert_eq!(
        must(&scraped, "cpreg_primary_published_entries", &[]),
        entries as f64
    );
    assert_eq!(
        must(
            &scraped,
            "cpreg_primary_enquiries",
            &[("state", "answered"), ("outcome", "match")]
        ),
        1.0
    );
    assert_eq!(
        must(&scraped, "cpreg_primary_enquiries", &[("state", "refused")]),
        1.0
    );
    assert!(
        must(
            &scraped,
            "cpreg_primary_notification_failures_total",
            &[("sink", "webhook")]
        ) >= 1.0
    );
    // The lead social worker's notice waits for the webhook.
    assert!(must(&scraped, "cpreg_primary_notification_backlog", &[]) >= 1.0);
    assert!(
        must(
            &scraped,
            "cpreg_primary_publish_seconds_count",
            &[("kind", "full")]
        ) >= 1.0
    );
    assert_eq!(
        must(&scraped, "cpreg_primary_replica_version", &[("site", "ae")]),
        published
    );
    assert_eq!(
        must(&scraped, "cpreg_primary_replica_stale", &[("site", "ae")]),
        0.0
    );
    for kind in ["second-enquiry", "refused", "enumeration"] {
        assert!(
            value(&scraped, "cpreg_primary_open_alerts", &[("kind", kind)]).is_some(),
            "{kind}"
        );
    }

    // Health and reflection, over mutual TLS with the holders' own certificates.
    let custodian = primary.profile(Role::Custodian);
    let to_primary = custodian
        .channel(&primary.url)
        .await
        .expect("primary channel");
    let to_replica = terminal
        .channel(&format!("https://127.0.0.1:{}", lookup_addr.port()))
        .await
        .expect("replica channel");
    assert_eq!(
        serving(to_primary.clone(), "").await,
        ServingStatus::Serving
    );
    assert_eq!(
        serving(to_primary.clone(), "cpreg.v1.Register").await,
        ServingStatus::Serving
    );
    assert_eq!(
        serving(to_primary.clone(), "cpreg.v1.Replication").await,
        ServingStatus::Serving
    );
    assert_eq!(
        serving(to_replica.clone(), "").await,
        ServingStatus::Serving
    );
    assert_eq!(
        serving(to_replica.clone(), "cpreg.v1.Lookup").await,
        ServingStatus::Serving
    );
    assert_eq!(
        listed_services(to_primary).await,
        [
            "cpreg.v1.Register",
            "cpreg.v1.Replication",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ]
    );
    assert_eq!(
        listed_services(to_replica).await,
        [
            "cpreg.v1.Lookup",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ]
    );

    // Stopped, neither listener answers any more.
    replica.replica.stop().await;
    primary.stop().await;
    assert!(
        tokio::net::TcpStream::connect(replica_metrics)
            .await
            .is_err()
    );
    assert!(
        tokio::net::TcpStream::connect(primary_metrics)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_a_metrics_section_opens_no_metrics_listener() {
    let primary = TestPrimary::start().await;
    assert!(
        primary
            .primary
            .as_ref()
            .expect("running")
            .config
            .metrics
            .is_none()
    );
    let config = replica_config(
        &primary.pki,
        "edt",
        vec![authority_entry(&primary.pki, "edt", &primary.url)],
    );
    let replica = TestReplica::start_with(config).await;
    assert_eq!(replica.replica.metrics_addr(), None);
    replica.replica.stop().await;
    primary.stop().await;
}
