//! `cpreg-replica`: the read-only copy of one or more authorities' registers at an A&E, EDT or
//! CAIT site. It dials each trusted authority's primary, takes its signed snapshots and deltas,
//! proves each one before applying it, and keeps serving the last good version when cut off.
//!
//! # Layout
//! - [`Replica`]: starts one subscriber per authority over a shared store; [`run`] is what the
//!   binary and the demo start.
//! - [`config`]: the TOML configuration (site, data folder, trusted authorities and their keys).
//! - [`store`]: the only code that touches redb: entries, trusted state, key rotations; each
//!   version applied in one transaction committed only once its state root is proved.
//! - [`intake`]: one authority's intake state machine: manifest, chunks, checks, apply.
//! - [`import`]: a snapshot file carried to a site with no link, decrypted and fed through the
//!   same intake.
//! - [`subscriber`]: the mutual-TLS link to a primary, with reconnects and status reports.
//! - [`status`]: where each copy stands: version, as-of, staleness, link.
//! - [`clock`]: the time, settable in tests.
//! - [`matching`]: finding the child asked about across every authority followed, despite
//!   typos, nicknames, transliterations and swapped dates, without presenting a sibling.
//! - `reporter`: sends the enquiry outbox to the primaries until each enquiry is committed.
//! - [`metrics`]: the figures Prometheus scrapes, on a plain HTTP listener of their own.
//! - [`lookup`]: the lookup service for terminals and duty workers (call-back verification),
//!   recording every enquiry with its outbox entry before answering.
//! - [`console`]: the duty console, a web page for the people on shift, over the same lookups.

pub mod clock;
pub mod config;
pub mod console;
pub mod import;
pub mod intake;
pub mod lookup;
pub mod matching;
pub mod metrics;
mod reporter;
pub mod status;
pub mod store;
pub mod subscriber;

#[cfg(test)]
mod test_primary;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, ConfigError};
use crate::import::ImportError;
use crate::intake::Intake;
use crate::status::LinkState;
use crate::store::{Store, StoreError};
use crate::subscriber::Subscriber;

pub use crate::clock::{Clock, FixedClock, SystemClock};
pub use crate::status::{AuthorityStatus, HeldVersion};
pub use cpreg_proto::snapshot::TrustedState;

