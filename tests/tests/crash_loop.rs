//! A primary and two replicas killed with SIGKILL at random moments, again and again for
//! minutes, while terminals at A&E and the EDT keep looking children up and the Safeguarding
//! Unit keeps putting children on plans: at the end every enquiry a replica recorded is at the
//! primary exactly once (DESIGN section 6), every replica holds and serves the primary's newest
//! signed version (section 4), and the primary's audit chain verifies (section 7).
//!
//! Lookups are real `cpreg.v1.Lookup` calls over mutual TLS. A call may fail because its replica
//! is down, and a call whose answer was lost may still have been recorded, so the account is
//! kept from the replicas' own files: every enquiry recorded at a replica must be at the primary,
//! as the replica holds it, received once (one `enquiry.received` audit entry), and the primary
//! must hold no other; every reference a terminal was given must be among them. Each lookup is
//! recorded in one state only (answered or refused), so one entry per reference is exact.
//!
//! The replicas run as separate processes: this test binary started again in "child" mode (see
//! `replica_child_process`), as in `enquiry_delivery.rs`; the primary is the real command line.
//! The kills follow a seeded generator whose seed is printed (`CPREG_CRASH_LOOP_SEED` replays a
//! sequence of victims and pauses); `CPREG_CRASH_LOOP_SECONDS` sets how long the kills go on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use cpreg::profile::Profile;
use cpreg_primary::store::ReceivedEnquiry;
use cpreg_proto::audit::AuditRecord;
use cpreg_proto::pb::{self, Category};
use cpreg_proto::role::Role;
use cpreg_proto::snapshot::StateRoot;
use cpreg_replica::store::{Enquiry, Store as ReplicaStore};
use cpreg_tests::replica::{authority_entry, replica_config, site_dir, terminal_profile};
use cpreg_tests::replica_process::ReplicaProcess;
use cpreg_tests::{
    AUTHORITY, PrimaryProcess, TestPki, child_details, free_loopback_addr, open_register,
};

const PRIMARY_EXE: &str = env!("CARGO_BIN_EXE_cpreg-primary-under-test");
/// How long the kills go on unless `CPREG_CRASH_LOOP_SECONDS` says otherwise: minutes of
/// crashes, short enough for CI.
const DEFAULT_SECONDS: u64 = 150;
/// Pauses between kills, in milliseconds: long enough for a restarted process to get some
/// work done, short enough to catch it in the middle of everything.
const PAUSE_MS: (u64, u64) = (500, 4_000);
/// How long the processes may take, once the kills stop, to deliver every enquiry and reach the
/// newest version: above the reporter's and the subscriber's longest backoff (30 s).
const SETTLE_LIMIT: Duration = Duration::from_secs(90);
/// Any one call to a process that may have just been killed.
const CALL_LIMIT: Duration = Duration::from_secs(10);
/// Children on plans before the replicas first start.
const FIRST_CHILDREN: usize = 12;

/// A site with a replica serving lookups, and the directory organisation its terminal belongs to.
struct Site {
    id: &'static str,
    organisation: &'static str,
    organisation_name: &'static str,
    kind: pb::OrganisationKind,
    callback_number: &'static str,
    terminal: &'static str,
}

const SITES: [Site; 2] = [
    Site {
        id: "ae",
        organisation: "st-elsewhere-ae",
        organisation_name: "St Elsewhere Emergency Department",
        kind: pb::OrganisationKind::EmergencyDepartment,
        callback_number: "01632 960 100",
        terminal: "A&E workstation 1",
    },
    Site {
        id: "edt",
        organisation: "test-borough-edt",
        organisation_name: "Test Borough Emergency Duty Team",
        kind: pb::OrganisationKind::EmergencyDutyTeam,
        callback_number: "01632 960 200",
        terminal: "EDT duty desk",
    },
];

/// Child mode: runs a replica when this binary is started again by `ReplicaProcess`.
#[test]
fn replica_child_process() {
    cpreg_tests::replica_process::serve_if_child();
}

