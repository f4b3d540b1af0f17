//! The `cpreg-primary` command line, built inside the test package so tests can start it as a
//! separate process (and kill it) by `CARGO_BIN_EXE_cpreg-primary-under-test`.

fn main() -> std::process::ExitCode {
    cpreg_primary::cli::main()
}
