//! What the console's forms send, kept as typed so a refused form comes back filled in, and
//! turned into the same `ChildQuery` a terminal sends.

use cpreg_proto::pb;
use serde::Deserialize;

/// The child's details, common to a lookup and a phone enquiry.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ChildFields {
    pub given_names: String,
    pub surname: String,
    pub date_of_birth: String,
    pub gender: String,
    pub nhs_number: String,
    pub postcode: String,
    pub mother_given_names: String,
    pub mother_surname: String,
    pub mother_date_of_birth: String,
    pub expected_delivery_date: String,
}

/// The sign-in form.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SignInForm {
    pub csrf: String,
    pub username: String,
    pub password: String,
}

/// A form with nothing but its token (sign out).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct TokenForm {
    pub csrf: String,
}

/// A direct lookup: the operator and their role come from the account.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct LookupForm {
    pub csrf: String,
    #[serde(flatten)]
    pub child: ChildFields,
    pub reason: String,
}

/// A phone enquiry taken by the duty worker.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct PhoneForm {
    pub csrf: String,
    pub enquirer_name: String,
    pub enquirer_role: String,
    pub organisation_id: String,
    pub number_given: String,
    #[serde(flatten)]
    pub child: ChildFields,
    pub reason: String,
}

/// What happened when the duty worker rang back.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct CallbackForm {
    pub csrf: String,
    pub reference: String,
    pub outcome: String,
}

/// A date as people type it in England (23/04/2019, 23-4-2019, 23.04.2019) or ISO 8601, as
/// ISO 8601; anything else is passed on unchanged for the criteria to refuse by name.
pub fn iso_date(input: &str) -> String {
    let input = input.trim();
    let parts: Vec<&str> = input.split(['/', '-', '.', ' ']).collect();
    if let [d, m, y] = parts.as_slice()
        && y.len() == 4
        && d.len() <= 2
        && m.len() <= 2
        && let (Ok(d), Ok(m), Ok(y)) = (d.parse::<u32>(), m.parse::<u32>(), y.parse::<i32>())
        && let Some(date) = chrono::NaiveDate::from_ymd_opt(y, m, d)
    {
        return date.to_string();
    }
    input.to_owned()
}

impl ChildFields {
    /// The query a terminal would send for these details.
    pub fn query(&self) -> pb::ChildQuery {
        let gender = match self.gender.as_str() {
            "female" => pb::Gender::Female,
            "male" => pb::Gender::Male,
            "unknown" => pb::Gender::Unknown,
            _ => pb::Gender::Unspecified,
        };
        pb::ChildQuery {
            given_names: self.given_names.trim().to_owned(),
            surname: self.surname.trim().to_owned(),
            date_of_birth: iso_date(&self.date_of_birth),
            gender: gender.into(),
            nhs_number: self.nhs_number.trim().to_owned(),
            postcode: self.postcode.trim().to_owned(),
            mother_given_names: self.mother_given_names.trim().to_owned(),
            mother_surname: self.mother_surname.trim().to_owned(),
            mother_date_of_birth: iso_date(&self.mother_date_of_birth),
            expected_delivery_date: iso_date(&self.expected_delivery_date),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_dates_become_iso_and_others_pass_through() {
        assert_eq!(iso_date("23/04/2019"), "2019-04-23");
        assert_eq!(iso_date(" 3-4-2019 "), "2019-04-03");
        assert_eq!(iso_date("2019-04-23"), "2019-04-23");
        assert_eq!(iso_date("31/02/2019"), "31/02/2019");
        assert_eq!(iso_date("April 2019"), "April 2019");
        assert_eq!(iso_date(""), "");
    }
}
