//! What the primary does with an enquiry once a replica has reported it (DESIGN section 6 and
//! the procedure of seed 004), in the transaction that records the enquiry:
//! - about a child with a plan: the lead social worker is told who asked, from where and why;
//! - about a child without a plan (known to the register or not): a Contact is recorded with
//!   the advice the enquirer was given, for children's social care to screen; the second
//!   separate enquiry about the same child raises one alert (a Child in Need or Section 47
//!   decision may be due);
//! - about a child living at the home of a child with a plan: that child's lead social worker
//!   is told too;
//! - refused, or part of a run that looks like someone listing the register: an alert for the
//!   custodian.
//!
//! Every Contact and alert is an audit entry; every message goes through the notification
//! outbox ([`super::notifications`]), so it is sent once the transaction has committed.

use chrono::{DateTime, Utc};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::notifications::{Notification, queue_notification};
use super::{CHILDREN, Recorder, Store, StoreError, decode, decode_all, encode};
use crate::record::ChildRecord;

/// Contacts by enquiry reference.
pub(super) const CONTACTS: TableDefinition<&str, &[u8]> = TableDefinition::new("contacts");
/// The first enquiry about each child without a plan: subject key to enquiry reference.
pub(super) const SUBJECTS: TableDefinition<&str, &str> = TableDefinition::new("contact_subjects");
/// Alerts by id.
pub(super) const ALERTS: TableDefinition<&str, &[u8]> = TableDefinition::new("alerts");
/// Answered enquiries by the child they found: (record id, reference) to (unix time, site).
pub(super) const SEEN: TableDefinition<(&str, &str), (i64, &str)> =
    TableDefinition::new("enquiries_seen");
/// How far back the enquiries published with a child reach.
pub const RECENT_DAYS: i64 = 30;
/// Children by home: (home key, record id). Kept by every write of a child's record.
pub(super) const HOMES: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("children_by_home");

/// A Contact: an enquiry about a child without a plan, for children's social care to screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRecord {
    /// The enquiry's reference.
    pub reference: String,
    pub at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub site: String,
    /// Who asked, in words ("Dr A Patel (ED registrar), St Elsewhere ED").
    pub enquirer: String,
    pub reason: String,
    /// What was searched, in words.
    pub searched: String,
    /// The record found without an active plan, if any.
    pub record_id: Option<String>,
    /// The advice the enquirer was given.
    pub advice: String,
    /// Which child this is about, for spotting a second enquiry.
    pub subject: String,
}

/// Something a person must look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    /// "second-enquiry" (children's social care), "refused" or "enumeration" (the custodian).
    pub kind: String,
    pub raised_at: DateTime<Utc>,
    /// The enquiries that raised it.
    pub references: Vec<String>,
    pub message: String,
    #[serde(default)]
    pub acknowledged: Option<Acknowledgement>,
}

/// Who saw an alert, when, and what they did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub by: String,
    pub at: DateTime<Utc>,
    pub note: String,
}

/// Which alerts a listing shows.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub kind: Option<String>,
    pub unacknowledged: bool,
    pub limit: usize,
}

/// The replica's record of an enquiry, as much of it as the follow-up reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Reported {
    at: Option<DateTime<Utc>>,
    reason: String,
    searched: Searched,
    path: serde_json::Value,
    state: serde_json::Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Searched {
    given_names: String,
    surname: String,
    date_of_birth: String,
    nhs_number: String,
    postcode: String,
    mother_given_names: String,
    mother_surname: String,
}

impl Searched {
    fn words(&self) -> String {
        let mut parts = Vec::new();
        let name = format!("{} {}", self.given_names.trim(), self.surname.trim());
        if !name.trim().is_empty() {
            parts.push(name.trim().to_owned());
        }
        if !self.date_of_birth.is_empty() {
            parts.push(format!("born {}", self.date_of_birth));
        }
        if !self.nhs_number.is_empty() {
            parts.push(format!("NHS number {}", self.nhs_number));
        }
        if !self.postcode.is_empty() {
            parts.push(format!("postcode {}", self.postcode));
        }
        if !self.mother_surname.is_empty() {
            parts.push(format!(
                "unborn child of {} {}",
                self.mother_given_names.trim(),
                self.mother_surname.trim()
            ));
        }
        parts.join(", ")
    }

