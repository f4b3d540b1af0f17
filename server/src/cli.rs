//! The `cpreg-primary` command line: serve the register, or check its audit chain offline.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::Config;

/// The authoritative register of children with a Child Protection Plan.
#[derive(Debug, Parser)]
#[command(name = "cpreg-primary", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the register over gRPC with mutual TLS.
    Serve {
        /// The TOML configuration file.
        #[arg(long, env = "CPREG_PRIMARY_CONFIG")]
        config: PathBuf,
        /// Listen here instead of the configured address (port 0 picks a free port).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Keep state here instead of the configured folder.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Log as JSON lines instead of human-readable text.
        #[arg(long)]
        log_json: bool,
    },
    /// Verify the audit chain of a register on disk, with the server stopped.
    AuditVerify {
        #[arg(long, env = "CPREG_PRIMARY_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn load(config: &std::path::Path, data_dir: Option<PathBuf>) -> Result<Config, String> {
    let mut config = Config::load(config).map_err(|e| e.to_string())?;
    if let Some(dir) = data_dir {
        config.data_dir = dir;
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
            data_dir,
            log_json,
        } => {
            let mut config = load(&config, data_dir)?;
            if let Some(listen) = listen {
                config.listen = listen;
            }
            init_logging(log_json);
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
        Command::AuditVerify { config, data_dir } => {
            let config = load(&config, data_dir)?;
            crate::install_crypto_provider();
            let store =
                crate::open_store(&config, Arc::new(SystemClock)).map_err(|e| e.to_string())?;
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
