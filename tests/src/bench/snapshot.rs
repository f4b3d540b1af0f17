//! `snapshot`: the full projection built and signed at the primary, then verified and applied
//! at a fresh replica store in a child process of its own (so its peak RSS is the replica's
//! alone), against SHA-256 of the payload and bare redb inserts and scans of the same entries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use cpreg_proto::pb;
use cpreg_proto::snapshot::{
    TrustedKeys, TrustedState, check_manifest, check_payload, decode_changes, payload_digest,
};
use cpreg_replica::store::Store as ReplicaStore;
use cpreg_tests::{AUTHORITY, TestPrimary};
use ed25519_dalek::VerifyingKey;
use prost::Message;

use crate::common::{
    REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES, bare_insert, bare_scan, fill, open_primary_store,
    peak_rss_mib, primary_key, round3, round6, rss_mib, scratch, sign_head,
};

/// What the hidden `replica-side` subcommand does in its own process.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SideMode {
    /// check_manifest + check_payload + the replica's `Store::apply` on a fresh store.
    Apply,
    /// SHA-256 of the payload, then bare redb inserts of its entries and a scan of them.
    Bare,
}

#[derive(Debug, clap::Args)]
pub struct SideArgs {
    #[arg(long, value_enum)]
    pub mode: SideMode,
    #[arg(long)]
    pub manifest: PathBuf,
    #[arg(long)]
    pub payload: PathBuf,
    /// The redb file to create.
    #[arg(long)]
    pub db: PathBuf,
    /// The authority's public key, hex, as enrolled in the replica's configuration.
    #[arg(long)]
    pub public_key: String,
    #[arg(long, default_value_t = REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES)]
    pub max_payload: u64,
}

fn file_mib(path: &Path) -> Option<f64> {
    std::fs::metadata(path)
        .ok()
        .map(|m| round3(m.len() as f64 / 1048576.0))
}

/// The child process: one side of the measurement, printed as one JSON object.
pub fn side(args: SideArgs) -> serde_json::Value {
    let started = Instant::now();
    let signed = pb::SignedManifest::decode(
        std::fs::read(&args.manifest)
            .expect("manifest file")
            .as_slice(),
    )
    .expect("manifest decodes");
    let payload = std::fs::read(&args.payload).expect("payload file");
    let read_seconds = started.elapsed().as_secs_f64();
    let rss_after_read = rss_mib();
    match args.mode {
        SideMode::Apply => {
            let key: [u8; 32] = hex::decode(&args.public_key)
                .expect("hex")
                .try_into()
                .expect("32 bytes");
            let keys = TrustedKeys::new(
                AUTHORITY,
                vec![VerifyingKey::from_bytes(&key).expect("public key")],
            );
            let now = cpreg_tests::now().timestamp() + 1;
            let started = Instant::now();
            let manifest = match check_manifest(
                &signed,
                &keys,
                &TrustedState::default(),
                now,
                args.max_payload,
            ) {
                Ok(m) => m,
                Err(e) => {
                    return serde_json::json!({ "error": format!("check_manifest: {e}") });
                }
            };
            let check_manifest_seconds = started.elapsed().as_secs_f64();
            let started = Instant::now();
            check_payload(&manifest, &payload).expect("payload matches its manifest");
            let check_payload_seconds = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let store = ReplicaStore::open(&args.db).expect("replica store");
            let open_seconds = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let state = store
                .apply(AUTHORITY, &manifest, &payload)
                .expect("the replica applies the snapshot");
            let apply_seconds = started.elapsed().as_secs_f64();
            let rss_after_apply = rss_mib();
            drop(store);
            serde_json::json!({
                "payload_read_seconds": round6(read_seconds),
                "check_manifest_seconds": round6(check_manifest_seconds),
                "check_payload_seconds": round6(check_payload_seconds),
                "store_open_seconds": round6(open_seconds),
                "apply_seconds": round6(apply_seconds),
                "verified_and_applied_seconds": round6(check_manifest_seconds + check_payload_seconds + apply_seconds),
                "version": state.version,
                "entry_count": state.entry_count,
                "rss_after_payload_read_mib": rss_after_read,
                "rss_after_apply_mib": rss_after_apply,
                "peak_rss_mib": peak_rss_mib(),
                "replica_file_mib": file_mib(&args.db),
            })
        }
        SideMode::Bare => {
            let started = Instant::now();
            let digest = payload_digest(&payload);
            let sha256_seconds = started.elapsed().as_secs_f64();
            let started = Instant::now();
            let decoded = decode_changes(&payload).filter(|c| c.is_ok()).count();
            let decode_seconds = started.elapsed().as_secs_f64();
            let (db, insert_seconds) = bare_insert(&args.db, &payload);
            let rss_after_insert = rss_mib();
            let (scanned_bytes, scan_seconds) = bare_scan(&db);
            drop(db);
            serde_json::json!({
                "payload_read_seconds": round6(read_seconds),
                "sha256_seconds": round6(sha256_seconds),
                "sha256_matches_manifest": pb::Manifest::decode(signed.manifest.as_slice()).map(|m| m.payload_digest == digest).unwrap_or(false),
                "decode_only_seconds": round6(decode_seconds),
                "entries": decoded,
                "bare_insert_seconds": round6(insert_seconds),
                "bare_scan_seconds": round6(scan_seconds),
                "bare_scan_bytes": scanned_bytes,
                "rss_after_payload_read_mib": rss_after_read,
                "rss_after_insert_mib": rss_after_insert,
                "peak_rss_mib_including_scan_buffer": peak_rss_mib(),
                "bare_file_mib": file_mib(&args.db),
            })
        }
    }
}

