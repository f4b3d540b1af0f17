//! Enquiries made at a replica reach the primary with nothing lost and nothing counted twice
//! (DESIGN section 6): a replica cut off for a week delivers everything it queued once its
//! primary is back, and a replica and a primary killed with SIGKILL again and again in the middle
//! of reporting still end with the primary holding exactly the enquiries made, each received
//! once, under an audit chain that verifies.
//!
//! "Received once" is read from the primary's audit chain, where every enquiry received is an
//! `enquiry.received` entry: the enquiries table is keyed by reference, so a double shows there
//! only as a second entry. In these scenarios every state of an enquiry is recorded before any of
//! it is delivered, and the outbox sends an enquiry as it stands, so the primary must receive
//! exactly one state of each: one entry per reference.
//!
//! The killed replica runs as a separate process: this test binary started again in "child"
//! mode (see `replica_child_process`), as in `replica_crash.rs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cpreg_primary::store::ReceivedEnquiry;
use cpreg_proto::audit::AuditRecord;
use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_replica::store::{Enquiry, EnquiryPath, EnquiryState, Store as ReplicaStore};
use cpreg_tests::replica::{TestReplica, authority_entry, replica_config, site_dir};
use cpreg_tests::replica_process::ReplicaProcess;
use cpreg_tests::site::{ST_ELSEWHERE_AE, ae_terminal, child_query, lookup_site, registrar_lookup};
use cpreg_tests::{
    AUTHORITY, PrimaryProcess, TestPki, TestPrimary, free_loopback_addr, now, open_register,
};

const PRIMARY_EXE: &str = env!("CARGO_BIN_EXE_cpreg-primary-under-test");
const SITE: &str = "ae";
/// How long a drain may take before the test calls it stuck: generous, because CI runs every
/// test binary at once on two cores; the speed itself is `cpreg-bench drain`'s to measure.
const DELIVERY_LIMIT: Duration = Duration::from_secs(240);
const ORGANISATION: &str = "st-elsewhere-ae";

/// Child mode: runs a replica when this binary is started again by `ReplicaProcess`.
#[test]
fn replica_child_process() {
    cpreg_tests::replica_process::serve_if_child();
}

/// The `i`th enquiry of a bulk load at `at`: answered with a match, answered with no record,
/// refused, or waiting for a call-back.
fn bulk_enquiry(i: usize, at: DateTime<Utc>) -> Enquiry {
    let state = match i % 4 {
        0 => EnquiryState::Answered {
            outcome: "match".into(),
            record_ids: vec!["C1".into()],
            authorities: vec![AUTHORITY.into()],
            advice: "Amelia Evans has a child protection plan: call Sam Okafor on 020 7946 0123"
                .into(),
        },
        1 => EnquiryState::Answered {
            outcome: "no-record".into(),
            record_ids: Vec::new(),
            authorities: Vec::new(),
            advice: "No record of a child matching what was searched; this does not mean the \
                     child is safe"
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
            organisation: ORGANISATION.into(),
            operator: format!("Dr Operator {}", i % 31),
            operator_role: "ED registrar".into(),
        },
        reason: format!("Unexplained injuries, attendance {i}"),
        searched: serde_json::json!({
            "given_names": "Amelia",
            "surname": format!("Evans-{i}"),
            "date_of_birth": "2019-04-23",
        }),
        query: String::new(),
        alert: None,
        state,
        history: Vec::new(),
    }
}

/// Enquiries written per commit when filling an outbox, as the lookup service's journal writes
/// those that arrive together.
const PER_COMMIT: usize = 250;

