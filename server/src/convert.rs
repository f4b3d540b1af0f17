//! The edge between the wire and the domain: proto messages in, checked domain values out, and
//! domain values back to proto. Every identifier is checked here, so a malformed request is
//! refused before any domain code runs.

use chrono::{DateTime, NaiveDate, Utc};
use cpreg_proto::ident;
use cpreg_proto::pb;

use crate::lifecycle::{PlanChange, PlanStart};
use crate::record::*;

/// A request field that is missing or malformed. The message says what to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldError(pub String);

impl From<ident::IdentError> for FieldError {
    fn from(e: ident::IdentError) -> Self {
        FieldError(e.to_string())
    }
}

type Result<T> = std::result::Result<T, FieldError>;

fn required(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        Err(FieldError(format!("{field} is required")))
    } else {
        Ok(value.to_owned())
    }
}

fn opt_date(field: &'static str, value: &str) -> Result<Option<NaiveDate>> {
    Ok(ident::optional_date(field, value)?)
}

fn req_date(field: &'static str, value: &str) -> Result<NaiveDate> {
    opt_date(field, value)?.ok_or_else(|| FieldError(format!("{field} is required (YYYY-MM-DD)")))
}

fn opt_phone(value: &str) -> Result<String> {
    if value.trim().is_empty() {
        Ok(String::new())
    } else {
        Ok(ident::phone(value)?)
    }
}

fn date_str(date: Option<NaiveDate>) -> String {
    date.map(|d| d.to_string()).unwrap_or_default()
}

