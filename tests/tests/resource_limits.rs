//! What a client holding a valid certificate, or none, can make the servers hold: a message too
//! big, a connection that says nothing, more calls than a connection may carry, a call that
//! stops halfway, a peer that stops answering pings, a browser that sends its request a byte at
//! a time. Each is cut off at a stated limit (`cpreg_proto::limits`, and the console's own), with
//! an error that names it where the protocol lets one through, and the servers go on answering
//! everyone else.
//!
//! Some of these wait for a limit to run out (10 to 30 seconds): the limits are the servers'
//! own, not shortened for the tests.

#[path = "resource_limits/wire.rs"]
mod wire;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cpreg::pki::Issued;
use cpreg_proto::limits::{
    LOOKUPS, PRIMARY, REGISTER_MESSAGE_BYTES, REPLICATION_REQUEST_BYTES, SMALL_REQUEST_BYTES,
};
use cpreg_proto::pb;
use cpreg_proto::pb::register_client::RegisterClient;
use cpreg_proto::role::Role;
use cpreg_tests::replica::{TestReplica, console_config};
use cpreg_tests::site::{ST_ELSEWHERE_AE, ae_terminal, child_query, lookup_site, registrar_lookup};
use cpreg_tests::{PrimaryProcess, TestPki, TestPrimary};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;
use wire::{closed_within, percent_decoded, tls_client, tls_connect};

/// How long past a limit a test waits before calling it not enforced: the machine may be busy.
const SLACK: Duration = Duration::from_secs(5);

/// A primary with Amelia Evans on a plan and the directory, and a replica at "ae" serving
/// lookups (and the duty console, if `console`), holding the primary's newest version.
async fn site(console: bool) -> (TestPrimary, TestReplica) {
    lookup_site("ae", &[ST_ELSEWHERE_AE], |pki, config| {
        if console {
            config.console = Some(console_config(pki, "ae", "st-elsewhere-ae"));
        }
    })
    .await
}

fn lookup_addr(replica: &TestReplica) -> SocketAddr {
    replica.replica.lookup_addr().expect("lookups served")
}

/// The primary's address from its URL (`https://127.0.0.1:PORT`).
fn primary_addr(url: &str) -> SocketAddr {
    url.trim_start_matches("https://")
        .parse()
        .expect("primary URL holds an address")
}

fn lookup_of_amelia(reason: String) -> pb::LookupRequest {
    pb::LookupRequest {
        reason,
        ..registrar_lookup(child_query("Amelia", "Evans", "2019-04-23"))
    }
}

/// An ordinary lookup, which must still be answered whatever else is going on.
async fn ordinary_lookup(terminal: &cpreg::profile::Profile) -> pb::LookupAnswer {
    let mut client = terminal.lookup().await.expect("connect");
    tokio::time::timeout(
        Duration::from_secs(10),
        client.lookup(lookup_of_amelia("Unexplained bruising".into())),
    )
    .await
    .expect("an ordinary lookup is answered promptly")
    .expect("an ordinary lookup is answered")
    .into_inner()
}

/// A terminal's certificate, as issued to an A&E workstation.
fn terminal_certificate(pki: &TestPki) -> Issued {
    pki.ca
        .issue_terminal("Workstation under test", "ae", "st-elsewhere-ae", 1)
        .expect("issue")
}

