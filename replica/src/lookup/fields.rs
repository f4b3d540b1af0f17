//! How long the free text of a lookup may be. Names, roles, identifiers and reasons are typed by
//! people, so they are short; a request that carries more is refused, and what is recorded of it
//! (and compared for sweeps, kept by the limits and reported to the primary) is cut to the
//! limits first, so that no field can make an enquiry, an alert or a report batch large.

use cpreg_proto::pb;
use tonic::Status;

/// The longest name, role, identifier or phone number, in characters: longer than any real one.
pub const MOST_CHARS: usize = 100;
/// The longest reason, in characters: a few sentences.
pub const MOST_REASON_CHARS: usize = 1_000;

/// Cuts `value` to `most` characters; says whether it was longer.
fn clip(value: &mut String, most: usize) -> bool {
    match value.char_indices().nth(most) {
        Some((at, _)) => {
            value.truncate(at);
            true
        }
        None => false,
    }
}

/// Cuts every field to its limit, and names the first that was over it.
fn clip_all<'a>(
    fields: impl IntoIterator<Item = (&'static str, &'a mut String, usize)>,
) -> Option<Status> {
    let mut over = None;
    for (name, value, most) in fields {
        if clip(value, most) && over.is_none() {
            over = Some(Status::invalid_argument(format!(
                "{name} is longer than {most} characters: send it as written, without anything added"
            )));
        }
    }
    over
}

fn child_fields(child: &mut pb::ChildQuery) -> [(&'static str, &mut String, usize); 9] {
    [
        ("given_names", &mut child.given_names, MOST_CHARS),
        ("surname", &mut child.surname, MOST_CHARS),
        ("date_of_birth", &mut child.date_of_birth, MOST_CHARS),
        ("nhs_number", &mut child.nhs_number, MOST_CHARS),
        ("postcode", &mut child.postcode, MOST_CHARS),
        (
            "mother_given_names",
            &mut child.mother_given_names,
            MOST_CHARS,
        ),
        ("mother_surname", &mut child.mother_surname, MOST_CHARS),
        (
            "mother_date_of_birth",
            &mut child.mother_date_of_birth,
            MOST_CHARS,
        ),
        (
            "expected_delivery_date",
            &mut child.expected_delivery_date,
            MOST_CHARS,
        ),
    ]
}

/// A terminal's lookup cut to the limits, with the refusal it has earned if anything was over.
pub fn clip_lookup(mut req: pb::LookupRequest) -> (pb::LookupRequest, Option<Status>) {
    let mut child = req.child.take().unwrap_or_default();
    let over = clip_all(
        [
            ("operator_name", &mut req.operator_name, MOST_CHARS),
            ("operator_role", &mut req.operator_role, MOST_CHARS),
            ("reason", &mut req.reason, MOST_REASON_CHARS),
        ]
        .into_iter()
        .chain(child_fields(&mut child)),
    );
    req.child = Some(child);
    (req, over)
}

/// A phone enquiry cut to the limits, with the refusal it has earned if anything was over.
pub fn clip_enquiry(mut req: pb::OpenEnquiryRequest) -> (pb::OpenEnquiryRequest, Option<Status>) {
    let mut child = req.child.take().unwrap_or_default();
    let over = clip_all(
        [
            ("enquirer_name", &mut req.enquirer_name, MOST_CHARS),
            ("enquirer_role", &mut req.enquirer_role, MOST_CHARS),
            ("organisation_id", &mut req.organisation_id, MOST_CHARS),
            ("number_given", &mut req.number_given, MOST_CHARS),
            ("duty_worker", &mut req.duty_worker, MOST_CHARS),
            ("reason", &mut req.reason, MOST_REASON_CHARS),
        ]
        .into_iter()
        .chain(child_fields(&mut child)),
    );
    req.child = Some(child);
    (req, over)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thirty_thousand_letter_name_is_cut_and_refused_naming_the_field() {
        let (req, over) = clip_lookup(pb::LookupRequest {
            child: Some(pb::ChildQuery {
                given_names: "Amelia".into(),
                surname: "É".repeat(30_000),
                ..Default::default()
            }),
            operator_name: "Dr A. Patel".into(),
            operator_role: "ED registrar".into(),
            reason: "r".repeat(5_000),
        });
        let child = req.child.expect("child kept");
        assert_eq!(child.surname.chars().count(), MOST_CHARS);
        assert_eq!(child.given_names, "Amelia");
        assert_eq!(req.reason.len(), MOST_REASON_CHARS);
        let refusal = over.expect("refused");
        assert!(
            refusal.message().starts_with("reason is longer than 1000"),
            "{}",
            refusal.message()
        );
    }

    #[test]
    fn real_names_and_reasons_pass_untouched() {
        let asked = pb::OpenEnquiryRequest {
            enquirer_name: "PC Jordan Hughes".into(),
            enquirer_role: "Child Abuse Investigation Team".into(),
            organisation_id: "met-cait-south".into(),
            number_given: "07700 900123".into(),
            duty_worker: "Sam".into(),
            reason: "Disclosure at school of being hit with a belt".into(),
            child: Some(pb::ChildQuery {
                given_names: "Zoë-Mae".into(),
                surname: "Ó Súilleabháin-Kowalska".into(),
                date_of_birth: "2019-04-23".into(),
                ..Default::default()
            }),
        };
        let (req, over) = clip_enquiry(asked.clone());
        assert!(over.is_none());
        assert_eq!(req, asked);
    }
}
