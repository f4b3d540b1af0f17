//! The resource limits the primary's and the replica's gRPC servers hold every caller to: how big
//! a message may be, how many calls one connection may have open, how long a handshake, a call
//! and a silent peer may take. `docs/decisions/resource-limits.md` says why each value.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::transport::{Server, ServerTlsConfig};

/// Largest request to the replica's Lookup service, and to health and reflection on either
/// server: a lookup is a few names, a date and a reason, well under a kilobyte.
pub const SMALL_REQUEST_BYTES: usize = 64 * 1024;

/// Largest message to or from the primary's Register service: a plan document or an import chunk.
pub const REGISTER_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Largest request to the primary's Replication service: a replica's batch of enquiries is cut
/// at 1 MiB of records, and one enquiry is a few kilobytes (a replica cuts every free-text field
/// of a lookup short before recording it), so twice that leaves room for the references.
pub const REPLICATION_REQUEST_BYTES: usize = 2 * 1024 * 1024;

/// What one gRPC server allows each connection and each call.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Calls open at once on one HTTP/2 connection; a client opening more has them refused
    /// (`REFUSED_STREAM`), a well-behaved one waits for a free slot.
    pub streams_per_connection: u32,
    /// Largest block of request headers.
    pub header_list_bytes: u32,
    /// Time from a TCP connection to a finished TLS handshake.
    pub handshake: Duration,
    /// Time from a call's first headers to its answer's headers. The body of a streamed answer
    /// (a subscription, an import's progress) is not timed: it lasts as long as the call.
    pub call: Duration,
    /// Silence after which the server pings the peer...
    pub keepalive_interval: Duration,
    /// ...and how long it waits for the answer before closing the connection.
    pub keepalive_timeout: Duration,
}

/// The replica's lookup server: terminals make one small call at a time, answered from the
/// replica's own store.
pub const LOOKUPS: ServerLimits = ServerLimits {
    streams_per_connection: 32,
    header_list_bytes: 16 * 1024,
    handshake: Duration::from_secs(10),
    call: Duration::from_secs(10),
    keepalive_interval: Duration::from_secs(20),
    keepalive_timeout: Duration::from_secs(10),
};

/// The primary: a 16 MiB plan document over a slow link takes a minute to arrive, and a ping
/// to a replica can queue behind a snapshot on its way out.
pub const PRIMARY: ServerLimits = ServerLimits {
    streams_per_connection: 32,
    header_list_bytes: 16 * 1024,
    handshake: Duration::from_secs(10),
    call: Duration::from_secs(120),
    keepalive_interval: Duration::from_secs(60),
    keepalive_timeout: Duration::from_secs(60),
};

impl ServerLimits {
    /// A server builder holding connections to these limits.
    pub fn server(&self) -> Server {
        Server::builder()
            .max_concurrent_streams(self.streams_per_connection)
            .http2_max_header_list_size(self.header_list_bytes)
            .http2_keepalive_interval(Some(self.keepalive_interval))
            .http2_keepalive_timeout(Some(self.keepalive_timeout))
    }

    /// `tls` with the handshake limit: tonic waits for a silent client forever otherwise.
    pub fn tls(&self, tls: ServerTlsConfig) -> ServerTlsConfig {
        tls.timeout(self.handshake)
    }

    /// `service` with the call limit.
    pub fn timed<S>(&self, service: S) -> CallLimit<S> {
        CallLimit {
            inner: service,
            limit: self.call,
        }
    }
}

/// A gRPC service whose calls must be answered within a limit, or are ended with
/// `DEADLINE_EXCEEDED` naming it. Unlike tonic's `Server::timeout` (`CANCELLED`, "Timeout
/// expired"), the caller is told what the limit is.
#[derive(Debug, Clone)]
pub struct CallLimit<S> {
    inner: S,
    limit: Duration,
}

impl<S: NamedService> NamedService for CallLimit<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for CallLimit<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let limit = self.limit;
        let call = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, call).await {
                Ok(answered) => answered,
                Err(_) => Ok(Status::deadline_exceeded(format!(
                    "the call was not received and answered within the server's limit of {} s",
                    limit.as_secs()
                ))
                .into_http()),
            }
        })
    }
}
