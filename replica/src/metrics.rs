//! What a replica tells Prometheus, on a plain HTTP listener of its own (`[metrics] listen`; off
//! when the section is absent). The figures are read when scraped, from the store and each
//! authority's link, so they can never drift from what lookups see: the version held of each
//! authority and its age, staleness, the link, refusals, the enquiry outbox and the enquiries
//! held by outcome. Only the time each version took to check and apply is observed as it happens.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::status::{HeldVersion, LinkState};
use crate::store::{Store, StoreError};

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

/// Registers `metric` and hands it back. Names and labels are constants of this file, so a
/// failure is a mistake here, found by the first test that starts a replica with metrics.
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is valid and registered once");
    metric
}

fn gauges(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        registry,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid metric name"),
    )
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
            let mut text = Vec::new();
            TextEncoder::new()
                .encode(&self.registry.gather(), &mut text)
                .map_err(|e| e.to_string())?;
            String::from_utf8(text).map_err(|e| e.to_string())
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

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Serves `GET /metrics` on `listener` with whatever `render` produces, until `shutdown` turns
/// true; then every open connection is closed, so nothing outlives the server.
pub fn serve<F, Fut>(
    listener: TcpListener,
    render: F,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<String, String>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "metrics listener: accept failed");
                    continue;
                }
            };
            while connections.try_join_next().is_some() {}
            let render = render.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    let render = render.clone();
                    async move { Ok::<_, Infallible>(answer(request, render).await) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(%error, "metrics connection ended");
                }
            });
        }
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    })
}

async fn answer<B, F, Fut>(request: Request<B>, render: F) -> Response<Full<Bytes>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<String, String>>,
{
    let reply = |status: StatusCode, content_type: &'static str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
        response
    };
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "only GET /metrics is served here\n".into(),
        );
    }
    match render().await {
        Ok(text) => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            text,
        ),
        Err(error) => {
            tracing::error!(%error, "metrics could not be read");
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                format!("metrics could not be read: {error}\n"),
            )
        }
    }
}
