//! The README's first command, as someone new to cpreg runs it: `cpreg demo --dir D`, wait for
//! it to say it is ready, copy the A&E lookup it suggests, then stop it with SIGTERM (what
//! systemd and `kill` send) and find nothing left behind: no process, no locked database.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A debug build on a busy CI machine; the demo itself asks for "well under a minute".
const READY_WITHIN: Duration = Duration::from_secs(120);

/// Splits a printed command line into words, as a shell would for the demo's simple quoting.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// Whether any process still running was started with `dir` on its command line.
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&needle) {
                found.push(format!("{}: {cmdline}", name.to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn the_readme_demo_starts_answers_a_printed_lookup_and_stops_cleanly_on_sigterm() {
    let cpreg = env!("CARGO_BIN_EXE_cpreg");
    let folder = tempfile::tempdir().expect("temporary folder");
    let dir = folder.path().join("demo");
    let started = Instant::now();
    let mut demo = Command::new(cpreg)
        .args(["demo", "--dir"])
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cpreg demo starts");

    // Every line it prints, read on a thread so the wait can time out.
    let stdout = demo.stdout.take().expect("stdout");
    let (lines, printed) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut ready = None;
    while started.elapsed() < READY_WITHIN {
        match printed.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if line.starts_with("cpreg demo ready") {
                    ready = Some(started.elapsed());
                }
                let done = line.contains("Ctrl-C stops the demo");
                seen.push(line);
                if done {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(status)) = demo.try_wait() {
                    panic!("the demo exited ({status}) before it was ready: {seen:#?}");
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let ready = ready.unwrap_or_else(|| {
        let _ = demo.kill();
        panic!("the demo never said it was ready within {READY_WITHIN:?}: {seen:#?}")
    });
    eprintln!("demo ready after {ready:?}");

    // The lookup it suggests, copied as printed (the line without a "(refused" note).
    let suggested = seen
        .iter()
        .find(|l| {
            l.contains("ae-terminal lookup") && l.contains("--dob") && !l.contains("(refused")
        })
        .unwrap_or_else(|| panic!("no A&E lookup to try among: {seen:#?}"));
    let mut args = words(suggested.trim());
    assert_eq!(
        args.first().map(String::as_str),
        Some("cpreg"),
        "{suggested}"
    );
    args.remove(0);
    assert_eq!(
        args[..2],
        [
            "--profile".to_owned(),
            dir.join("profiles/ae-terminal").display().to_string()
        ],
        "the printed profile is the demo's A&E terminal: {suggested}"
    );
    args.push("--json".into());
    let looked_up = Command::new(cpreg)
        .args(&args)
        .output()
        .expect("cpreg lookup runs");
    assert!(
        looked_up.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&looked_up.stderr)
    );
    let answer: serde_json::Value =
        serde_json::from_slice(&looked_up.stdout).expect("exactly one JSON document");
    assert!(
        answer["enquiry_reference"]
            .as_str()
            .is_some_and(|r| r.starts_with("AE-")),
        "{answer}"
    );
    assert_eq!(answer["outcome"], "match", "{answer}");
    assert!(
        answer["candidates"]
            .as_array()
            .is_some_and(|c| !c.is_empty() && c[0]["record_id"].is_string()),
        "{answer}"
    );
    assert_eq!(answer["stale"], false, "{answer}");

    // SIGTERM, as `systemctl stop` or `kill` sends it.
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    let sent = unsafe { libc::kill(demo.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM sent");
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = demo.try_wait().expect("wait") {
            break status;
        }
        if stopping.elapsed() > Duration::from_secs(30) {
            let _ = demo.kill();
            panic!("the demo did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the demo stopped with {status}");
    reader.join().expect("stdout read to the end");
    eprintln!("demo stopped {:?} after SIGTERM", stopping.elapsed());

    assert_eq!(
        processes_mentioning(&dir),
        Vec::<String>::new(),
        "nothing the demo started is still running"
    );
    // Every database was closed: each opens again at once, as a restart would need.
    let mut databases = vec![dir.join("primary/data/register.redb")];
    for site in ["ae", "edt", "cait"] {
        databases.push(dir.join("replicas").join(site).join("data/replica.redb"));
    }
    for path in databases {
        assert!(path.exists(), "{} was written", path.display());
        redb::Database::open(&path)
            .unwrap_or_else(|e| panic!("{} opens again: {e}", path.display()));
    }
}