    /// The child asked about, where the register holds no record: normalised names and date.
    fn subject(&self) -> String {
        let n = cpreg_proto::names::normalise;
        if !self.nhs_number.trim().is_empty() {
            return format!("nhs:{}", self.nhs_number.replace(' ', ""));
        }
        format!(
            "asked:{}|{}|{}|{}",
            n(&self.given_names),
            n(&self.surname),
            self.date_of_birth.trim(),
            n(&format!(
                "{} {}",
                self.mother_given_names, self.mother_surname
            ))
        )
    }
}

impl Reported {
    fn read(record: &serde_json::Value) -> Reported {
        serde_json::from_value(record.clone()).unwrap_or_default()
    }

    fn enquirer(&self) -> String {
        let p = &self.path;
        let s = |k: &str| p[k].as_str().unwrap_or_default().trim().to_owned();
        match p["path"].as_str() {
            Some("terminal") => format!(
                "{} ({}), terminal {} of {}",
                s("operator"),
                s("operator_role"),
                s("terminal"),
                s("organisation")
            ),
            Some("callback") => format!(
                "{} ({}) of {}, by telephone, verified by call-back to {} by {}",
                s("enquirer"),
                s("enquirer_role"),
                s("organisation_id"),
                s("callback_number"),
                s("duty_worker")
            ),
            _ => "unknown enquirer".into(),
        }
    }

    fn outcome(&self) -> String {
        self.state["outcome"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn advice(&self) -> String {
        self.state["advice"].as_str().unwrap_or_default().to_owned()
    }
}

/// A home, as the key children at it share: postcode and first line of address, normalised.
pub(super) fn home_key(record: &ChildRecord) -> Option<String> {
    let d = &record.details;
    let (address, postcode) = if d.current_address.trim().is_empty() {
        (&d.home_address, &d.home_postcode)
    } else {
        (&d.current_address, &d.current_postcode)
    };
    let postcode = postcode.as_deref()?.replace(' ', "").to_ascii_uppercase();
    let first_line = address.split([',', '\n']).next().unwrap_or_default();
    let first_line = cpreg_proto::names::normalise(first_line);
    (!postcode.is_empty() && !first_line.is_empty()).then(|| format!("{postcode}|{first_line}"))
}

/// Moves `record`'s entry in the homes index from `before`'s home to its own.
pub(super) fn index_home(
    txn: &WriteTransaction,
    before: Option<&ChildRecord>,
    record: &ChildRecord,
) -> Result<(), StoreError> {
    let (old, new) = (before.and_then(home_key), home_key(record));
    if old == new {
        return Ok(());
    }
    let mut homes = txn.open_table(HOMES)?;
    if let Some(old) = old {
        homes.remove((old.as_str(), record.record_id.as_str()))?;
    }
    if let Some(new) = new {
        homes.insert((new.as_str(), record.record_id.as_str()), ())?;
    }
    Ok(())
}

/// The enquiries about `record_id` in the [`RECENT_DAYS`] before `today`, for its projection.
pub(super) fn recently_seen(
    txn: &WriteTransaction,
    record_id: &str,
    today: chrono::NaiveDate,
) -> Result<Vec<cpreg_proto::pb::EnquirySeen>, StoreError> {
    let since = (today - chrono::Duration::days(RECENT_DAYS))
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp();
    let seen = txn.open_table(SEEN)?;
    let mut out = Vec::new();
    for row in seen.range((record_id, "")..=(record_id, "\u{10ffff}"))? {
        let (key, value) = row?;
        let (at, site) = value.value();
        if at >= since {
            out.push(cpreg_proto::pb::EnquirySeen {
                reference: key.value().1.to_owned(),
                at: DateTime::from_timestamp(at, 0)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                site: site.to_owned(),
            });
        }
    }
    Ok(out)
}

/// A notification id made of safe characters only.
fn note_id(parts: &[&str]) -> String {
    let id: String = parts
        .join(":")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:/".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    id.chars().take(200).collect()
}

/// What a lead social worker is told, in words.
fn told(report: &Reported, reference: &str, site: &str, about: &str) -> String {
    format!(
        "An enquiry was made about {about}.\n\n\
         When: {at}\nEnquirer: {enquirer}\nSite: {site}\nReason given: {reason}\n\
         Outcome: {outcome}\nAdvice given: {advice}\nEnquiry reference: {reference}\n",
        at = report
            .at
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default(),
        enquirer = report.enquirer(),
        reason = report.reason,
        outcome = report.outcome(),
        advice = report.advice(),
    )
}

fn child_words(record: &ChildRecord) -> String {
    let d = &record.details;
    let born = d
        .date_of_birth
        .map(|b| format!(", born {b}"))
        .unwrap_or_default();
    format!(
        "{} {}{born} (record {})",
        d.given_names, d.surname, record.record_id
    )
}

/// One enquiry being followed up, inside the transaction that records it.
pub(super) struct FollowUp<'a> {
    pub txn: &'a WriteTransaction,
    pub recorder: &'a mut Recorder,
    pub now: DateTime<Utc>,
    pub authority: &'a str,
    /// Whether anything was queued for delivery.
    pub queued: bool,
}

impl FollowUp<'_> {
    fn queue(&mut self, notification: Notification) -> Result<(), StoreError> {
        self.queued |= queue_notification(self.txn, &notification)?;
        Ok(())
    }

