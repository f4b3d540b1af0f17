//! What the deploy tests of the primary and the replica check alike: the examples' folder, the
//! keys of a systemd unit, the hardening every cpreg unit carries, and `systemd-analyze verify`.
//! Included by path (`#[path]`) from `server/tests/deploy.rs` and `replica/tests/deploy.rs`, since
//! each of those needs its own crate's binary through `CARGO_BIN_EXE_*`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `deploy/` at the top of the workspace.
pub fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Each `Key=value` of a unit file, by key, in order (a key may be given more than once).
pub fn unit(path: &Path) -> BTreeMap<String, Vec<String>> {
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

/// The one value of `key` in `unit`.
pub fn one<'a>(unit: &'a BTreeMap<String, Vec<String>>, key: &str) -> &'a str {
    match unit.get(key).map(Vec::as_slice) {
        Some([value]) => value,
        other => panic!("{key}: expected one value, found {other:?}"),
    }
}

/// The hardening of the unit of `service` (`cpreg-primary`, `cpreg-replica`): its own user, no
/// privileges or capabilities, a read-only system and writable state only under
/// `/var/lib/<service>`, private temporary files, devices and umask, SIGTERM to stop.
pub fn assert_hardened(unit: &BTreeMap<String, Vec<String>>, service: &str) {
    let state = format!("/var/lib/{service}");
    for (key, value) in [
        ("User", service),
        ("Group", service),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("StateDirectory", service),
        ("StateDirectoryMode", "0700"),
        ("ReadWritePaths", state.as_str()),
        ("UMask", "0077"),
        ("KillSignal", "SIGTERM"),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
    ] {
        assert_eq!(one(unit, key), value, "{key}");
    }
}

/// `systemd-analyze verify` on the unit with its binary path pointed at the one just built:
/// silent and successful, or the test fails. Skipped, saying so, where systemd is not installed.
pub fn verify_with_systemd(unit: &Path, installed: &str, built: &str) {
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