/// Records `n` enquiries spread evenly over `span` from `from`, as the lookup service would, each
/// with its outbox entry; every sixteenth then fails its call-back (a second state, queued
/// again). Returns each enquiry as it finally stands, by reference.
fn record_bulk(
    store: &ReplicaStore,
    n: usize,
    from: DateTime<Utc>,
    span: chrono::Duration,
) -> BTreeMap<String, Enquiry> {
    let step = span / i32::try_from(n.max(1)).expect("n fits");
    let at = |i: usize| from + step * i32::try_from(i).expect("i fits");
    let mut made = BTreeMap::new();
    for start in (0..n).step_by(PER_COMMIT) {
        let batch = (start..n.min(start + PER_COMMIT))
            .map(|i| bulk_enquiry(i, at(i)))
            .collect();
        let recorded = store.record_enquiries(batch).expect("recorded");
        for (i, mut enquiry) in (start..).zip(recorded) {
            if i % 16 == 3 {
                let later = at(i) + chrono::Duration::minutes(5);
                let failed = EnquiryState::CallbackFailed {
                    outcome: "no-answer".into(),
                    at: later,
                };
                enquiry = store
                    .update_enquiry(&enquiry.reference, failed, later)
                    .expect("update")
                    .expect("the enquiry just recorded");
            }
            made.insert(enquiry.reference.clone(), enquiry);
        }
    }
    made
}

/// What the primary holds, read from its register file with the primary stopped or killed; the
/// audit chain is verified first.
struct Held {
    enquiries: BTreeMap<String, ReceivedEnquiry>,
    /// `enquiry.received` audit entries per reference.
    received: BTreeMap<String, usize>,
    /// Every audit entry's (action, subject), counted: what the enquiries led to as well.
    actions: BTreeMap<(String, String), usize>,
    audit_entries: u64,
}

fn held_at_primary(pki: &TestPki) -> Held {
    let store = open_register(pki);
    let report = store
        .verify_audit()
        .expect("read the audit chain")
        .unwrap_or_else(|broken| panic!("the primary's audit chain does not verify: {broken}"));
    let mut received = BTreeMap::new();
    let mut actions = BTreeMap::new();
    for (_, bytes) in store.audit_chain().expect("audit chain").entries {
        let record: AuditRecord = serde_json::from_slice(&bytes).expect("audit entry decodes");
        if record.action == "enquiry.received" {
            *received.entry(record.subject.clone()).or_insert(0) += 1;
        }
        *actions.entry((record.action, record.subject)).or_insert(0) += 1;
    }
    let list = store.enquiries(None, 0).expect("enquiries");
    let rows = list.len();
    let enquiries: BTreeMap<String, ReceivedEnquiry> =
        list.into_iter().map(|e| (e.reference.clone(), e)).collect();
    assert_eq!(enquiries.len(), rows, "a reference held twice");
    Held {
        enquiries,
        received,
        actions,
        audit_entries: report.entries,
    }
}

fn first<'a>(refs: impl IntoIterator<Item = &'a String>) -> Vec<&'a String> {
    refs.into_iter().take(5).collect()
}

/// The primary holds exactly the enquiries made, each in its final state, each received once.
fn assert_held_exactly(made: &BTreeMap<String, Enquiry>, held: &Held) {
    let missing: Vec<&String> = made
        .keys()
        .filter(|r| !held.enquiries.contains_key(*r))
        .collect();
    let extra: Vec<&String> = held
        .enquiries
        .keys()
        .filter(|r| !made.contains_key(*r))
        .collect();
    let not_once: Vec<(&String, usize)> = made
        .keys()
        .map(|r| (r, held.received.get(r).copied().unwrap_or(0)))
        .filter(|(_, n)| *n != 1)
        .collect();
    let unmade_entries: Vec<&String> = held
        .received
        .keys()
        .filter(|r| !made.contains_key(*r))
        .collect();
    let not_final: Vec<&String> = made
        .iter()
        .filter(|(r, e)| {
            held.enquiries.get(*r).is_some_and(|h| {
                h.site != SITE
                    || h.record != serde_json::to_value(e).expect("enquiry as JSON")
                    || h.alert.is_some()
            })
        })
        .map(|(r, _)| r)
        .collect();
    assert!(
        missing.is_empty()
            && extra.is_empty()
            && not_once.is_empty()
            && unmade_entries.is_empty()
            && not_final.is_empty(),
        "made {}, held {}: {} missing (first {:?}); {} never made (first {:?}); {} not received \
         exactly once (first {:?}); {} audit subjects never made (first {:?}); {} not as the \
         replica holds them (first {:?})",
        made.len(),
        held.enquiries.len(),
        missing.len(),
        first(missing.iter().copied()),
        extra.len(),
        first(extra.iter().copied()),
        not_once.len(),
        not_once.iter().take(5).collect::<Vec<_>>(),
        unmade_entries.len(),
        first(unmade_entries.iter().copied()),
        not_final.len(),
        first(not_final.iter().copied()),
    );
    assert_eq!(held.enquiries.len(), made.len());
    assert_eq!(held.received.values().sum::<usize>(), made.len());
}

