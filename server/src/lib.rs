//! `cpreg-primary`: the authoritative register of children with a Child Protection Plan for one
//! local authority, served over gRPC with mutual TLS.
//!
//! # Layout
//! - [`run`]: starts the server on a bound listener until `shutdown` completes; `main.rs`, the
//!   demo and the tests all start the primary through it.
//! - [`config`]: the TOML configuration.
//! - [`record`]: the domain types of a child's record, plans and the directory.
//! - [`lifecycle`]: the rules of a plan from start to end.
//! - [`import`]: reading the case system's CSV export row by row.
//! - [`store`]: the only code that touches redb; every change is one transaction with its
//!   revision and audit entries.
//! - [`service`]: the register's gRPC handlers; [`convert`] and [`error`] are their edge.
//! - [`projection`]: what of a record replicas may see, and for how long.
//! - [`replication`]: pushes signed versions of the projection to subscribed replicas.
//! - [`notify`]: delivers the notification outbox to the webhook and by e-mail.
//! - [`metrics`]: the figures Prometheus scrapes, on a plain HTTP listener of their own.
//! - [`auth`]: the caller's role from the client certificate.
//! - [`keys`]: the authority's Ed25519 signing key, and its rotation.
//! - [`export`]: the signed snapshot written to a file encrypted for a site with no link.
//! - [`clock`]: the time, settable in tests.
//! - [`cli`]: the `cpreg-primary` command line.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod convert;
pub mod error;
pub mod export;
pub mod import;
pub mod keys;
pub mod lifecycle;
pub mod metrics;
pub mod notify;
pub mod projection;
pub mod record;
pub mod replication;
pub mod service;
pub mod store;

use std::future::Future;
use std::sync::Arc;

use cpreg_proto::limits::{self, PRIMARY};
use cpreg_proto::pb::register_server::RegisterServer;
use cpreg_proto::pb::replication_server::ReplicationServer;
use tokio::net::TcpListener;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;

/// Largest gRPC message accepted: a plan document or an import chunk.
pub const MAX_MESSAGE_BYTES: usize = limits::REGISTER_MESSAGE_BYTES;

/// Why the primary could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] keys::KeyError),
    #[error("opening the register: {0}")]
    Store(#[from] store::StoreError),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("notifications: {0}")]
    Notify(#[from] notify::NotifyError),
    #[error("cannot listen for metrics on {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("gRPC reflection: {0}")]
    Reflection(String),
}

/// Installs ring as the process's TLS provider; a second call is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Opens the register described by `config`, creating the data folder and signing key if new.
pub fn open_store(config: &Config, clock: Arc<dyn Clock>) -> Result<Store, ServeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServeError::Read {
        what: "data folder",
        path: config.data_dir.clone(),
        source,
    })?;
    // A register without its key would sign a new audit chain that no longer verifies; a key is
    // only ever made for a register that does not exist yet.
    if config.database_path().exists() && !config.signing_key_path().exists() {
        return Err(ServeError::Key(keys::KeyError::Missing {
            path: config.signing_key_path(),
        }));
    }
    let key = keys::load_or_generate(&config.signing_key_path())?;
    let store = Store::open(&config.database_path(), &config.authority, key, clock)?;
    // Replicas that followed the stored rotation refuse anything the retired key signs, so a
    // primary must not serve until the rotation is finished.
    if let store::KeyInForce::InterruptedRotation { announced } = store.key_in_force()? {
        return Err(ServeError::Store(store::StoreError::Invalid(format!(
            "a key rotation to key {announced} was recorded but the key files were not swapped: run `cpreg-primary rotate-key` again to finish it, then start"
        ))));
    }
    Ok(store)
}

fn read(what: &'static str, path: &std::path::Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|source| ServeError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

/// Publishes the authority's name and numbers, and brings time-dependent projections up to date.
async fn publish_authority(store: &Arc<Store>, config: &Config) -> Result<(), ServeError> {
    let info = cpreg_proto::pb::AuthorityInfo {
        authority: config.authority.clone(),
        name: config.contact.name.clone(),
        office_phone: config.contact.office_phone.clone(),
        edt_phone: config.contact.edt_phone.clone(),
    };
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        store.publish_authority_info(&info)?;
        store.reproject_due()
    })
    .await
    .map_err(|e| ServeError::Store(store::StoreError::Invalid(e.to_string())))??;
    Ok(())
}

/// Once an hour: re-projects the children whose projection time alone changes (an ended plan
/// after 365 days, an unborn child's plan 28 days after the due date), and removes Contacts past
/// their retention.
async fn sweep_daily(store: Arc<Store>, retention: config::Retention) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        ticker.tick().await;
        let store = store.clone();
        let swept = tokio::task::spawn_blocking(move || {
            store.reproject_due()?;
            if retention.contacts_days > 0 {
                let before = store.clock().now()
                    - chrono::Duration::days(i64::from(retention.contacts_days));
                store.purge_contacts(before)?;
            }
            Ok::<_, store::StoreError>(())
        })
        .await;
        match swept {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "the hourly sweep failed"),
            Err(e) => tracing::error!(error = %e, "the hourly sweep task failed"),
        }
    }
}

