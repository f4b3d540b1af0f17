fn main() -> std::process::ExitCode {
    cpreg_primary::cli::main()
}