fn time_str(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A record id: the case system's id, printable and short.
pub fn record_id(value: &str) -> Result<String> {
    let id = required("record_id", value)?;
    if id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.'))
    {
        return Err(FieldError(format!(
            "record_id {id:?} must be up to 64 letters, digits, '-', '_', '/' or '.'"
        )));
    }
    Ok(id)
}

pub fn gender_from(g: i32) -> Gender {
    match pb::Gender::try_from(g) {
        Ok(pb::Gender::Male) => Gender::Male,
        Ok(pb::Gender::Female) => Gender::Female,
        _ => Gender::Unknown,
    }
}

pub fn gender_to(g: Gender) -> i32 {
    match g {
        Gender::Male => pb::Gender::Male,
        Gender::Female => pb::Gender::Female,
        Gender::Unknown => pb::Gender::Unknown,
    }
    .into()
}

pub fn category_from(c: i32) -> Result<Category> {
    match pb::Category::try_from(c) {
        Ok(pb::Category::Neglect) => Ok(Category::Neglect),
        Ok(pb::Category::Physical) => Ok(Category::Physical),
        Ok(pb::Category::Sexual) => Ok(Category::Sexual),
        Ok(pb::Category::Emotional) => Ok(Category::Emotional),
        _ => Err(FieldError(
            "category must be neglect, physical, sexual or emotional".into(),
        )),
    }
}

pub fn category_to(c: Category) -> i32 {
    match c {
        Category::Neglect => pb::Category::Neglect,
        Category::Physical => pb::Category::Physical,
        Category::Sexual => pb::Category::Sexual,
        Category::Emotional => pb::Category::Emotional,
    }
    .into()
}

fn categories_from(cs: &[i32]) -> Result<Vec<Category>> {
    cs.iter().map(|c| category_from(*c)).collect()
}

pub fn end_reason_from(r: i32) -> Result<EndReason> {
    use pb::EndReason as P;
    Ok(match P::try_from(r) {
        Ok(P::NoLongerAtRisk) => EndReason::NoLongerAtRisk,
        Ok(P::Transferred) => EndReason::Transferred,
        Ok(P::Reached18) => EndReason::Reached18,
        Ok(P::Died) => EndReason::Died,
        Ok(P::LeftUk) => EndReason::LeftUk,
        Ok(P::LookedAfter) => EndReason::LookedAfter,
        Ok(P::LetterAfterNotice) => EndReason::LetterAfterNotice,
        _ => {
            return Err(FieldError(
                "end reason is required: no-longer-at-risk, transferred, reached-18, died, left-uk, looked-after or letter-after-notice".into(),
            ));
        }
    })
}

pub fn end_reason_to(r: EndReason) -> i32 {
    use pb::EndReason as P;
    match r {
        EndReason::NoLongerAtRisk => P::NoLongerAtRisk,
        EndReason::Transferred => P::Transferred,
        EndReason::Reached18 => P::Reached18,
        EndReason::Died => P::Died,
        EndReason::LeftUk => P::LeftUk,
        EndReason::LookedAfter => P::LookedAfter,
        EndReason::LetterAfterNotice => P::LetterAfterNotice,
    }
    .into()
}

fn contact_from(c: Option<&pb::Contact>) -> Result<Option<Contact>> {
    let Some(c) = c else { return Ok(None) };
    if c.name.trim().is_empty()
        && c.phone.trim().is_empty()
        && c.address.trim().is_empty()
        && c.email.trim().is_empty()
    {
        return Ok(None);
    }
    Ok(Some(Contact {
        name: c.name.trim().to_owned(),
        address: c.address.trim().to_owned(),
        phone: opt_phone(&c.phone)?,
        email: ident::email(&c.email)?,
    }))
}

fn contact_to(c: &Contact) -> pb::Contact {
    pb::Contact {
        name: c.name.clone(),
        address: c.address.clone(),
        phone: c.phone.clone(),
        email: c.email.clone(),
    }
}

fn person_from(p: &pb::Person) -> Result<Person> {
    Ok(Person {
        full_name: required("a person's full_name", &p.full_name)?,
        other_names: p.other_names.clone(),
        address: p.address.clone(),
        relationship: p.relationship.clone(),
        parental_responsibility: p.parental_responsibility,
        offences: p.offences.clone(),
        regular_visitor: p.regular_visitor,
    })
}

fn person_to(p: &Person) -> pb::Person {
    pb::Person {
        full_name: p.full_name.clone(),
        other_names: p.other_names.clone(),
        address: p.address.clone(),
        relationship: p.relationship.clone(),
        parental_responsibility: p.parental_responsibility,
        offences: p.offences.clone(),
        regular_visitor: p.regular_visitor,
    }
}

/// Whether details are for a new child (who must be under 18) or a change to a record (which
/// may be of someone who has since turned 18, with a plan still to end or a historic plan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailsFor {
    NewChild,
    Change,
}

