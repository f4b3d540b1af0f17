//! Grading one record against a query: what agrees, how much it counts, and whether it is a
//! match, a possible match or not worth showing; and keeping brothers and sisters from being
//! presented as the child asked about.

use chrono::Datelike;
use cpreg_proto::{ident, pb};

use super::evidence::{Comparer, DateEvidence, NameHit, NameParts};
use super::{Asked, Candidate, Confidence, Indexed, Matcher};

impl Matcher {
    /// A brother or sister of the best match (same surname and home) is never a match too,
    /// whatever a weak likeness of names says: only the best one keeps `Match`. Where one at
    /// the same home scores as well as the best (twins given the same details), neither is a
    /// match: only the NHS number can tell them apart.
    pub(super) fn guard_siblings(&self, scored: &mut [(Candidate, u32)]) {
        let Some((first, rest)) = scored.split_first_mut() else {
            return;
        };
        if first.0.confidence != Confidence::Match {
            return;
        }
        let best = &self.records[first.1 as usize];
        let mut tied = false;
        for (candidate, id) in rest {
            let other = &self.records[*id as usize];
            if candidate.confidence != Confidence::Match || !self.same_household(best, other) {
                continue;
            }
            tied |= candidate.score >= first.0.score;
            candidate.confidence = Confidence::Possible;
            candidate
                .reasons
                .push("lives with a better match: may be a brother or sister".into());
        }
        if tied {
            first.0.confidence = Confidence::Possible;
            first.0.reasons.push(
                "another child at the same address fits as well: check the NHS number".into(),
            );
        }
    }

    /// Two records of children at one home with a surname in common who are not one child.
    fn same_household(&self, a: &Indexed, b: &Indexed) -> bool {
        let same_home = !a.postcode.is_empty() && a.postcode == b.postcode;
        let same_family = a.names[0]
            .surname
            .tokens
            .iter()
            .any(|t| b.names.iter().any(|n| n.surname.tokens.contains(t)));
        let same_child = !a.child.nhs_number.is_empty() && a.child.nhs_number == b.child.nhs_number;
        same_home && same_family && !same_child
    }

    /// Scores one record and says how strong it is, or `None` where it should not be shown.
    pub(super) fn grade(
        &self,
        comparer: &Comparer<'_>,
        asked: &Asked<'_>,
        record: &Indexed,
    ) -> Option<Candidate> {
        let (query, given, surname) = (asked.query, &asked.given, &asked.surname);
        let mut reasons = Vec::new();
        let mut score = 0;

        let nhs_match = asked.nhs.is_some() && asked.nhs == record.nhs;
        let nhs_conflict = asked.nhs.is_some() && record.nhs.is_some() && !nhs_match;
        if nhs_match {
            score += 100;
            reasons.push("NHS number exact".to_owned());
        }

        let date = DateEvidence::compare(query.dob, record.dob);
        score += date.score();
        reasons.extend(date.reason());

        // The best-scoring known name, taking given name and surname together.
        let mut best: Option<(Option<NameHit>, Option<NameHit>, bool)> = None;
        let total = |b: &(Option<NameHit>, Option<NameHit>, bool)| {
            (b.0.as_ref().map_or(0, |h| h.score) + b.1.as_ref().map_or(0, |h| h.score))
                .saturating_sub(u32::from(b.2))
        };
        for name in &record.names {
            let here = (
                comparer.given(given, &name.given),
                comparer.surname(surname, &name.surname),
                name.other,
            );
            if best.as_ref().is_none_or(|b| total(&here) > total(b)) {
                best = Some(here);
            }
        }
        let (given_hit, surname_hit, via_other) = best.unwrap_or((None, None, false));

        // An unborn child is known by the mother's details.
        let mut mother_strong = false;
        if let Some(mother) = &query.mother {
            let mother_date = DateEvidence::compare(mother.dob, record.mother_dob);
            let mg = comparer.given(&NameParts::new(&mother.given), &record.mother_given);
            let ms = comparer.surname(&NameParts::new(&mother.surname), &record.mother_surname);
            let unborn = record.child.unborn.as_ref();
            let mother_nhs = mother
                .nhs
                .as_deref()
                .and_then(|n| ident::nhs_number(n).ok());
            if mother_nhs.is_some()
                && unborn.and_then(|u| ident::nhs_number(&u.mother_nhs_number).ok()) == mother_nhs
            {
                score += 100;
                reasons.push("mother's NHS number exact".into());
                mother_strong = true;
            }
            if mother_date.close() {
                score += mother_date.score();
                reasons.extend(mother_date.reason().map(|r| format!("mother's {r}")));
            }
            let names_strong =
                mg.as_ref().is_some_and(|h| h.strong) && ms.as_ref().is_some_and(|h| h.strong);
            for hit in [mg, ms].into_iter().flatten() {
                score += hit.score;
                reasons.push(format!("mother's {}", hit.reason));
            }
            mother_strong |= mother_date == DateEvidence::Exact && names_strong;
        }

        let names_given = !given.is_empty() || !surname.is_empty();
        for hit in [&given_hit, &surname_hit].into_iter().flatten() {
            score += hit.score;
            reasons.push(hit.reason.clone());
        }
        if via_other && (given_hit.is_some() || surname_hit.is_some()) {
            reasons.push("matched on another name the child is known by".into());
        }

        let postcode_match = asked.postcode.as_ref() == Some(&record.postcode);
        if postcode_match {
            score += 8;
            reasons.push("postcode the same".into());
        }
        if let Some(asked) = query.gender {
            let held = record.child.gender();
            let known = |g: pb::Gender| matches!(g, pb::Gender::Male | pb::Gender::Female);
            if known(asked) && known(held) && asked != held {
                score = score.saturating_sub(5);
                reasons.push("recorded with another gender".into());
            }
        }

        let strong = |h: &Option<NameHit>| h.as_ref().is_some_and(|h| h.strong);
        let some = |h: &Option<NameHit>| h.is_some();
        let both_names = some(&given_hit) && some(&surname_hit);
        let one_strong = strong(&given_hit) || strong(&surname_hit);

        // The date of birth with both names: exact with one name strong, or near with both.
        let date_match = (date == DateEvidence::Exact && both_names && one_strong)
            || (date.close() && strong(&given_hit) && strong(&surname_hit));
        let date_possible = (date.close() && both_names)
            || (date == DateEvidence::Exact && strong(&surname_hit) && given.is_empty());
        let confidence = if nhs_match || mother_strong {
            Confidence::Match
        } else if nhs_conflict {
            // Another NHS number: most likely another child, unless all else agrees.
            if !date_match {
                return None;
            }
            reasons.push("but the NHS number differs".into());
            Confidence::Possible
        } else if date_match {
            Confidence::Match
        } else if date_possible {
            Confidence::Possible
        } else if query.dob.is_none() && both_names && one_strong {
            // A search by names alone, narrowed by year of birth or postcode.
            let year_ok = query
                .year_of_birth
                .is_some_and(|y| record.dob.is_some_and(|d| (d.year() - y).abs() <= 1));
            if year_ok {
                reasons.push("year of birth agrees".into());
                score += 10;
            }
            if year_ok || postcode_match {
                Confidence::Possible
            } else {
                return None;
            }
        } else if query.mother.is_some() && score >= 60 && !names_given {
            Confidence::Possible
        } else {
            return None;
        };
        Some(Candidate {
            authority: record.authority.clone(),
            child: record.child.clone(),
            confidence,
            score,
            reasons,
        })
    }
}
