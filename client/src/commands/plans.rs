//! `cpreg plans ...`: the plan lifecycle.

use cpreg_proto::pb;

use super::category;
use crate::cli::PlansCommand;
use crate::commands::children::describe;
use crate::output::{CliError, Output};
use crate::profile::Profile;

fn end_reason(name: &str) -> Result<i32, CliError> {
    use pb::EndReason as R;
    let reason = match name {
        "no-longer-at-risk" => R::NoLongerAtRisk,
        "transferred" => R::Transferred,
        "reached-18" => R::Reached18,
        "died" => R::Died,
        "left-uk" => R::LeftUk,
        "looked-after" => R::LookedAfter,
        "letter-after-notice" => R::LetterAfterNotice,
        other => {
            return Err(CliError::Invalid(format!(
                "--reason {other:?}: use no-longer-at-risk, transferred, reached-18, died, left-uk, looked-after or letter-after-notice"
            )));
        }
    };
    Ok(reason.into())
}

fn contact(
    name: Option<String>,
    phone: Option<String>,
    email: Option<String>,
) -> Option<pb::Contact> {
    (name.is_some() || phone.is_some() || email.is_some()).then(|| pb::Contact {
        name: name.unwrap_or_default(),
        address: String::new(),
        phone: phone.unwrap_or_default(),
        email: email.unwrap_or_default(),
    })
}

pub async fn run(profile: &Profile, command: PlansCommand, out: Output) -> Result<(), CliError> {
    let mut client = profile.register().await?;
    let reply = match command {
        PlansCommand::Start {
            record_id,
            categories,
            start_date,
            lead,
            team_manager,
            team_manager_phone,
            core_group,
            next_review,
            notice_days,
        } => {
            client
                .start_plan(pb::StartPlanRequest {
                    record_id,
                    categories: categories
                        .iter()
                        .map(|c| category(c))
                        .collect::<Result<_, _>>()?,
                    start_date,
                    lead_social_worker: contact(lead.name, lead.phone, lead.email),
                    team_manager: contact(Some(team_manager), team_manager_phone, None),
                    core_group,
                    next_review_date: next_review,
                    notice_period_days: notice_days.unwrap_or(0),
                })
                .await?
        }
        PlansCommand::Change {
            record_id,
            categories,
            lead,
            team_manager,
            team_manager_phone,
            core_group,
        } => {
            client
                .change_plan(pb::ChangePlanRequest {
                    record_id,
                    categories: categories
                        .iter()
                        .map(|c| category(c))
                        .collect::<Result<_, _>>()?,
                    lead_social_worker: contact(lead.name, lead.phone, lead.email),
                    team_manager: contact(team_manager, team_manager_phone, None),
                    replace_core_group: !core_group.is_empty(),
                    core_group,
                })
                .await?
        }
        PlansCommand::Review {
            record_id,
            held_on,
            next_review,
        } => {
            client
                .record_review(pb::RecordReviewRequest {
                    record_id,
                    held_on,
                    next_review_date: next_review,
                })
                .await?
        }
        PlansCommand::End {
            record_id,
            reason,
            date,
            receiving_authority,
            transfer_in_conference,
            looked_after_from,
            letter_date,
            note,
        } => {
            client
                .end_plan(pb::EndPlanRequest {
                    record_id,
                    end: Some(pb::PlanEnd {
                        reason: end_reason(&reason)?,
                        end_date: date,
                        receiving_authority: receiving_authority.unwrap_or_default(),
                        transfer_in_conference_date: transfer_in_conference.unwrap_or_default(),
                        looked_after_from: looked_after_from.unwrap_or_default(),
                        letter_date: letter_date.unwrap_or_default(),
                        note: note.unwrap_or_default(),
                    }),
                })
                .await?
        }
        PlansCommand::Document {
            record_id,
            file,
            core_group_date,
        } => {
            let content = super::read_file("plan document", &file)?;
            let file_name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            client
                .add_plan_document(pb::AddPlanDocumentRequest {
                    record_id,
                    core_group_date,
                    file_name,
                    content,
                })
                .await?
        }
    }
    .into_inner();
    let child = reply.child.clone().unwrap_or_default();
    out.emit(&reply, || describe(&child))
}