/// Checks a child's details as sent by a client, on `today`.
pub fn details_from(
    d: Option<&pb::ChildDetails>,
    today: NaiveDate,
    purpose: DetailsFor,
) -> Result<ChildDetails> {
    let d = d.ok_or_else(|| FieldError("details are required".into()))?;
    let unborn = match &d.unborn {
        Some(u) if !u.expected_delivery_date.trim().is_empty() => Some(Unborn {
            expected_delivery_date: ident::expected_delivery_date(
                req_date("expected_delivery_date", &u.expected_delivery_date)?,
                today,
            )?,
            mother_given_names: required("mother_given_names", &u.mother_given_names)?,
            mother_surname: required("mother_surname", &u.mother_surname)?,
            mother_date_of_birth: opt_date("mother_date_of_birth", &u.mother_date_of_birth)?,
            mother_nhs_number: (!u.mother_nhs_number.trim().is_empty())
                .then(|| ident::nhs_number(&u.mother_nhs_number))
                .transpose()?,
        }),
        _ => None,
    };
    let date_of_birth = opt_date("date_of_birth", &d.date_of_birth)?
        .map(|dob| match purpose {
            DetailsFor::NewChild => ident::child_date_of_birth(dob, today),
            DetailsFor::Change => ident::born_by(dob, today),
        })
        .transpose()?;
    match (&unborn, date_of_birth) {
        (Some(_), Some(_)) => {
            return Err(FieldError(
                "send either date_of_birth (a born child) or the unborn child's expected delivery date, not both".into(),
            ));
        }
        (None, None) => {
            return Err(FieldError(
                "date_of_birth is required; for a child not yet born send the expected delivery date and the mother's details".into(),
            ));
        }
        _ => {}
    }
    let surname = match (&unborn, d.surname.trim()) {
        (Some(u), "") => u.mother_surname.clone(),
        _ => required("surname", &d.surname)?,
    };
    let postcode = |v: &str| -> Result<Option<String>> {
        Ok((!v.trim().is_empty())
            .then(|| ident::postcode(v))
            .transpose()?)
    };
    Ok(ChildDetails {
        given_names: d.given_names.trim().to_owned(),
        surname,
        other_names: d
            .other_names
            .iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect(),
        date_of_birth,
        gender: gender_from(d.gender),
        nhs_number: (!d.nhs_number.trim().is_empty())
            .then(|| ident::nhs_number(&d.nhs_number))
            .transpose()?,
        ethnicity: d.ethnicity.trim().to_owned(),
        legal_status: d.legal_status.trim().to_owned(),
        home_address: d.home_address.trim().to_owned(),
        home_postcode: postcode(&d.home_postcode)?,
        current_address: d.current_address.trim().to_owned(),
        current_postcode: postcode(&d.current_postcode)?,
        unborn,
        parents: d.parents.iter().map(person_from).collect::<Result<_>>()?,
        household_adults: d
            .household_adults
            .iter()
            .map(person_from)
            .collect::<Result<_>>()?,
        household_children: d
            .household_children
            .iter()
            .map(|c| {
                Ok(HouseholdChild {
                    full_name: required("a household child's full_name", &c.full_name)?,
                    date_of_birth: opt_date("household child's date_of_birth", &c.date_of_birth)?,
                    gender: gender_from(c.gender),
                    legal_status: c.legal_status.clone(),
                    record_id: c.record_id.clone(),
                })
            })
            .collect::<Result<_>>()?,
        first_referral_date: opt_date("first_referral_date", &d.first_referral_date)?,
        first_referral_source: d.first_referral_source.trim().to_owned(),
        professionals: d
            .professionals
            .iter()
            .map(|p| {
                Ok(Professional {
                    name: required("a professional's name", &p.name)?,
                    role: p.role.clone(),
                    agency: p.agency.clone(),
                    phone: opt_phone(&p.phone)?,
                    core_group: p.core_group,
                })
            })
            .collect::<Result<_>>()?,
        gp: contact_from(d.gp.as_ref())?,
        health_visitor: contact_from(d.health_visitor.as_ref())?,
        school: d
            .school
            .as_ref()
            .filter(|s| !s.name.trim().is_empty())
            .map(|s| -> Result<School> {
                Ok(School {
                    name: s.name.trim().to_owned(),
                    address: s.address.clone(),
                    phone: opt_phone(&s.phone)?,
                    designated_teacher: s.designated_teacher.clone(),
                })
            })
            .transpose()?,
    })
}

