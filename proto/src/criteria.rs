//! The least a lookup must give (DESIGN section 5), checked alike by the command line, the duty
//! console and the replica, so that the register can be asked about a child but never browsed.
//!
//! Enough is: the child's given name, surname and date of birth; or a valid NHS number with the
//! surname or the date of birth; or, for an unborn child, the mother's given name and surname
//! with her date of birth or the expected delivery date. Names must be whole: no initials, and no
//! wildcard but a `*` after at least three letters.

use chrono::NaiveDate;

use crate::ident;
use crate::pb;

/// What the search will rest on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criteria {
    /// Given name, surname and date of birth.
    Child {
        given: String,
        surname: String,
        date_of_birth: NaiveDate,
    },
    /// A valid NHS number, with the surname or the date of birth.
    NhsNumber {
        nhs_number: String,
        surname: Option<String>,
        date_of_birth: Option<NaiveDate>,
    },
    /// An unborn child, through the mother.
    Unborn {
        mother_given: String,
        mother_surname: String,
        mother_date_of_birth: Option<NaiveDate>,
        expected_delivery_date: Option<NaiveDate>,
    },
}

/// A query refused before any search: the message says what to add or change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CriteriaError(pub String);

const ENOUGH: &str = "give the child's given name, surname and date of birth; or the NHS number with the surname or date of birth; or, for an unborn child, the mother's given name and surname with her date of birth or the expected delivery date";

/// A name as given: empty is `None`; an initial or a short wildcard is refused.
fn name(field: &str, value: &str) -> Result<Option<String>, CriteriaError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let (stem, wildcard) = match value.strip_suffix('*') {
        Some(stem) => (stem.trim(), true),
        None => (value, false),
    };
    if stem.contains(['*', '%', '?', '_']) {
        return Err(CriteriaError(format!(
            "{field} {value:?}: wildcards are not allowed, except one * after at least three letters"
        )));
    }
    let letters = stem.chars().filter(|c| c.is_alphabetic()).count();
    if wildcard && letters < 3 {
        return Err(CriteriaError(format!(
            "{field} {value:?}: a * needs at least three letters before it; give more of the name"
        )));
    }
    if letters < 2 {
        return Err(CriteriaError(format!(
            "{field} {value:?}: give the whole name, not an initial"
        )));
    }
    Ok(Some(value.to_owned()))
}

fn date(
    field: &'static str,
    value: &str,
    today: NaiveDate,
) -> Result<Option<NaiveDate>, CriteriaError> {
    let parsed = ident::optional_date(field, value).map_err(|e| CriteriaError(e.to_string()))?;
    if let Some(d) = parsed
        && field != "expected_delivery_date"
        && d > today
    {
        return Err(CriteriaError(format!("{field} {d} is in the future")));
    }
    Ok(parsed)
}

