//! Sweeps: lookups from one terminal that keep every part of the query but one and change that
//! one, like one name with date after date of birth, or one date with name after name. Each
//! answer says whether such a child is on the register, so a sweep lists it a slice at a time.
//! A clinician correcting a typo or a swapped date makes two or three lookups like that, and
//! needs no more: the matcher already allows for typos, swapped day and month and dates a few
//! days out.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use cpreg_proto::pb;

use super::{Asker, listed};

/// Different values of one part, with the rest of the lookups alike, that make a sweep. Five
/// answers cover every correction a clinician makes (a typo, a swapped day and month, a date a
/// day or a year out) with room to spare; the sixth value is refused. It is also above the five
/// guessed surnames that the miss alert ([`super::MISSES_FOR_ALERT`]) is there to catch.
pub const SWEEP_LENGTH: usize = 6;

/// How far back a sweep is looked for: a clinician's corrections come within minutes of each
/// other, and a sweep slowed to one lookup every five minutes takes a shift to list one name.
pub const SWEEP_WINDOW_MINUTES: i64 = 30;

/// Lookups remembered per terminal: the terminal limit keeps a real one well under this, and it
/// bounds memory and work when the limits are lifted for a load test.
const REMEMBERED: usize = 256;

/// A part of the query that a sweep may vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    ChildName,
    DateOfBirth,
    NhsNumber,
    MotherName,
    MotherDateOfBirth,
    ExpectedDelivery,
}

impl Part {
    const ALL: [Part; 6] = [
        Part::ChildName,
        Part::DateOfBirth,
        Part::NhsNumber,
        Part::MotherName,
        Part::MotherDateOfBirth,
        Part::ExpectedDelivery,
    ];

    /// As a refusal names one of them.
    pub fn words(self) -> &'static str {
        match self {
            Part::ChildName => "the child's name",
            Part::DateOfBirth => "the date of birth",
            Part::NhsNumber => "the NHS number",
            Part::MotherName => "the mother's name",
            Part::MotherDateOfBirth => "the mother's date of birth",
            Part::ExpectedDelivery => "the expected delivery date",
        }
    }

    /// As a refusal counts them.
    pub fn plural(self) -> &'static str {
        match self {
            Part::ChildName => "names",
            Part::DateOfBirth => "dates of birth",
            Part::NhsNumber => "NHS numbers",
            Part::MotherName => "mothers' names",
            Part::MotherDateOfBirth => "mothers' dates of birth",
            Part::ExpectedDelivery => "expected delivery dates",
        }
    }
}

/// A name as compared: normalised, with a trailing `*` kept apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Name {
    stem: String,
    wildcard: bool,
}

impl Name {
    fn new(given: &str) -> Name {
        let given = given.trim();
        let (stem, wildcard) = match given.strip_suffix('*') {
            Some(stem) => (stem, true),
            None => (given, false),
        };
        Name {
            stem: cpreg_proto::names::normalise(stem),
            wildcard,
        }
    }

    /// What the matcher would take for the same name: a typo or two, or a wildcard that fits.
    fn alike(&self, other: &Name) -> bool {
        if self.stem.is_empty() || other.stem.is_empty() {
            return self.stem.is_empty() && other.stem.is_empty();
        }
        if (self.wildcard && other.stem.starts_with(&self.stem))
            || (other.wildcard && self.stem.starts_with(&other.stem))
        {
            return true;
        }
        let edits = if self.stem.len().max(other.stem.len()) > 5 {
            2
        } else {
            1
        };
        self.stem == other.stem
            || (self.stem.len().abs_diff(other.stem.len()) <= edits
                && strsim::osa_distance(&self.stem, &other.stem) <= edits)
    }
}

/// One part of a query, as sweeps compare it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Value {
    Absent,
    /// Given name and surname.
    Names(Name, Name),
    Date(NaiveDate),
    /// An NHS number's digits.
    Text(String),
}

impl Value {
    fn names(given: &str, surname: &str) -> Value {
        if given.trim().is_empty() && surname.trim().is_empty() {
            Value::Absent
        } else {
            Value::Names(Name::new(given), Name::new(surname))
        }
    }

    fn date(text: &str) -> Value {
        match cpreg_proto::ident::optional_date("date", text) {
            Ok(Some(date)) => Value::Date(date),
            Ok(None) => Value::Absent,
            Err(_) => Value::Text(text.trim().to_owned()),
        }
    }

