//! The duty console: a small web page at each replica for the people on shift (A&E clinicians,
//! EDT duty workers), served over HTTPS on the site's network, server-rendered with every asset
//! embedded, and usable without JavaScript. Its lookups go through the same
//! [`LookupService`] as a terminal's: same criteria, limits, recording and reporting.
//!
//! # Layout
//! - [`operators`]: the site's operator accounts (argon2id), managed by `cpreg-replica operator`.
//! - [`sessions`]: signed-in sessions and sign-in lockouts, in memory.
//! - `routes`: the requests; `pages`: the HTML; `forms`: what the forms send.
//! - [`style`]: the stylesheet and its checked palette; `html`: escaping.

mod forms;
mod html;
pub mod operators;
mod pages;
mod routes;
pub mod sessions;
pub mod style;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::clock::Clock;
use crate::config::{Config, ConsoleConfig};
use crate::lookup::LookupService;
use crate::status::{AuthorityStatus, HeldVersion, LinkState};
use crate::store::Store;

pub use routes::TERMINAL_NAME;

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// A certificate, key or CA file could not be read.
    #[error("console {what} {path}: {message}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    /// The TLS set-up was refused.
    #[error("console TLS: {0}")]
    Tls(String),
    /// The listen address could not be bound.
    #[error("console cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The operator accounts could not be prepared.
    #[error(transparent)]
    Operators(#[from] operators::OperatorError),
}

/// What the console's requests share.
pub struct Console {
    site: String,
    /// The directory organisation the console's lookups are made for.
    organisation: String,
    authorities: Vec<String>,
    operators_path: PathBuf,
    lookups: Arc<LookupService>,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    /// Each authority's link, for the status page.
    links: Vec<(String, Arc<LinkState>)>,
    staleness: chrono::Duration,
    threshold_hours: u64,
    session_minutes: u64,
    lockout_minutes: u64,
    sessions: sessions::Sessions,
    lockout: sessions::Lockout,
    /// Checked against when the name is unknown, so a wrong name takes as long as a wrong password.
    dummy_hash: String,
}

impl Console {
    /// The console of the replica configured by `config` (which has a `[console]` section).
    pub fn new(
        config: &Config,
        console: &ConsoleConfig,
        lookups: Arc<LookupService>,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        links: Vec<(String, Arc<LinkState>)>,
    ) -> Result<Console, ConsoleError> {
        Ok(Console {
            site: config.site.clone(),
            organisation: console.organisation.trim().to_owned(),
            authorities: config.authorities.iter().map(|a| a.id.clone()).collect(),
            operators_path: config.operators_path(),
            lookups,
            store,
            clock,
            links,
            staleness: config.staleness_threshold(),
            threshold_hours: config.staleness_threshold_hours,
            session_minutes: console.session_minutes,
            lockout_minutes: console.lockout_minutes,
            sessions: sessions::Sessions::new(Duration::from_secs(console.session_minutes * 60)),
            lockout: sessions::Lockout::new(
                console.lockout_attempts,
                Duration::from_secs(console.lockout_minutes * 60),
            ),
            dummy_hash: operators::hash_password(&sessions::random_token())?,
        })
    }

    /// Where each authority's copy stands now.
    fn statuses(&self) -> Vec<AuthorityStatus> {
        let now = self.clock.now();
        self.links
            .iter()
            .map(|(authority, link)| {
                let held = self.store.trusted_state(authority).unwrap_or_default();
                link.status(HeldVersion::new(authority, &held, now, self.staleness))
            })
            .collect()
    }

    /// The console's routes.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/", get(routes::home))
            .route("/console.css", get(routes::stylesheet))
            .route("/signin", get(routes::sign_in_form).post(routes::sign_in))
            .route("/signout", post(routes::sign_out))
            .route("/lookup", get(routes::lookup_form).post(routes::lookup))
            .route("/phone", get(routes::phone_form).post(routes::phone))
            .route("/phone/callback", post(routes::callback))
            .route("/phone/{reference}", get(routes::ticket))
            .route("/status", get(routes::status))
            .fallback(routes::not_found)
            .with_state(self)
    }
}