pub fn details_to(d: &ChildDetails) -> pb::ChildDetails {
    pb::ChildDetails {
        given_names: d.given_names.clone(),
        surname: d.surname.clone(),
        other_names: d.other_names.clone(),
        date_of_birth: date_str(d.date_of_birth),
        gender: gender_to(d.gender),
        nhs_number: d.nhs_number.clone().unwrap_or_default(),
        ethnicity: d.ethnicity.clone(),
        legal_status: d.legal_status.clone(),
        home_address: d.home_address.clone(),
        home_postcode: d.home_postcode.clone().unwrap_or_default(),
        current_address: d.current_address.clone(),
        current_postcode: d.current_postcode.clone().unwrap_or_default(),
        unborn: d.unborn.as_ref().map(|u| pb::Unborn {
            expected_delivery_date: u.expected_delivery_date.to_string(),
            mother_given_names: u.mother_given_names.clone(),
            mother_surname: u.mother_surname.clone(),
            mother_date_of_birth: date_str(u.mother_date_of_birth),
            mother_nhs_number: u.mother_nhs_number.clone().unwrap_or_default(),
        }),
        parents: d.parents.iter().map(person_to).collect(),
        household_adults: d.household_adults.iter().map(person_to).collect(),
        household_children: d
            .household_children
            .iter()
            .map(|c| pb::HouseholdChild {
                full_name: c.full_name.clone(),
                date_of_birth: date_str(c.date_of_birth),
                gender: gender_to(c.gender),
                legal_status: c.legal_status.clone(),
                record_id: c.record_id.clone(),
            })
            .collect(),
        first_referral_date: date_str(d.first_referral_date),
        first_referral_source: d.first_referral_source.clone(),
        professionals: d
            .professionals
            .iter()
            .map(|p| pb::Professional {
                name: p.name.clone(),
                role: p.role.clone(),
                agency: p.agency.clone(),
                phone: p.phone.clone(),
                core_group: p.core_group,
            })
            .collect(),
        gp: d.gp.as_ref().map(contact_to),
        health_visitor: d.health_visitor.as_ref().map(contact_to),
        school: d.school.as_ref().map(|s| pb::School {
            name: s.name.clone(),
            address: s.address.clone(),
            phone: s.phone.clone(),
            designated_teacher: s.designated_teacher.clone(),
        }),
    }
}

pub fn plan_to(p: &Plan) -> pb::Plan {
    pb::Plan {
        plan_number: p.number,
        categories: p.categories.iter().map(|c| category_to(*c)).collect(),
        start_date: p.start_date.to_string(),
        lead_social_worker: Some(contact_to(&p.lead_social_worker)),
        team_manager: Some(contact_to(&p.team_manager)),
        core_group: p.core_group.clone(),
        next_review_date: p.next_review_date.to_string(),
        reviews: p
            .reviews
            .iter()
            .map(|r| pb::Review {
                held_on: r.held_on.to_string(),
                next_review_date: r.next_review_date.to_string(),
            })
            .collect(),
        notice_period_days: p.notice_period_days.unwrap_or(0),
        end: p.end.as_ref().map(|e| pb::PlanEnd {
            reason: end_reason_to(e.reason),
            end_date: e.end_date.to_string(),
            receiving_authority: e.receiving_authority.clone(),
            transfer_in_conference_date: date_str(e.transfer_in_conference_date),
            looked_after_from: date_str(e.looked_after_from),
            letter_date: date_str(e.letter_date),
            note: e.note.clone(),
        }),
        documents: p
            .documents
            .iter()
            .map(|d| pb::PlanDocument {
                core_group_date: d.core_group_date.to_string(),
                received_at: time_str(d.received_at),
                sha256: d.sha256.clone(),
                size: d.size,
                file_name: d.file_name.clone(),
            })
            .collect(),
    }
}

pub fn child_to(r: &ChildRecord) -> pb::ChildRecord {
    pb::ChildRecord {
        record_id: r.record_id.clone(),
        revision: r.revision,
        details: Some(details_to(&r.details)),
        plans: r.plans.iter().map(plan_to).collect(),
        updated_at: time_str(r.updated_at),
        updated_by: r.updated_by.clone(),
    }
}

pub fn summary_to(r: &ChildRecord) -> pb::ChildSummary {
    let plan = r.plans.last();
    pb::ChildSummary {
        record_id: r.record_id.clone(),
        given_names: r.details.given_names.clone(),
        surname: r.details.surname.clone(),
        date_of_birth: date_str(r.details.date_of_birth),
        plan_status: r.plan_status(),
        categories: plan
            .map(|p| p.categories.iter().map(|c| category_to(*c)).collect())
            .unwrap_or_default(),
        next_review_date: r
            .active_plan()
            .map(|p| p.next_review_date.to_string())
            .unwrap_or_default(),
        lead_social_worker: r
            .active_plan()
            .map(|p| p.lead_social_worker.name.clone())
            .unwrap_or_default(),
    }
}

