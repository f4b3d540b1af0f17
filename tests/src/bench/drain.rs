//! `drain`: a replica that queued many enquiries while cut off (its store filled first, timed on
//! its own) is started against a live primary in this process, holding a small register whose
//! children with a plan the matches found, and timed until its outbox is empty. Then, with both stopped, the primary's register is read back: enquiries lost (made but
//! not held), extra (held but never made) and duplicated (received more than once: the audit
//! chain has one `enquiry.received` entry per reception), and the chain verified.
//!
//! Baseline, in the same run: the exact bytes the primary stored for those enquiries, inserted
//! into a fresh redb file in transactions of the size the primary committed them in (read from
//! its audit checkpoints, one per transaction); and the same with each enquiry's audit entry
//! beside it, the least the primary writes per enquiry.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cpreg_proto::audit::{AuditRecord, Checkpoint};
use cpreg_replica::store::{Enquiry, EnquiryPath, EnquiryState, Store as ReplicaStore};
use cpreg_tests::replica::{TestReplica, authority_entry, replica_config};
use cpreg_tests::{AUTHORITY, TestPrimary, now, open_register, today};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::common::{fill, peak_rss_mib, round3, round6, rss_mib, scratch};

const SITE: &str = "drain";
/// Children on the register, and the seed of the synthetic register.
const REGISTER: usize = 5_000;
const SEED: u64 = 31;
/// Enquiries per commit while filling the outbox: what the lookup service's journal writes at
/// most in one transaction.
const PER_COMMIT: usize = 512;
/// The goal: the whole outbox at the primary within this many seconds.
const GOAL_SECONDS: f64 = 20.0;
/// The primary's tables, read directly for the baseline's bytes.
const ENQUIRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("enquiries");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

/// The `i`th enquiry queued: the mix an A&E replica records (matches of children with a plan,
/// no record, refusals, call-backs waiting), each as large as a real one.
fn enquiry(i: usize, at: DateTime<Utc>, with_plan: &[String]) -> Enquiry {
    let state = match i % 4 {
        0 if !with_plan.is_empty() => EnquiryState::Answered {
            outcome: "match".into(),
            record_ids: vec![with_plan[(i / 4) % with_plan.len()].clone()],
            authorities: vec![AUTHORITY.into()],
            advice: "The child has a child protection plan: call the lead social worker now on \
                     020 7946 0123, or the EDT out of hours on 020 7946 0999"
                .into(),
        },
        0 | 1 => EnquiryState::Answered {
            outcome: "no-record".into(),
            record_ids: Vec::new(),
            authorities: Vec::new(),
            advice: "No record of a child matching what was searched. This does not mean the \
                     child is safe: follow your safeguarding procedures"
                .into(),
        },
        2 => EnquiryState::Refused {
            why: "missing the date of birth".into(),
        },
        _ => EnquiryState::AwaitingCallback {
            expires_at: at + chrono::Duration::minutes(30),
        },
    };
    Enquiry {
        reference: String::new(),
        at,
        site: SITE.into(),
        path: EnquiryPath::Terminal {
            terminal: format!("A&E workstation {}", i % 7 + 1),
            organisation: "st-elsewhere-ae".into(),
            operator: format!("Dr Operator {}", i % 97),
            operator_role: "ED registrar".into(),
        },
        reason: "Unexplained bruising on a toddler brought in by a neighbour".into(),
        searched: serde_json::json!({
            "given_names": "Amelia",
            "surname": format!("Evans-{i}"),
            "date_of_birth": "2019-04-23",
            "postcode": "CR0 1AA",
        }),
        query: String::new(),
        alert: None,
        state,
        history: Vec::new(),
    }
}

/// What the primary holds after the drain, read from its register with it stopped.
struct AtPrimary {
    /// Rows of its enquiries table.
    rows: usize,
    references: BTreeSet<String>,
    /// `enquiry.received` audit entries per reference.
    receptions: BTreeMap<String, usize>,
    audit_entries: u64,
    audit_intact: bool,
    /// Write transactions that received enquiries.
    transactions: usize,
}

fn read_primary(pki: &cpreg_tests::TestPki) -> AtPrimary {
    let store = open_register(pki);
    let verified = store.verify_audit().expect("read the audit chain");
    let chain = store.audit_chain().expect("audit chain");
    let mut receptions = BTreeMap::new();
    let mut first_seq = None;
    for (seq, bytes) in &chain.entries {
        let record: AuditRecord = serde_json::from_slice(bytes).expect("audit entry decodes");
        if record.action == "enquiry.received" {
            *receptions.entry(record.subject).or_insert(0) += 1;
            first_seq.get_or_insert(*seq);
        }
    }
    // One checkpoint per committed transaction: those from the first enquiry on are the drain's
    // (the register's import came before).
    let transactions = chain
        .checkpoints
        .iter()
        .filter_map(|cp| serde_json::from_slice::<Checkpoint>(&cp.bytes).ok())
        .filter(|cp| first_seq.is_some_and(|first| cp.seq >= first))
        .count();
    let held = store.enquiries(None, 0).expect("enquiries");
    AtPrimary {
        rows: held.len(),
        references: held.into_iter().map(|e| e.reference).collect(),
        receptions,
        audit_entries: chain.entries.len() as u64,
        audit_intact: verified.is_ok(),
        transactions,
    }
}

