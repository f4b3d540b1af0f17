//! `cpreg-bench SCENARIO --json`: cpreg's benchmarks. Each scenario runs the real parts and a
//! baseline in the same process, and prints one JSON object with its figures and the ratio.
//!
//! Run with `cargo run --release -p cpreg-tests --bin cpreg-bench -- import --records 100000`.
//!
//! Replication scenarios (their code is under `tests/src/bench/`):
//! - `snapshot`: the full projection built and signed at the primary; verified and applied at a
//!   replica in a child process of its own (this binary's hidden `replica-side` subcommand), so
//!   its peak RSS is the replica's alone.
//! - `delta`: one-record deltas applied at a replica store holding the whole register.
//! - `propagation`: a primary and three replicas over mTLS; each change timed until it is held
//!   at every replica.
//! - `catchup`: a replica offline while many children change, timed from restart to the head.
//!
//! Enquiry scenario (`tests/src/bench/drain.rs`):
//! - `drain`: a replica's outbox of queued enquiries sent to a live primary, timed until empty,
//!   with what was lost or duplicated counted at the primary.
//!
//! Lookup scenario (`tests/src/bench/lookup.rs`):
//! - `lookup`: lookups of real children at a replica over mTLS, against the gRPC health `Check`
//!   on the same server: throughput with many clients and single-client latency.

#[path = "../bench/catchup.rs"]
mod catchup;
#[path = "../bench/common.rs"]
mod common;
#[path = "../bench/delta.rs"]
mod delta;
#[path = "../bench/drain.rs"]
mod drain;
#[path = "../bench/lookup.rs"]
mod lookup;
#[path = "../bench/propagation.rs"]
mod propagation;
#[path = "../bench/snapshot.rs"]
mod snapshot;

use std::time::Instant;

use clap::{Parser, Subcommand};
use common::peak_rss_mib;
use cpreg_proto::role::Role;
use cpreg_tests::{TestPrimary, synthetic_csv};
use indicatif::ProgressBar;
use redb::TableDefinition;

#[derive(Debug, Parser)]
#[command(name = "cpreg-bench")]
struct Cli {
    /// Print JSON (the only output; kept for the documented command line).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// CSV import over mTLS into the primary, against bare redb inserts of the same rows.
    Import {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
    },
    /// The full snapshot built and signed at the primary, then verified and applied at a fresh
    /// replica in a child process; baselines SHA-256 and bare redb insert/scan of the same entries.
    Snapshot {
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
    },
    /// One-record deltas at a replica holding the whole register, against bare one-row redb
    /// write transactions.
    Delta {
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        #[arg(long, default_value_t = 200)]
        deltas: usize,
    },
    /// Changes made one at a time, each timed until all three replicas hold it, against a
    /// unary mTLS round trip.
    Propagation {
        #[arg(long, default_value_t = 1_000)]
        records: usize,
        #[arg(long, default_value_t = 200)]
        changes: usize,
        /// Diagnostic: serve the primary from a listener with TCP_NODELAY set (inherited by
        /// accepted sockets), to show what Nagle's algorithm costs the push.
        #[arg(long)]
        listener_nodelay: bool,
    },
    /// A replica restarting after `--changed` children changed, timed until it holds the head,
    /// against a full snapshot of the same register.
    Catchup {
        #[arg(long, default_value_t = 20_000)]
        records: usize,
        #[arg(long, default_value_t = 10_000)]
        changed: usize,
        /// Make the changes one ChangePlan RPC each (one version per change) instead of one
        /// import (one version per 500 rows).
        #[arg(long)]
        one_version_each: bool,
    },
    /// Lookups of real children at a replica over mTLS (every one recorded before it is
    /// answered), against the gRPC health `Check` on the same server: throughput with
    /// `--clients` concurrent clients and single-client latency p50/p99.
    Lookup {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
        #[arg(long, default_value_t = 8)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// A replica's outbox of `--enquiries` queued enquiries (recorded first, timed apart) sent
    /// to a live primary and timed until empty; lost and duplicated counted at the primary,
    /// against bare redb inserts of the same stored bytes.
    Drain {
        #[arg(long, default_value_t = 100_000)]
        enquiries: usize,
    },
    /// The replica's side of `snapshot`, run by the benchmark in a child process.
    #[command(hide = true)]
    ReplicaSide(snapshot::SideArgs),
}

/// Bare redb: the same rows' bytes inserted by record id in batches of the import's size.
fn bare_redb_rows_per_second(dir: &std::path::Path, csv: &std::path::Path) -> f64 {
    const ROWS: TableDefinition<&str, &[u8]> = TableDefinition::new("rows");
    let text = std::fs::read_to_string(csv).expect("csv");
    let rows: Vec<(&str, &str)> = text
        .lines()
        .skip(1)
        .map(|l| (l.split(',').next().unwrap_or_default(), l))
        .collect();
    let db = redb::Database::create(dir.join("baseline.redb")).expect("baseline db");
    let started = Instant::now();
    for batch in rows.chunks(500) {
        let txn = db.begin_write().expect("write");
        {
            let mut table = txn.open_table(ROWS).expect("table");
            for (id, line) in batch {
                table.insert(*id, line.as_bytes()).expect("insert");
            }
        }
        txn.commit().expect("commit");
    }
    rows.len() as f64 / started.elapsed().as_secs_f64()
}

async fn import(records: usize) -> serde_json::Value {
    let primary = TestPrimary::start().await;
    let (csv, _) = synthetic_csv(primary.pki.path(), "bench.csv", records, 42);
    let profile = primary.profile(Role::Custodian);

    let started = Instant::now();
    let report = cpreg::commands::import::import_file(&profile, &csv, &ProgressBar::hidden())
        .await
        .expect("import");
    let first = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let again = cpreg::commands::import::import_file(&profile, &csv, &ProgressBar::hidden())
        .await
        .expect("re-import");
    let second = started.elapsed().as_secs_f64();

    let baseline = bare_redb_rows_per_second(primary.pki.path(), &csv);
    let rate = records as f64 / first;
    serde_json::json!({
        "scenario": "import",
        "records": records,
        "accepted": report.accepted,
        "rejected": report.rejected,
        "import_seconds": first,
        "import_rows_per_second": rate,
        "reimport_unchanged": again.unchanged,
        "reimport_seconds": second,
        "reimport_rows_per_second": records as f64 / second,
        "baseline": "bare redb inserts of the same rows, 500 per transaction, same process",
        "baseline_rows_per_second": baseline,
        "ratio_to_baseline": rate / baseline,
        "peak_rss_mib": peak_rss_mib(),
        "register_file_mib": std::fs::metadata(primary.database_path()).map(|m| m.len() as f64 / 1048576.0).ok(),
    })
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    let _ = cli.json;
    let result = match cli.scenario {
        Scenario::Import { records } => import(records).await,
        Scenario::Snapshot { records } => snapshot::snapshot(records).await,
        Scenario::Delta { records, deltas } => delta::delta(records, deltas).await,
        Scenario::Propagation {
            records,
            changes,
            listener_nodelay,
        } => propagation::propagation(records, changes, listener_nodelay).await,
        Scenario::Catchup {
            records,
            changed,
            one_version_each,
        } => catchup::catchup(records, changed, one_version_each).await,
        Scenario::Lookup {
            records,
            clients,
            seconds,
        } => lookup::lookup(records, clients, seconds).await,
        Scenario::Drain { enquiries } => drain::drain(enquiries).await,
        Scenario::ReplicaSide(args) => snapshot::side(args),
    };
    println!("{}", serde_json::to_string_pretty(&result).expect("json"));
}