/// xorshift64: victims and pauses that differ from run to run, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }

    fn between(&mut self, (low, high): (u64, u64)) -> u64 {
        low + self.below(high - low + 1)
    }
}

fn seed() -> u64 {
    match std::env::var("CPREG_CRASH_LOOP_SEED") {
        Ok(text) => {
            let text = text.trim();
            match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            }
            .expect("CPREG_CRASH_LOOP_SEED is a number")
        }
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9_7f4a_7c15, |d| d.as_nanos() as u64),
    }
}

fn loop_seconds() -> u64 {
    std::env::var("CPREG_CRASH_LOOP_SECONDS").map_or(DEFAULT_SECONDS, |s| {
        s.trim()
            .parse()
            .expect("CPREG_CRASH_LOOP_SECONDS is a number of seconds")
    })
}

/// A child put on a plan, as a terminal would ask about them.
#[derive(Debug, Clone)]
struct Known {
    record_id: String,
    given: String,
    surname: String,
    dob: String,
}

const GIVEN: [&str; 12] = [
    "Amelia", "Oscar", "Isla", "Noah", "Freya", "Leo", "Maya", "Arlo", "Ruby", "Theo", "Esme",
    "Jude",
];
const SURNAMES: [&str; 13] = [
    "Evans",
    "Whitfield",
    "Okoro",
    "Brennan",
    "Kowalski",
    "Hughes",
    "Adeyemi",
    "Lindqvist",
    "Marsh",
    "Farrow",
    "Quinn",
    "Doyle",
    "Achterberg",
];

/// The `n`th child: a name (156 of them), a date of birth three days apart from the next
/// child's (1,500 of them, all under 16) and an address of their own, so that no two are alike
/// or siblings to the matcher.
fn nth_child(n: usize, today: NaiveDate) -> (Known, pb::ChildDetails) {
    let known = Known {
        record_id: format!("CL{n:04}"),
        given: GIVEN[n % GIVEN.len()].to_owned(),
        surname: SURNAMES[(n / GIVEN.len()) % SURNAMES.len()].to_owned(),
        dob: (today - chrono::Duration::days(730 + 3 * (n % 1_500) as i64)).to_string(),
    };
    let mut details = child_details(&known.given, &known.surname, &known.dob);
    details.nhs_number = String::new();
    details.home_address = format!("{} Alder Road, Croydon", n + 1);
    (known, details)
}

/// The initial conference's decision for `record_id`, dated from the primary's own clock (the
/// real one, in a separate process).
fn plan_from(record_id: &str, today: NaiveDate) -> pb::StartPlanRequest {
    let mut plan = cpreg_tests::plan_start(record_id, 0, 0, &[Category::Neglect]);
    plan.start_date = (today - chrono::Duration::days(10)).to_string();
    plan.next_review_date = (today + chrono::Duration::days(60)).to_string();
    plan
}

/// Whether a failed call may be the primary being killed or restarted (try again), rather than
/// a refusal (a fault in the scenario).
fn transient(status: &tonic::Status) -> bool {
    !matches!(
        status.code(),
        tonic::Code::InvalidArgument
            | tonic::Code::PermissionDenied
            | tonic::Code::Unauthenticated
            | tonic::Code::NotFound
    )
}

