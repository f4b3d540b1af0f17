//! The answer of DESIGN section 5: for each candidate the plan and whom to call, the register's
//! as-of time and staleness, and advice in plain words. "No record found" says what was searched
//! and as of when, and never that the child is safe.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use cpreg_proto::pb;
use cpreg_proto::snapshot::AUTHORITY_KEY;
use prost::Message;

use crate::matching::{Candidate, Confidence};
use crate::store::{Store, StoreError};

/// Where the copies searched stand.
#[derive(Debug, Clone)]
pub struct Freshness {
    /// The oldest as-of time of the authorities searched (None: one holds nothing yet).
    pub as_of: Option<DateTime<Utc>>,
    pub stale: bool,
    pub authorities: Vec<String>,
    /// This replica's site.
    pub site: String,
    /// Each authority's own numbers (office, EDT), as its snapshot carries them.
    /// Shared with the copy held, not copied for each answer.
    pub numbers: Arc<BTreeMap<String, pb::AuthorityInfo>>,
}

impl Freshness {
    /// The numbers of `authority`, or only its id when its copy carries none.
    fn numbers_of(&self, authority: &str) -> pb::AuthorityInfo {
        self.numbers
            .get(authority)
            .cloned()
            .unwrap_or_else(|| pb::AuthorityInfo {
                authority: authority.to_owned(),
                ..Default::default()
            })
    }
}

/// The authority's own numbers, as its snapshot carries them.
pub fn authority_info(store: &Store, authority: &str) -> Result<pb::AuthorityInfo, StoreError> {
    Ok(store
        .get(authority, AUTHORITY_KEY)?
        .and_then(|bytes| pb::AuthorityInfo::decode(bytes.as_slice()).ok())
        .unwrap_or_else(|| pb::AuthorityInfo {
            authority: authority.to_owned(),
            ..Default::default()
        }))
}

fn plan_status(child: &pb::ProjectedChild) -> String {
    match child.plan_status.as_str() {
        "ended" => format!("ended on {}", child.plan_end_date),
        other => other.to_owned(),
    }
}

fn display_name(child: &pb::ProjectedChild) -> String {
    match (&child.unborn, child.given_names.trim().is_empty()) {
        (Some(u), true) => format!(
            "Unborn child of {} {}",
            u.mother_given_names, u.mother_surname
        ),
        _ => format!("{} {}", child.given_names, child.surname)
            .trim()
            .to_owned(),
    }
}

/// How far back "recently" reaches for repeated enquiries (repeated attendance is a warning sign).
pub const RECENT_DAYS: i64 = 30;

/// Enquiries about the child since `since`, and from how many sites: those every site reported
/// to the primary (in the snapshot), and this site's own not yet in it.
fn recent(
    store: &Store,
    site: &str,
    c: &Candidate,
    since: DateTime<Utc>,
) -> Result<(u32, u32), StoreError> {
    let mut seen: std::collections::BTreeMap<String, String> = c
        .child
        .recent_enquiries
        .iter()
        .filter(|e| {
            DateTime::parse_from_rfc3339(&e.at).is_ok_and(|at| at.with_timezone(&Utc) >= since)
        })
        .map(|e| (e.reference.clone(), e.site.clone()))
        .collect();
    for reference in store.recent_enquiries(&c.authority, &c.child.record_id, since)? {
        seen.entry(reference).or_insert_with(|| site.to_owned());
    }
    let sites: std::collections::BTreeSet<&String> = seen.values().collect();
    Ok((seen.len() as u32, sites.len() as u32))
}

