//! Identifier checks that the primary, the replicas and the command line must apply alike: NHS
//! numbers, UK postcodes, telephone numbers and the dates on a child's record.
//!
//! Each check returns the normalised form, so that what is stored and compared is always spelled
//! one way ("943 476 5919" is stored as "9434765919", "sw1a1aa" as "SW1A 1AA").

use chrono::{Datelike, Months, NaiveDate};

/// Why an identifier was refused. Each message says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentError {
    /// Not ten digits after removing spaces and dashes.
    #[error("NHS number {0:?} must be 10 digits (spaces allowed), like 943 476 5919")]
    NhsNumberFormat(String),
    /// Ten digits whose modulus-11 check digit does not match.
    #[error("NHS number {0:?} fails its check digit: check it was copied correctly")]
    NhsNumberCheckDigit(String),
    /// Not a UK postcode.
    #[error("postcode {0:?} is not a UK postcode: send it like SW1A 1AA")]
    Postcode(String),
    /// Not an ISO 8601 calendar date.
    #[error("{field} {value:?} is not a date: send YYYY-MM-DD, like 2019-04-23")]
    Date { field: &'static str, value: String },
    /// A date of birth after today.
    #[error(
        "date of birth {0} is in the future; for a child not yet born send the expected delivery date and the mother's details"
    )]
    BirthInFuture(NaiveDate),
    /// A date of birth of someone 18 or over.
    #[error(
        "date of birth {0} is of someone aged 18 or over; the register is for children under 18"
    )]
    NotAChild(NaiveDate),
    /// An expected delivery date too far ahead to be a pregnancy.
    #[error("expected delivery date {0} is more than 42 weeks away; check the date")]
    DeliveryTooFar(NaiveDate),
    /// Not a UK telephone number.
    #[error("telephone number {0:?} is not a UK number: send 10 or 11 digits starting 0, or +44")]
    Phone(String),
    /// Not an e-mail address.
    #[error("e-mail address {0:?} is not one: send name@domain, without spaces")]
    Email(String),
}

/// Checks an NHS number and returns its ten digits.
///
/// The tenth digit is a modulus-11 check: weights 10 down to 2 over the first nine digits;
/// 11 minus the remainder is the check digit, 11 becomes 0 and 10 is never valid.
pub fn nhs_number(input: &str) -> Result<String, IdentError> {
    let digits: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdentError::NhsNumberFormat(input.to_owned()));
    }
    let values: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
    let sum: u32 = values[..9]
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| d * w)
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return Err(IdentError::NhsNumberCheckDigit(input.to_owned())),
        c => c,
    };
    if check != values[9] {
        return Err(IdentError::NhsNumberCheckDigit(input.to_owned()));
    }
    Ok(digits)
}

/// Completes nine digits into a valid NHS number, or `None` where no check digit fits.
/// Used to make synthetic registers and test data.
pub fn nhs_number_with_check_digit(first_nine: u32) -> Option<String> {
    let base = format!("{:09}", first_nine % 1_000_000_000);
    let sum: u32 = base
        .bytes()
        .zip((2..=10).rev())
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    match 11 - sum % 11 {
        10 => None,
        11 => Some(format!("{base}0")),
        c => Some(format!("{base}{c}")),
    }
}

/// Checks a UK postcode and returns it in upper case with one space before the inward code.
pub fn postcode(input: &str) -> Result<String, IdentError> {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bad = || IdentError::Postcode(input.to_owned());
    if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
        return Err(bad());
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    if compact == "GIR0AA" {
        return Ok("GIR 0AA".to_owned());
    }
    let inward_ok = {
        let b = inward.as_bytes();
        b[0].is_ascii_digit() && b[1].is_ascii_alphabetic() && b[2].is_ascii_alphabetic()
    };
    // Outward codes: A9, A99, AA9, AA99, A9A, AA9A.
    let shape: String = outward
        .bytes()
        .map(|b| {
            if b.is_ascii_digit() {
                '9'
            } else if b.is_ascii_alphabetic() {
                'A'
            } else {
                '?'
            }
        })
        .collect();
    let outward_ok = matches!(
        shape.as_str(),
        "A9" | "A99" | "AA9" | "AA99" | "A9A" | "AA9A"
    );
    if !(inward_ok && outward_ok) {
        return Err(bad());
    }
    Ok(format!("{outward} {inward}"))
}

/// Checks a UK telephone number and returns it without spaces ("01632960000", "+441632960000").
pub fn phone(input: &str) -> Result<String, IdentError> {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '(' | ')'))
        .collect();
    let ok = if let Some(rest) = compact.strip_prefix("+44") {
        (9..=10).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_digit())
    } else {
        compact.starts_with('0')
            && (10..=11).contains(&compact.len())
            && compact.bytes().all(|b| b.is_ascii_digit())
    };
    if ok {
        Ok(compact)
    } else {
        Err(IdentError::Phone(input.to_owned()))
    }
}

/// Checks an e-mail address (empty means none) and returns it trimmed: one `@`, something
/// before it, a dotted domain after it, no spaces. Deliverability is the mail system's to judge.
pub fn email(input: &str) -> Result<String, IdentError> {
    let address = input.trim();
    if address.is_empty() {
        return Ok(String::new());
    }
    let ok = match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if ok {
        Ok(address.to_owned())
    } else {
        Err(IdentError::Email(input.to_owned()))
    }
}

/// Parses an ISO 8601 calendar date; `field` names it in the error.
pub fn date(field: &'static str, input: &str) -> Result<NaiveDate, IdentError> {
    NaiveDate::parse_from_str(input.trim(), "%Y-%m-%d").map_err(|_| IdentError::Date {
        field,
        value: input.to_owned(),
    })
}