/// The exact bytes the primary stored for each enquiry, and its `enquiry.received` audit entry.
fn stored_bytes(register: &std::path::Path) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let db = redb::Database::open(register).expect("open the register file");
    let txn = db.begin_read().expect("read");
    let mut audit_of = BTreeMap::new();
    for row in txn.open_table(AUDIT).expect("audit").iter().expect("iter") {
        let (_, bytes) = row.expect("row");
        let record: AuditRecord = serde_json::from_slice(bytes.value()).expect("entry");
        if record.action == "enquiry.received" {
            audit_of.insert(record.subject, bytes.value().to_vec());
        }
    }
    let enquiries = txn.open_table(ENQUIRIES).expect("enquiries");
    enquiries
        .iter()
        .expect("iter")
        .map(|row| {
            let (k, v) = row.expect("row");
            let reference = k.value().to_owned();
            let audit = audit_of.remove(&reference).unwrap_or_default();
            (reference, v.value().to_vec(), audit)
        })
        .collect()
}

/// Bare redb: `records` inserted into a fresh file, `batch` per write transaction (default
/// durability), with their audit entries beside them when `with_audit`. Records per second.
fn bare_redb(
    path: &std::path::Path,
    records: &[(String, Vec<u8>, Vec<u8>)],
    batch: usize,
    with_audit: bool,
) -> f64 {
    const ROWS: TableDefinition<&str, &[u8]> = TableDefinition::new("enquiries");
    const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
    let db = redb::Database::create(path).expect("baseline db");
    let started = Instant::now();
    let mut seq = 0u64;
    for chunk in records.chunks(batch.max(1)) {
        let txn = db.begin_write().expect("write");
        {
            let mut rows = txn.open_table(ROWS).expect("table");
            let mut entries = txn.open_table(ENTRIES).expect("table");
            for (reference, bytes, audit) in chunk {
                rows.insert(reference.as_str(), bytes.as_slice())
                    .expect("insert");
                if with_audit {
                    entries.insert(seq, audit.as_slice()).expect("insert");
                    seq += 1;
                }
            }
        }
        txn.commit().expect("commit");
    }
    records.len() as f64 / started.elapsed().as_secs_f64()
}