/// Every enquiry waiting in a replica's outbox, as it stands, by reference, and the number of
/// outbox entries (an enquiry whose state changed is queued once per state).
fn waiting(store: &ReplicaStore) -> (BTreeMap<String, Enquiry>, usize) {
    let outbox = store.outbox(usize::MAX).expect("outbox");
    let entries = outbox.len();
    let by_reference = outbox
        .into_iter()
        .map(|(_, e)| (e.reference.clone(), e))
        .collect();
    (by_reference, entries)
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("https://")
        .parse()
        .expect("a primary URL is https://ip:port")
}

/// A primary with one child on a plan and the A&E organisation, and a replica at the site
/// holding its register and serving lookups.
async fn site_with_lookups() -> (TestPrimary, TestReplica) {
    lookup_site(SITE, &[ST_ELSEWHERE_AE], |_, _| {}).await
}

/// One lookup over mutual TLS from the A&E terminal: the reference on the answer, or the refusal.
async fn look_up(
    terminal: &cpreg::profile::Profile,
    given: &str,
    surname: &str,
    dob: &str,
) -> Result<String, tonic::Status> {
    let mut client = terminal.lookup().await.expect("connect to the replica");
    client
        .lookup(registrar_lookup(child_query(given, surname, dob)))
        .await
        .map(|answer| answer.into_inner().enquiry_reference)
}

