//! A primary started inside this process under one folder, with its TLS files and config beside
//! its data: what the demo runs and what the test harness starts on port 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cpreg_primary::clock::Clock;
use cpreg_primary::config::{AuthorityContact, Config, Publishing, TlsConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::output::CliError;
use crate::pki::{DevCa, write_issued};

/// A running in-process primary.
#[derive(Debug)]
pub struct LocalPrimary {
    pub addr: SocketAddr,
    /// `https://127.0.0.1:PORT`, for profiles.
    pub url: String,
    pub config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), cpreg_primary::ServeError>>,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.to_owned();
    move |source| CliError::Io { what, path, source }
}

/// Writes the primary's certificate and config under `dir` (once) and returns the config.
pub fn prepare_primary(dir: &Path, ca: &DevCa, listen: SocketAddr) -> Result<Config, CliError> {
    prepare_primary_with(dir, ca, listen, |_| {})
}

/// As [`prepare_primary`], with the config changed by `configure` before it is written (a
/// `[notifications]` section, say).
pub fn prepare_primary_with(
    dir: &Path,
    ca: &DevCa,
    listen: SocketAddr,
    configure: impl FnOnce(&mut Config),
) -> Result<Config, CliError> {
    let tls_dir = dir.join("tls");
    std::fs::create_dir_all(&tls_dir).map_err(io("folder", &tls_dir))?;
    let mut config = Config {
        authority: ca.authority().to_owned(),
        data_dir: dir.join("data"),
        listen,
        tls: TlsConfig {
            cert: tls_dir.join("cert.pem"),
            key: tls_dir.join("key.pem"),
            client_ca: tls_dir.join("ca.pem"),
        },
        contact: AuthorityContact {
            name: format!("{} Children's Services", ca.authority()),
            office_phone: "020 7946 0000".into(),
            edt_phone: "020 7946 0999".into(),
        },
        publishing: Publishing::default(),
        notifications: None,
        retention: Default::default(),
        signing_key: None,
        metrics: None,
        log_format: Default::default(),
    };
    configure(&mut config);
    if !config.tls.cert.exists() {
        let issued = ca.issue_server("cpreg-primary", &["localhost".into(), "127.0.0.1".into()])?;
        write_issued(&issued, &config.tls.cert, &config.tls.key)?;
        std::fs::write(&config.tls.client_ca, ca.ca_pem())
            .map_err(io("CA file", &config.tls.client_ca))?;
    }
    let path = dir.join("primary.toml");
    let text = toml::to_string(&config).map_err(|e| CliError::Invalid(e.to_string()))?;
    std::fs::write(&path, text).map_err(io("config file", &path))?;
    Ok(config)
}

impl LocalPrimary {
    /// Starts a primary on a free loopback port with its state under `dir`.
    pub async fn start(
        dir: &Path,
        ca: &DevCa,
        clock: Arc<dyn Clock>,
    ) -> Result<LocalPrimary, CliError> {
        Self::start_on(dir, ca, clock, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a primary on `addr` (port 0 for a free one) with its state under `dir`.
    pub async fn start_on(
        dir: &Path,
        ca: &DevCa,
        clock: Arc<dyn Clock>,
        addr: SocketAddr,
    ) -> Result<LocalPrimary, CliError> {
        Self::start_configured(dir, ca, clock, addr, |_| {}).await
    }

    /// As [`LocalPrimary::start_on`], with the config changed by `configure` first.
    pub async fn start_configured(
        dir: &Path,
        ca: &DevCa,
        clock: Arc<dyn Clock>,
        addr: SocketAddr,
        configure: impl FnOnce(&mut Config),
    ) -> Result<LocalPrimary, CliError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(io("listener", Path::new(&addr.to_string())))?;
        let addr = listener
            .local_addr()
            .map_err(io("listener", Path::new(&addr.to_string())))?;
        let config = prepare_primary_with(dir, ca, addr, configure)?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(cpreg_primary::run(config.clone(), clock, listener, async {
            let _ = rx.await;
        }));
        Ok(LocalPrimary {
            addr,
            url: format!("https://127.0.0.1:{}", addr.port()),
            config,
            shutdown: Some(tx),
            task,
        })
    }

    /// The folder the primary keeps its state in.
    pub fn data_dir(&self) -> PathBuf {
        self.config.data_dir.clone()
    }

    /// Whether the server task has stopped (for example, it could not open its register).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the server and waits until every request in flight is done and the register closed.
    pub async fn stop(mut self) -> Result<(), CliError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match (&mut self.task).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CliError::Invalid(format!(
                "primary stopped with an error: {e}"
            ))),
            Err(e) => Err(CliError::Invalid(format!("primary task failed: {e}"))),
        }
    }
}

/// The primary's public key (hex), read from its key file as an operator enrolling a replica
/// would.
pub fn primary_public_key(primary: &Config) -> Result<String, CliError> {
    let path = primary.signing_key_path();
    let text = std::fs::read_to_string(&path).map_err(io("signing key", &path))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| CliError::Invalid(format!("{} is not 32 bytes of hex", path.display())))?;
    Ok(hex::encode(
        ed25519_dalek::SigningKey::from_bytes(&bytes)
            .verifying_key()
            .as_bytes(),
    ))
}