    fn child(&self, record_id: &str) -> Result<Option<ChildRecord>, StoreError> {
        let table = self.txn.open_table(CHILDREN)?;
        let found = table.get(record_id)?;
        found.map(|v| decode(v.value())).transpose()
    }

    fn raise(&mut self, alert: Alert) -> Result<bool, StoreError> {
        let mut alerts = self.txn.open_table(ALERTS)?;
        if alerts.get(alert.id.as_str())?.is_some() {
            return Ok(false);
        }
        alerts.insert(alert.id.as_str(), encode(&alert)?.as_slice())?;
        drop(alerts);
        self.recorder.audit.push(
            "alert.raised",
            &alert.id,
            serde_json::json!({ "kind": alert.kind, "references": alert.references }),
        );
        let mut note = Notification::new(
            note_id(&["alert", &alert.id]),
            format!("alert.{}", alert.kind),
            self.now,
            format!("cpreg alert: {}", alert.kind.replace('-', " ")),
            format!(
                "{}\n\nEnquiries: {}\n",
                alert.message,
                alert.references.join(", ")
            ),
        );
        note.payload = serde_json::to_value(&alert)?;
        self.queue(note)?;
        Ok(true)
    }

    /// Acts on a reported enquiry that is new, or has just changed to `state`.
    pub fn act(
        &mut self,
        received: &super::ReceivedEnquiry,
        alert: Option<&str>,
        first_time_in_state: bool,
    ) -> Result<(), StoreError> {
        let (reference, site, state) = (
            received.reference.as_str(),
            received.site.as_str(),
            received.state.as_str(),
        );
        let children = received.children.as_slice();
        let report = Reported::read(&received.record);
        if let Some(alert) = alert {
            self.raise(Alert {
                id: format!("enumeration:{reference}"),
                kind: "enumeration".into(),
                raised_at: self.now,
                references: vec![reference.to_owned()],
                message: format!(
                    "Lookups at site {site} look like someone listing the register: {alert}. \
                     Enquirer: {}.",
                    report.enquirer()
                ),
                acknowledged: None,
            })?;
        }
        if !first_time_in_state {
            return Ok(());
        }
        match state {
            "refused" => {
                self.raise(Alert {
                    id: format!("refused:{reference}"),
                    kind: "refused".into(),
                    raised_at: self.now,
                    references: vec![reference.to_owned()],
                    message: format!(
                        "A lookup at site {site} was refused: {}. Enquirer: {}. Searched: {}.",
                        report.state["why"].as_str().unwrap_or_default(),
                        report.enquirer(),
                        report.searched.words()
                    ),
                    acknowledged: None,
                })?;
            }
            "answered" => self.answered(reference, site, children, &report)?,
            _ => {}
        }
        Ok(())
    }