pub fn revision_to(r: &Revision) -> pb::Revision {
    pb::Revision {
        revision: r.revision,
        at: time_str(r.at),
        by: r.by.clone(),
        action: r.action.clone(),
        changed: r.changed.clone(),
        record: Some(child_to(&r.record)),
    }
}

fn lead_social_worker_from(c: Option<&pb::Contact>) -> Result<Contact> {
    let c = contact_from(c)?.unwrap_or_default();
    if c.name.is_empty() || c.phone.is_empty() {
        return Err(FieldError(
            "lead social worker's name and telephone number are required".into(),
        ));
    }
    Ok(c)
}

pub fn plan_start_from(r: &pb::StartPlanRequest) -> Result<PlanStart> {
    Ok(PlanStart {
        categories: categories_from(&r.categories)?,
        start_date: req_date("start_date", &r.start_date)?,
        lead_social_worker: lead_social_worker_from(r.lead_social_worker.as_ref())?,
        team_manager: contact_from(r.team_manager.as_ref())?.unwrap_or_default(),
        core_group: r
            .core_group
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        next_review_date: req_date("next_review_date", &r.next_review_date)?,
        notice_period_days: match r.notice_period_days {
            0 => None,
            days @ 1..=365 => Some(days),
            days => {
                return Err(FieldError(format!(
                    "notice_period_days {days} must be between 1 and 365"
                )));
            }
        },
    })
}

pub fn plan_change_from(r: &pb::ChangePlanRequest) -> Result<PlanChange> {
    Ok(PlanChange {
        categories: (!r.categories.is_empty())
            .then(|| categories_from(&r.categories))
            .transpose()?,
        lead_social_worker: r
            .lead_social_worker
            .as_ref()
            .map(|c| lead_social_worker_from(Some(c)))
            .transpose()?,
        team_manager: contact_from(r.team_manager.as_ref())?,
        core_group: (r.replace_core_group || !r.core_group.is_empty())
            .then(|| r.core_group.clone()),
    })
}

pub fn plan_end_from(e: Option<&pb::PlanEnd>) -> Result<PlanEnd> {
    let e = e.ok_or_else(|| FieldError("end (reason and end_date) is required".into()))?;
    Ok(PlanEnd {
        reason: end_reason_from(e.reason)?,
        end_date: req_date("end_date", &e.end_date)?,
        receiving_authority: e.receiving_authority.trim().to_owned(),
        transfer_in_conference_date: opt_date(
            "transfer_in_conference_date",
            &e.transfer_in_conference_date,
        )?,
        looked_after_from: opt_date("looked_after_from", &e.looked_after_from)?,
        letter_date: opt_date("letter_date", &e.letter_date)?,
        note: e.note.trim().to_owned(),
    })
}

pub fn dates_from(held_on: &str, next: &str) -> Result<(NaiveDate, NaiveDate)> {
    Ok((
        req_date("held_on", held_on)?,
        req_date("next_review_date", next)?,
    ))
}

pub fn document_date_from(value: &str) -> Result<NaiveDate> {
    req_date("core_group_date", value)
}

fn organisation_kind_from(k: i32) -> Result<OrganisationKind> {
    use pb::OrganisationKind as P;
    Ok(match P::try_from(k) {
        Ok(P::EmergencyDepartment) => OrganisationKind::EmergencyDepartment,
        Ok(P::EmergencyDutyTeam) => OrganisationKind::EmergencyDutyTeam,
        Ok(P::PoliceCait) => OrganisationKind::PoliceCait,
        Ok(P::GpOutOfHours) => OrganisationKind::GpOutOfHours,
        Ok(P::Ambulance) => OrganisationKind::Ambulance,
        Ok(P::Police) => OrganisationKind::Police,
        Ok(P::ChildrensSocialCare) => OrganisationKind::ChildrensSocialCare,
        Ok(P::Other) => OrganisationKind::Other,
        _ => {
            return Err(FieldError(
                "organisation kind is required: emergency-department, emergency-duty-team, police-cait, gp-out-of-hours, ambulance, police, childrens-social-care or other".into(),
            ));
        }
    })
}

