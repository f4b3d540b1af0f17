//! `lookup`: lookups of real children at a site replica over mutual TLS, against the gRPC
//! health `Check` served by the same replica server over the same kind of channel (a bare tonic
//! service on the same TLS stack: the "echo"). Throughput with many clients, each on a channel
//! of its own, and single-client sequential latency, for both, in the same run and process.
//!
//! Every lookup is recorded (the enquiry and its outbox entry, one redb commit at the default
//! durability) before it is answered; the echo writes nothing.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpreg_proto::pb;
use cpreg_proto::role::Role;
use cpreg_tests::replica::{TestReplica, authority_entry, replica_config, terminal_profile};
use cpreg_tests::{AUTHORITY, TestPrimary};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

use crate::common::{
    REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES, bare_one_row_writes, fill, ms, peak_rss_mib, round3,
    scratch, summary_ms,
};

const SEED: u64 = 42;
const ORGANISATION: &str = "st-elsewhere-ae";
const SITE: &str = "ae";
/// The lookups prepared, spread evenly over the register.
const QUERIES: usize = 4_096;
/// One query in this many carries a typo in the surname.
const TYPO_EVERY: usize = 5;
const LATENCY_CALLS: usize = 500;
const WARM_UP_CALLS: usize = 50;

/// `grpc.health.v1.HealthCheckRequest`, declared here so the harness needs no health crate.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    service: String,
}

/// `grpc.health.v1.HealthCheckResponse`: 1 is SERVING.
#[derive(Clone, PartialEq, prost::Message)]
struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}

const SERVING: i32 = 1;

/// A prost codec for the two health messages.
struct ProstCodec<E, D>(PhantomData<fn(E) -> D>);

struct ProstEncoder<E>(PhantomData<fn(E)>);
struct ProstDecoder<D>(PhantomData<fn() -> D>);

impl<E, D> Codec for ProstCodec<E, D>
where
    E: prost::Message + Send + 'static,
    D: prost::Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = ProstEncoder<E>;
    type Decoder = ProstDecoder<D>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder(PhantomData)
    }
}

impl<E: prost::Message> Encoder for ProstEncoder<E> {
    type Item = E;
    type Error = Status;

    fn encode(&mut self, item: E, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

impl<D: prost::Message + Default> Decoder for ProstDecoder<D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        D::decode(buf)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}

/// The echo: `grpc.health.v1.Health/Check` on a channel of its own.
#[derive(Clone)]
struct Echo {
    grpc: tonic::client::Grpc<Channel>,
}

impl Echo {
    fn new(channel: Channel) -> Echo {
        Echo {
            grpc: tonic::client::Grpc::new(channel),
        }
    }

    async fn check(&mut self, service: &str) -> Result<i32, Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let path =
            tonic::codegen::http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
        let codec = ProstCodec::<HealthCheckRequest, HealthCheckResponse>(PhantomData);
        let request = tonic::Request::new(HealthCheckRequest {
            service: service.to_owned(),
        });
        Ok(self
            .grpc
            .unary(request, path, codec)
            .await?
            .into_inner()
            .status)
    }
}

/// "Evans" -> "Evnas": two letters in the middle swapped, as a hurried typist would. A surname
/// shorter than four letters is left as it is (dropping a letter of "Ho" leaves an initial,
/// which is refused).
fn typo(surname: &str) -> String {
    let mut chars: Vec<char> = surname.chars().collect();
    if chars.len() >= 4 {
        let i = chars.len() / 2;
        chars.swap(i - 1, i);
    }
    chars.into_iter().collect()
}

/// Lookups of real children (exact name and date of birth, one in [`TYPO_EVERY`] with a typo),
/// spread evenly over the register. Unborn children (no date of birth) are skipped.
fn queries(records: usize) -> Vec<pb::LookupRequest> {
    let children = cpreg::synthetic::Generator::new(SEED, cpreg_tests::today()).children(records);
    let born: Vec<_> = children
        .iter()
        .filter(|c| !c.date_of_birth.is_empty() && !c.given_names.is_empty())
        .collect();
    let n = QUERIES.min(born.len());
    (0..n)
        .map(|i| {
            let child = born[i * born.len() / n];
            let surname = if i % TYPO_EVERY == TYPO_EVERY - 1 {
                typo(&child.surname)
            } else {
                child.surname.clone()
            };
            pb::LookupRequest {
                child: Some(pb::ChildQuery {
                    given_names: child.given_names.clone(),
                    surname,
                    date_of_birth: child.date_of_birth.clone(),
                    ..Default::default()
                }),
                operator_name: format!("Load operator {}", i % 16),
                operator_role: "ED registrar".into(),
                reason: "Load test: unexplained injury".into(),
            }
        })
        .collect()
}