    fn answered(
        &mut self,
        reference: &str,
        site: &str,
        children: &[String],
        report: &Reported,
    ) -> Result<(), StoreError> {
        let own: Vec<&str> = children
            .iter()
            .filter_map(|c| c.split_once('/'))
            .filter(|(authority, _)| *authority == self.authority)
            .map(|(_, id)| id)
            .collect();
        let mut found = Vec::new();
        for id in own {
            if let Some(child) = self.child(id)? {
                found.push(child);
            }
        }
        for child in &found {
            // Seen: published with the child, so every site's answer counts it.
            let at = report.at.unwrap_or(self.now);
            self.txn.open_table(SEEN)?.insert(
                (child.record_id.as_str(), reference),
                (at.timestamp(), site),
            )?;
            self.recorder
                .publication
                .child(self.txn, child, crate::clock::local_date(self.now))?;
            if let Some(plan) = child.active_plan() {
                let lsw = &plan.lead_social_worker;
                let mut note = Notification::new(
                    note_id(&["enquiry", reference, "lsw", &child.record_id]),
                    "enquiry.lead_social_worker",
                    self.now,
                    format!("Enquiry about {} (cpreg {reference})", child_words(child)),
                    format!(
                        "Dear {},\n\n{}",
                        lsw.name,
                        told(report, reference, site, &child_words(child))
                    ),
                );
                note.to = (!lsw.email.is_empty())
                    .then(|| lsw.email.clone())
                    .into_iter()
                    .collect();
                note.payload = serde_json::json!({
                    "reference": reference, "record_id": child.record_id, "site": site,
                    "enquirer": report.enquirer(), "reason": report.reason,
                    "outcome": report.outcome(), "at": report.at,
                });
                self.queue(note)?;
            } else {
                self.contact(
                    reference,
                    site,
                    report,
                    Some(child),
                    format!("record:{}", child.record_id),
                )?;
            }
        }
        if found.is_empty() {
            self.contact(reference, site, report, None, report.searched.subject())?;
        }
        for child in &found {
            if let Some(home) = home_key(child) {
                self.same_home(reference, site, report, &home, child)?;
            }
        }
        Ok(())
    }

    /// Tells the lead social worker of every other child with a plan at `home`.
    fn same_home(
        &mut self,
        reference: &str,
        site: &str,
        report: &Reported,
        home: &str,
        asked: &ChildRecord,
    ) -> Result<(), StoreError> {
        let asked_about = asked.record_id.as_str();
        let ids: Vec<String> = {
            let homes = self.txn.open_table(HOMES)?;
            let mut ids = Vec::new();
            for row in homes.range((home, "")..=(home, "\u{10ffff}"))? {
                ids.push(row?.0.value().1.to_owned());
            }
            ids
        };
        let about = child_words(asked);
        for id in ids.iter().filter(|id| *id != asked_about) {
            let Some(other) = self.child(id)? else {
                continue;
            };
            let Some(plan) = other.active_plan() else {
                continue;
            };
            let lsw = &plan.lead_social_worker;
            let mut note = Notification::new(
                note_id(&["enquiry", reference, "same-home", id]),
                "enquiry.same_address",
                self.now,
                format!(
                    "Enquiry about a child at the home of {} (cpreg {reference})",
                    child_words(&other)
                ),
                format!(
                    "Dear {},\n\n{} lives at the same address as {}, who has a plan with you.\n\n{}",
                    lsw.name,
                    about,
                    child_words(&other),
                    told(report, reference, site, &about)
                ),
            );
            note.to = (!lsw.email.is_empty())
                .then(|| lsw.email.clone())
                .into_iter()
                .collect();
            note.payload = serde_json::json!({
                "reference": reference, "record_id": id, "asked_about": asked_about, "site": site,
            });
            self.queue(note)?;
            self.recorder.audit.push(
                "enquiry.same_address",
                reference,
                serde_json::json!({ "asked_about": asked_about, "told_about": id }),
            );
        }
        Ok(())
    }

    /// Records a Contact; a second separate enquiry about the same child raises one alert.
    fn contact(
        &mut self,
        reference: &str,
        site: &str,
        report: &Reported,
        child: Option<&ChildRecord>,
        subject: String,
    ) -> Result<(), StoreError> {
        let contact = ContactRecord {
            reference: reference.to_owned(),
            at: report.at.unwrap_or(self.now),
            recorded_at: self.now,
            site: site.to_owned(),
            enquirer: report.enquirer(),
            reason: report.reason.clone(),
            searched: report.searched.words(),
            record_id: child.map(|c| c.record_id.clone()),
            advice: report.advice(),
            subject: subject.clone(),
        };
        self.txn
            .open_table(CONTACTS)?
            .insert(reference, encode(&contact)?.as_slice())?;
        self.recorder.audit.push(
            "contact.recorded",
            reference,
            serde_json::json!({ "site": site, "record_id": contact.record_id, "subject": subject }),
        );
        let about = child
            .map(child_words)
            .unwrap_or_else(|| contact.searched.clone());
        let mut note = Notification::new(
            note_id(&["contact", reference]),
            "contact.created",
            self.now,
            format!("Contact: enquiry about {about}, who has no plan (cpreg {reference})"),
            format!(
                "A Contact was recorded for screening: the child has no Child Protection Plan.\n\n{}",
                told(report, reference, site, &about)
            ),
        );
        note.payload = serde_json::to_value(&contact)?;
        self.queue(note)?;

        let first = {
            let mut subjects = self.txn.open_table(SUBJECTS)?;
            let first = subjects
                .get(subject.as_str())?
                .map(|v| v.value().to_owned());
            if first.is_none() {
                subjects.insert(subject.as_str(), reference)?;
            }
            first
        };
        if let Some(first) = first.filter(|f| f != reference) {
            self.raise(Alert {
                id: note_id(&["second-enquiry", &subject]),
                kind: "second-enquiry".into(),
                raised_at: self.now,
                references: vec![first, reference.to_owned()],
                message: format!(
                    "A second separate enquiry about {about}, who has no Child Protection Plan. \
                     Children's social care should consider whether the child is a Child in \
                     Need or whether a Section 47 enquiry is needed."
                ),
                acknowledged: None,
            })?;
        }
        Ok(())
    }
}

