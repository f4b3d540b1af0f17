//! A replica in its own process, so a test can kill it with SIGKILL: the test binary starts
//! itself again running only its [`CHILD_TEST`] test, which runs the real `Replica` from the
//! configuration named in the environment until it is killed.
//!
//! Each test binary that kills replicas defines that test itself, calling [`serve_if_child`]:
//!
//! ```text
//! #[test]
//! fn replica_child_process() {
//!     cpreg_tests::replica_process::serve_if_child();
//! }
//! ```

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;

use cpreg_replica::config::Config;

/// The name of the test that runs the child: every binary using [`ReplicaProcess`] defines it.
pub const CHILD_TEST: &str = "replica_child_process";

/// Names the child's configuration file; set only in the child's environment.
const CONFIG_VAR: &str = "CPREG_TEST_CHILD_REPLICA_CONFIG";

/// What the child prints once the replica has opened its store and started its services.
const STARTED: &str = "child replica started";

/// Child mode: when this process was started by [`ReplicaProcess`], runs a replica from the
/// configuration file it names (JSON if it ends in `.json`, TOML otherwise) until killed;
/// otherwise returns at once, and the test passes.
pub fn serve_if_child() {
    let Some(path) = std::env::var_os(CONFIG_VAR) else {
        return;
    };
    let path = Path::new(&path);
    let config: Config = if path.extension().is_some_and(|e| e == "json") {
        let text = std::fs::read(path).expect("config file");
        serde_json::from_slice(&text).expect("config as JSON")
    } else {
        Config::load(path).expect("config")
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let _replica =
            cpreg_replica::Replica::start(config, Arc::new(cpreg_replica::clock::SystemClock))
                .await
                .expect("start");
        println!("{STARTED}");
        std::future::pending::<()>().await;
    });
}

/// A replica running as a child process of this test binary, killed if still running when
/// dropped (a test that fails part-way leaves no replica running).
pub struct ReplicaProcess {
    child: Child,
    /// Kept open so the child never writes to a closed pipe.
    _stdout: Option<ChildStdout>,
}

impl ReplicaProcess {
    /// Starts a replica from the configuration at `config_path` and waits until it has opened
    /// its store and started its services.
    pub fn spawn(config_path: &Path) -> ReplicaProcess {
        let mut child = child_command(config_path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn replica process");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            let read = lines.read_line(&mut line).expect("read the child's output");
            assert!(read > 0, "the replica process ended before it started");
            // libtest may print "test replica_child_process ... " first, on the same line.
            if line.contains(STARTED) {
                break;
            }
        }
        ReplicaProcess {
            child,
            _stdout: Some(lines.into_inner()),
        }
    }

    /// Starts a replica without waiting for it, for a test that kills it while it starts.
    pub fn spawn_unwatched(config_path: &Path) -> ReplicaProcess {
        let child = child_command(config_path)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn replica process");
        ReplicaProcess {
            child,
            _stdout: None,
        }
    }

    /// SIGKILL: no chance to finish a send, an apply or a commit.
    pub fn kill_9(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
            unsafe {
                libc::kill(self.child.id() as i32, libc::SIGKILL);
            }
            let _ = self.child.wait();
        }
    }
}

impl Drop for ReplicaProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// This test binary, running only [`CHILD_TEST`], with the configuration named.
fn child_command(config_path: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
        .env(CONFIG_VAR, config_path)
        .env("RUST_LOG", "off")
        .stderr(Stdio::null());
    command
}