fn custodian_certificate(pki: &TestPki) -> Issued {
    pki.ca
        .issue_client(Role::Custodian, "Custodian under test", None, 1)
        .expect("issue")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_sending_an_oversize_lookup_is_refused_naming_the_limit_and_nothing_is_recorded()
{
    let (primary, replica) = site(false).await;
    let terminal = ae_terminal(&primary, &replica);
    let store = replica.replica.store();
    let recorded = store.enquiries_recorded().expect("count");
    let mut client = terminal.lookup().await.expect("connect");
    let refused = client
        .lookup(lookup_of_amelia("x".repeat(SMALL_REQUEST_BYTES + 1)))
        .await
        .expect_err("an oversize lookup is refused");
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(
        refused
            .message()
            .contains(&format!("the limit is: {SMALL_REQUEST_BYTES} bytes")),
        "the refusal names the limit: {refused:?}"
    );
    assert_eq!(
        store.enquiries_recorded().expect("count"),
        recorded,
        "an oversize lookup leaves nothing on record"
    );
    let answer = ordinary_lookup(&terminal).await;
    assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::Match));
    assert_eq!(store.enquiries_recorded().expect("count"), recorded + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_certificate_sending_an_oversize_enquiry_batch_is_refused_and_nothing_is_recorded()
 {
    let primary = TestPrimary::start().await;
    let mut replica = primary
        .profile(Role::Replica)
        .replication()
        .await
        .expect("connect");
    // A well-formed record, a little over the limit: the primary would take it if it read it.
    let padding = "x".repeat(REPLICATION_REQUEST_BYTES);
    let refused = replica
        .report_enquiries(pb::ReportEnquiriesRequest {
            enquiries: vec![pb::EnquiryReport {
                reference: "AE-OVERSIZE-1".into(),
                record: serde_json::to_vec(&serde_json::json!({ "padding": padding }))
                    .expect("JSON"),
                state: "answered".into(),
                children: Vec::new(),
                alert: String::new(),
            }],
        })
        .await
        .expect_err("an oversize batch is refused");
    assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
    assert!(
        refused
            .message()
            .contains(&format!("the limit is: {REPLICATION_REQUEST_BYTES} bytes")),
        "the refusal names the limit: {refused:?}"
    );
    let received = primary
        .profile(Role::Custodian)
        .replication()
        .await
        .expect("connect")
        .list_enquiries(pb::ListEnquiriesRequest::default())
        .await
        .expect("enquiries listed")
        .into_inner();
    assert!(
        received.enquiries.is_empty(),
        "nothing of an oversize batch is recorded: {:?}",
        received.enquiries
    );
}

/// How long `addr` holds a connection that sends nothing, and one that sends the start of a TLS
/// record announcing 16 KiB and then one byte a second; `None` for one still open after `limit`
/// and [`SLACK`].
async fn held_without_a_handshake(
    addr: SocketAddr,
    limit: Duration,
) -> [(&'static str, Option<Duration>); 2] {
    let silent = async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        closed_within(&mut tcp, limit + SLACK).await
    };
    let trickling = async {
        let mut tcp = TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(&[0x16, 0x03, 0x01, 0x40, 0x00])
            .await
            .expect("send");
        let started = Instant::now();
        let mut buf = [0u8; 64];
        while started.elapsed() < limit + SLACK {
            if tcp.write_all(&[0x01]).await.is_err() {
                return Some(started.elapsed());
            }
            match tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                _ => {}
            }
        }
        None
    };
    let (silent, trickling) = tokio::join!(silent, trickling);
    [("silent", silent), ("trickling", trickling)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_opens_a_connection_and_sends_nothing_is_dropped() {
    let (primary, replica) = site(false).await;
    let (at_primary, at_lookups) = tokio::join!(
        held_without_a_handshake(primary_addr(&primary.url), PRIMARY.handshake),
        held_without_a_handshake(lookup_addr(&replica), LOOKUPS.handshake),
    );
    for (server, limit, held) in [
        ("primary", PRIMARY.handshake, at_primary),
        ("replica lookups", LOOKUPS.handshake, at_lookups),
    ] {
        for (client, held) in held {
            let held = held.unwrap_or_else(|| {
                panic!("the {server} still held a {client} connection after {limit:?} and more")
            });
            assert!(
                held >= limit - Duration::from_secs(1),
                "the {server} dropped a {client} connection after {held:?}, before its limit"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_opening_too_many_streams_is_held_to_the_limit_and_others_are_still_served() {
    use wire::*;
    const EXTRA: u32 = 8;
    let (primary, replica) = site(false).await;
    let ca = primary.pki.ca.ca_pem();
    for (server, addr, certificate, path, limit) in [
        (
            "replica lookups",
            lookup_addr(&replica),
            terminal_certificate(&primary.pki),
            "/cpreg.v1.Lookup/Lookup",
            LOOKUPS.streams_per_connection,
        ),
        (
            "primary",
            primary_addr(&primary.url),
            custodian_certificate(&primary.pki),
            "/cpreg.v1.Register/GetAuthority",
            PRIMARY.streams_per_connection,
        ),
    ] {
        let mut flood = Connection::open(addr, tls_client(ca, Some(&certificate), b"h2")).await;
        let settings = flood.settings().await;
        // Every call is opened and none is ever sent, so each holds its stream.
        let streams: Vec<u32> = (0..limit + EXTRA).map(|i| 1 + 2 * i).collect();
        for stream in &streams {
            flood.start_call(*stream, &addr.to_string(), path).await;
        }
        let mut refused = Vec::new();
        let deadline = Instant::now() + SLACK;
        while refused.len() < EXTRA as usize {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            match tokio::time::timeout(left, flood.next()).await {
                Ok(Some(frame)) if frame.kind == RST_STREAM => {
                    let code = u32::from_be_bytes(frame.payload[..4].try_into().expect("code"));
                    assert_eq!(
                        code, REFUSED_STREAM,
                        "{server}: stream {} reset otherwise",
                        frame.stream
                    );
                    refused.push(frame.stream);
                }
                Ok(Some(_)) => {}
                Ok(None) => panic!("the {server} closed the whole connection"),
                Err(_) => break,
            }
        }
        assert_eq!(
            refused,
            streams[limit as usize..],
            "the {server} refuses exactly the streams over its limit of {limit}"
        );
        assert_eq!(
            settings.get(&SETTINGS_MAX_CONCURRENT_STREAMS),
            Some(&limit),
            "the {server} announces its limit"
        );
        // With the flood still holding its streams, others are served.
        match server {
            "primary" => {
                let mut custodian = primary.client(Role::Custodian).await;
                tokio::time::timeout(
                    Duration::from_secs(10),
                    custodian.get_authority(pb::GetAuthorityRequest {}),
                )
                .await
                .expect("answered promptly")
                .expect("the primary still answers");
            }
            _ => {
                let answer = ordinary_lookup(&ae_terminal(&primary, &replica)).await;
                assert_eq!(answer.outcome, i32::from(pb::LookupOutcome::Match));
            }
        }
        drop(flood);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_that_stops_sending_halfway_through_a_lookup_is_cut_off_at_the_call_limit() {
    use hyper::body::{Bytes, Frame};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let (primary, replica) = site(false).await;
    let addr = lookup_addr(&replica);
    let recorded = replica.replica.store().enquiries_recorded().expect("count");
    let tls = tls_connect(
        addr,
        tls_client(
            primary.pki.ca.ca_pem(),
            Some(&terminal_certificate(&primary.pki)),
            b"h2",
        ),
    )
    .await;
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(tls))
        .await
        .expect("HTTP/2");
    tokio::spawn(connection);
    // A gRPC message announced as 100 bytes, of which 10 are sent; then nothing, ever.
    let mut partial = vec![0u8, 0, 0, 0, 100];
    partial.extend([0u8; 10]);
    let body = http_body_util::StreamBody::new(
        futures::stream::iter([Ok::<_, Infallible>(Frame::data(Bytes::from(partial)))])
            .chain(futures::stream::pending()),
    );
    let request = hyper::Request::post(format!("https://{addr}/cpreg.v1.Lookup/Lookup"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .expect("request");
    let started = Instant::now();
    let response = tokio::time::timeout(LOOKUPS.call + SLACK, sender.send_request(request))
        .await
        .unwrap_or_else(|_| panic!("a stalled lookup was still open after {:?}", LOOKUPS.call))
        .expect("an answer");
    let held = started.elapsed();
    assert!(
        held >= LOOKUPS.call - Duration::from_secs(1),
        "ended after {held:?}"
    );
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        header("grpc-status"),
        (Code::DeadlineExceeded as i32).to_string(),
        "{:?}",
        response.headers()
    );
    assert!(
        percent_decoded(&header("grpc-message"))
            .contains(&format!("limit of {} s", LOOKUPS.call.as_secs())),
        "the error names the limit: {:?}",
        response.headers()
    );
    assert_eq!(
        replica.replica.store().enquiries_recorded().expect("count"),
        recorded,
        "a lookup never received leaves nothing on record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_lived_stream_outlasts_the_call_limit() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let (primary, replica) = site(false).await;
    let addr = lookup_addr(&replica);
    let channel = ae_terminal(&primary, &replica)
        .channel(&format!("https://127.0.0.1:{}", addr.port()))
        .await
        .expect("connect");
    let mut watch = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watching")
        .into_inner();
    let first = watch.message().await.expect("a status").expect("a status");
    assert_eq!(
        first.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // The watch is answered at once; its stream must then outlive the per-call limit, as a
    // replica's subscription to the primary does.
    let outlived =
        tokio::time::timeout(LOOKUPS.call + Duration::from_secs(3), watch.message()).await;
    assert!(
        outlived.is_err(),
        "the stream ended or failed within the call limit: {outlived:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_quiet_after_connecting_and_ignores_pings_is_dropped() {
    use wire::*;
    let (primary, replica) = site(false).await;
    let mut quiet = Connection::open(
        lookup_addr(&replica),
        tls_client(
            primary.pki.ca.ca_pem(),
            Some(&terminal_certificate(&primary.pki)),
            b"h2",
        ),
    )
    .await;
    quiet.settings().await;
    let started = Instant::now();
    let limit = LOOKUPS.keepalive_interval + LOOKUPS.keepalive_timeout;
    let mut pinged = false;
    loop {
        let left = (limit + SLACK)
            .checked_sub(started.elapsed())
            .unwrap_or_default();
        match tokio::time::timeout(left, quiet.next()).await {
            Ok(Some(frame)) => pinged |= frame.kind == PING && frame.flags & ACK == 0,
            Ok(None) => break,
            Err(_) => panic!("a peer that answers no ping was still connected after {limit:?}"),
        }
    }
    assert!(pinged, "the server pinged before closing");
    assert!(
        started.elapsed() >= LOOKUPS.keepalive_interval,
        "closed after {:?}",
        started.elapsed()
    );
}

/// The console's limits: 30 s to send a request's headers, 30 s for the whole request.
const CONSOLE_LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sending_its_request_a_byte_at_a_time_to_the_console_is_cut_off() {
    let (primary, replica) = site(true).await;
    let addr = replica.replica.console_addr().expect("console served");
    let config = tls_client(primary.pki.ca.ca_pem(), None, b"http/1.1");
    let slow_headers = {
        let config = config.clone();
        tokio::spawn(async move {
            let mut tls = tls_connect(addr, config).await;
            tls.write_all(b"GET /signin HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await
                .expect("send");
            tls.flush().await.expect("flush");
            let started = Instant::now();
            let mut buf = [0u8; 4096];
            while started.elapsed() < CONSOLE_LIMIT + SLACK {
                if tls.write_all(b"X-Slow: 1\r\n").await.is_err() || tls.flush().await.is_err() {
                    return Some(started.elapsed());
                }
                match tokio::time::timeout(Duration::from_secs(1), tls.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                    _ => {}
                }
            }
            None
        })
    };
    let slow_body = tokio::spawn(async move {
        let mut tls = tls_connect(addr, config).await;
        tls.write_all(
            b"POST /signin HTTP/1.1\r\nHost: 127.0.0.1\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n",
        )
        .await
        .expect("send");
        tls.flush().await.expect("flush");
        let started = Instant::now();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while started.elapsed() < CONSOLE_LIMIT + SLACK {
            let _ = tls.write_all(b"a").await;
            let _ = tls.flush().await;
            match tokio::time::timeout(Duration::from_secs(1), tls.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    answer.extend(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                Err(_) => {}
            }
        }
        (
            started.elapsed(),
            String::from_utf8_lossy(&answer).into_owned(),
        )
    });
    let headers_held = slow_headers
        .await
        .expect("slow headers")
        .unwrap_or_else(|| {
            panic!("headers sent a line a second were still read after {CONSOLE_LIMIT:?}")
        });
    assert!(
        headers_held >= CONSOLE_LIMIT - Duration::from_secs(1),
        "cut off after {headers_held:?}"
    );
    let (body_held, answer) = slow_body.await.expect("slow body");
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a form sent a byte a second is answered 408 at the limit, got after {body_held:?}: {answer:?}"
    );
    assert_protected(&answer);
    assert!(
        body_held >= CONSOLE_LIMIT - Duration::from_secs(1),
        "cut off after {body_held:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_posting_an_oversize_form_to_the_console_is_refused() {
    let (primary, replica) = site(true).await;
    let addr = replica.replica.console_addr().expect("console served");
    let mut tls = tls_connect(addr, tls_client(primary.pki.ca.ca_pem(), None, b"http/1.1")).await;
    // One byte over the console's 64 KiB: the console reads it all before refusing, so the
    // answer is not lost to a reset.
    let body = format!("name=duty&password={}", "x".repeat(64 * 1024 + 1 - 19));
    let request = format!(
        "POST /signin HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.expect("send");
    tls.flush().await.expect("flush");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(SLACK, tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "an oversize form is refused as too large: {answer:?}"
    );
    assert_protected(&answer);
}

/// A console refusal carries the same security headers as its pages.
fn assert_protected(answer: &str) {
    let head = answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    for header in [
        "content-security-policy: default-src 'none'",
        "x-frame-options: deny",
        "strict-transport-security:",
    ] {
        assert!(head.contains(header), "{header} missing from {head:?}");
    }
}

/// The primary under test, killed when the test ends however it ends.
struct Running(Option<PrimaryProcess>);

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(process) = self.0.take() {
            process.kill_9();
        }
    }
}

/// The most memory the process has held at once, in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custodian_sending_many_oversize_plan_documents_at_once_cannot_grow_the_primary() {
    const AT_ONCE: usize = 8;
    let pki = TestPki::new();
    let process = PrimaryProcess::spawn(env!("CARGO_BIN_EXE_cpreg-primary-under-test"), &pki);
    let url = process.url.clone();
    let pid = process.child.id();
    let _running = Running(Some(process));
    let profile = pki.profile(Role::Custodian, &url);
    // The profile's own client would refuse to send these; a bare one sends anything.
    let client = RegisterClient::new(profile.channel(&url).await.expect("connect"));
    client
        .clone()
        .get_authority(pb::GetAuthorityRequest {})
        .await
        .expect("the primary answers");
    let before = peak_memory(pid);
    let oversize = REGISTER_MESSAGE_BYTES + 1024 * 1024;
    let sends = (0..AT_ONCE).map(|i| {
        let mut client = client.clone();
        async move {
            client
                .add_plan_document(pb::AddPlanDocumentRequest {
                    record_id: format!("C{i}"),
                    core_group_date: cpreg_tests::day(0),
                    file_name: "minutes.pdf".into(),
                    content: vec![b'%'; oversize],
                })
                .await
        }
    });
    for sent in futures::future::join_all(sends).await {
        let refused = sent.expect_err("an oversize document is refused");
        assert_eq!(refused.code(), Code::OutOfRange, "{refused:?}");
        assert!(
            refused
                .message()
                .contains(&format!("the limit is: {REGISTER_MESSAGE_BYTES} bytes")),
            "{refused:?}"
        );
    }
    let grew = peak_memory(pid).saturating_sub(before);
    let sent = (AT_ONCE * oversize) as u64;
    assert!(
        grew < sent / 4,
        "the primary's peak memory grew by {} MiB while refusing {} MiB",
        grew >> 20,
        sent >> 20
    );
    client
        .clone()
        .get_authority(pb::GetAuthorityRequest {})
        .await
        .expect("the primary still answers");
}