    fn nhs_number(text: &str) -> Value {
        if text.trim().is_empty() {
            return Value::Absent;
        }
        Value::Text(cpreg_proto::ident::nhs_number(text).unwrap_or_else(|_| text.trim().to_owned()))
    }

    /// Alike enough to be the part a sweep keeps: the same, or what the matcher would take for
    /// the same (a typo, a wildcard that fits, a date a few days out or day and month swapped).
    fn alike(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Absent, Value::Absent) => true,
            (Value::Names(given, surname), Value::Names(other_given, other_surname)) => {
                given.alike(other_given) && surname.alike(other_surname)
            }
            (Value::Date(a), Value::Date(b)) => {
                (*a - *b).num_days().abs() <= 3
                    || (a.year() == b.year() && a.month() == b.day() && a.day() == b.month())
            }
            (Value::Text(a), Value::Text(b)) => a == b,
            _ => false,
        }
    }
}

/// A lookup's query, part by part in the order of [`Part::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Terms([Value; 6]);

impl Terms {
    fn of(query: &pb::ChildQuery) -> Terms {
        Terms([
            Value::names(&query.given_names, &query.surname),
            Value::date(&query.date_of_birth),
            Value::nhs_number(&query.nhs_number),
            Value::names(&query.mother_given_names, &query.mother_surname),
            Value::date(&query.mother_date_of_birth),
            Value::date(&query.expected_delivery_date),
        ])
    }

    /// The parts in which `other` is not alike this one; past two, which they are does not
    /// matter, and the rest are not compared.
    fn differences(&self, other: &Terms) -> Vec<usize> {
        (0..Part::ALL.len())
            .filter(|i| !self.0[*i].alike(&other.0[*i]))
            .take(2)
            .collect()
    }
}

/// A lookup remembered at a terminal.
#[derive(Debug)]
struct Asked {
    at: DateTime<Utc>,
    operator: String,
    terms: Terms,
}

/// A sweep found at a terminal: lookups continuing it are refused until `until`.
#[derive(Debug)]
struct Hold {
    terms: Terms,
    part: Part,
    until: DateTime<Utc>,
}

/// Recent lookups and the sweeps held, per terminal.
#[derive(Debug, Default)]
pub struct Sweeps {
    asked: HashMap<String, VecDeque<Asked>>,
    held: HashMap<String, Vec<Hold>>,
}

/// A lookup refused because it makes or continues a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swept {
    /// This lookup made one: `values` different values of `part`, from `operators`.
    Found {
        part: Part,
        values: usize,
        operators: Vec<String>,
        until: DateTime<Utc>,
    },
    /// It continues a sweep found earlier at the terminal.
    Held { part: Part, until: DateTime<Utc> },
}

impl Swept {
    /// What the person at the terminal is told, and what to do instead.
    pub fn message(&self) -> String {
        let (part, until, made) = match self {
            Swept::Found {
                part,
                values,
                until,
                ..
            } => (
                part,
                until,
                format!(
                    "{values} lookups from this terminal within {SWEEP_WINDOW_MINUTES} minutes differ only in {}",
                    part.words()
                ),
            ),
            Swept::Held { part, until } => (
                part,
                until,
                format!(
                    "this lookup continues a run from this terminal that differs only in {}",
                    part.words()
                ),
            ),
        };
        format!(
            "{made}: that is searching the register, not asking about one child, and lookups like these are refused here until {}. \
             The search already allows for typos, nicknames, swapped day and month and dates a few days out, so trying other {} finds no more. \
             If a child may be at risk, call the Emergency Duty Team",
            until.format("%H:%M UTC"),
            part.plural()
        )
    }

    /// The alert for the custodian, for the lookup that made the sweep (not those held after).
    pub fn alert(&self, terminal: &str) -> Option<String> {
        match self {
            Swept::Found {
                part,
                values,
                operators,
                until,
            } => Some(format!(
                "possible enumeration: {values} lookups at terminal {terminal} within {SWEEP_WINDOW_MINUTES} minutes differ only in {} (by {}); lookups like them are refused there until {}",
                part.words(),
                listed(operators),
                until.format("%H:%M UTC")
            )),
            Swept::Held { .. } => None,
        }
    }
}

