//! Clients that speak TLS and HTTP/2 by hand, so a test can do what a well-behaved client
//! library would not: say nothing, open more streams than allowed, ignore pings.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpreg::pki::Issued;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A TLS client trusting `ca_pem`, offering `alpn`, holding `certificate` if given.
pub fn tls_client(
    ca_pem: &str,
    certificate: Option<&Issued>,
    alpn: &[u8],
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.expect("CA PEM")).expect("CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots);
    let mut config = match certificate {
        Some(certificate) => {
            let chain = CertificateDer::pem_slice_iter(certificate.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .expect("certificate PEM");
            let key =
                PrivateKeyDer::from_pem_slice(certificate.key_pem.as_bytes()).expect("key PEM");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate")
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// A client's TLS connection.
pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// Connects to `addr` and finishes the TLS handshake.
pub async fn tls_connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Tls {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
        .expect("TLS handshake")
}

/// Reads until the peer closes (or resets) the connection, discarding what it sends; how long
/// that took, or `None` if it was still open after `limit`.
pub async fn closed_within(
    stream: &mut (impl AsyncReadExt + Unpin),
    limit: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

/// A `grpc-message` header as text (the protocol percent-encodes it).
pub fn percent_decoded(message: &str) -> String {
    let bytes = message.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// HTTP/2, frame by frame.
pub const HEADERS: u8 = 1;
pub const RST_STREAM: u8 = 3;
pub const SETTINGS: u8 = 4;
pub const PING: u8 = 6;
pub const END_HEADERS: u8 = 4;
pub const ACK: u8 = 1;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 3;
pub const REFUSED_STREAM: u32 = 7;
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One HTTP/2 frame as received.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// An HTTP/2 connection over TLS, spoken frame by frame.
pub struct Connection {
    io: Tls,
}

impl Connection {
    /// Connects over TLS and sends the preface with empty SETTINGS.
    pub async fn open(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Connection {
        let mut connection = Connection {
            io: tls_connect(addr, config).await,
        };
        connection
            .io
            .write_all(PREFACE)
            .await
            .expect("send the preface");
        connection.send(SETTINGS, 0, 0, &[]).await;
        connection
    }

    pub async fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let len = u32::try_from(payload.len()).expect("frame length");
        let mut frame = len.to_be_bytes()[1..].to_vec();
        frame.extend([kind, flags]);
        frame.extend(stream.to_be_bytes());
        frame.extend(payload);
        self.io.write_all(&frame).await.expect("send a frame");
        self.io.flush().await.expect("flush");
    }

    /// The next frame, or `None` once the server has closed the connection.
    pub async fn next(&mut self) -> Option<Frame> {
        let mut head = [0u8; 9];
        self.io.read_exact(&mut head).await.ok()?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        self.io.read_exact(&mut payload).await.ok()?;
        Some(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        })
    }

    /// Reads the server's SETTINGS, acknowledges them and returns them by identifier.
    pub async fn settings(&mut self) -> BTreeMap<u16, u32> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.next())
                .await
                .expect("the server sends its SETTINGS")
                .expect("the connection stays open");
            if frame.kind == SETTINGS && frame.flags & ACK == 0 {
                self.send(SETTINGS, ACK, 0, &[]).await;
                return frame
                    .payload
                    .chunks_exact(6)
                    .map(|s| {
                        (
                            u16::from_be_bytes([s[0], s[1]]),
                            u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                        )
                    })
                    .collect();
            }
        }
    }

    /// Opens a gRPC call to `path` on `stream` and sends nothing more: the server is left
    /// waiting for the request.
    pub async fn start_call(&mut self, stream: u32, authority: &str, path: &str) {
        let mut block = Vec::new();
        for (name, value) in [
            (":method", "POST"),
            (":scheme", "https"),
            (":path", path),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ] {
            // HPACK: a literal field without indexing, new name, no Huffman coding.
            block.push(0);
            for text in [name, value] {
                block.push(u8::try_from(text.len()).expect("short header"));
                block.extend(text.as_bytes());
            }
        }
        self.send(HEADERS, END_HEADERS, stream, &block).await;
    }
}