/// Writes a site replica's certificate for `ca`'s authority under `dir` and returns the
/// authority's entry in the replica's configuration.
pub fn replica_authority(
    dir: &Path,
    site: &str,
    ca: &DevCa,
    primary_url: &str,
    public_key: &str,
) -> Result<cpreg_replica::config::AuthorityConfig, CliError> {
    let tls = dir.join("tls").join(ca.authority());
    std::fs::create_dir_all(&tls).map_err(io("folder", &tls))?;
    let issued = ca.issue_client(
        cpreg_proto::role::Role::Replica,
        &format!("Replica {site}"),
        Some(site),
        365,
    )?;
    write_issued(&issued, &tls.join("cert.pem"), &tls.join("key.pem"))?;
    std::fs::write(tls.join("ca.pem"), ca.ca_pem()).map_err(io("CA file", &tls.join("ca.pem")))?;
    Ok(cpreg_replica::config::AuthorityConfig {
        id: ca.authority().to_owned(),
        primary: primary_url.to_owned(),
        server_name: "localhost".into(),
        public_keys: vec![public_key.to_owned()],
        tls: cpreg_replica::config::TlsConfig {
            cert: tls.join("cert.pem"),
            key: tls.join("key.pem"),
            ca: tls.join("ca.pem"),
        },
    })
}

/// A site replica's configuration with its state under `dir`, written to `dir/replica.toml`.
pub fn replica_config(
    dir: &Path,
    site: &str,
    authorities: Vec<cpreg_replica::config::AuthorityConfig>,
) -> Result<cpreg_replica::config::Config, CliError> {
    let config = cpreg_replica::config::Config {
        site: site.to_owned(),
        data_dir: dir.join("data"),
        staleness_threshold_hours: 24,
        max_snapshot_bytes: 1 << 30,
        freshness_check_seconds: None,
        authorities,
        lookups: None,
        delivered_retention_days: 30,
        console: None,
        metrics: None,
        log_format: Default::default(),
    };
    let path = dir.join("replica.toml");
    let text = toml::to_string(&config).map_err(|e| CliError::Invalid(e.to_string()))?;
    std::fs::write(&path, text).map_err(io("config file", &path))?;
    Ok(config)
}

/// A site replica's lookup service on `listen`: a server certificate under `dir` and the CA of
/// the site's terminals.
pub fn lookup_config(
    dir: &Path,
    ca: &DevCa,
    listen: SocketAddr,
    rate_limit_per_hour: u32,
) -> Result<cpreg_replica::config::LookupConfig, CliError> {
    let tls = dir.join("lookup-tls");
    std::fs::create_dir_all(&tls).map_err(io("folder", &tls))?;
    if !tls.join("cert.pem").exists() {
        let issued = ca.issue_server("cpreg-replica", &["localhost".into(), "127.0.0.1".into()])?;
        write_issued(&issued, &tls.join("cert.pem"), &tls.join("key.pem"))?;
        std::fs::write(tls.join("ca.pem"), ca.ca_pem())
            .map_err(io("CA file", &tls.join("ca.pem")))?;
    }
    Ok(cpreg_replica::config::LookupConfig {
        listen,
        cert: tls.join("cert.pem"),
        key: tls.join("key.pem"),
        client_ca: tls.join("ca.pem"),
        rate_limit_per_hour,
        site_rate_limit_per_hour: if rate_limit_per_hour == 0 { 0 } else { 1_000 },
        // 0 lifts every limit, the hold on sweeps too.
        terminal_rate_limit_per_hour: rate_limit_per_hour.saturating_mul(2),
        sweep_hold_minutes: if rate_limit_per_hour == 0 { 0 } else { 60 },
        callback_ticket_minutes: 30,
    })
}

/// A site replica's duty console on `listen`, for lookups made for `organisation`: the same
/// server certificate as its lookup service ([`lookup_config`] writes it first).
pub fn console_config(
    dir: &Path,
    ca: &DevCa,
    listen: SocketAddr,
    organisation: &str,
) -> Result<cpreg_replica::config::ConsoleConfig, CliError> {
    let tls = dir.join("lookup-tls");
    if !tls.join("cert.pem").exists() {
        lookup_config(dir, ca, listen, 60)?;
    }
    Ok(cpreg_replica::config::ConsoleConfig {
        listen,
        cert: tls.join("cert.pem"),
        key: tls.join("key.pem"),
        organisation: organisation.to_owned(),
        operators_file: None,
        session_minutes: 15,
        lockout_attempts: 5,
        lockout_minutes: 15,
        client_ca: None,
    })
}

/// Writes a terminal's profile folder: a certificate of `organisation` at `site`, dialling the
/// site's replica for lookups.
pub fn terminal_profile(
    out: &Path,
    ca: &DevCa,
    name: &str,
    site: &str,
    organisation: &str,
    primary_url: &str,
    replica_url: &str,
) -> Result<crate::profile::Profile, CliError> {
    std::fs::create_dir_all(out).map_err(io("profile folder", out))?;
    let issued = ca.issue_terminal(name, site, organisation, 30)?;
    write_issued(&issued, &out.join("cert.pem"), &out.join("key.pem"))?;
    std::fs::write(out.join("ca.pem"), ca.ca_pem()).map_err(io("CA file", &out.join("ca.pem")))?;
    let file = crate::profile::ProfileFile {
        role: cpreg_proto::role::Role::Terminal,
        name: name.to_owned(),
        authority: ca.authority().to_owned(),
        primary: primary_url.to_owned(),
        server_name: "localhost".into(),
        replica: Some(replica_url.to_owned()),
        site: Some(site.to_owned()),
    };
    crate::profile::Profile::write(out, &file)?;
    Ok(crate::profile::Profile::load(Some(out))?)
}
