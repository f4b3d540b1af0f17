//! Lookup requests as the replica and the duty console check them (`cpreg_proto::criteria::check`).
//!
//! The input is split at newlines into the query's text fields. Properties: the check never
//! panics and gives the same answer twice; a refusal says what to send; a query that passes has
//! whole names (at least two letters, no wildcard but one trailing `*` after three letters), dates
//! of birth not in the future, and a valid NHS number where it rests on one.

#![no_main]

use chrono::NaiveDate;
use cpreg_proto::criteria::{Criteria, check};
use cpreg_proto::{ident, pb};
use libfuzzer_sys::fuzz_target;

fn whole_name(name: &str) {
    assert_eq!(name, name.trim());
    let stem = name.strip_suffix('*').unwrap_or(name);
    assert!(
        !stem.contains(['*', '%', '?', '_']),
        "a wildcard in {name:?}"
    );
    let letters = stem.chars().filter(|c| c.is_alphabetic()).count();
    assert!(letters >= 2, "an initial passed: {name:?}");
    if stem.len() < name.len() {
        assert!(letters >= 3, "a short wildcard passed: {name:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut fields = text.split('\n').map(str::to_owned);
    let mut next = || fields.next().unwrap_or_default();
    let query = pb::ChildQuery {
        given_names: next(),
        surname: next(),
        date_of_birth: next(),
        nhs_number: next(),
        mother_given_names: next(),
        mother_surname: next(),
        mother_date_of_birth: next(),
        expected_delivery_date: next(),
        postcode: next(),
        gender: 0,
    };
    let today = NaiveDate::from_ymd_opt(2026, 11, 22).expect("a date");
    let result = check(&query, today);
    assert_eq!(
        result,
        check(&query, today),
        "the same query, another answer"
    );
    match result {
        Err(e) => assert!(!e.0.is_empty()),
        Ok(Criteria::Child {
            given,
            surname,
            date_of_birth,
        }) => {
            whole_name(&given);
            whole_name(&surname);
            assert!(date_of_birth <= today);
        }
        Ok(Criteria::NhsNumber {
            nhs_number,
            surname,
            date_of_birth,
        }) => {
            assert_eq!(
                ident::nhs_number(&nhs_number).ok(),
                Some(nhs_number.clone())
            );
            assert!(surname.is_some() || date_of_birth.is_some());
            if let Some(surname) = surname {
                whole_name(&surname);
            }
            assert!(date_of_birth.is_none_or(|d| d <= today));
        }
        Ok(Criteria::Unborn {
            mother_given,
            mother_surname,
            mother_date_of_birth,
            expected_delivery_date,
        }) => {
            whole_name(&mother_given);
            whole_name(&mother_surname);
            assert!(mother_date_of_birth.is_some() || expected_delivery_date.is_some());
            assert!(mother_date_of_birth.is_none_or(|d| d <= today));
        }
    }
});
