//! The `cpreg-replica` command line: parse flags, load the configuration, start the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cpreg_replica::clock::{Clock, SystemClock};
use cpreg_replica::config::{Config, LogFormat, MetricsConfig};

/// A read-only cpreg replica for an A&E, EDT or CAIT site.
#[derive(Debug, Parser)]
#[command(name = "cpreg-replica", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Follow every configured authority's primary until Ctrl-C or SIGTERM.
    Serve {
        /// The TOML configuration file.
        #[arg(long, env = "CPREG_REPLICA_CONFIG")]
        config: PathBuf,
        /// Keep state here instead of the configured folder.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The lookup service's TLS private key instead of the configured `lookups.key`.
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
        #[arg(long, env = "CPREG_REPLICA_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Make this site's identity for snapshot files and print its recipient.
    ///
    /// The identity file (mode 0600) stays at the site; the recipient printed goes to each
    /// authority that will export snapshots to this site (`cpreg-primary export --recipient`).
    Keygen {
        /// Where to write the identity; an existing file is not replaced.
        #[arg(long)]
        out: PathBuf,
    },
    /// Import a snapshot file an authority exported for this site, with the replica stopped.
    ///
    /// The file (from `cpreg-primary export`) passes every check a subscription does; then the
    /// version held is printed.
    Import {
        #[arg(long, env = "CPREG_REPLICA_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The authority the file is from, as in the configuration.
        #[arg(long)]
        authority: String,
        /// This site's age identity file, as `keygen` wrote it.
        #[arg(long)]
        identity: PathBuf,
        /// The encrypted snapshot file.
        file: PathBuf,
    },
    /// Manage the duty console's operator accounts (read at each sign-in: no restart needed).
    Operator {
        #[command(subcommand)]
        action: OperatorAction,
    },
    /// Show the version held of each authority, its as-of time and whether it is stale.
    Status {
        #[arg(long, env = "CPREG_REPLICA_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print one JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorAction {
    /// Add an operator; the password is read from stdin with --password-stdin, or else a
    /// random one is made and printed once.
    Add {
        #[arg(long, env = "CPREG_REPLICA_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The sign-in name, recorded with every enquiry they make.
        name: String,
        /// Their role, recorded with every enquiry ("ED registrar", "EDT duty worker").
        #[arg(long)]
        role: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
        /// Replace an existing operator of that name (a new password or role).
        #[arg(long)]
        replace: bool,
    },
    /// Remove an operator; their sessions end at their next request.
    Remove {
        #[arg(long, env = "CPREG_REPLICA_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        name: String,
    },
    /// List the operators (names, roles and when added; never the hashes).
    List {
        #[arg(long, env = "CPREG_REPLICA_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Print one JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cpreg-replica: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path, data_dir: Option<PathBuf>) -> anyhow::Result<Config> {
    let mut config = Config::load(path)?;
    if let Some(dir) = data_dir {
        config.data_dir = dir;
    }
    Ok(config)
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            data_dir,
            tls_key,
            metrics_listen,
            log_format,
            log_json,
        } => {
            let mut config = load(&config, data_dir)?;
            if let (Some(key), Some(lookups)) = (tls_key, config.lookups.as_mut()) {
                lookups.key = key;
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
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(async move {
                let replica = cpreg_replica::Replica::start(config, Arc::new(SystemClock)).await?;
                // Tests and scripts wait for this line.
                println!("cpreg-replica ready");
                replica.run_until(shutdown_signal()).await;
                anyhow::Ok(())
            })
        }
        Command::CheckConfig { config, data_dir } => {
            let path = config.clone();
            let config = load(&config, data_dir)?;
            println!("{}: the configuration is usable", path.display());
            println!("site           {}", config.site);
            println!("database       {}", config.database_path().display());
            for authority in &config.authorities {
                println!("follows        {} at {}", authority.id, authority.primary);
            }
            println!(
                "lookups        {}",
                config
                    .lookups
                    .as_ref()
                    .map_or_else(|| "off".to_owned(), |l| l.listen.to_string())
            );
            println!(
                "metrics        {}",
                config.metrics.as_ref().map_or_else(
                    || "off".to_owned(),
                    |m| format!("http://{}/metrics", m.listen)
                )
            );
            Ok(())
        }
        Command::Keygen { out } => {
            let recipient = cpreg_replica::import::generate_identity(&out)?;
            eprintln!(
                "wrote this site's identity to {}; keep it private",
                out.display()
            );
            // The recipient alone on stdout, for scripts.
            println!("{recipient}");
            Ok(())
        }
        Command::Import {
            config,
            data_dir,
            authority,
            identity,
            file,
        } => {
            let config = load(&config, data_dir)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            let held = runtime.block_on(cpreg_replica::import_offline(
                &config,
                &authority,
                &identity,
                &file,
                Arc::new(SystemClock),
            ))?;
            let as_of = chrono::DateTime::from_timestamp(held.issued_at, 0)
                .map_or_else(|| held.issued_at.to_string(), |t| t.to_rfc3339());
            println!(
                "{authority}  version {}  as of {as_of}  {} entries  state root {}",
                held.version,
                held.entry_count,
                hex::encode(&held.state_root)
            );
            Ok(())
        }
        Command::Operator { action } => operator(action),
        Command::Status {
            config,
            data_dir,
            json,
        } => {
            let config = load(&config, data_dir)?;
            let held = cpreg_replica::held_versions(&config, SystemClock.now())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&held)?);
                return Ok(());
            }
            for h in held {
                let as_of = h
                    .as_of
                    .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
                let stale = if h.stale { "STALE" } else { "fresh" };
                println!(
                    "{}  version {}  as of {}  {}  {} entries",
                    h.authority, h.version, as_of, stale, h.entry_count
                );
            }
            Ok(())
        }
    }
}

/// `cpreg-replica operator ...`: the accounts file of the configured console.
fn operator(action: OperatorAction) -> anyhow::Result<()> {
    use cpreg_replica::console::operators;
    match action {
        OperatorAction::Add {
            config,
            data_dir,
            name,
            role,
            password_stdin,
            replace,
        } => {
            let config = load(&config, data_dir)?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from stdin")?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (operators::random_password()?, true)
            };
            let path = config.operators_path();
            operators::add(&path, &name, &role, &password, replace, SystemClock.now())?;
            eprintln!("operator {name} ({role}) can sign in to the console");
            if generated {
                // The password alone on stdout, for scripts; it is not kept anywhere.
                println!("{password}");
            }
            Ok(())
        }
        OperatorAction::Remove {
            config,
            data_dir,
            name,
        } => {
            let config = load(&config, data_dir)?;
            operators::remove(&config.operators_path(), &name)?;
            eprintln!("operator {name} removed");
            Ok(())
        }
        OperatorAction::List {
            config,
            data_dir,
            json,
        } => {
            let config = load(&config, data_dir)?;
            let list = operators::load(&config.operators_path())?;
            if json {
                let shown: Vec<_> = list
                    .iter()
                    .map(|o| serde_json::json!({ "name": o.name, "role": o.role, "created": o.created }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&shown)?);
                return Ok(());
            }
            for o in list {
                println!("{}  {}  added {}", o.name, o.role, o.created.to_rfc3339());
            }
            Ok(())
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
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

/// Logs through tracing to stderr, as text or JSON lines, filtered by `RUST_LOG` (default `info`).
fn init_logging(json: bool) {
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
