use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cpreg::cli::Cli::parse();
    match cpreg::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cpreg: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
