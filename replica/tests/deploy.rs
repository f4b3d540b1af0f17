//! What `deploy/` hands an operator for the replica, checked against the real program: the
//! example configuration loads, a wrong key or a missing file is named, and the systemd unit is
//! hardened as documented and starts the binary with flags it accepts.

use std::path::Path;
use std::process::Command;

use cpreg_replica::config::Config;

#[path = "../../tests/shared/deploy_checks.rs"]
mod deploy_checks;
use deploy_checks::{assert_hardened, deploy, one, unit, verify_with_systemd};

#[test]
fn every_replica_example_in_deploy_loads() {
    let mut loaded = 0;
    for entry in std::fs::read_dir(deploy()).expect("deploy/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("replica") && name.ends_with(".toml") {
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
    let example = std::fs::read_to_string(deploy().join("replica.toml")).expect("example");
    for (section, key) in [
        ("[lookups]", "rate_limit"),
        ("[metrics]", "port"),
        ("[authority.tls]", "client_ca"),
    ] {
        let path = dir.path().join("replica.toml");
        std::fs::write(
            &path,
            example.replacen(section, &format!("{section}\n{key} = 1"), 1),
        )
        .expect("write");
        let error = Config::load(&path).expect_err(key).to_string();
        assert!(
            error.contains(key) && error.contains("replica.toml"),
            "{key}: {error}"
        );
    }
    let missing = dir.path().join("no-such-replica.toml");
    let error = Config::load(&missing).expect_err("missing").to_string();
    assert!(error.contains("no-such-replica.toml"), "{error}");
    // The command line says the same, and fails.
    let out = Command::new(env!("CARGO_BIN_EXE_cpreg-replica"))
        .args(["check-config", "--config"])
        .arg(&missing)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-replica.toml"));
}

#[test]
fn the_systemd_unit_is_hardened_and_starts_the_real_command_line() {
    let path = deploy().join("systemd/cpreg-replica.service");
    let unit = unit(&path);
    assert_hardened(&unit, "cpreg-replica");
    // The state the unit makes writable is where the example keeps its database.
    let config = Config::load(&deploy().join("replica.toml")).expect("example");
    assert_eq!(config.data_dir, Path::new("/var/lib/cpreg-replica"));
    assert!(config.database_path().starts_with("/var/lib/cpreg-replica"));

    // ExecStart's flags are the real command line's (its --help lists each, and the values
    // given); ExecStartPre runs for real against the example configuration.
    let pre: Vec<&str> = one(&unit, "ExecStartPre").split_whitespace().collect();
    let start: Vec<&str> = one(&unit, "ExecStart").split_whitespace().collect();
    for argv in [&pre, &start] {
        assert_eq!(argv[0], "/usr/local/bin/cpreg-replica");
        let help = Command::new(env!("CARGO_BIN_EXE_cpreg-replica"))
            .args([argv[1], "--help"])
            .output()
            .expect("--help runs");
        assert!(help.status.success(), "{argv:?}: no subcommand {}", argv[1]);
        let help = String::from_utf8_lossy(&help.stdout);
        for (i, word) in argv.iter().enumerate().skip(2) {
            if word.starts_with("--") {
                assert!(
                    help.contains(&format!("{word} ")),
                    "{word} is not a flag of {}: {help}",
                    argv[1]
                );
            } else if argv[i - 1] == "--log-format" {
                assert!(help.contains(word), "{word} is not a log format: {help}");
            }
        }
    }
    assert_eq!(&start[1..3], ["serve", "--config"]);
    assert_eq!(pre[pre.len() - 1], "/etc/cpreg/replica.toml");
    let example = deploy().join("replica.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_cpreg-replica"))
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
        "/usr/local/bin/cpreg-replica",
        env!("CARGO_BIN_EXE_cpreg-replica"),
    );
}
