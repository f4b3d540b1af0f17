//! Finding the child asked about among the projected records of every trusted authority,
//! despite typos, nicknames, other spellings, other known names and muddled dates, without ever
//! presenting a brother or sister at the same address as the child asked about.
//!
//! A query first gathers candidates from indexes (NHS number, dates of birth near the one
//! given, surname sound codes with given names), then scores each against every name the record
//! holds, then grades it: a [`Confidence::Match`] needs the NHS number, or the date of birth
//! with name evidence on both names; anything weaker is at most [`Confidence::Possible`].

mod evidence;
mod grade;
mod sketch;
pub mod variants;

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use cpreg_proto::{ident, pb};
use rphonetic::DoubleMetaphone;

use crate::store::{Store, StoreError};
use evidence::{Comparer, NameParts, SoundCodes, dates_to_search};
use sketch::Sketch;
use variants::NameVariants;

/// Candidates returned when the query does not say.
pub const DEFAULT_CAP: usize = 5;

/// What the enquirer told us about the child. Empty strings and `None` mean "not given".
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub given: String,
    pub surname: String,
    pub dob: Option<NaiveDate>,
    /// Only where the date is not known: narrows a search by names.
    pub year_of_birth: Option<i32>,
    pub nhs: Option<String>,
    pub postcode: Option<String>,
    pub gender: Option<pb::Gender>,
    /// For an unborn child: the mother's details.
    pub mother: Option<MotherQuery>,
}

/// The mother of an unborn child, as the enquirer gives her.
#[derive(Debug, Clone, Default)]
pub struct MotherQuery {
    pub given: String,
    pub surname: String,
    pub dob: Option<NaiveDate>,
    pub nhs: Option<String>,
}

/// How strong a candidate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Confidence {
    /// Worth checking, not enough to act on alone.
    Possible,
    /// The NHS number, or the date of birth and both names, agree.
    Match,
}

/// One record that may be the child asked about.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub authority: String,
    pub child: pb::ProjectedChild,
    pub confidence: Confidence,
    pub score: u32,
    /// What agrees, in plain words ("date of birth exact", "Bill is a short form of William").
    pub reasons: Vec<String>,
}

/// Why a matcher could not be built from the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MatcherError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A child entry did not decode.
    #[error("authority {authority}: entry {key} is not a projected child: {source}")]
    Decode {
        authority: String,
        key: String,
        source: prost::DecodeError,
    },
}

/// One name a record is known by.
#[derive(Debug)]
struct KnownName {
    given: NameParts,
    surname: NameParts,
    /// Recorded name, or another known name.
    other: bool,
}

/// A query as the matcher compares it, worked out once rather than for every record.
struct Asked<'q> {
    query: &'q Query,
    given: NameParts,
    surname: NameParts,
    sketch: (Sketch, Sketch),
    nhs: Option<String>,
    postcode: Option<String>,
}

/// One record with what the matcher compares.
#[derive(Debug)]
struct Indexed {
    authority: String,
    child: pb::ProjectedChild,
    /// The NHS number checked and in its plain form.
    nhs: Option<String>,
    dob: Option<NaiveDate>,
    names: Vec<KnownName>,
    postcode: String,
    mother_given: NameParts,
    mother_surname: NameParts,
    mother_dob: Option<NaiveDate>,
}

/// The indexes over every trusted authority's projected children.
pub struct Matcher {
    /// In order of date of birth, so the children born on one day sit together.
    records: Vec<Indexed>,
    /// (given names, surname) of every name of every record, record by record: those of record
    /// `i` are `sketches[sketch_start[i]..sketch_start[i + 1]]`.
    sketches: Vec<(Sketch, Sketch)>,
    sketch_start: Vec<u32>,
    by_nhs: HashMap<String, Vec<u32>>,
    by_dob: HashMap<NaiveDate, Vec<u32>>,
    /// Surname keys: the joined name, each token, "#" + each sound code.
    by_surname: HashMap<String, Vec<u32>>,
    /// Given name keys: each token, the joined names, variant groups, "#" + sound codes.
    by_given: HashMap<String, Vec<u32>>,
    by_mother_nhs: HashMap<String, Vec<u32>>,
    by_mother_dob: HashMap<NaiveDate, Vec<u32>>,
    variants: NameVariants,
    /// Sound codes of every token held, so scoring does not encode them again.
    sounds: HashMap<String, SoundCodes>,
    encoder: DoubleMetaphone,
    cap: usize,
}

