//! `cpreg children ...`: add, update, show, list and history of children's records.

use cpreg_proto::pb;

use crate::cli::{ChildFields, ChildrenCommand};
use crate::output::{CliError, Output};
use crate::profile::Profile;

/// Applies the flags given onto `details`.
fn apply(fields: ChildFields, details: &mut pb::ChildDetails) -> Result<(), CliError> {
    if let Some(path) = &fields.details {
        let bytes = super::read_file("details file", path)?;
        let record: cpreg_primary::record::ChildDetails = serde_json::from_slice(&bytes)
            .map_err(|e| CliError::Invalid(format!("details file {}: {e}", path.display())))?;
        *details = cpreg_primary::convert::details_to(&record);
    }
    let set = |target: &mut String, value: Option<String>| {
        if let Some(v) = value {
            *target = v;
        }
    };
    set(&mut details.given_names, fields.given);
    set(&mut details.surname, fields.surname);
    if fields.dob.is_some() && fields.expected_delivery.is_none() {
        // A date of birth records the birth: the child is no longer unborn.
        details.unborn = None;
    }
    set(&mut details.date_of_birth, fields.dob);
    set(&mut details.nhs_number, fields.nhs);
    set(&mut details.home_address, fields.address);
    set(&mut details.home_postcode, fields.postcode);
    set(&mut details.ethnicity, fields.ethnicity);
    set(&mut details.legal_status, fields.legal_status);
    if !fields.other_names.is_empty() {
        details.other_names = fields.other_names;
    }
    if let Some(g) = fields.gender {
        details.gender = match g.to_ascii_lowercase().as_str() {
            "male" => pb::Gender::Male,
            "female" => pb::Gender::Female,
            "unknown" => pb::Gender::Unknown,
            _ => {
                return Err(CliError::Invalid(format!(
                    "--gender {g:?}: use male, female or unknown"
                )));
            }
        }
        .into();
    }
    if fields.expected_delivery.is_some()
        || fields.mother_given.is_some()
        || fields.mother_surname.is_some()
    {
        let unborn = details.unborn.get_or_insert_with(Default::default);
        set(&mut unborn.expected_delivery_date, fields.expected_delivery);
        set(&mut unborn.mother_given_names, fields.mother_given);
        set(&mut unborn.mother_surname, fields.mother_surname);
        set(&mut unborn.mother_date_of_birth, fields.mother_dob);
        set(&mut unborn.mother_nhs_number, fields.mother_nhs);
    }
    Ok(())
}

/// Human-readable lines for one record.
pub fn describe(child: &pb::ChildRecord) -> String {
    let d = child.details.clone().unwrap_or_default();
    let mut out = format!(
        "{}  {} {}  (revision {})\n",
        child.record_id, d.given_names, d.surname, child.revision
    );
    if let Some(u) = &d.unborn {
        out += &format!(
            "  unborn: expected {}, mother {} {}\n",
            u.expected_delivery_date, u.mother_given_names, u.mother_surname
        );
    } else {
        out += &format!(
            "  born {}  NHS {}\n",
            d.date_of_birth,
            if d.nhs_number.is_empty() {
                "unknown"
            } else {
                &d.nhs_number
            }
        );
    }
    if !d.other_names.is_empty() {
        out += &format!("  also known as: {}\n", d.other_names.join(", "));
    }
    out += &format!("  address: {} {}\n", d.home_address, d.home_postcode);
    for p in &child.plans {
        let cats: Vec<String> = p
            .categories
            .iter()
            .map(|c| cpreg_proto::json::category_name(*c))
            .collect();
        let lsw = p.lead_social_worker.clone().unwrap_or_default();
        match &p.end {
            None => {
                out += &format!(
                    "  plan {} ACTIVE since {} ({}); lead social worker {} {}; next review {}\n",
                    p.plan_number,
                    p.start_date,
                    cats.join(", "),
                    lsw.name,
                    lsw.phone,
                    p.next_review_date
                )
            }
            Some(end) => {
                out += &format!(
                    "  plan {} {} to {} ({}), ended: {}\n",
                    p.plan_number,
                    p.start_date,
                    end.end_date,
                    cats.join(", "),
                    serde_json::to_value(end)
                        .ok()
                        .and_then(|v| v["reason"].as_str().map(str::to_owned))
                        .unwrap_or_default()
                )
            }
        }
    }
    out += &format!(
        "  last changed {} by {}\n",
        child.updated_at, child.updated_by
    );
    out
}

pub async fn run(profile: &Profile, command: ChildrenCommand, out: Output) -> Result<(), CliError> {
    let mut client = profile.register().await?;
    match command {
        ChildrenCommand::Add { record_id, fields } => {
            let mut details = pb::ChildDetails::default();
            apply(fields, &mut details)?;
            let reply = client
                .create_child(pb::CreateChildRequest {
                    record_id,
                    details: Some(details),
                })
                .await?
                .into_inner();
            let child = reply.child.unwrap_or_default();
            out.emit(&child, || format!("added\n{}", describe(&child)))
        }
        ChildrenCommand::Update { record_id, fields } => {
            let current = client
                .get_child(pb::GetChildRequest {
                    record_id: record_id.clone(),
                })
                .await?
                .into_inner()
                .child
                .unwrap_or_default();
            let mut details = current.details.clone().unwrap_or_default();
            apply(fields, &mut details)?;
            let reply = client
                .update_child(pb::UpdateChildRequest {
                    record_id,
                    details: Some(details),
                    expected_revision: current.revision,
                })
                .await?
                .into_inner();
            let child = reply.child.clone().unwrap_or_default();
            out.emit(&reply, || {
                format!(
                    "{}\n{}",
                    if reply.changed {
                        "updated"
                    } else {
                        "unchanged: the details were already so"
                    },
                    describe(&child)
                )
            })
        }
        ChildrenCommand::Show { record_id } => {
            let child = client
                .get_child(pb::GetChildRequest { record_id })
                .await?
                .into_inner()
                .child
                .unwrap_or_default();
            out.emit(&child, || describe(&child))
        }
        ChildrenCommand::List {
            active,
            surname,
            limit,
        } => {
            let reply = client
                .list_children(pb::ListChildrenRequest {
                    with_active_plan: active,
                    surname_contains: surname.unwrap_or_default(),
                    limit,
                })
                .await?
                .into_inner();
            out.emit(&reply, || {
                let mut text = format!("{} of {} children\n", reply.children.len(), reply.total);
                for c in &reply.children {
                    text += &format!(
                        "{:<12} {:<28} {:<10} {:<20} {}\n",
                        c.record_id,
                        format!("{} {}", c.given_names, c.surname),
                        c.date_of_birth,
                        c.plan_status,
                        c.lead_social_worker
                    );
                }
                text
            })
        }
        ChildrenCommand::History { record_id } => {
            let reply = client
                .child_history(pb::GetChildRequest { record_id })
                .await?
                .into_inner();
            out.emit(&reply, || {
                reply
                    .revisions
                    .iter()
                    .map(|r| {
                        format!(
                            "revision {} at {} by {}: {} [{}]\n",
                            r.revision,
                            r.at,
                            r.by,
                            r.action,
                            r.changed.join(", ")
                        )
                    })
                    .collect()
            })
        }
    }
}