fn candidate(
    store: &Store,
    freshness: &Freshness,
    c: &Candidate,
    recent_since: DateTime<Utc>,
) -> Result<pb::Candidate, StoreError> {
    let info = freshness.numbers_of(&c.authority);
    let (recent_enquiries, recent_sites) = recent(store, &freshness.site, c, recent_since)?;
    Ok(pb::Candidate {
        record_id: c.child.record_id.clone(),
        authority: c.authority.clone(),
        name: display_name(&c.child),
        date_of_birth: c.child.date_of_birth.clone(),
        plan_status: plan_status(&c.child),
        categories: c.child.categories.clone(),
        plan_start_date: c.child.plan_start_date.clone(),
        lead_social_worker: c.child.lead_social_worker.clone(),
        lead_social_worker_phone: c.child.lead_social_worker_phone.clone(),
        authority_name: info.name,
        office_phone: info.office_phone,
        edt_phone: info.edt_phone,
        recent_enquiries,
        recent_sites,
        confidence: match c.confidence {
            Confidence::Match => pb::Confidence::Match,
            Confidence::Possible => pb::Confidence::Possible,
        }
        .into(),
        reasons: c.reasons.clone(),
    })
}

/// Builds the answer to `searched` from the matcher's candidates.
pub fn build(
    store: &Store,
    reference: &str,
    searched: &str,
    candidates: &[Candidate],
    freshness: &Freshness,
    now: DateTime<Utc>,
) -> Result<pb::LookupAnswer, StoreError> {
    let recent_since = now - chrono::Duration::days(RECENT_DAYS);
    let candidates = candidates
        .iter()
        .map(|c| candidate(store, freshness, c, recent_since))
        .collect::<Result<Vec<_>, _>>()?;
    let outcome = if candidates
        .iter()
        .any(|c| c.confidence == i32::from(pb::Confidence::Match))
    {
        pb::LookupOutcome::Match
    } else if candidates.is_empty() {
        pb::LookupOutcome::NoRecord
    } else {
        pb::LookupOutcome::Possible
    };
    let as_of = freshness
        .as_of
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let as_of_words = freshness
        .as_of
        .map(|t| t.format("%H:%M on %d %B %Y (UTC)").to_string())
        .unwrap_or_else(|| "(no copy received yet)".to_owned());
    let edt: Vec<String> = freshness
        .authorities
        .iter()
        .map(|a| freshness.numbers_of(a))
        .filter(|i| !i.edt_phone.is_empty())
        .map(|i| {
            format!(
                "{} EDT {}",
                if i.name.is_empty() {
                    &i.authority
                } else {
                    &i.name
                },
                i.edt_phone
            )
        })
        .collect();
    let mut advice = String::new();
    if freshness.stale {
        advice += &format!(
            "Warning: the register copy here was last confirmed at {as_of_words} and may be out of date: confirm with the local authority's Emergency Duty Team ({}). ",
            edt.join("; ")
        );
    }
    advice += &match outcome {
        pb::LookupOutcome::Match => {
            let first = &candidates[0];
            format!(
                "{} has a Child Protection Plan ({}) with {}. Call the lead social worker {} on {}; out of hours call the Emergency Duty Team on {}. This enquiry is recorded and the lead social worker will be told of it.",
                first.name,
                first.plan_status,
                if first.authority_name.is_empty() {
                    &first.authority
                } else {
                    &first.authority_name
                },
                first.lead_social_worker,
                first.lead_social_worker_phone,
                first.edt_phone
            ) + &if first.recent_enquiries > 0 {
                format!(
                    " This child has been asked about {} time(s) in the last {RECENT_DAYS} days, from {} site(s): repeated attendance is a warning sign.",
                    first.recent_enquiries, first.recent_sites
                )
            } else {
                String::new()
            }
        }
        pb::LookupOutcome::Possible => format!(
            "{} record(s) may be this child but none matches for certain: check the details (date of birth, address, other names) before acting, and if in doubt call the Emergency Duty Team ({}). This enquiry is recorded.",
            candidates.len(),
            edt.join("; ")
        ),
        _ => format!(
            "No record found for {searched} in the registers of {} as of {as_of_words}. This does not mean the child is safe: if you suspect the child is suffering or likely to suffer significant harm, follow your safeguarding procedure and contact children's social care or the Emergency Duty Team ({}). This enquiry is recorded.",
            freshness.authorities.join(", "),
            edt.join("; ")
        ),
    };
    Ok(pb::LookupAnswer {
        enquiry_reference: reference.to_owned(),
        outcome: outcome.into(),
        candidates,
        as_of,
        stale: freshness.stale,
        advice,
        searched: searched.to_owned(),
    })
}
