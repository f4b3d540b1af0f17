//! What the primary's gRPC port and a replica's lookup port accept at the TLS layer, tried with a
//! raw connection so that a refusal is seen where it happens (the handshake), not as an RPC error.
//!
//! What they accept, as configured through tonic's `ServerTlsConfig` (rustls's default protocol
//! versions, client certificates verified by webpki against the configured CA):
//! - no plaintext: an HTTP/2 connection without TLS (h2c) never gets an HTTP/2 answer;
//! - TLS 1.3, chosen whenever the client offers it, and TLS 1.2 (rustls cannot go lower): a
//!   client offering only TLS 1.0 or 1.1 gets a fatal alert and no ServerHello;
//! - a client certificate from the CA whose extended key usage names clientAuth, or that has no
//!   extended key usage at all; one whose usages leave clientAuth out (serverAuth only) is
//!   refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cpreg::pki::{ExtendedKeyUsagePurpose, Issued};
use cpreg_proto::role::Role;
use cpreg_tests::TestPrimary;
use cpreg_tests::replica::{TestReplica, authority_entry, lookup_config, replica_config};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ProtocolVersion, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The HTTP/2 client connection preface and an empty SETTINGS frame: what a gRPC client sends
/// first. A server speaking HTTP/2 answers with its own SETTINGS frame (frame type 4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
const SETTINGS: u8 = 4;
const WAIT: Duration = Duration::from_secs(10);

/// Whether the first bytes back are an HTTP/2 SETTINGS frame header.
fn is_http2_settings(head: &[u8]) -> bool {
    head.len() == 9 && head[3] == SETTINGS
}

/// Reads the first 9 bytes the peer sends, or fewer if it closes or fails first.
async fn first_frame_header(stream: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut head = vec![0u8; 9];
    let mut got = 0;
    while got < head.len() {
        match tokio::time::timeout(WAIT, stream.read(&mut head[got..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got += n,
            Err(_) => panic!("the server neither answered nor closed within {WAIT:?}"),
        }
    }
    head.truncate(got);
    head
}

/// Speaks HTTP/2 without TLS and returns the first bytes back.
async fn plaintext_http2(addr: SocketAddr) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may close before taking all of it: what it answers is what counts.
    let _ = stream.write_all(H2_PREFACE).await;
    first_frame_header(&mut stream).await
}

/// A TLS client offering only `versions` and ALPN h2, holding `certificate`.
fn client_config(
    ca_pem: &str,
    certificate: &Issued,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.expect("CA PEM")).expect("CA certificate");
    }
    let chain = CertificateDer::pem_slice_iter(certificate.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate PEM");
    let key = PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes()).expect("key PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client certificate");
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Connects over TLS and opens HTTP/2. `Ok` with the version negotiated if the server answered
/// with HTTP/2 (it took the certificate); `Err` with what happened if it refused. With TLS 1.3 a
/// refused client certificate shows after the client's side of the handshake, as an alert in
/// place of the server's first frame; with TLS 1.2, in the handshake itself.
async fn tls_http2(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<ProtocolVersion, String> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::IpAddress(addr.ip().into());
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut tls = tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .expect("the handshake ends")
        .map_err(|e| format!("handshake refused: {e}"))?;
    let version = tls.get_ref().1.protocol_version().expect("negotiated");
    if let Err(e) = tls.write_all(H2_PREFACE).await {
        return Err(format!("refused after the handshake: {e}"));
    }
    let _ = tls.flush().await;
    let head = first_frame_header(&mut tls).await;
    if is_http2_settings(&head) {
        Ok(version)
    } else {
        Err(format!("no HTTP/2 answer (got {head:?})"))
    }
}

const TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
const BOTH: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The primary's address from its URL (`https://127.0.0.1:PORT`).
fn primary_addr(primary: &TestPrimary) -> SocketAddr {
    primary
        .url
        .trim_start_matches("https://")
        .parse()
        .expect("primary URL holds an address")
}

/// A primary, and a replica of it serving lookups at site "ae".
async fn primary_and_replica() -> (TestPrimary, TestReplica) {
    let primary = TestPrimary::start().await;
    let mut config = replica_config(
        &primary.pki,
        "ae",
        vec![authority_entry(&primary.pki, "ae", &primary.url)],
    );
    config.lookups = Some(lookup_config(&primary.pki, "ae"));
    let replica = TestReplica::start_with(config).await;
    (primary, replica)
}

#[tokio::test]
async fn plaintext_http2_is_refused_by_the_primary_and_the_replica() {
    let (primary, replica) = primary_and_replica().await;
    let lookups = replica.replica.lookup_addr().expect("lookups served");
    for (port, addr) in [
        ("primary", primary_addr(&primary)),
        ("replica lookups", lookups),
    ] {
        let head = plaintext_http2(addr).await;
        assert!(
            !is_http2_settings(&head),
            "the {port} answered plaintext HTTP/2: {head:?}"
        );
    }
}

