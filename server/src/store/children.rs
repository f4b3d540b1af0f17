//! Children's records: each change is a new revision with who, when and which fields changed,
//! written with its audit entry in one transaction. Nothing is overwritten.

use chrono::{DateTime, NaiveDate, Utc};
use redb::{ReadableDatabase, ReadableTable, WriteTransaction};
use sha2::{Digest, Sha256};

use super::{CHILDREN, DOCUMENTS, REVISIONS, Recorder, Store, StoreError, decode, encode};
use crate::import::{ImportRow, merge_row};
use crate::lifecycle::{self, PlanChange, PlanStart};
use crate::record::{ChildDetails, ChildRecord, PlanDocument, PlanEnd, Revision};

/// Which children a listing shows.
#[derive(Debug, Clone, Default)]
pub struct ChildFilter {
    pub with_active_plan: bool,
    pub surname_contains: String,
    pub limit: usize,
}

/// What an import did with one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    Accepted,
    Updated,
    Unchanged,
    Rejected(String),
}

/// Writes a new revision of `record` (already bumped) with its audit entry and its projection.
fn write_revision(
    txn: &WriteTransaction,
    recorder: &mut Recorder,
    record: &ChildRecord,
    action: &str,
    changed: Vec<String>,
) -> Result<(), StoreError> {
    let revision = Revision {
        revision: record.revision,
        at: record.updated_at,
        by: record.updated_by.clone(),
        action: action.to_owned(),
        changed: changed.clone(),
        record: record.clone(),
    };
    let before = read_child(txn, &record.record_id)?;
    super::follow_up::index_home(txn, before.as_ref(), record)?;
    txn.open_table(CHILDREN)?
        .insert(record.record_id.as_str(), encode(record)?.as_slice())?;
    txn.open_table(REVISIONS)?.insert(
        (record.record_id.as_str(), record.revision),
        encode(&revision)?.as_slice(),
    )?;
    recorder.audit.push(
        action,
        &record.record_id,
        serde_json::json!({ "revision": record.revision, "changed": changed }),
    );
    recorder
        .publication
        .child(txn, record, crate::clock::local_date(record.updated_at))
}

fn read_child(txn: &WriteTransaction, record_id: &str) -> Result<Option<ChildRecord>, StoreError> {
    let table = txn.open_table(CHILDREN)?;
    let found = table.get(record_id)?;
    found.map(|v| decode(v.value())).transpose()
}

/// Paths of the fields that differ between two JSON values.
fn changed_paths(
    old: &serde_json::Value,
    new: &serde_json::Value,
    path: &str,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, bv) in b {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match a.get(key) {
                    Some(av) => changed_paths(av, bv, &sub, out),
                    None => out.push(sub),
                }
            }
            for key in a.keys().filter(|k| !b.contains_key(*k)) {
                out.push(if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                });
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (av, bv)) in a.iter().zip(b).enumerate() {
                changed_paths(av, bv, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a != b => out.push(path.to_owned()),
        _ => {}
    }
}

fn diff(old: &ChildRecord, new: &ChildRecord) -> Result<Vec<String>, StoreError> {
    let as_value = |r: &ChildRecord| {
        serde_json::to_value(serde_json::json!({ "details": &r.details, "plans": &r.plans }))
    };
    let mut out = Vec::new();
    changed_paths(&as_value(old)?, &as_value(new)?, "", &mut out);
    Ok(out)
}

impl Store {
    /// Applies `change` to a child's record in one transaction. Returns the record and whether it
    /// changed; a change that leaves the record as it was writes nothing.
    fn change_child<F>(
        &self,
        actor: &str,
        record_id: &str,
        action: &str,
        change: F,
    ) -> Result<(ChildRecord, bool), StoreError>
    where
        F: FnOnce(&mut ChildRecord, NaiveDate, &WriteTransaction) -> Result<(), StoreError>,
    {
        let now = self.clock.now();
        let txn = self.db.begin_write()?;
        let current = read_child(&txn, record_id)?
            .ok_or_else(|| StoreError::NoSuchChild(record_id.to_owned()))?;
        let mut next = current.clone();
        change(&mut next, crate::clock::local_date(now), &txn)?;
        if next.details == current.details && next.plans == current.plans {
            txn.abort()?;
            return Ok((current, false));
        }
        let changed = diff(&current, &next)?;
        next.revision = current.revision + 1;
        next.updated_at = now;
        next.updated_by = actor.to_owned();
        let mut recorder = Recorder::new(actor, now);
        write_revision(&txn, &mut recorder, &next, action, changed)?;
        recorder.commit(self, txn)?;
        Ok((next, true))
    }