fn compact_postcode(postcode: &str) -> String {
    postcode
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    s.parse().ok()
}

/// Splits another known name ("Ollie Smith") into given names and surname, using the record's
/// own names to find the boundary.
fn split_other_name(full: &str, given: &NameParts, surname: &NameParts) -> (NameParts, NameParts) {
    let tokens = cpreg_proto::names::tokens(full);
    let parts = |t: &[String]| NameParts {
        tokens: t.to_vec(),
        joined: t.concat(),
    };
    let n = tokens.len();
    let s = surname.tokens.len();
    if n > s && tokens[n - s..] == surname.tokens[..] {
        return (parts(&tokens[..n - s]), parts(&tokens[n - s..]));
    }
    let g = given.tokens.len();
    if n > g && tokens[..g] == given.tokens[..] {
        return (parts(&tokens[..g]), parts(&tokens[g..]));
    }
    if n >= 2 {
        (parts(&tokens[..n - 1]), parts(&tokens[n - 1..]))
    } else {
        (parts(&tokens), NameParts::default())
    }
}

fn push(index: &mut HashMap<String, Vec<u32>>, key: String, id: u32) {
    let ids = index.entry(key).or_default();
    if ids.last() != Some(&id) {
        ids.push(id);
    }
}

impl Matcher {
    /// Builds the indexes over `(authority, child)` pairs.
    pub fn new(mut children: Vec<(String, pb::ProjectedChild)>) -> Matcher {
        children.sort_by(|a, b| a.1.date_of_birth.cmp(&b.1.date_of_birth));
        let mut m = Matcher {
            records: Vec::with_capacity(children.len()),
            sketches: Vec::with_capacity(children.len()),
            sketch_start: vec![0],
            by_nhs: HashMap::new(),
            by_dob: HashMap::new(),
            by_surname: HashMap::new(),
            by_given: HashMap::new(),
            by_mother_nhs: HashMap::new(),
            by_mother_dob: HashMap::new(),
            variants: NameVariants::builtin(),
            sounds: HashMap::new(),
            encoder: DoubleMetaphone::default(),
            cap: DEFAULT_CAP,
        };
        for (authority, child) in children {
            m.add(authority, child);
        }
        m
    }

    /// Builds a matcher from the last good version of each authority in `store`.
    pub fn from_store(store: &Store, authorities: &[String]) -> Result<Matcher, MatcherError> {
        use prost::Message;
        let mut children = Vec::new();
        for authority in authorities {
            for (key, value) in store.entries(authority)? {
                if !key.starts_with(cpreg_proto::snapshot::CHILD_PREFIX) {
                    continue;
                }
                let child = pb::ProjectedChild::decode(value.as_slice()).map_err(|source| {
                    MatcherError::Decode {
                        authority: authority.clone(),
                        key: key.clone(),
                        source,
                    }
                })?;
                children.push((authority.clone(), child));
            }
        }
        Ok(Matcher::new(children))
    }

    /// Sets how many candidates a query returns at most.
    pub fn with_cap(mut self, cap: usize) -> Matcher {
        self.cap = cap.max(1);
        self
    }