pub async fn drain(enquiries: usize) -> serde_json::Value {
    let primary = TestPrimary::start().await;
    // A register to match against: the matches are of children with a plan, whose lead social
    // workers the primary tells.
    let filled = fill(&primary, REGISTER, SEED).await;
    let with_plan: Vec<String> = cpreg::synthetic::Generator::new(SEED, today())
        .children(REGISTER)
        .into_iter()
        .filter(|c| !c.lead_social_worker.is_empty())
        .map(|c| c.record_id)
        .collect();
    let config = replica_config(
        &primary.pki,
        SITE,
        vec![authority_entry(&primary.pki, SITE, &primary.url)],
    );
    std::fs::create_dir_all(&config.data_dir).expect("replica data folder");

    // The outbox fills as the lookup service's journal fills it at a busy site: the enquiries
    // that arrive together, in one commit.
    eprintln!("cpreg-bench: recording {enquiries} enquiries at the replica");
    let path = config.database_path();
    let started = Instant::now();
    let with_plan_count = with_plan.len();
    let (made, queued) = tokio::task::spawn_blocking(move || {
        let store = ReplicaStore::open(&path).expect("replica store");
        let week = chrono::Duration::days(7);
        let step = week / i32::try_from(enquiries.max(1)).expect("enquiries fit an i32");
        let at = |i: usize| now() + step * i32::try_from(i).expect("fits");
        let mut made = BTreeSet::new();
        for start in (0..enquiries).step_by(PER_COMMIT) {
            let batch = (start..enquiries.min(start + PER_COMMIT))
                .map(|i| enquiry(i, at(i), &with_plan))
                .collect();
            let recorded = store.record_enquiries(batch).expect("recorded");
            made.extend(recorded.into_iter().map(|e| e.reference));
        }
        (made, store.outbox_backlog().expect("backlog"))
    })
    .await
    .expect("recorder");
    let prefill_seconds = started.elapsed().as_secs_f64();
    let rss_after_prefill = rss_mib();
    assert_eq!(made.len(), enquiries, "every enquiry has its own reference");

    eprintln!("cpreg-bench: draining {queued} outbox entries");
    let started = Instant::now();
    let replica = TestReplica::start_with(config).await;
    let store = replica.replica.store();
    let mut remaining = queued;
    while remaining > 0 && started.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(5)).await;
        remaining = store.outbox_backlog().expect("backlog");
    }
    let drain_seconds = started.elapsed().as_secs_f64();
    let peak_rss_through_drain = peak_rss_mib();
    drop(store);
    replica.replica.stop().await;
    let pki = primary.stop().await;
    eprintln!("cpreg-bench: drained in {drain_seconds:.1} s; checking the primary");

    let at = read_primary(&pki);
    let lost = made.difference(&at.references).count();
    let extra = at.references.difference(&made).count();
    let receptions: usize = at.receptions.values().sum();
    let received_twice = at.receptions.values().filter(|n| **n > 1).count();
    let duplicated =
        receptions.saturating_sub(at.receptions.len()) + (at.rows - at.references.len());

    let stored = stored_bytes(&pki.primary_dir().join("data").join("register.redb"));
    let primary_batch = receptions.div_ceil(at.transactions.max(1));
    let mean_bytes = stored.iter().map(|(_, b, _)| b.len()).sum::<usize>() / stored.len().max(1);
    let mean_audit_bytes =
        stored.iter().map(|(_, _, a)| a.len()).sum::<usize>() / stored.len().max(1);
    let dir = scratch(&pki, "bare");
    eprintln!("cpreg-bench: bare redb baselines, {primary_batch} per transaction");
    // Each twice, the better kept: the first run in a process pays for warming the page cache.
    let best = |name: &str, with_audit: bool| {
        (0..2)
            .map(|run| {
                bare_redb(
                    &dir.join(format!("{name}-{run}.redb")),
                    &stored,
                    primary_batch,
                    with_audit,
                )
            })
            .fold(0.0, f64::max)
    };
    let baseline = best("rows", false);
    let baseline_with_audit = best("audited", true);

    let rate = enquiries as f64 / drain_seconds;
    let goal_met = remaining == 0 && drain_seconds < GOAL_SECONDS && lost == 0 && duplicated == 0;
    serde_json::json!({
        "scenario": "drain",
        "enquiries": enquiries,
        "register": filled.json(),
        "children_with_a_plan_matched": with_plan_count,
        "prefill": {
            "how": format!("Store::record_enquiries at the replica's own store, {PER_COMMIT} per commit as the lookup service's journal writes them at a busy site, before the replica starts; a quarter each: matches of children with a plan, no record, refused, awaiting a call-back"),
            "seconds": round6(prefill_seconds),
            "enquiries_per_second": (enquiries as f64 / prefill_seconds).round(),
            "outbox_entries": queued,
            "rss_mib_after": rss_after_prefill,
        },
        "drain": {
            "what": "from Replica::start (reporter dialling a live primary in this process over mTLS on loopback) to the replica's outbox backlog reading 0",
            "seconds": round6(drain_seconds),
            "enquiries_per_second": rate.round(),
            "left_in_outbox": remaining,
        },
        "at_primary": {
            "rows": at.rows,
            "distinct_references": at.references.len(),
            "enquiry_received_audit_entries": receptions,
            "audit_entries": at.audit_entries,
            "audit_chain_intact": at.audit_intact,
            "transactions": at.transactions,
            "enquiries_per_transaction": primary_batch,
            "stored_bytes_per_enquiry": mean_bytes,
            "audit_bytes_per_enquiry": mean_audit_bytes,
        },
        "lost": lost,
        "extra": extra,
        "duplicated": duplicated,
        "references_received_more_than_once": received_twice,
        "baseline": {
            "what": "bare redb inserts of the primary's stored bytes for the same enquiries into a fresh file, in transactions of the size the primary committed, same process; and the same with each enquiry's audit entry beside it",
            "enquiries_per_second": baseline.round(),
            "with_audit_entries_enquiries_per_second": baseline_with_audit.round(),
        },
        "ratio_to_baseline": round3(rate / baseline),
        "ratio_to_baseline_with_audit_entries": round3(rate / baseline_with_audit),
        "goal": {
            "drain_seconds": format!("< {GOAL_SECONDS}"),
            "lost": 0,
            "duplicated": 0,
        },
        "goal_met": goal_met && at.audit_intact && extra == 0,
        "peak_rss_mib_through_drain": peak_rss_through_drain,
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_note": "this process: the primary and the replica together; the overall peak includes reading every enquiry back from the register afterwards",
    })
}