impl Store {
    /// Contacts, newest first; only those about `record_id` when given; 0 is no limit.
    pub fn contacts(
        &self,
        record_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ContactRecord>, StoreError> {
        let txn = self.db.begin_read()?;
        let mut all: Vec<ContactRecord> = decode_all(&txn.open_table(CONTACTS)?)?;
        if let Some(id) = record_id {
            all.retain(|c| c.record_id.as_deref() == Some(id));
        }
        all.sort_by(|a, b| b.at.cmp(&a.at).then(b.reference.cmp(&a.reference)));
        if limit > 0 {
            all.truncate(limit);
        }
        Ok(all)
    }

    /// Alerts, newest first.
    pub fn alerts(&self, filter: &AlertFilter) -> Result<Vec<Alert>, StoreError> {
        let txn = self.db.begin_read()?;
        let mut all: Vec<Alert> = decode_all(&txn.open_table(ALERTS)?)?;
        all.retain(|a| {
            filter.kind.as_deref().is_none_or(|k| a.kind == k)
                && (!filter.unacknowledged || a.acknowledged.is_none())
        });
        all.sort_by(|a, b| b.raised_at.cmp(&a.raised_at).then(b.id.cmp(&a.id)));
        if filter.limit > 0 {
            all.truncate(filter.limit);
        }
        Ok(all)
    }

    /// Records that `actor` has seen alert `id` and what they did; an audit entry.
    pub fn acknowledge_alert(
        &self,
        actor: &str,
        id: &str,
        note: &str,
    ) -> Result<Alert, StoreError> {
        let now = self.clock.now();
        let txn = self.db.begin_write()?;
        let mut recorder = Recorder::new(actor, now);
        let alert = {
            let mut alerts = txn.open_table(ALERTS)?;
            let mut alert: Alert = match alerts.get(id)? {
                Some(v) => decode(v.value())?,
                None => {
                    return Err(StoreError::Invalid(format!(
                        "no alert with id {id:?}: list them with `cpreg admin alerts`"
                    )));
                }
            };
            if let Some(done) = &alert.acknowledged {
                return Err(StoreError::Invalid(format!(
                    "alert {id} was acknowledged by {} at {}",
                    done.by, done.at
                )));
            }
            alert.acknowledged = Some(Acknowledgement {
                by: actor.to_owned(),
                at: now,
                note: note.trim().to_owned(),
            });
            alerts.insert(id, encode(&alert)?.as_slice())?;
            alert
        };
        recorder.audit.push(
            "alert.acknowledged",
            id,
            serde_json::json!({ "note": note.trim() }),
        );
        recorder.commit(self, txn)?;
        Ok(alert)
    }

    /// Removes Contacts recorded before `before` (the retention the authority set), with an
    /// audit entry saying how many; returns how many went.
    pub fn purge_contacts(&self, before: DateTime<Utc>) -> Result<usize, StoreError> {
        let txn = self.db.begin_write()?;
        let mut recorder = Recorder::new("retention", self.clock.now());
        let removed = {
            let mut contacts = txn.open_table(CONTACTS)?;
            let old: Vec<String> = decode_all::<_, ContactRecord>(&contacts)?
                .into_iter()
                .filter(|c| c.recorded_at < before)
                .map(|c| c.reference)
                .collect();
            for reference in &old {
                contacts.remove(reference.as_str())?;
            }
            old.len()
        };
        if removed > 0 {
            recorder.audit.push(
                "contacts.purged",
                "contacts",
                serde_json::json!({ "removed": removed, "recorded_before": before }),
            );
        }
        recorder.commit(self, txn)?;
        Ok(removed)
    }
}