    /// How many records are indexed.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn encode(&self, token: &str) -> SoundCodes {
        let r = self.encoder.double_metaphone(token);
        (r.primary(), r.alternate())
    }

    fn sound_keys(&mut self, parts: &NameParts) -> Vec<String> {
        let mut keys = Vec::new();
        for token in parts.tokens.iter().chain(std::iter::once(&parts.joined)) {
            let codes = match self.sounds.get(token) {
                Some(codes) => codes.clone(),
                None => {
                    let codes = self.encode(token);
                    self.sounds.insert(token.clone(), codes.clone());
                    codes
                }
            };
            keys.push(format!("#{}", codes.0));
            if !codes.1.is_empty() && codes.1 != codes.0 {
                keys.push(format!("#{}", codes.1));
            }
        }
        keys
    }

    fn add(&mut self, authority: String, child: pb::ProjectedChild) {
        let id = self.records.len() as u32;
        let given = NameParts::new(&child.given_names);
        let surname = NameParts::new(&child.surname);
        let mut names = vec![KnownName {
            given: given.clone(),
            surname: surname.clone(),
            other: false,
        }];
        for other in &child.other_names {
            let (g, s) = split_other_name(other, &given, &surname);
            names.push(KnownName {
                given: if g.is_empty() { given.clone() } else { g },
                surname: if s.is_empty() { surname.clone() } else { s },
                other: true,
            });
        }
        for name in &names {
            self.sketches.push((
                Sketch::new(&name.given, &self.variants),
                Sketch::new(&name.surname, &self.variants),
            ));
        }
        self.sketch_start.push(self.sketches.len() as u32);
        let unborn = child.unborn.clone().unwrap_or_default();
        let record = Indexed {
            authority,
            nhs: ident::nhs_number(&child.nhs_number).ok(),
            dob: parse_date(&child.date_of_birth),
            postcode: compact_postcode(&child.postcode),
            mother_given: NameParts::new(&unborn.mother_given_names),
            mother_surname: NameParts::new(&unborn.mother_surname),
            mother_dob: parse_date(&unborn.mother_date_of_birth),
            names,
            child,
        };
        if let Some(nhs) = &record.nhs {
            push(&mut self.by_nhs, nhs.clone(), id);
        }
        if let Ok(nhs) = ident::nhs_number(&unborn.mother_nhs_number) {
            push(&mut self.by_mother_nhs, nhs, id);
        }
        if let Some(dob) = record.dob {
            self.by_dob.entry(dob).or_default().push(id);
        }
        if let Some(dob) = record.mother_dob {
            self.by_mother_dob.entry(dob).or_default().push(id);
        }
        let mut surname_keys = Vec::new();
        let mut given_keys = Vec::new();
        let mother = [(&record.mother_given, &record.mother_surname)];
        let all = record
            .names
            .iter()
            .map(|n| (&n.given, &n.surname))
            .chain(mother);
        for (g, s) in all {
            surname_keys.extend(s.tokens.iter().cloned());
            surname_keys.push(s.joined.clone());
            surname_keys.extend(self.sound_keys(s));
            given_keys.extend(g.tokens.iter().cloned());
            given_keys.push(g.joined.clone());
            for token in g.tokens.iter().chain(std::iter::once(&g.joined)) {
                given_keys.extend(self.variants.group_keys(token));
            }
            given_keys.extend(self.sound_keys(g));
        }
        for key in surname_keys
            .into_iter()
            .filter(|k| !k.is_empty() && k != "#")
        {
            push(&mut self.by_surname, key, id);
        }
        for key in given_keys.into_iter().filter(|k| !k.is_empty() && k != "#") {
            push(&mut self.by_given, key, id);
        }
        self.records.push(record);
    }

    /// The keys a query name is looked up under: as indexed, plus variant groups.
    fn query_keys(&self, parts: &NameParts, groups: bool) -> Vec<String> {
        let mut keys: Vec<String> = parts.tokens.clone();
        keys.push(parts.joined.clone());
        for token in parts.tokens.iter().chain(std::iter::once(&parts.joined)) {
            let (p, a) = self.encode(token);
            keys.push(format!("#{p}"));
            keys.push(format!("#{a}"));
            if groups {
                keys.extend(self.variants.group_keys(token));
            }
        }
        keys.retain(|k| !k.is_empty() && k != "#");
        keys
    }

    fn ids_for(&self, index: &HashMap<String, Vec<u32>>, keys: &[String]) -> HashSet<u32> {
        keys.iter()
            .filter_map(|k| index.get(k))
            .flatten()
            .copied()
            .collect()
    }

    /// The records worth scoring for `query`.
    fn gather(&self, asked: &Asked<'_>) -> Vec<u32> {
        let (query, given, surname) = (asked.query, &asked.given, &asked.surname);
        let mut ids = Vec::new();
        if let Some(nhs) = &asked.nhs {
            ids.extend(self.by_nhs.get(nhs).into_iter().flatten());
        }
        if let Some(dob) = query.dob {
            for date in dates_to_search(dob) {
                ids.extend(self.by_dob.get(&date).into_iter().flatten());
            }
        }
        if let Some(mother) = &query.mother {
            if let Some(nhs) = mother
                .nhs
                .as_deref()
                .and_then(|n| ident::nhs_number(n).ok())
            {
                ids.extend(self.by_mother_nhs.get(&nhs).into_iter().flatten());
            }
            if let Some(dob) = mother.dob {
                for date in dates_to_search(dob) {
                    ids.extend(self.by_mother_dob.get(&date).into_iter().flatten());
                }
            }
        }
        // Without a date, names must narrow the search: surname and given name together.
        if query.dob.is_none() && !given.is_empty() && !surname.is_empty() {
            let by_surname = self.ids_for(&self.by_surname, &self.query_keys(surname, true));
            let by_given = self.ids_for(&self.by_given, &self.query_keys(given, true));
            ids.extend(by_surname.intersection(&by_given));
        }
        // In record order (date of birth), once each.
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Whether any name record `id` holds could agree with the names asked about, as grading
    /// needs for anything but an NHS number or a mother's details: a quick, certain "no" for
    /// most of the children born near the date asked about.
    fn worth_grading(&self, asked: &Asked<'_>, id: u32) -> bool {
        if asked.nhs.is_some() || asked.query.mother.is_some() {
            return true;
        }
        let (given, surname) = &asked.sketch;
        let range =
            self.sketch_start[id as usize] as usize..self.sketch_start[id as usize + 1] as usize;
        self.sketches[range].iter().any(|(g, s)| {
            (asked.given.is_empty() || sketch::could_agree(given, g))
                && sketch::could_agree(surname, s)
        })
    }

    /// The ranked candidates for `query`, best first, at most the cap.
    pub fn find(&self, query: &Query) -> Vec<Candidate> {
        let given = NameParts::new(&query.given);
        let surname = NameParts::new(&query.surname);
        let asked = Asked {
            query,
            sketch: (
                Sketch::new(&given, &self.variants),
                Sketch::new(&surname, &self.variants),
            ),
            given,
            surname,
            nhs: query.nhs.as_deref().and_then(|n| ident::nhs_number(n).ok()),
            postcode: query
                .postcode
                .as_deref()
                .map(compact_postcode)
                .filter(|p| !p.is_empty()),
        };
        let sounds = |token: &str| {
            self.sounds
                .get(token)
                .cloned()
                .unwrap_or_else(|| self.encode(token))
        };
        let comparer = Comparer {
            variants: &self.variants,
            sounds: &sounds,
        };
        let mut scored: Vec<(Candidate, u32)> = self
            .gather(&asked)
            .into_iter()
            .filter_map(|id| {
                let record = &self.records[id as usize];
                if !self.worth_grading(&asked, id) {
                    return None;
                }
                self.grade(&comparer, &asked, record).map(|c| (c, id))
            })
            .collect();
        scored.sort_by(|(a, ia), (b, ib)| {
            (b.confidence, b.score)
                .cmp(&(a.confidence, a.score))
                .then(ia.cmp(ib))
        });
        self.guard_siblings(&mut scored);
        scored.truncate(self.cap);
        scored.into_iter().map(|(c, _)| c).collect()
    }
}

#[cfg(test)]
mod tests;