/// Why the replica could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file the configuration names could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The data folder could not be created.
    #[error("cannot create data folder {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An authority's primary address or TLS material is unusable.
    #[error("authority {authority}: {message}")]
    Primary { authority: String, message: String },
    /// The database could not be opened.
    #[error("opening the replica's database: {0}")]
    Store(#[from] StoreError),
    /// The database is held by a running replica (an offline command was run beside it).
    #[error(
        "the replica's database {path} is open in a running cpreg-replica: stop it, run this again, then start it"
    )]
    InUse { path: PathBuf },
    /// A snapshot file was not imported.
    #[error("import: {0}")]
    Import(#[from] ImportError),
    /// The duty console could not start.
    #[error(transparent)]
    Console(#[from] console::ConsoleError),
}

/// One authority followed by a running replica.
struct Followed {
    id: String,
    link: Arc<LinkState>,
}

/// A running replica: one subscriber task per authority, one store.
pub struct Replica {
    config: Config,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    followed: Vec<Followed>,
    /// Set to `true` to stop every subscriber.
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Where the lookup service listens, when the configuration asks for one.
    lookup_addr: Option<std::net::SocketAddr>,
    /// Where the duty console listens, when the configuration asks for one.
    console_addr: Option<std::net::SocketAddr>,
    /// Where Prometheus scrapes, when the configuration asks for it.
    metrics_addr: Option<std::net::SocketAddr>,
}

/// Starts the lookup service over mutual TLS; it stops when `shutdown` turns true.
async fn serve_lookups(
    lookups: &config::LookupConfig,
    service: Arc<lookup::LookupService>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(std::net::SocketAddr, JoinHandle<()>), ReplicaError> {
    use cpreg_proto::limits::{LOOKUPS, SMALL_REQUEST_BYTES};
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let read = |what: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| ReplicaError::Read {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let tls = LOOKUPS.tls(
        ServerTlsConfig::new()
            .identity(Identity::from_pem(
                read("lookup certificate", &lookups.cert)?,
                read("lookup key", &lookups.key)?,
            ))
            .client_ca_root(Certificate::from_pem(read(
                "terminal CA",
                &lookups.client_ca,
            )?)),
    );
    let listener = tokio::net::TcpListener::bind(lookups.listen)
        .await
        .map_err(|source| ReplicaError::Read {
            what: "lookup listen address",
            path: PathBuf::from(lookups.listen.to_string()),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ReplicaError::Read {
        what: "lookup listen address",
        path: PathBuf::from(lookups.listen.to_string()),
        source,
    })?;
    type Lookups = cpreg_proto::pb::lookup_server::LookupServer<lookup::LookupService>;
    // gRPC health beside the lookups, on the same mutual-TLS server: "" (the server) and
    // `cpreg.v1.Lookup` report SERVING until shutdown begins.
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<Lookups>().await;
    // A lookup is tiny and answered from the local store: a request over 64 KiB is refused
    // before it is read or recorded, and a call not answered within `LOOKUPS.call` is ended.
    let router = LOOKUPS
        .server()
        .tls_config(tls)
        .map_err(|e| ReplicaError::Primary {
            authority: String::new(),
            message: format!("lookup TLS: {e}"),
        })?
        .add_service(LOOKUPS.timed(health_service.max_decoding_message_size(SMALL_REQUEST_BYTES)))
        .add_service(
            LOOKUPS.timed(reflection_service()?.max_decoding_message_size(SMALL_REQUEST_BYTES)),
        )
        .add_service(
            LOOKUPS
                .timed(Lookups::from_arc(service).max_decoding_message_size(SMALL_REQUEST_BYTES)),
        );
    let task = tokio::spawn(async move {
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        let stop = async move {
            while !*shutdown.borrow_and_update() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
            health.set_not_serving::<Lookups>().await;
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
        };
        if let Err(error) = router.serve_with_incoming_shutdown(incoming, stop).await {
            tracing::error!(%error, "lookup service stopped");
        }
    });
    tracing::info!(%addr, "lookups served");
    Ok((addr, task))
}

/// gRPC reflection of the cpreg.v1 contract and of health, beside the lookups: `grpcurl` with a
/// terminal's certificate lists and describes them without a copy of the `.proto` files.
fn reflection_service() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    ReplicaError,
> {
    type Lookups = cpreg_proto::pb::lookup_server::LookupServer<lookup::LookupService>;
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(cpreg_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // Only what this listener serves: the contract also describes the primary's services.
        .with_service_name(<Lookups as tonic::server::NamedService>::NAME)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .map_err(|e| ReplicaError::Primary {
            authority: String::new(),
            message: format!("gRPC reflection: {e}"),
        })
}

/// Serves the metrics on the configured listener until `shutdown` turns true.
async fn serve_metrics(
    settings: &config::MetricsConfig,
    sources: metrics::Sources,
    shutdown: watch::Receiver<bool>,
) -> Result<(std::net::SocketAddr, JoinHandle<()>), ReplicaError> {
    let unusable = |source| ReplicaError::Read {
        what: "metrics listen address",
        path: PathBuf::from(settings.listen.to_string()),
        source,
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(unusable)?;
    let addr = listener.local_addr().map_err(unusable)?;
    let metrics = Arc::new(metrics::Metrics::new());
    metrics.time_applies(&sources.followed);
    let sources = Arc::new(sources);
    let task = metrics::serve(
        listener,
        move || metrics.clone().render(sources.clone()),
        shutdown,
    );
    tracing::info!(%addr, "metrics served at /metrics");
    Ok((addr, task))
}

/// Installs ring as the process's TLS provider; a second call is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Creates the data folder (0700 where it is created) and opens the store in it.
pub async fn open_store(config: &Config) -> Result<Store, ReplicaError> {
    let dir = config.data_dir.clone();
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&dir)
        .map_err(|source| ReplicaError::DataDir { path: dir, source })?;
    let path = config.database_path();
    let opening = path.clone();
    match tokio::task::spawn_blocking(move || Store::open(&opening)).await {
        Ok(Err(StoreError::Database(redb::Error::DatabaseAlreadyOpen))) => {
            Err(ReplicaError::InUse { path })
        }
        Ok(store) => Ok(store?),
        Err(e) => Err(StoreError::Task(e.to_string()).into()),
    }
}

/// An intake for one configured authority over `store`, trusting its enrolled keys and the
/// rotations already followed: what the subscriber uses, for an imported file.
async fn intake_for(
    config: &Config,
    authority: &str,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    link: Arc<LinkState>,
) -> Result<Intake, ReplicaError> {
    let entry = config
        .authorities
        .iter()
        .find(|a| a.id == authority)
        .ok_or_else(|| ImportError::UnknownAuthority(authority.to_owned()))?;
    Ok(Intake::new(
        &entry.id,
        entry.enrolled_keys()?,
        store,
        clock,
        config.max_snapshot_bytes,
        link,
    )
    .await?)
}

/// `cpreg-replica import`: imports a snapshot file with the replica stopped (the serving process
/// holds the database). Returns the version held afterwards.
pub async fn import_offline(
    config: &Config,
    authority: &str,
    identity: &Path,
    file: &Path,
    clock: Arc<dyn Clock>,
) -> Result<TrustedState, ReplicaError> {
    config.validate()?;
    let identity = import::load_identity(identity)?;
    let store = Arc::new(open_store(config).await?);
    let link = Arc::new(LinkState::default());
    let mut intake = intake_for(config, authority, store, clock, link).await?;
    Ok(import::import_file(&mut intake, file, identity).await?)
}

impl Replica {
    /// Checks the configuration, opens the store and starts following every authority. Returns
    /// once the subscribers are started, not once they are connected: a replica cut off from a
    /// primary still starts and serves what it holds.
    pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<Replica, ReplicaError> {
        config.validate()?;
        install_crypto_provider();
        let mut endpoints = Vec::new();
        for authority in &config.authorities {
            endpoints.push((
                authority,
                subscriber::endpoint(authority)?,
                authority.enrolled_keys()?,
            ));
        }
        let store = Arc::new(open_store(&config).await?);
        let (shutdown, watcher) = watch::channel(false);
        let mut followed = Vec::new();
        let mut subscribers = Vec::new();
        for (authority, endpoint, enrolled) in endpoints {
            let link = Arc::new(LinkState::default());
            let intake = Intake::new(
                &authority.id,
                enrolled,
                store.clone(),
                clock.clone(),
                config.max_snapshot_bytes,
                link.clone(),
            )
            .await?;
            subscribers.push(Subscriber {
                endpoint,
                intake,
                store: store.clone(),
                link: link.clone(),
                clock: clock.clone(),
                staleness_threshold: config.staleness_threshold(),
                idle_limit: config.freshness_check_seconds.map(Duration::from_secs),
                shutdown: watcher.clone(),
            });
            followed.push(Followed {
                id: authority.id.clone(),
                link,
            });
        }
        let mut tasks: Vec<JoinHandle<()>> = subscribers
            .into_iter()
            .map(|s| tokio::spawn(s.run()))
            .collect();
        // The enquiry outbox goes to the primaries whatever else happens.
        let reporter = reporter::Reporter {
            store: store.clone(),
            primaries: config
                .authorities
                .iter()
                .map(|a| subscriber::endpoint(a).map(|e| (a.id.clone(), e)))
                .collect::<Result<_, _>>()?,
            shutdown: watcher.clone(),
        };
        tasks.push(tokio::spawn(reporter.run()));
        tasks.push(tokio::spawn(purge_hourly(
            store.clone(),
            clock.clone(),
            chrono::Duration::days(i64::from(config.delivered_retention_days)),
            watcher.clone(),
        )));
        // One lookup service for the gRPC terminals and the console: shared limits and journal.
        let lookup_service = config.lookups.as_ref().map(|lookups| {
            Arc::new(lookup::LookupService::new(
                store.clone(),
                Arc::new(config.clone()),
                lookups.clone(),
                clock.clone(),
            ))
        });
        let lookup_addr = match (&config.lookups, &lookup_service) {
            (Some(lookups), Some(service)) => {
                let (addr, task) = serve_lookups(lookups, service.clone(), watcher.clone()).await?;
                tasks.push(task);
                Some(addr)
            }
            _ => None,
        };
        let console_addr = match (&config.console, &lookup_service) {
            (Some(settings), Some(service)) => {
                let links = followed
                    .iter()
                    .map(|f| (f.id.clone(), f.link.clone()))
                    .collect();
                let console = console::Console::new(
                    &config,
                    settings,
                    service.clone(),
                    store.clone(),
                    clock.clone(),
                    links,
                )?;
                let (addr, task) = console::serve(console, settings, watcher.clone()).await?;
                tasks.push(task);
                Some(addr)
            }
            _ => None,
        };
        let metrics_addr = match &config.metrics {
            Some(settings) => {
                let sources = metrics::Sources {
                    store: store.clone(),
                    clock: clock.clone(),
                    staleness_threshold: config.staleness_threshold(),
                    followed: followed
                        .iter()
                        .map(|f| (f.id.clone(), f.link.clone()))
                        .collect(),
                };
                let (addr, task) = serve_metrics(settings, sources, watcher.clone()).await?;
                tasks.push(task);
                Some(addr)
            }
            None => None,
        };
        tracing::info!(site = %config.site, authorities = followed.len(), "replica started");
        Ok(Replica {
            config,
            store,
            clock,
            followed,
            shutdown,
            tasks,
            lookup_addr,
            console_addr,
            metrics_addr,
        })
    }

    /// Where the lookup service listens (port 0 in the configuration picks a free one).
    pub fn lookup_addr(&self) -> Option<std::net::SocketAddr> {
        self.lookup_addr
    }

    /// Where the duty console listens (port 0 in the configuration picks a free one).
    pub fn console_addr(&self) -> Option<std::net::SocketAddr> {
        self.console_addr
    }

    /// Where Prometheus scrapes (port 0 in the configuration picks a free one).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr
    }

    /// Where each authority's copy stands now, in configuration order.
    pub fn status(&self) -> Vec<AuthorityStatus> {
        let now = self.clock.now();
        self.followed
            .iter()
            .map(|f| {
                let held = self.store.trusted_state(&f.id).unwrap_or_else(|error| {
                    tracing::warn!(authority = %f.id, %error, "cannot read the version held");
                    Default::default()
                });
                f.link.status(HeldVersion::new(
                    &f.id,
                    &held,
                    now,
                    self.config.staleness_threshold(),
                ))
            })
            .collect()
    }

    /// Imports a snapshot file for `authority` into this running replica: through an intake of
    /// its own on the same store, counting refusals in that authority's status. A subscription
    /// in flight is not disturbed: each apply re-checks the version held inside its transaction.
    pub async fn import_file(
        &self,
        authority: &str,
        identity: &Path,
        file: &Path,
    ) -> Result<TrustedState, ReplicaError> {
        let identity = import::load_identity(identity)?;
        let link = self
            .followed
            .iter()
            .find(|f| f.id == authority)
            .map(|f| f.link.clone())
            .ok_or_else(|| ImportError::UnknownAuthority(authority.to_owned()))?;
        let mut intake = intake_for(
            &self.config,
            authority,
            self.store.clone(),
            self.clock.clone(),
            link,
        )
        .await?;
        Ok(import::import_file(&mut intake, file, identity).await?)
    }

    /// The store, for lookups and tests.
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs until `shutdown` completes, then stops.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        self.stop().await;
    }

    /// Signals every subscriber to stop and waits for them; an apply in flight finishes (or
    /// aborts) first, so the store is left consistent and closed once the last handle is gone.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            if let Err(error) = task.await {
                tracing::error!(%error, "a subscriber task failed");
            }
        }
        tracing::info!(site = %self.config.site, "replica stopped");
    }
}

