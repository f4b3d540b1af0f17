//! How enum and byte fields of the generated messages are written in JSON: enums by their
//! lower-case names without the type prefix (`CATEGORY_NEGLECT` becomes `neglect`), bytes as hex.

use serde::Serializer;
use serde::ser::SerializeSeq;

use crate::pb;

fn name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
        .replace('_', "-")
}

macro_rules! enum_field {
    ($fn:ident, $ty:ty, $prefix:literal) => {
        pub fn $fn<S: Serializer>(value: &i32, s: S) -> Result<S::Ok, S::Error> {
            match <$ty>::try_from(*value) {
                Ok(v) => s.serialize_str(&name(v.as_str_name(), $prefix)),
                Err(_) => s.serialize_i32(*value),
            }
        }
    };
}

enum_field!(gender, pb::Gender, "GENDER_");
enum_field!(end_reason, pb::EndReason, "END_REASON_");
enum_field!(
    organisation_kind,
    pb::OrganisationKind,
    "ORGANISATION_KIND_"
);
enum_field!(release_status, pb::ReleaseStatus, "RELEASE_STATUS_");
enum_field!(row_outcome, pb::RowOutcome, "ROW_OUTCOME_");
enum_field!(manifest_kind, pb::ManifestKind, "MANIFEST_KIND_");
enum_field!(confidence, pb::Confidence, "CONFIDENCE_");
/// Outcomes keep their underscore (`no_record`), as DESIGN section 9 spells them.
pub fn lookup_outcome<S: Serializer>(value: &i32, s: S) -> Result<S::Ok, S::Error> {
    match pb::LookupOutcome::try_from(*value) {
        Ok(v) => s.serialize_str(
            &v.as_str_name()
                .trim_start_matches("LOOKUP_OUTCOME_")
                .to_ascii_lowercase(),
        ),
        Err(_) => s.serialize_i32(*value),
    }
}
enum_field!(callback_outcome, pb::CallbackOutcome, "CALLBACK_OUTCOME_");

/// The spelling of a category in JSON, CSV and on the command line.
pub fn category_name(value: i32) -> String {
    pb::Category::try_from(value)
        .map(|c| name(c.as_str_name(), "CATEGORY_"))
        .unwrap_or_else(|_| value.to_string())
}

pub fn categories<S: Serializer>(values: &[i32], s: S) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(values.len()))?;
    for v in values {
        seq.serialize_element(&category_name(*v))?;
    }
    seq.end()
}

pub fn hex_bytes<S: Serializer>(value: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(value))
}

#[cfg(test)]
mod tests {
    #[test]
    fn enums_are_written_by_name() {
        let plan = crate::pb::Plan {
            categories: vec![1, 4],
            ..Default::default()
        };
        let json = serde_json::to_value(&plan).expect("json");
        assert_eq!(
            json["categories"],
            serde_json::json!(["neglect", "emotional"])
        );
    }
}
