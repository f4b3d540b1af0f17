use std::process::ExitCode;

use clap::Parser;

/// A cpreg replica for an A&E, EDT or CAIT site.
#[derive(Debug, Parser)]
#[command(name = "cpreg-replica", version)]
struct Cli {}

fn main() -> ExitCode {
    let _ = Cli::parse();
    eprintln!("cpreg-replica: snapshot intake and lookups are not built yet");
    ExitCode::FAILURE
}