/// Parses an optional date: empty means unknown.
pub fn optional_date(field: &'static str, input: &str) -> Result<Option<NaiveDate>, IdentError> {
    if input.trim().is_empty() {
        Ok(None)
    } else {
        date(field, input).map(Some)
    }
}

/// A date of birth that is not in the future. A record kept after the child turned 18 (a plan
/// still to be ended, a historic plan) is checked with this alone.
pub fn born_by(dob: NaiveDate, today: NaiveDate) -> Result<NaiveDate, IdentError> {
    if dob > today {
        return Err(IdentError::BirthInFuture(dob));
    }
    Ok(dob)
}

/// A new child's date of birth: not in the future, and under 18 on `today`.
pub fn child_date_of_birth(dob: NaiveDate, today: NaiveDate) -> Result<NaiveDate, IdentError> {
    born_by(dob, today)?;
    if age_on(dob, today) >= 18 {
        return Err(IdentError::NotAChild(dob));
    }
    Ok(dob)
}

/// An unborn child's expected delivery date: not more than 42 weeks ahead of `today`.
pub fn expected_delivery_date(edd: NaiveDate, today: NaiveDate) -> Result<NaiveDate, IdentError> {
    if edd > today + chrono::Duration::weeks(42) {
        return Err(IdentError::DeliveryTooFar(edd));
    }
    Ok(edd)
}

/// Age in whole years on a given day.
pub fn age_on(dob: NaiveDate, day: NaiveDate) -> u32 {
    let mut years = day.year() - dob.year();
    if (day.month(), day.day()) < (dob.month(), dob.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// The day a child born on `dob` turns 18 (29 February births turn 18 on 1 March).
pub fn eighteenth_birthday(dob: NaiveDate) -> NaiveDate {
    dob.checked_add_months(Months::new(18 * 12))
        .filter(|d| d.day() == dob.day())
        .or_else(|| NaiveDate::from_ymd_opt(dob.year() + 18, 3, 1))
        .unwrap_or(NaiveDate::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        date("date", s).expect("test date")
    }

    #[test]
    fn nhs_numbers_with_good_check_digits_pass_and_are_normalised() {
        assert_eq!(nhs_number("943 476 5919").as_deref(), Ok("9434765919"));
        assert_eq!(nhs_number("401-023-2137").as_deref(), Ok("4010232137"));
    }

    #[test]
    fn nhs_number_with_wrong_check_digit_is_refused() {
        assert_eq!(
            nhs_number("9434765918"),
            Err(IdentError::NhsNumberCheckDigit("9434765918".into()))
        );
    }

    #[test]
    fn nhs_number_of_wrong_length_or_letters_is_refused() {
        assert!(matches!(
            nhs_number("943476591"),
            Err(IdentError::NhsNumberFormat(_))
        ));
        assert!(matches!(
            nhs_number("94347659A9"),
            Err(IdentError::NhsNumberFormat(_))
        ));
    }

    #[test]
    fn nhs_number_whose_check_would_be_ten_is_never_valid() {
        // 123456789: sum = 1*10+2*9+...+9*2 = 210, 210 % 11 = 1, check 10: no valid number.
        assert_eq!(nhs_number_with_check_digit(123_456_789), None);
        for n in [943_476_591, 401_023_213, 1, 999_999_999] {
            if let Some(full) = nhs_number_with_check_digit(n) {
                assert_eq!(nhs_number(&full).as_deref(), Ok(full.as_str()));
            }
        }
    }

    #[test]
    fn postcodes_of_every_shape_are_normalised() {
        for (input, want) in [
            ("sw1a1aa", "SW1A 1AA"),
            ("M1 1AE", "M1 1AE"),
            ("b33 8th", "B33 8TH"),
            ("CR2 6XH", "CR2 6XH"),
            ("DN55 1PT", "DN55 1PT"),
            ("W1A 0AX", "W1A 0AX"),
            ("EC1A 1BB", "EC1A 1BB"),
        ] {
            assert_eq!(postcode(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn things_that_are_not_postcodes_are_refused() {
        for input in ["", "SW1A", "12345", "SW1A 1A1", "ZZZZ 1AA", "SW1A-1AA!"] {
            assert!(postcode(input).is_err(), "{input}");
        }
    }

    #[test]
    fn uk_phone_numbers_pass_and_others_fail() {
        assert_eq!(phone("01632 960 000").as_deref(), Ok("01632960000"));
        assert_eq!(phone("+44 20 7946 0000").as_deref(), Ok("+442079460000"));
        assert!(phone("999").is_err());
        assert!(phone("call the office").is_err());
    }

    #[test]
    fn birth_in_the_future_or_adult_is_refused() {
        let today = d("2026-11-22");
        assert_eq!(
            child_date_of_birth(d("2026-11-23"), today),
            Err(IdentError::BirthInFuture(d("2026-11-23")))
        );
        assert_eq!(
            child_date_of_birth(d("2008-11-22"), today),
            Err(IdentError::NotAChild(d("2008-11-22")))
        );
        assert!(child_date_of_birth(d("2008-11-23"), today).is_ok());
    }

    #[test]
    fn leap_day_children_turn_18_on_first_of_march() {
        assert_eq!(eighteenth_birthday(d("2008-02-29")), d("2026-03-01"));
        assert_eq!(eighteenth_birthday(d("2010-06-15")), d("2028-06-15"));
    }

    #[test]
    fn dates_must_be_iso() {
        assert!(matches!(
            date("date_of_birth", "23/04/2019"),
            Err(IdentError::Date { .. })
        ));
        assert_eq!(optional_date("x", " "), Ok(None));
    }
}
