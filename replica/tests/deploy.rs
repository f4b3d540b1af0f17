//! What `deploy/` hands an operator for the replica, checked against the real program: the
//! example configuration loads, a wrong key or a missing file is named, and the systemd unit is
//! hardened as documented and starts the binary with flags it accepts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cpreg_replica::config::Config;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Each `Key=value` of a unit file, by key, in order (a key may be given more than once).
fn unit(path: &Path) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(path).expect("the unit file");
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('[') {
            continue;
        }
        let (key, value) = line.split_once('=').expect("Key=value");
        keys.entry(key.to_owned())
            .or_default()
            .push(value.to_owned());
    }
    keys
}

fn one<'a>(unit: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match unit.get(key).map(Vec::as_slice) {
        Some([value]) => value,
        other => panic!("{key}: expected one value, found {other:?}"),
    }
}

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
    for (key, value) in [
        ("User", "cpreg-replica"),
        ("Group", "cpreg-replica"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("StateDirectory", "cpreg-replica"),
        ("StateDirectoryMode", "0700"),
        ("ReadWritePaths", "/var/lib/cpreg-replica"),
        ("UMask", "0077"),
        ("KillSignal", "SIGTERM"),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
    ] {
        assert_eq!(one(&unit, key), value, "{key}");
    }
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

/// `systemd-analyze verify` on the unit with its binary path pointed at the one just built:
/// silent and successful, or the test fails. Skipped, saying so, where systemd is not installed.
fn verify_with_systemd(unit: &Path, installed: &str, built: &str) {
    let Ok(found) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("systemd-analyze is not installed: `verify` skipped");
        return;
    };
    assert!(found.status.success());
    let dir = tempfile::tempdir().expect("folder");
    let copy = dir.path().join(unit.file_name().expect("a file name"));
    let text = std::fs::read_to_string(unit).expect("unit");
    std::fs::write(&copy, text.replace(installed, built)).expect("copy");
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