    /// Adds a child to the register.
    pub fn create_child(
        &self,
        actor: &str,
        record_id: &str,
        details: ChildDetails,
    ) -> Result<ChildRecord, StoreError> {
        let now = self.clock.now();
        let txn = self.db.begin_write()?;
        if read_child(&txn, record_id)?.is_some() {
            return Err(StoreError::ChildExists(record_id.to_owned()));
        }
        let record = new_record(record_id, details, Vec::new(), now, actor);
        let mut recorder = Recorder::new(actor, now);
        write_revision(
            &txn,
            &mut recorder,
            &record,
            "child.create",
            vec!["details".into()],
        )?;
        recorder.commit(self, txn)?;
        Ok(record)
    }

    /// Replaces a child's details with a new set, as a new revision.
    pub fn update_child(
        &self,
        actor: &str,
        record_id: &str,
        details: ChildDetails,
        expected_revision: Option<u32>,
    ) -> Result<(ChildRecord, bool), StoreError> {
        self.change_child(actor, record_id, "child.update", |record, _, _| {
            if let Some(expected) = expected_revision
                && expected != record.revision
            {
                return Err(StoreError::StaleRevision {
                    record_id: record_id.to_owned(),
                    expected,
                    current: record.revision,
                });
            }
            record.details = details;
            Ok(())
        })
    }

