//! `cpreg admin replicas` and `admin enquiries`: what the replicas reported to the primary.

use cpreg_proto::pb;

use crate::output::{CliError, Output};
use crate::profile::Profile;

pub async fn run(profile: &Profile, out: Output) -> Result<(), CliError> {
    let reply = profile
        .replication()
        .await?
        .list_replicas(pb::ListReplicasRequest {})
        .await?
        .into_inner();
    let head = profile
        .register()
        .await?
        .get_authority(pb::GetAuthorityRequest {})
        .await?
        .into_inner()
        .published_version;
    out.emit(&reply, || replicas_text(&reply, head))
}

/// Each replica's last report as a line, warning of one ahead of the primary's `head`.
pub fn replicas_text(reply: &pb::ListReplicasReply, head: u64) -> String {
    let mut text = format!(
        "{} replica(s); the primary publishes version {head}\n",
        reply.replicas.len()
    );
    for r in &reply.replicas {
        let as_of = chrono::DateTime::from_timestamp(r.as_of, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        text += &format!(
            "{:<10} version {:<8} as of {}  {}  outbox {}  last contact {}\n",
            r.site,
            r.version,
            as_of,
            if r.stale { "STALE" } else { "fresh" },
            r.outbox_backlog,
            r.last_contact
        );
        if r.version > head {
            text += "           AHEAD of the primary: was the register restored from a backup? Run `cpreg-primary restored --above VERSION`\n";
        }
    }
    text
}

pub async fn enquiries(
    profile: &Profile,
    record_id: Option<String>,
    limit: u32,
    out: Output,
) -> Result<(), CliError> {
    let reply = profile
        .replication()
        .await?
        .list_enquiries(pb::ListEnquiriesRequest {
            record_id: record_id.unwrap_or_default(),
            limit,
        })
        .await?
        .into_inner();
    out.emit(&reply, || {
        reply
            .enquiries
            .iter()
            .map(|e| {
                format!(
                    "{} {} at {} {}: {}\n",
                    e.reference,
                    e.received_at,
                    e.site,
                    e.state,
                    e.children.join(", ")
                )
            })
            .collect()
    })
}