fn organisation_kind_to(k: OrganisationKind) -> i32 {
    use pb::OrganisationKind as P;
    match k {
        OrganisationKind::EmergencyDepartment => P::EmergencyDepartment,
        OrganisationKind::EmergencyDutyTeam => P::EmergencyDutyTeam,
        OrganisationKind::PoliceCait => P::PoliceCait,
        OrganisationKind::GpOutOfHours => P::GpOutOfHours,
        OrganisationKind::Ambulance => P::Ambulance,
        OrganisationKind::Police => P::Police,
        OrganisationKind::ChildrensSocialCare => P::ChildrensSocialCare,
        OrganisationKind::Other => P::Other,
    }
    .into()
}

/// An organisation id: lower-case letters, digits and dashes.
pub fn organisation_id(value: &str) -> Result<String> {
    let id = required("organisation id", value)?;
    if id.len() > 48
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(FieldError(format!(
            "organisation id {id:?} must be up to 48 lower-case letters, digits and dashes, like st-marys-ae"
        )));
    }
    Ok(id)
}

/// The organisation as the custodian verified it, on `today`.
pub fn organisation_from(
    o: Option<&pb::Organisation>,
    verified_by: &str,
    today: NaiveDate,
) -> Result<Organisation> {
    let o = o.ok_or_else(|| FieldError("organisation is required".into()))?;
    Ok(Organisation {
        id: organisation_id(&o.id)?,
        name: required("organisation name", &o.name)?,
        kind: organisation_kind_from(o.kind)?,
        callback_number: ident::phone(&required("callback_number", &o.callback_number)?)?,
        site: required("site", &o.site)?,
        verified_on: opt_date("verified_on", &o.verified_on)?.unwrap_or(today),
        verified_by: verified_by.to_owned(),
    })
}

pub fn organisation_to(o: &Organisation) -> pb::Organisation {
    pb::Organisation {
        id: o.id.clone(),
        name: o.name.clone(),
        kind: organisation_kind_to(o.kind),
        callback_number: o.callback_number.clone(),
        site: o.site.clone(),
        verified_on: o.verified_on.to_string(),
        verified_by: o.verified_by.clone(),
    }
}

pub fn release_to(r: &HistoricRelease) -> pb::HistoricRelease {
    pb::HistoricRelease {
        id: r.id.clone(),
        record_id: r.record_id.clone(),
        requesting_authority: r.requesting_authority.clone(),
        requester: r.requester.clone(),
        reason: r.reason.clone(),
        requested_at: time_str(r.requested_at),
        recorded_by: r.recorded_by.clone(),
        status: match r.status {
            ReleaseStatus::Pending => pb::ReleaseStatus::Pending,
            ReleaseStatus::Approved => pb::ReleaseStatus::Approved,
            ReleaseStatus::Refused => pb::ReleaseStatus::Refused,
        }
        .into(),
        decided_at: r.decided_at.map(time_str).unwrap_or_default(),
        decided_by: r.decided_by.clone(),
        decision_note: r.decision_note.clone(),
    }
}

/// A historic release request: every field is needed, the reason above all (seed 004).
pub fn release_request_from(
    r: &pb::HistoricReleaseRequest,
) -> Result<(String, String, String, String)> {
    Ok((
        record_id(&r.record_id)?,
        required("requesting_authority", &r.requesting_authority)?,
        required("requester", &r.requester)?,
        required(
            "reason (why the other authority needs the plans)",
            &r.reason,
        )?,
    ))
}
