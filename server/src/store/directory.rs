//! The organisation directory and requests from other authorities for historic plans.

use redb::{ReadableDatabase, ReadableTable};

use super::{
    CHILDREN, ORGANISATIONS, RELEASES, Recorder, Store, StoreError, decode, decode_all, encode,
};
use crate::record::{ChildRecord, HistoricRelease, Organisation, Plan, ReleaseStatus};

impl Store {
    /// Adds or replaces an organisation. Returns whether anything changed.
    pub fn put_organisation(
        &self,
        actor: &str,
        org: Organisation,
    ) -> Result<(Organisation, bool), StoreError> {
        let now = self.clock.now();
        let txn = self.db.begin_write()?;
        let existing: Option<Organisation> = {
            let mut table = txn.open_table(ORGANISATIONS)?;
            let existing = table
                .get(org.id.as_str())?
                .map(|v| decode(v.value()))
                .transpose()?;
            if existing.as_ref() != Some(&org) {
                table.insert(org.id.as_str(), encode(&org)?.as_slice())?;
            }
            existing
        };
        if existing.as_ref() == Some(&org) {
            txn.abort()?;
            return Ok((org, false));
        }
        let mut recorder = Recorder::new(actor, now);
        let action = if existing.is_some() {
            "organisation.update"
        } else {
            "organisation.add"
        };
        recorder
            .audit
            .push(action, &org.id, serde_json::to_value(&org)?);
        recorder.publication.organisation(&org.id, Some(&org));
        recorder.commit(self, txn)?;
        Ok((org, true))
    }

    pub fn remove_organisation(&self, actor: &str, id: &str) -> Result<Organisation, StoreError> {
        let now = self.clock.now();
        let txn = self.db.begin_write()?;
        let removed: Organisation = {
            let mut table = txn.open_table(ORGANISATIONS)?;
            let removed = table.remove(id)?;
            match removed {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::NoSuchOrganisation(id.to_owned())),
            }
        };
        let mut recorder = Recorder::new(actor, now);
        recorder
            .audit
            .push("organisation.remove", id, serde_json::to_value(&removed)?);
        recorder.publication.organisation(id, None);
        recorder.commit(self, txn)?;
        Ok(removed)
    }

    pub fn list_organisations(&self) -> Result<Vec<Organisation>, StoreError> {
        let txn = self.db.begin_read()?;
        decode_all(&txn.open_table(ORGANISATIONS)?)
    }

    /// Records another authority's request for a child's historic plans, pending the
    /// custodian's decision.
    pub fn request_historic_release(
        &self,
        actor: &str,
        record_id: &str,
        requesting_authority: &str,
        requester: &str,
        reason: &str,
    ) -> Result<HistoricRelease, StoreError> {
        let now = self.clock.now();
        let txn = self.db.begin_write()?;
        if txn.open_table(CHILDREN)?.get(record_id)?.is_none() {
            return Err(StoreError::NoSuchChild(record_id.to_owned()));
        }
        let release = {
            let mut table = txn.open_table(RELEASES)?;
            let number = table.last()?.map_or(0, |(k, _)| {
                k.value()
                    .trim_start_matches("HR-")
                    .parse::<u64>()
                    .unwrap_or(0)
            }) + 1;
            let release = HistoricRelease {
                id: format!("HR-{number:06}"),
                record_id: record_id.to_owned(),
                requesting_authority: requesting_authority.to_owned(),
                requester: requester.to_owned(),
                reason: reason.to_owned(),
                requested_at: now,
                recorded_by: actor.to_owned(),
                status: ReleaseStatus::Pending,
                decided_at: None,
                decided_by: String::new(),
                decision_note: String::new(),
            };
            table.insert(release.id.as_str(), encode(&release)?.as_slice())?;
            release
        };
        let mut recorder = Recorder::new(actor, now);
        recorder.audit.push(
            "historic.request",
            &release.id,
            serde_json::to_value(&release)?,
        );
        recorder.commit(self, txn)?;
        Ok(release)
    }

    /// The custodian approves or refuses a request; a decision is final.
    pub fn decide_historic_release(
        &self,
        actor: &str,
        id: &str,
        approve: bool,
        note: &str,
    ) -> Result<HistoricRelease, StoreError> {
        let now = self.clock.now();
        let txn = self.db.begin_write()?;
        let release = {
            let mut table = txn.open_table(RELEASES)?;
            let found: Option<HistoricRelease> =
                table.get(id)?.map(|v| decode(v.value())).transpose()?;
            let mut release = found.ok_or_else(|| StoreError::NoSuchRelease(id.to_owned()))?;
            if release.status != ReleaseStatus::Pending {
                return Err(StoreError::AlreadyDecided(id.to_owned()));
            }
            release.status = if approve {
                ReleaseStatus::Approved
            } else {
                ReleaseStatus::Refused
            };
            release.decided_at = Some(now);
            release.decided_by = actor.to_owned();
            release.decision_note = note.to_owned();
            table.insert(id, encode(&release)?.as_slice())?;
            release
        };
        let mut recorder = Recorder::new(actor, now);
        recorder.audit.push(
            if approve {
                "historic.approve"
            } else {
                "historic.refuse"
            },
            id,
            serde_json::json!({ "record_id": release.record_id, "note": note }),
        );
        recorder.commit(self, txn)?;
        Ok(release)
    }

    pub fn list_historic_releases(&self) -> Result<Vec<HistoricRelease>, StoreError> {
        let txn = self.db.begin_read()?;
        decode_all(&txn.open_table(RELEASES)?)
    }

    /// The ended plans of an approved request. Each release is itself audited.
    pub fn release_historic_plans(
        &self,
        actor: &str,
        id: &str,
    ) -> Result<(HistoricRelease, ChildRecord, Vec<Plan>), StoreError> {
        let now = self.clock.now();
        let txn = self.db.begin_write()?;
        let release: HistoricRelease = {
            let table = txn.open_table(RELEASES)?;
            let found = table.get(id)?;
            match found {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::NoSuchRelease(id.to_owned())),
            }
        };
        let status = match release.status {
            ReleaseStatus::Approved => None,
            ReleaseStatus::Pending => Some("pending"),
            ReleaseStatus::Refused => Some("refused"),
        };
        if let Some(status) = status {
            return Err(StoreError::NotApproved {
                id: id.to_owned(),
                status,
            });
        }
        let child: ChildRecord = {
            let table = txn.open_table(CHILDREN)?;
            let found = table.get(release.record_id.as_str())?;
            match found {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::NoSuchChild(release.record_id.clone())),
            }
        };
        let ended: Vec<Plan> = child
            .plans
            .iter()
            .filter(|p| !p.is_active())
            .cloned()
            .collect();
        let mut recorder = Recorder::new(actor, now);
        recorder.audit.push(
            "historic.release",
            id,
            serde_json::json!({ "record_id": child.record_id, "plans": ended.len(), "to": release.requesting_authority }),
        );
        recorder.commit(self, txn)?;
        Ok((release, child, ended))
    }
}
