//! What a replica tells Prometheus, on a plain HTTP listener of its own (`[metrics] listen`; off
//! when the section is absent). The figures are read when scraped, from the store and each
//! authority's link, so they can never drift from what lookups see: the version held of each
//! authority and its age, staleness, the link, refusals, the enquiry outbox and the enquiries
//! held by outcome. Only the time each version took to check and apply is observed as it happens.

use std::sync::Arc;

use prometheus::{HistogramOpts, HistogramVec, IntGauge, IntGaugeVec, Registry};

use crate::clock::Clock;
use crate::status::{HeldVersion, LinkState};
use crate::store::{Store, StoreError};
pub use cpreg_proto::metrics::serve;
use cpreg_proto::metrics::{encode, gauges, register, to_i64};

/// How lookups and call-backs end, counted even when none has, so a dashboard shows 0.
const OUTCOMES: [&str; 6] = [
    "match",
    "possible",
    "no_record",
    "refused",
    "awaiting-callback",
    "callback-failed",
];

/// The replica's metrics: a registry of its own, so several replicas in one process (the demo,
/// tests) never mix their figures.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Seconds from a version's whole payload arriving to its commit, by authority.
    apply_seconds: HistogramVec,
    snapshot_version: IntGaugeVec,
    snapshot_age: IntGaugeVec,
    stale: IntGaugeVec,
    entries: IntGaugeVec,
    connected: IntGaugeVec,
    refused: IntGaugeVec,
    enquiry_backlog: IntGauge,
    enquiries: IntGaugeVec,
}

/// Where the figures are read from at each scrape.
pub struct Sources {
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub staleness_threshold: chrono::Duration,
    /// Each authority followed, with its link.
    pub followed: Vec<(String, Arc<LinkState>)>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let r = &registry;
        Metrics {
            apply_seconds: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "cpreg_replica_apply_seconds",
                        "Seconds from a version's whole payload arriving to its commit, by authority.",
                    )
                    .buckets(vec![
                        0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0,
                    ]),
                    &["authority"],
                )
                .expect("a valid metric name"),
            ),
            snapshot_version: gauges(
                r,
                "cpreg_replica_snapshot_version",
                "The version held of each authority's register (0: nothing held).",
                &["authority"],
            ),
            snapshot_age: gauges(
                r,
                "cpreg_replica_snapshot_age_seconds",
                "Seconds since the primary last vouched for the version held: answers say 'as of' then.",
                &["authority"],
            ),
            stale: gauges(
                r,
                "cpreg_replica_stale",
                "1 when answers about an authority's children are marked stale.",
                &["authority"],
            ),
            entries: gauges(
                r,
                "cpreg_replica_snapshot_entries",
                "Entries in the version held of each authority.",
                &["authority"],
            ),
            connected: gauges(
                r,
                "cpreg_replica_connected",
                "1 while a subscription to the authority's primary is open.",
                &["authority"],
            ),
            refused: gauges(
                r,
                "cpreg_replica_refused_since_start",
                "Versions, statements or rotations refused since the replica started, by authority.",
                &["authority"],
            ),
            enquiry_backlog: register(
                r,
                IntGauge::new(
                    "cpreg_replica_enquiry_backlog",
                    "Enquiries recorded here that their primary has not yet acknowledged.",
                )
                .expect("a valid metric name"),
            ),
            enquiries: gauges(
                r,
                "cpreg_replica_enquiries",
                "Enquiries held here (within retention), by outcome: match, possible, no_record, refused, awaiting-callback, callback-failed.",
                &["outcome"],
            ),
            registry,
        }
    }

    /// Starts timing each authority's applies into `cpreg_replica_apply_seconds`.
    pub fn time_applies(&self, followed: &[(String, Arc<LinkState>)]) {
        for (authority, link) in followed {
            link.time_applies(self.apply_seconds.with_label_values(&[authority.as_str()]));
        }
    }

    /// Reads the figures into the gauges. Runs on the blocking pool.
    fn refresh(&self, sources: &Sources) -> Result<(), StoreError> {
        let now = sources.clock.now();
        for (authority, link) in &sources.followed {
            let held = sources.store.trusted_state(authority)?;
            let status = link.status(HeldVersion::new(
                authority,
                &held,
                now,
                sources.staleness_threshold,
            ));
            let label = [authority.as_str()];
            self.snapshot_version
                .with_label_values(&label)
                .set(to_i64(status.version));
            match status.as_of {
                Some(as_of) => self
                    .snapshot_age
                    .with_label_values(&label)
                    .set((now - as_of).num_seconds()),
                None => {
                    let _ = self.snapshot_age.remove_label_values(&label);
                }
            }
            self.stale
                .with_label_values(&label)
                .set(i64::from(status.stale));
            self.entries
                .with_label_values(&label)
                .set(to_i64(status.entry_count));
            self.connected
                .with_label_values(&label)
                .set(i64::from(status.connected));
            self.refused
                .with_label_values(&label)
                .set(to_i64(status.rejected));
        }
        self.enquiry_backlog
            .set(to_i64(sources.store.outbox_backlog()?));
        self.enquiries.reset();
        for outcome in OUTCOMES {
            self.enquiries.with_label_values(&[outcome]).set(0);
        }
        for (outcome, count) in sources.store.enquiries_by_outcome()? {
            self.enquiries
                .with_label_values(&[outcome.as_str()])
                .set(to_i64(count));
        }
        Ok(())
    }

    /// The Prometheus text exposition of every metric, after reading the sources.
    pub async fn render(self: Arc<Self>, sources: Arc<Sources>) -> Result<String, String> {
        tokio::task::spawn_blocking(move || {
            self.refresh(&sources).map_err(|e| e.to_string())?;
            encode(&self.registry)
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
