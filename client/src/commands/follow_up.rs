//! `cpreg admin contacts`, `admin alerts` and `admin alerts ack`: what the primary did with the
//! enquiries the replicas reported (DESIGN section 6), for the custodian to act on.

use cpreg_proto::pb;

use crate::cli::{AlertsArgs, AlertsCommand, AlertsFilter};
use crate::output::{CliError, Output};
use crate::profile::Profile;

/// The Contacts recorded for children without a plan, newest first.
pub async fn list_contacts(
    profile: &Profile,
    record_id: Option<String>,
    limit: u32,
) -> Result<pb::ListContactsReply, CliError> {
    Ok(profile
        .replication()
        .await?
        .list_contacts(pb::ListContactsRequest {
            record_id: record_id.unwrap_or_default(),
            limit,
        })
        .await?
        .into_inner())
}

/// The alerts the listing asks for, newest first.
pub async fn list_alerts(
    profile: &Profile,
    filter: &AlertsFilter,
) -> Result<pb::ListAlertsReply, CliError> {
    Ok(profile
        .replication()
        .await?
        .list_alerts(pb::ListAlertsRequest {
            kind: filter.kind.clone().unwrap_or_default(),
            unacknowledged_only: filter.unacknowledged,
            limit: filter.limit,
        })
        .await?
        .into_inner())
}

/// Records that the custodian has seen alert `id` and what was done; the alert as it now stands.
pub async fn acknowledge_alert(
    profile: &Profile,
    id: &str,
    note: &str,
) -> Result<pb::Alert, CliError> {
    Ok(profile
        .replication()
        .await?
        .acknowledge_alert(pb::AcknowledgeAlertRequest {
            id: id.to_owned(),
            note: note.to_owned(),
        })
        .await?
        .into_inner())
}

pub async fn contacts(
    profile: &Profile,
    record_id: Option<String>,
    limit: u32,
    out: Output,
) -> Result<(), CliError> {
    let reply = list_contacts(profile, record_id, limit).await?;
    out.emit(&reply, || contacts_text(&reply))
}

pub async fn alerts(profile: &Profile, args: AlertsArgs, out: Output) -> Result<(), CliError> {
    match args.command {
        None => {
            let reply = list_alerts(profile, &args.filter).await?;
            out.emit(&reply, || alerts_text(&reply))
        }
        Some(AlertsCommand::Ack { id, note }) => {
            let alert = acknowledge_alert(profile, &id, &note).await?;
            out.emit(&alert, || alert_text(&alert))
        }
    }
}

/// Contacts as text: a line per Contact, then what the enquirer asked and was told.
pub fn contacts_text(reply: &pb::ListContactsReply) -> String {
    let mut text = format!("{} contact(s), newest first\n", reply.contacts.len());
    for c in &reply.contacts {
        let record = if c.record_id.is_empty() {
            "no record on the register".to_owned()
        } else {
            format!("record {}", c.record_id)
        };
        text += &format!("{} at {}, site {}, {record}\n", c.reference, c.at, c.site);
        text += &format!("    enquirer: {}\n", c.enquirer);
        text += &format!("    reason:   {}\n", c.reason);
        text += &format!("    searched: {}\n", c.searched);
        text += &format!("    advice:   {}\n", c.advice);
    }
    text
}

/// Alerts as text, unacknowledged ones marked.
pub fn alerts_text(reply: &pb::ListAlertsReply) -> String {
    let open = reply
        .alerts
        .iter()
        .filter(|a| a.acknowledged_by.is_empty())
        .count();
    let mut text = format!(
        "{} alert(s), {open} unacknowledged, newest first\n",
        reply.alerts.len()
    );
    for a in &reply.alerts {
        text += &alert_text(a);
    }
    text
}

/// One alert: its id (what `admin alerts ack` takes), what it says and whether it was seen.
pub fn alert_text(a: &pb::Alert) -> String {
    let seen = if a.acknowledged_by.is_empty() {
        "UNACKNOWLEDGED"
    } else {
        "acknowledged"
    };
    let mut text = format!("{}  {}  raised {}  {seen}\n", a.id, a.kind, a.raised_at);
    text += &format!("    {}\n", a.message);
    text += &format!("    enquiries: {}\n", a.references.join(", "));
    if !a.acknowledged_by.is_empty() {
        text += &format!(
            "    acknowledged by {} at {}: {}\n",
            a.acknowledged_by, a.acknowledged_at, a.acknowledgement_note
        );
    }
    text
}
