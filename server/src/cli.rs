//! The `cpreg-primary` command line: serve the register; offline, with the server stopped, check
//! its audit chain, rotate its signing key, or export a snapshot for a site with no link.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::{Config, LogFormat, MetricsConfig};

/// The authoritative register of children with a Child Protection Plan.
#[derive(Debug, Parser)]
#[command(name = "cpreg-primary", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the configuration is, and the settings an operator may give outside it: every
/// subcommand that opens the register takes these.
#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// The TOML configuration file.
    #[arg(long, env = "CPREG_PRIMARY_CONFIG")]
    config: PathBuf,
    /// Keep state here instead of the configured folder.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The signing key's file instead of `data_dir/signing.key` (or the configured
    /// `signing_key`).
    #[arg(long, env = "CPREG_PRIMARY_SIGNING_KEY")]
    signing_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the register over gRPC with mutual TLS.
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
        /// Listen here instead of the configured address (port 0 picks a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The server's TLS private key instead of the configured `tls.key`.
        #[arg(long, env = "CPREG_TLS_KEY")]
        tls_key: Option<PathBuf>,
        /// Serve Prometheus metrics at http://ADDR/metrics (overrides `[metrics] listen`).
        #[arg(long, env = "CPREG_METRICS_LISTEN")]
        metrics_listen: Option<std::net::SocketAddr>,
        /// Log as `human` text or `json` lines (overrides `log_format`).
        #[arg(long, value_enum, env = "CPREG_LOG_FORMAT")]
        log_format: Option<LogFormat>,
        /// The same as `--log-format json`.
        #[arg(long, hide = true, conflicts_with = "log_format")]
        log_json: bool,
    },
    /// Load and check the configuration, print what it resolves to, and exit: for an
    /// `ExecStartPre=` and for anyone changing the file.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Verify the audit chain of a register on disk, with the server stopped.
    AuditVerify {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Replace the signing key, with the server stopped.
    ///
    /// The new key is announced in a statement signed by the old one, which every replica follows
    /// on its next subscription. The old key is kept as signing.key.retired-<key id>. If a run is
    /// interrupted, run it again: it finishes the rotation it began.
    RotateKey {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// After restoring the register from a backup, publish it above every version replicas hold.
    ///
    /// Replicas refuse anything older than what they hold (a rollback), so a register restored
    /// to an earlier version would never reach them. Give the highest version `cpreg admin
    /// replicas` showed; the register is published as the next version, and every replica
    /// takes it as a full snapshot. Run with the server stopped.
    Restored {
        #[command(flatten)]
        config: ConfigArgs,
        /// The highest version any replica holds.
        #[arg(long)]
        above: u64,
    },
    /// Write the current version, signed, to a file encrypted for one site, with the server stopped.
    ///
    /// The file is carried to a replica with no link and imported there with
    /// `cpreg-replica import`, which checks it as it checks a subscription.
    Export {
        #[command(flatten)]
        config: ConfigArgs,
        /// The receiving site's age recipient (`age1...`), as its `cpreg-replica keygen` printed.
        #[arg(long)]
        recipient: String,
        /// The file to write (mode 0600); an existing file is not replaced.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Loads the configuration and applies the overrides every subcommand shares.
fn load(args: ConfigArgs) -> Result<Config, String> {
    let mut config = Config::load(&args.config).map_err(|e| e.to_string())?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(key) = args.signing_key {
        config.signing_key = Some(key);
    }
    Ok(config)
}

/// Runs the command line; `main.rs` is only this call.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("cpreg-primary: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Serve {
            config,
            listen,
            tls_key,
            metrics_listen,
            log_format,
            log_json,
        } => {
            let mut config = load(config)?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if let Some(key) = tls_key {
                config.tls.key = key;
            }
            if let Some(listen) = metrics_listen {
                config.metrics = Some(MetricsConfig { listen });
            }
            if log_json {
                config.log_format = LogFormat::Json;
            } else if let Some(format) = log_format {
                config.log_format = format;
            }
            init_logging(config.log_format == LogFormat::Json);
            let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                // Tests and scripts wait for this line.
                println!("cpreg-primary listening on {addr}");
                crate::run(config, Arc::new(SystemClock), listener, shutdown_signal())
                    .await
                    .map_err(|e| e.to_string())
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config } => {
            let path = config.config.clone();
            let config = load(config)?;
            println!("{}: the configuration is usable", path.display());
            println!("authority      {}", config.authority);
            println!("listen         {}", config.listen);
            println!("register       {}", config.database_path().display());
            println!("signing key    {}", config.signing_key_path().display());
            // What a replica enrols (`public_keys` in its configuration), for the operator to
            // send to the site and compare there by a second channel.
            if config.signing_key_path().exists() {
                let key =
                    crate::keys::load(&config.signing_key_path()).map_err(|e| e.to_string())?;
                println!(
                    "public key     {}",
                    hex::encode(key.verifying_key().as_bytes())
                );
            } else {
                println!("public key     (none yet: the key is made on first start)");
            }
            println!(
                "metrics        {}",
                config.metrics.as_ref().map_or_else(
                    || "off".to_owned(),
                    |m| format!("http://{}/metrics", m.listen)
                )
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::AuditVerify { config } => {
            let config = load(config)?;
            crate::install_crypto_provider();
            let store = crate::open_store(&config, Arc::new(SystemClock)).map_err(|e| match e {
                crate::ServeError::Store(e) if e.is_in_use() => format!(
                    "the register {} is open in a running cpreg-primary: stop it first, or use `cpreg admin audit verify` against it",
                    config.database_path().display()
                ),
                other => other.to_string(),
            })?;
            match store.verify_audit().map_err(|e| e.to_string())? {
                Ok(report) => {
                    println!(
                        "audit chain intact: {} entries, {} signed checkpoints",
                        report.entries, report.checkpoints
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(broken) => {
                    println!("audit chain BROKEN: {broken}");
                    Ok(ExitCode::from(3))
                }
            }
        }
        Command::Restored { config, above } => {
            let config = load(config)?;
            crate::install_crypto_provider();
            let store =
                crate::open_store(&config, Arc::new(SystemClock)).map_err(|e| e.to_string())?;
            let version = store.publish_above(above).map_err(|e| e.to_string())?;
            println!(
                "the register is published as version {version}; replicas take it as a full snapshot on their next subscription"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::RotateKey { config } => {
            let config = load(config)?;
            let rotated =
                crate::keys::rotate(&config, Arc::new(SystemClock)).map_err(|e| e.to_string())?;
            if rotated.resumed {
                println!("finished the key rotation an earlier run began");
            }
            println!(
                "old key {} retired, kept in {}",
                rotated.old_key_id,
                rotated.retired.display()
            );
            println!("new key {} in force", rotated.new_key_id);
            println!(
                "replicas enrolled with an earlier key follow the rotation on their next subscription"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            config,
            recipient,
            out,
        } => {
            let config = load(config)?;
            let exported =
                crate::export::export_snapshot(&config, Arc::new(SystemClock), &recipient, &out)
                    .map_err(|e| e.to_string())?;
            println!(
                "wrote version {} ({} entries, state root {}, {} key rotations) to {}",
                exported.version,
                exported.entry_count,
                &exported.state_root[..exported.state_root.len().min(16)],
                exported.rotations,
                exported.path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

/// Logs through tracing, as text or JSON lines, filtered by `RUST_LOG` (default `info`).
pub fn init_logging(json: bool) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