/// Creates the `n`th child and starts their plan at the primary, through its kills and restarts
/// (a reply lost to a kill may hide a change made); `None` if the load stops first.
async fn put_on_plan(
    custodian: &Profile,
    n: usize,
    today: NaiveDate,
    stop: &AtomicBool,
) -> Option<Known> {
    let (known, details) = nth_child(n, today);
    let mut created = false;
    while !stop.load(Ordering::Relaxed) {
        let Ok(Ok(mut client)) = tokio::time::timeout(CALL_LIMIT, custodian.register()).await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if !created {
            let create = pb::CreateChildRequest {
                record_id: known.record_id.clone(),
                details: Some(details.clone()),
            };
            match tokio::time::timeout(CALL_LIMIT, client.create_child(create)).await {
                Ok(Ok(_)) => created = true,
                Ok(Err(status)) if status.code() == tonic::Code::AlreadyExists => created = true,
                Ok(Err(status)) if !transient(&status) => {
                    panic!("creating {}: {status}", known.record_id)
                }
                _ => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let plan = plan_from(&known.record_id, today);
        match tokio::time::timeout(CALL_LIMIT, client.start_plan(plan)).await {
            Ok(Ok(_)) => return Some(known),
            Ok(Err(status)) if !transient(&status) => {
                panic!("starting {}'s plan: {status}", known.record_id)
            }
            _ => {
                // The plan may have started with the reply lost; then a second start is refused.
                let get = pb::GetChildRequest {
                    record_id: known.record_id.clone(),
                };
                if let Ok(Ok(reply)) = tokio::time::timeout(CALL_LIMIT, client.get_child(get)).await
                    && reply
                        .into_inner()
                        .child
                        .is_some_and(|c| !c.plans.is_empty())
                {
                    return Some(known);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    None
}

/// The Safeguarding Unit's side of the load: a child put on a plan every fraction of a second,
/// so the replicas keep receiving new versions while they and the primary are killed.
async fn put_children_on_plans(
    custodian: Profile,
    known: Arc<Mutex<Vec<Known>>>,
    today: NaiveDate,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> usize {
    let mut rng = Rng::new(seed);
    let mut added = 0;
    let mut n = known.lock().expect("known children").len();
    while !stop.load(Ordering::Relaxed) {
        if let Some(child) = put_on_plan(&custodian, n, today, &stop).await {
            known.lock().expect("known children").push(child);
            added += 1;
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.between((200, 800)))).await;
    }
    added
}

/// What one site's terminal saw.
#[derive(Debug, Default)]
struct Tally {
    /// Every reference the terminal was given, on an answer or on a refusal.
    references: BTreeSet<String>,
    answered: u64,
    refused: u64,
    /// Calls that failed without a reference (the replica down, or killed in the middle).
    failed: BTreeMap<String, u64>,
}

/// The reference a recorded refusal names: "... (enquiry AE-20261122-000042 recorded)".
fn refusal_reference(message: &str) -> Option<String> {
    let rest = message.rsplit_once("(enquiry ")?.1;
    let reference = rest.strip_suffix(" recorded)")?;
    Some(reference.to_owned())
}

/// One lookup from a terminal: a child on a plan most of the time, one in forty a child with no
/// record, one in forty with too little detail to search (refused, and recorded all the same).
/// Misses are kept rare: a run of them raises the replica's enumeration alerts, which the
/// primary logs.
fn next_query(rng: &mut Rng, known: &Mutex<Vec<Known>>) -> (pb::ChildQuery, bool) {
    let pick = {
        let known = known.lock().expect("known children");
        known[rng.below(known.len() as u64) as usize].clone()
    };
    let mut query = pb::ChildQuery {
        given_names: pick.given,
        surname: pick.surname,
        date_of_birth: pick.dob,
        ..Default::default()
    };
    match rng.below(40) {
        0 => {
            query.date_of_birth = String::new();
            (query, true)
        }
        1 => {
            query.surname = "Ravenscroft".into();
            (query, false)
        }
        _ => (query, false),
    }
}

/// The one operator at each site's terminal.
fn operator(site: &Site) -> String {
    format!("Duty operator at {}", site.id)
}

/// A terminal at `site` looking children up until the load stops, through its replica's kills.
async fn look_up_until_stopped(
    site: &'static Site,
    terminal: Profile,
    known: Arc<Mutex<Vec<Known>>>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> Tally {
    let mut rng = Rng::new(seed);
    let mut tally = Tally::default();
    let mut client = None;
    while !stop.load(Ordering::Relaxed) {
        if client.is_none() {
            match tokio::time::timeout(CALL_LIMIT, terminal.lookup()).await {
                Ok(Ok(c)) => client = Some(c),
                _ => {
                    *tally.failed.entry("connect".into()).or_insert(0) += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let Some(lookup) = client.as_mut() else {
            continue;
        };
        let (child, too_little) = next_query(&mut rng, &known);
        let request = pb::LookupRequest {
            child: Some(child),
            operator_name: operator(site),
            operator_role: "Senior practitioner".into(),
            reason: "Injuries not consistent with the account given".into(),
        };
        match tokio::time::timeout(CALL_LIMIT, lookup.lookup(request)).await {
            Ok(Ok(answer)) => {
                assert!(!too_little, "a lookup without a date of birth was answered");
                let reference = answer.into_inner().enquiry_reference;
                assert!(!reference.is_empty(), "an answer without a reference");
                tally.references.insert(reference);
                tally.answered += 1;
            }
            Ok(Err(status)) if status.code() == tonic::Code::InvalidArgument => {
                assert!(too_little, "a full query refused: {status}");
                let reference = refusal_reference(status.message())
                    .unwrap_or_else(|| panic!("a refusal with no enquiry recorded: {status}"));
                tally.references.insert(reference);
                tally.refused += 1;
            }
            outcome => {
                let what = match outcome {
                    Ok(Err(status)) => format!("{:?}", status.code()),
                    _ => "timed out".into(),
                };
                *tally.failed.entry(what).or_insert(0) += 1;
                client = None;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.between((10, 60)))).await;
    }
    tally
}

/// A site's replica: how to start it again, where its file is, and the process if running.
struct SiteReplica {
    site: &'static Site,
    config_path: PathBuf,
    database: PathBuf,
    process: Option<ReplicaProcess>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Victim {
    Primary,
    Replica(usize),
}

/// The three processes the loop kills; whatever runs when it is dropped is killed, so a test
/// that fails part-way leaves nothing running.
struct Processes {
    pki: Arc<TestPki>,
    primary_addr: SocketAddr,
    primary: Option<PrimaryProcess>,
    replicas: Vec<SiteReplica>,
}

impl Processes {
    fn kill_9(&mut self, victim: Victim) {
        match victim {
            Victim::Primary => {
                if let Some(p) = self.primary.take() {
                    p.kill_9();
                }
            }
            Victim::Replica(i) => {
                if let Some(p) = self.replicas[i].process.take() {
                    p.kill_9();
                }
            }
        }
    }

    /// Starts the victim again over the same folder, where the others dial it. The start reads
    /// its first line of output, so it blocks.
    fn restart(&mut self, victim: Victim) {
        match victim {
            Victim::Primary => {
                let pki = &self.pki;
                let addr = self.primary_addr;
                let process = tokio::task::block_in_place(|| {
                    PrimaryProcess::spawn_on(PRIMARY_EXE, pki, addr)
                });
                self.primary = Some(process);
            }
            Victim::Replica(i) => {
                let path = &self.replicas[i].config_path;
                let process = tokio::task::block_in_place(|| ReplicaProcess::spawn(path));
                self.replicas[i].process = Some(process);
            }
        }
    }

    fn kill_all(&mut self) {
        self.kill_9(Victim::Primary);
        for i in 0..self.replicas.len() {
            self.kill_9(Victim::Replica(i));
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// Waits until the primary process answers (it prints its address before it opens its register).
async fn wait_answering(custodian: &Profile) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Ok(mut c)) = tokio::time::timeout(CALL_LIMIT, custodian.register()).await
            && let Ok(Ok(_)) =
                tokio::time::timeout(CALL_LIMIT, c.get_authority(pb::GetAuthorityRequest {})).await
        {
            return;
        }
        assert!(Instant::now() < deadline, "the primary never answered");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The primary's newest published version and its state root (hex), asked over the wire.
async fn published_head(custodian: &Profile) -> (u64, String) {
    wait_answering(custodian).await;
    let mut c = custodian.register().await.expect("connect to the primary");
    let a = c
        .get_authority(pb::GetAuthorityRequest {})
        .await
        .expect("authority")
        .into_inner();
    (a.published_version, a.state_root)
}

/// What a running replica's file says, read beside it: the version held, its state root (hex)
/// and the outbox backlog; `None` while it cannot be read (killed and not yet repaired).
fn held_beside(database: &Path) -> Option<(u64, String, u64)> {
    let store = ReplicaStore::open_read_only(database).ok()?;
    let held = store.trusted_state(AUTHORITY).ok()?;
    let backlog = store.outbox_backlog().ok()?;
    Some((held.version, hex::encode(held.state_root), backlog))
}

/// Polls until `done` holds of every replica's file, or fails after [`SETTLE_LIMIT`].
async fn settle(
    replicas: &[SiteReplica],
    what: &str,
    seed: u64,
    done: impl Fn(&(u64, String, u64)) -> bool,
) -> f64 {
    let started = Instant::now();
    loop {
        let seen: Vec<Option<(u64, String, u64)>> =
            replicas.iter().map(|r| held_beside(&r.database)).collect();
        if seen.iter().all(|s| s.as_ref().is_some_and(&done)) {
            return started.elapsed().as_secs_f64();
        }
        assert!(
            started.elapsed() < SETTLE_LIMIT,
            "seed {seed:#x}: replicas not {what} after {SETTLE_LIMIT:?}; (version, root, backlog) \
             held: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every replica's outbox is empty, then until each holds the primary's newest
/// version: that version and its state root (hex), and the seconds each wait took.
async fn quiesce(
    custodian: &Profile,
    replicas: &[SiteReplica],
    seed: u64,
) -> (u64, String, f64, f64) {
    let delivered = settle(replicas, "delivered", seed, |(_, _, backlog)| *backlog == 0).await;
    let (head, root) = published_head(custodian).await;
    let caught_up = settle(replicas, "at the newest version", seed, |(v, r, _)| {
        *v == head && *r == root
    })
    .await;
    (head, root, delivered, caught_up)
}

/// Every enquiry a replica's file holds, by reference. References are `SITE-YYYYMMDD-NNNNNN`,
/// numbered from 1 each day with no gaps, so they are read day by day until the first missing
/// one; the count is checked against the store's own.
fn recorded_at(store: &ReplicaStore, site: &Site, days: &[NaiveDate]) -> BTreeMap<String, Enquiry> {
    let mut found = BTreeMap::new();
    for day in days {
        for n in 1.. {
            let reference = format!(
                "{}-{}-{n:06}",
                site.id.to_ascii_uppercase(),
                day.format("%Y%m%d")
            );
            match store.enquiry(&reference).expect("read an enquiry") {
                Some(enquiry) => found.insert(reference, enquiry),
                None => break,
            };
        }
    }
    assert_eq!(
        found.len() as u64,
        store.enquiries_recorded().expect("count"),
        "enquiries at {} outside the numbering read",
        site.id
    );
    found
}

fn first<T: std::fmt::Debug>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    items.into_iter().take(5).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn primary_and_replicas_killed_at_random_for_minutes_under_load_lose_and_double_no_enquiry() {
    let seconds = loop_seconds();
    let seed = seed();
    eprintln!(
        "crash loop for {seconds} s, seed {seed:#x} (CPREG_CRASH_LOOP_SEED={seed:#x} replays it)"
    );
    let started = Instant::now();
    // The primary and the replicas run on the real clock; dates are taken from it too.
    let first_day = chrono::Utc::now().date_naive();
    let pki = Arc::new(TestPki::new());
    let primary_addr = free_loopback_addr();
    let primary =
        tokio::task::block_in_place(|| PrimaryProcess::spawn_on(PRIMARY_EXE, &pki, primary_addr));
    let primary_url = primary.url.clone();
    let mut processes = Processes {
        pki: pki.clone(),
        primary_addr,
        primary: Some(primary),
        replicas: Vec::new(),
    };
    let custodian = pki.profile(Role::Custodian, &primary_url);
    wait_answering(&custodian).await;

    // The directory and the first children, before any replica starts.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let mut c = custodian.register().await.expect("connect to the primary");
        for site in &SITES {
            c.put_organisation(pb::PutOrganisationRequest {
                organisation: Some(pb::Organisation {
                    id: site.organisation.into(),
                    name: site.organisation_name.into(),
                    kind: site.kind.into(),
                    callback_number: site.callback_number.into(),
                    site: site.id.into(),
                    ..Default::default()
                }),
            })
            .await
            .expect("organisation listed");
        }
    }
    let mut first_children = Vec::new();
    for n in 0..FIRST_CHILDREN {
        let child = put_on_plan(&custodian, n, first_day, &stop).await;
        first_children.push(child.expect("a child on a plan"));
    }
    let known = Arc::new(Mutex::new(first_children));

    // Two replicas serving lookups, each on an address of its own that survives its restarts.
    let mut terminals = Vec::new();
    for (i, site) in SITES.iter().enumerate() {
        let mut config = replica_config(
            &pki,
            site.id,
            vec![authority_entry(&pki, site.id, &primary_url)],
        );
        // Limits lifted, as for the demo's load tests: this load is one terminal per site.
        let lookups =
            cpreg::local::lookup_config(&site_dir(&pki, site.id), &pki.ca, free_loopback_addr(), 0)
                .expect("lookup config");
        terminals.push(terminal_profile(
            &pki,
            site.terminal,
            site.id,
            site.organisation,
            lookups.listen,
        ));
        config.lookups = Some(lookups);
        let config_path = site_dir(&pki, site.id).join("replica.json");
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).expect("config as JSON"),
        )
        .expect("write the replica's config");
        processes.replicas.push(SiteReplica {
            site,
            config_path,
            database: config.database_path(),
            process: None,
        });
        processes.restart(Victim::Replica(i));
    }
    let (head, _) = published_head(&custodian).await;
    settle(&processes.replicas, "started", seed, |(v, _, _)| *v >= head).await;
    eprintln!(
        "primary and {} replicas up at version {head} in {:.1} s",
        SITES.len(),
        started.elapsed().as_secs_f64()
    );

    // The load: a terminal at each site, and the Safeguarding Unit adding children.
    let lookups: Vec<_> = SITES
        .iter()
        .zip(terminals.iter().cloned())
        .enumerate()
        .map(|(i, (site, terminal))| {
            tokio::spawn(look_up_until_stopped(
                site,
                terminal,
                known.clone(),
                stop.clone(),
                seed ^ (0x5151 * (i as u64 + 1)),
            ))
        })
        .collect();
    let changes = tokio::spawn(put_children_on_plans(
        custodian.clone(),
        known.clone(),
        first_day,
        stop.clone(),
        seed ^ 0xc0ffee,
    ));

    // The kills: a random victim at a random moment, started again at once.
    let mut rng = Rng::new(seed);
    let mut kills: BTreeMap<Victim, usize> = BTreeMap::new();
    let loop_started = Instant::now();
    let until = loop_started + Duration::from_secs(seconds);
    loop {
        let pause = Duration::from_millis(rng.between(PAUSE_MS));
        if Instant::now() + pause >= until {
            break;
        }
        tokio::time::sleep(pause).await;
        let victim = match rng.below(1 + SITES.len() as u64) {
            0 => Victim::Primary,
            i => Victim::Replica(i as usize - 1),
        };
        processes.kill_9(victim);
        processes.restart(victim);
        *kills.entry(victim).or_insert(0) += 1;
    }
    tokio::time::sleep_until(until.into()).await;
    let kills_named: Vec<(&str, usize)> = kills
        .iter()
        .map(|(victim, n)| match victim {
            Victim::Primary => ("primary", *n),
            Victim::Replica(i) => (SITES[*i].id, *n),
        })
        .collect();
    eprintln!(
        "{} kills in {:.1} s: {kills_named:?}",
        kills.values().sum::<usize>(),
        loop_started.elapsed().as_secs_f64()
    );

    // The load stops; everything runs undisturbed until the replicas hold the newest version.
    stop.store(true, Ordering::Relaxed);
    let added = changes.await.expect("the register changes");
    let mut tallies = Vec::new();
    for task in lookups {
        tallies.push(task.await.expect("a terminal's lookups"));
    }
    for (site, tally) in SITES.iter().zip(&tallies) {
        eprintln!(
            "{}: {} answered, {} refused and recorded, failed {:?}",
            site.id, tally.answered, tally.refused, tally.failed
        );
    }
    // Undisturbed now, the replicas deliver every enquiry; each answered one publishes its
    // child again (with the enquiry counted), so the newest version is read after that.
    let (head, _, delivered, caught_up) = quiesce(&custodian, &processes.replicas, seed).await;
    eprintln!(
        "after the kills: outboxes empty in {delivered:.1} s, version {head} everywhere {caught_up:.1} s later"
    );

    // Each replica serves it: the child put on a plan last is found at both sites.
    let newest = known.lock().expect("known children").last().cloned();
    let newest = newest.expect("children on plans");
    let mut given: BTreeSet<String> = tallies.iter().flat_map(|t| t.references.clone()).collect();
    for (site, terminal) in SITES.iter().zip(&terminals) {
        let mut lookup = terminal.lookup().await.expect("connect to the replica");
        let answer = lookup
            .lookup(pb::LookupRequest {
                child: Some(pb::ChildQuery {
                    given_names: newest.given.clone(),
                    surname: newest.surname.clone(),
                    date_of_birth: newest.dob.clone(),
                    ..Default::default()
                }),
                operator_name: operator(site),
                operator_role: "Senior practitioner".into(),
                reason: "Injuries not consistent with the account given".into(),
            })
            .await
            .unwrap_or_else(|status| panic!("seed {seed:#x}: lookup at {}: {status}", site.id))
            .into_inner();
        assert_eq!(
            answer.outcome,
            i32::from(pb::LookupOutcome::Match),
            "seed {seed:#x}: {} does not find {newest:?}: {answer:?}",
            site.id
        );
        assert!(
            answer
                .candidates
                .iter()
                .any(|c| c.record_id == newest.record_id),
            "seed {seed:#x}: {} finds someone else for {newest:?}: {answer:?}",
            site.id
        );
        assert!(!answer.stale, "seed {seed:#x}: {} answers stale", site.id);
        given.insert(answer.enquiry_reference);
    }
    // Those lookups were enquiries too, delivered and published in turn.
    let (head, root, _, _) = quiesce(&custodian, &processes.replicas, seed).await;
    processes.kill_all();

    // The primary's audit chain verifies, and tells how often each enquiry was received.
    let register = open_register(&pki);
    let audit = register
        .verify_audit()
        .expect("read the audit chain")
        .unwrap_or_else(|broken| {
            panic!("seed {seed:#x}: the primary's audit chain does not verify: {broken}")
        });
    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    for (_, bytes) in register.audit_chain().expect("audit chain").entries {
        let record: AuditRecord = serde_json::from_slice(&bytes).expect("audit entry decodes");
        if record.action == "enquiry.received" {
            *received.entry(record.subject).or_insert(0) += 1;
        }
    }
    let list = register.enquiries(None, 0).expect("enquiries");
    let rows = list.len();
    let at_primary: BTreeMap<String, ReceivedEnquiry> =
        list.into_iter().map(|e| (e.reference.clone(), e)).collect();
    assert_eq!(at_primary.len(), rows, "a reference held twice");
    let published = register.head().expect("head");
    let projection: BTreeMap<String, Vec<u8>> = register
        .projection_entries()
        .expect("projection")
        .into_iter()
        .collect();
    drop(register);
    assert_eq!(
        (published.version, &published.state_root),
        (head, &root),
        "seed {seed:#x}: the primary published after the load stopped"
    );

    // Every replica's file: the primary's newest version, whole, and every enquiry it recorded.
    let last_day = chrono::Utc::now().date_naive();
    let days: Vec<NaiveDate> = first_day
        .pred_opt()
        .expect("a day before")
        .iter_days()
        .take_while(|d| *d <= last_day)
        .collect();
    let mut recorded: BTreeMap<String, Enquiry> = BTreeMap::new();
    for replica in &processes.replicas {
        let store = ReplicaStore::open(&replica.database).expect("open the replica's file");
        let held = store.trusted_state(AUTHORITY).expect("trusted state");
        let entries: BTreeMap<String, Vec<u8>> = store
            .entries(AUTHORITY)
            .expect("entries")
            .into_iter()
            .collect();
        let mut proved = StateRoot::default();
        for (key, value) in &entries {
            proved.insert(key, value);
        }
        let site = replica.site.id;
        assert_eq!(held.version, head, "seed {seed:#x}: version held at {site}");
        assert_eq!(
            hex::encode(&held.state_root),
            root,
            "seed {seed:#x}: state root held at {site}"
        );
        assert_eq!(
            proved.to_bytes(),
            held.state_root,
            "seed {seed:#x}: the entries at {site} do not make the state root held"
        );
        assert_eq!(entries.len() as u64, held.entry_count);
        assert!(
            entries == projection,
            "seed {seed:#x}: {site} holds other entries than the primary published"
        );
        assert_eq!(store.outbox_backlog().expect("backlog"), 0);
        let here = recorded_at(&store, replica.site, &days);
        eprintln!("{site}: {} enquiries recorded", here.len());
        recorded.extend(here);
    }

    // Every enquiry recorded at a replica is at the primary as recorded, received exactly once;
    // the primary has no other; every reference a terminal was given is one of them.
    let missing: Vec<&String> = recorded
        .keys()
        .filter(|r| !at_primary.contains_key(*r))
        .collect();
    let unknown: Vec<&String> = at_primary
        .keys()
        .filter(|r| !recorded.contains_key(*r))
        .collect();
    let not_once: Vec<(&String, usize)> = recorded
        .keys()
        .map(|r| (r, received.get(r).copied().unwrap_or(0)))
        .filter(|(_, n)| *n != 1)
        .collect();
    let received_unknown: Vec<&String> = received
        .keys()
        .filter(|r| !recorded.contains_key(*r))
        .collect();
    let not_as_recorded: Vec<&String> = recorded
        .iter()
        .filter(|(r, e)| {
            at_primary.get(*r).is_some_and(|held| {
                held.site != e.site || held.record != serde_json::to_value(e).expect("as JSON")
            })
        })
        .map(|(r, _)| r)
        .collect();
    let never_recorded: Vec<&String> = given
        .iter()
        .filter(|r| !recorded.contains_key(*r))
        .collect();
    assert!(
        missing.is_empty()
            && unknown.is_empty()
            && not_once.is_empty()
            && received_unknown.is_empty()
            && not_as_recorded.is_empty()
            && never_recorded.is_empty(),
        "seed {seed:#x}: {} recorded at the replicas, {} at the primary: {} missing (first {:?}); \
         {} never recorded at a replica (first {:?}); {} not received exactly once (first {:?}); \
         {} received but never recorded (first {:?}); {} not as the replica recorded them (first \
         {:?}); {} given to a terminal but not on record (first {:?})",
        recorded.len(),
        at_primary.len(),
        missing.len(),
        first(&missing),
        unknown.len(),
        first(&unknown),
        not_once.len(),
        first(&not_once),
        received_unknown.len(),
        first(&received_unknown),
        not_as_recorded.len(),
        first(&not_as_recorded),
        never_recorded.len(),
        first(&never_recorded),
    );
    // And the scenario ran: lookups answered at every site, every process killed.
    for (site, tally) in SITES.iter().zip(&tallies) {
        assert!(
            tally.answered > 0,
            "seed {seed:#x}: no lookup answered at {}",
            site.id
        );
    }
    if seconds >= 60 {
        assert_eq!(
            kills.len(),
            1 + SITES.len(),
            "seed {seed:#x}: not every process was killed: {kills_named:?}"
        );
    }
    let answered: u64 = tallies.iter().map(|t| t.answered + t.refused).sum();
    eprintln!(
        "{} kills ({kills_named:?}); {answered} lookups answered or refused at the terminals, \
         {} enquiries recorded at the replicas and each received once at the primary; {added} \
         children put on plans under load, version {head} held everywhere; {} audit entries verify",
        kills.values().sum::<usize>(),
        recorded.len(),
        audit.entries,
    );
}
