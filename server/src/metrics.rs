//! What a primary tells Prometheus, on a plain HTTP listener of its own (`[metrics] listen`; off
//! when the section is absent). Most figures are read from the register when scraped, so they
//! can never drift from it: the version published, the notification backlog, enquiries received,
//! open alerts and each replica's last report. Counters are kept only where something happens
//! that the register does not record: each version sent to a replica (and how long signing and
//! sending it took), and each failed notification attempt.

use std::sync::Arc;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::store::{AlertFilter, Store, StoreError};
pub use cpreg_proto::metrics::serve;
use cpreg_proto::metrics::{encode, gauge, gauges, register, to_i64};

/// The kinds of alert counted even when none is open, so a dashboard shows 0 rather than nothing.
const ALERT_KINDS: [&str; 3] = ["second-enquiry", "refused", "enumeration"];

/// The primary's metrics: a registry of its own, so two primaries in one process (tests, the
/// demo) never mix their figures.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Seconds to sign one version for one replica and hand it every frame, by `kind`
    /// (`full` or `delta`): publishing as a replica experiences it.
    pub publish_seconds: HistogramVec,
    /// Delivery attempts a sink refused or could not take, by `sink` (`webhook`, `email`).
    pub notification_failures: IntCounterVec,
    published_version: IntGauge,
    published_entries: IntGauge,
    notification_backlog: IntGauge,
    enquiries: IntGaugeVec,
    open_alerts: IntGaugeVec,
    replica_version: IntGaugeVec,
    replica_as_of_age: IntGaugeVec,
    replica_stale: IntGaugeVec,
    replica_enquiry_backlog: IntGaugeVec,
    replica_last_report_age: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let r = &registry;
        let publish_seconds = register(
            r,
            HistogramVec::new(
                HistogramOpts::new(
                    "cpreg_primary_publish_seconds",
                    "Seconds to sign a version for one replica and send all its frames, by kind.",
                )
                .buckets(vec![
                    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0,
                ]),
                &["kind"],
            )
            .expect("a valid metric name"),
        );
        let notification_failures = register(
            r,
            IntCounterVec::new(
                Opts::new(
                    "cpreg_primary_notification_failures_total",
                    "Notification delivery attempts that failed, by sink; each is retried.",
                ),
                &["sink"],
            )
            .expect("a valid metric name"),
        );
        Metrics {
            publish_seconds,
            notification_failures,
            published_version: gauge(
                r,
                "cpreg_primary_published_version",
                "The newest version of the lookup projection published to replicas.",
            ),
            published_entries: gauge(
                r,
                "cpreg_primary_published_entries",
                "Entries in the newest published version.",
            ),
            notification_backlog: gauge(
                r,
                "cpreg_primary_notification_backlog",
                "Notifications that a sink has still to take.",
            ),
            enquiries: gauges(
                r,
                "cpreg_primary_enquiries",
                "Enquiries reported by replicas and held, by state and outcome.",
                &["state", "outcome"],
            ),
            open_alerts: gauges(
                r,
                "cpreg_primary_open_alerts",
                "Alerts not yet acknowledged, by kind.",
                &["kind"],
            ),
            replica_version: gauges(
                r,
                "cpreg_primary_replica_version",
                "The version each replica last reported holding, by site.",
                &["site"],
            ),
            replica_as_of_age: gauges(
                r,
                "cpreg_primary_replica_as_of_age_seconds",
                "Seconds since the primary last vouched for what each replica holds.",
                &["site"],
            ),
            replica_stale: gauges(
                r,
                "cpreg_primary_replica_stale",
                "1 when a replica reported its copy stale.",
                &["site"],
            ),
            replica_enquiry_backlog: gauges(
                r,
                "cpreg_primary_replica_enquiry_backlog",
                "Enquiries waiting in each replica's outbox, as it last reported.",
                &["site"],
            ),
            replica_last_report_age: gauges(
                r,
                "cpreg_primary_replica_last_report_age_seconds",
                "Seconds since each replica last reported its status.",
                &["site"],
            ),
            registry,
        }
    }

    /// Reads the register's figures into the gauges. Runs on the blocking pool.
    fn refresh(&self, store: &Store) -> Result<(), StoreError> {
        let now = store.clock().now();
        let head = store.head()?;
        self.published_version.set(to_i64(head.version));
        self.published_entries.set(to_i64(head.entry_count));
        self.notification_backlog
            .set(to_i64(store.notification_backlog()?));

        self.enquiries.reset();
        for ((state, outcome), count) in store.enquiry_counts()? {
            self.enquiries
                .with_label_values(&[state.as_str(), outcome.as_str()])
                .set(to_i64(count));
        }

        self.open_alerts.reset();
        for kind in ALERT_KINDS {
            self.open_alerts.with_label_values(&[kind]).set(0);
        }
        let open = store.alerts(&AlertFilter {
            unacknowledged: true,
            ..AlertFilter::default()
        })?;
        for alert in open {
            self.open_alerts
                .with_label_values(&[alert.kind.as_str()])
                .inc();
        }

        for family in [
            &self.replica_version,
            &self.replica_as_of_age,
            &self.replica_stale,
            &self.replica_enquiry_backlog,
            &self.replica_last_report_age,
        ] {
            family.reset();
        }
        for report in store.replica_reports()? {
            let site = [report.site.as_str()];
            self.replica_version
                .with_label_values(&site)
                .set(to_i64(report.version));
            if report.as_of > 0 {
                self.replica_as_of_age
                    .with_label_values(&site)
                    .set(now.timestamp() - report.as_of);
            }
            self.replica_stale
                .with_label_values(&site)
                .set(i64::from(report.stale));
            self.replica_enquiry_backlog
                .with_label_values(&site)
                .set(to_i64(report.outbox_backlog));
            self.replica_last_report_age
                .with_label_values(&site)
                .set((now - report.last_contact).num_seconds());
        }
        Ok(())
    }

    /// The Prometheus text exposition of every metric, after reading the register.
    pub async fn render(self: Arc<Self>, store: Arc<Store>) -> Result<String, String> {
        tokio::task::spawn_blocking(move || {
            self.refresh(&store).map_err(|e| e.to_string())?;
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