/// Waits until the replica's outbox is empty; seconds taken.
async fn wait_until_delivered(replica: &TestReplica, limit: Duration) -> f64 {
    let started = Instant::now();
    loop {
        let backlog = replica.replica.store().outbox_backlog().expect("backlog");
        if backlog == 0 {
            return started.elapsed().as_secs_f64();
        }
        assert!(
            started.elapsed() < limit,
            "{backlog} enquiries still in the outbox after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_for_a_week_queues_10000_enquiries_and_delivers_each_once_on_reconnecting()
 {
    const BULK: usize = 10_000;
    let week = chrono::Duration::days(7);
    let (primary, replica) = site_with_lookups().await;
    let config = replica.replica.config().clone();
    let addr = addr_of(&primary.url);
    let terminal = ae_terminal(&primary, &replica);

    // The link goes: the primary is down for the week.
    let pki = primary.stop().await;
    let mut looked_up = vec![
        look_up(&terminal, "Amelia", "Evans", "2019-04-23")
            .await
            .expect("a match, from the copy held"),
        look_up(&terminal, "Oscar", "Whitfield", "2018-02-02")
            .await
            .expect("no record"),
    ];
    let refused = look_up(&terminal, "Amelia", "Evans", "")
        .await
        .expect_err("too little detail");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    let store = replica.replica.store();
    let started = Instant::now();
    let bulk = tokio::task::spawn_blocking(move || record_bulk(&store, BULK, now(), week))
        .await
        .expect("recorder");
    let record_seconds = started.elapsed().as_secs_f64();
    assert_eq!(bulk.len(), BULK);
    replica.clock.advance(week);
    looked_up.push(
        look_up(&terminal, "Amelia", "Evans", "2019-04-23")
            .await
            .expect("a match at the end of the week"),
    );

    // Everything made is waiting: the bulk, the lookups and the refusal, none delivered.
    let (made, outbox_entries) = waiting(&replica.replica.store());
    assert_eq!(
        made.len(),
        BULK + 4,
        "the bulk, three answers and a refusal"
    );
    assert!(bulk.keys().chain(&looked_up).all(|r| made.contains_key(r)));
    for (reference, enquiry) in &bulk {
        assert_eq!(made.get(reference), Some(enquiry));
    }
    assert_eq!(
        replica.replica.store().outbox_backlog().expect("backlog"),
        outbox_entries as u64
    );

    // Still cut off, the replica restarts; a copy of its file is kept as it is now, with
    // everything queued, for the second run below.
    let replica_file = config.database_path();
    replica.replica.stop().await;
    let before = pki.path().join("replica-before-reconnecting.redb");
    std::fs::copy(&replica_file, &before).expect("copy the replica's file");
    let restart = |at: DateTime<Utc>| start_once_closed(config.clone(), at);
    let replica = restart(now() + week).await;

    // The primary comes back where the replica dials it, a week on.
    let primary = TestPrimary::restart_on_at(pki, addr, now() + week).await;
    let drain_seconds = wait_until_delivered(&replica, DELIVERY_LIMIT).await;
    eprintln!(
        "recorded {BULK} in {record_seconds:.1} s; {} outbox entries delivered in {drain_seconds:.1} s",
        outbox_entries
    );
    replica.replica.stop().await;
    let pki = primary.stop().await;
    let held = held_at_primary(&pki);
    assert_held_exactly(&made, &held);

    // A second run of the reporter over everything it had queued (the replica's file as it was
    // before reconnecting: as if every acknowledgement had been lost) adds nothing.
    let primary = TestPrimary::restart_on_at(pki, addr, now() + week).await;
    std::fs::copy(&before, &replica_file).expect("restore the replica's file");
    let replica = restart(now() + week).await;
    assert_eq!(
        replica.replica.store().outbox_backlog().expect("backlog"),
        outbox_entries as u64
    );
    let again_seconds = wait_until_delivered(&replica, DELIVERY_LIMIT).await;
    eprintln!("the same {outbox_entries} entries sent again in {again_seconds:.1} s");
    replica.replica.stop().await;
    let pki = primary.stop().await;
    let again = held_at_primary(&pki);
    assert_held_exactly(&made, &again);
    assert_eq!(
        again.audit_entries, held.audit_entries,
        "a repeat writes nothing, not even an audit entry"
    );
    assert!(again.actions == held.actions, "the same audit entries");
    for (reference, first) in &held.enquiries {
        assert_eq!(
            again.enquiries.get(reference).map(|e| &e.received_at),
            Some(&first.received_at),
            "{reference} was written again"
        );
    }
}

/// Starts the replica again in this process, its clock at `at`, once the stopped one has let go
/// of its file: `Replica::stop` returns before every handle on the store is dropped (the lookup
/// service's journal thread lets go of its own when it next wakes).
async fn start_once_closed(
    config: cpreg_replica::config::Config,
    at: DateTime<Utc>,
) -> TestReplica {
    let clock = Arc::new(cpreg_replica::clock::FixedClock::new(at));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match cpreg_replica::Replica::start(config.clone(), clock.clone()).await {
            Ok(replica) => return TestReplica { replica, clock },
            Err(cpreg_replica::ReplicaError::InUse { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the replica does not start again: {e}"),
        }
    }
}

/// The primary process, killed with SIGKILL when dropped (a test that fails part-way leaves no
/// primary running).
struct KilledOnDrop(Option<PrimaryProcess>);

impl KilledOnDrop {
    fn kill_9(&mut self) {
        if let Some(p) = self.0.take() {
            p.kill_9();
        }
    }
}

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// The backlog of the replica's file, read beside the running replica; `None` while the file
/// cannot be read (a replica killed and not yet restarted leaves it to be repaired).
fn backlog(path: &Path) -> Option<u64> {
    ReplicaStore::open_read_only(path)
        .ok()?
        .outbox_backlog()
        .ok()
}

/// Waits until the primary process answers (it prints its address before it opens its register).
async fn wait_answering(pki: &TestPki, url: &str) {
    let profile = pki.profile(Role::Custodian, url);
    for _ in 0..400 {
        if let Ok(mut c) = profile.register().await
            && c.get_authority(pb::GetAuthorityRequest {}).await.is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the primary process at {url} never answered");
}

/// Waits for the replica's backlog to fall (the primary acknowledged a batch and the replica
/// marked it delivered): the backlog then and when it was seen.
async fn next_acknowledgement(db: &Path, round: usize) -> (u64, Instant) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut from = None;
    loop {
        let now = backlog(db);
        match (from, now) {
            (_, Some(0)) => panic!("round {round}: the outbox emptied before the kill; queue more"),
            (Some(before), Some(b)) if b < before => return (b, Instant::now()),
            (None, Some(b)) => from = Some(b),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "round {round}: no batch acknowledged within 30 s (backlog {now:?})"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// xorshift64: moments that differ from run to run, reproducible from the printed seed.
struct Moments(u64);

impl Moments {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    Replica,
    Primary,
    Both,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_and_primary_killed_with_kill_9_again_and_again_in_the_middle_of_reporting_lose_and_double_nothing()
 {
    const QUEUED: usize = 16_000;
    const ROUNDS: usize = 7;
    let pki = TestPki::new();
    let addr = free_loopback_addr();
    let first = PrimaryProcess::spawn_on(PRIMARY_EXE, &pki, addr);
    wait_answering(&pki, &first.url).await;
    let config = replica_config(&pki, SITE, vec![authority_entry(&pki, SITE, &first.url)]);
    let mut primary = KilledOnDrop(Some(first));
    let config_path: PathBuf = site_dir(&pki, SITE).join("replica.toml");
    let db = config.database_path();

    // The replica's store holds the queue before the replica process first starts.
    std::fs::create_dir_all(&config.data_dir).expect("data folder");
    let started = Instant::now();
    let made = {
        let store = ReplicaStore::open(&db).expect("replica store");
        let made = record_bulk(&store, QUEUED, now(), chrono::Duration::days(2));
        assert_eq!(made.len(), QUEUED);
        made
    };
    let outbox_entries = QUEUED + (0..QUEUED).filter(|i| i % 16 == 3).count();
    assert_eq!(backlog(&db), Some(outbox_entries as u64));
    // The same queue goes to a fresh primary, nothing killed, beside the rounds below.
    let queued = pki.path().join("queued.redb");
    std::fs::copy(&db, &queued).expect("keep a copy of the queue");
    let calm = tokio::spawn(undisturbed_delivery(queued));
    eprintln!(
        "{outbox_entries} outbox entries queued in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 | 1)
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    eprintln!("kill moments seed {seed:#x}");
    let mut moments = Moments(seed);
    let started = Instant::now();
    let mut replica = ReplicaProcess::spawn(&config_path);
    let mut kills = Vec::new();
    // How long one call of the reporter takes, from one acknowledged batch to the next.
    let mut cycle: Option<Duration> = None;
    for round in 0..ROUNDS {
        let victim = match round {
            r if r == ROUNDS - 1 => Victim::Both,
            r if r % 2 == 0 => Victim::Replica,
            _ => Victim::Primary,
        };
        // Wait until reporting runs again after the last restart (a batch acknowledged), then
        // kill at a random moment within the next call: reading the outbox, sending, the
        // primary committing, or the replica marking the batch delivered.
        let (_, acknowledged) = next_acknowledgement(&db, round).await;
        let cycle = match cycle {
            Some(c) => c,
            None => {
                let (_, again) = next_acknowledgement(&db, round).await;
                *cycle.insert(
                    again
                        .duration_since(acknowledged)
                        .max(Duration::from_millis(20)),
                )
            }
        };
        // Within four fifths of a call, so that at most one more batch goes per round.
        let within = u64::try_from(cycle.as_millis() * 4 / 5)
            .unwrap_or(1_000)
            .max(1);
        tokio::time::sleep(Duration::from_millis(moments.next(within))).await;
        let at_kill = backlog(&db);
        match victim {
            Victim::Replica => {
                replica.kill_9();
                replica = ReplicaProcess::spawn(&config_path);
            }
            Victim::Primary => {
                primary.kill_9();
                primary = KilledOnDrop(Some(PrimaryProcess::spawn_on(PRIMARY_EXE, &pki, addr)));
            }
            Victim::Both => {
                replica.kill_9();
                primary.kill_9();
                primary = KilledOnDrop(Some(PrimaryProcess::spawn_on(PRIMARY_EXE, &pki, addr)));
                replica = ReplicaProcess::spawn(&config_path);
            }
        }
        kills.push((victim, at_kill));
    }
    eprintln!("kills (victim, backlog just before): {kills:?}");
    for (victim, at_kill) in &kills {
        assert!(
            at_kill.is_some_and(|b| b > 0),
            "{victim:?} killed with nothing left to report: {kills:?}"
        );
    }

    // Both running again: the rest is delivered.
    let deadline = Instant::now() + Duration::from_secs(40);
    while backlog(&db) != Some(0) {
        assert!(
            Instant::now() < deadline,
            "still {:?} in the outbox",
            backlog(&db)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "{outbox_entries} entries delivered through {ROUNDS} kills in {:.1} s (a call took about {} ms)",
        started.elapsed().as_secs_f64(),
        cycle.map_or(0, |c| c.as_millis())
    );
    replica.kill_9();
    primary.kill_9();

    let store = ReplicaStore::open(&db).expect("the replica's file after the last kill");
    assert_eq!(store.outbox_backlog().expect("backlog"), 0);
    assert_eq!(
        store.enquiries_recorded().expect("count"),
        QUEUED as u64,
        "the replica keeps its own record of every enquiry"
    );
    drop(store);
    let held = held_at_primary(&pki);
    assert_held_exactly(&made, &held);

    // The same queue delivered once to a fresh primary, with nothing killed, led to the same
    // audit entries: no Contact, alert or notification was made twice either.
    let calm = calm.await.expect("the undisturbed delivery");
    assert_held_exactly(&made, &calm);
    let differ: Vec<_> = held
        .actions
        .iter()
        .map(|(k, n)| (k, *n, calm.actions.get(k).copied().unwrap_or(0)))
        .chain(
            calm.actions
                .iter()
                .filter(|(k, _)| !held.actions.contains_key(*k))
                .map(|(k, n)| (k, 0, *n)),
        )
        .filter(|(_, killed, calm)| killed != calm)
        .collect();
    assert!(
        differ.is_empty(),
        "{} (action, subject) counted differently after the kills than in one undisturbed \
         delivery (killed, undisturbed), first: {:?}",
        differ.len(),
        differ.iter().take(10).collect::<Vec<_>>()
    );
}

/// Delivers the replica's file `queued` once, nothing killed, to a fresh primary in this
/// process; what that primary then holds.
async fn undisturbed_delivery(queued: PathBuf) -> Held {
    let primary = TestPrimary::start().await;
    let config = replica_config(
        &primary.pki,
        SITE,
        vec![authority_entry(&primary.pki, SITE, &primary.url)],
    );
    std::fs::create_dir_all(&config.data_dir).expect("data folder");
    std::fs::copy(&queued, config.database_path()).expect("the queue");
    let replica = TestReplica::start_with(config).await;
    wait_until_delivered(&replica, DELIVERY_LIMIT).await;
    replica.replica.stop().await;
    let pki = primary.stop().await;
    held_at_primary(&pki)
}
