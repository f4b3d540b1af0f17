//! Sends the enquiry outbox to the primaries (DESIGN section 6): each enquiry to the authority of
//! the child it found, or to the site's home authority (the first configured) otherwise. An
//! enquiry leaves the outbox only once its primary has committed it; until then it is sent again,
//! across restarts and outages, and the reference keeps a repeat from counting twice.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use cpreg_proto::pb;
use cpreg_proto::pb::replication_client::ReplicationClient;
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};

use crate::store::{Enquiry, EnquiryState, Store};

/// Enquiries sent per call at most: a replica back from a long outage drains in few calls.
const BATCH: usize = 1_000;
/// Bytes of enquiry records per call at most, well under the 4 MiB a gRPC server takes by
/// default; an enquiry larger than this still goes, alone.
const BATCH_BYTES: usize = 1024 * 1024;

/// The authority an enquiry is reported to.
fn target(enquiry: &Enquiry, home: &str) -> String {
    match &enquiry.state {
        EnquiryState::Answered { authorities, .. } if !authorities.is_empty() => {
            authorities[0].clone()
        }
        _ => home.to_owned(),
    }
}

fn state_word(state: &EnquiryState) -> &'static str {
    match state {
        EnquiryState::Refused { .. } => "refused",
        EnquiryState::AwaitingCallback { .. } => "awaiting-callback",
        EnquiryState::CallbackFailed { .. } => "callback-failed",
        EnquiryState::Answered { .. } => "answered",
    }
}

fn report(enquiry: &Enquiry) -> pb::EnquiryReport {
    let children = match &enquiry.state {
        EnquiryState::Answered {
            record_ids,
            authorities,
            ..
        } => authorities
            .iter()
            .zip(record_ids)
            .map(|(a, r)| format!("{a}/{r}"))
            .collect(),
        _ => Vec::new(),
    };
    pb::EnquiryReport {
        reference: enquiry.reference.clone(),
        record: serde_json::to_vec(enquiry).unwrap_or_default(),
        state: state_word(&enquiry.state).to_owned(),
        children,
        alert: enquiry.alert.clone().unwrap_or_default(),
    }
}

/// One authority's share of the outbox as reports, in outbox order, cut into calls of at most
/// [`BATCH_BYTES`] of records each.
fn chunks(items: Vec<(u64, &Enquiry)>) -> Vec<Vec<(u64, pb::EnquiryReport)>> {
    let mut out: Vec<Vec<(u64, pb::EnquiryReport)>> = Vec::new();
    let mut bytes = 0;
    for (position, enquiry) in items {
        let report = report(enquiry);
        let size = report.record.len();
        match out.last_mut() {
            Some(chunk) if bytes + size <= BATCH_BYTES => chunk.push((position, report)),
            _ => {
                out.push(vec![(position, report)]);
                bytes = 0;
            }
        }
        bytes += size;
    }
    out
}

/// The reporter: one task for the whole outbox.
pub(crate) struct Reporter {
    pub(crate) store: std::sync::Arc<Store>,
    /// Each authority's primary, in configuration order (the first is the site's home).
    pub(crate) primaries: Vec<(String, Endpoint)>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl Reporter {
    /// Runs until shutdown: sends what waits, then looks again shortly.
    pub(crate) async fn run(mut self) {
        let mut channels: BTreeMap<String, ReplicationClient<Channel>> = BTreeMap::new();
        let mut pause = Duration::from_millis(200);
        loop {
            match self.send_once(&mut channels).await {
                // More may be waiting: look again at once.
                Ok(true) => {
                    pause = Duration::from_millis(200);
                    if *self.shutdown.borrow() {
                        return;
                    }
                    continue;
                }
                Ok(false) => pause = Duration::from_millis(500),
                Err(message) => {
                    tracing::warn!(%message, "enquiries not delivered yet; they stay in the outbox");
                    pause = (pause * 2).clamp(Duration::from_millis(500), Duration::from_secs(30));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        return;
                    }
                }
            }
        }
    }

    /// Sends one batch per authority; `Ok(true)` when anything was delivered.
    async fn send_once(
        &self,
        channels: &mut BTreeMap<String, ReplicationClient<Channel>>,
    ) -> Result<bool, String> {
        let store = self.store.clone();
        let waiting = tokio::task::spawn_blocking(move || store.outbox(BATCH))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if waiting.is_empty() {
            return Ok(false);
        }
        let home = self
            .primaries
            .first()
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        let mut by_authority: BTreeMap<String, Vec<(u64, &Enquiry)>> = BTreeMap::new();
        for (position, enquiry) in &waiting {
            by_authority
                .entry(target(enquiry, &home))
                .or_default()
                .push((*position, enquiry));
        }
        let mut delivered_any = false;
        let mut failures = Vec::new();
        for (authority, items) in by_authority {
            let Some((_, endpoint)) = self.primaries.iter().find(|(id, _)| *id == authority) else {
                failures.push(format!("no primary configured for {authority}"));
                continue;
            };
            if !channels.contains_key(&authority) {
                match endpoint.connect().await {
                    Ok(channel) => {
                        channels.insert(authority.clone(), ReplicationClient::new(channel));
                    }
                    Err(e) => {
                        failures.push(format!("{authority}: {e}"));
                        continue;
                    }
                }
            }
            let Some(client) = channels.get_mut(&authority) else {
                continue;
            };
            for chunk in chunks(items) {
                let (positions, enquiries): (Vec<u64>, Vec<pb::EnquiryReport>) =
                    chunk.into_iter().unzip();
                let request = pb::ReportEnquiriesRequest { enquiries };
                let sent: Vec<(u64, String)> = positions
                    .into_iter()
                    .zip(request.enquiries.iter().map(|e| e.reference.clone()))
                    .collect();
                match client.report_enquiries(request).await {
                    Ok(reply) => {
                        let committed: HashSet<String> =
                            reply.into_inner().committed.into_iter().collect();
                        // Only what the primary says it committed leaves the outbox.
                        let positions: Vec<u64> = sent
                            .iter()
                            .filter(|(_, reference)| committed.contains(reference))
                            .map(|(p, _)| *p)
                            .collect();
                        if positions.is_empty() {
                            failures.push(format!("{authority}: committed none of those sent"));
                            break;
                        }
                        let store = self.store.clone();
                        tokio::task::spawn_blocking(move || store.delivered(&positions))
                            .await
                            .map_err(|e| e.to_string())?
                            .map_err(|e| e.to_string())?;
                        delivered_any = true;
                    }
                    Err(status) => {
                        channels.remove(&authority);
                        failures.push(format!("{authority}: {}", status.message()));
                        break;
                    }
                }
            }
        }
        if failures.is_empty() || delivered_any {
            Ok(delivered_any)
        } else {
            Err(failures.join("; "))
        }
    }
}