    pub fn get_child(&self, record_id: &str) -> Result<ChildRecord, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(CHILDREN)?;
        let found = table.get(record_id)?;
        match found {
            Some(v) => decode(v.value()),
            None => Err(StoreError::NoSuchChild(record_id.to_owned())),
        }
    }

    /// Children matching the filter, most recently changed first, and how many matched in all.
    pub fn list_children(
        &self,
        filter: &ChildFilter,
    ) -> Result<(Vec<ChildRecord>, u64), StoreError> {
        let txn = self.db.begin_read()?;
        let needle = filter.surname_contains.to_lowercase();
        let mut found = Vec::new();
        for row in txn.open_table(CHILDREN)?.iter()? {
            let (_, v) = row?;
            let record: ChildRecord = decode(v.value())?;
            if filter.with_active_plan && record.active_plan().is_none() {
                continue;
            }
            if !needle.is_empty() && !record.details.surname.to_lowercase().contains(&needle) {
                continue;
            }
            found.push(record);
        }
        let total = found.len() as u64;
        found.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then(a.record_id.cmp(&b.record_id))
        });
        if filter.limit > 0 {
            found.truncate(filter.limit);
        }
        Ok((found, total))
    }

    /// How many children are on the register.
    pub fn count_children(&self) -> Result<u64, StoreError> {
        use redb::ReadableTableMetadata;
        Ok(self.db.begin_read()?.open_table(CHILDREN)?.len()?)
    }

    /// Every revision of a child's record, oldest first.
    pub fn child_history(&self, record_id: &str) -> Result<Vec<Revision>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(REVISIONS)?;
        let revisions = table
            .range((record_id, 0)..=(record_id, u32::MAX))?
            .map(|row| {
                row.map_err(StoreError::from)
                    .and_then(|(_, v)| decode(v.value()))
            })
            .collect::<Result<Vec<Revision>, _>>()?;
        if revisions.is_empty() {
            return Err(StoreError::NoSuchChild(record_id.to_owned()));
        }
        Ok(revisions)
    }

    pub fn start_plan(
        &self,
        actor: &str,
        record_id: &str,
        start: PlanStart,
    ) -> Result<ChildRecord, StoreError> {
        self.change_child(actor, record_id, "plan.start", |record, today, _| {
            let plan = lifecycle::start_plan(record, start, today)?;
            record.plans.push(plan);
            Ok(())
        })
        .map(|(r, _)| r)
    }

    pub fn change_plan(
        &self,
        actor: &str,
        record_id: &str,
        change: PlanChange,
    ) -> Result<(ChildRecord, bool), StoreError> {
        self.change_child(actor, record_id, "plan.change", |record, _, _| {
            let plan = record
                .active_plan_mut()
                .ok_or(lifecycle::RuleError::NoActivePlan)?;
            *plan = lifecycle::change_plan(plan, change)?;
            Ok(())
        })
    }

    pub fn record_review(
        &self,
        actor: &str,
        record_id: &str,
        held_on: NaiveDate,
        next: NaiveDate,
    ) -> Result<(ChildRecord, bool), StoreError> {
        self.change_child(actor, record_id, "plan.review", |record, today, _| {
            let plan = record
                .active_plan_mut()
                .ok_or(lifecycle::RuleError::NoActivePlan)?;
            *plan = lifecycle::record_review(plan, held_on, next, today)?;
            Ok(())
        })
    }

    pub fn end_plan(
        &self,
        actor: &str,
        record_id: &str,
        end: PlanEnd,
    ) -> Result<ChildRecord, StoreError> {
        self.change_child(actor, record_id, "plan.end", |record, today, _| {
            let plan = record
                .active_plan()
                .ok_or(lifecycle::RuleError::NoActivePlan)?;
            let ended = lifecycle::end_plan(record, plan, end, today)?;
            if let Some(last) = record.plans.last_mut() {
                *last = ended;
            }
            Ok(())
        })
        .map(|(r, _)| r)
    }

    /// Keeps a copy of the plan pro forma sent after a core group meeting.
    pub fn add_plan_document(
        &self,
        actor: &str,
        record_id: &str,
        core_group_date: NaiveDate,
        file_name: &str,
        content: &[u8],
    ) -> Result<ChildRecord, StoreError> {
        let sha256 = hex::encode(Sha256::digest(content));
        let now = self.clock.now();
        let (record, _) =
            self.change_child(actor, record_id, "plan.document", |record, _, txn| {
                let plan = record
                    .active_plan_mut()
                    .ok_or(lifecycle::RuleError::NoActivePlan)?;
                plan.documents.push(PlanDocument {
                    core_group_date,
                    received_at: now,
                    sha256: sha256.clone(),
                    size: content.len() as u64,
                    file_name: file_name.to_owned(),
                });
                // Content-addressed, so the same bytes twice are stored once.
                txn.open_table(DOCUMENTS)?
                    .insert(sha256.as_str(), content)?;
                Ok(())
            })?;
        Ok(record)
    }

    /// Applies a batch of import rows in one transaction: each row is accepted, updated,
    /// unchanged or rejected on its own, and a rejected row writes nothing.
    pub fn import_rows(
        &self,
        actor: &str,
        rows: &[ImportRow],
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let now = self.clock.now();
        let today = crate::clock::local_date(now);
        let txn = self.db.begin_write()?;
        let mut recorder = Recorder::new(actor, now);
        let mut outcomes = Vec::with_capacity(rows.len());
        // Rows of one batch may name the same child twice: read our own writes.
        for row in rows {
            let existing = read_child(&txn, &row.record_id)?;
            let merged = match merge_row(row, existing.as_ref(), today) {
                Ok(merged) => merged,
                Err(reason) => {
                    outcomes.push(ImportOutcome::Rejected(reason));
                    continue;
                }
            };
            let outcome = match existing {
                None => {
                    let record =
                        new_record(&row.record_id, merged.details, merged.plans, now, actor);
                    write_revision(
                        &txn,
                        &mut recorder,
                        &record,
                        "import.create",
                        vec!["details".into(), "plans".into()],
                    )?;
                    ImportOutcome::Accepted
                }
                Some(current)
                    if current.details == merged.details && current.plans == merged.plans =>
                {
                    ImportOutcome::Unchanged
                }
                Some(current) => {
                    let mut next = current.clone();
                    next.details = merged.details;
                    next.plans = merged.plans;
                    next.revision += 1;
                    next.updated_at = now;
                    next.updated_by = actor.to_owned();
                    let changed = diff(&current, &next)?;
                    write_revision(&txn, &mut recorder, &next, "import.update", changed)?;
                    ImportOutcome::Updated
                }
            };
            outcomes.push(outcome);
        }
        recorder.commit(self, txn)?;
        Ok(outcomes)
    }
}

fn new_record(
    record_id: &str,
    details: ChildDetails,
    plans: Vec<crate::record::Plan>,
    now: DateTime<Utc>,
    actor: &str,
) -> ChildRecord {
    ChildRecord {
        record_id: record_id.to_owned(),
        revision: 1,
        details,
        plans,
        updated_at: now,
        updated_by: actor.to_owned(),
    }
}
