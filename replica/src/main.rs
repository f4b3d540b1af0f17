//! The `cpreg-replica` command line: parse flags, load the configuration, start the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use cpreg_replica::clock::{Clock, SystemClock};
use cpreg_replica::config::Config;

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
        /// Log as JSON lines instead of human-readable text.
        #[arg(long)]
        log_json: bool,
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
            log_json,
        } => {
            let config = load(&config, data_dir)?;
            init_logging(log_json);
            let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
            runtime.block_on(async move {
                let replica = cpreg_replica::Replica::start(config, Arc::new(SystemClock)).await?;
                // Tests and scripts wait for this line.
                println!("cpreg-replica ready");
                replica.run_until(shutdown_signal()).await;
                anyhow::Ok(())
            })
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
