//! The lookup projection: what of a child's record may leave the primary for the replicas
//! (DESIGN section 4), and for how long. Offences, household adults, parents, professionals and
//! everything else in the record stay at the primary.

use chrono::{Duration, NaiveDate};
use cpreg_proto::pb;
use cpreg_proto::snapshot::{AUTHORITY_KEY, CHILD_PREFIX, ORGANISATION_PREFIX};

use crate::convert;
use crate::record::{ChildRecord, Organisation};

/// Ended plans stay visible to lookups for this long after they end.
pub const ENDED_PLAN_VISIBLE_DAYS: i64 = 365;
/// An unborn child's plan stays visible for this long after the expected delivery date.
pub const UNBORN_VISIBLE_DAYS_AFTER_DUE: i64 = 28;

/// The projection of one child on `today`, and the day it must be looked at again because time
/// alone will change it (an ended plan or a due date ageing out). `None`: not in the projection.
pub fn child(
    record: &ChildRecord,
    today: NaiveDate,
) -> (Option<pb::ProjectedChild>, Option<NaiveDate>) {
    let Some(plan) = record.plans.last() else {
        return (None, None);
    };
    let d = &record.details;
    let mut recheck = None;
    let status = match (&plan.end, &d.unborn) {
        (Some(end), _) => {
            let last_day = end.end_date + Duration::days(ENDED_PLAN_VISIBLE_DAYS);
            if today > last_day {
                return (None, None);
            }
            recheck = Some(last_day + Duration::days(1));
            "ended"
        }
        (None, Some(unborn)) => {
            let last_day =
                unborn.expected_delivery_date + Duration::days(UNBORN_VISIBLE_DAYS_AFTER_DUE);
            if today > last_day {
                return (None, None);
            }
            recheck = Some(last_day + Duration::days(1));
            "unborn"
        }
        (None, None) => "active",
    };
    let end = plan.end.as_ref();
    let projected = pb::ProjectedChild {
        record_id: record.record_id.clone(),
        given_names: d.given_names.clone(),
        surname: d.surname.clone(),
        other_names: d.other_names.clone(),
        date_of_birth: d.date_of_birth.map(|x| x.to_string()).unwrap_or_default(),
        gender: convert::gender_to(d.gender),
        nhs_number: d.nhs_number.clone().unwrap_or_default(),
        address: d.home_address.clone(),
        postcode: d.home_postcode.clone().unwrap_or_default(),
        plan_status: status.into(),
        categories: plan
            .categories
            .iter()
            .map(|c| convert::category_to(*c))
            .collect(),
        plan_start_date: plan.start_date.to_string(),
        plan_end_date: end.map(|e| e.end_date.to_string()).unwrap_or_default(),
        end_reason: end
            .map(|e| convert::end_reason_to(e.reason))
            .unwrap_or_default(),
        unborn: d.unborn.as_ref().map(|u| pb::Unborn {
            expected_delivery_date: u.expected_delivery_date.to_string(),
            mother_given_names: u.mother_given_names.clone(),
            mother_surname: u.mother_surname.clone(),
            mother_date_of_birth: u
                .mother_date_of_birth
                .map(|x| x.to_string())
                .unwrap_or_default(),
            mother_nhs_number: u.mother_nhs_number.clone().unwrap_or_default(),
        }),
        lead_social_worker: plan.lead_social_worker.name.clone(),
        lead_social_worker_phone: plan.lead_social_worker.phone.clone(),
        next_review_date: if end.is_none() {
            plan.next_review_date.to_string()
        } else {
            String::new()
        },
        // Filled in by the store, which holds the enquiries.
        recent_enquiries: Vec::new(),
    };
    (Some(projected), recheck)
}

pub fn child_key(record_id: &str) -> String {
    format!("{CHILD_PREFIX}{record_id}")
}

pub fn organisation_key(id: &str) -> String {
    format!("{ORGANISATION_PREFIX}{id}")
}

pub fn authority_key() -> String {
    AUTHORITY_KEY.to_owned()
}

/// The directory entry as replicas see it (who verified it stays at the primary).
pub fn organisation(org: &Organisation) -> pb::Organisation {
    pb::Organisation {
        verified_by: String::new(),
        ..convert::organisation_to(org)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::*;

    fn record(end: Option<NaiveDate>) -> ChildRecord {
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        ChildRecord {
            record_id: "C1".into(),
            revision: 1,
            details: ChildDetails {
                given_names: "Amelia".into(),
                surname: "Evans".into(),
                date_of_birth: Some(date("2019-04-23")),
                household_adults: vec![Person {
                    full_name: "Dean Price".into(),
                    offences: vec!["assault".into()],
                    ..Default::default()
                }],
                ..Default::default()
            },
            plans: vec![Plan {
                number: 1,
                categories: vec![Category::Neglect],
                start_date: date("2025-01-10"),
                lead_social_worker: Contact {
                    name: "Sam".into(),
                    address: String::new(),
                    phone: "02079460123".into(),
                    email: String::new(),
                },
                team_manager: Contact::default(),
                core_group: vec![],
                next_review_date: date("2025-04-10"),
                reviews: vec![],
                notice_period_days: None,
                end: end.map(|end_date| PlanEnd {
                    reason: EndReason::NoLongerAtRisk,
                    end_date,
                    receiving_authority: String::new(),
                    transfer_in_conference_date: None,
                    looked_after_from: None,
                    letter_date: None,
                    note: String::new(),
                }),
                documents: vec![],
            }],
            updated_at: chrono::DateTime::UNIX_EPOCH,
            updated_by: String::new(),
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn household_adults_and_offences_never_reach_the_projection() {
        let (p, _) = child(&record(None), day("2026-01-01"));
        let bytes = prost::Message::encode_to_vec(&p.expect("projected"));
        assert!(!String::from_utf8_lossy(&bytes).contains("Dean"));
        assert!(!String::from_utf8_lossy(&bytes).contains("assault"));
    }

    #[test]
    fn an_ended_plan_stays_for_365_days_then_leaves() {
        let ended = record(Some(day("2025-06-01")));
        let (p, recheck) = child(&ended, day("2026-06-01"));
        assert_eq!(p.expect("still visible").plan_status, "ended");
        assert_eq!(recheck, Some(day("2026-06-02")));
        assert!(child(&ended, day("2026-06-02")).0.is_none());
    }
}