fn pem_error(
    what: &'static str,
    path: &Path,
) -> impl FnOnce(rustls::pki_types::pem::Error) -> ConsoleError {
    let path = path.to_owned();
    move |e| ConsoleError::Pem {
        what,
        path,
        message: e.to_string(),
    }
}

/// The console's TLS: its certificate, and a browser client certificate if `client_ca` is set.
fn tls_config(config: &ConsoleConfig) -> Result<rustls::ServerConfig, ConsoleError> {
    let chain = CertificateDer::pem_file_iter(&config.cert)
        .map_err(pem_error("certificate", &config.cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error("certificate", &config.cert))?;
    let key = PrivateKeyDer::from_pem_file(&config.key).map_err(pem_error("key", &config.key))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match &config.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(pem_error("client CA", ca))? {
                roots
                    .add(cert.map_err(pem_error("client CA", ca))?)
                    .map_err(|e| ConsoleError::Tls(e.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| ConsoleError::Tls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut tls = builder
        .with_single_cert(chain, key)
        .map_err(|e| ConsoleError::Tls(e.to_string()))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// Time from a TCP connection to a finished TLS handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// Time to send a request's headers, and how long a kept-alive connection may sit idle.
const HEADER_LIMIT: Duration = Duration::from_secs(30);
/// Time from a request's headers to its answer, body included: a form sent a byte at a time is
/// cut off here.
const REQUEST_LIMIT: Duration = Duration::from_secs(30);
/// Largest form accepted: the console's forms are a few short fields.
const FORM_BYTES: usize = 64 * 1024;

/// Ends a request that is not received and answered within [`REQUEST_LIMIT`].
async fn within_request_limit(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(REQUEST_LIMIT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            axum::http::StatusCode::REQUEST_TIMEOUT,
            [(axum::http::header::CONNECTION, "close")],
            format!(
                "The request did not arrive within {} seconds.",
                REQUEST_LIMIT.as_secs()
            ),
        )
            .into_response(),
    }
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Starts the console on `config.listen`; it stops when `shutdown` turns true, letting the
/// requests in flight finish for a few seconds.
pub async fn serve(
    console: Console,
    config: &ConsoleConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), ConsoleError> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(config)?));
    let listen = |source| ConsoleError::Listen {
        addr: config.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(listen)?;
    let addr = listener.local_addr().map_err(listen)?;
    let router = Arc::new(console)
        .router()
        .layer(axum::extract::DefaultBodyLimit::max(FORM_BYTES))
        .layer(axum::middleware::from_fn(within_request_limit))
        // Outermost, so that the limits' own refusals carry the security headers too.
        .layer(axum::middleware::map_response(routes::protect));
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((tcp, peer)) = accepted else { continue };
                    let _ = tcp.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let service = TowerToHyperService::new(
                        router.clone().layer(axum::Extension(routes::Peer(peer.ip()))),
                    );
                    let mut stop = shutdown.clone();
                    connections.spawn(async move {
                        let tls = match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => tls,
                            Ok(Err(error)) => {
                                tracing::debug!(%peer, %error, "console TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                        let connection = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .header_read_timeout(HEADER_LIMIT)
                            .serve_connection(TokioIo::new(tls), service);
                        tokio::pin!(connection);
                        tokio::select! {
                            _ = connection.as_mut() => {}
                            _ = stopped(&mut stop) => {
                                connection.as_mut().graceful_shutdown();
                                let _ = connection.await;
                            }
                        }
                    });
                }
                _ = stopped(&mut shutdown) => break,
            }
            while connections.try_join_next().is_some() {}
        }
        let drain = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            connections.abort_all();
        }
    });
    tracing::info!(%addr, "duty console served");
    Ok((addr, task))
}
