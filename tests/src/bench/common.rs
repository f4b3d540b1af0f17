//! What the replication scenarios share: peak memory, percentiles, filling a primary through
//! the real import, reading its register with the primary stopped, signing manifests as the
//! primary does, and the bare-redb baselines.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpreg_primary::store::{Head, Store as PrimaryStore};
use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_proto::snapshot::{StateRoot, decode_changes, key_id, payload_digest, sign_manifest};
use cpreg_tests::{AUTHORITY, TestPki, TestPrimary, synthetic_csv};
use ed25519_dalek::SigningKey;
use indicatif::ProgressBar;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

/// The shape of the replica's entries table, for the bare baselines.
pub const BARE_ENTRIES: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("entries");

/// How long a manifest signed here stays valid, as the primary's default publishing config.
pub const MANIFEST_LIFETIME_SECONDS: i64 = 7 * 24 * 3600;

/// The replica's default `max_snapshot_bytes` (replica/src/config.rs).
pub const REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

/// A VmHWM/VmRSS-style line of /proc/self/status, in MiB.
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Peak resident memory of this process so far, in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

/// Resident memory of this process now, in MiB.
pub fn rss_mib() -> Option<f64> {
    status_mib("VmRSS:")
}

/// CPU time this process has used so far (user and system, every thread), in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return f64::NAN;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Seconds to the microsecond.
pub fn round6(x: f64) -> f64 {
    (x * 1_000_000.0).round() / 1_000_000.0
}

/// Nearest-rank percentile of already sorted samples.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p90, p99, mean and max of millisecond samples, as JSON.
pub fn summary_ms(samples: &[f64]) -> serde_json::Value {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mean = sorted.iter().sum::<f64>() / sorted.len().max(1) as f64;
    serde_json::json!({
        "n": sorted.len(),
        "p50_ms": round3(percentile(&sorted, 0.50)),
        "p90_ms": round3(percentile(&sorted, 0.90)),
        "p99_ms": round3(percentile(&sorted, 0.99)),
        "mean_ms": round3(mean),
        "min_ms": round3(sorted.first().copied().unwrap_or(f64::NAN)),
        "max_ms": round3(sorted.last().copied().unwrap_or(f64::NAN)),
    })
}

pub fn p50(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 0.5)
}

pub fn p99(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 0.99)
}

/// How the register was filled, for the JSON.
pub struct Filled {
    pub records: usize,
    pub csv_seconds: f64,
    pub import_seconds: f64,
    pub accepted: u64,
    pub rejected: u64,
}

impl Filled {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "how": "synthetic CSV imported through the real import over mTLS (cpreg admin import's code path)",
            "records": self.records,
            "csv_write_seconds": round6(self.csv_seconds),
            "import_seconds": round6(self.import_seconds),
            "import_rows_per_second": (self.records as f64 / self.import_seconds).round(),
            "accepted": self.accepted,
            "rejected": self.rejected,
        })
    }
}

/// Fills a running primary with `records` synthetic children through the real import.
pub async fn fill(primary: &TestPrimary, records: usize, seed: u64) -> Filled {
    let started = Instant::now();
    let (csv, children) = synthetic_csv(primary.pki.path(), "fill.csv", records, seed);
    drop(children);
    let csv_seconds = started.elapsed().as_secs_f64();
    eprintln!("cpreg-bench: importing {records} rows");
    let profile = primary.profile(Role::Custodian);
    let started = Instant::now();
    let report = cpreg::commands::import::import_file(&profile, &csv, &ProgressBar::hidden())
        .await
        .expect("import");
    let import_seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&csv);
    eprintln!("cpreg-bench: imported in {import_seconds:.1} s");
    Filled {
        records,
        csv_seconds,
        import_seconds,
        accepted: report.accepted,
        rejected: report.rejected,
    }
}

/// The primary's signing key, read from its key file.
pub fn primary_key(pki: &TestPki) -> SigningKey {
    cpreg_primary::keys::load_or_generate(&pki.primary_dir().join("data").join("signing.key"))
        .expect("primary's signing key")
}

/// Opens a stopped primary's register in this process (the primary must not be running).
pub fn open_primary_store(pki: &TestPki) -> PrimaryStore {
    let clock = Arc::new(cpreg_primary::clock::FixedClock::new(cpreg_tests::now()));
    PrimaryStore::open(
        &pki.primary_dir().join("data").join("register.redb"),
        AUTHORITY,
        primary_key(pki),
        clock,
    )
    .expect("open the primary's register")
}