impl Sweeps {
    /// Notes a lookup about `query` by `asker`, or refuses it when it makes or continues a sweep
    /// at the terminal; lookups continuing a sweep are refused for `hold`. A hold of zero looks
    /// for no sweeps and remembers nothing.
    pub fn check(
        &mut self,
        asker: Asker<'_>,
        query: &pb::ChildQuery,
        hold: Duration,
        now: DateTime<Utc>,
    ) -> Result<(), Swept> {
        if hold <= Duration::zero() {
            return Ok(());
        }
        let terms = Terms::of(query);
        let held = self.held.entry(asker.terminal.to_owned()).or_default();
        held.retain(|h| h.until > now);
        if let Some(h) = held.iter().find(|h| {
            terms
                .differences(&h.terms)
                .iter()
                .all(|i| Part::ALL[*i] == h.part)
        }) {
            return Err(Swept::Held {
                part: h.part,
                until: h.until,
            });
        }
        let asked = self.asked.entry(asker.terminal.to_owned()).or_default();
        let window = Duration::minutes(SWEEP_WINDOW_MINUTES);
        while asked.front().is_some_and(|a| now - a.at >= window) || asked.len() >= REMEMBERED {
            asked.pop_front();
        }
        let found = sweep_in(asked, &terms, asker.operator);
        asked.push_back(Asked {
            at: now,
            operator: asker.operator.to_owned(),
            terms: terms.clone(),
        });
        let Some((part, values, operators)) = found else {
            return Ok(());
        };
        let until = now + hold;
        held.push(Hold { terms, part, until });
        Err(Swept::Found {
            part,
            values,
            operators,
            until,
        })
    }

    /// Drops what no longer counts at any terminal, so terminals seen once are not kept for ever.
    pub fn forget_before(&mut self, now: DateTime<Utc>) {
        let window = Duration::minutes(SWEEP_WINDOW_MINUTES);
        self.asked
            .retain(|_, asked| asked.back().is_some_and(|a| now - a.at < window));
        self.held
            .retain(|_, held| held.iter().any(|h| h.until > now));
    }
}