/// A replica dropped without [`Replica::stop`] still tells its subscribers to stop.
impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// Starts a replica and runs it until `shutdown` completes. For a caller that needs to know when
/// it is up (to print "ready"), use [`Replica::start`] then [`Replica::run_until`].
pub async fn run(
    config: Config,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ReplicaError> {
    Replica::start(config, clock)
        .await?
        .run_until(shutdown)
        .await;
    Ok(())
}

/// What `cpreg-replica status` shows: the versions held, read from the store on disk (alongside
/// a running replica or not). An authority with no database yet shows as holding nothing.
pub fn held_versions(
    config: &Config,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<HeldVersion>, ReplicaError> {
    let path = config.database_path();
    let store = if path.exists() {
        Some(Store::open_read_only(&path)?)
    } else {
        None
    };
    config
        .authorities
        .iter()
        .map(|a| {
            let held = match &store {
                Some(store) => store.trusted_state(&a.id)?,
                None => Default::default(),
            };
            Ok(HeldVersion::new(
                &a.id,
                &held,
                now,
                config.staleness_threshold(),
            ))
        })
        .collect()
}

/// Removes, once an hour, the enquiries the primary acknowledged longer ago than the retention.
async fn purge_hourly(
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    retention: chrono::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (store, before) = (store.clone(), clock.now() - retention);
        match tokio::task::spawn_blocking(move || store.purge_delivered(before)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::info!(removed = n, %before, "delivered enquiries past retention removed")
            }
            Ok(Err(e)) => tracing::error!(error = %e, "removing delivered enquiries failed"),
            Err(e) => tracing::error!(error = %e, "the retention task failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}