/// The matcher alone, in this process on one thread, over the same queries: how much of a
/// lookup is finding the child, apart from TLS, HTTP/2 and recording the enquiry.
fn matching_alone(replica: &TestReplica, queries: &[pb::LookupRequest]) -> serde_json::Value {
    use cpreg_replica::matching::{Matcher, Query};
    let started = Instant::now();
    let matcher = Matcher::from_store(&replica.replica.store(), &[AUTHORITY.to_owned()])
        .expect("matcher over the replica's version");
    let build_seconds = started.elapsed().as_secs_f64();
    let wanted: Vec<Query> = queries
        .iter()
        .map(|q| {
            let child = q.child.clone().unwrap_or_default();
            Query {
                given: child.given_names,
                surname: child.surname,
                dob: child.date_of_birth.parse().ok(),
                ..Default::default()
            }
        })
        .collect();
    let mut found = 0usize;
    let mut samples = Vec::with_capacity(wanted.len());
    let started = Instant::now();
    for query in &wanted {
        let one = Instant::now();
        found += usize::from(!matcher.find(query).is_empty());
        samples.push(ms(one.elapsed()));
    }
    let per_query_us = started.elapsed().as_secs_f64() * 1e6 / wanted.len() as f64;
    serde_json::json!({
        "records": matcher.len(),
        "build_seconds": round3(build_seconds),
        "queries": wanted.len(),
        "with_candidates": found,
        "mean_us": round3(per_query_us),
        "find": summary_ms(&samples),
    })
}

/// One enquiry recorded at a time on the replica's own store, as a lone lookup records it: the
/// floor of a single client's lookup latency on this disk.
fn recording_alone(store: &cpreg_replica::store::Store) -> serde_json::Value {
    use cpreg_replica::store::{Enquiry, EnquiryPath, EnquiryState};
    let mut samples = Vec::new();
    for i in 0..200 {
        let enquiry = Enquiry {
            reference: String::new(),
            at: chrono::Utc::now(),
            site: SITE.into(),
            path: EnquiryPath::Terminal {
                terminal: "A&E load terminal".into(),
                organisation: ORGANISATION.into(),
                operator: format!("Load operator {}", i % 16),
                operator_role: "ED registrar".into(),
            },
            reason: "Load test: unexplained injury".into(),
            searched: serde_json::json!({ "given_names": "Amelia", "surname": "Evans", "date_of_birth": "2019-04-23" }),
            query: String::new(),
            state: EnquiryState::Answered {
                outcome: "match".into(),
                record_ids: vec![format!("R{i}")],
                authorities: vec![AUTHORITY.into()],
                advice: "Amelia Evans has a Child Protection Plan.".into(),
            },
            alert: None,
            history: Vec::new(),
        };
        let started = Instant::now();
        store.record_enquiry(enquiry).expect("recorded");
        samples.push(ms(started.elapsed()));
    }
    serde_json::json!({
        "what": "Store::record_enquiry alone, one at a time: the enquiry, its outbox entry and its index entries in one commit",
        "commit": summary_ms(&samples),
    })
}

/// Outcomes and errors seen, for the JSON.
#[derive(Default, Clone)]
struct Tally {
    outcomes: std::collections::BTreeMap<String, u64>,
    errors: std::collections::BTreeMap<String, u64>,
}

impl Tally {
    fn answer(&mut self, outcome: i32) {
        let name = pb::LookupOutcome::try_from(outcome)
            .map(|o| o.as_str_name().to_owned())
            .unwrap_or_else(|_| format!("outcome {outcome}"));
        *self.outcomes.entry(name).or_default() += 1;
    }

    fn error(&mut self, status: &Status) {
        // Without the enquiry reference, so like refusals count together.
        let message = status.message();
        let message = message.split(" (enquiry ").next().unwrap_or(message);
        let key = format!("{:?}: {message}", status.code());
        *self.errors.entry(key).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({ "outcomes": self.outcomes, "errors": self.errors })
    }
}

/// What a client calls: one lookup or one echo.
#[derive(Clone)]
enum Caller {
    Lookup(
        pb::lookup_client::LookupClient<Channel>,
        Arc<Vec<pb::LookupRequest>>,
    ),
    Echo(Echo),
}

impl Caller {
    async fn call(&mut self, i: usize, tally: &mut Tally) {
        match self {
            Caller::Lookup(client, queries) => {
                let request = queries[i % queries.len()].clone();
                match client.lookup(request).await {
                    Ok(answer) => tally.answer(answer.into_inner().outcome),
                    Err(status) => tally.error(&status),
                }
            }
            Caller::Echo(echo) => match echo.check("cpreg.v1.Lookup").await {
                Ok(SERVING) => {
                    *tally.outcomes.entry("SERVING".into()).or_default() += 1;
                }
                Ok(other) => {
                    *tally.outcomes.entry(format!("status {other}")).or_default() += 1;
                }
                Err(status) => tally.error(&status),
            },
        }
    }
}