/// Checks a query on `today` and says what the search rests on.
pub fn check(query: &pb::ChildQuery, today: NaiveDate) -> Result<Criteria, CriteriaError> {
    let given = name("given name", &query.given_names)?;
    let surname = name("surname", &query.surname)?;
    let date_of_birth = date("date_of_birth", &query.date_of_birth, today)?;
    let nhs_number = if query.nhs_number.trim().is_empty() {
        None
    } else {
        Some(ident::nhs_number(&query.nhs_number).map_err(|e| CriteriaError(e.to_string()))?)
    };
    let mother_given = name("mother's given name", &query.mother_given_names)?;
    let mother_surname = name("mother's surname", &query.mother_surname)?;
    let mother_date_of_birth = date("mother_date_of_birth", &query.mother_date_of_birth, today)?;
    let expected_delivery_date = date(
        "expected_delivery_date",
        &query.expected_delivery_date,
        today,
    )?;

    if let Some(nhs_number) = nhs_number.clone()
        && (surname.is_some() || date_of_birth.is_some())
    {
        return Ok(Criteria::NhsNumber {
            nhs_number,
            surname,
            date_of_birth,
        });
    }
    if let (Some(given), Some(surname), Some(date_of_birth)) = (&given, &surname, date_of_birth) {
        return Ok(Criteria::Child {
            given: given.clone(),
            surname: surname.clone(),
            date_of_birth,
        });
    }
    if let (Some(mother_given), Some(mother_surname)) = (&mother_given, &mother_surname)
        && (mother_date_of_birth.is_some() || expected_delivery_date.is_some())
    {
        return Ok(Criteria::Unborn {
            mother_given: mother_given.clone(),
            mother_surname: mother_surname.clone(),
            mother_date_of_birth,
            expected_delivery_date,
        });
    }
    // Name what is missing for the way in the enquirer seems to be taking.
    let missing: Vec<&str> = if nhs_number.is_some() {
        vec!["the surname or date of birth to go with the NHS number"]
    } else if mother_given.is_some() || mother_surname.is_some() {
        [
            (mother_given.is_none(), "the mother's given name"),
            (mother_surname.is_none(), "the mother's surname"),
            (
                mother_date_of_birth.is_none() && expected_delivery_date.is_none(),
                "the mother's date of birth or the expected delivery date",
            ),
        ]
        .into_iter()
        .filter_map(|(gap, what)| gap.then_some(what))
        .collect()
    } else {
        [
            (given.is_none(), "the given name"),
            (surname.is_none(), "the surname"),
            (date_of_birth.is_none(), "the date of birth"),
        ]
        .into_iter()
        .filter_map(|(gap, what)| gap.then_some(what))
        .collect()
    };
    Err(CriteriaError(format!(
        "not enough to search: missing {}. {ENOUGH}",
        missing.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).expect("date")
    }

    fn query(given: &str, surname: &str, dob: &str) -> pb::ChildQuery {
        pb::ChildQuery {
            given_names: given.into(),
            surname: surname.into(),
            date_of_birth: dob.into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_and_date_of_birth_are_enough() {
        assert!(matches!(
            check(&query("Amelia", "Evans", "2019-04-23"), today()),
            Ok(Criteria::Child { .. })
        ));
    }

    #[test]
    fn a_missing_date_of_birth_is_named() {
        let err = check(&query("Amelia", "Evans", ""), today()).expect_err("refused");
        assert!(err.0.contains("missing the date of birth"), "{err}");
    }

    #[test]
    fn an_nhs_number_needs_a_surname_or_date_of_birth() {
        let mut q = pb::ChildQuery {
            nhs_number: "943 476 5919".into(),
            ..Default::default()
        };
        let err = check(&q, today()).expect_err("refused");
        assert!(err.0.contains("to go with the NHS number"), "{err}");
        q.surname = "Evans".into();
        assert!(matches!(check(&q, today()), Ok(Criteria::NhsNumber { .. })));
        q.nhs_number = "9434765918".into();
        assert!(
            check(&q, today())
                .expect_err("bad check digit")
                .0
                .contains("check digit")
        );
    }

    #[test]
    fn initials_and_short_wildcards_are_refused() {
        assert!(
            check(&query("A", "Evans", "2019-04-23"), today())
                .expect_err("initial")
                .0
                .contains("not an initial")
        );
        assert!(
            check(&query("Amelia", "Ev*", "2019-04-23"), today())
                .expect_err("short")
                .0
                .contains("three letters")
        );
        assert!(
            check(&query("Amelia", "E%ans", "2019-04-23"), today())
                .expect_err("sql")
                .0
                .contains("wildcards")
        );
        assert!(check(&query("Amelia", "Eva*", "2019-04-23"), today()).is_ok());
    }

    #[test]
    fn an_unborn_child_is_searched_through_the_mother() {
        let q = pb::ChildQuery {
            mother_given_names: "Grace".into(),
            mother_surname: "Adeyemi".into(),
            expected_delivery_date: "2027-02-01".into(),
            ..Default::default()
        };
        assert!(matches!(check(&q, today()), Ok(Criteria::Unborn { .. })));
        let partial = pb::ChildQuery {
            mother_surname: "Adeyemi".into(),
            ..Default::default()
        };
        let err = check(&partial, today()).expect_err("refused");
        assert!(err.0.contains("the mother's given name"), "{err}");
    }

    #[test]
    fn a_date_of_birth_in_the_future_is_refused() {
        assert!(
            check(&query("Amelia", "Evans", "2027-01-01"), today())
                .expect_err("future")
                .0
                .contains("future")
        );
    }
}