/// The manifest the primary would sign for `payload`, as `replication::send_version` builds it.
pub fn manifest_for(
    key: &SigningKey,
    version: u64,
    base_version: u64,
    root: StateRoot,
    entry_count: u64,
    payload: &[u8],
) -> pb::Manifest {
    let now = cpreg_tests::now().timestamp();
    let kind = if base_version == 0 {
        pb::ManifestKind::Full
    } else {
        pb::ManifestKind::Delta
    };
    pb::Manifest {
        authority: AUTHORITY.to_owned(),
        version,
        issued_at: now,
        expires_at: now + MANIFEST_LIFETIME_SECONDS,
        key_id: key_id(&key.verifying_key()),
        kind: kind.into(),
        base_version,
        payload_digest: payload_digest(payload),
        payload_size: payload.len() as u64,
        entry_count,
        state_root: root.to_bytes(),
    }
}

/// Signs a head's payload as the primary does: digest, manifest, signature.
pub fn sign_head(
    key: &SigningKey,
    head: &Head,
    base_version: u64,
    payload: &[u8],
) -> pb::SignedManifest {
    let manifest = manifest_for(
        key,
        head.version,
        base_version,
        head.root(),
        head.entry_count,
        payload,
    );
    sign_manifest(&manifest, key)
}

/// Bare redb: the payload's entries inserted into a fresh file in one write transaction, keyed
/// like the replica's table. Returns the seconds of the insert and commit.
pub fn bare_insert(path: &Path, payload: &[u8]) -> (redb::Database, f64) {
    let db = redb::Database::create(path).expect("bare db");
    let started = Instant::now();
    let txn = db.begin_write().expect("write");
    {
        let mut table = txn.open_table(BARE_ENTRIES).expect("table");
        for change in decode_changes(payload) {
            let change = change.expect("change decodes");
            table
                .insert((AUTHORITY, change.key.as_str()), change.value.as_slice())
                .expect("insert");
        }
    }
    txn.commit().expect("commit");
    (db, started.elapsed().as_secs_f64())
}

/// Bare redb: every entry read back and copied into one buffer, as a full snapshot build does.
pub fn bare_scan(db: &redb::Database) -> (usize, f64) {
    let started = Instant::now();
    let txn = db.begin_read().expect("read");
    let table = txn.open_table(BARE_ENTRIES).expect("table");
    let mut out = Vec::new();
    for row in table.iter().expect("iter") {
        let (k, v) = row.expect("row");
        out.extend_from_slice(k.value().1.as_bytes());
        out.extend_from_slice(v.value());
    }
    (out.len(), started.elapsed().as_secs_f64())
}

/// Bare redb: one-row write transactions (the default durability, as the replica commits),
/// `n` of them, each timed in milliseconds.
pub fn bare_one_row_writes(db: &redb::Database, n: usize) -> Vec<f64> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let key = format!("child/bare-{i:06}");
        let value = vec![b'x'; 250];
        let started = Instant::now();
        let txn = db.begin_write().expect("write");
        {
            let mut table = txn.open_table(BARE_ENTRIES).expect("table");
            table
                .insert((AUTHORITY, key.as_str()), value.as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
        samples.push(ms(started.elapsed()));
    }
    samples
}

/// A scratch folder beside the harness's, removed on drop.
pub fn scratch(pki: &TestPki, name: &str) -> PathBuf {
    let dir = pki.path().join(name);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// A primary served by `cpreg_primary::run` as `LocalPrimary` does, but on a listener with
/// `TCP_NODELAY` set, which Linux passes on to every accepted socket. A diagnostic: tonic's
/// `serve_with_incoming*` ignores its own `tcp_nodelay` setting, so the real primary's sockets
/// keep Nagle's algorithm on.
pub struct NodelayServer {
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), cpreg_primary::ServeError>>,
}

impl NodelayServer {
    /// Starts it over `pki`'s primary folder; the returned `TestPrimary` holds no server of its
    /// own (`primary: None`) but dials this one, so its helpers all work.
    pub async fn start(pki: TestPki) -> (TestPrimary, NodelayServer) {
        use std::os::fd::AsRawFd;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on a socket this function owns, with a pointer to a live c_int of
        // the length given.
        let rc = unsafe {
            libc::setsockopt(
                std_listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "setsockopt TCP_NODELAY");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        let listener = tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
        let config = cpreg::local::prepare_primary(&pki.primary_dir(), &pki.ca, addr)
            .expect("primary config");
        let clock = Arc::new(cpreg_primary::clock::FixedClock::new(cpreg_tests::now()));
        let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(cpreg_primary::run(config, clock.clone(), listener, async {
            let _ = rx.await;
        }));
        let primary = TestPrimary {
            pki,
            primary: None,
            clock,
            url: format!("https://127.0.0.1:{}", addr.port()),
        };
        let profile = primary.profile(Role::Custodian);
        let mut ready = false;
        for _ in 0..200 {
            if let Ok(mut c) = profile.register().await
                && c.get_authority(pb::GetAuthorityRequest {}).await.is_ok()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(ready, "primary at {} never answered", primary.url);
        (primary, NodelayServer { shutdown, task })
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        self.task
            .await
            .expect("primary task")
            .expect("primary stops cleanly");
    }
}