/// `calls` sequential calls after a warm-up, each timed in milliseconds.
async fn latency(mut caller: Caller, offset: usize) -> (Vec<f64>, Tally) {
    let mut tally = Tally::default();
    for i in 0..WARM_UP_CALLS {
        caller.call(offset + i, &mut tally).await;
    }
    let mut tally = Tally::default();
    let mut samples = Vec::with_capacity(LATENCY_CALLS);
    for i in 0..LATENCY_CALLS {
        let started = Instant::now();
        caller.call(offset + WARM_UP_CALLS + i, &mut tally).await;
        samples.push(ms(started.elapsed()));
    }
    (samples, tally)
}

/// `callers.len()` clients calling as fast as they can for `seconds`, after a warm-up call
/// each; returns calls per second (answered or refused alike), calls made, the tally, and the
/// CPU time per call (clients and server together, every thread of this process).
async fn throughput(callers: Vec<Caller>, seconds: u64, stride: usize) -> (f64, u64, Tally, f64) {
    let clients = callers.len();
    let barrier = Arc::new(tokio::sync::Barrier::new(clients + 1));
    let mut tasks = Vec::new();
    for (c, mut caller) in callers.into_iter().enumerate() {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut i = c * stride;
            caller.call(i, &mut tally).await;
            i += 1;
            barrier.wait().await;
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut tally = Tally::default();
            let mut calls = 0u64;
            while Instant::now() < deadline {
                caller.call(i, &mut tally).await;
                i += 1;
                calls += 1;
            }
            (calls, tally)
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let cpu_before = crate::common::cpu_seconds();
    let mut calls = 0;
    let mut tally = Tally::default();
    for task in tasks {
        let (n, t) = task.await.expect("client task");
        calls += n;
        tally.merge(t);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_us = (crate::common::cpu_seconds() - cpu_before) * 1e6 / calls.max(1) as f64;
    (calls as f64 / elapsed, calls, tally, cpu_us)
}

pub async fn lookup(records: usize, clients: usize, seconds: u64) -> serde_json::Value {
    let clients = clients.max(1);
    let primary = TestPrimary::start().await;
    let filled = fill(&primary, records, SEED).await;
    let mut custodian = primary.client(Role::Custodian).await;
    custodian
        .put_organisation(pb::PutOrganisationRequest {
            organisation: Some(pb::Organisation {
                id: ORGANISATION.into(),
                name: "St Elsewhere Emergency Department".into(),
                kind: pb::OrganisationKind::EmergencyDepartment.into(),
                callback_number: "01632 960 100".into(),
                site: SITE.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("organisation");

    let mut config = replica_config(
        &primary.pki,
        SITE,
        vec![authority_entry(&primary.pki, SITE, &primary.url)],
    );
    config.max_snapshot_bytes = REPLICA_DEFAULT_MAX_SNAPSHOT_BYTES;
    config.lookups = Some(cpreg_replica::config::LookupConfig {
        rate_limit_per_hour: 0,
        site_rate_limit_per_hour: 0,
        terminal_rate_limit_per_hour: 0,
        sweep_hold_minutes: 0,
        ..cpreg_tests::replica::lookup_config(&primary.pki, SITE)
    });
    let head = primary.head().await.0;
    let started = Instant::now();
    let replica = TestReplica::start_with(config).await;
    replica.wait_for(AUTHORITY, head).await;
    let replica_sync_seconds = started.elapsed().as_secs_f64();
    eprintln!("cpreg-bench: replica holds version {head} after {replica_sync_seconds:.1} s");

    let matching = matching_alone(&replica, &queries(records));
    // The primary runs elsewhere in deployment: stopped here, it takes no share of the two cores
    // or of the disk's syncs while lookups are measured. The enquiries wait in the replica's
    // outbox, as they do when a site is cut off; `cpreg-bench drain` measures their delivery.
    let pki = primary.stop().await;

    let addr = replica.replica.lookup_addr().expect("lookups served");
    let terminal = terminal_profile(&pki, "A&E load terminal", SITE, ORGANISATION, addr);
    let url = format!("https://127.0.0.1:{}", addr.port());
    let queries = Arc::new(queries(records));
    let stride = queries.len() / clients;

    // The health service answers SERVING for the lookup service and the server as a whole.
    let mut echo = Echo::new(terminal.channel(&url).await.expect("echo channel"));
    for service in ["cpreg.v1.Lookup", ""] {
        let status = echo.check(service).await.expect("health check");
        assert_eq!(status, SERVING, "health of {service:?}");
    }

    let lookup_caller = |client| Caller::Lookup(client, queries.clone());
    eprintln!("cpreg-bench: single-client latency, {LATENCY_CALLS} calls each");
    let (echo_samples, echo_latency_tally) = latency(Caller::Echo(echo), 0).await;
    let (lookup_samples, lookup_latency_tally) = latency(
        lookup_caller(terminal.lookup().await.expect("lookup client")),
        0,
    )
    .await;

    eprintln!("cpreg-bench: throughput, {clients} clients for {seconds} s each");
    let mut echoes = Vec::new();
    let mut lookups = Vec::new();
    for _ in 0..clients {
        echoes.push(Caller::Echo(Echo::new(
            terminal.channel(&url).await.expect("echo channel"),
        )));
        lookups.push(lookup_caller(
            terminal.lookup().await.expect("lookup client"),
        ));
    }
    let (echo_rps, echo_calls, echo_tally, echo_cpu_us) = throughput(echoes, seconds, stride).await;
    let (lookup_rps, lookup_calls, lookup_tally, lookup_cpu_us) =
        throughput(lookups, seconds, stride).await;

    let backlog = replica.replica.store().outbox_backlog().ok();
    let version_after = replica.version();
    let database_mib = std::fs::metadata(replica.replica.config().database_path())
        .map(|m| m.len() as f64 / 1048576.0)
        .ok();
    let recording = recording_alone(&replica.replica.store());
    replica.replica.stop().await;

    // What one durable redb commit costs on this disk: the floor under every recorded lookup.
    let bare = redb::Database::create(scratch(&pki, "bare").join("bare.redb")).expect("bare db");
    let commits = bare_one_row_writes(&bare, 200);
    drop(pki);

    let p50 = crate::common::p50;
    let p99 = crate::common::p99;
    let rps_ratio = lookup_rps / echo_rps;
    let p50_ratio = p50(&lookup_samples) / p50(&echo_samples);
    serde_json::json!({
        "scenario": "lookup",
        "records": records,
        "fill": filled.json(),
        "replica_sync_seconds": round3(replica_sync_seconds),
        "version_held": head,
        "version_after": version_after,
        "queries": {
            "distinct": queries.len(),
            "how": format!("real children spread over the register: exact given name, surname and date of birth; every {TYPO_EVERY}th with two surname letters swapped"),
        },
        "durability": "every lookup's enquiry and outbox entry are committed (default durability, fsync) before the answer leaves, lookups arriving together sharing a commit; the echo writes nothing",
        "primary": "stopped once the replica holds the register: the enquiries queue in the outbox, as at a site cut off",
        "baseline": "grpc.health.v1.Health/Check on the same replica server, same mutual-TLS stack, same kind of channel (one per client), same process",
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "throughput": {
            "clients": clients,
            "seconds": seconds,
            "lookup_rps": lookup_rps.round(),
            "lookup_calls": lookup_calls,
            "lookup": lookup_tally.json(),
            "echo_rps": echo_rps.round(),
            "echo_calls": echo_calls,
            "echo": echo_tally.json(),
            "ratio": round3(rps_ratio),
            "cpu_us_per_call": {
                "what": "CPU time of this process (clients, server, journal; user and system) per call while the clients ran: less swayed than calls per second by other work on the machine",
                "lookup": lookup_cpu_us.round(),
                "echo": echo_cpu_us.round(),
                "ratio": round3(lookup_cpu_us / echo_cpu_us),
            },
            "goal": ">= 0.5",
            "goal_met": rps_ratio >= 0.5,
        },
        "latency_single_client": {
            "calls": LATENCY_CALLS,
            "warm_up_calls": WARM_UP_CALLS,
            "lookup": summary_ms(&lookup_samples),
            "lookup_answers": lookup_latency_tally.json(),
            "echo": summary_ms(&echo_samples),
            "echo_answers": echo_latency_tally.json(),
            "p50_ratio": round3(p50_ratio),
            "p99_ratio": round3(p99(&lookup_samples) / p99(&echo_samples)),
            "goal": "lookup p50 <= 2x echo p50",
            "goal_met": p50_ratio <= 2.0,
        },
        "bare_redb_one_row_commit": {
            "what": "one-row redb write transactions at the default durability, in this process, on the same disk: the floor of one recorded enquiry",
            "commit": summary_ms(&commits),
            "serial_commits_per_second": (1000.0 / p50(&commits)).round(),
        },
        "matching_alone": matching,
        "recording_alone": recording,
        "outbox_backlog_after": backlog,
        "replica_database_mib": database_mib,
        "peak_rss_mib": peak_rss_mib(),
    })
}