/// The full gRPC name of a served service, as reflection advertises it.
fn service_name<S: tonic::server::NamedService>() -> &'static str {
    S::NAME
}

/// Serves the register on `listener` until `shutdown` completes, then waits for requests in
/// flight to finish.
pub async fn run(
    config: Config,
    clock: Arc<dyn Clock>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    install_crypto_provider();
    let tls = PRIMARY.tls(
        ServerTlsConfig::new()
            .identity(Identity::from_pem(
                read("server certificate", &config.tls.cert)?,
                read("server key", &config.tls.key)?,
            ))
            .client_ca_root(Certificate::from_pem(read(
                "client CA",
                &config.tls.client_ca,
            )?)),
    );
    let store = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || open_store(&config, clock))
            .await
            .map_err(|e| ServeError::Store(store::StoreError::Invalid(e.to_string())))??
    };
    let store = Arc::new(store);
    publish_authority(&store, &config).await?;
    let service = service::RegisterService::new(store.clone());
    let metrics = Arc::new(metrics::Metrics::new());
    let (replication, feeds) = replication::ReplicationService::new(
        store.clone(),
        config.publishing.clone(),
        metrics.publish_seconds.clone(),
    );
    let delivery = notify::Delivery::start_counted(
        store.clone(),
        config.notifications.as_ref(),
        Some(metrics.notification_failures.clone()),
    )
    .await?;
    let sweeper = tokio::spawn(sweep_daily(store.clone(), config.retention.clone()));
    let (stop_metrics, metrics_stopping) = tokio::sync::watch::channel(false);
    let metrics_task = match &config.metrics {
        Some(settings) => {
            let listener =
                TcpListener::bind(settings.listen)
                    .await
                    .map_err(|source| ServeError::Metrics {
                        addr: settings.listen,
                        source,
                    })?;
            tracing::info!(addr = ?listener.local_addr().ok(), "metrics served at /metrics");
            let store = store.clone();
            Some(metrics::serve(
                listener,
                move || metrics.clone().render(store.clone()),
                metrics_stopping,
            ))
        }
        None => None,
    };
    // gRPC health ("" and each service: SERVING until shutdown begins) and reflection of the
    // cpreg.v1 contract, on the same mutual-TLS listener: any certificate of the authority's CA
    // may ask, as a load balancer's or `grpcurl`'s would.
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<RegisterServer<service::RegisterService>>()
        .await;
    health
        .set_serving::<ReplicationServer<replication::ReplicationService>>()
        .await;
    // Only what this listener serves is advertised (the contract also describes the replica's
    // Lookup service).
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(cpreg_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(service_name::<RegisterServer<service::RegisterService>>())
        .with_service_name(service_name::<
            ReplicationServer<replication::ReplicationService>,
        >())
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    tracing::info!(authority = %config.authority, addr = ?listener.local_addr().ok(), "primary serving");
    // Every service refuses a request over its size before reading it, and every call must be
    // answered within `PRIMARY.call`: a subscription's frames and an import's progress are the
    // body of an answer already given, so they outlive it (docs/decisions/resource-limits.md).
    let served = PRIMARY
        .server()
        .tls_config(tls)?
        .add_service(
            PRIMARY.timed(health_service.max_decoding_message_size(limits::SMALL_REQUEST_BYTES)),
        )
        .add_service(
            PRIMARY.timed(reflection.max_decoding_message_size(limits::SMALL_REQUEST_BYTES)),
        )
        .add_service(
            PRIMARY.timed(
                RegisterServer::new(service)
                    .max_decoding_message_size(limits::REGISTER_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            ),
        )
        .add_service(
            PRIMARY.timed(
                ReplicationServer::new(replication)
                    .max_decoding_message_size(limits::REPLICATION_REQUEST_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES),
            ),
        )
        // Small frames (one delta, one acknowledgement) must not wait on Nagle's algorithm:
        // without NODELAY one change in six took 40 ms to reach the replicas.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                shutdown.await;
                health
                    .set_service_status("", tonic_health::ServingStatus::NotServing)
                    .await;
                // Long-lived subscriptions would hold the graceful shutdown open: end them first.
                feeds.stop().await;
            },
        )
        .await;
    // The register closes only when every task holding it is gone.
    let _ = stop_metrics.send(true);
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    delivery.stop().await;
    sweeper.abort();
    let _ = sweeper.await;
    served?;
    Ok(())
}
