//! What `deploy/` hands an operator for the primary, checked against the real program: the
//! example configuration loads, a wrong key or a missing file is named, and the systemd unit is
//! hardened as documented and starts the binary with flags it accepts.

use std::path::Path;
use std::process::Command;

use clap::Parser;
use cpreg_primary::cli::Cli;
use cpreg_primary::config::Config;

#[path = "../../tests/shared/deploy_checks.rs"]
mod deploy_checks;
use deploy_checks::{assert_hardened, deploy, one, unit, verify_with_systemd};

#[test]
fn every_primary_example_in_deploy_loads() {
    let mut loaded = 0;
    for entry in std::fs::read_dir(deploy()).expect("deploy/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("primary") && name.ends_with(".toml") {
            let config = Config::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                config.metrics.is_some(),
                "{name} shows the metrics listener"
            );
            loaded += 1;
        }
    }
    assert!(loaded >= 1);
}

#[test]
fn an_unknown_key_or_a_missing_file_is_named() {
    let dir = tempfile::tempdir().expect("folder");
    let example = std::fs::read_to_string(deploy().join("primary.toml")).expect("example");
    for (section, key) in [
        ("[tls]", "client_ca_file"),
        ("[metrics]", "port"),
        ("[publishing]", "freshness_seconds"),
    ] {
        let path = dir.path().join("primary.toml");
        std::fs::write(
            &path,
            example.replacen(section, &format!("{section}\n{key} = 1"), 1),
        )
        .expect("write");
        let error = Config::load(&path).expect_err(key).to_string();
        assert!(
            error.contains(key) && error.contains("primary.toml"),
            "{key}: {error}"
        );
    }
    let missing = dir.path().join("no-such-primary.toml");
    let error = Config::load(&missing).expect_err("missing").to_string();
    assert!(error.contains("no-such-primary.toml"), "{error}");
    // The command line says the same, and fails.
    let out = Command::new(env!("CARGO_BIN_EXE_cpreg-primary"))
        .args(["check-config", "--config"])
        .arg(&missing)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-primary.toml"));
}

#[test]
fn the_systemd_unit_is_hardened_and_starts_the_real_command_line() {
    let path = deploy().join("systemd/cpreg-primary.service");
    let unit = unit(&path);
    assert_hardened(&unit, "cpreg-primary");
    // The state the unit makes writable is where the example keeps the register and its key.
    let config = Config::load(&deploy().join("primary.toml")).expect("example");
    assert_eq!(config.data_dir, Path::new("/var/lib/cpreg-primary"));
    assert!(
        config
            .signing_key_path()
            .starts_with("/var/lib/cpreg-primary")
    );

    // ExecStartPre and ExecStart parse with the real command line; the check runs for real
    // against the example configuration.
    let pre: Vec<&str> = one(&unit, "ExecStartPre").split_whitespace().collect();
    let start: Vec<&str> = one(&unit, "ExecStart").split_whitespace().collect();
    for argv in [&pre, &start] {
        assert_eq!(argv[0], "/usr/local/bin/cpreg-primary");
        Cli::try_parse_from(argv.iter()).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    }
    assert_eq!(&start[1..3], ["serve", "--config"]);
    assert_eq!(pre[pre.len() - 1], "/etc/cpreg/primary.toml");
    let example = deploy().join("primary.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_cpreg-primary"))
        .args(&pre[1..pre.len() - 1])
        .arg(&example)
        .output()
        .expect("check-config runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    verify_with_systemd(
        &path,
        "/usr/local/bin/cpreg-primary",
        env!("CARGO_BIN_EXE_cpreg-primary"),
    );
}