/// A ClientHello of a client that speaks at most `version` (0x0301 TLS 1.0, 0x0302 TLS 1.1),
/// offering suites rustls supports (so that only the version is wrong) and no
/// `supported_versions` extension.
fn legacy_client_hello(version: [u8; 2]) -> Vec<u8> {
    // ECDHE with AES-GCM and ChaCha20: TLS 1.2 suites rustls offers.
    let suites: &[u8] = &[
        0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30, 0xcc, 0xa9, 0xcc, 0xa8,
    ];
    let mut hello = Vec::new();
    hello.extend_from_slice(&version);
    hello.extend_from_slice(&[0x5a; 32]); // random
    hello.push(0); // no session id
    hello.extend_from_slice(&(suites.len() as u16).to_be_bytes());
    hello.extend_from_slice(suites);
    hello.extend_from_slice(&[1, 0]); // compression: null only
    let mut handshake = vec![1]; // ClientHello
    handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&hello);
    let mut record = vec![22, 0x03, 0x01]; // handshake record
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

const HANDSHAKE_RECORD: u8 = 22;
const ALERT_RECORD: u8 = 21;
const FATAL: u8 = 2;
/// rustls answers `handshake_failure` (40) to TLS 1.0 and `protocol_version` (70) to 1.1.
const REFUSALS: [u8; 2] = [40, 70];

#[tokio::test]
async fn a_client_speaking_only_tls_1_0_or_1_1_gets_a_fatal_alert_and_no_server_hello() {
    let (primary, replica) = primary_and_replica().await;
    let lookups = replica.replica.lookup_addr().expect("lookups served");
    for (port, addr) in [
        ("primary", primary_addr(&primary)),
        ("replica lookups", lookups),
    ] {
        for (name, version) in [("TLS 1.0", [3, 1]), ("TLS 1.1", [3, 2])] {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream
                .write_all(&legacy_client_hello(version))
                .await
                .expect("hello sent");
            let mut head = vec![0u8; 7];
            tokio::time::timeout(WAIT, stream.read_exact(&mut head))
                .await
                .expect("answered in time")
                .expect("an alert, not a bare close");
            assert_ne!(
                head[0], HANDSHAKE_RECORD,
                "the {port} went on with a {name} handshake: {head:?}"
            );
            assert!(
                head[0] == ALERT_RECORD && head[5] == FATAL && REFUSALS.contains(&head[6]),
                "the {port} should refuse {name} with a fatal alert: {head:?}"
            );
        }
    }
}

#[tokio::test]
async fn tls_1_3_is_chosen_and_a_tls_1_2_only_client_with_a_valid_certificate_is_accepted() {
    let (primary, replica) = primary_and_replica().await;
    let ca = &primary.pki.ca;
    let custodian = ca
        .issue_client(Role::Custodian, "Custodian over TLS 1.2", None, 1)
        .expect("issue");
    let terminal = ca
        .issue_terminal("Terminal over TLS 1.2", "ae", "ae-dept", 1)
        .expect("issue");
    let lookups = replica.replica.lookup_addr().expect("lookups served");
    for (port, addr, certificate) in [
        ("primary", primary_addr(&primary), &custodian),
        ("replica lookups", lookups, &terminal),
    ] {
        let offered_both = tls_http2(addr, client_config(ca.ca_pem(), certificate, BOTH)).await;
        assert_eq!(offered_both, Ok(ProtocolVersion::TLSv1_3), "{port}");
        let only_13 = tls_http2(addr, client_config(ca.ca_pem(), certificate, TLS13_ONLY)).await;
        assert_eq!(only_13, Ok(ProtocolVersion::TLSv1_3), "{port}");
        let only_12 = tls_http2(addr, client_config(ca.ca_pem(), certificate, TLS12_ONLY)).await;
        assert_eq!(
            only_12,
            Ok(ProtocolVersion::TLSv1_2),
            "{port}: TLS 1.2 is accepted"
        );
    }
}

#[tokio::test]
async fn a_certificate_whose_usages_leave_out_client_auth_is_refused() {
    let (primary, replica) = primary_and_replica().await;
    let ca = &primary.pki.ca;
    let lookups = replica.replica.lookup_addr().expect("lookups served");
    let server_only = ca
        .issue_client_with_usages(
            Role::Custodian,
            "Server usage only",
            &[ExtendedKeyUsagePurpose::ServerAuth],
            1,
        )
        .expect("issue");
    let no_usages = ca
        .issue_client_with_usages(Role::Custodian, "No usages", &[], 1)
        .expect("issue");
    for addr in [primary_addr(&primary), lookups] {
        for versions in [TLS13_ONLY, TLS12_ONLY] {
            let refused = tls_http2(addr, client_config(ca.ca_pem(), &server_only, versions)).await;
            assert!(
                refused.is_err(),
                "{addr} took a serverAuth-only certificate: {refused:?}"
            );
            // webpki reads a certificate with no extended key usage as usable for anything:
            // the CA never issues one, so this is accepted by the servers as it stands.
            let unrestricted =
                tls_http2(addr, client_config(ca.ca_pem(), &no_usages, versions)).await;
            assert!(unrestricted.is_ok(), "{addr}: {unrestricted:?}");
        }
    }
}