/// Runs this binary's hidden `replica-side` subcommand and parses its JSON.
pub fn run_side(
    mode: &str,
    manifest: &Path,
    payload: &Path,
    db: &Path,
    public_key: &VerifyingKey,
) -> serde_json::Value {
    let exe = std::env::current_exe().expect("own executable");
    let started = Instant::now();
    let output = Command::new(exe)
        .arg("replica-side")
        .args(["--mode", mode])
        .arg("--manifest")
        .arg(manifest)
        .arg("--payload")
        .arg(payload)
        .arg("--db")
        .arg(db)
        .args(["--public-key", &hex::encode(public_key.as_bytes())])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .expect("run the replica side");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "replica side ({mode}) failed: {}",
        output.status
    );
    let mut value: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the replica side prints JSON");
    value["process_wall_seconds"] = round3(wall).into();
    value
}

pub async fn snapshot(records: usize) -> serde_json::Value {
    let primary = TestPrimary::start().await;
    let filled = fill(&primary, records, 42).await;
    let pki = primary.stop().await;

    // Built and signed, at the primary: the whole projection read in one transaction, then the
    // payload's digest and the manifest's signature, as the replication service does.
    let store = open_primary_store(&pki);
    let key = primary_key(&pki);
    eprintln!("cpreg-bench: building the full snapshot");
    let started = Instant::now();
    let out = store
        .outgoing(0, &[])
        .expect("read the projection")
        .expect("a published version");
    let build_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let signed = sign_head(&key, &out.head, 0, &out.payload);
    let sign_seconds = started.elapsed().as_secs_f64();
    let built_and_signed = build_seconds + sign_seconds;
    let started = Instant::now();
    let _ = payload_digest(&out.payload);
    let sha256_seconds = started.elapsed().as_secs_f64();
    let primary_peak = peak_rss_mib();
    let payload_bytes = out.payload.len();
    let head = out.head.clone();
    drop(store);

    let dir = scratch(&pki, "snapshot");
    let manifest_path = dir.join("manifest.bin");
    let payload_path = dir.join("payload.bin");
    std::fs::write(&manifest_path, signed.encode_to_vec()).expect("write manifest");
    std::fs::write(&payload_path, &out.payload).expect("write payload");
    drop(out);

    eprintln!("cpreg-bench: applying at a replica (child process)");
    let public = key.verifying_key();
    let replica = run_side(
        "apply",
        &manifest_path,
        &payload_path,
        &dir.join("replica.redb"),
        &public,
    );
    let _ = std::fs::remove_file(dir.join("replica.redb"));
    eprintln!("cpreg-bench: bare baseline (child process)");
    let bare = run_side(
        "bare",
        &manifest_path,
        &payload_path,
        &dir.join("bare.redb"),
        &public,
    );

    let num = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let verified_and_applied = num(&replica, "verified_and_applied_seconds");
    let replica_peak = num(&replica, "peak_rss_mib");
    let bare_insert_seconds = num(&bare, "bare_insert_seconds");
    let bare_scan_seconds = num(&bare, "bare_scan_seconds");
    serde_json::json!({
        "scenario": "snapshot",
        "records": records,
        "filled": filled.json(),
        "head": { "version": head.version, "entry_count": head.entry_count },
        "payload_bytes": payload_bytes,
        "payload_mib": round3(payload_bytes as f64 / 1048576.0),
        "bytes_per_entry": (payload_bytes as f64 / head.entry_count.max(1) as f64).round(),
        "primary": {
            "outgoing_full_seconds": round6(build_seconds),
            "digest_and_sign_seconds": round6(sign_seconds),
            "built_and_signed_seconds": round6(built_and_signed),
            "goal_seconds": 5.0,
            "goal_met": built_and_signed < 5.0,
            "bench_process_peak_rss_mib": primary_peak,
            "bench_process_peak_rss_note": "this process also ran the primary server and the import client during setup, so this is not the primary's build alone",
        },
        "replica": replica,
        "replica_goal": {
            "verified_and_applied_seconds": verified_and_applied,
            "goal_seconds": 10.0,
            "goal_met": verified_and_applied < 10.0,
            "peak_rss_mib": replica_peak,
            "goal_peak_rss_mib": 1024.0,
            "rss_goal_met": replica_peak < 1024.0,
            "fits_default_max_snapshot_bytes": (payload_bytes as u64) <= REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES,
        },
        "baseline": {
            "what": "SHA-256 of the same payload (this process and the child); bare redb: the same entries decoded and inserted into a fresh file keyed like the replica's table in one write transaction, then scanned and copied out, in a child process of their own",
            "sha256_seconds": round6(sha256_seconds),
            "bare": bare,
        },
        "ratios": {
            "built_and_signed_to_bare_scan": round3(built_and_signed / bare_scan_seconds),
            "built_and_signed_to_sha256": round3(built_and_signed / sha256_seconds),
            "replica_apply_to_bare_insert": round3(num(&replica, "apply_seconds") / bare_insert_seconds),
            "verified_and_applied_to_bare_insert": round3(verified_and_applied / bare_insert_seconds),
            "replica_peak_rss_to_bare_rss_after_insert": round3(replica_peak / num(&bare, "rss_after_insert_mib")),
        },
    })
}