/// The part, the number of its values and the operators, if `terms` with the lookups `asked`
/// before it make a sweep: for each part, the lookups alike `terms` in every other part, and
/// [`SWEEP_LENGTH`] or more different values of that part among them.
fn sweep_in(
    asked: &VecDeque<Asked>,
    terms: &Terms,
    operator: &str,
) -> Option<(Part, usize, Vec<String>)> {
    let mut values: Vec<HashSet<&Value>> = vec![HashSet::new(); Part::ALL.len()];
    let mut operators: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); Part::ALL.len()];
    for earlier in asked {
        let differences = terms.differences(&earlier.terms);
        let varied: Vec<usize> = match differences.as_slice() {
            [] => (0..Part::ALL.len()).collect(),
            [one] => vec![*one],
            _ => continue,
        };
        for i in varied {
            if earlier.terms.0[i] != Value::Absent {
                values[i].insert(&earlier.terms.0[i]);
                operators[i].insert(earlier.operator.as_str());
            }
        }
    }
    Part::ALL.iter().enumerate().find_map(|(i, part)| {
        if terms.0[i] == Value::Absent {
            return None;
        }
        values[i].insert(&terms.0[i]);
        operators[i].insert(operator);
        (values[i].len() >= SWEEP_LENGTH).then(|| {
            (
                *part,
                values[i].len(),
                operators[i].iter().map(|o| (*o).to_owned()).collect(),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T03:00:00Z")
            .expect("time")
            .to_utc()
    }

    fn child(given: &str, surname: &str, dob: &str) -> pb::ChildQuery {
        pb::ChildQuery {
            given_names: given.into(),
            surname: surname.into(),
            date_of_birth: dob.into(),
            ..Default::default()
        }
    }

    fn asker(operator: &str) -> Asker<'_> {
        Asker {
            terminal: "A&E workstation 1",
            operator,
        }
    }

    const HOLD: Duration = Duration::minutes(60);

    #[test]
    fn one_name_with_date_after_date_of_birth_is_a_sweep_and_the_rest_of_it_is_held() {
        let mut sweeps = Sweeps::default();
        let dates = [
            "2019-01-01",
            "2019-01-08",
            "2019-01-15",
            "2019-01-22",
            "2019-01-29",
        ];
        for (i, dob) in dates.iter().enumerate() {
            sweeps
                .check(
                    asker(if i % 2 == 0 { "Dr A" } else { "Dr B" }),
                    &child("Amelia", "Evans", dob),
                    HOLD,
                    t0() + Duration::minutes(i as i64),
                )
                .expect("five dates are answered");
        }
        let found = sweeps
            .check(
                asker("Dr C"),
                &child("Amelia", "Evans", "2019-02-05"),
                HOLD,
                t0() + Duration::minutes(6),
            )
            .expect_err("the sixth date makes a sweep");
        let Swept::Found {
            part,
            values,
            operators,
            ..
        } = &found
        else {
            panic!("{found:?}");
        };
        assert_eq!((*part, *values), (Part::DateOfBirth, 6));
        assert_eq!(operators, &["Dr A", "Dr B", "Dr C"]);
        assert!(found.message().contains("Emergency Duty Team"));
        let alert = found.alert("A&E workstation 1").expect("alert");
        assert!(alert.starts_with("possible enumeration"), "{alert}");
        assert!(alert.contains("the date of birth"), "{alert}");

        let held = sweeps
            .check(
                asker("Dr D"),
                &child("Amelia", "Evanss", "2018-07-01"),
                HOLD,
                t0() + Duration::minutes(7),
            )
            .expect_err("a typo in the name does not get round the hold");
        assert!(matches!(held, Swept::Held { .. }), "{held:?}");
        assert_eq!(held.alert("A&E workstation 1"), None, "one alert per sweep");
        sweeps
            .check(
                asker("Dr D"),
                &child("Oscar", "Whitfield", "2018-02-02"),
                HOLD,
                t0() + Duration::minutes(8),
            )
            .expect("another child is answered");
        let elsewhere = Asker {
            terminal: "A&E workstation 2",
            operator: "Dr D",
        };
        sweeps
            .check(
                elsewhere,
                &child("Amelia", "Evans", "2019-03-01"),
                HOLD,
                t0() + Duration::minutes(8),
            )
            .expect("the hold is on the terminal that swept");
        sweeps
            .check(
                asker("Dr D"),
                &child("Amelia", "Evans", "2019-03-01"),
                HOLD,
                t0() + Duration::minutes(67),
            )
            .expect("an hour on the hold is lifted");
    }

    #[test]
    fn one_date_with_name_after_name_or_wildcard_after_wildcard_is_a_sweep() {
        let mut sweeps = Sweeps::default();
        for (i, surname) in ["Aar*", "Abb*", "Abe*", "Abr*", "Ack*"].iter().enumerate() {
            sweeps
                .check(
                    asker(&format!("Operator {i}")),
                    &child("Jack", surname, "2016-01-01"),
                    HOLD,
                    t0(),
                )
                .expect("five answered");
        }
        let found = sweeps
            .check(
                asker("Operator 5"),
                &child("Jack", "Ada*", "2016-01-02"),
                HOLD,
                t0(),
            )
            .expect_err("sixth");
        assert!(
            matches!(
                found,
                Swept::Found {
                    part: Part::ChildName,
                    values: 6,
                    ..
                }
            ),
            "{found:?}"
        );
    }

    #[test]
    fn misspelling_the_name_as_the_dates_go_by_still_makes_a_sweep() {
        let mut sweeps = Sweeps::default();
        let walk = [
            ("Amelia", "Evans", "2019-01-01"),
            ("Amelia", "Evens", "2019-01-08"),
            ("Amelie", "Evans", "2019-01-15"),
            ("AMELIA", "Evanss", "2019-01-22"),
            ("Amelia", "Evan*", "2019-01-29"),
        ];
        for (given, surname, dob) in walk {
            sweeps
                .check(asker("Dr A"), &child(given, surname, dob), HOLD, t0())
                .expect("five answered");
        }
        let found = sweeps
            .check(
                asker("Dr A"),
                &child("Amelia", "Evans-", "2019-02-05"),
                HOLD,
                t0(),
            )
            .expect_err("the sixth date");
        assert!(
            matches!(
                found,
                Swept::Found {
                    part: Part::DateOfBirth,
                    ..
                }
            ),
            "{found:?}"
        );
    }

    #[test]
    fn walking_expected_delivery_dates_for_one_mother_is_a_sweep() {
        let mut sweeps = Sweeps::default();
        let mut refused = None;
        for week in 0..8 {
            let query = pb::ChildQuery {
                mother_given_names: "Grace".into(),
                mother_surname: "Adeyemi".into(),
                expected_delivery_date: format!("2027-{:02}-01", week + 1),
                ..Default::default()
            };
            if let Err(swept) = sweeps.check(asker("Dr A"), &query, HOLD, t0()) {
                refused = Some((week, swept));
                break;
            }
        }
        let (week, swept) = refused.expect("refused");
        assert_eq!(week, 5, "the sixth");
        assert!(
            matches!(
                swept,
                Swept::Found {
                    part: Part::ExpectedDelivery,
                    ..
                }
            ),
            "{swept:?}"
        );
    }

    #[test]
    fn walking_nhs_numbers_for_one_surname_is_a_sweep() {
        let mut sweeps = Sweeps::default();
        let mut refused = None;
        for n in 0..20 {
            let Some(nhs) = cpreg_proto::ident::nhs_number_with_check_digit(943_476_500 + n) else {
                continue;
            };
            let query = pb::ChildQuery {
                surname: "Evans".into(),
                nhs_number: nhs,
                ..Default::default()
            };
            if let Err(swept) = sweeps.check(asker("Dr A"), &query, HOLD, t0()) {
                refused = Some(swept);
                break;
            }
        }
        assert!(
            matches!(
                refused,
                Some(Swept::Found {
                    part: Part::NhsNumber,
                    values: 6,
                    ..
                })
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn a_clinician_correcting_typos_and_dates_or_asking_again_is_no_sweep() {
        let mut sweeps = Sweeps::default();
        let tries = [
            ("Leo", "Wlash", "2020-05-03"),
            ("Leo", "Walsh", "2020-05-03"),
            ("Leo", "Walsh", "2020-03-05"),
            ("Leo", "Walsh", "2020-03-06"),
            ("Leon", "Walsh", "2020-03-05"),
            ("Leo", "Walsh", "2019-03-05"),
            ("Leo", "Walsh", "2020-03-05"),
            ("Leo", "Walsh", "2020-03-05"),
            ("Leo", "Walsh-Byrne", "2020-03-05"),
        ];
        for (i, (given, surname, dob)) in tries.iter().enumerate() {
            sweeps
                .check(
                    asker("Dr Asha Patel"),
                    &child(given, surname, dob),
                    HOLD,
                    t0() + Duration::minutes(i as i64),
                )
                .unwrap_or_else(|e| panic!("try {i} refused: {e:?}"));
        }
        // Six different children, none alike another, are no sweep either.
        for (i, (given, surname, dob)) in [
            ("Amelia", "Evans", "2019-04-23"),
            ("Oscar", "Whitfield", "2018-02-02"),
            ("Priya", "Shah", "2021-07-14"),
            ("Tom", "Nowak", "2015-10-30"),
            ("Grace", "Adeyemi", "2017-01-09"),
            ("Ruby", "Clarke", "2020-12-01"),
        ]
        .iter()
        .enumerate()
        {
            sweeps
                .check(
                    asker("Dr Asha Patel"),
                    &child(given, surname, dob),
                    HOLD,
                    t0() + Duration::minutes(10 + i as i64),
                )
                .unwrap_or_else(|e| panic!("child {i} refused: {e:?}"));
        }
    }

    #[test]
    fn a_slow_sweep_is_forgotten_and_a_zero_hold_looks_for_none() {
        let mut sweeps = Sweeps::default();
        for day in 1..=12 {
            sweeps
                .check(
                    asker("Dr A"),
                    &child("Amelia", "Evans", &format!("2019-01-{day:02}")),
                    HOLD,
                    t0() + Duration::minutes(day * SWEEP_WINDOW_MINUTES / 5),
                )
                .expect("under six in any half hour");
        }
        let mut lifted = Sweeps::default();
        for day in 1..=12 {
            lifted
                .check(
                    asker("Dr A"),
                    &child("Amelia", "Evans", &format!("2019-01-{day:02}")),
                    Duration::zero(),
                    t0(),
                )
                .expect("no hold, no sweeps");
        }
        lifted.forget_before(t0());
        assert!(lifted.asked.is_empty() && lifted.held.is_empty());
        sweeps.forget_before(t0() + Duration::hours(3));
        assert!(sweeps.asked.is_empty());
    }
}
