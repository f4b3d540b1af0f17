//! `cpreg orgs ...` and `cpreg historic ...`: the organisation directory and historic releases.

use cpreg_proto::pb;

use crate::cli::{HistoricCommand, OrgsCommand};
use crate::output::{CliError, Output};
use crate::profile::Profile;

fn kind(name: &str) -> Result<i32, CliError> {
    use pb::OrganisationKind as K;
    let kind = match name {
        "emergency-department" | "ae" => K::EmergencyDepartment,
        "emergency-duty-team" | "edt" => K::EmergencyDutyTeam,
        "police-cait" | "cait" => K::PoliceCait,
        "gp-out-of-hours" => K::GpOutOfHours,
        "ambulance" => K::Ambulance,
        "police" => K::Police,
        "childrens-social-care" => K::ChildrensSocialCare,
        "other" => K::Other,
        other => {
            return Err(CliError::Invalid(format!(
                "--kind {other:?}: use emergency-department, emergency-duty-team, police-cait, gp-out-of-hours, ambulance, police, childrens-social-care or other"
            )));
        }
    };
    Ok(kind.into())
}

fn org_line(o: &pb::Organisation) -> String {
    format!(
        "{:<24} {:<40} call back {:<14} site {:<8} verified {} by {}\n",
        o.id, o.name, o.callback_number, o.site, o.verified_on, o.verified_by
    )
}

pub async fn orgs(profile: &Profile, command: OrgsCommand, out: Output) -> Result<(), CliError> {
    let mut client = profile.register().await?;
    match command {
        OrgsCommand::Put(f) => {
            let reply = client
                .put_organisation(pb::PutOrganisationRequest {
                    organisation: Some(pb::Organisation {
                        id: f.id,
                        name: f.name,
                        kind: kind(&f.kind)?,
                        callback_number: f.callback_number,
                        site: f.site,
                        verified_on: f.verified_on.unwrap_or_default(),
                        verified_by: String::new(),
                    }),
                })
                .await?
                .into_inner();
            let org = reply.organisation.clone().unwrap_or_default();
            out.emit(&reply, || {
                format!(
                    "{}{}",
                    if reply.changed {
                        "saved: "
                    } else {
                        "unchanged: "
                    },
                    org_line(&org)
                )
            })
        }
        OrgsCommand::List => {
            let reply = client
                .list_organisations(pb::ListOrganisationsRequest {})
                .await?
                .into_inner();
            out.emit(&reply, || {
                reply.organisations.iter().map(org_line).collect()
            })
        }
        OrgsCommand::Remove { id } => {
            let reply = client
                .remove_organisation(pb::RemoveOrganisationRequest { id })
                .await?
                .into_inner();
            let org = reply.organisation.clone().unwrap_or_default();
            out.emit(&reply, || format!("removed: {}", org_line(&org)))
        }
    }
}

fn release_line(r: &pb::HistoricRelease) -> String {
    let status = serde_json::to_value(r)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_owned))
        .unwrap_or_default();
    format!(
        "{} {} for {} by {} ({}): {} [{}]\n",
        r.id, r.record_id, r.requesting_authority, r.requester, r.requested_at, r.reason, status
    )
}

pub async fn historic(
    profile: &Profile,
    command: HistoricCommand,
    out: Output,
) -> Result<(), CliError> {
    let mut client = profile.register().await?;
    let decide = |id: String, approve: bool, note: String| pb::DecideHistoricReleaseRequest {
        id,
        approve,
        note,
    };
    let reply = match command {
        HistoricCommand::Request {
            record_id,
            authority,
            requester,
            reason,
        } => {
            client
                .request_historic_release(pb::HistoricReleaseRequest {
                    record_id,
                    requesting_authority: authority,
                    requester,
                    reason,
                })
                .await?
        }
        HistoricCommand::Approve { id, note } => {
            client
                .decide_historic_release(decide(id, true, note))
                .await?
        }
        HistoricCommand::Refuse { id, note } => {
            client
                .decide_historic_release(decide(id, false, note))
                .await?
        }
        HistoricCommand::List => {
            let reply = client
                .list_historic_releases(pb::ListHistoricReleasesRequest {})
                .await?
                .into_inner();
            return out.emit(&reply, || reply.releases.iter().map(release_line).collect());
        }
        HistoricCommand::Release { id } => {
            let reply = client
                .release_historic_plans(pb::ReleaseHistoricPlansRequest { id })
                .await?
                .into_inner();
            return out.emit(&reply, || {
                let mut text = format!(
                    "{} {} (born {}): {} ended plan(s)\n",
                    reply.record_id,
                    reply.child_name,
                    reply.date_of_birth,
                    reply.ended_plans.len()
                );
                for p in &reply.ended_plans {
                    let end = p.end.clone().unwrap_or_default();
                    text += &format!(
                        "  plan {} from {} to {}\n",
                        p.plan_number, p.start_date, end.end_date
                    );
                }
                text
            });
        }
    }
    .into_inner();
    let release = reply.release.clone().unwrap_or_default();
    out.emit(&reply, || release_line(&release))
}
